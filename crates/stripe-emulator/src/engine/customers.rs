//! Customers, in the shape of Stripe's current API version.

use serde_json::{Value, json};

use crate::engine::events::{emit, previous_attributes};
use crate::engine::store::{State, list, new_id};
use crate::error::ApiError;
use crate::params::Params;

pub fn create_customer(state: &mut State, params: Params) -> Result<Value, ApiError> {
    let id = new_id("cus");
    let prefix: String = id[4..12].to_uppercase();
    let mut customer = json!({
        "id": id,
        "object": "customer",
        "address": null,
        "balance": 0,
        "created": state.now(),
        "currency": null,
        "default_source": null,
        "delinquent": false,
        "description": null,
        "discount": null,
        "email": null,
        "invoice_prefix": prefix,
        "invoice_settings": {
            "custom_fields": null,
            "default_payment_method": null,
            "footer": null,
            "rendering_options": null
        },
        "livemode": false,
        "metadata": {},
        "name": null,
        "next_invoice_sequence": 1,
        "phone": null,
        "preferred_locales": [],
        "shipping": null,
        "tax_exempt": "none",
        "test_clock": null
    });
    apply_customer_fields(&mut customer, &params)?;
    state.customers.insert(id, customer.clone());
    emit(state, "customer.created", &customer, None);
    Ok(customer)
}

fn apply_customer_fields(customer: &mut Value, params: &Params) -> Result<(), ApiError> {
    for field in ["email", "name", "description", "phone", "invoice_prefix"] {
        if let Some(v) = params.nullable_str(field)? {
            customer[field] = v;
        }
    }
    if let Some(locales) = params.strings("preferred_locales")? {
        customer["preferred_locales"] = json!(locales);
    }
    customer["metadata"] = params.merge_metadata(&customer["metadata"])?;
    Ok(())
}

pub fn update_customer(state: &mut State, id: &str, params: Params) -> Result<Value, ApiError> {
    let customer = state
        .customers
        .get_mut(id)
        .ok_or_else(|| ApiError::no_such("customer", id, "id"))?;
    let old = customer.clone();
    let mut updated = customer.clone();
    apply_customer_fields(&mut updated, &params)?;
    *customer = updated.clone();
    if updated != old {
        emit(
            state,
            "customer.updated",
            &updated,
            Some(previous_attributes(&old, &updated)),
        );
    }
    Ok(updated)
}

pub fn list_customers(state: &State, params: Params) -> Result<Value, ApiError> {
    let email = params.str("email")?;
    let matching = state
        .customers
        .newest_first()
        .filter(|c| email.as_deref().is_none_or(|e| c["email"] == e));
    list("/v1/customers", &params, matching)
}
