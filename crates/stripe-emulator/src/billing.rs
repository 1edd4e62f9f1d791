//! Subscriptions and invoices: completing a subscription-mode Checkout Session creates the
//! subscription (trialing when the session asked for trial days), its first invoice
//! (`billing_reason: subscription_create`, paid, or zero during a trial) and the payment, with
//! the events Stripe emits: `customer.subscription.created`, `invoice.created`,
//! `invoice.finalized`, the payment's events, `invoice.paid`, `invoice.payment_succeeded`,
//! `checkout.session.completed`.

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::payments::{customer_details, pay};
use crate::store::{State, new_id};
use crate::webhooks::emit;

/// `ts` moved on by `count` calendar `interval`s (day, week, month, year), as Stripe bills:
/// a month from 31 January is the last day of February.
pub fn advance(ts: i64, interval: &str, count: i64) -> i64 {
    match interval {
        "day" => ts + 86_400 * count,
        "week" => ts + 7 * 86_400 * count,
        "month" | "year" => {
            let months = if interval == "year" {
                12 * count
            } else {
                count
            };
            let Ok(at) = time::OffsetDateTime::from_unix_timestamp(ts) else {
                return ts + 30 * 86_400 * months;
            };
            let total = i64::from(at.year()) * 12 + i64::from(u8::from(at.month())) - 1 + months;
            let (year, month0) = (total.div_euclid(12), total.rem_euclid(12));
            let Ok(month) = time::Month::try_from((month0 + 1) as u8) else {
                return ts + 30 * 86_400 * months;
            };
            let year = year as i32;
            let day = at.day().min(time::util::days_in_month(month, year));
            match time::Date::from_calendar_date(year, month, day) {
                Ok(date) => at.replace_date(date).unix_timestamp(),
                Err(_) => ts + 30 * 86_400 * months,
            }
        }
        _ => ts,
    }
}

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

/// One invoice line for a subscription item's price over `period`.
#[allow(clippy::too_many_arguments)]
fn invoice_line(
    invoice_id: &str,
    sub_id: &str,
    item_id: &Value,
    price: &Value,
    quantity: i64,
    amount: i64,
    currency: &Value,
    period: (i64, i64),
) -> Value {
    json!({
        "id": new_id("il"),
        "object": "line_item",
        "amount": amount,
        "currency": currency,
        "description": format!("{quantity} × {}", price["product"].as_str().unwrap_or_default()),
        "discount_amounts": [],
        "discountable": true,
        "discounts": [],
        "invoice": invoice_id,
        "livemode": false,
        "metadata": {},
        "parent": {
            "type": "subscription_item_details",
            "invoice_item_details": null,
            "subscription_item_details": {
                "invoice_item": null,
                "proration": false,
                "proration_details": { "credited_items": null },
                "subscription": sub_id,
                "subscription_item": item_id
            }
        },
        "period": { "start": period.0, "end": period.1 },
        "pretax_credit_amounts": [],
        "pricing": {
            "type": "price_details",
            "price_details": { "price": price["id"], "product": price["product"] },
            "unit_amount_decimal": price["unit_amount_decimal"]
        },
        "quantity": quantity,
        "subtotal": amount,
        "taxes": []
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

/// Issues an invoice for `lines` and emits what Stripe does: `invoice.created` (draft),
/// `invoice.finalized` (open), then [`settle`]. Returns the invoice as it ends.
#[allow(clippy::too_many_arguments)]
fn issue_invoice(
    state: &mut State,
    customer: &str,
    sub_id: &str,
    invoice_id: &str,
    metadata: &Value,
    currency: &Value,
    lines: Vec<Value>,
    total: i64,
    billing_reason: &str,
    period: (i64, i64),
) -> Value {
    let now = state.now();
    let email = state
        .customers
        .get(customer)
        .and_then(|c| c["email"].as_str().map(str::to_owned));
    let number = format!(
        "{}-{:04}",
        &customer[4..customer.len().min(12)].to_uppercase(),
        state.invoices_count() + 1
    );
    let mut invoice = json!({
        "id": invoice_id,
        "object": "invoice",
        "account_country": "GB",
        "account_name": "creditgate (emulated)",
        "account_tax_ids": null,
        "amount_due": total,
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_remaining": total,
        "amount_shipping": 0,
        "application": null,
        "attempt_count": 0,
        "attempted": false,
        "auto_advance": false,
        "automatic_tax": { "disabled_reason": null, "enabled": false, "liability": null, "provider": null, "status": null },
        "billing_reason": billing_reason,
        "collection_method": "charge_automatically",
        "created": now,
        "currency": currency,
        "custom_fields": null,
        "customer": customer,
        "customer_address": null,
        "customer_email": email,
        "customer_name": null,
        "customer_phone": null,
        "customer_shipping": null,
        "customer_tax_exempt": "none",
        "customer_tax_ids": [],
        "default_payment_method": null,
        "default_source": null,
        "default_tax_rates": [],
        "description": null,
        "discounts": [],
        "due_date": null,
        "effective_at": null,
        "ending_balance": null,
        "footer": null,
        "from_invoice": null,
        "hosted_invoice_url": null,
        "invoice_pdf": null,
        "issuer": { "type": "self" },
        "last_finalization_error": null,
        "latest_revision": null,
        "lines": { "object": "list", "data": lines, "has_more": false, "url": format!("/v1/invoices/{invoice_id}/lines") },
        "livemode": false,
        "metadata": {},
        "next_payment_attempt": null,
        "number": null,
        "on_behalf_of": null,
        "parent": {
            "type": "subscription_details",
            "quote_details": null,
            "subscription_details": { "metadata": metadata, "subscription": sub_id, "subscription_proration_date": null }
        },
        "payment_settings": { "default_mandate": null, "payment_method_options": null, "payment_method_types": null },
        "period_end": period.1,
        "period_start": period.0,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": null,
        "rendering": null,
        "shipping_cost": null,
        "shipping_details": null,
        "starting_balance": 0,
        "statement_descriptor": null,
        "status": "draft",
        "status_transitions": { "finalized_at": null, "marked_uncollectible_at": null, "paid_at": null, "voided_at": null },
        "subtotal": total,
        "subtotal_excluding_tax": total,
        "test_clock": null,
        "total": total,
        "total_discount_amounts": [],
        "total_excluding_tax": total,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": null
    });
    state
        .invoices
        .insert(invoice_id.to_owned(), invoice.clone());
    emit(state, "invoice.created", &invoice, None);

    let draft = invoice.clone();
    invoice["status"] = json!("open");
    invoice["number"] = json!(number);
    invoice["effective_at"] = json!(now);
    invoice["status_transitions"]["finalized_at"] = json!(now);
    invoice["hosted_invoice_url"] = json!(format!("https://invoice.stripe.com/i/{invoice_id}"));
    emit(
        state,
        "invoice.finalized",
        &invoice,
        Some(crate::webhooks::previous_attributes(&draft, &invoice)),
    );

    settle(state, invoice)
}

/// Attempts to pay an open invoice: paid (`invoice.paid`, `invoice.payment_succeeded`, after the
/// payment's own events), or, when the customer's payment method is marked failing,
/// `invoice.payment_failed` with the attempt counted. Returns the invoice as it ends.
pub fn settle(state: &mut State, mut invoice: Value) -> Value {
    let now = state.now();
    let id = invoice["id"].as_str().unwrap_or_default().to_owned();
    let customer = invoice["customer"].as_str().unwrap_or_default().to_owned();
    let due = invoice["amount_remaining"].as_i64().unwrap_or(0);
    let currency = invoice["currency"].clone();
    let open = invoice.clone();
    if due > 0 && state.failing_customers.contains(&customer) {
        let attempts = invoice["attempt_count"].as_u64().unwrap_or(0) + 1;
        invoice["attempted"] = json!(true);
        invoice["attempt_count"] = json!(attempts);
        invoice["next_payment_attempt"] = match RETRY_DAYS.get(attempts as usize - 1) {
            Some(days) => json!(now + days * 86_400),
            None => Value::Null,
        };
        state.invoices.insert(id, invoice.clone());
        emit(
            state,
            "invoice.payment_failed",
            &invoice,
            Some(crate::webhooks::previous_attributes(&open, &invoice)),
        );
        return invoice;
    }
    if due > 0 {
        pay(state, &customer, due, &currency, &json!({}));
    }
    let attempts = invoice["attempt_count"].as_u64().unwrap_or(0) + u64::from(due > 0);
    invoice["status"] = json!("paid");
    invoice["amount_paid"] = json!(invoice["total"].as_i64().unwrap_or(0));
    invoice["amount_remaining"] = json!(0);
    invoice["attempted"] = json!(true);
    invoice["attempt_count"] = json!(attempts);
    invoice["next_payment_attempt"] = Value::Null;
    invoice["status_transitions"]["paid_at"] = json!(now);
    state.invoices.insert(id, invoice.clone());
    emit(
        state,
        "invoice.paid",
        &invoice,
        Some(crate::webhooks::previous_attributes(&open, &invoice)),
    );
    emit(state, "invoice.payment_succeeded", &invoice, None);
    invoice
}

pub const CLOCK_ADVANCE: &[&str] = &["seconds"];
pub const PAYMENT_METHOD: &[&str] = &["failing"];

/// Test route: mark a customer's payment method as failing (or working again).
pub fn set_payment_method(
    state: &mut State,
    customer: &str,
    params: crate::params::Params,
) -> Result<Value, ApiError> {
    if !state.customers.contains(customer) {
        return Err(ApiError::no_such("customer", customer, "customer"));
    }
    let failing = params
        .bool("failing")?
        .ok_or_else(|| ApiError::missing_param("failing"))?;
    if failing {
        state.failing_customers.insert(customer.to_owned());
    } else {
        state.failing_customers.remove(customer);
    }
    Ok(json!({ "customer": customer, "failing": failing }))
}

fn set_now(state: &mut State, at: i64) {
    let now = state.now();
    if at > now {
        state.clock_offset += at - now;
    }
}

fn period_end(sub: &Value) -> i64 {
    sub["items"]["data"][0]["current_period_end"]
        .as_i64()
        .unwrap_or(i64::MAX)
}

/// Test route: moves the emulator's clock forward by `seconds`, and on the way does what Stripe
/// does at each moment passed, in time order: `customer.subscription.trial_will_end` three days
/// before a trial ends; at a period end, cancellation (`cancel_at_period_end`) or renewal (a
/// `subscription_cycle` invoice, paid, or failed when the customer's payment method is marked
/// failing, which makes the subscription `past_due`); and a retry of past-due invoices.
pub fn advance_clock(state: &mut State, params: crate::params::Params) -> Result<Value, ApiError> {
    let seconds = params
        .int("seconds")?
        .ok_or_else(|| ApiError::missing_param("seconds"))?;
    if !(1..=5 * 366 * 86_400).contains(&seconds) {
        return Err(ApiError::invalid(
            "`seconds` must be between 1 and five years.",
            Some("seconds"),
        ));
    }
    let target = state.now() + seconds;
    loop {
        // The next moment something happens, if it falls inside the advance.
        let mut next: Option<(i64, String, Moment)> = None;
        for sub in state.subscriptions.newest_first() {
            let status = sub["status"].as_str().unwrap_or_default();
            if !matches!(status, "active" | "trialing" | "past_due") {
                continue;
            }
            let id = sub["id"].as_str().unwrap_or_default().to_owned();
            let mut consider = |at: i64, moment: Moment| {
                if at <= target && next.as_ref().is_none_or(|(t, _, _)| at < *t) {
                    next = Some((at, id.clone(), moment));
                }
            };
            if status == "past_due"
                && let Some(invoice) = sub["latest_invoice"]
                    .as_str()
                    .and_then(|i| state.invoices.get(i))
                && invoice["status"] == "open"
                && let Some(at) = invoice["next_payment_attempt"].as_i64()
            {
                consider(at, Moment::Retry);
            }
            if status == "trialing"
                && let Some(trial_end) = sub["trial_end"].as_i64()
                && !state.trial_will_end_sent.contains(&id)
            {
                consider(trial_end - 3 * 86_400, Moment::TrialWarning);
            }
            consider(period_end(sub), Moment::PeriodEnd);
        }
        let Some((at, id, moment)) = next else { break };
        set_now(state, at);
        match moment {
            Moment::TrialWarning => {
                state.trial_will_end_sent.insert(id.clone());
                if let Some(sub) = state.subscriptions.get(&id).cloned() {
                    emit(state, "customer.subscription.trial_will_end", &sub, None);
                }
            }
            Moment::PeriodEnd => roll_period(state, &id)?,
            Moment::Retry => retry_invoice(state, &id),
        }
    }
    set_now(state, target);
    Ok(json!({ "object": "test_clock_advance", "frozen_time": state.now() }))
}

#[derive(Debug, Clone, Copy)]
enum Moment {
    TrialWarning,
    PeriodEnd,
    Retry,
}

/// Stripe's Smart Retries, as the emulator schedules them: after the 1st, 2nd and 3rd failed
/// attempt, retry 3, 5 and 7 days later; after the 4th failure the subscription is `unpaid`.
pub const RETRY_DAYS: &[i64] = &[3, 5, 7];

/// A scheduled retry of a past-due subscription's open invoice: paid → `active`; failed for the
/// last time → `unpaid`.
fn retry_invoice(state: &mut State, sub_id: &str) {
    let Some(old) = state.subscriptions.get(sub_id).cloned() else {
        return;
    };
    let Some(invoice) = old["latest_invoice"]
        .as_str()
        .and_then(|i| state.invoices.get(i))
        .cloned()
    else {
        return;
    };
    let settled = settle(state, invoice);
    let status = if settled["status"] == "paid" {
        "active"
    } else if settled["next_payment_attempt"].is_null() {
        "unpaid"
    } else {
        return;
    };
    let mut sub = old.clone();
    sub["status"] = json!(status);
    state.subscriptions.insert(sub_id.to_owned(), sub.clone());
    emit(
        state,
        "customer.subscription.updated",
        &sub,
        Some(crate::webhooks::previous_attributes(&old, &sub)),
    );
}

/// A subscription reaching its period end: cancelled if it asked to be, else renewed.
fn roll_period(state: &mut State, id: &str) -> Result<(), ApiError> {
    let old = state.subscriptions.fetch("subscription", id, "id")?;
    let now = state.now();
    let mut sub = old.clone();
    if old["cancel_at_period_end"] == true {
        sub["status"] = json!("canceled");
        sub["canceled_at"] = json!(now);
        sub["ended_at"] = json!(now);
        state.subscriptions.insert(id.to_owned(), sub.clone());
        emit(state, "customer.subscription.deleted", &sub, None);
        return Ok(());
    }
    let customer = old["customer"].as_str().unwrap_or_default().to_owned();
    let currency = old["currency"].clone();
    let invoice_id = new_id("in");
    let start = period_end(&old);
    let mut lines = Vec::new();
    let mut total = 0;
    let mut end = start;
    let items = old["items"]["data"].as_array().cloned().unwrap_or_default();
    for (index, item) in items.iter().enumerate() {
        let interval = item["price"]["recurring"]["interval"]
            .as_str()
            .unwrap_or("month");
        let count = item["price"]["recurring"]["interval_count"]
            .as_i64()
            .unwrap_or(1);
        end = advance(start, interval, count);
        let quantity = item["quantity"].as_i64().unwrap_or(1);
        let amount = item["price"]["unit_amount"].as_i64().unwrap_or(0) * quantity;
        total += amount;
        sub["items"]["data"][index]["current_period_start"] = json!(start);
        sub["items"]["data"][index]["current_period_end"] = json!(end);
        lines.push(invoice_line(
            &invoice_id,
            id,
            &item["id"],
            &item["price"],
            quantity,
            amount,
            &currency,
            (start, end),
        ));
    }
    let metadata = old["metadata"].clone();
    // The period rolls first (as Stripe's subscription.updated precedes the invoice's events).
    sub["status"] = json!("active");
    sub["latest_invoice"] = json!(invoice_id);
    state.subscriptions.insert(id.to_owned(), sub.clone());
    let invoice = issue_invoice(
        state,
        &customer,
        id,
        &invoice_id,
        &metadata,
        &currency,
        lines,
        total,
        "subscription_cycle",
        (start, end),
    );
    if invoice["status"] != "paid" {
        sub["status"] = json!("past_due");
        state.subscriptions.insert(id.to_owned(), sub.clone());
    }
    emit(
        state,
        "customer.subscription.updated",
        &sub,
        Some(crate::webhooks::previous_attributes(&old, &sub)),
    );
    Ok(())
}

pub const SUBSCRIPTION_UPDATE: &[&str] = &[
    "items",
    "proration_behavior",
    "cancel_at_period_end",
    "metadata",
];
pub const SUBSCRIPTION_LIST: &[&str] = &[
    "customer",
    "status",
    "price",
    "limit",
    "starting_after",
    "ending_before",
];
pub const SUBSCRIPTION_CANCEL: &[&str] = &["invoice_now", "prorate"];

fn live(status: &str) -> bool {
    !matches!(status, "canceled" | "incomplete_expired")
}

/// Price change (`items[0][id]` + `items[0][price]`, `proration_behavior` recorded),
/// `cancel_at_period_end`, `metadata`. Emits `customer.subscription.updated` with
/// `previous_attributes`.
pub fn update_subscription(
    state: &mut State,
    id: &str,
    params: crate::params::Params,
) -> Result<Value, ApiError> {
    let old = state.subscriptions.fetch("subscription", id, "id")?;
    if !live(old["status"].as_str().unwrap_or_default()) {
        return Err(ApiError::invalid(
            "A canceled subscription can only update its cancellation_details and metadata.",
            None,
        ));
    }
    let mut sub = old.clone();
    if let Some(behavior) = params.str("proration_behavior")? {
        if !["create_prorations", "none", "always_invoice"].contains(&behavior.as_str()) {
            return Err(ApiError::invalid(
                "Invalid proration_behavior",
                Some("proration_behavior"),
            ));
        }
        // Recorded for `GET /_emulator/subscriptions/{id}`; the emulator bills no prorations.
        state
            .proration_behaviors
            .entry(id.to_owned())
            .or_default()
            .push(behavior);
    }
    if let Some(items) = params.objects("items")? {
        for (index, item) in items.iter().enumerate() {
            item.refuse_unknown(&["id", "price", "quantity"], &format!("items[{index}]"))?;
            let item_id = item
                .required_str("id")
                .map_err(|_| ApiError::missing_param(&format!("items[{index}][id]")))?;
            let position = sub["items"]["data"]
                .as_array()
                .and_then(|d| d.iter().position(|i| i["id"] == item_id.as_str()))
                .ok_or_else(|| {
                    ApiError::no_such(
                        "subscription_item",
                        &item_id,
                        &format!("items[{index}][id]"),
                    )
                })?;
            if let Some(price_id) = item.str("price")? {
                let price = state.prices.get(&price_id).cloned().ok_or_else(|| {
                    ApiError::no_such("price", &price_id, &format!("items[{index}][price]"))
                })?;
                if price["type"] != "recurring" || price["active"] != true {
                    return Err(ApiError::invalid(
                        "The price must be an active recurring price.",
                        Some(&format!("items[{index}][price]")),
                    ));
                }
                sub["items"]["data"][position]["plan"] = plan_of(&price);
                sub["items"]["data"][position]["price"] = price;
            }
            if let Some(quantity) = item.int("quantity")? {
                sub["items"]["data"][position]["quantity"] = json!(quantity);
            }
        }
    }
    if let Some(flag) = params.bool("cancel_at_period_end")? {
        sub["cancel_at_period_end"] = json!(flag);
        let period_end = sub["items"]["data"][0]["current_period_end"].clone();
        sub["cancel_at"] = if flag { period_end } else { Value::Null };
        sub["cancellation_details"]["reason"] = if flag {
            json!("cancellation_requested")
        } else {
            Value::Null
        };
    }
    sub["metadata"] = params.merge_metadata(&sub["metadata"])?;
    state.subscriptions.insert(id.to_owned(), sub.clone());
    let previous = crate::webhooks::previous_attributes(&old, &sub);
    if previous.as_object().is_some_and(|m| !m.is_empty()) {
        emit(state, "customer.subscription.updated", &sub, Some(previous));
    }
    Ok(sub)
}

/// Cancels at once: status `canceled`, `ended_at` now, `customer.subscription.deleted`.
/// `prorate=true` is recorded (as `cancel_prorate` in `GET /_emulator/subscriptions/{id}`'s
/// proration behaviours); the emulator bills no prorations.
pub fn cancel_subscription(
    state: &mut State,
    id: &str,
    params: crate::params::Params,
) -> Result<Value, ApiError> {
    let mut sub = state.subscriptions.fetch("subscription", id, "id")?;
    let prorate = params.bool("prorate")?.unwrap_or(false);
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

pub fn list_subscriptions(state: &State, params: crate::params::Params) -> Result<Value, ApiError> {
    let customer = params.str("customer")?;
    let status = params.str("status")?;
    let price = params.str("price")?;
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
    crate::store::list("/v1/subscriptions", &params, matching)
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

#[cfg(test)]
mod tests {
    use super::advance;

    #[test]
    fn a_month_from_the_31st_of_january_is_the_end_of_february() {
        // 2027-01-31T10:00:00Z → 2027-02-28T10:00:00Z
        assert_eq!(advance(1_801_389_600, "month", 1), 1_803_808_800);
        // and a year from a leap day is the 28th
        let leap = 1_709_200_800; // 2024-02-29T10:00:00Z
        assert_eq!(advance(leap, "year", 1), 1_740_736_800); // 2025-02-28T10:00:00Z
        assert_eq!(advance(0, "week", 2), 14 * 86_400);
    }
}
