//! Shared by the Checkout, subscription and billing tests: an emulator with a product, a
//! monthly price, a one-off pack price and a customer, and the steps several tests begin with.

use std::collections::HashMap;

use stripe::{ClientBuilder, StripeError};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionSubscriptionData,
};
use stripe_core::customer::CreateCustomer;
use stripe_product::price::{CreatePrice, CreatePriceRecurring, CreatePriceRecurringInterval};
use stripe_product::product::CreateProduct;
use stripe_shared::CheckoutSessionMode;
use stripe_types::Currency;

use super::{form, listen, next};
use stripe_webhook::Webhook;

pub const KEY: &str = "sk_test_emulator_checkout";

pub struct Setup {
    pub base: String,
    pub client: stripe::Client,
    pub customer: String,
    pub monthly: String,
    pub pack: String,
}

pub async fn setup() -> anyhow::Result<Setup> {
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

pub fn item(price: &str, quantity: u64) -> CreateCheckoutSessionLineItems {
    let mut item = CreateCheckoutSessionLineItems::new();
    item.price = Some(price.to_owned());
    item.quantity = Some(quantity);
    item
}

pub fn param_of(err: StripeError) -> Option<String> {
    match err {
        StripeError::Stripe(api, _) => api.param,
        other => panic!("expected a Stripe error, got {other:?}"),
    }
}

pub async fn complete_subscription(
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

pub async fn subscribed() -> anyhow::Result<(Setup, String, String, String)> {
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

pub async fn types_until(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<super::Received>,
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

pub fn types(events: &[serde_json::Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e["type"].as_str()).collect()
}
