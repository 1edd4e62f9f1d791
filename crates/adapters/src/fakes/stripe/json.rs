//! The JSON renderings of the fake's objects, as a webhook receives them in `data.object`.

use domain::catalogue::SaleMode;
use domain::facts::ChargeFacts;
use serde_json::{Value, json};

use super::{FakeSession, FakeSessionStatus, FakeSubscription};

pub(super) fn sub_json(s: &FakeSubscription) -> Value {
    json!({
        "id": s.id,
        "object": "subscription",
        "customer": s.customer.as_str(),
        "status": s.status.as_str(),
        "cancel_at_period_end": s.cancel_at_period_end,
        "latest_invoice": s.latest_invoice.as_ref().map(|i| i.id.clone()),
        "items": { "object": "list", "data": [
            { "object": "subscription_item", "price": { "id": s.price },
              "current_period_end": s.current_period_end }
        ] },
        "metadata": s.metadata,
    })
}

pub(super) fn session_json(s: &FakeSession) -> Value {
    let mode = match s.mode {
        SaleMode::Subscription => "subscription",
        SaleMode::Pack => "payment",
    };
    let status = match s.status {
        FakeSessionStatus::Open => "open",
        FakeSessionStatus::Complete => "complete",
    };
    let payment_status = if s.no_payment_required {
        "no_payment_required"
    } else if s.paid {
        "paid"
    } else {
        "unpaid"
    };
    json!({
        "id": s.id,
        "object": "checkout.session",
        "mode": mode,
        "status": status,
        "payment_status": payment_status,
        "customer": s.customer.as_str(),
        "client_reference_id": s.client_reference_id,
        "customer_details": s.email.as_ref().map(|e| json!({ "email": e })),
        "subscription": s.subscription,
        "payment_intent": s.payment_intent,
        "metadata": s.metadata,
    })
}

pub(super) fn charge_json(c: &ChargeFacts) -> Value {
    json!({
        "id": c.id,
        "object": "charge",
        "customer": c.customer.as_ref().map(|c| c.as_str().to_owned()),
        "payment_intent": c.payment_intent,
        "amount": c.amount,
        "amount_refunded": c.amount_refunded,
        "refunded": c.amount_refunded >= c.amount,
        "disputed": c.disputed,
    })
}
