//! The one plain-HTTP/1.1 client of the development tools: the emulator's webhook deliveries,
//! its test client (the `client` module), `creditgate-dev` and the end-to-end tests all send through
//! [`send`] (hyper's client: chunked answers, keep-alive and the rest handled by it). Loopback
//! and `http://` only: nothing here is deployed.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// An answer: its status, headers (lowercase names, in order) and body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends one request to `url` (`http://host:port/path?query`) and reads the whole answer, all
/// within `timeout`. An error says what failed (connecting, the timeout, a bad URL).
pub async fn send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<String>,
    timeout: Duration,
) -> Result<Answer, String> {
    let mut request = hyper::Request::builder().method(method).uri(url);
    let body: String = body.into();
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .header("content-length", body.len().to_string())
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("build the request to {url}: {e}"))?;
    let attempt = async {
        let response = client()
            .request(request)
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("read the answer of {url}: {e}"))?
            .to_bytes();
        Ok(Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| format!("{url}: no answer within {timeout:?}"))?
}

/// A request a [`Recorder`] received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// The path and query, as sent.
    pub target: String,
    /// Lowercase names, in order.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Recorded {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A local HTTP server for tests (an endpoint Stripe delivers to, a fake Runtime API): it
/// answers each request on any path with the next of `statuses` (then `then`), and hands every
/// request it received to the returned channel. Served by axum on a free loopback port until
/// the runtime ends.
pub async fn recorder(
    statuses: Vec<u16>,
    then: u16,
) -> std::io::Result<(
    std::net::SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<Recorded>,
)> {
    use axum::http::{Request, StatusCode};
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let statuses = std::sync::Arc::new(std::sync::Mutex::new(statuses.into_iter()));
    let app = axum::Router::new().fallback(move |request: Request<axum::body::Body>| {
        let (tx, statuses) = (tx.clone(), statuses.clone());
        async move {
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX)
                .await
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let status = statuses
                .lock()
                .ok()
                .and_then(|mut s| s.next())
                .unwrap_or(then);
            let _ = tx.send(Recorded {
                method: parts.method.to_string(),
                target: parts
                    .uri
                    .path_and_query()
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
                headers: parts
                    .headers
                    .iter()
                    .map(|(n, v)| {
                        (
                            n.as_str().to_owned(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect(),
                body,
            });
            StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((addr, rx))
}
