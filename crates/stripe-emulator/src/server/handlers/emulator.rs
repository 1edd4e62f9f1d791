//! The emulator's own test routes: `/_emulator/rate_limit`.

use serde_json::Value;

use crate::engine::store::State;
use crate::error::ApiError;
use crate::server::handlers::Op;

/// `POST /_emulator/rate_limit` with `requests=N`: the next N authenticated `/v1` requests are
/// refused with Stripe's 429 (`requests=0` lifts it).
pub const SET_RATE_LIMIT: Op = Op {
    allowed: &["requests"],
    apply: |state, _, params| {
        let requests = params
            .int("requests")?
            .ok_or_else(|| ApiError::missing_param("requests"))?;
        state.rate_limit.remaining = u64::try_from(requests)
            .map_err(|_| ApiError::invalid("`requests` must be 0 or more.", Some("requests")))?;
        Ok(rate_limit_view(state))
    },
};
pub const SHOW_RATE_LIMIT: Op = Op {
    allowed: &[],
    apply: |state, _, _| Ok(rate_limit_view(state)),
};

fn rate_limit_view(state: &State) -> Value {
    serde_json::json!({
        "remaining": state.rate_limit.remaining,
        "refused": state.rate_limit.refused,
    })
}
