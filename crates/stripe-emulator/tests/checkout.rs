//! Checkout Sessions through async-stripe's client: both modes parse as `CheckoutSession`.

use std::collections::HashMap;

use stripe::{ClientBuilder, StripeError};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionSubscriptionData,
    ExpireCheckoutSession, RetrieveCheckoutSession,
};
use stripe_core::customer::CreateCustomer;
use stripe_product::price::{CreatePrice, CreatePriceRecurring, CreatePriceRecurringInterval};
use stripe_product::product::CreateProduct;
use stripe_shared::{CheckoutSessionMode, CheckoutSessionPaymentStatus, CheckoutSessionStatus};
use stripe_types::Currency;

mod common;

use common::{form, listen, next};
use stripe_webhook::{EventObject, Webhook};

const KEY: &str = "sk_test_emulator_checkout";

struct Setup {
    base: String,
    client: stripe::Client,
    customer: String,
    monthly: String,
    pack: String,
}

async fn setup() -> anyhow::Result<Setup> {
    let listener = stripe_emulator::bind(0).await?;
    let base = format!("http://{}/", listener.local_addr()?);
    tokio::spawn(stripe_emulator::serve(
        listener,
        stripe_emulator::Emulator::new(KEY),
    ));
    let client = ClientBuilder::new(KEY).url(base.clone()).build()?;
    CreateProduct::new("Basic")
        .id("creditgate_basic")
        .send(&client)
        .await?;
    let monthly = CreatePrice::new(Currency::GBP)
        .product("creditgate_basic")
        .unit_amount(500)
        .recurring(CreatePriceRecurring::new(
            CreatePriceRecurringInterval::Month,
        ))
        .send(&client)
        .await?;
    let pack = CreatePrice::new(Currency::GBP)
        .product("creditgate_basic")
        .unit_amount(500)
        .send(&client)
        .await?;
    let customer = CreateCustomer::new()
        .email("ada@example.com")
        .send(&client)
        .await?;
    Ok(Setup {
        base,
        client,
        customer: customer.id.to_string(),
        monthly: monthly.id.to_string(),
        pack: pack.id.to_string(),
    })
}

fn item(price: &str, quantity: u64) -> CreateCheckoutSessionLineItems {
    let mut item = CreateCheckoutSessionLineItems::new();
    item.price = Some(price.to_owned());
    item.quantity = Some(quantity);
    item
}

fn param_of(err: StripeError) -> Option<String> {
    match err {
        StripeError::Stripe(api, _) => api.param,
        other => panic!("expected a Stripe error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_payment_session_for_a_pack_is_created_retrieved_and_expired() -> anyhow::Result<()> {
    let s = setup().await?;
    let session = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Payment)
        .customer(s.customer.clone())
        .client_reference_id("sub-123")
        .line_items(vec![item(&s.pack, 2)])
        .metadata(HashMap::from([("plan".to_owned(), "basic".to_owned())]))
        .success_url("http://localhost/ok")
        .cancel_url("http://localhost/cancel")
        .send(&s.client)
        .await?;
    assert!(session.id.as_str().starts_with("cs_test_"));
    assert_eq!(session.mode, CheckoutSessionMode::Payment);
    assert_eq!(session.status, Some(CheckoutSessionStatus::Open));
    assert_eq!(session.payment_status, CheckoutSessionPaymentStatus::Unpaid);
    assert_eq!(session.amount_total, Some(1000));
    assert_eq!(session.client_reference_id.as_deref(), Some("sub-123"));
    assert!(session.url.is_some());

    let fetched = RetrieveCheckoutSession::new(session.id.clone())
        .send(&s.client)
        .await?;
    assert_eq!(
        fetched
            .metadata
            .as_ref()
            .and_then(|m| m.get("plan"))
            .map(String::as_str),
        Some("basic")
    );

    let expired = ExpireCheckoutSession::new(session.id.clone())
        .send(&s.client)
        .await?;
    assert_eq!(expired.status, Some(CheckoutSessionStatus::Expired));
    assert!(
        ExpireCheckoutSession::new(session.id.clone())
            .send(&s.client)
            .await
            .is_err()
    );
    Ok(())
}

#[tokio::test]
async fn a_subscription_session_keeps_its_subscription_data() -> anyhow::Result<()> {
    let s = setup().await?;
    let mut data = CreateCheckoutSessionSubscriptionData::new();
    data.trial_period_days = Some(7);
    data.metadata = Some(HashMap::from([("plan".to_owned(), "basic".to_owned())]));
    let session = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Subscription)
        .customer(s.customer.clone())
        .line_items(vec![item(&s.monthly, 1)])
        .subscription_data(data)
        .success_url("http://localhost/ok")
        .send(&s.client)
        .await?;
    assert_eq!(session.mode, CheckoutSessionMode::Subscription);
    assert_eq!(session.amount_total, Some(500));
    assert_eq!(session.currency, Some(Currency::GBP));
    Ok(())
}

#[tokio::test]
async fn mismatched_prices_and_missing_parameters_are_stripes_400s() -> anyhow::Result<()> {
    let s = setup().await?;
    let recurring_in_payment = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Payment)
        .line_items(vec![item(&s.monthly, 1)])
        .success_url("http://localhost/ok")
        .send(&s.client)
        .await;
    assert_eq!(
        recurring_in_payment.err().and_then(param_of).as_deref(),
        Some("line_items[0][price]")
    );

    let one_time_in_subscription = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Subscription)
        .line_items(vec![item(&s.pack, 1)])
        .success_url("http://localhost/ok")
        .send(&s.client)
        .await;
    assert_eq!(
        one_time_in_subscription.err().and_then(param_of).as_deref(),
        Some("line_items[0][price]")
    );

    let no_items = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Payment)
        .success_url("http://localhost/ok")
        .send(&s.client)
        .await;
    assert_eq!(
        no_items.err().and_then(param_of).as_deref(),
        Some("line_items")
    );

    let unknown_customer = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Payment)
        .customer("cus_nope")
        .line_items(vec![item(&s.pack, 1)])
        .success_url("http://localhost/ok")
        .send(&s.client)
        .await;
    assert_eq!(
        unknown_customer.err().and_then(param_of).as_deref(),
        Some("customer")
    );
    Ok(())
}

#[tokio::test]
async fn completing_a_pack_purchase_pays_it_and_emits_stripes_events_in_order() -> anyhow::Result<()>
{
    let s = setup().await?;
    let (secret, _, mut rx) = listen(
        KEY,
        &s.base,
        &[
            "checkout.session.completed",
            "charge.*",
            "payment_intent.*",
            "customer.created",
        ],
        vec![],
    )
    .await?;
    // A pay-first buyer: no customer on the session, only the email typed into Checkout.
    let mut with_metadata =
        stripe_checkout::checkout_session::CreateCheckoutSessionPaymentIntentData::new();
    with_metadata.metadata = Some(HashMap::from([("plan".to_owned(), "basic".to_owned())]));
    let session = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Payment)
        .line_items(vec![item(&s.pack, 1)])
        .payment_intent_data(with_metadata)
        .success_url("http://localhost/ok")
        .send(&s.client)
        .await?;
    let id = session.id.to_string();
    let done = form(
        KEY,
        &s.base,
        "POST",
        &format!("/_emulator/checkout/sessions/{id}/complete"),
        "email=buyer%40example.com",
    )
    .await?;
    assert_eq!(
        (done["status"].as_str(), done["payment_status"].as_str()),
        (Some("complete"), Some("paid")),
        "{done}"
    );

    let mut types = Vec::new();
    let mut intent_metadata = None;
    for _ in 0..5 {
        let got = next(&mut rx).await?;
        let event = Webhook::construct_event(&got.payload, &got.signature, &secret)?;
        types.push(event.type_.as_str().to_owned());
        match event.data.object {
            EventObject::CheckoutSessionCompleted(cs) => {
                assert_eq!(cs.id.as_str(), id);
                assert!(cs.customer.is_some());
            }
            EventObject::PaymentIntentSucceeded(pi) => {
                assert_eq!(pi.amount_received, 500);
                intent_metadata = pi.metadata.get("plan").cloned();
            }
            EventObject::ChargeSucceeded(ch) => assert!(ch.paid && ch.captured),
            _ => {}
        }
    }
    assert_eq!(
        types,
        [
            "customer.created",
            "payment_intent.created",
            "charge.succeeded",
            "payment_intent.succeeded",
            "checkout.session.completed"
        ]
    );
    assert_eq!(intent_metadata.as_deref(), Some("basic"));

    let fetched = RetrieveCheckoutSession::new(session.id.clone())
        .send(&s.client)
        .await?;
    assert_eq!(fetched.payment_status, CheckoutSessionPaymentStatus::Paid);
    let again = form(
        KEY,
        &s.base,
        "POST",
        &format!("/_emulator/checkout/sessions/{id}/complete"),
        "",
    )
    .await?;
    assert!(
        again["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("only open sessions")),
        "{again}"
    );
    Ok(())
}

async fn complete_subscription(
    trial_days: Option<u32>,
) -> anyhow::Result<(Vec<String>, Vec<stripe_webhook::Event>, serde_json::Value)> {
    let s = setup().await?;
    let (secret, _, mut rx) = listen(KEY, &s.base, &["*"], vec![]).await?;
    let mut data = CreateCheckoutSessionSubscriptionData::new();
    data.trial_period_days = trial_days;
    data.metadata = Some(HashMap::from([("plan".to_owned(), "basic".to_owned())]));
    let session = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Subscription)
        .customer(s.customer.clone())
        .client_reference_id("sub-xyz")
        .line_items(vec![item(&s.monthly, 1)])
        .subscription_data(data)
        .success_url("http://localhost/ok")
        .send(&s.client)
        .await?;
    let done = form(
        KEY,
        &s.base,
        "POST",
        &format!("/_emulator/checkout/sessions/{}/complete", session.id),
        "",
    )
    .await?;
    anyhow::ensure!(done["status"] == "complete", "{done}");
    // Everything emitted since setup: drain until checkout.session.completed.
    let mut types = Vec::new();
    let mut events = Vec::new();
    loop {
        let got = next(&mut rx).await?;
        let event = Webhook::construct_event(&got.payload, &got.signature, &secret)?;
        types.push(event.type_.as_str().to_owned());
        let last = event.type_.as_str() == "checkout.session.completed";
        events.push(event);
        if last {
            break;
        }
    }
    Ok((types, events, done))
}

#[tokio::test]
async fn completing_a_subscription_checkout_creates_an_active_subscription_and_a_paid_first_invoice()
-> anyhow::Result<()> {
    let (types, events, session) = complete_subscription(None).await?;
    let tail: Vec<&str> = types
        .iter()
        .map(String::as_str)
        .skip_while(|t| *t != "customer.subscription.created")
        .collect();
    assert_eq!(
        tail,
        [
            "customer.subscription.created",
            "invoice.created",
            "invoice.finalized",
            "payment_intent.created",
            "charge.succeeded",
            "payment_intent.succeeded",
            "invoice.paid",
            "invoice.payment_succeeded",
            "checkout.session.completed"
        ]
    );
    let mut saw = (false, false);
    for event in events {
        match event.data.object {
            EventObject::CustomerSubscriptionCreated(sub) => {
                assert_eq!(sub.status, stripe_shared::SubscriptionStatus::Active);
                assert_eq!(sub.metadata.get("plan").map(String::as_str), Some("basic"));
                let item = &sub.items.data[0];
                assert_eq!(item.price.lookup_key, None);
                assert!(item.current_period_end > item.current_period_start + 27 * 86_400);
                assert_eq!(
                    Some(sub.id.to_string()),
                    session["subscription"].as_str().map(str::to_owned)
                );
                saw.0 = true;
            }
            EventObject::InvoicePaid(invoice) => {
                assert_eq!(invoice.status, Some(stripe_shared::InvoiceStatus::Paid));
                assert_eq!((invoice.amount_paid, invoice.total), (500, 500));
                assert_eq!(
                    invoice.billing_reason,
                    Some(stripe_shared::InvoiceBillingReason::SubscriptionCreate)
                );
                let parent = invoice
                    .parent
                    .and_then(|p| p.subscription_details)
                    .map(|d| d.subscription.id().to_string());
                assert_eq!(parent, session["subscription"].as_str().map(str::to_owned));
                assert!(
                    invoice.lines.data[0].period.end - invoice.lines.data[0].period.start
                        > 27 * 86_400
                );
                saw.1 = true;
            }
            _ => {}
        }
    }
    assert_eq!(saw, (true, true));
    assert_eq!(session["payment_status"], "paid");
    assert_eq!(session["client_reference_id"], "sub-xyz");
    Ok(())
}

#[tokio::test]
async fn a_trial_subscription_is_trialing_with_a_zero_invoice_and_no_payment() -> anyhow::Result<()>
{
    let (types, events, session) = complete_subscription(Some(7)).await?;
    assert!(
        !types
            .iter()
            .any(|t| t.starts_with("charge.") || t.starts_with("payment_intent.")),
        "{types:?}"
    );
    let sub = events.into_iter().find_map(|e| match e.data.object {
        EventObject::CustomerSubscriptionCreated(sub) => Some(sub),
        _ => None,
    });
    let sub = sub.ok_or_else(|| anyhow::anyhow!("no customer.subscription.created"))?;
    assert_eq!(sub.status, stripe_shared::SubscriptionStatus::Trialing);
    assert_eq!(
        sub.trial_end.zip(sub.trial_start).map(|(e, s)| e - s),
        Some(7 * 86_400)
    );
    assert_eq!(session["payment_status"], "no_payment_required");
    Ok(())
}

async fn subscribed() -> anyhow::Result<(Setup, String, String, String)> {
    let s = setup().await?;
    let session = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Subscription)
        .customer(s.customer.clone())
        .line_items(vec![item(&s.monthly, 1)])
        .success_url("http://localhost/ok")
        .send(&s.client)
        .await?;
    let done = form(
        KEY,
        &s.base,
        "POST",
        &format!("/_emulator/checkout/sessions/{}/complete", session.id),
        "",
    )
    .await?;
    let sub = done["subscription"].as_str().unwrap_or_default().to_owned();
    let fetched = form(KEY, &s.base, "GET", &format!("/v1/subscriptions/{sub}"), "").await?;
    let item = fetched["items"]["data"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let power = CreatePrice::new(Currency::GBP)
        .product("creditgate_basic")
        .unit_amount(5000)
        .recurring(CreatePriceRecurring::new(
            CreatePriceRecurringInterval::Month,
        ))
        .send(&s.client)
        .await?;
    Ok((s, sub, item, power.id.to_string()))
}

#[tokio::test]
async fn a_price_change_and_cancel_at_period_end_update_the_subscription_with_previous_attributes()
-> anyhow::Result<()> {
    let (s, sub, item, power) = subscribed().await?;
    let (secret, _, mut rx) = listen(KEY, &s.base, &["customer.subscription.*"], vec![]).await?;

    let updated = form(
        KEY,
        &s.base,
        "POST",
        &format!("/v1/subscriptions/{sub}"),
        &format!("items[0][id]={item}&items[0][price]={power}&proration_behavior=always_invoice"),
    )
    .await?;
    assert_eq!(
        updated["items"]["data"][0]["price"]["id"],
        power.as_str(),
        "{updated}"
    );
    let got = next(&mut rx).await?;
    let raw: serde_json::Value = serde_json::from_str(&got.payload)?;
    assert_eq!(raw["type"], "customer.subscription.updated");
    assert!(raw["data"]["previous_attributes"]["items"].is_object());
    match Webhook::construct_event(&got.payload, &got.signature, &secret)?
        .data
        .object
    {
        EventObject::CustomerSubscriptionUpdated(sub) => {
            assert_eq!(sub.items.data[0].price.unit_amount, Some(5000))
        }
        other => panic!("{other:?}"),
    }
    let recorded = form(
        KEY,
        &s.base,
        "GET",
        &format!("/_emulator/subscriptions/{sub}"),
        "",
    )
    .await?;
    assert_eq!(
        recorded["proration_behaviors"],
        serde_json::json!(["always_invoice"])
    );

    let flagged = form(
        KEY,
        &s.base,
        "POST",
        &format!("/v1/subscriptions/{sub}"),
        "cancel_at_period_end=true",
    )
    .await?;
    assert_eq!(
        (
            flagged["cancel_at_period_end"].as_bool(),
            flagged["status"].as_str()
        ),
        (Some(true), Some("active"))
    );
    let raw: serde_json::Value = serde_json::from_str(&next(&mut rx).await?.payload)?;
    assert_eq!(
        raw["data"]["previous_attributes"]["cancel_at_period_end"],
        false
    );

    // The same update again changes nothing and emits nothing.
    form(
        KEY,
        &s.base,
        "POST",
        &format!("/v1/subscriptions/{sub}"),
        "cancel_at_period_end=true",
    )
    .await?;
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), rx.recv())
            .await
            .is_err()
    );
    Ok(())
}

#[tokio::test]
async fn cancelling_now_deletes_the_subscription_and_lists_follow_status() -> anyhow::Result<()> {
    let (s, sub, _, _) = subscribed().await?;
    let listed = form(
        KEY,
        &s.base,
        "GET",
        &format!("/v1/subscriptions?customer={}&status=active", s.customer),
        "",
    )
    .await?;
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(1));

    let canceled = form(
        KEY,
        &s.base,
        "DELETE",
        &format!("/v1/subscriptions/{sub}"),
        "",
    )
    .await?;
    assert_eq!(canceled["status"], "canceled");
    assert!(canceled["ended_at"].is_i64());
    let again = form(
        KEY,
        &s.base,
        "DELETE",
        &format!("/v1/subscriptions/{sub}"),
        "",
    )
    .await?;
    assert!(again["error"].is_object());
    let live = form(
        KEY,
        &s.base,
        "GET",
        &format!("/v1/subscriptions?customer={}", s.customer),
        "",
    )
    .await?;
    assert_eq!(live["data"].as_array().map(Vec::len), Some(0));
    let all = form(
        KEY,
        &s.base,
        "GET",
        &format!("/v1/subscriptions?customer={}&status=all", s.customer),
        "",
    )
    .await?;
    assert_eq!(all["data"].as_array().map(Vec::len), Some(1));
    let events = form(
        KEY,
        &s.base,
        "GET",
        "/v1/events?type=customer.subscription.deleted",
        "",
    )
    .await?;
    assert_eq!(events["data"].as_array().map(Vec::len), Some(1));
    Ok(())
}

async fn types_until(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<common::Received>,
    last: &str,
) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut events: Vec<serde_json::Value> = Vec::new();
    loop {
        let got = next(rx)
            .await
            .map_err(|e| anyhow::anyhow!("{e} waiting for {last}; got {:?}", types(&events)))?;
        let raw: serde_json::Value = serde_json::from_str(&got.payload)?;
        let done = raw["type"] == last;
        events.push(raw);
        if done {
            return Ok(events);
        }
    }
}

fn types(events: &[serde_json::Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e["type"].as_str()).collect()
}

#[tokio::test]
async fn advancing_the_clock_renews_fails_recovers_and_ends_subscriptions() -> anyhow::Result<()> {
    let (s, sub, _, _) = subscribed().await?;
    let (secret, _, mut rx) = listen(KEY, &s.base, &["*"], vec![]).await?;
    let before = form(KEY, &s.base, "GET", &format!("/v1/subscriptions/{sub}"), "").await?;
    let first_end = before["items"]["data"][0]["current_period_end"]
        .as_i64()
        .unwrap_or_default();

    // Renewal: a paid subscription_cycle invoice for the next period, then the rolled period.
    form(
        KEY,
        &s.base,
        "POST",
        "/_emulator/clock/advance",
        &format!("seconds={}", 32 * 86_400),
    )
    .await?;
    let renewal = types_until(&mut rx, "customer.subscription.updated").await?;
    assert_eq!(
        types(&renewal),
        [
            "invoice.created",
            "invoice.finalized",
            "payment_intent.created",
            "charge.succeeded",
            "payment_intent.succeeded",
            "invoice.paid",
            "invoice.payment_succeeded",
            "customer.subscription.updated"
        ]
    );
    let paid = &renewal[5]["data"]["object"];
    assert_eq!(
        (
            paid["billing_reason"].as_str(),
            paid["amount_paid"].as_i64()
        ),
        (Some("subscription_cycle"), Some(500))
    );
    assert_eq!(
        paid["lines"]["data"][0]["period"]["start"].as_i64(),
        Some(first_end)
    );
    let rolled = &renewal[7]["data"]["object"];
    assert_eq!(
        rolled["items"]["data"][0]["current_period_start"].as_i64(),
        Some(first_end)
    );
    assert!(renewal[7]["data"]["previous_attributes"]["items"].is_object());

    // Every event still parses with async-stripe.
    let got = form(
        KEY,
        &s.base,
        "GET",
        "/v1/events?type=invoice.paid&limit=1",
        "",
    )
    .await?;
    let payload = got["data"][0].to_string();
    let header = stripe_webhook::Webhook::generate_test_header(&payload, &secret, None);
    match Webhook::construct_event(&payload, &header, &secret)?
        .data
        .object
    {
        EventObject::InvoicePaid(invoice) => assert_eq!(
            invoice.billing_reason,
            Some(stripe_shared::InvoiceBillingReason::SubscriptionCycle)
        ),
        other => panic!("{other:?}"),
    }

    // A failing card: the next renewal fails and the subscription goes past_due...
    form(
        KEY,
        &s.base,
        "POST",
        &format!("/_emulator/customers/{}/payment_method", s.customer),
        "failing=true",
    )
    .await?;
    form(
        KEY,
        &s.base,
        "POST",
        "/_emulator/clock/advance",
        &format!("seconds={}", 32 * 86_400),
    )
    .await?;
    let failed = types_until(&mut rx, "customer.subscription.updated").await?;
    assert_eq!(
        types(&failed),
        [
            "invoice.created",
            "invoice.finalized",
            "invoice.payment_failed",
            "customer.subscription.updated"
        ]
    );
    assert_eq!(failed[3]["data"]["object"]["status"], "past_due");
    // ...and recovers at the next scheduled retry once the card works again.
    form(
        KEY,
        &s.base,
        "POST",
        &format!("/_emulator/customers/{}/payment_method", s.customer),
        "failing=false",
    )
    .await?;
    form(
        KEY,
        &s.base,
        "POST",
        "/_emulator/clock/advance",
        &format!("seconds={}", 8 * 86_400),
    )
    .await?;
    let recovered = types_until(&mut rx, "customer.subscription.updated").await?;
    assert!(
        types(&recovered).contains(&"invoice.paid"),
        "{:?}",
        types(&recovered)
    );
    assert_eq!(
        recovered
            .last()
            .map(|e| e["data"]["object"]["status"].clone()),
        Some(serde_json::json!("active"))
    );

    // Cancel at period end: the subscription ends when the period does.
    form(
        KEY,
        &s.base,
        "POST",
        &format!("/v1/subscriptions/{sub}"),
        "cancel_at_period_end=true",
    )
    .await?;
    types_until(&mut rx, "customer.subscription.updated").await?;
    form(
        KEY,
        &s.base,
        "POST",
        "/_emulator/clock/advance",
        &format!("seconds={}", 40 * 86_400),
    )
    .await?;
    let ended = types_until(&mut rx, "customer.subscription.deleted").await?;
    assert_eq!(types(&ended), ["customer.subscription.deleted"]);
    Ok(())
}

#[tokio::test]
async fn a_trial_warns_three_days_before_it_ends_then_bills() -> anyhow::Result<()> {
    let s = setup().await?;
    let mut data = CreateCheckoutSessionSubscriptionData::new();
    data.trial_period_days = Some(7);
    let session = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Subscription)
        .customer(s.customer.clone())
        .line_items(vec![item(&s.monthly, 1)])
        .subscription_data(data)
        .success_url("http://localhost/ok")
        .send(&s.client)
        .await?;
    form(
        KEY,
        &s.base,
        "POST",
        &format!("/_emulator/checkout/sessions/{}/complete", session.id),
        "",
    )
    .await?;
    let (_, _, mut rx) = listen(
        KEY,
        &s.base,
        &["customer.subscription.*", "invoice.paid"],
        vec![],
    )
    .await?;

    form(
        KEY,
        &s.base,
        "POST",
        "/_emulator/clock/advance",
        &format!("seconds={}", 5 * 86_400),
    )
    .await?;
    assert_eq!(
        types(&types_until(&mut rx, "customer.subscription.trial_will_end").await?),
        ["customer.subscription.trial_will_end"]
    );
    form(
        KEY,
        &s.base,
        "POST",
        "/_emulator/clock/advance",
        &format!("seconds={}", 3 * 86_400),
    )
    .await?;
    let billed = types_until(&mut rx, "customer.subscription.updated").await?;
    assert_eq!(
        types(&billed),
        ["invoice.paid", "customer.subscription.updated"]
    );
    assert_eq!(billed[1]["data"]["object"]["status"], "active");
    assert_eq!(
        billed[1]["data"]["previous_attributes"]["status"],
        "trialing"
    );
    Ok(())
}

#[tokio::test]
async fn a_pack_can_be_refunded_in_part_then_in_full_and_disputed_and_a_portal_session_opened()
-> anyhow::Result<()> {
    let s = setup().await?;
    let (secret, _, mut rx) = listen(
        KEY,
        &s.base,
        &[
            "charge.refunded",
            "refund.created",
            "charge.dispute.created",
        ],
        vec![],
    )
    .await?;
    let session = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Payment)
        .customer(s.customer.clone())
        .line_items(vec![item(&s.pack, 1)])
        .success_url("http://localhost/ok")
        .send(&s.client)
        .await?;
    let done = form(
        KEY,
        &s.base,
        "POST",
        &format!("/_emulator/checkout/sessions/{}/complete", session.id),
        "",
    )
    .await?;
    let intent = done["payment_intent"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    let partial = form(
        KEY,
        &s.base,
        "POST",
        "/v1/refunds",
        &format!("payment_intent={intent}&amount=200"),
    )
    .await?;
    assert_eq!(
        (partial["object"].as_str(), partial["amount"].as_i64()),
        (Some("refund"), Some(200)),
        "{partial}"
    );
    let mut charge_id = String::new();
    for _ in 0..2 {
        let got = next(&mut rx).await?;
        match Webhook::construct_event(&got.payload, &got.signature, &secret)?
            .data
            .object
        {
            EventObject::ChargeRefunded(charge) => {
                assert_eq!((charge.amount_refunded, charge.refunded), (200, false));
                charge_id = charge.id.to_string();
            }
            EventObject::RefundCreated(refund) => assert_eq!(refund.amount, 200),
            other => panic!("{other:?}"),
        }
    }
    let too_much = form(
        KEY,
        &s.base,
        "POST",
        "/v1/refunds",
        &format!("charge={charge_id}&amount=301"),
    )
    .await?;
    assert_eq!(too_much["error"]["param"], "amount");
    form(
        KEY,
        &s.base,
        "POST",
        "/v1/refunds",
        &format!("charge={charge_id}"),
    )
    .await?;
    let got = next(&mut rx).await?;
    match Webhook::construct_event(&got.payload, &got.signature, &secret)?
        .data
        .object
    {
        EventObject::ChargeRefunded(charge) => {
            assert_eq!((charge.amount_refunded, charge.refunded), (500, true))
        }
        other => panic!("{other:?}"),
    }
    next(&mut rx).await?; // refund.created

    form(
        KEY,
        &s.base,
        "POST",
        &format!("/_emulator/charges/{charge_id}/dispute"),
        "reason=fraudulent",
    )
    .await?;
    let got = next(&mut rx).await?;
    match Webhook::construct_event(&got.payload, &got.signature, &secret)?
        .data
        .object
    {
        EventObject::ChargeDisputeCreated(dispute) => {
            assert_eq!(dispute.charge.id().as_str(), charge_id);
            assert_eq!(dispute.reason, "fraudulent");
        }
        other => panic!("{other:?}"),
    }

    let portal = stripe_billing::billing_portal_session::CreateBillingPortalSession::new()
        .customer(s.customer.clone())
        .return_url("http://localhost/account")
        .send(&s.client)
        .await?;
    assert!(portal.url.starts_with("https://billing.stripe.com/"));
    assert_eq!(
        portal.return_url.as_deref(),
        Some("http://localhost/account")
    );
    let missing = stripe_billing::billing_portal_session::CreateBillingPortalSession::new()
        .customer("cus_nope")
        .send(&s.client)
        .await;
    assert_eq!(
        missing.err().and_then(param_of).as_deref(),
        Some("customer")
    );
    Ok(())
}

#[tokio::test]
async fn four_failed_attempts_on_smart_retry_schedule_leave_the_subscription_unpaid()
-> anyhow::Result<()> {
    let (s, sub, _, _) = subscribed().await?;
    form(
        KEY,
        &s.base,
        "POST",
        &format!("/_emulator/customers/{}/payment_method", s.customer),
        "failing=true",
    )
    .await?;
    form(
        KEY,
        &s.base,
        "POST",
        "/_emulator/clock/advance",
        &format!("seconds={}", 32 * 86_400),
    )
    .await?;
    let now = form(KEY, &s.base, "GET", &format!("/v1/subscriptions/{sub}"), "").await?;
    assert_eq!(now["status"], "past_due");
    // Retries 3, 5 and 7 days after each failure: the 4th failure is 15 days after the 1st.
    form(
        KEY,
        &s.base,
        "POST",
        "/_emulator/clock/advance",
        &format!("seconds={}", 16 * 86_400),
    )
    .await?;
    let now = form(KEY, &s.base, "GET", &format!("/v1/subscriptions/{sub}"), "").await?;
    assert_eq!(now["status"], "unpaid");
    let invoice = form(
        KEY,
        &s.base,
        "GET",
        &format!(
            "/v1/invoices/{}",
            now["latest_invoice"].as_str().unwrap_or_default()
        ),
        "",
    )
    .await?;
    assert_eq!(
        (
            invoice["status"].as_str(),
            invoice["attempt_count"].as_u64()
        ),
        (Some("open"), Some(4))
    );
    assert!(invoice["next_payment_attempt"].is_null());
    let failures = form(
        KEY,
        &s.base,
        "GET",
        "/v1/events?type=invoice.payment_failed",
        "",
    )
    .await?;
    assert_eq!(failures["data"].as_array().map(Vec::len), Some(4));
    Ok(())
}
