//! Checkout Sessions: create (modes `payment` and `subscription`), retrieve, expire.
//! Completing a session as a paying customer would (subscription, invoice, payment, and the
//! events Stripe emits for them) is the next step of the emulator (issue 3).

use serde_json::{Value, json};

use crate::engine::customers::create_customer;
use crate::engine::events::emit;
use crate::engine::payments::{customer_details, pay};
use crate::engine::store::{State, list, new_id};
use crate::engine::subscriptions::complete_subscription;
use crate::error::ApiError;
use crate::params::Params;

/// A session stays open for 24 hours unless `expires_at` says otherwise (30 min to 24 h).
const DEFAULT_LIFETIME: i64 = 24 * 3600;

pub fn create_session(state: &mut State, params: Params) -> Result<Value, ApiError> {
    let mode = params.required_str("mode")?;
    if mode != "payment" && mode != "subscription" {
        return Err(ApiError::invalid(
            format!(
                "Invalid mode: {mode}; creditgate's emulator supports payment and subscription"
            ),
            Some("mode"),
        ));
    }
    let success_url = params.required_str("success_url")?;
    let items = params
        .objects("line_items")?
        .filter(|i| !i.is_empty())
        .ok_or_else(|| ApiError::missing_param("line_items"))?;

    let mut total = 0i64;
    let mut currency: Option<String> = None;
    for (index, item) in items.iter().enumerate() {
        item.refuse_unknown(&["price", "quantity"], &format!("line_items[{index}]"))?;
        let param = format!("line_items[{index}][price]");
        let price_id = item
            .str("price")?
            .ok_or_else(|| ApiError::missing_param(&param))?;
        let price = state
            .prices
            .get(&price_id)
            .ok_or_else(|| ApiError::no_such("price", &price_id, &param))?;
        if price["active"] != true {
            return Err(ApiError::invalid(
                format!("The price `{price_id}` is not active."),
                Some(&param),
            ));
        }
        let recurring = price["type"] == "recurring";
        if mode == "subscription" && !recurring {
            return Err(ApiError::invalid(
                "You must provide at least one recurring price in `subscription` mode when using prices.",
                Some(&param),
            ));
        }
        if mode == "payment" && recurring {
            return Err(ApiError::invalid(
                "You specified `payment` mode but passed a recurring price. Either switch to `subscription` mode or use only one-time prices.",
                Some(&param),
            ));
        }
        let quantity = item.int("quantity")?.unwrap_or(1);
        if !(1..=999_999).contains(&quantity) {
            return Err(ApiError::invalid(
                "Invalid quantity",
                Some(&format!("line_items[{index}][quantity]")),
            ));
        }
        let price_currency = price["currency"].as_str().unwrap_or_default().to_owned();
        if currency.as_ref().is_some_and(|c| c != &price_currency) {
            return Err(ApiError::invalid(
                "All prices must have the same currency.",
                Some(&param),
            ));
        }
        currency = Some(price_currency);
        total += price["unit_amount"].as_i64().unwrap_or(0) * quantity;
    }

    let customer = params.str("customer")?;
    if let Some(c) = &customer
        && !state.customers.contains(c)
    {
        return Err(ApiError::no_such("customer", c, "customer"));
    }
    let customer_email = params.str("customer_email")?;
    if customer.is_some() && customer_email.is_some() {
        return Err(ApiError::invalid(
            "You may only specify one of these parameters: customer, customer_email.",
            Some("customer_email"),
        ));
    }
    let now = state.now();
    let expires_at = params.int("expires_at")?.unwrap_or(now + DEFAULT_LIFETIME);
    if !(now + 1800..=now + DEFAULT_LIFETIME).contains(&expires_at) {
        return Err(ApiError::invalid(
            "The `expires_at` timestamp must be between 30 minutes and 24 hours from now.",
            Some("expires_at"),
        ));
    }
    // Nested parameters are kept on the session (not part of Stripe's object) for completion.
    let subscription_data = match params.object("subscription_data")? {
        Some(d) => {
            d.refuse_unknown(&["metadata", "trial_period_days"], "subscription_data")?;
            if mode != "subscription" {
                return Err(ApiError::invalid(
                    "`subscription_data` is only allowed in `subscription` mode.",
                    Some("subscription_data"),
                ));
            }
            json!({ "metadata": d.merge_metadata(&json!({}))?, "trial_period_days": d.int("trial_period_days")? })
        }
        None => Value::Null,
    };
    let payment_intent_data = match params.object("payment_intent_data")? {
        Some(d) => {
            d.refuse_unknown(&["metadata"], "payment_intent_data")?;
            if mode != "payment" {
                return Err(ApiError::invalid(
                    "`payment_intent_data` is only allowed in `payment` mode.",
                    Some("payment_intent_data"),
                ));
            }
            json!({ "metadata": d.merge_metadata(&json!({}))? })
        }
        None => Value::Null,
    };

    let id = format!("cs_test_{}", &new_id("x")[2..]);
    let mut session = json!({
        "id": id,
        "object": "checkout.session",
        "adaptive_pricing": { "enabled": false },
        "after_expiration": null,
        "allow_promotion_codes": params.bool("allow_promotion_codes")?,
        "amount_subtotal": total,
        "amount_total": total,
        "automatic_tax": { "enabled": false, "liability": null, "provider": null, "status": null },
        "billing_address_collection": null,
        "cancel_url": params.str("cancel_url")?,
        "client_reference_id": params.str("client_reference_id")?,
        "client_secret": null,
        "collected_information": null,
        "consent": null,
        "consent_collection": null,
        "created": now,
        "currency": currency,
        "currency_conversion": null,
        "custom_fields": [],
        "custom_text": { "after_submit": null, "shipping_address": null, "submit": null, "terms_of_service_acceptance": null },
        "customer": customer,
        "customer_creation": if customer.is_some() { Value::Null } else { json!("if_required") },
        "customer_details": null,
        "customer_email": customer_email,
        "discounts": [],
        "expires_at": expires_at,
        "invoice": null,
        "invoice_creation": null,
        "livemode": false,
        "locale": null,
        "metadata": {},
        "mode": mode,
        "payment_intent": null,
        "payment_link": null,
        "payment_method_collection": if mode == "subscription" { json!("always") } else { Value::Null },
        "payment_method_configuration_details": null,
        "payment_method_options": {},
        "payment_method_types": ["card"],
        "payment_status": "unpaid",
        "permissions": null,
        "phone_number_collection": { "enabled": false },
        "recovered_from": null,
        "saved_payment_method_options": null,
        "setup_intent": null,
        "shipping_address_collection": null,
        "shipping_cost": null,
        "shipping_options": [],
        "status": "open",
        "submit_type": null,
        "subscription": null,
        "success_url": success_url,
        "total_details": { "amount_discount": 0, "amount_shipping": 0, "amount_tax": 0 },
        "ui_mode": "hosted",
        "url": format!("https://checkout.stripe.com/c/pay/{id}"),
        "wallet_options": null,
    });
    session["metadata"] = params.merge_metadata(&session["metadata"])?;
    let line_items: Vec<Value> = items
        .iter()
        .map(|i| json!({ "price": i.str("price").ok().flatten(), "quantity": i.int("quantity").ok().flatten().unwrap_or(1) }))
        .collect();
    state.checkout_extras.insert(
        id.clone(),
        json!({ "line_items": line_items, "subscription_data": subscription_data, "payment_intent_data": payment_intent_data }),
    );
    state.checkout_sessions.insert(id, session.clone());
    Ok(session)
}

pub fn expire_session(state: &mut State, id: &str) -> Result<Value, ApiError> {
    let session = state
        .checkout_sessions
        .get_mut(id)
        .ok_or_else(|| ApiError::no_such("checkout.session", id, "session"))?;
    if session["status"] != "open" {
        return Err(ApiError::invalid(
            format!(
                "Only Checkout Sessions with a status in [\"open\"] can be expired. This Checkout Session has a status of \"{}\".",
                session["status"].as_str().unwrap_or_default()
            ),
            None,
        ));
    }
    session["status"] = json!("expired");
    session["url"] = Value::Null;
    let expired = session.clone();
    emit(state, "checkout.session.expired", &expired, None);
    Ok(expired)
}

/// `GET /v1/checkout/sessions/{id}/line_items`: what the session sells, each with its price.
pub fn line_items(state: &State, id: &str) -> Result<Value, ApiError> {
    let session = state
        .checkout_sessions
        .fetch("checkout.session", id, "session")?;
    let items = state
        .checkout_extras
        .get(id)
        .and_then(|e| e["line_items"].as_array().cloned())
        .unwrap_or_default();
    let currency = session["currency"].clone();
    let data: Vec<Value> = items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let price = item["price"]
                .as_str()
                .and_then(|p| state.prices.get(p))
                .cloned()
                .unwrap_or(Value::Null);
            let quantity = item["quantity"].as_i64().unwrap_or(1);
            let amount = price["unit_amount"].as_i64().unwrap_or(0) * quantity;
            let description = price["product"]
                .as_str()
                .and_then(|p| state.products.get(p))
                .and_then(|p| p["name"].as_str().map(str::to_owned));
            json!({
                "id": format!("li_{}{index}", id.trim_start_matches("cs_test_").chars().take(20).collect::<String>()),
                "object": "item",
                "adjustable_quantity": null,
                "amount_discount": 0,
                "amount_subtotal": amount,
                "amount_tax": 0,
                "amount_total": amount,
                "currency": currency,
                "description": description,
                "metadata": null,
                "price": price,
                "quantity": quantity,
            })
        })
        .collect();
    Ok(json!({
        "object": "list",
        "data": data,
        "has_more": false,
        "url": format!("/v1/checkout/sessions/{id}/line_items"),
    }))
}

/// `GET /v1/checkout/sessions`, filtered by `payment_intent`, `subscription`, `customer`, `status`.
pub fn list_sessions(state: &State, params: Params) -> Result<Value, ApiError> {
    let filters: Vec<(&str, Option<String>)> =
        ["payment_intent", "subscription", "customer", "status"]
            .into_iter()
            .map(|name| params.str(name).map(|v| (name, v)))
            .collect::<Result<_, _>>()?;
    let matching = state.checkout_sessions.newest_first().filter(|s| {
        filters
            .iter()
            .all(|(name, want)| want.as_deref().is_none_or(|w| s[*name] == w))
    });
    list("/v1/checkout/sessions", &params, matching)
}

/// Completing a Checkout Session as a paying customer would. Payment mode: a customer (made from
/// the given email when the session has none), a succeeded PaymentIntent and its Charge, the
/// session marked complete and paid, and the events Stripe emits, in Stripe's order
/// (`customer.created`, `payment_intent.created`, `charge.succeeded`,
/// `payment_intent.succeeded`, `checkout.session.completed`). Subscription mode (subscription,
/// first invoice, payment) is not emulated yet and is refused with a clear error.
pub fn complete_session(state: &mut State, id: &str, params: Params) -> Result<Value, ApiError> {
    let session = state
        .checkout_sessions
        .fetch("checkout.session", id, "session")?;
    if session["status"] != "open" {
        return Err(ApiError::invalid(
            format!(
                "This Checkout Session is {}; only open sessions can be completed.",
                session["status"].as_str().unwrap_or_default()
            ),
            None,
        ));
    }
    // The paying customer: the session's, or one made from the email typed into Checkout.
    let customer = match session["customer"].as_str() {
        Some(c) => c.to_owned(),
        None => {
            let email = params
                .str("email")?
                .or_else(|| session["customer_email"].as_str().map(str::to_owned))
                .ok_or_else(|| ApiError::missing_param("email"))?;
            let mut raw = serde_json::Map::new();
            raw.insert("email".into(), json!(email));
            let created = create_customer(state, Params::new(raw, &["email"])?)?;
            created["id"].as_str().unwrap_or_default().to_owned()
        }
    };
    if session["mode"] == "subscription" {
        return complete_subscription(state, id, session, &customer);
    }
    let email = state
        .customers
        .get(&customer)
        .and_then(|c| c["email"].as_str().map(str::to_owned));
    let amount = session["amount_total"].as_i64().unwrap_or(0);
    let currency = session["currency"].clone();
    let metadata = state
        .checkout_extras
        .get(id)
        .map(|e| e["payment_intent_data"]["metadata"].clone())
        .filter(|m| m.is_object())
        .unwrap_or_else(|| json!({}));
    let (pi_id, _) = pay(state, &customer, amount, &currency, &metadata);

    let mut completed = session;
    completed["status"] = json!("complete");
    completed["payment_status"] = json!("paid");
    completed["customer"] = json!(customer);
    completed["payment_intent"] = json!(pi_id);
    completed["url"] = Value::Null;
    completed["customer_details"] = customer_details(email);
    state
        .checkout_sessions
        .insert(id.to_owned(), completed.clone());
    emit(state, "checkout.session.completed", &completed, None);
    Ok(completed)
}
