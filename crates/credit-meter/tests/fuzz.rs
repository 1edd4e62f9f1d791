//! Property-based fuzzing (proptest) of `POST /v1/meter` through its handler, against the
//! in-memory meter: any body, any key header. Expected: never a panic, never a 5xx; a caller's
//! mistake is a 4xx, and a 200 charges what the body asked. `PROPTEST_CASES` sets the cases
//! (256 by default; `scripts/fuzz` runs 1,000,000).

use adapters::fakes::InMemoryMeter;
use credit_meter::{Deps, handle};
use lambda_http::Body;
use proptest::prelude::*;

const SUB: &str = "3a4b5c6d-0000-4000-8000-000000000001";
const KEY: &str = "cgk_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        "\\{\"credits\": ?-?[0-9]{0,22}(\\.[0-9])?\\}".prop_map(String::into_bytes),
        "\\{\"[a-z]{0,8}\": ?(\"[^\"]{0,5}\"|[0-9]{0,4}|null|true|\\[\\]|\\{\\})\\}"
            .prop_map(String::into_bytes),
        " {0,3}".prop_map(String::into_bytes),
    ]
}

fn key() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(Some(KEY.to_owned())),
        Just(None),
        "cgk_[0-9a-f]{0,70}".prop_map(Some),
        "[ -~]{0,80}".prop_map(Some),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn any_body_and_key_is_answered_without_a_5xx(body in body(), key in key()) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let deps = Deps::new(InMemoryMeter::with_user(SUB, KEY, 1_000_000, 0));
        let mut builder = lambda_http::http::Request::builder().method("POST").uri("/v1/meter");
        if let Some(key) = key.as_deref()
            && let Ok(value) = lambda_http::http::HeaderValue::from_str(key)
        {
            builder = builder.header("x-api-key", value);
        }
        let request = builder.body(Body::Binary(body.clone())).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let response = runtime
            .block_on(handle(&deps, request))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let status = response.status().as_u16();
        prop_assert!(status < 500, "{status} for {:?}", String::from_utf8_lossy(&body));
        if status == 200 {
            let charged = domain::metering::parse_cost(&body).map(|c| c.get()).ok();
            let answer: serde_json::Value = serde_json::from_slice(response.body().as_ref()).unwrap_or_default();
            prop_assert_eq!(answer["charged"].as_u64(), charged);
        }
    }
}
