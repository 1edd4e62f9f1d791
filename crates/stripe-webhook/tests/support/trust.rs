//! The trust tests' helpers (tests/trust_*.rs): purchases as a signed-in user and as a Payment
//! Link buyer, deliveries, claims.

use super::*;
use domain::account::{CheckoutOutcome, CheckoutUrls, start_checkout};
use domain::catalogue::SaleMode;
use domain::ids::{CheckoutSessionId, Email, StripeCustomerId, UserSub};
use domain::lifecycle::{ClaimError, Handled};
use serde_json::Value;

/// Delivers every event after `seen` (and moves `seen` on); each must answer 200.
pub async fn deliver_new(deps: &TestDeps, stripe: &Stripe, seen: &mut usize) -> anyhow::Result<()> {
    let events = stripe.events().await?;
    for e in &events[(*seen).min(events.len())..] {
        let (status, body) = deliver(deps, e).await?;
        anyhow::ensure!(status == 200, "{status}: {body} for {e}");
    }
    *seen = events.len();
    Ok(())
}

/// What a signed-in user gets from create-session: a session for her own customer (or a change
/// in place), completed in the emulator as the buyer would.
pub async fn own_purchase(
    stripe: &Stripe,
    deps: &TestDeps,
    sub: &str,
    plan: &str,
    mode: SaleMode,
) -> anyhow::Result<CheckoutOutcome> {
    let urls = CheckoutUrls {
        success: "https://app.example.com/ok".into(),
        cancel: "https://app.example.com/cancel".into(),
    };
    let outcome = start_checkout(
        &deps.lifecycle.store,
        &deps.lifecycle.stripe,
        &deps.lifecycle.catalogue,
        &UserSub::parse(sub)?,
        plan,
        mode,
        &urls,
        &format!("creditgate-checkout-{sub}-{:032x}", rand::random::<u128>()),
    )
    .await?;
    if let CheckoutOutcome::Session(session) = &outcome {
        stripe
            .call(
                "POST",
                &format!("/_emulator/checkout/sessions/{}/complete", session.id),
                "",
            )
            .await?;
    }
    Ok(outcome)
}

/// A Payment Link purchase: no customer; the buyer types the email and may set the reference.
pub async fn link_purchase(
    stripe: &Stripe,
    lookup_key: &str,
    email: &str,
    reference: Option<&str>,
) -> anyhow::Result<Value> {
    stripe
        .checkout(None, reference, lookup_key, Some(email))
        .await
}

/// Ada signs up and subscribes to Power herself.
pub async fn ada_on_power(stripe: &Stripe, deps: &TestDeps) -> anyhow::Result<(String, usize)> {
    let customer = stripe.customer("ada@example.com").await?;
    sign_up(deps, "ada", "ada@example.com", &customer).await?;
    own_purchase(stripe, deps, "ada", "power", SaleMode::Subscription).await?;
    let mut seen = 0;
    deliver_new(deps, stripe, &mut seen).await?;
    let p = profile(deps, "ada").await?;
    anyhow::ensure!(p.plan.as_str() == "power" && p.allowance.get() == 100_000);
    Ok((customer, seen))
}

/// The claim as `POST /purchases/claim` makes it, by `sub` whose ID token says `email` verified.
pub async fn claim(
    deps: &TestDeps,
    sub: &UserSub,
    email: &str,
    session: &str,
    replace: bool,
) -> Result<Handled, ClaimError> {
    let email = Email::parse(email)
        .map_err(|e| ClaimError::Handle(domain::lifecycle::HandleError::NotReady(e.to_string())))?;
    let session = CheckoutSessionId::parse(session)
        .map_err(|e| ClaimError::Handle(domain::lifecycle::HandleError::NotReady(e.to_string())))?;
    deps.lifecycle
        .claim_purchase(sub, &email, &session, replace, adapters::unix_now())
        .await
}

pub fn customer_of(session: &Value) -> anyhow::Result<StripeCustomerId> {
    Ok(StripeCustomerId::parse(
        session["customer"].as_str().unwrap_or_default(),
    )?)
}
