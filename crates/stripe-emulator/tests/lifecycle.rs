//! The fidelity walk: the whole billing lifecycle through the emulator, then every event it
//! delivered is verified and parsed with async-stripe's webhook types (none may be `Unknown`),
//! and every event stays retrievable through `GET /v1/events/{id}`.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use stripe::ClientBuilder;
use stripe_checkout::checkout_session::{CreateCheckoutSession, CreateCheckoutSessionLineItems};
use stripe_core::customer::{CreateCustomer, UpdateCustomer};
use stripe_product::price::{
    CreatePrice, CreatePriceRecurring, CreatePriceRecurringInterval, UpdatePrice,
};
use stripe_product::product::{CreateProduct, UpdateProduct};
use stripe_shared::CheckoutSessionMode;
use stripe_types::Currency;
use stripe_webhook::{EventObject, Webhook};

mod common;

use common::{form, listen};

const KEY: &str = "sk_test_emulator_lifecycle";

fn item(price: &str) -> CreateCheckoutSessionLineItems {
    let mut item = CreateCheckoutSessionLineItems::new();
    item.price = Some(price.to_owned());
    item.quantity = Some(1);
    item
}

#[tokio::test]
async fn every_event_of_the_whole_lifecycle_is_delivered_signed_and_parses_with_async_stripe()
-> anyhow::Result<()> {
    let listener = stripe_emulator::bind(0).await?;
    let base = format!("http://{}/", listener.local_addr()?);
    tokio::spawn(stripe_emulator::serve(
        listener,
        stripe_emulator::Emulator::new(KEY),
    ));
    let client = ClientBuilder::new(KEY).url(base.clone()).build()?;
    let (secret, _, mut rx) = listen(KEY, &base, &["*"], vec![]).await?;

    // Catalogue.
    CreateProduct::new("Basic")
        .id("creditgate_basic")
        .send(&client)
        .await?;
    UpdateProduct::new("creditgate_basic")
        .name("Basic plan")
        .send(&client)
        .await?;
    let monthly = CreatePrice::new(Currency::GBP)
        .product("creditgate_basic")
        .unit_amount(500)
        .recurring(CreatePriceRecurring::new(
            CreatePriceRecurringInterval::Month,
        ))
        .lookup_key("creditgate_basic_subscription")
        .send(&client)
        .await?;
    let dearer = CreatePrice::new(Currency::GBP)
        .product("creditgate_basic")
        .unit_amount(700)
        .recurring(CreatePriceRecurring::new(
            CreatePriceRecurringInterval::Month,
        ))
        .lookup_key("creditgate_basic_subscription")
        .transfer_lookup_key(true)
        .send(&client)
        .await?;
    UpdatePrice::new(monthly.id.clone())
        .active(false)
        .send(&client)
        .await?;
    let pack = CreatePrice::new(Currency::GBP)
        .product("creditgate_basic")
        .unit_amount(500)
        .send(&client)
        .await?;

    // A signed-up user subscribes, changes price, renews, fails, recovers, cancels at period end.
    let customer = CreateCustomer::new()
        .email("ada@example.com")
        .send(&client)
        .await?;
    UpdateCustomer::new(customer.id.clone())
        .metadata(HashMap::from([(
            "cognito_sub".to_owned(),
            "sub-1".to_owned(),
        )]))
        .send(&client)
        .await?;
    let session = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Subscription)
        .customer(customer.id.to_string())
        .client_reference_id("sub-1")
        .line_items(vec![item(dearer.id.as_str())])
        .success_url("http://localhost/ok")
        .send(&client)
        .await?;
    let done = form(
        KEY,
        &base,
        "POST",
        &format!("/_emulator/checkout/sessions/{}/complete", session.id),
        "",
    )
    .await?;
    let sub = done["subscription"].as_str().unwrap_or_default().to_owned();
    let fetched = form(KEY, &base, "GET", &format!("/v1/subscriptions/{sub}"), "").await?;
    let item_id = fetched["items"]["data"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let power = CreatePrice::new(Currency::GBP)
        .product("creditgate_basic")
        .unit_amount(5000)
        .recurring(CreatePriceRecurring::new(
            CreatePriceRecurringInterval::Month,
        ))
        .send(&client)
        .await?;
    form(
        KEY,
        &base,
        "POST",
        &format!("/v1/subscriptions/{sub}"),
        &format!(
            "items[0][id]={item_id}&items[0][price]={}&proration_behavior=create_prorations",
            power.id
        ),
    )
    .await?;
    let days = |d: i64| format!("seconds={}", d * 86_400);
    form(KEY, &base, "POST", "/_emulator/clock/advance", &days(32)).await?;
    form(
        KEY,
        &base,
        "POST",
        &format!("/_emulator/customers/{}/payment_method", customer.id),
        "failing=true",
    )
    .await?;
    form(KEY, &base, "POST", "/_emulator/clock/advance", &days(32)).await?;
    form(
        KEY,
        &base,
        "POST",
        &format!("/_emulator/customers/{}/payment_method", customer.id),
        "failing=false",
    )
    .await?;
    form(KEY, &base, "POST", "/_emulator/clock/advance", &days(8)).await?;
    form(
        KEY,
        &base,
        "POST",
        &format!("/v1/subscriptions/{sub}"),
        "cancel_at_period_end=true",
    )
    .await?;
    form(KEY, &base, "POST", "/_emulator/clock/advance", &days(40)).await?;

    // A pay-first buyer buys a pack, then it is refunded in part and disputed; one session expires.
    let pack_session = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Payment)
        .line_items(vec![item(pack.id.as_str())])
        .success_url("http://localhost/ok")
        .send(&client)
        .await?;
    let paid = form(
        KEY,
        &base,
        "POST",
        &format!("/_emulator/checkout/sessions/{}/complete", pack_session.id),
        "email=buyer%40example.com",
    )
    .await?;
    let intent = paid["payment_intent"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let refund = form(
        KEY,
        &base,
        "POST",
        "/v1/refunds",
        &format!("payment_intent={intent}&amount=100"),
    )
    .await?;
    let charge = refund["charge"].as_str().unwrap_or_default().to_owned();
    form(
        KEY,
        &base,
        "POST",
        &format!("/_emulator/charges/{charge}/dispute"),
        "",
    )
    .await?;
    let abandoned = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Payment)
        .line_items(vec![item(pack.id.as_str())])
        .success_url("http://localhost/ok")
        .send(&client)
        .await?;
    stripe_checkout::checkout_session::ExpireCheckoutSession::new(abandoned.id.clone())
        .send(&client)
        .await?;

    // Everything the emulator recorded must arrive, verify and parse.
    let all = form(KEY, &base, "GET", "/v1/events?limit=100", "").await?;
    let recorded: BTreeSet<String> = all["data"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        all["has_more"] == false && recorded.len() > 40,
        "{} events",
        recorded.len()
    );
    let mut delivered = BTreeSet::new();
    let mut types = BTreeSet::new();
    while delivered.len() < recorded.len() {
        let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await?
            .ok_or_else(|| anyhow::anyhow!("receiver stopped"))?;
        let event = Webhook::construct_event(&got.payload, &got.signature, &secret)
            .map_err(|e| anyhow::anyhow!("{e}: {}", &got.payload[..got.payload.len().min(300)]))?;
        assert!(
            !matches!(event.data.object, EventObject::Unknown(_)),
            "{} did not parse as its type",
            event.type_
        );
        types.insert(event.type_.as_str().to_owned());
        delivered.insert(event.id.to_string());
    }
    assert_eq!(delivered, recorded);
    for wanted in [
        "customer.created",
        "customer.updated",
        "product.created",
        "product.updated",
        "price.created",
        "price.updated",
        "checkout.session.completed",
        "checkout.session.expired",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
        "invoice.payment_failed",
        "payment_intent.created",
        "payment_intent.succeeded",
        "charge.succeeded",
        "charge.refunded",
        "refund.created",
        "charge.dispute.created",
    ] {
        assert!(types.contains(wanted), "no {wanted} in {types:?}");
    }
    Ok(())
}
