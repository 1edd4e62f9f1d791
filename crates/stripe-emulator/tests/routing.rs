//! How paths reach the routes, in process: as the emulator matched them before its axum router
//! (leading and trailing slashes trimmed, `{id}` as sent, not percent-decoded, an empty `{id}`
//! still a route), and what is no route (another method, `HEAD`) is Stripe's 404.

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use stripe_emulator::Emulator;

const KEY: &str = "sk_test_routing";

fn call(emulator: &Emulator, method: Method, path: &str) -> (StatusCode, serde_json::Value) {
    let mut headers = HeaderMap::new();
    if let Ok(v) = format!("Bearer {KEY}").parse() {
        headers.insert("authorization", v);
    }
    let uri: Uri = path.parse().unwrap_or_default();
    emulator.answer(&method, &uri, &headers, &Bytes::new())
}

#[test]
fn slashes_around_a_path_are_trimmed_as_before_the_router() {
    let emulator = Emulator::new(KEY);
    for path in ["/v1/customers/", "//v1/customers", "///v1/customers///"] {
        let (status, body) = call(&emulator, Method::GET, path);
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(body["url"], "/v1/customers", "{path}: {body}");
    }
}

#[test]
fn an_id_is_the_path_segment_as_sent() {
    let emulator = Emulator::new(KEY);
    let (status, body) = call(&emulator, Method::GET, "/v1/customers/a%20b");
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["message"], "No such customer: 'a%20b'");
    let (status, body) = call(&emulator, Method::POST, "/v1/checkout/sessions//expire");
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["message"], "No such checkout.session: ''");
    assert_eq!(body["error"]["param"], "session");
}

#[test]
fn another_method_or_head_is_an_unrecognized_url() {
    let emulator = Emulator::new(KEY);
    let (status, body) = call(&emulator, Method::PUT, "/v1/customers");
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body["error"]["message"],
        "Unrecognized request URL (PUT: /v1/customers). Please see https://stripe.com/docs or we can help at https://support.stripe.com/."
    );
    let (status, _) = call(&emulator, Method::HEAD, "/v1/customers");
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The path in the message is the path as sent.
    let (_, body) = call(&emulator, Method::DELETE, "/v1/customers/");
    assert_eq!(
        body["error"]["message"],
        "Unrecognized request URL (DELETE: /v1/customers/). Please see https://stripe.com/docs or we can help at https://support.stripe.com/."
    );
}
