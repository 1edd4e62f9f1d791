//! Trust boundaries (issue 10), played as an attacker with only what a buyer has: a Checkout
//! Session with no customer (what a Payment Link makes), completed with any email and any
//! `client_reference_id`. Only what creditgate wrote with its secret key (the customer sign-up
//! created, the sessions create-session makes for it) may bind a payment to a user.
//!
//! Outsiders: a Payment Link buyer typing a user's email or sub binds nothing to that user.

mod support;

use domain::catalogue::SaleMode;
use domain::facts::SubStatus;
use domain::ids::{Email, UserSub};
use domain::lifecycle::{AccessPolicy, LapseMode};
use domain::lifecycle::{ClaimError, Handled};
use domain::ports::{Ledger, Payments};
use domain::profile::Access;
use serde_json::Value;
use support::trust::*;
use support::*;

#[tokio::test]
async fn a_buyer_paying_with_a_signed_up_users_email_is_held_and_changes_nothing_for_her()
-> anyhow::Result<()> {
    let stripe = Stripe::start().await?;
    let policy = AccessPolicy {
        lapse: LapseMode::Disable,
        ..AccessPolicy::default()
    };
    let deps = deps(&stripe, policy)?;
    let (_, mut seen) = ada_on_power(&stripe, &deps).await?;
    let before = profile(&deps, "ada").await?;
    let syncs = deps
        .lifecycle
        .directory
        .syncs
        .load(std::sync::atomic::Ordering::SeqCst);

    // Case 1: the attacker pays for Basic with Ada's email, then lets the card fail.
    let session = link_purchase(
        &stripe,
        "creditgate_basic_subscription",
        "ADA@example.com",
        None,
    )
    .await?;
    deliver_new(&deps, &stripe, &mut seen).await?;
    let buyer = customer_of(&session)?;
    assert_eq!(
        deps.lifecycle.store.customer_owner(&buyer).await?,
        None,
        "the buyer's customer is bound to nobody"
    );
    stripe
        .call(
            "POST",
            &format!("/_emulator/customers/{buyer}/payment_method"),
            "failing=true",
        )
        .await?;
    for _ in 0..3 {
        stripe.advance_days(16).await?;
        deliver_new(&deps, &stripe, &mut seen).await?;
    }
    let after = profile(&deps, "ada").await?;
    assert_eq!(after.plan.as_str(), "power");
    assert_eq!(after.access, Access::Active);
    assert_eq!(after.customers(), before.customers());
    assert_eq!(
        after.subscription.as_ref().map(|s| &s.id),
        before.subscription.as_ref().map(|s| &s.id),
        "she still follows her own subscription"
    );
    let user = deps.lifecycle.directory.user("ada");
    assert!(user.as_ref().is_some_and(|u| u.enabled), "{user:?}");
    assert_eq!(user.and_then(|u| u.plan).as_deref(), Some("power"));
    assert!(
        deps.lifecycle
            .directory
            .syncs
            .load(std::sync::atomic::Ordering::SeqCst)
            >= syncs
    );

    // The purchase is held for the owner of the email, visible to her.
    let held = deps
        .lifecycle
        .store
        .held_purchases(&Email::parse("ada@example.com")?)
        .await?;
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].session, session["id"].as_str().unwrap_or_default());
    assert_eq!(held[0].claimed_by, None);
    // Her own subscription is still live in Stripe, and create-session still sees it.
    let live = deps
        .lifecycle
        .stripe
        .live_subscriptions(&after.customers())
        .await?;
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].status, SubStatus::Active);
    let again = own_purchase(&stripe, &deps, "ada", "power", SaleMode::Subscription).await;
    assert!(
        again
            .err()
            .is_some_and(|e| e.to_string().contains("already subscribed")),
        "her own plan is recognised"
    );
    Ok(())
}

#[tokio::test]
async fn a_client_reference_id_naming_another_user_binds_nothing_to_her() -> anyhow::Result<()> {
    let stripe = Stripe::start().await?;
    let deps = deps(&stripe, AccessPolicy::default())?;
    let (_, mut seen) = ada_on_power(&stripe, &deps).await?;
    let before = profile(&deps, "ada").await?;

    // Case 2: a pack and a subscription whose Payment Link carried Ada's sub.
    let pack = link_purchase(
        &stripe,
        "creditgate_power_pack",
        "eve@example.com",
        Some("ada"),
    )
    .await?;
    let sub = link_purchase(
        &stripe,
        "creditgate_basic_subscription",
        "eve@example.com",
        Some("ada"),
    )
    .await?;
    deliver_new(&deps, &stripe, &mut seen).await?;
    let after = profile(&deps, "ada").await?;
    assert_eq!(
        (after.plan.as_str(), after.allowance, after.purchased),
        ("power", before.allowance, before.purchased),
        "nothing lands on Ada"
    );
    assert_eq!(after.customers(), before.customers());
    assert_eq!(
        after.subscription.as_ref().map(|s| &s.id),
        before.subscription.as_ref().map(|s| &s.id)
    );
    // Eve, who paid, is a pay-first buyer: a user of her own with the pack's credits.
    let eve = deps
        .lifecycle
        .store
        .customer_owner(&customer_of(&pack)?)
        .await?
        .ok_or_else(|| anyhow::anyhow!("Eve's pack is bound to nobody"))?;
    assert_ne!(eve.as_str(), "ada");
    let eve_profile = profile(&deps, eve.as_str()).await?;
    assert_eq!(eve_profile.purchased.get(), 100_000);
    // Her second purchase used another customer with the same email: held for her to claim.
    assert_eq!(
        deps.lifecycle
            .store
            .customer_owner(&customer_of(&sub)?)
            .await?,
        None
    );
    let held = deps
        .lifecycle
        .store
        .held_purchases(&Email::parse("eve@example.com")?)
        .await?;
    assert_eq!(held.len(), 1);
    // Ada cannot claim what is held for Eve's email, even naming the session.
    let session = sub["id"].as_str().unwrap_or_default();
    let stolen = claim(
        &deps,
        &UserSub::parse("ada")?,
        "ada@example.com",
        session,
        false,
    )
    .await;
    assert!(
        matches!(stolen, Err(ClaimError::NothingHeld(_))),
        "{stolen:?}"
    );
    // Eve claims it, signed in with her verified email: she is on Basic.
    let claimed = claim(&deps, &eve, "Eve@Example.com", session, false).await?;
    assert!(matches!(claimed, Handled::Applied(_)), "{claimed:?}");
    deliver_new(&deps, &stripe, &mut seen).await?;
    let eve_profile = profile(&deps, eve.as_str()).await?;
    assert_eq!(
        (eve_profile.plan.as_str(), eve_profile.allowance.get()),
        ("basic", 1_000)
    );
    assert_eq!(eve_profile.purchased.get(), 100_000, "the pack once");
    assert_eq!(profile(&deps, "ada").await?.plan.as_str(), "power");
    Ok(())
}

#[tokio::test]
async fn a_session_that_names_no_user_settles_and_never_fails() -> anyhow::Result<()> {
    let stripe = Stripe::start().await?;
    let deps = deps(&stripe, AccessPolicy::default())?;
    // Case 4: a reference that is no user (and one that is no valid sub at all).
    link_purchase(
        &stripe,
        "creditgate_basic_pack",
        "new@example.com",
        Some("no-such-user"),
    )
    .await?;
    link_purchase(
        &stripe,
        "creditgate_basic_subscription",
        "other@example.com",
        Some("../../etc/passwd"),
    )
    .await?;
    let mut seen = 0;
    deliver_new(&deps, &stripe, &mut seen).await?;
    let events = deps
        .lifecycle
        .store
        .events
        .lock()
        .map(|e| e.clone())
        .unwrap_or_default();
    assert!(
        events.values().all(|(status, ..)| status != "failed"),
        "{events:?}"
    );
    // Each buyer got a user of their own.
    let users = deps
        .lifecycle
        .directory
        .users
        .lock()
        .map(|u| u.clone())
        .unwrap_or_default();
    let emails: Vec<_> = users.values().map(|u| u.email.as_str()).collect();
    assert!(emails.contains(&"new@example.com") && emails.contains(&"other@example.com"));
    Ok(())
}

#[tokio::test]
async fn an_email_cognito_cannot_take_settles_instead_of_failing_forever() -> anyhow::Result<()> {
    let stripe = Stripe::start().await?;
    let deps = deps(&stripe, AccessPolicy::default())?;
    // Valid as an address (64-character local part), too long for a Cognito username (128).
    let long = format!("{}@{}.example.com", "a".repeat(64), "b".repeat(63));
    assert!(long.len() > 128 && Email::parse(&long).is_ok());
    let session = link_purchase(&stripe, "creditgate_basic_pack", &long, None).await?;
    let events = stripe.events().await?;
    let completed = events
        .iter()
        .find(|e| e.contains("\"checkout.session.completed\""))
        .cloned()
        .unwrap_or_default();
    let (status, body) = deliver(&deps, &completed).await?;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["ignored"]
            .as_str()
            .is_some_and(|r| r.contains("longer than a Cognito username")),
        "{body}"
    );
    let (status, body) = deliver(&deps, &completed).await?;
    assert_eq!(
        (status, &body["duplicate"]),
        (200, &Value::Bool(true)),
        "settled"
    );
    assert_eq!(
        deps.lifecycle
            .store
            .customer_owner(&customer_of(&session)?)
            .await?,
        None
    );
    assert!(
        deps.lifecycle
            .directory
            .users
            .lock()
            .is_ok_and(|u| u.is_empty())
    );
    Ok(())
}
