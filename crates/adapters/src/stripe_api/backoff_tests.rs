use std::sync::Mutex;

use super::*;

/// Stripe's 429 as async-stripe reads it from the body Stripe sends.
fn rate_limited() -> StripeError {
    let body = r#"{"error":{"type":"invalid_request_error","code":"rate_limit","message":"Request rate limit exceeded."}}"#;
    match miniserde::json::from_str::<stripe_shared::Error>(body) {
        Ok(e) => StripeError::Stripe(e.error, 429),
        Err(_) => StripeError::ClientError("the fixture did not parse".into()),
    }
}

/// Runs `retry` with answers taken in turn (then success), the jitter fixed, the waits
/// recorded instead of slept. Returns the result, the attempts made and the waits.
async fn run(
    backoff: Backoff,
    answers: Vec<StripeError>,
    jitter: f64,
) -> (Result<u32, StripeError>, u32, Vec<Duration>) {
    let answers = Mutex::new(answers.into_iter());
    let attempts = Mutex::new(0u32);
    let waits = Mutex::new(Vec::new());
    let result = backoff
        .retry(
            "test operation",
            || jitter,
            |wait| {
                if let Ok(mut w) = waits.lock() {
                    w.push(wait);
                }
                std::future::ready(())
            },
            || {
                let n = attempts.lock().map(|mut a| {
                    *a += 1;
                    *a
                });
                let next = answers.lock().ok().and_then(|mut a| a.next());
                std::future::ready(match (next, n) {
                    (Some(e), _) => Err(e),
                    (None, Ok(n)) => Ok(n),
                    (None, Err(_)) => Err(StripeError::ClientError("poisoned".into())),
                })
            },
        )
        .await;
    let attempts = attempts.into_inner().unwrap_or_default();
    (result, attempts, waits.into_inner().unwrap_or_default())
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn waits_double_from_the_first_with_jitter_between_half_and_all_of_each() {
    let b = Backoff::DEFAULT;
    let most: Vec<_> = (1..5).map(|r| b.wait(r, 1.0)).collect();
    let least: Vec<_> = (1..5).map(|r| b.wait(r, 0.0)).collect();
    assert_eq!(most, vec![ms(250), ms(500), ms(1000), ms(2000)]);
    assert_eq!(least, vec![ms(125), ms(250), ms(500), ms(1000)]);
    assert_eq!(b.wait(2, 0.5), ms(375));
    // Whatever the random source gives, a wait stays in its band.
    for jitter in [-1.0, 2.0, f64::NAN, f64::INFINITY] {
        let w = b.wait(3, jitter);
        assert!((ms(500)..=ms(1000)).contains(&w), "{jitter}: {w:?}");
    }
    assert_eq!(b.max_total_wait(), ms(3750));
    // A policy with absurd numbers saturates instead of overflowing.
    let absurd = Backoff {
        attempts: u32::MAX,
        first_wait: Duration::MAX,
    };
    assert!(absurd.wait(u32::MAX, 1.0) <= Duration::MAX);
}

#[tokio::test]
async fn a_call_rate_limited_fewer_times_than_the_attempts_succeeds_after_the_waits() {
    let (result, attempts, waits) =
        run(Backoff::DEFAULT, vec![rate_limited(), rate_limited()], 1.0).await;
    assert_eq!(result.ok(), Some(3));
    assert_eq!(attempts, 3);
    assert_eq!(waits, vec![ms(250), ms(500)]);
}

#[tokio::test]
async fn past_the_attempts_the_last_429_is_returned() {
    let (result, attempts, waits) = run(
        Backoff::DEFAULT,
        (0..9).map(|_| rate_limited()).collect(),
        0.0,
    )
    .await;
    assert!(matches!(result, Err(StripeError::Stripe(_, 429))));
    assert_eq!(attempts, 5);
    assert_eq!(waits, vec![ms(125), ms(250), ms(500), ms(1000)]);

    let once = Backoff {
        attempts: 1,
        ..Backoff::DEFAULT
    };
    let (result, attempts, waits) = run(once, vec![rate_limited()], 0.0).await;
    assert!(result.as_ref().is_err_and(is_rate_limited));
    assert_eq!((attempts, waits.len()), (1, 0));
}

#[tokio::test]
async fn other_errors_are_not_retried() {
    let not_found = match rate_limited() {
        StripeError::Stripe(api, _) => StripeError::Stripe(api, 404),
        other => other,
    };
    for error in [
        not_found,
        StripeError::Timeout,
        StripeError::ClientError("connection refused".into()),
    ] {
        let (result, attempts, waits) = run(Backoff::DEFAULT, vec![error], 1.0).await;
        assert!(result.is_err());
        assert_eq!((attempts, waits.len()), (1, 0));
    }
}
