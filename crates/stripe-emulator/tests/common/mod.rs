//! Shared by the emulator's integration tests: a local webhook receiver and raw form calls.
#![allow(dead_code)]

pub mod checkout;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

pub struct Received {
    pub signature: String,
    pub payload: String,
}

/// A local endpoint answering each delivery with the next status in `statuses` (then 200).
pub async fn receiver(
    statuses: Vec<u16>,
) -> anyhow::Result<(String, mpsc::UnboundedReceiver<Received>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/stripe/webhook", listener.local_addr()?);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut statuses = statuses.into_iter();
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut raw = Vec::new();
            let mut buf = [0u8; 4096];
            let (head, body) = loop {
                let Ok(n) = stream.read(&mut buf).await else {
                    break (String::new(), String::new());
                };
                if n == 0 {
                    break (String::new(), String::new());
                }
                raw.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&raw).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() >= length {
                        break (head.to_owned(), body.to_owned());
                    }
                }
            };
            let signature = head
                .lines()
                .find_map(|l| {
                    l.strip_prefix("Stripe-Signature: ")
                        .or_else(|| l.strip_prefix("stripe-signature: "))
                })
                .unwrap_or_default()
                .to_owned();
            let status = statuses.next().unwrap_or(200);
            let _ = stream
                .write_all(
                    format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                    .as_bytes(),
                )
                .await;
            let _ = tx.send(Received {
                signature,
                payload: body,
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
