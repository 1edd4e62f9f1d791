//! `creditgate reconcile` = `replay` (`ReplayFilter::for_reconcile`) then `reconcile_all`.
//! A pay-first buyer (Payment Link, new email) pays while the webhook endpoint is deleted or
//! disabled: Stripe never tries a delivery, so `delivery_success=false` does not list the
//! event, and reconcile only walks users that already have a profile. The sweep of recent
//! handled events with no settled record finds it: the buyer gets an account. (Found by an
//! outside review, which wrote this test first.)

mod support;

use adapters::unix_now as now;
use domain::events::{ReplayFilter, replay};
use domain::lifecycle::AccessPolicy;
use domain::reconcile::reconcile_all;
use support::*;

#[tokio::test]
async fn reconcile_recovers_a_pay_first_purchase_made_while_the_endpoint_was_gone()
-> anyhow::Result<()> {
    let stripe = Stripe::start().await?; // no endpoint registered: nothing is ever sent
    let deps = deps(&stripe, AccessPolicy::default())?;
    stripe
        .checkout(
            None,
            None,
            "creditgate_basic_pack",
            Some("frank@example.com"),
        )
        .await?;

    let replayed = replay(
        &deps.lifecycle,
        &ReplayFilter::for_reconcile(None, now()),
        false,
        now,
        |_| {},
    )
    .await?;
    let report = reconcile_all(&deps.lifecycle, now, |_, _| {}).await?;
    let users = deps
        .lifecycle
        .directory
        .users
        .lock()
        .map(|u| u.len())
        .unwrap_or(0);
    assert_eq!(
        users, 1,
        "frank paid and has no account; replayed {replayed:?}, reconcile {report:?}"
    );
    Ok(())
}
