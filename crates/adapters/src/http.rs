//! What every HTTP Lambda needs once: JSON responses, the one error type that becomes a status
//! code (and the one place each use case's errors map to it) (4xx bodies say what is wrong; 5xx bodies are opaque, the cause goes to the log), the
//! caller's identity from API Gateway's JWT authorizer, and strict JSON bodies.

use domain::account::AccountError;
use domain::ids::{Email, UserSub};
use domain::lifecycle::ClaimError;
use domain::metering::MeterError;
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

pub fn json_response(status: StatusCode, body: Value) -> Response<Body> {
    let mut response = Response::new(Body::Text(body.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    response
}

/// A request that cannot be served, in the caller's terms.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Credits left, when the refusal is about them: in the body and `x-credits-remaining`.
    pub remaining: Option<u64>,
    /// Credits the call needed, when there were not enough.
    pub needed: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            remaining: None,
            needed: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// Logs the cause; the caller sees only "internal error".
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        let cause = cause.into();
        tracing::error!(error = ?cause, "request failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }

    pub fn into_response(self) -> Response<Body> {
        let mut body = json!({ "error": self.message });
        if let (Some(remaining), Some(needed)) = (self.remaining, self.needed) {
            body["remaining"] = remaining.into();
            body["needed"] = needed.into();
        }
        with_remaining(json_response(self.status, body), self.remaining)
    }
}

/// Adds `x-credits-remaining` (the metered API's balance header) when there is a balance.
pub fn with_remaining(mut response: Response<Body>, remaining: Option<u64>) -> Response<Body> {
    if let Some(remaining) = remaining {
        response
            .headers_mut()
            .insert("x-credits-remaining", HeaderValue::from(remaining));
    }
    response
}

/// The one place metering's refusals become status codes.
impl From<MeterError> for ApiError {
    fn from(e: MeterError) -> Self {
        match e {
            MeterError::UnknownKey => Self::new(StatusCode::UNAUTHORIZED, e.to_string()),
            MeterError::AccessDenied => Self::new(
                StatusCode::FORBIDDEN,
                "API access is switched off for this account",
            ),
            MeterError::NoCredits { remaining, needed } => Self {
                remaining: Some(remaining.get()),
                needed: Some(needed.get()),
                ..Self::new(StatusCode::PAYMENT_REQUIRED, "not enough credits")
            },
            MeterError::Contended => {
                Self::conflict("the balance changed under concurrent calls; retry")
            }
            // Logged by the handler with its operation; the caller sees only this.
            MeterError::Port(_) => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
        }
    }
}

/// The one place the account use cases' errors become status codes.
impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::UnknownPlan(_) | AccountError::NotSold { .. } => {
                Self::bad_request(e.to_string())
            }
            AccountError::NoProfile => Self::not_found(e.to_string()),
            AccountError::AlreadyOnPlan(_)
            | AccountError::NoSubscription
            | AccountError::IdempotencyKeyReused
            | AccountError::ClaimedSubscription(_) => Self::conflict(e.to_string()),
            AccountError::EmailNotVerified => Self::new(StatusCode::FORBIDDEN, e.to_string()),
            AccountError::Claim(ClaimError::NothingHeld(_)) => Self::not_found(e.to_string()),
            AccountError::Claim(
                ClaimError::ClaimedByAnother(_)
                | ClaimError::WouldReplace { .. }
                | ClaimError::NotPaying { .. },
            ) => Self::conflict(e.to_string()),
            AccountError::Port(_) | AccountError::Sync(_) | AccountError::Claim(_) => {
                Self::internal(e)
            }
        }
    }
}

/// The claims API Gateway's JWT authorizer verified, if the route has the authorizer.
fn claims(request: &Request) -> Option<&std::collections::HashMap<String, String>> {
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .map(|jwt| &jwt.claims),
        _ => None,
    }
}

/// The caller's Cognito `sub`, from the claims API Gateway's JWT authorizer verified. Never from
/// the body or a header the caller controls.
pub fn caller(request: &Request) -> Result<UserSub, ApiError> {
    let sub = claims(request)
        .and_then(|c| c.get("sub"))
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "no authenticated user"))?;
    UserSub::parse(sub)
        .map_err(|_| ApiError::new(StatusCode::UNAUTHORIZED, "no authenticated user"))
}

/// The address the request came from, as API Gateway saw it (`requestContext.http.sourceIp`).
/// Never `X-Forwarded-For`, which the caller writes.
pub fn source_ip(request: &Request) -> String {
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.http.source_ip.clone(),
        _ => None,
    }
    .filter(|ip| !ip.is_empty())
    .unwrap_or_else(|| "unknown".to_owned())
}

/// The caller's email, only when the authorizer's claims say Cognito verified it
/// (`email_verified` is `true`: an ID token). `None` for an access token or an unverified email.
pub fn verified_email(request: &Request) -> Option<Email> {
    let claims = claims(request)?;
    if claims.get("email_verified").map(String::as_str) != Some("true") {
        return None;
    }
    claims.get("email").and_then(|e| Email::parse(e).ok())
}

/// The body as `T`: an empty body is `T::default()`; anything but a JSON object is refused, and
/// so is a field `T` does not have (`#[serde(deny_unknown_fields)]`), the message naming it.
/// Bodies keep each field as loose as its message needs (`Option<Value>`) and convert it
/// (`TryFrom`, `flag`) into what the handler uses, each refusal naming the field; a typo is
/// never silently the default.
pub fn json_body<T: DeserializeOwned + Default>(request: &Request) -> Result<T, ApiError> {
    let raw: &[u8] = request.body().as_ref();
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let value: Value = serde_json::from_slice(raw)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    serde_json::from_value(value).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// A body that must hold no field at all.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoFields {}

/// `true` or `false`, or `default` when absent; anything else refused, naming `field`.
pub fn flag(value: Option<&Value>, field: &str, default: bool) -> Result<bool, ApiError> {
    match value {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ApiError::bad_request(format!(
            "`{field}` must be true or false"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: &str) -> Request {
        lambda_http::http::Request::builder()
            .method("POST")
            .body(Body::Text(body.to_owned()))
            .unwrap_or_default()
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct PlanBody {
        plan: Option<Value>,
    }

    #[test]
    fn bodies_must_be_objects_without_unknown_fields() {
        assert!(json_body::<PlanBody>(&request("")).is_ok_and(|b| b.plan.is_none()));
        let err = |b| json_body::<PlanBody>(&request(b)).err().map(|e| e.message);
        assert!(err("[1]").is_some_and(|m| m.contains("JSON object")));
        assert!(err("{").is_some_and(|m| m.contains("not valid JSON")));
        assert!(err(r#"{"plna": "basic"}"#).is_some_and(|m| m.contains("`plna`")));
    }

    #[test]
    fn the_source_ip_is_api_gateways_not_the_callers_header() {
        let raw = serde_json::json!({
            "version": "2.0", "routeKey": "POST /stripe/webhook", "rawPath": "/stripe/webhook",
            "rawQueryString": "", "headers": {"x-forwarded-for": "6.6.6.6"},
            "requestContext": {"accountId": "1", "apiId": "a", "domainName": "d", "domainPrefix": "d",
                "http": {"method": "POST", "path": "/stripe/webhook", "protocol": "HTTP/1.1",
                         "sourceIp": "203.0.113.7", "userAgent": "t"},
                "requestId": "r", "routeKey": "POST /stripe/webhook", "stage": "$default",
                "time": "02/Dec/2026:00:00:00 +0000", "timeEpoch": 0},
            "body": "", "isBase64Encoded": false
        });
        let request =
            lambda_http::request::from_str(&raw.to_string()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(source_ip(&request), "203.0.113.7");
        assert_eq!(source_ip(&super::tests::request("")), "unknown");
    }

    #[test]
    fn no_authorizer_claims_is_401() {
        let e = caller(&request("")).err();
        assert_eq!(e.map(|e| e.status), Some(StatusCode::UNAUTHORIZED));
    }
}
