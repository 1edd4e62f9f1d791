//! Shared by the emulator's integration tests: a local webhook receiver and raw form calls.
#![allow(dead_code)]

pub mod checkout;

use std::time::Duration;

use tokio::sync::mpsc;

pub struct Received {
    pub signature: String,
    pub payload: String,
}

/// A local endpoint answering each delivery with the next status in `statuses` (then 200).
pub async fn receiver(
    statuses: Vec<u16>,
) -> anyhow::Result<(String, mpsc::UnboundedReceiver<Received>)> {
    let (addr, mut recorded) = stripe_emulator::http::recorder(statuses, 200).await?;
    let url = format!("http://{addr}/stripe/webhook");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(request) = recorded.recv().await {
            let _ = tx.send(Received {
                signature: request
                    .header("stripe-signature")
                    .unwrap_or_default()
                    .to_owned(),
                payload: request.body,
            });
        }
    });
    Ok((url, rx))
}

pub use stripe_emulator::client::request;

/// [`request`] with the key, keeping only the body.
pub async fn form(
    key: &str,
    base: &str,
    method: &str,
    path: &str,
    body: &str,
) -> anyhow::Result<serde_json::Value> {
    Ok(request(base, method, path, Some(key), body).await?.1)
}

pub async fn next(rx: &mut mpsc::UnboundedReceiver<Received>) -> anyhow::Result<Received> {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await?
        .ok_or_else(|| anyhow::anyhow!("the receiver stopped"))
}

/// A local endpoint registered with the emulator for `events` (patterns such as `customer.*`),
/// answering `statuses` in turn and then 200. Returns its `whsec_` secret, the endpoint object
/// and the deliveries it receives.
pub async fn listen(
    key: &str,
    base: &str,
    events: &[&str],
    statuses: Vec<u16>,
) -> anyhow::Result<(String, serde_json::Value, mpsc::UnboundedReceiver<Received>)> {
    let (url, rx) = receiver(statuses).await?;
    let enabled: String = events
        .iter()
        .map(|e| format!("&enabled_events[]={e}"))
        .collect();
    let endpoint = form(
        key,
        base,
        "POST",
        "/v1/webhook_endpoints",
        &format!("url={url}{enabled}"),
    )
    .await?;
    let secret = endpoint["secret"].as_str().unwrap_or_default().to_owned();
    Ok((secret, endpoint, rx))
}
