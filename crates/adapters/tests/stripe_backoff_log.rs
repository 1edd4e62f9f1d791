//! The WARN each 429 retry logs, `metric=stripe_rate_limited` with the operation and attempt.
//! In a test binary of its own: tracing's callsite interest and max level are process-wide,
//! so a subscriber set for one test thread can miss an event while other threads run the
//! same callsite with none.

use std::io::Write;
use std::sync::{Arc, Mutex};

use adapters::stripe_api::Backoff;
use stripe::StripeError;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Stripe's 429 as async-stripe reads it from the body Stripe sends.
fn rate_limited() -> StripeError {
    let body = r#"{"error":{"type":"invalid_request_error","code":"rate_limit","message":"Request rate limit exceeded."}}"#;
    match miniserde::json::from_str::<stripe_shared::Error>(body) {
        Ok(e) => StripeError::Stripe(e.error, 429),
        Err(_) => StripeError::ClientError("the fixture did not parse".into()),
    }
}

#[tokio::test]
async fn each_retry_logs_one_warn_with_the_metric_and_the_operation() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let answers = Mutex::new(vec![rate_limited(), rate_limited()].into_iter());
    let result = Backoff::DEFAULT
        .retry(
            "test operation",
            || 1.0,
            |_| std::future::ready(()),
            || {
                let next = answers.lock().ok().and_then(|mut a| a.next());
                std::future::ready(match next {
                    Some(e) => Err(e),
                    None => Ok(()),
                })
            },
        )
        .await;
    assert!(result.is_ok());
    let text = String::from_utf8(captured.0.lock().map(|b| b.clone()).unwrap_or_default())
        .unwrap_or_default();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    for (line, attempt) in lines.iter().zip(1..) {
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["fields"]["metric"], "stripe_rate_limited");
        assert_eq!(line["fields"]["operation"], "test operation");
        assert_eq!(line["fields"]["attempt"], attempt);
    }
}
