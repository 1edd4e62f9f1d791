//! Handler tests: the real stripe-emulator in process, in-memory DynamoDB/Cognito/Step Functions.
//!
//! Packs and pay-first buyers: grants, refunds and disputes.

mod support;

use domain::lifecycle::AccessPolicy;
use support::handler::*;
use support::*;

#[tokio::test]
async fn a_pack_grants_once_and_a_refund_or_dispute_revokes_never_below_zero() -> anyhow::Result<()>
{
    let stripe = Stripe::start().await?;
    let deps = deps(&stripe, AccessPolicy::default())?;
    let customer = stripe.customer("ada@example.com").await?;
    sign_up(&deps, "user-1", "ada@example.com", &customer).await?;
    let session = stripe
        .checkout(
            Some(&customer),
            Some("user-1"),
            "creditgate_basic_pack",
            None,
        )
        .await?;
    let events = stripe.events().await?;
    deliver_all(&deps, &events).await?;
    deliver_all(&deps, &events).await?;
    assert_eq!(profile(&deps, "user-1").await?.purchased.get(), 1_000);

    // Half refunded: half the credits go.
    let pi = session["payment_intent"].as_str().unwrap_or_default();
    stripe
        .call(
            "POST",
            "/v1/refunds",
            &format!("payment_intent={pi}&amount=250"),
        )
        .await?;
    let seen = events.len();
    deliver_all(&deps, &stripe.events().await?[seen..]).await?;
    assert_eq!(profile(&deps, "user-1").await?.purchased.get(), 500);

    // Spent down to 100, then disputed: the rest goes, not below zero.
    {
        let mut profiles = deps
            .lifecycle
            .store
            .profiles
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        if let Some(p) = profiles.get_mut("user-1") {
            p.purchased = domain::ids::Credits::new(100);
        }
    }
    let intent = stripe
        .call("GET", &format!("/v1/payment_intents/{pi}"), "")
        .await?;
    let charge = intent["latest_charge"].as_str().unwrap_or_default();
    let seen = stripe.events().await?.len();
    stripe
        .call("POST", &format!("/_emulator/charges/{charge}/dispute"), "")
        .await?;
    deliver_all(&deps, &stripe.events().await?[seen..]).await?;
    assert_eq!(profile(&deps, "user-1").await?.purchased.get(), 0);
    let pack = deps
        .lifecycle
        .store
        .packs
        .lock()
        .ok()
        .and_then(|p| p.values().next().cloned());
    let pack = pack.ok_or_else(|| anyhow::anyhow!("no pack record"))?;
    assert_eq!((pack.revoked.get(), pack.removed.get()), (1_000, 600));
    Ok(())
}

#[tokio::test]
async fn a_pay_first_buyer_gets_a_cognito_user_a_profile_and_the_credits() -> anyhow::Result<()> {
    let stripe = Stripe::start().await?;
    let deps = deps(&stripe, AccessPolicy::default())?;
    stripe
        .checkout(
            None,
            None,
            "creditgate_basic_subscription",
            Some("grace@example.com"),
        )
        .await?;
    deliver_all(&deps, &stripe.events().await?).await?;
    let users = deps
        .lifecycle
        .directory
        .users
        .lock()
        .map(|u| u.clone())
        .unwrap_or_default();
    assert_eq!(users.len(), 1);
    let (sub, user) = users
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("no user"))?;
    assert_eq!(user.email, "grace@example.com");
    let p = profile(&deps, &sub).await?;
    assert_eq!((p.plan.as_str(), p.allowance.get()), ("basic", 1_000));
    assert_eq!(user.plan.as_deref(), Some("basic"));
    Ok(())
}

#[tokio::test]
async fn a_refund_delivered_before_its_checkout_completion_grants_the_pack_net_of_it()
-> anyhow::Result<()> {
    let stripe = Stripe::start().await?;
    let deps = deps(&stripe, AccessPolicy::default())?;
    let customer = stripe.customer("ada@example.com").await?;
    sign_up(&deps, "user-1", "ada@example.com", &customer).await?;
    let session = stripe
        .checkout(
            Some(&customer),
            Some("user-1"),
            "creditgate_basic_pack",
            None,
        )
        .await?;
    let pi = session["payment_intent"].as_str().unwrap_or_default();
    stripe
        .call(
            "POST",
            "/v1/refunds",
            &format!("payment_intent={pi}&amount=100"),
        )
        .await?;
    let events = stripe.events().await?;
    let refunded = events
        .iter()
        .find(|e| e.contains("\"charge.refunded\""))
        .cloned()
        .unwrap_or_default();
    let (status, body) = deliver(&deps, &refunded).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        profile(&deps, "user-1").await?.purchased.get(),
        800,
        "1,000 less 20% refunded"
    );
    deliver_all(&deps, &events).await?;
    assert_eq!(
        profile(&deps, "user-1").await?.purchased.get(),
        800,
        "granted once"
    );
    Ok(())
}
