//! In-memory ports for handler tests (feature `test-util`, never in release builds). Each
//! fake behaves like the real service where the use cases depend on it: conditional creates,
//! idempotency keys, deterministic execution names, and injectable failures.
//!
//! One file per fake; the ports with a real adapter have a contract test run against both
//! (tests/e2e/contracts.rs, tests/e2e/event_ledger.rs, tests/e2e/store_contracts/,
//! crates/adapters/tests/*_contract.rs).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use domain::ids::{Email, PlanId, StripeCustomerId, UserSub};
use domain::ports::PortError;
use domain::profile::Profile;

mod accounts;
mod billing;
mod directory;
mod meter;
mod scheduler;
mod stripe;

pub use accounts::{EventRecord, InMemoryAccounts};
pub use billing::{CustomerParams, FakeBilling};
pub use directory::{DirectoryUser, FakeDirectory};
pub use meter::InMemoryMeter;
pub use scheduler::FakeScheduler;
pub use stripe::{
    FakeEvent, FakePayments, FakePrice, FakeSession, FakeSessionStatus, FakeStripe,
    FakeStripeReads, FakeSubscription, StripeData,
};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Fails the next `n` calls (or the next call of one named operation), then behaves.
#[derive(Default)]
pub struct FailNext(AtomicU32, Mutex<Vec<&'static str>>);

impl FailNext {
    pub fn set(&self, n: u32) {
        self.0.store(n, Ordering::SeqCst);
    }

    /// Fails the next call of `operation` (as the port names it, e.g. "create profile") once.
    pub fn once(&self, operation: &'static str) {
        lock(&self.1).push(operation);
    }

    fn check(&self, operation: &'static str) -> Result<(), PortError> {
        let named = {
            let mut ops = lock(&self.1);
            match ops.iter().position(|o| *o == operation) {
                Some(i) => {
                    ops.remove(i);
                    true
                }
                None => false,
            }
        };
        let failed = named
            || self
                .0
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        if failed {
            Err(PortError::new(operation, "injected failure"))
        } else {
            Ok(())
        }
    }
}

/// An API Gateway HTTP API (v2) request as the JWT authorizer passes it on: `sub` in the
/// verified claims (none: no authorizer context at all).
pub fn api_request(
    method: &str,
    path: &str,
    sub: Option<&str>,
    body: &str,
) -> lambda_http::Request {
    api_request_with_claims(
        method,
        path,
        sub.map(|sub| serde_json::json!({ "sub": sub })),
        body,
    )
}

/// [`api_request`] with the authorizer's whole claims object (an ID token's email and
/// `email_verified`, say).
pub fn api_request_with_claims(
    method: &str,
    path: &str,
    claims: Option<serde_json::Value>,
    body: &str,
) -> lambda_http::Request {
    let mut context = serde_json::json!({
        "accountId": "123456789012", "apiId": "test", "domainName": "localhost",
        "domainPrefix": "localhost", "requestId": "test", "routeKey": format!("{method} {path}"),
        "stage": "$default", "time": "23/Nov/2026:00:00:00 +0000", "timeEpoch": 0,
        "http": { "method": method, "path": path, "protocol": "HTTP/1.1",
                  "sourceIp": "127.0.0.1", "userAgent": "test" }
    });
    if let Some(claims) = claims {
        context["authorizer"] = serde_json::json!({ "jwt": { "claims": claims, "scopes": null } });
    }
    let event = serde_json::json!({
        "version": "2.0", "routeKey": format!("{method} {path}"), "rawPath": path,
        "rawQueryString": "", "headers": { "content-type": "application/json" },
        "requestContext": context, "body": body, "isBase64Encoded": false
    });
    match serde_json::from_value::<lambda_http::request::LambdaRequest>(event) {
        Ok(request) => request.into(),
        Err(e) => panic!("the test event does not parse: {e}"),
    }
}

/// A Stripe state whose client points at a closed port: for handler tests of paths that must
/// answer before calling Stripe.
pub fn unreachable_stripe() -> crate::stripe_reads::StripeState {
    crate::stripe_reads::StripeState::new(crate::secrets::StripeSecretSource::fixed(
        "sk_test_unreachable",
        &[],
        Some("http://127.0.0.1:9/".into()),
    ))
}

/// A Free profile for `sub` (customer `cus_test1`), as sign-up leaves it.
pub fn signed_up(sub: &str) -> Profile {
    let parse = |r: Result<Profile, domain::ids::InvalidId>| match r {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    parse((|| {
        Ok(Profile::new_signup(
            UserSub::parse(sub)?,
            Email::parse("ada@example.com")?,
            StripeCustomerId::parse("cus_test1")?,
            PlanId::parse("free")?,
            "2026-11-23T00:00:00Z".into(),
        ))
    })())
}
