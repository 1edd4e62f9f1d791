//! Webhook endpoints: create (the `whsec_` secret shown once), list, delete.

use serde_json::{Value, json};

use crate::engine::store::{State, list, new_id};
use crate::error::ApiError;
use crate::params::Params;

pub fn create_endpoint(state: &mut State, params: Params) -> Result<Value, ApiError> {
    let url = params.required_str("url")?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ApiError::invalid(
            "Invalid URL: must be http:// or https://",
            Some("url"),
        ));
    }
    let events = params
        .strings("enabled_events")?
        .filter(|e| !e.is_empty())
        .ok_or_else(|| ApiError::missing_param("enabled_events"))?;
    let id = new_id("we");
    let secret = format!("whsec_{}", &new_id("x")[2..]);
    let mut endpoint = json!({
        "id": id,
        "object": "webhook_endpoint",
        "api_version": params.str("api_version")?,
        "application": null,
        "created": state.now(),
        "description": params.str("description")?,
        "enabled_events": events,
        "livemode": false,
        "metadata": {},
        "status": "enabled",
        "url": url,
    });
    endpoint["metadata"] = params.merge_metadata(&endpoint["metadata"])?;
    state.webhook_endpoints.insert(id.clone(), endpoint.clone());
    state.webhook_secrets.insert(id, secret.clone());
    // The secret is shown once, on creation, as Stripe does.
    endpoint["secret"] = json!(secret);
    Ok(endpoint)
}

pub fn list_endpoints(state: &State, params: Params) -> Result<Value, ApiError> {
    list(
        "/v1/webhook_endpoints",
        &params,
        state.webhook_endpoints.newest_first(),
    )
}

pub fn delete_endpoint(state: &mut State, id: &str) -> Result<Value, ApiError> {
    if state.webhook_endpoints.remove(id).is_none() {
        return Err(ApiError::no_such("webhook_endpoint", id, "id"));
    }
    state.webhook_secrets.remove(id);
    Ok(json!({ "id": id, "object": "webhook_endpoint", "deleted": true }))
}
