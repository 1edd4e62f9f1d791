//! Prices, in the shape of Stripe's current API version.

use serde_json::{Value, json};

use crate::engine::events::{emit, previous_attributes};
use crate::engine::store::{State, list, new_id};
use crate::error::ApiError;
use crate::params::Params;

/// Gives `key` to `price_id`: refused if another price holds it, unless `transfer` moves it.
fn claim_lookup_key(
    state: &mut State,
    price_id: &str,
    key: &str,
    transfer: bool,
) -> Result<(), ApiError> {
    if key.len() > 200 {
        return Err(ApiError::invalid(
            "lookup_key must be at most 200 characters",
            Some("lookup_key"),
        ));
    }
    let holder = state
        .prices
        .newest_first()
        .find(|p| p["lookup_key"] == key && p["id"] != price_id)
        .and_then(|p| p["id"].as_str().map(str::to_owned));
    if let Some(holder) = holder {
        if !transfer {
            return Err(ApiError::invalid(
                format!(
                    "A price (`{holder}`) already uses that lookup key. Pass `transfer_lookup_key=true` to move it to this price."
                ),
                Some("lookup_key"),
            ));
        }
        if let Some(p) = state.prices.get_mut(&holder) {
            p["lookup_key"] = Value::Null;
        }
    }
    Ok(())
}

pub fn create_price(state: &mut State, params: Params) -> Result<Value, ApiError> {
    let currency = params.required_str("currency")?.to_lowercase();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(ApiError::invalid(
            format!("Invalid currency: {currency}"),
            Some("currency"),
        ));
    }
    let product = params.required_str("product")?;
    if !state.products.contains(&product) {
        return Err(ApiError::no_such("product", &product, "product"));
    }
    let unit_amount = params
        .int("unit_amount")?
        .ok_or_else(|| ApiError::missing_param("unit_amount"))?;
    if !(0..=99_999_999).contains(&unit_amount) {
        return Err(ApiError::invalid(
            "Invalid unit_amount",
            Some("unit_amount"),
        ));
    }
    let recurring = match params.object("recurring")? {
        None => Value::Null,
        Some(r) => {
            r.refuse_unknown(
                &[
                    "interval",
                    "interval_count",
                    "usage_type",
                    "trial_period_days",
                ],
                "recurring",
            )?;
            let interval = r
                .required_str("interval")
                .map_err(|_| ApiError::missing_param("recurring[interval]"))?;
            if !["day", "week", "month", "year"].contains(&interval.as_str()) {
                return Err(ApiError::invalid(
                    "Invalid recurring[interval]: must be one of day, week, month, or year",
                    Some("recurring[interval]"),
                ));
            }
            let count = r.int("interval_count")?.unwrap_or(1);
            if !(1..=52).contains(&count) {
                return Err(ApiError::invalid(
                    "Invalid recurring[interval_count]",
                    Some("recurring[interval_count]"),
                ));
            }
            json!({
                "interval": interval,
                "interval_count": count,
                "meter": null,
                "trial_period_days": r.int("trial_period_days")?,
                "usage_type": r.str("usage_type")?.unwrap_or_else(|| "licensed".into()),
            })
        }
    };
    let id = new_id("price");
    let lookup_key = params.str("lookup_key")?.filter(|k| !k.is_empty());
    if let Some(key) = &lookup_key {
        claim_lookup_key(
            state,
            &id,
            key,
            params.bool("transfer_lookup_key")?.unwrap_or(false),
        )?;
    }
    let price_type = if recurring.is_null() {
        "one_time"
    } else {
        "recurring"
    };
    let mut price = json!({
        "id": id,
        "object": "price",
        "active": params.bool("active")?.unwrap_or(true),
        "billing_scheme": "per_unit",
        "created": state.now(),
        "currency": currency,
        "custom_unit_amount": null,
        "livemode": false,
        "lookup_key": lookup_key,
        "metadata": {},
        "nickname": params.str("nickname")?,
        "product": product,
        "recurring": recurring,
        "tax_behavior": params.str("tax_behavior")?.unwrap_or_else(|| "unspecified".into()),
        "tiers_mode": null,
        "transform_quantity": null,
        "type": price_type,
        "unit_amount": unit_amount,
        "unit_amount_decimal": unit_amount.to_string()
    });
    price["metadata"] = params.merge_metadata(&price["metadata"])?;
    state.prices.insert(id, price.clone());
    emit(state, "price.created", &price, None);
    Ok(price)
}

pub fn update_price(state: &mut State, id: &str, params: Params) -> Result<Value, ApiError> {
    if !state.prices.contains(id) {
        return Err(ApiError::no_such("price", id, "id"));
    }
    if let Some(key) = params.str("lookup_key")?
        && !key.is_empty()
    {
        claim_lookup_key(
            state,
            id,
            &key,
            params.bool("transfer_lookup_key")?.unwrap_or(false),
        )?;
    }
    let price = state
        .prices
        .get_mut(id)
        .ok_or_else(|| ApiError::no_such("price", id, "id"))?;
    let mut updated = price.clone();
    if let Some(active) = params.bool("active")? {
        updated["active"] = json!(active);
    }
    for field in ["lookup_key", "nickname"] {
        if let Some(v) = params.nullable_str(field)? {
            updated[field] = v;
        }
    }
    if let Some(t) = params.str("tax_behavior")? {
        updated["tax_behavior"] = json!(t);
    }
    updated["metadata"] = params.merge_metadata(&updated["metadata"])?;
    let old = price.clone();
    *price = updated.clone();
    if updated != old {
        emit(
            state,
            "price.updated",
            &updated,
            Some(previous_attributes(&old, &updated)),
        );
    }
    refresh_subscription_prices(state);
    Ok(updated)
}

/// Stripe serves a subscription item's price as the price is now (a lookup key moved by
/// `transfer_lookup_key`, say), not as it was when the item was made.
fn refresh_subscription_prices(state: &mut State) {
    let ids: Vec<String> = state
        .subscriptions
        .newest_first()
        .filter_map(|s| s["id"].as_str().map(str::to_owned))
        .collect();
    for id in ids {
        let Some(sub) = state.subscriptions.get(&id) else {
            continue;
        };
        let mut fresh = sub.clone();
        if let Some(items) = fresh["items"]["data"].as_array_mut() {
            for item in items {
                if let Some(price) = item["price"]["id"]
                    .as_str()
                    .and_then(|p| state.prices.get(p))
                {
                    item["price"] = price.clone();
                }
            }
        }
        if let Some(slot) = state.subscriptions.get_mut(&id) {
            *slot = fresh;
        }
    }
}

pub fn list_prices(state: &State, params: Params) -> Result<Value, ApiError> {
    let active = params.bool("active")?;
    let product = params.str("product")?;
    let lookup_keys = params.strings("lookup_keys")?;
    let price_type = params.str("type")?;
    let currency = params.str("currency")?;
    let matching = state.prices.newest_first().filter(|p| {
        active.is_none_or(|a| p["active"] == a)
            && product.as_deref().is_none_or(|id| p["product"] == id)
            && lookup_keys
                .as_ref()
                .is_none_or(|keys| keys.iter().any(|k| p["lookup_key"] == k.as_str()))
            && price_type.as_deref().is_none_or(|t| p["type"] == t)
            && currency.as_deref().is_none_or(|c| p["currency"] == c)
    });
    list("/v1/prices", &params, matching)
}
