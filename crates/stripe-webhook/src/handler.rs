use adapters::http::json_response;
use adapters::wiring::LifecycleConfig;
use adapters::{ConfigError, Env};
use domain::ports::{Accounts, Directory, Ledger, Payments, Scheduler, StripeReads};
use domain::stripe_events::{EventRef, Handled, Lifecycle};
use domain::webhook::{
    Claim, DEFAULT_TOLERANCE_SECONDS, EventLedger, Finished, LEASE_SECONDS, WebhookSecret, verify,
};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::json;

#[derive(Debug)]
pub struct Config {
    pub lifecycle: LifecycleConfig,
    pub webhook_secrets: Vec<WebhookSecret>,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from(&Env::process())
    }

    pub fn from<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let webhook_secrets = env
            .required("STRIPE_WEBHOOK_SECRETS")?
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(WebhookSecret::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ConfigError::Invalid {
                name: "STRIPE_WEBHOOK_SECRETS",
                problem: e.to_string(),
            })?;
        Ok(Self {
            lifecycle: LifecycleConfig::from_env(env)?,
            webhook_secrets,
        })
    }
}

/// Everything the handler uses, built once per cold start.
pub struct Deps<St, R, D, S> {
    pub lifecycle: Lifecycle<St, R, D, S>,
    /// Every secret a delivery may be signed with (two during a rotation); empty for replays,
    /// which read events from Stripe's API instead.
    pub secrets: Vec<WebhookSecret>,
}

/// What processing a verified event came to; the one place these become status codes is
/// [`respond`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Applied(String),
    Ignored(String),
    /// Already done: nothing happened now.
    Duplicate,
    /// Another delivery holds the event's lease.
    InProgress,
    /// Failed and recorded as failed; Stripe's retry or a replay will complete it.
    Failed,
}

/// Claims, applies and settles one verified event. Also what `creditgate events replay` runs.
#[tracing::instrument(skip_all, fields(stripe_event_id = %event.id, event_type = %event.kind))]
pub async fn process<St, R, D, S>(deps: &Deps<St, R, D, S>, event: &EventRef) -> Outcome
where
    St: Accounts + Ledger + EventLedger + Sync,
    R: StripeReads + Payments + Sync,
    D: Directory + Sync,
    S: Scheduler + Sync,
{
    let now = adapters::unix_now();
    let store = &deps.lifecycle.store;
    let claim = match store
        .claim(&event.id, &event.kind, now, now + LEASE_SECONDS)
        .await
    {
        Ok(claim) => claim,
        Err(e) => {
            tracing::error!(error = ?anyhow::Error::from(e), "could not claim the event");
            return Outcome::Failed;
        }
    };
    let attempt = match claim {
        Claim::AlreadyDone => {
            tracing::info!("duplicate delivery of a finished event: nothing to do");
            return Outcome::Duplicate;
        }
        Claim::InProgress => {
            tracing::info!("event is being processed by another delivery");
            return Outcome::InProgress;
        }
        Claim::Owned { attempt } => attempt,
    };
    let (outcome, finished) = match deps.lifecycle.handle(event).await {
        Ok(Handled::Applied(what)) => {
            tracing::info!(attempt, result = %what, "event applied");
            (Outcome::Applied(what), Finished::Done)
        }
        Ok(Handled::Ignored(why)) => {
            tracing::info!(attempt, reason = %why, "event ignored");
            (Outcome::Ignored(why), Finished::Ignored)
        }
        Err(e) => {
            let error = anyhow::Error::from(e);
            tracing::error!(attempt, error = ?error, "event failed; Stripe will retry");
            if let Err(e) = store.fail(&event.id, &format!("{error:#}")).await {
                tracing::error!(error = ?anyhow::Error::from(e), "could not mark the event failed (its lease will lapse)");
            }
            return Outcome::Failed;
        }
    };
    if let Err(e) = store.finish(&event.id, finished).await {
        // Applied but not marked: a redelivery applies it again, which converges to the same
        // state (every effect is keyed or a reconciliation).
        tracing::error!(error = ?anyhow::Error::from(e), "could not mark the event finished");
        return Outcome::Failed;
    }
    outcome
}

/// The one place outcomes become status codes.
fn respond(outcome: &Outcome) -> Response<Body> {
    match outcome {
        Outcome::Applied(what) => {
            json_response(StatusCode::OK, json!({ "received": true, "result": what }))
        }
        Outcome::Ignored(why) => {
            json_response(StatusCode::OK, json!({ "received": true, "ignored": why }))
        }
        Outcome::Duplicate => json_response(
            StatusCode::OK,
            json!({ "received": true, "duplicate": true }),
        ),
        Outcome::InProgress => json_response(
            StatusCode::CONFLICT,
            json!({ "error": "this event is being processed; retry later" }),
        ),
        Outcome::Failed => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "error": "internal error" }),
        ),
    }
}

pub async fn handle<St, R, D, S>(
    deps: &Deps<St, R, D, S>,
    request: Request,
) -> Result<Response<Body>, lambda_http::Error>
where
    St: Accounts + Ledger + EventLedger + Sync,
    R: StripeReads + Payments + Sync,
    D: Directory + Sync,
    S: Scheduler + Sync,
{
    if request.method() != Method::POST {
        return Ok(json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            json!({ "error": "use POST" }),
        ));
    }
    // lambda_http has already decoded a base64 body (`isBase64Encoded`): these are the bytes
    // Stripe signed.
    let payload: &[u8] = request.body().as_ref();
    let header = request
        .headers()
        .get("stripe-signature")
        .and_then(|h| h.to_str().ok());
    if let Err(e) = verify(
        payload,
        header,
        &deps.secrets,
        adapters::unix_now(),
        DEFAULT_TOLERANCE_SECONDS,
    ) {
        tracing::warn!(
            security = true,
            reason = %e,
            source_ip = %adapters::http::source_ip(&request),
            "rejected a webhook delivery with a bad signature"
        );
        return Ok(json_response(
            StatusCode::UNAUTHORIZED,
            json!({ "error": "invalid Stripe-Signature" }),
        ));
    }
    let event = match EventRef::parse(payload) {
        Ok(event) => event,
        Err(e) => {
            tracing::warn!(reason = %e, "signed payload is not an event");
            return Ok(json_response(
                StatusCode::BAD_REQUEST,
                json!({ "error": e.to_string() }),
            ));
        }
    };
    Ok(respond(&process(deps, &event).await))
}
