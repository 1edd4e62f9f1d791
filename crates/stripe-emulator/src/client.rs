//! A minimal loopback HTTP/1.1 client for driving the emulator from tests and tools: the test
//! routes (`/_emulator/...`) and whatever async-stripe's typed requests cannot or would not send.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A form-encoded request with a hand-written body (`key` None: no Authorization header).
/// Returns the status and the JSON body.
pub async fn request(
    base: &str,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &str,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let auth = key
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status: u16 = response.split(' ').nth(1).unwrap_or("0").parse()?;
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    Ok((status, serde_json::from_str(body)?))
}
