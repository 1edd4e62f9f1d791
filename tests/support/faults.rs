//! An HTTP fault proxy: put in front of a service (moto's DynamoDB and Cognito, the
//! stripe-emulator) for the functions only, it forwards each request unchanged until a rule
//! matches it; a matching request is then failed with the service's own 500, or stalled (held
//! unanswered, then the connection dropped), without reaching the service. Rules match on the
//! request line, the `X-Amz-Target` operation and text in the body, so a test can fail one
//! operation (the event claim, the profile and grant write, mark-done, …) during a real flow.
//! Every fault injected is counted by rule.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What a matching request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The service's own 500 (AWS JSON or Stripe error shape), at once.
    Fail,
    /// No answer for this long, then the connection is dropped: a service that hangs.
    Stall(Duration),
}

/// Which requests a rule takes: every given part must match.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    /// Text in the request line, e.g. `GET /v1/invoices/`.
    pub request_line: Option<&'static str>,
    /// The AWS operation, e.g. `DynamoDB_20120810.UpdateItem` (the `X-Amz-Target` header).
    pub operation: Option<&'static str>,
    /// Text the body holds, every one.
    pub body_has: Vec<&'static str>,
    /// Text the body must not hold.
    pub body_lacks: Vec<&'static str>,
}

impl Matcher {
    pub fn aws(operation: &'static str) -> Self {
        Self {
            operation: Some(operation),
            ..Self::default()
        }
    }

    pub fn request(line: &'static str) -> Self {
        Self {
            request_line: Some(line),
            ..Self::default()
        }
    }

    pub fn with(mut self, text: &'static str) -> Self {
        self.body_has.push(text);
        self
    }

    pub fn without(mut self, text: &'static str) -> Self {
        self.body_lacks.push(text);
        self
    }

    fn matches(&self, request: &Request) -> bool {
        self.request_line.is_none_or(|l| request.line.contains(l))
            && self
                .operation
                .is_none_or(|o| request.target.as_deref() == Some(o))
            && self.body_has.iter().all(|t| request.body_text.contains(t))
            && !self
                .body_lacks
                .iter()
                .any(|t| request.body_text.contains(t))
    }
}

#[derive(Debug, Clone)]
struct Rule {
    name: &'static str,
    matcher: Matcher,
    fault: Fault,
    /// How many more requests it takes; `None`: every one until cleared.
    remaining: Option<u32>,
}

#[derive(Default)]
struct Rules {
    active: Vec<Rule>,
    injected: BTreeMap<&'static str, u64>,
}

pub struct FaultProxy {
    pub port: u16,
    rules: Arc<Mutex<Rules>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl FaultProxy {
    /// Listens on a free port and forwards to `127.0.0.1:target_port`, on a thread and runtime
    /// of its own (a test that blocks its runtime running a CLI must not stall the proxy).
    pub fn start(target_port: u16) -> anyhow::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let rules = Arc::new(Mutex::new(Rules::default()));
        let shared = rules.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        std::thread::spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = TcpListener::from_std(listener) else {
                    return;
                };
                let accept = async {
                    while let Ok((client, _)) = listener.accept().await {
                        tokio::spawn(serve(client, target_port, shared.clone()));
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stopped => {}
                }
            });
        });
        Ok(Self {
            port,
            rules,
            stop: Some(stop),
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// From now on, every request `matcher` takes gets `fault` (until [`FaultProxy::clear`]).
    pub fn inject(&self, name: &'static str, matcher: Matcher, fault: Fault) {
        self.add(name, matcher, fault, None);
    }

    /// Only the next `times` requests `matcher` takes get `fault`.
    pub fn inject_times(&self, name: &'static str, matcher: Matcher, fault: Fault, times: u32) {
        self.add(name, matcher, fault, Some(times));
    }

    fn add(&self, name: &'static str, matcher: Matcher, fault: Fault, remaining: Option<u32>) {
        if let Ok(mut rules) = self.rules.lock() {
            rules.active.push(Rule {
                name,
                matcher,
                fault,
                remaining,
            });
        }
    }

    /// No more faults: everything is forwarded.
    pub fn clear(&self) {
        if let Ok(mut rules) = self.rules.lock() {
            rules.active.clear();
        }
    }

    /// Faults injected so far, by rule name.
    pub fn injected(&self) -> BTreeMap<&'static str, u64> {
        self.rules
            .lock()
            .map(|r| r.injected.clone())
            .unwrap_or_default()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

struct Request {
    line: String,
    target: Option<String>,
    body_text: String,
    /// The request as it goes upstream (`Connection: close`, so the answer ends at EOF).
    upstream: Vec<u8>,
}

/// Reads one request off the connection; `None` when the client closed it.
async fn read_request(client: &mut TcpStream, buffered: &mut Vec<u8>) -> Option<Request> {
    let head_end = loop {
        if let Some(at) = buffered.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0u8; 8192];
        match client.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffered.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buffered[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or_default().to_owned();
    let mut length = 0usize;
    let mut target = None;
    let mut upstream_head = format!("{line}\r\n");
    for header in lines.filter(|l| !l.is_empty()) {
        let (name, value) = header.split_once(':').unwrap_or((header, ""));
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse().unwrap_or(0),
            "x-amz-target" => target = Some(value.to_owned()),
            "connection" => continue,
            _ => {}
        }
        upstream_head.push_str(header);
        upstream_head.push_str("\r\n");
    }
    upstream_head.push_str("connection: close\r\n\r\n");
    while buffered.len() < head_end + length {
        let mut chunk = [0u8; 8192];
        match client.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffered.extend_from_slice(&chunk[..n]),
        }
    }
    let body: Vec<u8> = buffered.drain(..head_end + length).skip(head_end).collect();
    let mut upstream = upstream_head.into_bytes();
    upstream.extend_from_slice(&body);
    Some(Request {
        line,
        target,
        body_text: String::from_utf8_lossy(&body).into_owned(),
        upstream,
    })
}

/// Takes the first active rule that matches, counting it.
fn fault_for(rules: &Mutex<Rules>, request: &Request) -> Option<(&'static str, Fault)> {
    let mut rules = rules.lock().ok()?;
    let index = rules
        .active
        .iter()
        .position(|r| r.remaining != Some(0) && r.matcher.matches(request))?;
    let rule = &mut rules.active[index];
    if let Some(n) = rule.remaining.as_mut() {
        *n -= 1;
    }
    let (name, fault) = (rule.name, rule.fault);
    *rules.injected.entry(name).or_default() += 1;
    Some((name, fault))
}

fn failure(request: &Request, rule: &str) -> Vec<u8> {
    let (content_type, body) = if request.target.is_some() {
        (
            "application/x-amz-json-1.0",
            format!(
                r#"{{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"fault injected: {rule}"}}"#
            ),
        )
    } else {
        (
            "application/json",
            format!(r#"{{"error":{{"type":"api_error","message":"fault injected: {rule}"}}}}"#),
        )
    };
    format!(
        "HTTP/1.1 500 Internal Server Error\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn serve(mut client: TcpStream, target_port: u16, rules: Arc<Mutex<Rules>>) {
    let mut buffered = Vec::new();
    while let Some(request) = read_request(&mut client, &mut buffered).await {
        match fault_for(&rules, &request) {
            Some((rule, Fault::Fail)) => {
                let _ = client.write_all(&failure(&request, rule)).await;
                return;
            }
            Some((_, Fault::Stall(hold))) => {
                tokio::time::sleep(hold).await;
                return;
            }
            None => {}
        }
        let Ok(mut server) = TcpStream::connect(("127.0.0.1", target_port)).await else {
            return;
        };
        if server.write_all(&request.upstream).await.is_err() {
            return;
        }
        let mut answer = Vec::new();
        if server.read_to_end(&mut answer).await.is_err() || answer.is_empty() {
            return;
        }
        if client.write_all(&answer).await.is_err() {
            return;
        }
    }
}
