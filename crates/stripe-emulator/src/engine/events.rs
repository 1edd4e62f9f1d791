//! Webhook endpoints, events and signed delivery.
//!
//! Every change the emulator makes is recorded as an event in the current API shape
//! (`api_version`, `pending_webhooks`, `request`, `data.previous_attributes` on updates),
//! served by `GET /v1/events[/{id}]`, and POSTed to each enabled endpoint whose
//! `enabled_events` match, signed as Stripe signs (`Stripe-Signature: t=<unix>,v1=<hex
//! HMAC-SHA256 of "<t>.<payload>" with the endpoint's whsec_ secret>`). A non-2xx answer or a
//! timeout is retried on Stripe's backoff, compressed by a factor; every attempt is in the
//! delivery log (`GET /_emulator/deliveries`).

use serde_json::{Map, Value, json};

use crate::engine::outbox::Job;
use crate::engine::store::{State, list_filtered, new_id};
use crate::error::ApiError;
use crate::params::Params;

pub fn list_events(state: &State, params: Params) -> Result<Value, ApiError> {
    let one = params.str("type")?;
    let many = params.strings("types")?;
    let created = params.range("created")?;
    // Stripe: `false` lists events still pending or given up on for some endpoint.
    let delivery_success = params.bool("delivery_success")?;
    let matching = |e: &Value| {
        let t = e["type"].as_str().unwrap_or_default();
        one.as_deref().is_none_or(|o| type_matches(o, t))
            && many
                .as_ref()
                .is_none_or(|m| m.iter().any(|o| type_matches(o, t)))
            && created.admits(e["created"].as_i64().unwrap_or_default())
            && delivery_success
                .is_none_or(|ok| (e["pending_webhooks"].as_u64().unwrap_or(0) == 0) == ok)
    };
    list_filtered("/v1/events", &params, state.events.newest_first(), matching)
}

/// `*` matches everything; `customer.*` matches every customer event.
fn type_matches(pattern: &str, event_type: &str) -> bool {
    pattern == "*"
        || pattern == event_type
        || pattern.strip_suffix(".*").is_some_and(|prefix| {
            event_type
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('.'))
        })
}

/// The top-level fields of `old` that differ from `new`, with their old values.
pub fn previous_attributes(old: &Value, new: &Value) -> Value {
    let (Value::Object(old), Value::Object(new)) = (old, new) else {
        return Value::Null;
    };
    let changed: Map<String, Value> = old
        .iter()
        .filter(|(k, v)| new.get(*k) != Some(*v) && k.as_str() != "updated")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Value::Object(changed)
}

/// Records an event for `object` and queues its deliveries.
pub fn emit(state: &mut State, event_type: &str, object: &Value, previous: Option<Value>) {
    let id = new_id("evt");
    let endpoints: Vec<String> = state
        .webhook_endpoints
        .newest_first()
        .filter(|e| {
            e["status"] == "enabled"
                && e["enabled_events"].as_array().is_some_and(|list| {
                    list.iter()
                        .filter_map(Value::as_str)
                        .any(|p| type_matches(p, event_type))
                })
        })
        .filter_map(|e| e["id"].as_str().map(str::to_owned))
        .collect();
    let mut data = json!({ "object": object });
    if let Some(previous) = previous.filter(|p| p.as_object().is_some_and(|m| !m.is_empty())) {
        data["previous_attributes"] = previous;
    }
    let event = json!({
        "id": id,
        "object": "event",
        "api_version": crate::STRIPE_API_VERSION,
        "created": state.now(),
        "data": data,
        "livemode": false,
        "pending_webhooks": endpoints.len(),
        "request": {
            "id": state.current_request.as_ref().map(|r| r.0.clone()),
            "idempotency_key": state.current_request.as_ref().and_then(|r| r.1.clone()),
        },
        "type": event_type,
    });
    state.events.insert(id.clone(), event);
    let now = tokio::time::Instant::now();
    for endpoint in endpoints {
        state.outbox.push(Job {
            event: id.clone(),
            endpoint,
            attempt: 1,
            due: now,
        });
    }
}
