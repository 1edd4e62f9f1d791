//! A minimal loopback HTTP/1.1 client for driving the emulator from tests and tools: the test
//! routes (`/_emulator/...`) and whatever async-stripe's typed requests cannot or would not send.

use std::time::Duration;

/// `application/x-www-form-urlencoded` for `pairs`: each key and value percent-encoded, so a
/// value holding `&`, `=` or `+` arrives as written.
pub fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// A form-encoded request with a hand-written body (`key` None: no Authorization header).
/// Returns the status and the JSON body.
pub async fn request(
    base: &str,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &str,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
    if let Some(auth) = &auth {
        headers.push(("authorization", auth.as_str()));
    }
    let answer = crate::http::send(method, &url, &headers, body, Duration::from_secs(60))
        .await
        .map_err(anyhow::Error::msg)?;
    Ok((answer.status, serde_json::from_str(&answer.body)?))
}

/// [`request`] with the key; a non-2xx answer is an error carrying Stripe's message.
pub async fn call(
    base: &str,
    key: &str,
    method: &str,
    path: &str,
    body: &str,
) -> anyhow::Result<serde_json::Value> {
    let (status, value) = request(base, method, path, Some(key), body).await?;
    anyhow::ensure!(status < 300, "{method} {path} → {status}: {value}");
    Ok(value)
}

/// Every event the emulator recorded, oldest first.
pub async fn events(base: &str, key: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(a) => format!("/v1/events?limit=100&starting_after={a}"),
            None => "/v1/events?limit=100".to_owned(),
        };
        let page = call(base, key, "GET", &path, "").await?;
        let data = page["data"].as_array().cloned().unwrap_or_default();
        after = data
            .last()
            .and_then(|e| e["id"].as_str())
            .map(str::to_owned);
        all.extend(data);
        if page["has_more"] != true || after.is_none() {
            break;
        }
    }
    all.reverse();
    Ok(all)
}

/// What a buyer does in Checkout: one line item, the price that holds `lookup_key`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Purchase<'a> {
    pub lookup_key: &'a str,
    pub customer: Option<&'a str>,
    pub client_reference_id: Option<&'a str>,
    /// Typed into Checkout when the session has no customer (a pay-first buyer).
    pub email: Option<&'a str>,
}

/// Creates a Checkout Session for the purchase (subscription mode for a recurring price,
/// payment mode otherwise) and completes it; returns the completed session.
pub async fn buy(
    base: &str,
    key: &str,
    purchase: Purchase<'_>,
) -> anyhow::Result<serde_json::Value> {
    let prices = call(
        base,
        key,
        "GET",
        &format!(
            "/v1/prices?{}",
            form(&[("lookup_keys[]", purchase.lookup_key)])
        ),
        "",
    )
    .await?;
    let price = &prices["data"][0];
    let id = price["id"].as_str().ok_or_else(|| {
        anyhow::anyhow!(
            "no price has lookup key {} (plans synced?)",
            purchase.lookup_key
        )
    })?;
    let mode = if price["type"] == "recurring" {
        "subscription"
    } else {
        "payment"
    };
    let mut fields = vec![
        ("mode", mode),
        ("line_items[0][price]", id),
        ("line_items[0][quantity]", "1"),
        ("success_url", "http://127.0.0.1/ok"),
    ];
    if let Some(c) = purchase.customer {
        fields.push(("customer", c));
    }
    if let Some(r) = purchase.client_reference_id {
        fields.push(("client_reference_id", r));
    }
    let session = call(base, key, "POST", "/v1/checkout/sessions", &form(&fields)).await?;
    let session_id = session["id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("the session has no id"))?;
    let complete = purchase
        .email
        .map(|e| form(&[("email", e)]))
        .unwrap_or_default();
    call(
        base,
        key,
        "POST",
        &format!("/_emulator/checkout/sessions/{session_id}/complete"),
        &complete,
    )
    .await
}
