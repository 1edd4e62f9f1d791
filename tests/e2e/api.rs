//! The user-facing API as the HTTP API hands it to the Lambdas: API Gateway v2 events carrying
//! the JWT authorizer's claims (those of a real ID token issued by moto's Cognito), invoked
//! through `cargo lambda watch`.

use std::collections::HashMap;

use serde_json::{Value, json};
use tests::Stack;

/// The password the e2e tests sign users up with.
pub const PASSWORD: &str = "Local-passw0rd!";

/// The claims of an ID token moto's Cognito issues for the user (USER_PASSWORD_AUTH), as API
/// Gateway's JWT authorizer hands them to the Lambda: every value a string.
pub async fn claims(stack: &Stack, email: &str) -> anyhow::Result<HashMap<String, String>> {
    let auth = stack
        .cognito
        .initiate_auth()
        .client_id(stack.var("USER_POOL_CLIENT_ID")?)
        .auth_flow(aws_sdk_cognitoidentityprovider::types::AuthFlowType::UserPasswordAuth)
        .auth_parameters("USERNAME", email)
        .auth_parameters("PASSWORD", PASSWORD)
        .send()
        .await?;
    let token = auth
        .authentication_result()
        .and_then(|r| r.id_token())
        .ok_or_else(|| anyhow::anyhow!("no ID token"))?;
    let payload = token
        .split('.')
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("not a JWT"))?;
    let json: serde_json::Map<String, Value> = serde_json::from_slice(&base64url(payload)?)?;
    Ok(json
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (k, v)
        })
        .collect())
}

fn base64url(text: &str) -> anyhow::Result<Vec<u8>> {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.trim_end_matches('=').bytes() {
        let v = T
            .iter()
            .position(|t| *t == c)
            .ok_or_else(|| anyhow::anyhow!("not base64url"))? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

/// An API Gateway HTTP API (v2) event for `method path`, with the authorizer's JWT claims.
pub fn event(
    method: &str,
    path: &str,
    claims: Option<&HashMap<String, String>>,
    body: &str,
) -> Value {
    let mut context = json!({
        "accountId": "123456789012", "apiId": "local", "domainName": "localhost",
        "domainPrefix": "localhost", "requestId": "e2e", "routeKey": format!("{method} {path}"),
        "stage": "$default", "time": "23/Nov/2026:00:00:00 +0000", "timeEpoch": 0,
        "http": { "method": method, "path": path, "protocol": "HTTP/1.1",
                  "sourceIp": "127.0.0.1", "userAgent": "e2e" }
    });
    if let Some(claims) = claims {
        context["authorizer"] = json!({ "jwt": { "claims": claims, "scopes": null } });
    }
    json!({
        "version": "2.0", "routeKey": format!("{method} {path}"), "rawPath": path,
        "rawQueryString": "", "headers": { "content-type": "application/json" },
        "requestContext": context, "body": body, "isBase64Encoded": false
    })
}

/// Invokes `function` with the event; returns the response's status and JSON body.
pub async fn call(
    stack: &Stack,
    function: &str,
    method: &str,
    path: &str,
    claims: Option<&HashMap<String, String>>,
    body: &str,
) -> anyhow::Result<(u16, Value)> {
    let (status, raw) = stack
        .invoke(function, &event(method, path, claims, body))
        .await?;
    anyhow::ensure!(status == 200, "invoke {function}: {status} {raw}");
    let response: Value = serde_json::from_str(&raw)?;
    let body: Value = response["body"]
        .as_str()
        .map(serde_json::from_str)
        .transpose()?
        .unwrap_or(Value::Null);
    Ok((response["statusCode"].as_u64().unwrap_or(0) as u16, body))
}
