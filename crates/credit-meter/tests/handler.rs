//! credit-meter's handler against an in-memory meter with DynamoDB's conditional semantics.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use adapters::fakes::InMemoryMeter;
use credit_meter::{Deps, handle};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request};
use serde_json::Value;

const SUB: &str = "3a4b5c6d-0000-4000-8000-000000000001";
const KEY: &str = "cgk_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn request(key: Option<&str>, body: &str) -> anyhow::Result<Request> {
    let mut builder = lambda_http::http::Request::builder()
        .method("POST")
        .uri("/v1/meter");
    if let Some(key) = key {
        builder = builder.header("x-api-key", key);
    }
    let body = if body.is_empty() {
        Body::Empty
    } else {
        Body::Text(body.to_owned())
    };
    Ok(builder.body(body)?)
}

async fn call(
    deps: &Deps<InMemoryMeter>,
    key: Option<&str>,
    body: &str,
) -> anyhow::Result<(StatusCode, Value, Option<String>)> {
    let response = handle(deps, request(key, body)?).await?;
    let header = response
        .headers()
        .get("x-credits-remaining")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let json = match response.body() {
        Body::Text(t) => serde_json::from_str(t)?,
        _ => Value::Null,
    };
    Ok((response.status(), json, header))
}

#[tokio::test]
async fn a_call_spends_one_credit_and_reports_what_is_left_in_body_and_header() -> anyhow::Result<()>
{
    let deps = Deps::new(InMemoryMeter::with_user(SUB, KEY, 10, 5));
    let (status, body, header) = call(&deps, Some(KEY), "").await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        serde_json::json!({"charged": 1, "remaining": 14, "allowance": 9, "purchased": 5})
    );
    assert_eq!(header.as_deref(), Some("14"));

    let (status, body, _) = call(&deps, Some(KEY), r#"{"credits": 4}"#).await?;
    assert_eq!(
        (status, body["remaining"].as_u64()),
        (StatusCode::OK, Some(10))
    );
    Ok(())
}

#[tokio::test]
async fn a_warm_call_costs_one_dynamodb_request_and_a_cold_one_two() -> anyhow::Result<()> {
    let deps = Deps::new(InMemoryMeter::with_user(SUB, KEY, 10, 0));
    call(&deps, Some(KEY), "").await?;
    assert_eq!(
        deps.meter.requests.load(Ordering::SeqCst),
        2,
        "cold: key lookup + update"
    );
    call(&deps, Some(KEY), "").await?;
    assert_eq!(
        deps.meter.requests.load(Ordering::SeqCst),
        3,
        "warm: the update alone"
    );
    Ok(())
}

#[tokio::test]
async fn allowance_is_spent_first_then_purchased_credits() -> anyhow::Result<()> {
    let deps = Deps::new(InMemoryMeter::with_user(SUB, KEY, 2, 5));
    call(&deps, Some(KEY), "").await?; // warm the cache
    let before = deps.meter.requests.load(Ordering::SeqCst);
    let (status, body, _) = call(&deps, Some(KEY), r#"{"credits": 3}"#).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (body["allowance"].as_u64(), body["purchased"].as_u64()),
        (Some(0), Some(3))
    );
    assert_eq!(
        deps.meter.requests.load(Ordering::SeqCst) - before,
        2,
        "refused update + split update"
    );
    assert_eq!(deps.meter.balances(SUB), Some((0, 3)));
    Ok(())
}

#[tokio::test]
async fn a_call_that_would_go_below_zero_is_402_and_changes_nothing() -> anyhow::Result<()> {
    let deps = Deps::new(InMemoryMeter::with_user(SUB, KEY, 1, 1));
    let (status, body, header) = call(&deps, Some(KEY), r#"{"credits": 3}"#).await?;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(
        (body["remaining"].as_u64(), body["needed"].as_u64()),
        (Some(2), Some(3))
    );
    assert_eq!(header.as_deref(), Some("2"));
    assert_eq!(deps.meter.balances(SUB), Some((1, 1)));
    Ok(())
}

#[tokio::test]
async fn unknown_missing_and_rotated_keys_are_401_even_when_the_old_key_is_cached()
-> anyhow::Result<()> {
    let deps = Deps::new(InMemoryMeter::with_user(SUB, KEY, 10, 0));
    assert_eq!(call(&deps, None, "").await?.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        call(&deps, Some("cgk_nope"), "").await?.0,
        StatusCode::UNAUTHORIZED
    );

    assert_eq!(call(&deps, Some(KEY), "").await?.0, StatusCode::OK); // cached now
    let new_key = "cgk_fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
    deps.meter.rotate(SUB, KEY, new_key);
    assert_eq!(
        call(&deps, Some(KEY), "").await?.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(call(&deps, Some(new_key), "").await?.0, StatusCode::OK);
    assert_eq!(deps.meter.balances(SUB), Some((8, 0)));
    Ok(())
}

#[tokio::test]
async fn switched_off_access_is_403() -> anyhow::Result<()> {
    let deps = Deps::new(InMemoryMeter::with_user(SUB, KEY, 10, 0));
    deps.meter
        .set_access(SUB, domain::profile::Access::Disabled);
    assert_eq!(call(&deps, Some(KEY), "").await?.0, StatusCode::FORBIDDEN);
    assert_eq!(deps.meter.balances(SUB), Some((10, 0)));
    Ok(())
}

#[tokio::test]
async fn malformed_bodies_are_400_with_a_message_and_charge_nothing() -> anyhow::Result<()> {
    let deps = Deps::new(InMemoryMeter::with_user(SUB, KEY, 10, 0));
    for (body, says) in [
        ("{", "JSON object"),
        (r#"{"credits": 0}"#, "whole number"),
        (r#"{"credits": 100000}"#, "whole number"),
        (r#"{"cost": 1}"#, "unknown field `cost`"),
    ] {
        let (status, json, _) = call(&deps, Some(KEY), body).await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            json["error"].as_str().is_some_and(|e| e.contains(says)),
            "{body}: {json}"
        );
    }
    assert_eq!(deps.meter.balances(SUB), Some((10, 0)));
    let get = lambda_http::http::Request::builder()
        .method("GET")
        .uri("/v1/meter")
        .header("x-api-key", KEY)
        .body(Body::Empty)?;
    assert_eq!(
        handle(&deps, get).await?.status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_calls_against_a_balance_of_100_spend_exactly_100()
-> anyhow::Result<()> {
    // 60 from the allowance and 40 purchased, so both conditional writes race.
    let deps = Arc::new(Deps::new(InMemoryMeter::with_user(SUB, KEY, 60, 40)));
    let calls: Vec<_> = (0..200)
        .map(|_| {
            let deps = deps.clone();
            tokio::spawn(async move { call(&deps, Some(KEY), "").await.map(|r| r.0) })
        })
        .collect();
    let mut ok = 0;
    let mut refused = 0;
    for c in calls {
        match c.await?? {
            StatusCode::OK => ok += 1,
            StatusCode::PAYMENT_REQUIRED => refused += 1,
            other => anyhow::bail!("unexpected {other}"),
        }
    }
    assert_eq!((ok, refused), (100, 100));
    assert_eq!(deps.meter.balances(SUB), Some((0, 0)));
    Ok(())
}
