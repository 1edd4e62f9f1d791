//! The `Billing` port's contract, run against the real adapter on an in-process stripe-emulator
//! and against the `FakeBilling` the handler tests use, so the fake cannot drift: one customer
//! per idempotency key however often it is asked, another key another customer, and the same
//! key with other parameters refused (Stripe's `idempotency_error`), never a silent reuse.

use adapters::fakes::FakeBilling;
use adapters::secrets::{FixedSecret, SourceOptions, StripeSecretSource};
use adapters::stripe_api::StripeBilling;
use domain::ids::{Email, UserSub};
use domain::ports::Billing;

const KEY: &str = "sk_test_billing_contract";

#[tokio::test]
async fn the_stripe_adapter_on_the_emulator_keeps_the_billing_contract() -> anyhow::Result<()> {
    let base = stripe_emulator::spawn(stripe_emulator::Emulator::new(KEY)).await?;
    let source =
        StripeSecretSource::with_options(FixedSecret::of(KEY, &[]), SourceOptions::new(Some(base)));
    contract(&StripeBilling::new(source)).await
}

#[tokio::test]
async fn the_fake_billing_keeps_the_same_contract() -> anyhow::Result<()> {
    contract(&FakeBilling::default()).await
}

async fn contract(billing: &impl Billing) -> anyhow::Result<()> {
    let ada = UserSub::parse("11111111-1111-4111-8111-111111111111")?;
    let grace = UserSub::parse("22222222-2222-4222-8222-222222222222")?;
    let ada_email = Email::parse("ada@example.com")?;
    let grace_email = Email::parse("grace@example.com")?;

    let first = billing
        .create_customer(&ada, &ada_email, "creditgate-signup-ada")
        .await?;
    let again = billing
        .create_customer(&ada, &ada_email, "creditgate-signup-ada")
        .await?;
    assert_eq!(first, again, "the same key: the same customer");
    let other = billing
        .create_customer(&grace, &grace_email, "creditgate-signup-grace")
        .await?;
    assert_ne!(first, other, "another key: another customer");
    let misused = billing
        .create_customer(&grace, &grace_email, "creditgate-signup-ada")
        .await;
    assert!(
        misused.is_err(),
        "the same key with other parameters is refused: {misused:?}"
    );
    Ok(())
}
