use adapters::http::{ApiError, caller, flag, json_body, json_response};
use domain::account::{CancelOutcome, cancel};
use domain::lifecycle::Lifecycle;
use domain::ports::{Accounts, Directory, Ledger, Payments, Scheduler, StripeReads};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

async fn serve<St, P, D, S>(
    lifecycle: &Lifecycle<St, P, D, S>,
    request: &Request,
) -> Result<Response<Body>, ApiError>
where
    St: Accounts + Ledger + Sync,
    P: Payments + StripeReads + Sync,
    D: Directory + Sync,
    S: Scheduler + Sync,
{
    if request.method() != Method::POST {
        return Err(ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "use POST"));
    }
    let sub = caller(request)?;
    let body: CancelBody = json_body(request)?;
    let at_period_end = flag(body.at_period_end.as_ref(), "at_period_end", true)?;
    let outcome = cancel(
        lifecycle,
        &lifecycle.stripe,
        &sub,
        at_period_end,
        adapters::unix_now(),
    )
    .await?;
    tracing::info!(user_sub = %sub, outcome = ?outcome, "cancellation");
    Ok(json_response(
        StatusCode::OK,
        match outcome {
            CancelOutcome::AtPeriodEnd {
                subscription,
                period_end,
            } => json!({
                "changed": true,
                "subscription": subscription,
                "cancels_at": period_end,
                "message": "your subscription will end at the end of this period",
            }),
            CancelOutcome::AlreadyAtPeriodEnd {
                subscription,
                period_end,
            } => json!({
                "changed": false,
                "subscription": subscription,
                "cancels_at": period_end,
                "message": "your subscription is already set to end at the end of this period",
            }),
            CancelOutcome::Now { subscription, plan } => json!({
                "changed": true,
                "subscription": subscription,
                "plan": plan.as_str(),
                "message": "your subscription has ended; you are on the free plan",
            }),
        },
    ))
}

/// `POST /cancel`'s body as sent: `{"at_period_end": false}` cancels now (default: at the
/// period's end).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelBody {
    at_period_end: Option<Value>,
}

pub async fn handle<St, P, D, S>(
    lifecycle: &Lifecycle<St, P, D, S>,
    request: Request,
) -> Result<Response<Body>, lambda_http::Error>
where
    St: Accounts + Ledger + Sync,
    P: Payments + StripeReads + Sync,
    D: Directory + Sync,
    S: Scheduler + Sync,
{
    Ok(serve(lifecycle, &request)
        .await
        .unwrap_or_else(ApiError::into_response))
}
