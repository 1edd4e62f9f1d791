//! The event types the webhook acts on (`HANDLED_TYPES`) each map to an action, and the lists
//! an operator and the local stack register the endpoint with say the same: README's
//! "Deploying" and `scripts/dev`.

use std::collections::BTreeSet;
use std::path::Path;

use domain::stripe_events::{Action, EventRef, HANDLED_TYPES};

/// An event of `kind` whose object has the id such an object has (`cs_`, `sub_`, `in_`, `ch_`).
fn event(kind: &str) -> EventRef {
    let id = match kind.split('.').next() {
        Some("checkout") => "cs_test_1",
        Some("customer") => "sub_1",
        Some("invoice") => "in_1",
        Some("charge") => "ch_1",
        _ => "obj_1",
    };
    event_with_id(kind, id)
}

fn event_with_id(kind: &str, id: &str) -> EventRef {
    EventRef {
        id: "evt_1".into(),
        kind: kind.into(),
        created: 1,
        object: serde_json::json!({
            "id": id,
            "charge": "ch_1",
            "subscription": "sub_1",
            "trial_end": 2,
            "attempt_count": 1,
        }),
    }
}

#[test]
fn every_handled_type_maps_to_an_action_and_others_are_ignored() {
    for kind in HANDLED_TYPES {
        assert!(
            !matches!(event(kind).action(), Action::Ignore(_)),
            "{kind} is listed as handled but ignored"
        );
    }
    // An id that is no such Stripe id is refused before any read.
    assert!(matches!(
        event_with_id("customer.subscription.updated", "sub_../../v1/x").action(),
        Action::Ignore(why) if why.contains("invalid Stripe subscription id")
    ));
    assert_eq!(
        event("customer.created").action(),
        Action::Ignore("customer.created is not handled".into())
    );
    assert_eq!(
        event("charge.dispute.created").action(),
        Action::ChargeChanged {
            charge: domain::ids::ChargeId::parse("ch_1").unwrap_or_else(|_| unreachable!())
        }
    );
    assert_eq!(
        event("invoice.paid").action(),
        Action::SyncSubscription {
            subscription: domain::ids::SubscriptionId::parse("sub_1")
                .unwrap_or_else(|_| unreachable!())
        }
    );
}

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The README's list: full names in backquotes, `.updated` short for the last full name's
/// prefix and `updated`.
fn readme_types() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap_or_default();
    let start = readme
        .find("The endpoint needs these events:")
        .unwrap_or(readme.len());
    let paragraph: String = readme[start..]
        .split("\n\n")
        .next()
        .unwrap_or_default()
        .to_owned();
    let mut found = BTreeSet::new();
    let mut prefix = String::new();
    for (i, part) in paragraph.split('`').enumerate() {
        if i % 2 == 0 {
            continue;
        }
        let full = match part.strip_prefix('.') {
            Some(short) => format!("{prefix}.{short}"),
            None => part.to_owned(),
        };
        prefix = full
            .rsplit_once('.')
            .map(|(p, _)| p.to_owned())
            .unwrap_or_default();
        found.insert(full);
    }
    found
}

#[test]
fn the_readme_and_scripts_dev_register_exactly_the_handled_types() {
    let handled: BTreeSet<String> = HANDLED_TYPES.iter().map(|s| s.to_string()).collect();
    assert_eq!(readme_types(), handled, "README.md, Deploying");
    let dev = std::fs::read_to_string(root().join("scripts/dev")).unwrap_or_default();
    let listed: BTreeSet<String> = dev
        .split('"')
        .filter(|s| {
            s.contains('.')
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_')
                && !s.starts_with('.')
        })
        .map(str::to_owned)
        .collect();
    assert_eq!(listed, handled, "scripts/dev's endpoint registration");
}
