//! Payments: PaymentIntents and Charges (retrieve), refunds, disputes (test route), billing
//! portal sessions.

use crate::engine::payments;
use crate::server::handlers::Op;

// The parameters each route takes.
pub const REFUND_CREATE: &[&str] = &["charge", "payment_intent", "amount", "reason", "metadata"];
pub const DISPUTE_CREATE: &[&str] = &["amount", "reason"];
pub const PORTAL_CREATE: &[&str] = &["customer", "return_url", "configuration", "locale"];

pub const RETRIEVE_PAYMENT_INTENT: Op = Op {
    allowed: &[],
    apply: |state, id, _| state.payment_intents.fetch("payment_intent", id, "intent"),
};
pub const RETRIEVE_CHARGE: Op = Op {
    allowed: &[],
    apply: |state, id, _| state.charges.fetch("charge", id, "charge"),
};
pub const CREATE_REFUND: Op = Op {
    allowed: REFUND_CREATE,
    apply: |state, _, params| payments::create_refund(state, params),
};
/// `POST /_emulator/charges/{id}/dispute`.
pub const CREATE_DISPUTE: Op = Op {
    allowed: DISPUTE_CREATE,
    apply: payments::create_dispute,
};
pub const CREATE_PORTAL_SESSION: Op = Op {
    allowed: PORTAL_CREATE,
    apply: |state, _, params| payments::create_portal_session(state, params),
};
