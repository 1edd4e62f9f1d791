//! Signed delivery of events to webhook endpoints, as Stripe sends them.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::emulator::Emulator;
use crate::engine::outbox::{Job, RETRY_SCHEDULE};

impl Emulator {
    /// Delivers queued events until the process ends: each due job is POSTed, logged, and on
    /// failure rescheduled on the compressed retry schedule.
    pub async fn deliver_forever(self) {
        loop {
            let now = tokio::time::Instant::now();
            let due = {
                let mut state = self.lock();
                let (due, waiting): (Vec<_>, Vec<_>) =
                    state.outbox.drain(..).partition(|j| j.due <= now);
                state.outbox = waiting;
                due
            };
            for job in due {
                self.attempt(job).await;
            }
            // Retries scheduled by the attempts above count too.
            let next = self.lock().outbox.iter().map(|j| j.due).min();
            let sleep = next
                .map(|at| at.saturating_duration_since(tokio::time::Instant::now()))
                .unwrap_or(std::time::Duration::from_secs(3600));
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
            }
        }
    }

    async fn attempt(&self, job: Job) {
        let prepared = {
            let state = self.lock();
            match (
                state.events.get(&job.event),
                state.webhook_endpoints.get(&job.endpoint),
                state.webhook_secrets.get(&job.endpoint),
            ) {
                (Some(event), Some(endpoint), Some(secret)) => Some((
                    event.to_string(),
                    endpoint["url"].as_str().unwrap_or_default().to_owned(),
                    secret.clone(),
                    // Signed at the real time of delivery, as Stripe does for test-clock events:
                    // receivers check the signature's timestamp against their own clock.
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs() as i64)
                        .unwrap_or_default(),
                )),
                // The endpoint was deleted meanwhile: nothing to deliver.
                _ => None,
            }
        };
        let Some((payload, url, secret, now)) = prepared else {
            return;
        };
        let signature = signature_header(&payload, &secret, now);
        let result = post(&url, &payload, &signature, self.delivery.timeout).await;
        let delivered = matches!(result, Ok(status) if (200..300).contains(&status));
        let mut state = self.lock();
        let entry = serde_json::json!({
            "event": job.event,
            "endpoint": job.endpoint,
            "attempt": job.attempt,
            "status_code": result.as_ref().ok(),
            "error": result.as_ref().err(),
            "delivered": delivered,
            "at": now,
        });
        tracing::info!(event = %job.event, endpoint = %job.endpoint, attempt = job.attempt, delivered, "webhook delivery");
        state.deliveries.push(entry);
        if delivered {
            if let Some(event) = state.events.get_mut(&job.event)
                && let Some(pending) = event["pending_webhooks"].as_u64()
            {
                event["pending_webhooks"] = serde_json::json!(pending.saturating_sub(1));
            }
        } else if let Some(delay) = RETRY_SCHEDULE.get(job.attempt as usize - 1) {
            let wait =
                std::time::Duration::from_secs_f64(*delay as f64 / self.delivery.retry_compression);
            state.outbox.push(Job {
                attempt: job.attempt + 1,
                due: tokio::time::Instant::now() + wait,
                ..job
            });
        }
        self.persist(&state);
    }
}

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
