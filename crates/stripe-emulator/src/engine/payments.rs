//! Payments: a successful card payment (a PaymentIntent and its Charge, with their events),
//! refunds, disputes and billing portal sessions.

use serde_json::{Value, json};

use crate::engine::events::{emit, previous_attributes};
use crate::engine::store::{State, new_id};
use crate::error::ApiError;
use crate::params::Params;

fn address() -> Value {
    json!({ "city": null, "country": null, "line1": null, "line2": null, "postal_code": null, "state": null })
}

pub fn customer_details(email: Option<String>) -> Value {
    json!({
        "address": address(), "business_name": null, "email": email, "individual_name": null,
        "name": null, "phone": null, "tax_exempt": "none", "tax_ids": []
    })
}

/// A successful card payment: a PaymentIntent (created, then succeeded) and its Charge, with
/// `payment_intent.created`, `charge.succeeded` and `payment_intent.succeeded`. Returns
/// (payment intent id, charge id).
pub fn pay(
    state: &mut State,
    customer: &str,
    amount: i64,
    currency: &Value,
    metadata: &Value,
) -> (String, String) {
    let email = state
        .customers
        .get(customer)
        .and_then(|c| c["email"].as_str().map(str::to_owned));
    let now = state.now();
    let pi_id = new_id("pi");
    let charge_id = new_id("ch");
    let mut intent = json!({
        "id": pi_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": { "tip": {} },
        "amount_received": 0,
        "application": null,
        "application_fee_amount": null,
        "automatic_payment_methods": null,
        "canceled_at": null,
        "cancellation_reason": null,
        "capture_method": "automatic",
        "client_secret": format!("{pi_id}_secret_{}", &new_id("x")[2..]),
        "confirmation_method": "automatic",
        "created": now,
        "currency": currency,
        "customer": customer,
        "description": null,
        "excluded_payment_method_types": null,
        "last_payment_error": null,
        "latest_charge": null,
        "livemode": false,
        "metadata": metadata,
        "next_action": null,
        "on_behalf_of": null,
        "payment_method": null,
        "payment_method_configuration_details": null,
        "payment_method_options": {},
        "payment_method_types": ["card"],
        "processing": null,
        "receipt_email": null,
        "review": null,
        "setup_future_usage": null,
        "shipping": null,
        "statement_descriptor": null,
        "statement_descriptor_suffix": null,
        "status": "requires_payment_method",
        "transfer_data": null,
        "transfer_group": null
    });
    state.payment_intents.insert(pi_id.clone(), intent.clone());
    emit(state, "payment_intent.created", &intent, None);

    let charge = json!({
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": 0,
        "application": null,
        "application_fee": null,
        "application_fee_amount": null,
        "balance_transaction": new_id("txn"),
        "billing_details": { "address": address(), "email": email, "name": null, "phone": null, "tax_id": null },
        "calculated_statement_descriptor": "CREDITGATE",
        "captured": true,
        "created": now,
        "currency": currency,
        "customer": customer,
        "description": null,
        "disputed": false,
        "failure_balance_transaction": null,
        "failure_code": null,
        "failure_message": null,
        "fraud_details": {},
        "livemode": false,
        "metadata": metadata,
        "on_behalf_of": null,
        "outcome": { "advice_code": null, "network_advice_code": null, "network_decline_code": null, "network_status": "approved_by_network", "reason": null, "risk_level": "normal", "seller_message": "Payment complete.", "type": "authorized" },
        "paid": true,
        "payment_intent": pi_id,
        "payment_method": new_id("pm"),
        "receipt_email": null,
        "receipt_number": null,
        "receipt_url": null,
        "refunded": false,
        "refunds": { "object": "list", "data": [], "has_more": false, "url": format!("/v1/charges/{charge_id}/refunds") },
        "review": null,
        "shipping": null,
        "source_transfer": null,
        "statement_descriptor": null,
        "statement_descriptor_suffix": null,
        "status": "succeeded",
        "transfer_data": null,
        "transfer_group": null
    });
    state.charges.insert(charge_id.clone(), charge.clone());
    emit(state, "charge.succeeded", &charge, None);

    let previous = intent.clone();
    intent["status"] = json!("succeeded");
    intent["amount_received"] = json!(amount);
    intent["latest_charge"] = json!(charge_id);
    state.payment_intents.insert(pi_id.clone(), intent.clone());
    emit(
        state,
        "payment_intent.succeeded",
        &intent,
        Some(previous_attributes(&previous, &intent)),
    );

    (pi_id, charge_id)
}

fn find_charge(state: &State, params: &Params) -> Result<String, ApiError> {
    if let Some(charge) = params.str("charge")? {
        return state
            .charges
            .contains(&charge)
            .then_some(charge.clone())
            .ok_or_else(|| ApiError::no_such("charge", &charge, "charge"));
    }
    let intent = params
        .str("payment_intent")?
        .ok_or_else(|| ApiError::missing_param("charge"))?;
    state
        .payment_intents
        .get(&intent)
        .and_then(|pi| pi["latest_charge"].as_str().map(str::to_owned))
        .ok_or_else(|| ApiError::no_such("payment_intent", &intent, "payment_intent"))
}

/// Refunds all or part of a charge: a `re_` refund, the charge's `amount_refunded` (and
/// `refunded` when whole), `charge.refunded` with previous attributes and `refund.created`.
pub fn create_refund(state: &mut State, params: Params) -> Result<Value, ApiError> {
    let charge_id = find_charge(state, &params)?;
    let old = state
        .charges
        .get(&charge_id)
        .cloned()
        .unwrap_or(Value::Null);
    let refundable =
        old["amount"].as_i64().unwrap_or(0) - old["amount_refunded"].as_i64().unwrap_or(0);
    let amount = params.int("amount")?.unwrap_or(refundable);
    if amount <= 0 || amount > refundable {
        return Err(ApiError::invalid(
            format!(
                "Refund amount ({amount}) is greater than unrefunded amount on charge ({refundable})"
            ),
            Some("amount"),
        ));
    }
    let reason = params.str("reason")?;
    if let Some(r) = &reason
        && !["duplicate", "fraudulent", "requested_by_customer"].contains(&r.as_str())
    {
        return Err(ApiError::invalid("Invalid reason", Some("reason")));
    }
    let refund_id = new_id("re");
    let mut refund = json!({
        "id": refund_id,
        "object": "refund",
        "amount": amount,
        "balance_transaction": new_id("txn"),
        "charge": charge_id,
        "created": state.now(),
        "currency": old["currency"],
        "customer": old["customer"],
        "description": null,
        "destination_details": null,
        "metadata": {},
        "payment_intent": old["payment_intent"],
        "reason": reason,
        "receipt_number": null,
        "source_transfer_reversal": null,
        "status": "succeeded",
        "transfer_reversal": null
    });
    refund["metadata"] = params.merge_metadata(&refund["metadata"])?;
    state.refunds.insert(refund_id, refund.clone());
    let mut charge = old.clone();
    let refunded = old["amount_refunded"].as_i64().unwrap_or(0) + amount;
    charge["amount_refunded"] = json!(refunded);
    charge["refunded"] = json!(refunded >= old["amount"].as_i64().unwrap_or(0));
    state.charges.insert(charge_id, charge.clone());
    emit(
        state,
        "charge.refunded",
        &charge,
        Some(previous_attributes(&old, &charge)),
    );
    emit(state, "refund.created", &refund, None);
    Ok(refund)
}

/// Test route: the cardholder disputes a charge: a `du_` dispute needing a response, the
/// charge marked disputed, `charge.dispute.created`.
pub fn create_dispute(
    state: &mut State,
    charge_id: &str,
    params: Params,
) -> Result<Value, ApiError> {
    let old = state.charges.fetch("charge", charge_id, "charge")?;
    let amount = params
        .int("amount")?
        .unwrap_or_else(|| old["amount"].as_i64().unwrap_or(0));
    let now = state.now();
    let dispute_id = new_id("du");
    let dispute = json!({
        "id": dispute_id,
        "object": "dispute",
        "amount": amount,
        "balance_transactions": [],
        "charge": charge_id,
        "created": now,
        "currency": old["currency"],
        "enhanced_eligibility_types": [],
        "evidence": {
            "access_activity_log": null, "billing_address": null, "cancellation_policy": null,
            "cancellation_policy_disclosure": null, "cancellation_rebuttal": null,
            "customer_communication": null, "customer_email_address": null, "customer_name": null,
            "customer_purchase_ip": null, "customer_signature": null,
            "duplicate_charge_documentation": null, "duplicate_charge_explanation": null,
            "duplicate_charge_id": null, "enhanced_evidence": {}, "product_description": null,
            "receipt": null, "refund_policy": null, "refund_policy_disclosure": null,
            "refund_refusal_explanation": null, "service_date": null, "service_documentation": null,
            "shipping_address": null, "shipping_carrier": null, "shipping_date": null,
            "shipping_documentation": null, "shipping_tracking_number": null,
            "uncategorized_file": null, "uncategorized_text": null
        },
        "evidence_details": { "due_by": now + 7 * 86_400, "enhanced_eligibility": {}, "has_evidence": false, "past_due": false, "submission_count": 0 },
        "is_charge_refundable": false,
        "livemode": false,
        "metadata": {},
        "network_reason_code": null,
        "payment_intent": old["payment_intent"],
        "payment_method_details": null,
        "reason": params.str("reason")?.unwrap_or_else(|| "fraudulent".into()),
        "status": "needs_response"
    });
    let mut charge = old;
    charge["disputed"] = json!(true);
    state.charges.insert(charge_id.to_owned(), charge);
    state.disputes.insert(dispute_id, dispute.clone());
    emit(state, "charge.dispute.created", &dispute, None);
    Ok(dispute)
}

/// A billing portal session for a customer: a URL the customer follows to manage billing.
pub fn create_portal_session(state: &mut State, params: Params) -> Result<Value, ApiError> {
    let customer = params.required_str("customer")?;
    if !state.customers.contains(&customer) {
        return Err(ApiError::no_such("customer", &customer, "customer"));
    }
    let id = new_id("bps");
    Ok(json!({
        "id": id,
        "object": "billing_portal.session",
        "configuration": params.str("configuration")?.unwrap_or_else(|| "bpc_emulator_default".into()),
        "created": state.now(),
        "customer": customer,
        "flow": null,
        "livemode": false,
        "locale": params.str("locale")?,
        "on_behalf_of": null,
        "return_url": params.str("return_url")?,
        "url": format!("https://billing.stripe.com/p/session/test_{}", &id[4..])
    }))
}
