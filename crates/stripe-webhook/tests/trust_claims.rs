//! Trust boundaries (issue 10), played as an attacker with only what a buyer has: a Checkout
//! Session with no customer (what a Payment Link makes), completed with any email and any
//! `client_reference_id`. Only what creditgate wrote with its secret key (the customer sign-up
//! created, the sessions create-session makes for it) may bind a payment to a user.
//!
//! Claims and one subscription: a held purchase claimed by its verified owner, and one live
//! subscription per user.

mod support;

use domain::account::{CancelOutcome, cancel};
use domain::catalogue::SaleMode;
use domain::ids::{Email, StripeCustomerId, UserSub};
use domain::lifecycle::{AccessPolicy, LapseMode};
use domain::lifecycle::{ClaimError, Handled};
use domain::ports::{Accounts, Directory, Ledger, Payments};
use domain::profile::Access;
use support::trust::*;
use support::*;

#[tokio::test]
async fn her_own_link_purchase_is_held_claimed_and_leaves_one_subscription_and_one_bill()
-> anyhow::Result<()> {
    let stripe = Stripe::start().await?;
    let deps = deps(&stripe, AccessPolicy::default())?;
    let customer = stripe.customer("ada@example.com").await?;
    sign_up(&deps, "ada", "ada@example.com", &customer).await?;
    own_purchase(&stripe, &deps, "ada", "basic", SaleMode::Subscription).await?;
    let mut seen = 0;
    deliver_new(&deps, &stripe, &mut seen).await?;
    let first = profile(&deps, "ada")
        .await?
        .subscription
        .map(|s| s.id.to_string())
        .unwrap_or_default();

    // Case 3: a day later she buys Power through a Payment Link with her own email.
    stripe.advance_days(1).await?;
    deliver_new(&deps, &stripe, &mut seen).await?;
    let session = link_purchase(
        &stripe,
        "creditgate_power_subscription",
        "ada@example.com",
        None,
    )
    .await?;
    deliver_new(&deps, &stripe, &mut seen).await?;
    let p = profile(&deps, "ada").await?;
    assert_eq!(p.plan.as_str(), "basic", "held, not merged silently");
    let id = session["id"].as_str().unwrap_or_default();
    let ada = UserSub::parse("ada")?;
    // Claiming needs her verified email (the handler answers 403 without it: account tests),
    // and, since she has a live subscription, her explicit word that the claimed one replaces it.
    let refused = claim(&deps, &ada, "ada@example.com", id, false).await;
    assert!(
        matches!(&refused, Err(ClaimError::WouldReplace { current, .. }) if current.contains("basic")),
        "{refused:?}"
    );
    assert_eq!(stripe.subscription(&first).await?["status"], "active");
    let claimed = claim(&deps, &ada, "ada@example.com", id, true).await?;
    assert!(matches!(claimed, Handled::Applied(_)), "{claimed:?}");
    deliver_new(&deps, &stripe, &mut seen).await?;
    let p = profile(&deps, "ada").await?;
    assert_eq!(p.customers().len(), 2);
    assert_eq!((p.plan.as_str(), p.allowance.get()), ("power", 100_000));
    let second = session["subscription"].as_str().unwrap_or_default();
    assert_eq!(p.subscription.as_ref().map(|s| s.id.as_str()), Some(second));
    // One bill: the subscription she replaced was cancelled with proration.
    let old = stripe.subscription(&first).await?;
    assert_eq!(old["status"], "canceled");
    let view = stripe
        .call("GET", &format!("/_emulator/subscriptions/{first}"), "")
        .await?;
    assert!(
        view["proration_behaviors"]
            .as_array()
            .is_some_and(|b| b.iter().any(|x| x == "cancel_prorate")),
        "{view}"
    );
    let live = deps
        .lifecycle
        .stripe
        .live_subscriptions(&p.customers())
        .await?;
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].id, second);
    // Claiming again changes nothing.
    claim(&deps, &ada, "ada@example.com", id, false).await?;
    deliver_new(&deps, &stripe, &mut seen).await?;
    assert_eq!(profile(&deps, "ada").await?.allowance.get(), 100_000);
    // create-session and cancel see the claimed subscription: no second one is sold, its
    // price is not changed (it bills the card its buyer gave), and cancel ends it.
    let change = own_purchase(&stripe, &deps, "ada", "basic", SaleMode::Subscription).await;
    assert!(
        change
            .as_ref()
            .err()
            .is_some_and(|e| e.to_string().contains("claimed from a payment link")),
        "{change:?}"
    );
    let same = own_purchase(&stripe, &deps, "ada", "power", SaleMode::Subscription).await;
    assert!(
        same.as_ref()
            .err()
            .is_some_and(|e| e.to_string().contains("already subscribed")),
        "{same:?}"
    );
    deliver_new(&deps, &stripe, &mut seen).await?;
    let cancelled = cancel(
        &deps.lifecycle,
        &deps.lifecycle.stripe,
        &ada,
        false,
        adapters::unix_now(),
    )
    .await?;
    assert!(
        matches!(&cancelled, CancelOutcome::Now { subscription, .. } if *subscription == second),
        "{cancelled:?}"
    );
    deliver_new(&deps, &stripe, &mut seen).await?;
    assert_eq!(profile(&deps, "ada").await?.plan.as_str(), "free");
    Ok(())
}

#[tokio::test]
async fn a_claim_never_displaces_her_subscription_unasked_and_a_failing_one_lapses_nobody()
-> anyhow::Result<()> {
    let stripe = Stripe::start().await?;
    let policy = AccessPolicy {
        lapse: LapseMode::Disable,
        ..AccessPolicy::default()
    };
    let deps = deps(&stripe, policy)?;
    let (_, mut seen) = ada_on_power(&stripe, &deps).await?;
    let own = profile(&deps, "ada")
        .await?
        .subscription
        .map(|s| s.id.to_string())
        .unwrap_or_default();
    // Someone pays for Basic with her email and the card then fails: past due, then unpaid.
    let session = link_purchase(
        &stripe,
        "creditgate_basic_subscription",
        "ada@example.com",
        None,
    )
    .await?;
    let buyer = customer_of(&session)?;
    stripe
        .call(
            "POST",
            &format!("/_emulator/customers/{buyer}/payment_method"),
            "failing=true",
        )
        .await?;
    stripe.advance_days(31).await?;
    deliver_new(&deps, &stripe, &mut seen).await?;
    let failing = session["subscription"].as_str().unwrap_or_default();
    assert_eq!(stripe.subscription(failing).await?["status"], "past_due");
    // A held subscription whose buyer's card fails is nobody's to take over, even asked to
    // replace hers: refused, nothing changes; it stays the buyer's, unbound, and lapses nobody.
    for replace in [false, true] {
        let refused = claim(
            &deps,
            &UserSub::parse("ada")?,
            "ada@example.com",
            session["id"].as_str().unwrap_or_default(),
            replace,
        )
        .await;
        assert!(
            matches!(&refused, Err(ClaimError::NotPaying { status, .. }) if status == "past_due"),
            "{refused:?}"
        );
    }
    deliver_new(&deps, &stripe, &mut seen).await?;
    stripe.advance_days(16).await?;
    deliver_new(&deps, &stripe, &mut seen).await?;
    assert_eq!(stripe.subscription(&own).await?["status"], "active");
    assert_eq!(deps.lifecycle.store.customer_owner(&buyer).await?, None);
    let p = profile(&deps, "ada").await?;
    assert_eq!((p.plan.as_str(), p.access), ("power", Access::Active));
    assert_eq!(p.subscription.map(|s| s.id.to_string()), Some(own));
    assert!(
        deps.lifecycle
            .directory
            .user("ada")
            .is_some_and(|u| u.enabled)
    );
    Ok(())
}

#[tokio::test]
async fn two_checkouts_of_one_user_leave_one_live_subscription() -> anyhow::Result<()> {
    let stripe = Stripe::start().await?;
    let deps = deps(&stripe, AccessPolicy::default())?;
    let customer = stripe.customer("ada@example.com").await?;
    sign_up(&deps, "ada", "ada@example.com", &customer).await?;
    // Two tabs: both sessions created before either completes, both paid.
    let a = stripe
        .checkout(
            Some(&customer),
            Some("ada"),
            "creditgate_basic_subscription",
            None,
        )
        .await?;
    let b = stripe
        .checkout(
            Some(&customer),
            Some("ada"),
            "creditgate_power_subscription",
            None,
        )
        .await?;
    let mut seen = 0;
    deliver_new(&deps, &stripe, &mut seen).await?;
    deliver_new(&deps, &stripe, &mut seen).await?;
    let live = deps
        .lifecycle
        .stripe
        .live_subscriptions(&[StripeCustomerId::parse(&customer)?])
        .await?;
    // Created in the same second: the greater id is kept, whichever delivery decides.
    assert_eq!(live.len(), 1, "{live:?}");
    let kept = live[0].id.as_str();
    let (a, b) = (
        a["subscription"].as_str().unwrap_or_default(),
        b["subscription"].as_str().unwrap_or_default(),
    );
    let old = if kept == a { b } else { a };
    assert!(kept == a.max(b), "{kept} of {a}, {b}");
    assert_eq!(stripe.subscription(old).await?["status"], "canceled");
    let p = profile(&deps, "ada").await?;
    let plan = if kept == b { "power" } else { "basic" };
    assert_eq!(p.plan.as_str(), plan);
    assert_eq!(p.subscription.as_ref().map(|s| s.id.as_str()), Some(kept));
    Ok(())
}

#[tokio::test]
async fn a_pay_first_buyer_whose_profile_write_failed_claims_her_purchase_and_gets_an_account()
-> anyhow::Result<()> {
    let stripe = Stripe::start().await?;
    let deps = deps(&stripe, AccessPolicy::default())?;
    let session = link_purchase(&stripe, "creditgate_basic_pack", "zoe@example.com", None).await?;
    let events = stripe.events().await?;
    let completed = events
        .iter()
        .find(|e| e.contains("\"checkout.session.completed\""))
        .cloned()
        .unwrap_or_default();
    // Her Cognito user is created, then the profile write fails: 500, Stripe retries.
    deps.lifecycle.store.fail_writes.once("create profile");
    let (status, _) = deliver(&deps, &completed).await?;
    assert_eq!(status, 500);
    // The retry finds her email taken (by her own new user): held for her, not lost.
    let (status, body) = deliver(&deps, &completed).await?;
    assert_eq!(status, 200, "{body}");
    let zoe = deps
        .lifecycle
        .directory
        .find_by_email(&Email::parse("zoe@example.com")?)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no Cognito user"))?;
    assert!(deps.lifecycle.store.profile(&zoe).await?.is_none());
    // Signed in from her invitation (her email verified), she claims it: account and credits.
    let id = session["id"].as_str().unwrap_or_default();
    claim(&deps, &zoe, "zoe@example.com", id, false).await?;
    let p = profile(&deps, zoe.as_str()).await?;
    assert_eq!((p.plan.as_str(), p.purchased.get()), ("free", 1_000));
    assert_eq!(p.customer, customer_of(&session)?);
    Ok(())
}

#[tokio::test]
async fn a_pay_first_subscriber_whose_profile_write_failed_claims_her_subscription_whole()
-> anyhow::Result<()> {
    let stripe = Stripe::start().await?;
    let deps = deps(&stripe, AccessPolicy::default())?;
    let session = link_purchase(
        &stripe,
        "creditgate_power_subscription",
        "zoe@example.com",
        None,
    )
    .await?;
    let events = stripe.events().await?;
    let completed = events
        .iter()
        .find(|e| e.contains("\"checkout.session.completed\""))
        .cloned()
        .unwrap_or_default();
    deps.lifecycle.store.fail_writes.once("create profile");
    assert_eq!(deliver(&deps, &completed).await?.0, 500);
    assert_eq!(
        deliver(&deps, &completed).await?.0,
        200,
        "held on the retry"
    );
    let zoe = deps
        .lifecycle
        .directory
        .find_by_email(&Email::parse("zoe@example.com")?)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no Cognito user"))?;
    // The subscription she bought is not "hers to replace": the claim takes it as it is.
    let id = session["id"].as_str().unwrap_or_default();
    let claimed = claim(&deps, &zoe, "zoe@example.com", id, false).await?;
    assert!(matches!(claimed, Handled::Applied(_)), "{claimed:?}");
    let subscription = session["subscription"].as_str().unwrap_or_default();
    assert_eq!(stripe.subscription(subscription).await?["status"], "active");
    let p = profile(&deps, zoe.as_str()).await?;
    assert_eq!((p.plan.as_str(), p.allowance.get()), ("power", 100_000));
    Ok(())
}
