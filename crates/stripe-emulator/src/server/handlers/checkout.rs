//! Checkout Sessions: `/v1/checkout/sessions` and the test route that completes one.

use crate::engine::checkout;
use crate::server::handlers::Op;

pub const CREATE_SESSION: Op = Op {
    allowed: checkout::SESSION_CREATE,
    apply: |state, _, params| checkout::create_session(state, params),
};
pub const LIST_SESSIONS: Op = Op {
    allowed: checkout::SESSION_LIST,
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
    allowed: checkout::LINE_ITEMS_LIST,
    apply: |state, id, _| checkout::line_items(state, id),
};
pub const EXPIRE_SESSION: Op = Op {
    allowed: &[],
    apply: |state, id, _| checkout::expire_session(state, id),
};
/// `POST /_emulator/checkout/sessions/{id}/complete`: pays the session as a buyer would.
pub const COMPLETE_SESSION: Op = Op {
    allowed: checkout::COMPLETE,
    apply: checkout::complete_session,
};
