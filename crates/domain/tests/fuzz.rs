//! Property-based fuzzing (proptest, stable Rust) of what the domain parses from outside bytes:
//! the Stripe-Signature header and `verify`, the webhook's event parser, the meter body; and
//! the credit arithmetic at its edges. Expected: never a panic, never a wrap, and every
//! refusal an error value (which the handlers answer 4xx). `PROPTEST_CASES` sets the cases per
//! target (256 by default; `scripts/fuzz` runs 1,000,000).

use domain::facts::ChargeFacts;
use domain::ids::Credits;
use domain::lifecycle::revoked_share;
use domain::metering::{MAX_CREDITS_PER_CALL, parse_cost};
use domain::stripe_events::EventRef;
use domain::webhook::{DEFAULT_TOLERANCE_SECONDS, WebhookSecret, check_header, sign, verify};
use proptest::prelude::*;

const NOW: i64 = 1_800_000_000;

fn secret() -> WebhookSecret {
    WebhookSecret::parse("whsec_fuzz_secret").unwrap_or_else(|e| panic!("{e}"))
}

/// Headers shaped like Stripe's, with every part free to be wrong.
fn near_headers() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        any::<i64>().prop_map(|t| format!("t={t}")),
        (NOW - 400..NOW + 400).prop_map(|t| format!("t={t}")),
        "[0-9a-f]{0,70}".prop_map(|h| format!("v1={h}")),
        "[0-9a-zA-Z=,; ]{0,20}",
        "v0=[0-9a-f]{64}",
        ".{0,12}",
    ];
    prop::collection::vec(part, 0..12).prop_map(|parts| parts.join(","))
}

proptest! {
    #[test]
    fn any_header_is_refused_without_a_panic(header in ".{0,300}", payload in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = check_header(Some(&header), NOW, DEFAULT_TOLERANCE_SECONDS);
        prop_assert!(verify(&payload, Some(&header), &[secret()], NOW, DEFAULT_TOLERANCE_SECONDS).is_err());
    }

    #[test]
    fn stripe_shaped_headers_not_made_with_the_secret_are_refused(header in near_headers(), payload in prop::collection::vec(any::<u8>(), 0..200)) {
        prop_assert!(verify(&payload, Some(&header), &[secret()], NOW, DEFAULT_TOLERANCE_SECONDS).is_err());
    }

    #[test]
    fn a_signed_payload_verifies_and_any_changed_byte_does_not(
        payload in prop::collection::vec(any::<u8>(), 1..300),
        age in -DEFAULT_TOLERANCE_SECONDS..=DEFAULT_TOLERANCE_SECONDS,
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let t = NOW - age;
        let header = sign(&payload, &secret(), t);
        prop_assert_eq!(verify(&payload, Some(&header), &[secret()], NOW, DEFAULT_TOLERANCE_SECONDS), Ok(t));
        let mut changed = payload.clone();
        let i = at.index(changed.len());
        changed[i] ^= flip;
        prop_assert!(verify(&changed, Some(&header), &[secret()], NOW, DEFAULT_TOLERANCE_SECONDS).is_err());
    }

    #[test]
    fn the_event_parser_takes_any_bytes_without_a_panic(payload in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = EventRef::parse(&payload);
    }

    #[test]
    fn event_shaped_json_parses_only_with_an_evt_id_a_type_a_time_and_an_object(
        id in prop_oneof![Just(serde_json::json!("evt_1")), ".{0,10}".prop_map(serde_json::Value::from), any::<i64>().prop_map(serde_json::Value::from), Just(serde_json::Value::Null)],
        kind in prop_oneof![".{0,20}".prop_map(serde_json::Value::from), Just(serde_json::Value::Null), any::<bool>().prop_map(serde_json::Value::from)],
        created in prop_oneof![any::<i64>().prop_map(serde_json::Value::from), any::<f64>().prop_map(serde_json::Value::from), ".{0,5}".prop_map(serde_json::Value::from)],
        object in prop_oneof![Just(serde_json::json!({"id": "sub_1"})), Just(serde_json::json!([])), Just(serde_json::Value::Null), ".{0,5}".prop_map(serde_json::Value::from)],
    ) {
        let payload = serde_json::json!({"id": id, "type": kind, "created": created, "data": {"object": object}});
        if let Ok(event) = EventRef::parse(payload.to_string().as_bytes()) {
            prop_assert!(event.id.starts_with("evt_"));
            prop_assert!(event.object.is_object());
        }
    }

    #[test]
    fn the_meter_body_is_one_to_the_maximum_credits_or_an_error(body in prop::collection::vec(any::<u8>(), 0..100)) {
        if let Ok(cost) = parse_cost(&body) {
            prop_assert!((1..=MAX_CREDITS_PER_CALL).contains(&cost.get()));
        }
    }

    #[test]
    fn a_credits_field_is_taken_only_as_a_whole_number_in_range(credits in prop_oneof![
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        ".{0,8}".prop_map(serde_json::Value::from),
        Just(serde_json::Value::Null),
    ]) {
        let body = serde_json::json!({ "credits": credits }).to_string();
        let expected = credits.as_u64().filter(|n| (1..=MAX_CREDITS_PER_CALL).contains(n));
        prop_assert_eq!(parse_cost(body.as_bytes()).ok().map(|c| c.get()), expected);
    }

    #[test]
    fn a_refund_or_dispute_takes_back_at_most_the_pack_never_wraps_and_grows_with_the_refund(
        credits in any::<u64>(),
        amount in any::<u64>(),
        refunded in any::<u64>(),
        more in any::<u64>(),
        disputed in any::<bool>(),
    ) {
        let charge_id = domain::ids::ChargeId::parse("ch_1").unwrap_or_else(|_| unreachable!());
        let charge = |amount_refunded| ChargeFacts {
            id: charge_id.clone(),
            customer: None,
            payment_intent: None,
            amount,
            amount_refunded,
            disputed,
        };
        let share = revoked_share(Credits::new(credits), Some(&charge(refunded))).get();
        prop_assert!(share <= credits);
        let larger = revoked_share(Credits::new(credits), Some(&charge(refunded.saturating_add(more)))).get();
        prop_assert!(larger >= share, "a larger refund never takes back less");
        if disputed || (amount > 0 && refunded >= amount) {
            prop_assert_eq!(share, credits);
        }
        prop_assert_eq!(revoked_share(Credits::new(credits), None).get(), 0);
    }
}
