//! Webhook endpoints, events and the delivery log.

use crate::engine::{events, webhook_endpoints};
use crate::server::handlers::Op;

// The parameters each route takes.
pub const ENDPOINT_CREATE: &[&str] = &[
    "url",
    "enabled_events",
    "description",
    "metadata",
    "api_version",
];
pub const ENDPOINT_LIST: &[&str] = &["limit", "starting_after", "ending_before"];
pub const EVENT_LIST: &[&str] = &[
    "type",
    "types",
    "created",
    "delivery_success",
    "limit",
    "starting_after",
    "ending_before",
];

pub const CREATE_ENDPOINT: Op = Op {
    allowed: ENDPOINT_CREATE,
    apply: |state, _, params| webhook_endpoints::create_endpoint(state, params),
};
pub const LIST_ENDPOINTS: Op = Op {
    allowed: ENDPOINT_LIST,
    apply: |state, _, params| webhook_endpoints::list_endpoints(state, params),
};
pub const RETRIEVE_ENDPOINT: Op = Op {
    allowed: &[],
    apply: |state, id, _| state.webhook_endpoints.fetch("webhook_endpoint", id, "id"),
};
pub const DELETE_ENDPOINT: Op = Op {
    allowed: &[],
    apply: |state, id, _| webhook_endpoints::delete_endpoint(state, id),
};
pub const LIST_EVENTS: Op = Op {
    allowed: EVENT_LIST,
    apply: |state, _, params| events::list_events(state, params),
};
pub const RETRIEVE_EVENT: Op = Op {
    allowed: &[],
    apply: |state, id, _| state.events.fetch("event", id, "id"),
};
/// `GET /_emulator/deliveries`: every delivery attempt.
pub const DELIVERIES: Op = Op {
    allowed: &[],
    apply: |state, _, _| Ok(serde_json::json!({ "object": "list", "data": state.deliveries })),
};
