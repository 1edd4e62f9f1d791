//! The `Payments` port's contract, run against the real adapter (`StripeState`) on an
//! in-process stripe-emulator and against the `FakeStripe` the handler tests use, so the fake
//! cannot drift:
//! - Checkout Sessions: one per idempotency key however often asked, another key another
//!   session, the same key with another request refused as a key reused; an unknown lookup
//!   key, an unknown customer, a price of the other kind (a pack sold as a subscription), or
//!   an idempotency key that is empty or longer than 255 characters is an error.
//! - `live_subscriptions`: only the live subscriptions of the customers asked about, per
//!   customer, with status (a trial is trialing), lookup key, period end and the cancel flag.
//! - `change_subscription_price`: the subscription bills the new lookup key; the same key
//!   again is a replay, with another price refused; an unknown lookup key, a one-time price,
//!   an unknown or canceled subscription are errors.
//! - `cancel_subscription`: at period end flags it and leaves it live (twice is fine); now ends
//!   it; a canceled or unknown one is an error; flagged, it ends when its period does.
//! - `cancel_duplicate`: ends it now; again, or on one already canceled another way, is Ok; an
//!   unknown one is an error.
//! - `portal_session`: a URL for a known customer, an error for an unknown one.

mod stripe_world;

use domain::catalogue::SaleMode;
use domain::facts::SubStatus;
use domain::ids::{StripeCustomerId, SubscriptionId};
use domain::ports::{LiveSubscription, Payments, Refusal};
use stripe_world::{Emulated, Fake, World, buy, session_request};

#[tokio::test]
async fn the_stripe_adapter_on_the_emulator_keeps_the_payments_contract() -> anyhow::Result<()> {
    contract(&Emulated::start().await?).await?;
    period_end(&Emulated::start().await?).await
}

#[tokio::test]
async fn the_fake_stripe_keeps_the_same_payments_contract() -> anyhow::Result<()> {
    contract(&Fake::start()?).await?;
    period_end(&Fake::start()?).await
}

const ADA: &str = "11111111-1111-4111-8111-111111111111";
const GRACE: &str = "22222222-2222-4222-8222-222222222222";

async fn live(
    stripe: &impl Payments,
    customers: &[&StripeCustomerId],
) -> anyhow::Result<Vec<LiveSubscription>> {
    let customers: Vec<StripeCustomerId> = customers.iter().map(|c| (*c).clone()).collect();
    Ok(stripe.live_subscriptions(&customers).await?)
}

/// The one live subscription of `customer`.
async fn only(
    stripe: &impl Payments,
    customer: &StripeCustomerId,
) -> anyhow::Result<LiveSubscription> {
    let mut all = live(stripe, &[customer]).await?;
    anyhow::ensure!(all.len() == 1, "{customer}: {all:?}");
    all.pop().ok_or_else(|| anyhow::anyhow!("none"))
}

async fn contract(world: &impl World) -> anyhow::Result<()> {
    let stripe = world.stripe();
    let ada = world.customer("ada@example.com").await?;
    let grace = world.customer("grace@example.com").await?;
    let carol = world.customer("carol@example.com").await?;
    let nobody = StripeCustomerId::parse("cus_nobody0")?;

    // Checkout Sessions and their idempotency keys.
    let pack = session_request(ADA, &ada, "basic", SaleMode::Pack, 0, "cs-key-1")?;
    let first = stripe.create_checkout_session(&pack).await?;
    assert!(first.id.starts_with("cs_"), "{first:?}");
    assert!(first.url.starts_with("https://"), "{first:?}");
    let again = stripe.create_checkout_session(&pack).await?;
    assert_eq!(again, first, "the same key and request: the same session");
    let other = stripe
        .create_checkout_session(&session_request(
            ADA,
            &ada,
            "basic",
            SaleMode::Pack,
            0,
            "cs-key-2",
        )?)
        .await?;
    assert_ne!(other.id, first.id, "another key: another session");
    let reused = stripe
        .create_checkout_session(&session_request(
            ADA,
            &ada,
            "power",
            SaleMode::Pack,
            0,
            "cs-key-1",
        )?)
        .await;
    assert_eq!(
        reused.as_ref().err().and_then(|e| e.refused.clone()),
        Some(Refusal::IdempotencyKeyReused),
        "the same key for another request: {reused:?}"
    );
    let mut gold = session_request(ADA, &ada, "basic", SaleMode::Pack, 0, "cs-key-3")?;
    gold.lookup_key = "creditgate_gold_pack".into();
    let unknown_price = stripe.create_checkout_session(&gold).await;
    assert!(
        unknown_price.as_ref().is_err_and(|e| e.refused.is_none()),
        "an unknown lookup key: {unknown_price:?}"
    );
    let unknown_customer = stripe
        .create_checkout_session(&session_request(
            ADA,
            &nobody,
            "basic",
            SaleMode::Pack,
            0,
            "cs-key-4",
        )?)
        .await;
    assert!(
        unknown_customer.is_err(),
        "an unknown customer: {unknown_customer:?}"
    );
    let mut wrong_kind =
        session_request(ADA, &ada, "basic", SaleMode::Subscription, 0, "cs-key-5")?;
    wrong_kind.lookup_key = "creditgate_basic_pack".into();
    let wrong_kind = stripe.create_checkout_session(&wrong_kind).await;
    assert!(
        wrong_kind.is_err(),
        "a one-time price in subscription mode: {wrong_kind:?}"
    );

    let long = "k".repeat(256);
    for key in ["", long.as_str()] {
        let result = stripe
            .create_checkout_session(&session_request(
                ADA,
                &ada,
                "basic",
                SaleMode::Pack,
                0,
                key,
            )?)
            .await;
        assert!(
            result.is_err(),
            "an idempotency key of {} characters: {result:?}",
            key.len()
        );
    }

    // Live subscriptions: only the live ones of the customers asked about.
    assert_eq!(live(stripe, &[]).await?, vec![]);
    assert_eq!(live(stripe, &[&ada, &grace, &nobody]).await?, vec![]);
    buy(
        world,
        &session_request(ADA, &ada, "basic", SaleMode::Subscription, 0, "sub-ada")?,
    )
    .await?;
    buy(
        world,
        &session_request(
            GRACE,
            &grace,
            "power",
            SaleMode::Subscription,
            7,
            "sub-grace",
        )?,
    )
    .await?;
    buy(
        world,
        &session_request(ADA, &carol, "basic", SaleMode::Subscription, 0, "sub-carol")?,
    )
    .await?;
    let both = live(stripe, &[&ada, &grace]).await?;
    let seen: Vec<_> = both
        .iter()
        .map(|s| {
            (
                s.customer.clone(),
                s.status,
                s.lookup_key.as_deref(),
                s.cancel_at_period_end,
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (
                ada.clone(),
                SubStatus::Active,
                Some("creditgate_basic_subscription"),
                false
            ),
            (
                grace.clone(),
                SubStatus::Trialing,
                Some("creditgate_power_subscription"),
                false
            ),
        ],
        "in the order of the customers asked about; carol's is not theirs"
    );
    for s in &both {
        assert!(
            s.id.starts_with("sub_") && s.current_period_end > s.created && s.created > 0,
            "{s:?}"
        );
    }
    assert_eq!(
        both[1].current_period_end - both[1].created,
        7 * 86_400,
        "a trial's period is the trial"
    );
    let ada_sub = both[0].id.clone();
    let grace_sub = both[1].id.clone();

    // Plan changes in place.
    stripe
        .change_subscription_price(&ada_sub, "creditgate_power_subscription", "chg-1")
        .await?;
    assert_eq!(
        only(stripe, &ada).await?.lookup_key.as_deref(),
        Some("creditgate_power_subscription")
    );
    stripe
        .change_subscription_price(&ada_sub, "creditgate_power_subscription", "chg-1")
        .await?;
    let reused = stripe
        .change_subscription_price(&ada_sub, "creditgate_basic_subscription", "chg-1")
        .await;
    assert_eq!(
        reused.as_ref().err().and_then(|e| e.refused.clone()),
        Some(Refusal::IdempotencyKeyReused),
        "{reused:?}"
    );
    for (lookup_key, what) in [
        ("creditgate_gold_subscription", "an unknown lookup key"),
        ("creditgate_basic_pack", "a one-time price"),
    ] {
        let result = stripe
            .change_subscription_price(&ada_sub, lookup_key, &format!("chg-{lookup_key}"))
            .await;
        assert!(result.is_err(), "{what}: {result:?}");
    }
    let result = stripe
        .change_subscription_price(
            &SubscriptionId::parse("sub_nope")?,
            "creditgate_basic_subscription",
            "chg-nope",
        )
        .await;
    assert!(result.is_err(), "an unknown subscription: {result:?}");
    assert_eq!(
        only(stripe, &ada).await?.lookup_key.as_deref(),
        Some("creditgate_power_subscription"),
        "no refused change changed it"
    );

    // Cancelling at period end, then now.
    stripe.cancel_subscription(&ada_sub, true).await?;
    let flagged = only(stripe, &ada).await?;
    assert_eq!(
        (flagged.status, flagged.cancel_at_period_end),
        (SubStatus::Active, true),
        "flagged, still live"
    );
    stripe.cancel_subscription(&ada_sub, true).await?;
    assert_eq!(
        only(stripe, &ada).await?,
        flagged,
        "flagging twice changes nothing"
    );
    stripe.cancel_subscription(&ada_sub, false).await?;
    assert_eq!(
        live(stripe, &[&ada]).await?,
        vec![],
        "canceled now: not live"
    );
    for at_period_end in [false, true] {
        let result = stripe.cancel_subscription(&ada_sub, at_period_end).await;
        assert!(
            result.is_err(),
            "cancelling a canceled one ({at_period_end}): {result:?}"
        );
    }
    let result = stripe
        .cancel_subscription(&SubscriptionId::parse("sub_nope")?, false)
        .await;
    assert!(result.is_err(), "an unknown subscription: {result:?}");
    let result = stripe
        .change_subscription_price(&ada_sub, "creditgate_basic_subscription", "chg-canceled")
        .await;
    assert!(result.is_err(), "changing a canceled one: {result:?}");

    // Cancelling a duplicate: idempotent.
    stripe.cancel_duplicate(&grace_sub).await?;
    assert_eq!(live(stripe, &[&grace]).await?, vec![]);
    stripe.cancel_duplicate(&grace_sub).await?;
    stripe.cancel_duplicate(&ada_sub).await?;
    let result = stripe
        .cancel_duplicate(&SubscriptionId::parse("sub_nope")?)
        .await;
    assert!(result.is_err(), "an unknown subscription: {result:?}");
    assert_eq!(
        live(stripe, &[&carol]).await?.len(),
        1,
        "nobody else's subscription was touched"
    );

    // The billing portal.
    let url = stripe
        .portal_session(&ada, "https://app.example.com/account")
        .await?;
    assert!(url.starts_with("https://"), "{url}");
    let result = stripe
        .portal_session(&nobody, "https://app.example.com/account")
        .await;
    assert!(result.is_err(), "an unknown customer: {result:?}");
    Ok(())
}

/// A subscription flagged to cancel at period end ends when its period does (on a Stripe of its
/// own: the emulator renews whatever else reaches its period end, which the fake does not play).
async fn period_end(world: &impl World) -> anyhow::Result<()> {
    let stripe = world.stripe();
    let ada = world.customer("ada@example.com").await?;
    buy(
        world,
        &session_request(ADA, &ada, "basic", SaleMode::Subscription, 0, "sub-ada")?,
    )
    .await?;
    let sub = only(stripe, &ada).await?;
    stripe.cancel_subscription(&sub.id, true).await?;
    world.advance(86_400).await?;
    assert!(
        only(stripe, &ada).await?.cancel_at_period_end,
        "a day later: still live"
    );
    world.advance(40 * 86_400).await?;
    assert_eq!(
        live(stripe, &[&ada]).await?,
        vec![],
        "past its period end: canceled"
    );
    Ok(())
}
