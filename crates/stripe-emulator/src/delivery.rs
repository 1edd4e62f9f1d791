//! Signed delivery of events to webhook endpoints, as Stripe sends them.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The `Stripe-Signature` header for `payload` signed with `secret` at `timestamp`.
pub fn signature_header(payload: &str, secret: &str, timestamp: i64) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        // HMAC takes keys of any length; this arm cannot run.
        Err(_) => return format!("t={timestamp}"),
    };
    mac.update(format!("{timestamp}.{payload}").as_bytes());
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// One POST over plain HTTP (the emulator only delivers to local endpoints), as Stripe sends
/// it. Returns the status code.
pub async fn post(
    url: &str,
    payload: &str,
    signature: &str,
    timeout: Duration,
) -> Result<u16, String> {
    if !url.starts_with("http://") {
        return Err("the emulator delivers only to http:// endpoints".to_owned());
    }
    let headers = [
        (
            "user-agent",
            "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        ),
        ("content-type", "application/json; charset=utf-8"),
        ("stripe-signature", signature),
    ];
    crate::http::send("POST", url, &headers, payload, timeout)
        .await
        .map(|answer| answer.status)
}
