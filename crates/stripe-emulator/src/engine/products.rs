//! Products, in the shape of Stripe's current API version.

use serde_json::{Value, json};

use crate::engine::events::{emit, previous_attributes};
use crate::engine::store::{State, list, new_id};
use crate::error::ApiError;
use crate::params::Params;

pub fn create_product(state: &mut State, params: Params) -> Result<Value, ApiError> {
    let id = match params.str("id")? {
        Some(id) => {
            if id.is_empty() || id.len() > 100 {
                return Err(ApiError::invalid("Invalid product id", Some("id")));
            }
            if state.products.contains(&id) {
                return Err(ApiError::already_exists("Product already exists.", "id"));
            }
            id
        }
        None => new_id("prod"),
    };
    let name = params.required_str("name")?;
    let now = state.now();
    let mut product = json!({
        "id": id,
        "object": "product",
        "active": params.bool("active")?.unwrap_or(true),
        "created": now,
        "default_price": null,
        "description": null,
        "images": [],
        "livemode": false,
        "marketing_features": [],
        "metadata": {},
        "name": name,
        "package_dimensions": null,
        "shippable": null,
        "statement_descriptor": null,
        "tax_code": null,
        "type": "service",
        "unit_label": null,
        "updated": now,
        "url": null
    });
    apply_product_fields(&mut product, &params)?;
    state.products.insert(id, product.clone());
    emit(state, "product.created", &product, None);
    Ok(product)
}

fn apply_product_fields(product: &mut Value, params: &Params) -> Result<(), ApiError> {
    if let Some(name) = params.str("name")? {
        if name.is_empty() {
            return Err(ApiError::invalid(
                "You must supply a non-empty name.",
                Some("name"),
            ));
        }
        product["name"] = json!(name);
    }
    if let Some(active) = params.bool("active")? {
        product["active"] = json!(active);
    }
    for field in ["description", "statement_descriptor", "unit_label", "url"] {
        if let Some(v) = params.nullable_str(field)? {
            product[field] = v;
        }
    }
    product["metadata"] = params.merge_metadata(&product["metadata"])?;
    Ok(())
}

pub fn update_product(state: &mut State, id: &str, params: Params) -> Result<Value, ApiError> {
    let now = state.now();
    let product = state
        .products
        .get_mut(id)
        .ok_or_else(|| ApiError::no_such("product", id, "id"))?;
    let old = product.clone();
    let mut updated = product.clone();
    apply_product_fields(&mut updated, &params)?;
    updated["updated"] = json!(now);
    *product = updated.clone();
    if previous_attributes(&old, &updated)
        .as_object()
        .is_some_and(|m| !m.is_empty())
    {
        emit(
            state,
            "product.updated",
            &updated,
            Some(previous_attributes(&old, &updated)),
        );
    }
    Ok(updated)
}

pub fn list_products(state: &State, params: Params) -> Result<Value, ApiError> {
    let active = params.bool("active")?;
    let ids = params.strings("ids")?;
    let matching = state.products.newest_first().filter(|p| {
        active.is_none_or(|a| p["active"] == a)
            && ids
                .as_ref()
                .is_none_or(|ids| ids.iter().any(|id| p["id"] == id.as_str()))
    });
    list("/v1/products", &params, matching)
}
