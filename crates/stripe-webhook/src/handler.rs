use adapters::config::FromEnv;
use adapters::http::json_response;
use adapters::secrets::StripeSecretSource;
use adapters::wiring::LifecycleConfig;
use adapters::{ConfigError, Env};
use domain::events::{Outcome, process};
use domain::lifecycle::Lifecycle;
use domain::ports::{Accounts, Directory, Ledger, Payments, PortError, Scheduler, StripeReads};
use domain::stripe_events::EventRef;
use domain::webhook::{
    DEFAULT_TOLERANCE_SECONDS, EventLedger, SignatureError, WebhookSecret, check_header,
    verify_checked,
};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::json;

#[derive(Debug)]
pub struct Config {
    /// The webhook secrets come from the same secret as the key (`STRIPE_SECRET_ARN`).
    pub lifecycle: LifecycleConfig,
}

impl FromEnv for Config {
    fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            lifecycle: LifecycleConfig::from_env(env)?,
        })
    }
}

/// Everything the handler uses, built once per cold start.
pub struct Deps<St, R, D, S> {
    pub lifecycle: Lifecycle<St, R, D, S>,
    /// The secrets a delivery may be signed with (two during a rotation), read at run time.
    pub secrets: StripeSecretSource,
}

/// The one place outcomes become status codes.
fn respond(outcome: &Outcome) -> Response<Body> {
    match outcome {
        Outcome::Applied(what) => json_response(
            StatusCode::OK,
            json!({ "received": true, "result": what.to_string() }),
        ),
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

enum Refused {
    Signature(SignatureError),
    NoSecrets(PortError),
}

/// Verifies against the cached secrets; a signature that matches none of them is checked once
/// more against the secret read again now (a rotation may not have reached this process yet),
/// which the source allows at most every few seconds.
async fn verify_signature<St, R, D, S>(
    deps: &Deps<St, R, D, S>,
    payload: &[u8],
    header: Option<&str>,
) -> Result<i64, Refused> {
    // A missing, malformed or stale header is refused before any secret is read, so forged
    // requests cost no Secrets Manager call; the header is parsed once.
    let header = check_header(header, adapters::unix_now(), DEFAULT_TOLERANCE_SECONDS)
        .map_err(Refused::Signature)?;
    let check = |secrets: &[WebhookSecret]| verify_checked(payload, &header, secrets);
    let cached = deps.secrets.current().await.map_err(Refused::NoSecrets)?;
    match check(&cached.secrets.webhook_secrets) {
        Err(SignatureError::Mismatch | SignatureError::NoSecret) => {
            match deps.secrets.refresh().await {
                Ok(Some(fresh)) => {
                    check(&fresh.secrets.webhook_secrets).map_err(Refused::Signature)
                }
                Ok(None) => Err(Refused::Signature(SignatureError::Mismatch)),
                Err(e) => {
                    tracing::warn!(error = %e, "could not re-read the webhook secrets");
                    Err(Refused::Signature(SignatureError::Mismatch))
                }
            }
        }
        other => other.map_err(Refused::Signature),
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
    if let Err(e) = verify_signature(deps, payload, header).await {
        let (status, body) = match e {
            Refused::Signature(reason) => {
                tracing::warn!(
                    security = true,
                    metric = "webhook_signature_rejected",
                    reason = %reason,
                    source_ip = %adapters::http::source_ip(&request),
                    "rejected a webhook delivery with a bad signature"
                );
                (StatusCode::UNAUTHORIZED, "invalid Stripe-Signature")
            }
            Refused::NoSecrets(e) => {
                // The secret source logged the failed read (metric=stripe_secret_read_failed,
                // alarmed); one line per refused delivery here is enough.
                tracing::warn!(
                    error = %format!("{:#}", anyhow::Error::from(e)),
                    "could not read the webhook secrets; Stripe will retry"
                );
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "cannot verify deliveries now; retry later",
                )
            }
        };
        return Ok(json_response(status, json!({ "error": body })));
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
    Ok(respond(
        &process(&deps.lifecycle, &event, adapters::unix_now()).await,
    ))
}
