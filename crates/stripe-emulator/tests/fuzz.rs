//! Property-based fuzzing (proptest) of what the emulator parses from outside bytes: the form
//! decoder, and every route with hostile paths, queries and bodies, in process. Expected: no
//! panic, and every refusal a 4xx with Stripe's error shape, never a 5xx. `PROPTEST_CASES`
//! sets the cases per target (256 by default; `scripts/fuzz` runs 1,000,000).

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use proptest::prelude::*;
use stripe_emulator::Emulator;

const KEY: &str = "sk_test_fuzz";

/// Form-encoded text shaped like Stripe's: bracketed keys, indices, percent escapes.
fn form() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        "[a-z_]{1,12}",
        "[a-z_]{0,8}\\[[a-z0-9_]{0,6}\\]",
        "[a-z_]{1,8}\\[[0-9]{0,3}\\]\\[[a-z_]{0,6}\\]",
        "[a-z\\[\\]]{0,12}",
        "(email|customer|price|lookup_keys|metadata|line_items|items|mode|limit|starting_after|ending_before|created|delivery_success|type|types|url|enabled_events|seconds|failing|expand)(\\[[a-z0-9]{0,4}\\]){0,3}",
    ];
    let value = prop_oneof![
        ".{0,16}",
        "[0-9]{0,20}",
        "-?[0-9]{1,25}",
        "(true|false|maybe|)",
        "%[0-9A-Fa-f]{0,2}",
    ];
    prop::collection::vec((key, value), 0..8).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

fn path() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        Just("v1".to_owned()),
        Just("_emulator".to_owned()),
        "(customers|products|prices|events|webhook_endpoints|checkout|sessions|subscriptions|invoices|payment_intents|charges|refunds|disputes|billing_portal|clock|advance|complete|expire|line_items|deliveries|payment_method|rate_limit|search)",
        "(cus|prod|price|evt|we|cs_test|sub|in|pi|ch|re)_[A-Za-z0-9]{0,6}",
        (0usize..5).prop_map(|i| populated().1[i].clone()),
        "[a-z0-9%._~-]{0,10}",
    ];
    prop::collection::vec(segment, 0..5).prop_map(|s| format!("/{}", s.join("/")))
}

/// One emulator holding a customer, a product, a recurring price, a webhook endpoint and a
/// subscription's Checkout Session, shared by every case so paths can name real objects.
fn populated() -> &'static (Emulator, Vec<String>) {
    static ONE: std::sync::OnceLock<(Emulator, Vec<String>)> = std::sync::OnceLock::new();
    ONE.get_or_init(|| {
        let emulator = Emulator::new(KEY);
        let mut headers = HeaderMap::new();
        if let Ok(v) = format!("Bearer {KEY}").parse() {
            headers.insert("authorization", v);
        }
        let post = |path: &str, body: &str| {
            let uri: Uri = path.parse().unwrap_or_default();
            let (_, answer) =
                emulator.answer(&Method::POST, &uri, &headers, &Bytes::from(body.to_owned()));
            answer["id"].as_str().unwrap_or_default().to_owned()
        };
        let customer = post("/v1/customers", "email=fuzz%40example.com");
        let product = post("/v1/products", "id=prod_fuzz&name=Fuzz");
        let price = post(
            "/v1/prices",
            "product=prod_fuzz&currency=gbp&unit_amount=500&recurring[interval]=month&lookup_key=fuzz_sub",
        );
        let endpoint = post(
            "/v1/webhook_endpoints",
            "url=http://127.0.0.1:1/x&enabled_events[]=*",
        );
        let session = post(
            "/v1/checkout/sessions",
            &format!("mode=subscription&customer={customer}&line_items[0][price]={price}&line_items[0][quantity]=1&success_url=http://x/ok"),
        );
        let ids = vec![customer, product, price, endpoint, session];
        (emulator.clone(), ids)
    })
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::POST),
        Just(Method::DELETE),
        Just(Method::PUT),
    ]
}

proptest! {
    #[test]
    fn the_form_decoder_takes_any_bytes_without_a_panic(raw in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = stripe_emulator::form::decode(&raw);
    }

    #[test]
    fn stripe_shaped_forms_decode_or_are_refused_without_a_panic(raw in form()) {
        let _ = stripe_emulator::form::decode(raw.as_bytes());
    }

    #[test]
    fn every_route_answers_hostile_input_with_a_4xx_never_a_5xx(
        method in method(),
        path in path(),
        query in form(),
        body in form(),
        idempotency in proptest::option::of("[ -~]{0,300}"),
    ) {
        let (emulator, _) = populated();
        let uri: Uri = match format!("{path}?{query}").parse() {
            Ok(uri) => uri,
            // Not a URI an HTTP server would hand over.
            Err(_) => return Ok(()),
        };
        let mut headers = HeaderMap::new();
        headers.insert("authorization", format!("Bearer {KEY}").parse().map_err(|e| TestCaseError::fail(format!("{e}")))?);
        if let Some(key) = idempotency.and_then(|k| k.parse().ok()) {
            headers.insert("idempotency-key", key);
        }
        let (status, answer) = emulator.answer(&method, &uri, &headers, &Bytes::from(body.clone()));
        prop_assert!(status.as_u16() < 500, "{method} {uri} {body} → {status} {answer}");
        if !status.is_success() {
            prop_assert!(answer["error"]["message"].is_string(), "{answer}");
        }
    }
}

#[test]
fn the_shared_emulator_holds_the_objects_the_paths_name() {
    let ids = &populated().1;
    assert!(ids.iter().all(|id| !id.is_empty()), "{ids:?}");
}
