//! The `StripeReads` port's contract, run against the real adapter (`StripeState`) on an
//! in-process stripe-emulator and against the `FakeStripe` the handler tests use, so the fake
//! cannot drift:
//! - Unknown ids read as `None` (an unknown customer has no paid packs), never an error.
//! - `checkout_session`: mode, paid (only once complete; a trial needs no payment), customer,
//!   client reference, the buyer's email once paid, the subscription or payment intent it
//!   made, and its line item's lookup key.
//! - `subscription`: customer, status (trialing for a trial), lookup key and price, period,
//!   the cancel flag and the latest invoice, paid.
//! - `session_for_payment`, `payment_charge`, `charge`: a pack's payment intent leads to its
//!   session and charge, whose refunded amount and dispute follow what happened.
//! - `paid_pack_sessions`: only the complete, paid, payment-mode sessions of that customer.
//! - `events_since`: every event from `since` on, oldest first, as a webhook receives it (the
//!   same JSON `event_payload` gives), the handled types in the order things happened; with
//!   `undelivered_only`, only those whose delivery has not succeeded; a price change and each
//!   cancellation read back and listed as the subscription's events.

mod stripe_world;

use domain::catalogue::SaleMode;
use domain::facts::SubStatus;
use domain::ids::{
    ChargeId, CheckoutSessionId, Email, PaymentIntentId, StripeCustomerId, SubscriptionId,
};
use domain::ports::{Payments, SessionFacts, SessionMode, StripeReads};
use domain::stripe_events::HANDLED_TYPES;
use serde_json::Value;
use stripe_world::{Emulated, Fake, World, buy, session_request};

#[tokio::test]
async fn the_stripe_adapter_on_the_emulator_keeps_the_reads_contract() -> anyhow::Result<()> {
    contract(&Emulated::start().await?).await
}

#[tokio::test]
async fn the_fake_stripe_keeps_the_same_reads_contract() -> anyhow::Result<()> {
    contract(&Fake::start()?).await
}

const ADA: &str = "11111111-1111-4111-8111-111111111111";
const BOB: &str = "22222222-2222-4222-8222-222222222222";

async fn session(stripe: &impl StripeReads, id: &str) -> anyhow::Result<SessionFacts> {
    stripe
        .checkout_session(&CheckoutSessionId::parse(id)?)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no session {id}"))
}

/// Every event from `since`, parsed.
async fn events(
    stripe: &impl StripeReads,
    since: i64,
    undelivered: bool,
) -> anyhow::Result<Vec<Value>> {
    stripe
        .events_since(since, undelivered)
        .await?
        .iter()
        .map(|p| Ok(serde_json::from_str(p)?))
        .collect()
}

/// (type, data.object.id) of the events creditgate handles.
fn handled(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .filter(|e| HANDLED_TYPES.contains(&e["type"].as_str().unwrap_or_default()))
        .map(|e| {
            (
                e["type"].as_str().unwrap_or_default().to_owned(),
                e["data"]["object"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

fn pair(kind: &str, id: &str) -> (String, String) {
    (kind.to_owned(), id.to_owned())
}

async fn contract(world: &impl World) -> anyhow::Result<()> {
    let stripe = world.stripe();
    let nobody = StripeCustomerId::parse("cus_nobody0")?;

    // Unknown ids.
    assert_eq!(
        stripe
            .subscription(&SubscriptionId::parse("sub_nope")?)
            .await?,
        None
    );
    assert_eq!(
        stripe
            .checkout_session(&CheckoutSessionId::parse("cs_test_nope")?)
            .await?,
        None
    );
    assert_eq!(stripe.charge(&ChargeId::parse("ch_nope")?).await?, None);
    let nope = PaymentIntentId::parse("pi_nope")?;
    assert_eq!(stripe.session_for_payment(&nope).await?, None);
    assert_eq!(stripe.payment_charge(&nope).await?, None);
    assert_eq!(stripe.event_payload("evt_nope").await?, None);
    assert_eq!(
        stripe.paid_pack_sessions(&nobody).await?,
        Vec::<String>::new()
    );

    let ada = world.customer("ada@example.com").await?;
    let bob = world.customer("bob@example.com").await?;
    assert_eq!(stripe.paid_pack_sessions(&ada).await?, Vec::<String>::new());
    assert_eq!(
        stripe.events_since(0, true).await?,
        Vec::<String>::new(),
        "no endpoint: nothing waits for delivery"
    );

    // A pack: open, then paid; its payment, charge, refund and dispute.
    let basic_pack = session_request(ADA, &ada, "basic", SaleMode::Pack, 0, "pack-1")?;
    let pack1 = stripe.create_checkout_session(&basic_pack).await?.id;
    let open = session(stripe, &pack1).await?;
    assert_eq!(
        open,
        SessionFacts {
            id: pack1.clone(),
            mode: SessionMode::Payment,
            paid: false,
            customer: Some(ada.clone()),
            client_reference_id: Some(ADA.into()),
            email: None,
            subscription: None,
            payment_intent: None,
            items: vec![(Some("creditgate_basic_pack".into()), 1)],
        }
    );
    world.complete(&pack1).await?;
    let paid = session(stripe, &pack1).await?;
    let pi = paid
        .payment_intent
        .clone()
        .ok_or_else(|| anyhow::anyhow!("a paid pack has a payment intent"))?;
    assert_eq!(
        paid,
        SessionFacts {
            paid: true,
            email: Some(Email::parse("ada@example.com")?),
            payment_intent: Some(pi.clone()),
            ..open
        }
    );
    assert_eq!(stripe.session_for_payment(&pi).await?, Some(pack1.clone()));
    let charge = stripe
        .payment_charge(&pi)
        .await?
        .ok_or_else(|| anyhow::anyhow!("a paid pack has a charge"))?;
    assert_eq!(
        (
            charge.customer.as_ref(),
            charge.payment_intent.as_deref(),
            charge.amount,
            charge.amount_refunded,
            charge.disputed
        ),
        (Some(&ada), Some(pi.as_str()), 500, 0, false)
    );
    assert_eq!(stripe.charge(&charge.id).await?, Some(charge.clone()));
    world.refund(&charge.id, 200).await?;
    world.dispute(&charge.id).await?;
    let after = stripe.charge(&charge.id).await?;
    assert_eq!(
        after.as_ref().map(|c| (c.amount_refunded, c.disputed)),
        Some((200, true)),
        "{after:?}"
    );
    assert_eq!(stripe.payment_charge(&pi).await?, after);

    let phase_one = events(stripe, 0, false).await?;
    world.advance(86_400).await?;

    // Subscriptions: paid now, and a trial.
    let sub_session = buy(
        world,
        &session_request(ADA, &ada, "basic", SaleMode::Subscription, 0, "sub-ada")?,
    )
    .await?;
    let facts = session(stripe, &sub_session).await?;
    let sub = facts
        .subscription
        .clone()
        .ok_or_else(|| anyhow::anyhow!("a subscription session made a subscription"))?;
    assert_eq!(
        (
            facts.mode,
            facts.paid,
            facts.payment_intent.as_deref(),
            facts.items.clone()
        ),
        (
            SessionMode::Subscription,
            true,
            None,
            vec![(Some("creditgate_basic_subscription".into()), 1)]
        )
    );
    let s = stripe
        .subscription(&sub)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no subscription {sub}"))?;
    assert_eq!(
        (
            s.customer.clone(),
            s.status,
            s.lookup_key.as_deref(),
            s.cancel_at_period_end,
            s.latest_invoice.as_ref().map(|i| i.paid),
            s.chosen
        ),
        (
            ada.clone(),
            SubStatus::Active,
            Some("creditgate_basic_subscription"),
            false,
            Some(true),
            false
        )
    );
    assert!(s.price.starts_with("price_"), "{s:?}");
    assert!(s.current_period_end > s.created, "{s:?}");
    assert!(
        s.latest_invoice
            .as_ref()
            .is_some_and(|i| i.id.starts_with("in_") && i.created >= s.created),
        "{s:?}"
    );
    let trial_session = buy(
        world,
        &session_request(BOB, &bob, "power", SaleMode::Subscription, 7, "sub-bob")?,
    )
    .await?;
    let trial_facts = session(stripe, &trial_session).await?;
    assert!(
        trial_facts.paid,
        "a trial needs no payment: {trial_facts:?}"
    );
    let trial = stripe
        .subscription(
            trial_facts
                .subscription
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("the trial session has no subscription"))?,
        )
        .await?
        .ok_or_else(|| anyhow::anyhow!("no trial subscription"))?;
    assert_eq!(
        (
            trial.status,
            trial.current_period_end - trial.created,
            trial.latest_invoice.map(|i| i.paid)
        ),
        (SubStatus::Trialing, 7 * 86_400, Some(true))
    );

    // Paid packs: only complete, paid, payment-mode sessions of that customer.
    let pack2 = buy(
        world,
        &session_request(ADA, &ada, "power", SaleMode::Pack, 0, "pack-2")?,
    )
    .await?;
    let _open = stripe
        .create_checkout_session(&session_request(
            ADA,
            &ada,
            "power",
            SaleMode::Pack,
            0,
            "pack-3",
        )?)
        .await?;
    let bob_pack = buy(
        world,
        &session_request(BOB, &bob, "basic", SaleMode::Pack, 0, "pack-4")?,
    )
    .await?;
    let mut packs: Vec<String> = stripe
        .paid_pack_sessions(&ada)
        .await?
        .iter()
        .map(|s| s.to_string())
        .collect();
    packs.sort();
    let mut expected = vec![pack1.to_string(), pack2.to_string()];
    expected.sort();
    assert_eq!(
        packs, expected,
        "ada's paid packs, not her subscription or open session"
    );
    assert_eq!(
        stripe.paid_pack_sessions(&bob).await?,
        vec![bob_pack.clone()]
    );

    // Events: oldest first, as webhooks receive them.
    let all = events(stripe, 0, false).await?;
    let created: Vec<i64> = all
        .iter()
        .map(|e| e["created"].as_i64().unwrap_or(-1))
        .collect();
    assert!(
        created.windows(2).all(|w| w[0] <= w[1]),
        "oldest first: {created:?}"
    );
    for e in &all {
        assert!(
            e["id"].as_str().is_some_and(|id| id.starts_with("evt_")),
            "{e}"
        );
        assert_eq!(e["object"], "event");
        let again = stripe
            .event_payload(e["id"].as_str().unwrap_or_default())
            .await?
            .map(|p| serde_json::from_str::<Value>(&p))
            .transpose()?;
        assert_eq!(
            again.as_ref(),
            Some(e),
            "event_payload gives what events_since listed"
        );
    }
    assert_eq!(
        all[..phase_one.len()],
        phase_one[..],
        "the first day's events are as they were"
    );
    let first_sub = stripe.subscription(&sub).await?.map(|s| s.latest_invoice);
    let invoice = first_sub
        .flatten()
        .map(|i| i.id.to_string())
        .unwrap_or_default();
    let trial_invoice = stripe
        .subscription(&trial.id)
        .await?
        .and_then(|s| s.latest_invoice)
        .map(|i| i.id.to_string())
        .unwrap_or_default();
    let dispute = all
        .iter()
        .find(|e| e["type"] == "charge.dispute.created")
        .map(|e| &e["data"]["object"]);
    assert_eq!(
        dispute.map(|d| &d["charge"]),
        Some(&Value::String(charge.id.to_string())),
        "the dispute names its charge: {dispute:?}"
    );
    let dispute = dispute
        .and_then(|d| d["id"].as_str())
        .filter(|id| id.starts_with("du_"))
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        handled(&all),
        vec![
            pair("checkout.session.completed", &pack1),
            pair("charge.refunded", &charge.id),
            pair("charge.dispute.created", &dispute),
            pair("customer.subscription.created", &sub),
            pair("invoice.paid", &invoice),
            pair("invoice.payment_succeeded", &invoice),
            pair("checkout.session.completed", &sub_session),
            pair("customer.subscription.created", &trial.id),
            pair("invoice.paid", &trial_invoice),
            pair("invoice.payment_succeeded", &trial_invoice),
            pair("checkout.session.completed", &trial_session),
            pair("checkout.session.completed", &pack2),
            pair("checkout.session.completed", &bob_pack),
        ]
    );
    let second_day = all[phase_one.len()]["created"].as_i64().unwrap_or_default();
    assert_eq!(
        events(stripe, second_day, false).await?,
        all[phase_one.len()..].to_vec(),
        "from a time on: only what happened since"
    );
    let last = created.last().copied().unwrap_or_default();
    assert_eq!(events(stripe, last + 1, false).await?, Vec::<Value>::new());
    assert_eq!(
        events(stripe, 0, true).await?,
        Vec::<Value>::new(),
        "all delivered"
    );

    // Undelivered: only what happened while the endpoint did not answer.
    world.webhook_down().await?;
    let pack5 = buy(
        world,
        &session_request(BOB, &bob, "power", SaleMode::Pack, 0, "pack-5")?,
    )
    .await?;
    let waiting = events(stripe, 0, true).await?;
    let kinds: Vec<&str> = waiting
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        kinds,
        vec![
            "payment_intent.created",
            "charge.succeeded",
            "payment_intent.succeeded",
            "checkout.session.completed"
        ]
    );
    assert_eq!(waiting[3]["data"]["object"]["id"], pack5.as_str());
    let everything = events(stripe, 0, false).await?;
    assert_eq!(everything[..all.len()], all[..]);
    assert_eq!(everything[all.len()..], waiting[..]);

    // What the payments do is read back, and each is an event.
    stripe
        .change_subscription_price(&sub, "creditgate_power_subscription", "chg-ada")
        .await?;
    assert_eq!(
        stripe.subscription(&sub).await?.and_then(|s| s.lookup_key),
        Some("creditgate_power_subscription".to_owned())
    );
    stripe.cancel_subscription(&sub, true).await?;
    assert_eq!(
        stripe
            .subscription(&sub)
            .await?
            .map(|s| (s.status, s.cancel_at_period_end)),
        Some((SubStatus::Active, true))
    );
    stripe.cancel_subscription(&sub, false).await?;
    stripe.cancel_duplicate(&trial.id).await?;
    for id in [&sub, &trial.id] {
        assert_eq!(
            stripe.subscription(id).await?.map(|s| s.status),
            Some(SubStatus::Canceled),
            "{id}"
        );
    }
    let latest = events(stripe, 0, false).await?;
    assert_eq!(
        handled(&latest[everything.len()..]),
        vec![
            pair("customer.subscription.updated", &sub),
            pair("customer.subscription.updated", &sub),
            pair("customer.subscription.deleted", &sub),
            pair("customer.subscription.deleted", &trial.id),
        ]
    );
    Ok(())
}
