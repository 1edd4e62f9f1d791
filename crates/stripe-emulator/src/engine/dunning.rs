//! Dunning: paying an open invoice, or failing to when the customer's payment method is marked
//! failing, and Smart Retries on Stripe's schedule until the subscription is `unpaid`.

use serde_json::{Value, json};

use crate::engine::events::{emit, previous_attributes};
use crate::engine::payments::pay;
use crate::engine::store::State;
use crate::error::ApiError;

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
            Some(previous_attributes(&open, &invoice)),
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
        Some(previous_attributes(&open, &invoice)),
    );
    emit(state, "invoice.payment_succeeded", &invoice, None);
    invoice
}

/// The customer whose payment method a test route marks, or Stripe's 404.
pub fn check_customer(state: &State, customer: &str) -> Result<(), ApiError> {
    if !state.customers.contains(customer) {
        return Err(ApiError::no_such("customer", customer, "customer"));
    }
    Ok(())
}

/// Test route: mark a customer's payment method as failing (or working again).
pub fn set_payment_method(
    state: &mut State,
    customer: &str,
    failing: bool,
) -> Result<Value, ApiError> {
    check_customer(state, customer)?;
    if failing {
        state.failing_customers.insert(customer.to_owned());
    } else {
        state.failing_customers.remove(customer);
    }
    Ok(json!({ "customer": customer, "failing": failing }))
}

/// Stripe's Smart Retries, as the emulator schedules them: after the 1st, 2nd and 3rd failed
/// attempt, retry 3, 5 and 7 days later; after the 4th failure the subscription is `unpaid`.
pub const RETRY_DAYS: &[i64] = &[3, 5, 7];

/// A scheduled retry of a past-due subscription's open invoice: paid → `active`; failed for the
/// last time → `unpaid`.
pub fn retry_invoice(state: &mut State, sub_id: &str) {
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
        Some(previous_attributes(&old, &sub)),
    );
}
