//! A price change synced by `creditgate plans sync` (README: "after changing plans.json ... run
//! creditgate plans sync") moves the lookup key to the new price (`transfer_lookup_key`), so the
//! price a buyer paid, or a subscriber still pays, has none left: its creditgate metadata still
//! names the plan. A pack paid for while no event reached the webhook is granted by reconcile,
//! and a renewal paid after the change resets the allowance. (Found by an outside review,
//! which wrote these tests first.)

mod support;

use adapters::stripe_api;
use adapters::unix_now as now;
use domain::catalogue::Catalogue;
use domain::lifecycle::AccessPolicy;
use domain::reconcile::reconcile_all;
use support::*;

#[tokio::test]
async fn a_pack_paid_before_a_price_change_is_still_granted_by_reconcile() -> anyhow::Result<()> {
    let stripe = Stripe::start().await?;
    let deps = deps(&stripe, AccessPolicy::default())?;
    let customer = stripe.customer("ada@example.com").await?;
    sign_up(&deps, "user-1", "ada@example.com", &customer).await?;
    // Paid; its checkout.session.completed never reaches the webhook (nothing delivered).
    stripe
        .checkout(
            Some(&customer),
            Some("user-1"),
            "creditgate_basic_pack",
            None,
        )
        .await?;

    // The operator raises Basic's price and syncs, as the README says.
    let raised = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../plans.json"))?
        .replace("\"amount\": 500", "\"amount\": 600");
    let catalogue = Catalogue::parse(&raised)?;
    let state = stripe_api::read_catalogue(&stripe.client, &catalogue).await?;
    for change in domain::sync::changes(&catalogue, &state) {
        stripe_api::apply_change(&stripe.client, &change, "review").await?;
    }

    let report = reconcile_all(&deps.lifecycle, now, |_, _| {}).await?;
    let purchased = profile(&deps, "user-1").await?.purchased.get();
    assert!(
        purchased == 1_000 || report.drifted + report.failed > 0,
        "the buyer paid for 1,000 credits and has {purchased}; reconcile reported {report:?}"
    );
    Ok(())
}

/// The same price change: a Basic subscriber's renewal is paid in Stripe, and neither the
/// webhook nor reconcile resets her allowance (every event fails: "lookup key None").
#[tokio::test]
async fn a_renewal_paid_after_a_price_change_resets_the_allowance() -> anyhow::Result<()> {
    let (stripe, deps, _, _) = subscribed("creditgate_basic_subscription").await?;
    for payload in stripe.events().await? {
        deliver(&deps, &payload).await?;
    }
    let before = profile(&deps, "user-1").await?.allowance_source;
    let raised = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../plans.json"))?
        .replace("\"amount\": 500", "\"amount\": 600");
    let catalogue = Catalogue::parse(&raised)?;
    let state = stripe_api::read_catalogue(&stripe.client, &catalogue).await?;
    for change in domain::sync::changes(&catalogue, &state) {
        stripe_api::apply_change(&stripe.client, &change, "review").await?;
    }
    let seen = stripe.events().await?.len();
    stripe.advance_days(32).await?;
    let mut statuses = Vec::new();
    for payload in stripe.events().await?.into_iter().skip(seen) {
        statuses.push(deliver(&deps, &payload).await?.0);
    }
    let report = reconcile_all(&deps.lifecycle, now, |_, _| {}).await?;
    let after = profile(&deps, "user-1").await?.allowance_source;
    assert_ne!(
        before, after,
        "renewal paid, allowance not granted; deliveries answered {statuses:?}; reconcile {report:?}"
    );
    Ok(())
}
