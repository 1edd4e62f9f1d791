//! Completing Checkout Sessions: a pack purchase paid, a subscription created with its first
//! invoice (paid, or zero during a trial), and Stripe's events in order.

use std::collections::HashMap;

use stripe_checkout::checkout_session::{CreateCheckoutSession, RetrieveCheckoutSession};
use stripe_shared::{CheckoutSessionMode, CheckoutSessionPaymentStatus};

mod common;

use common::checkout::{KEY, complete_subscription, item, setup};
use common::{form, listen, next};
use stripe_webhook::{EventObject, Webhook};

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

#[tokio::test]
async fn the_client_encodes_what_a_buyer_types_so_it_arrives_as_typed() -> anyhow::Result<()> {
    let s = setup().await?;
    stripe_product::price::CreatePrice::new(stripe_types::Currency::GBP)
        .product("creditgate_basic")
        .unit_amount(500)
        .lookup_key("creditgate_basic_pack")
        .send(&s.client)
        .await?;
    // A `+` in an email and a `&...=` in a reference are data, not form syntax.
    let session = stripe_emulator::client::buy(
        &s.base,
        KEY,
        stripe_emulator::client::Purchase {
            lookup_key: "creditgate_basic_pack",
            client_reference_id: Some("ref&amount=1"),
            email: Some("ada+packs@example.com"),
            customer: None,
        },
    )
    .await?;
    assert_eq!(session["client_reference_id"], "ref&amount=1", "{session}");
    assert_eq!(
        session["customer_details"]["email"], "ada+packs@example.com",
        "{session}"
    );
    Ok(())
}
