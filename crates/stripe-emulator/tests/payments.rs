//! Payments after Checkout: refunds in part and in full, disputes, billing portal sessions.

use stripe_checkout::checkout_session::CreateCheckoutSession;
use stripe_shared::CheckoutSessionMode;

mod common;

use common::checkout::{KEY, item, param_of, setup};
use common::{form, listen, next};
use stripe_webhook::{EventObject, Webhook};

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
