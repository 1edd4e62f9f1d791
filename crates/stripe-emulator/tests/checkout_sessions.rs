//! Checkout Sessions through async-stripe's client: both modes parse as `CheckoutSession`;
//! created, retrieved, expired, and refused as Stripe refuses them.

use std::collections::HashMap;

use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionSubscriptionData, ExpireCheckoutSession,
    RetrieveCheckoutSession,
};
use stripe_shared::{CheckoutSessionMode, CheckoutSessionPaymentStatus, CheckoutSessionStatus};
use stripe_types::Currency;

mod common;

use common::checkout::{item, param_of, setup};

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
