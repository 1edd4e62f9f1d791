//! Checkout Sessions: `/v1/checkout/sessions` and the test route that completes one.

use crate::engine::checkout;
use crate::server::handlers::Op;

// The parameters each route takes.
pub const SESSION_CREATE: &[&str] = &[
    "mode",
    "line_items",
    "customer",
    "customer_email",
    "client_reference_id",
    "metadata",
    "subscription_data",
    "payment_intent_data",
    "success_url",
    "cancel_url",
    "expires_at",
    "allow_promotion_codes",
];
pub const LINE_ITEMS_LIST: &[&str] = &["limit", "starting_after", "ending_before"];
pub const SESSION_LIST: &[&str] = &[
    "payment_intent",
    "subscription",
    "customer",
    "status",
    "limit",
    "starting_after",
    "ending_before",
];
pub const COMPLETE: &[&str] = &["email"];

pub const CREATE_SESSION: Op = Op {
    allowed: SESSION_CREATE,
    apply: |state, _, params| checkout::create_session(state, params),
};
pub const LIST_SESSIONS: Op = Op {
    allowed: SESSION_LIST,
    apply: |state, _, params| checkout::list_sessions(state, params),
};
pub const RETRIEVE_SESSION: Op = Op {
    allowed: &[],
    apply: |state, id, _| {
        state
            .checkout_sessions
            .fetch("checkout.session", id, "session")
    },
};
pub const LINE_ITEMS: Op = Op {
    allowed: LINE_ITEMS_LIST,
    apply: |state, id, _| checkout::line_items(state, id),
};
pub const EXPIRE_SESSION: Op = Op {
    allowed: &[],
    apply: |state, id, _| checkout::expire_session(state, id),
};
/// `POST /_emulator/checkout/sessions/{id}/complete`: pays the session as a buyer would.
pub const COMPLETE_SESSION: Op = Op {
    allowed: COMPLETE,
    apply: checkout::complete_session,
};
