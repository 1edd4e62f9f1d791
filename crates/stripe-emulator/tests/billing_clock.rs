//! The billing clock: renewals, failed payments and Smart Retries, trial warnings, the end of
//! a subscription.

use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionSubscriptionData,
};
use stripe_shared::CheckoutSessionMode;

mod common;

use common::checkout::{KEY, item, setup, subscribed, types, types_until};
use common::{form, listen};
use stripe_webhook::{EventObject, Webhook};

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
