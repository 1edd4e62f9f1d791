//! Subscriptions and invoices: completing a subscription-mode Checkout Session creates the
//! subscription (trialing when the session asked for trial days), its first invoice
//! (`billing_reason: subscription_create`, paid, or zero during a trial) and the payment, with
//! the events Stripe emits: `customer.subscription.created`, `invoice.created`,
//! `invoice.finalized`, the payment's events, `invoice.paid`, `invoice.payment_succeeded`,
//! `checkout.session.completed`.

use serde_json::{Value, json};

use crate::engine::clock::advance;
use crate::engine::events::{emit, previous_attributes};
use crate::engine::invoices::{invoice_line, issue_invoice};
use crate::engine::payments::customer_details;
use crate::engine::store::{Page, State, list_page, new_id};
use crate::error::ApiError;

fn plan_of(price: &Value) -> Value {
    json!({
        "id": price["id"],
        "object": "plan",
        "active": price["active"],
        "amount": price["unit_amount"],
        "amount_decimal": price["unit_amount_decimal"],
        "billing_scheme": "per_unit",
        "created": price["created"],
        "currency": price["currency"],
        "interval": price["recurring"]["interval"],
        "interval_count": price["recurring"]["interval_count"],
        "livemode": false,
        "metadata": price["metadata"],
        "meter": null,
        "nickname": price["nickname"],
        "product": price["product"],
        "tiers_mode": null,
        "transform_usage": null,
        "trial_period_days": null,
        "usage_type": "licensed"
    })
}

pub fn complete_subscription(
    state: &mut State,
    session_id: &str,
    mut session: Value,
    customer: &str,
) -> Result<Value, ApiError> {
    let extras = state
        .checkout_extras
        .get(session_id)
        .cloned()
        .unwrap_or(Value::Null);
    let now = state.now();
    let trial_days = extras["subscription_data"]["trial_period_days"]
        .as_i64()
        .filter(|d| *d > 0);
    let metadata = Some(extras["subscription_data"]["metadata"].clone())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    let currency = session["currency"].clone();
    let sub_id = new_id("sub");
    let invoice_id = new_id("in");

    let mut items = Vec::new();
    let mut lines = Vec::new();
    let mut period_end = now;
    for line in extras["line_items"].as_array().cloned().unwrap_or_default() {
        let price_id = line["price"].as_str().unwrap_or_default();
        let price = state.prices.fetch("price", price_id, "line_items")?;
        let quantity = line["quantity"].as_i64().unwrap_or(1);
        let interval = price["recurring"]["interval"]
            .as_str()
            .unwrap_or("month")
            .to_owned();
        let count = price["recurring"]["interval_count"].as_i64().unwrap_or(1);
        let end = match trial_days {
            Some(days) => now + days * 86_400,
            None => advance(now, &interval, count),
        };
        period_end = end;
        let item_id = new_id("si");
        items.push(json!({
            "id": item_id,
            "object": "subscription_item",
            "billing_thresholds": null,
            "created": now,
            "current_period_end": end,
            "current_period_start": now,
            "discounts": [],
            "metadata": {},
            "plan": plan_of(&price),
            "price": price,
            "quantity": quantity,
            "subscription": sub_id,
            "tax_rates": []
        }));
        let amount = if trial_days.is_some() {
            0
        } else {
            price["unit_amount"].as_i64().unwrap_or(0) * quantity
        };
        lines.push(invoice_line(
            &invoice_id,
            &sub_id,
            &json!(item_id),
            &price,
            quantity,
            amount,
            &currency,
            (now, end),
        ));
    }
    let total: i64 = lines
        .iter()
        .map(|l| l["amount"].as_i64().unwrap_or(0))
        .sum();

    let subscription = json!({
        "id": sub_id,
        "object": "subscription",
        "application": null,
        "application_fee_percent": null,
        "automatic_tax": { "disabled_reason": null, "enabled": false, "liability": null },
        "billing_cycle_anchor": period_end,
        "billing_cycle_anchor_config": null,
        "billing_mode": { "type": "classic", "flexible": null, "updated_at": null },
        "billing_schedules": [],
        "billing_thresholds": null,
        "cancel_at": null,
        "cancel_at_period_end": false,
        "canceled_at": null,
        "cancellation_details": { "comment": null, "feedback": null, "reason": null },
        "collection_method": "charge_automatically",
        "created": now,
        "currency": currency,
        "customer": customer,
        "days_until_due": null,
        "default_payment_method": new_id("pm"),
        "default_source": null,
        "default_tax_rates": [],
        "description": null,
        "discounts": [],
        "ended_at": null,
        "invoice_settings": { "account_tax_ids": null, "issuer": { "type": "self" } },
        "items": { "object": "list", "data": items, "has_more": false, "url": format!("/v1/subscription_items?subscription={sub_id}") },
        "latest_invoice": invoice_id,
        "livemode": false,
        "metadata": metadata,
        "next_pending_invoice_item_invoice": null,
        "on_behalf_of": null,
        "pause_collection": null,
        "payment_settings": { "payment_method_options": null, "payment_method_types": null, "save_default_payment_method": "off" },
        "pending_invoice_item_interval": null,
        "pending_setup_intent": null,
        "pending_update": null,
        "presentment_details": null,
        "schedule": null,
        "start_date": now,
        "status": if trial_days.is_some() { "trialing" } else { "active" },
        "test_clock": null,
        "transfer_data": null,
        "trial_end": trial_days.map(|_| period_end),
        "trial_settings": { "end_behavior": { "missing_payment_method": "create_invoice" } },
        "trial_start": trial_days.map(|_| now)
    });
    state
        .subscriptions
        .insert(sub_id.clone(), subscription.clone());
    emit(state, "customer.subscription.created", &subscription, None);

    issue_invoice(
        state,
        customer,
        &sub_id,
        &invoice_id,
        &metadata,
        &currency,
        lines,
        total,
        "subscription_create",
        (now, now),
    );
    let email = state
        .customers
        .get(customer)
        .and_then(|c| c["email"].as_str().map(str::to_owned));

    session["status"] = json!("complete");
    session["payment_status"] = json!(if total > 0 {
        "paid"
    } else {
        "no_payment_required"
    });
    session["customer"] = json!(customer);
    session["subscription"] = json!(sub_id);
    session["invoice"] = json!(invoice_id);
    session["url"] = Value::Null;
    session["customer_details"] = customer_details(email);
    state
        .checkout_sessions
        .insert(session_id.to_owned(), session.clone());
    emit(state, "checkout.session.completed", &session, None);
    Ok(session)
}

fn live(status: &str) -> bool {
    !matches!(status, "canceled" | "incomplete_expired")
}

/// The subscription, or Stripe's 404.
pub fn fetch(state: &State, id: &str) -> Result<Value, ApiError> {
    state.subscriptions.fetch("subscription", id, "id")
}

/// The subscription if it can still be updated: not canceled (Stripe's 400), else the 404.
pub fn fetch_live(state: &State, id: &str) -> Result<Value, ApiError> {
    let old = fetch(state, id)?;
    if !live(old["status"].as_str().unwrap_or_default()) {
        return Err(ApiError::invalid(
            "A canceled subscription can only update its cancellation_details and metadata.",
            None,
        ));
    }
    Ok(old)
}

/// The proration behaviours an update may ask for.
pub const PRORATION_BEHAVIORS: &[&str] = &["create_prorations", "none", "always_invoice"];

/// Records an update's `proration_behavior` for `GET /_emulator/subscriptions/{id}`; the
/// emulator bills no prorations.
pub fn record_proration(state: &mut State, id: &str, behavior: String) {
    state
        .proration_behaviors
        .entry(id.to_owned())
        .or_default()
        .push(behavior);
}

/// Where item `item_id` (named by `items[index][id]`) sits in the subscription's items, or
/// Stripe's 404.
pub fn item_position(sub: &Value, item_id: &str, index: usize) -> Result<usize, ApiError> {
    sub["items"]["data"]
        .as_array()
        .and_then(|d| d.iter().position(|i| i["id"] == item_id))
        .ok_or_else(|| {
            ApiError::no_such("subscription_item", item_id, &format!("items[{index}][id]"))
        })
}

/// The price `items[index][price]` names, if it is an active recurring price.
pub fn recurring_price(state: &State, price_id: &str, index: usize) -> Result<Value, ApiError> {
    let price =
        state.prices.get(price_id).cloned().ok_or_else(|| {
            ApiError::no_such("price", price_id, &format!("items[{index}][price]"))
        })?;
    if price["type"] != "recurring" || price["active"] != true {
        return Err(ApiError::invalid(
            "The price must be an active recurring price.",
            Some(&format!("items[{index}][price]")),
        ));
    }
    Ok(price)
}

/// A change to one subscription item: its position, a new price, a new quantity.
#[derive(Debug, Clone)]
pub struct ItemChange {
    pub position: usize,
    pub price: Option<Value>,
    pub quantity: Option<i64>,
}

/// What an update changes (each checked already).
#[derive(Debug, Clone)]
pub struct SubscriptionUpdate {
    pub items: Vec<ItemChange>,
    pub cancel_at_period_end: Option<bool>,
    /// The subscription's metadata after the update.
    pub metadata: Value,
}

/// Price change (`items[0][id]` + `items[0][price]`, `proration_behavior` recorded),
/// `cancel_at_period_end`, `metadata`. Emits `customer.subscription.updated` with
/// `previous_attributes`.
pub fn update_subscription(
    state: &mut State,
    id: &str,
    update: SubscriptionUpdate,
) -> Result<Value, ApiError> {
    let old = fetch_live(state, id)?;
    let mut sub = old.clone();
    for change in update.items {
        let position = change.position;
        if let Some(price) = change.price {
            sub["items"]["data"][position]["plan"] = plan_of(&price);
            sub["items"]["data"][position]["price"] = price;
        }
        if let Some(quantity) = change.quantity {
            sub["items"]["data"][position]["quantity"] = json!(quantity);
        }
    }
    if let Some(flag) = update.cancel_at_period_end {
        sub["cancel_at_period_end"] = json!(flag);
        let period_end = sub["items"]["data"][0]["current_period_end"].clone();
        sub["cancel_at"] = if flag { period_end } else { Value::Null };
        sub["cancellation_details"]["reason"] = if flag {
            json!("cancellation_requested")
        } else {
            Value::Null
        };
    }
    sub["metadata"] = update.metadata;
    state.subscriptions.insert(id.to_owned(), sub.clone());
    let previous = previous_attributes(&old, &sub);
    if previous.as_object().is_some_and(|m| !m.is_empty()) {
        emit(state, "customer.subscription.updated", &sub, Some(previous));
    }
    Ok(sub)
}

/// Cancels at once: status `canceled`, `ended_at` now, `customer.subscription.deleted`.
/// `prorate=true` is recorded (as `cancel_prorate` in `GET /_emulator/subscriptions/{id}`'s
/// proration behaviours); the emulator bills no prorations.
pub fn cancel_subscription(state: &mut State, id: &str, prorate: bool) -> Result<Value, ApiError> {
    let mut sub = fetch(state, id)?;
    if !live(sub["status"].as_str().unwrap_or_default()) {
        return Err(ApiError::invalid(
            format!("No such subscription: '{id}' is already canceled."),
            None,
        ));
    }
    let now = state.now();
    sub["status"] = json!("canceled");
    sub["canceled_at"] = json!(now);
    sub["ended_at"] = json!(now);
    if sub["cancellation_details"]["reason"].is_null() {
        sub["cancellation_details"]["reason"] = json!("cancellation_requested");
    }
    state.subscriptions.insert(id.to_owned(), sub.clone());
    if prorate {
        state
            .proration_behaviors
            .entry(id.to_owned())
            .or_default()
            .push("cancel_prorate".to_owned());
    }
    emit(state, "customer.subscription.deleted", &sub, None);
    Ok(sub)
}

/// Which subscriptions a list shows: by customer, status (every status but canceled unless
/// asked; `all` for every one) and price.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionFilter {
    pub customer: Option<String>,
    pub status: Option<String>,
    pub price: Option<String>,
}

pub fn list_subscriptions(
    state: &State,
    filter: &SubscriptionFilter,
    page: &Page,
) -> Result<Value, ApiError> {
    let SubscriptionFilter {
        customer,
        status,
        price,
    } = filter;
    let matching = state.subscriptions.newest_first().filter(|s| {
        customer.as_deref().is_none_or(|c| s["customer"] == c)
            && match status.as_deref() {
                // Stripe lists every status but canceled by default.
                None => s["status"] != "canceled",
                Some("all") => true,
                Some(wanted) => s["status"] == wanted,
            }
            && price.as_deref().is_none_or(|p| {
                s["items"]["data"]
                    .as_array()
                    .is_some_and(|d| d.iter().any(|i| i["price"]["id"] == p))
            })
    });
    list_page("/v1/subscriptions", page, matching, |_| true)
}

/// What the emulator records about a subscription beyond Stripe's object.
pub fn emulator_view(state: &State, id: &str) -> Result<Value, ApiError> {
    if !state.subscriptions.contains(id) {
        return Err(ApiError::no_such("subscription", id, "id"));
    }
    Ok(json!({
        "id": id,
        "proration_behaviors": state.proration_behaviors.get(id).cloned().unwrap_or_default(),
    }))
}
