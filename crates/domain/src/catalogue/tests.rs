//! The catalogue's rules and its messages.

use super::*;

const SEED: &str = include_str!("../../../../plans.json");

fn with_plans(plans: &str) -> Result<Catalogue, CatalogueError> {
    Catalogue::parse(&format!(r#"{{"plans": [{plans}]}}"#))
}

const FREE: &str = r#"{"id":"free","name":"Free","credits":50,"period":"week"}"#;

#[test]
fn the_seed_catalogue_has_free_basic_and_power_as_designed() -> Result<(), CatalogueError> {
    let c = Catalogue::parse(SEED)?;
    let free = c.free_plan();
    assert_eq!(
        (free.id().as_str(), free.credits().get(), free.period()),
        ("free", 50, Period::Week)
    );
    assert!(free.price().is_none());

    let get = |id: &str| PlanId::parse(id).ok().and_then(|id| c.get(&id).cloned());
    let basic = get("basic").ok_or_else(|| CatalogueError::Shape("no basic".into()))?;
    assert_eq!(basic.credits().get(), 1_000);
    assert_eq!(basic.period(), Period::Month);
    assert_eq!(
        basic.price().map(|m| (m.amount(), m.currency())),
        Some((500, "gbp"))
    );
    assert!(basic.sells_as(SaleMode::Subscription) && basic.sells_as(SaleMode::Pack));

    let power = get("power").ok_or_else(|| CatalogueError::Shape("no power".into()))?;
    assert_eq!(power.credits().get(), 100_000);
    assert_eq!(
        power.price().map(|m| (m.amount(), m.currency())),
        Some((5000, "gbp"))
    );
    assert!(power.sells_as(SaleMode::Pack));
    Ok(())
}

#[test]
fn an_unknown_field_is_named_with_its_plan() {
    let err = with_plans(&format!(
        r#"{FREE},{{"id":"basic","name":"B","credits":1,"period":"month","colour":"red"}}"#
    ));
    assert!(
        matches!(err, Err(CatalogueError::Plan { ref plan, ref field, .. }) if plan == "basic" && field == "colour"),
        "{err:?}"
    );
}

#[test]
fn a_missing_field_is_named_with_its_plan() {
    let err = with_plans(&format!(
        r#"{FREE},{{"id":"basic","name":"B","period":"month"}}"#
    ));
    assert_eq!(
        err.err().map(|e| e.to_string()),
        Some("plans.json: plan basic: field `credits` is missing".into())
    );
}

#[test]
fn a_plan_without_an_id_is_named_by_its_position() {
    let err = with_plans(&format!(
        r#"{FREE},{{"name":"B","credits":1,"period":"month"}}"#
    ));
    assert!(
        matches!(err, Err(CatalogueError::Plan { ref plan, ref field, .. }) if plan == "#2" && field == "id"),
        "{err:?}"
    );
}

#[test]
fn inconsistent_plans_are_rejected() {
    let cases = [
        // priced but not sold
        (
            r#"{"id":"b","name":"B","credits":1,"period":"month","price":{"amount":5,"currency":"gbp"}}"#,
            "sold_as",
        ),
        // sold but not priced
        (
            r#"{"id":"b","name":"B","credits":1,"period":"month","sold_as":["pack"]}"#,
            "price",
        ),
        (
            r#"{"id":"b","name":"B","credits":0,"period":"month"}"#,
            "credits",
        ),
        (
            r#"{"id":"b","name":"B","credits":1,"period":"day"}"#,
            "period",
        ),
        (
            r#"{"id":"b","name":"B","credits":1,"period":"week","price":{"amount":5,"currency":"GBP"},"sold_as":["pack"]}"#,
            "price.currency",
        ),
        (
            r#"{"id":"b","name":"B","credits":1,"period":"week","price":{"amount":0,"currency":"gbp"},"sold_as":["pack"]}"#,
            "price.amount",
        ),
        (
            r#"{"id":"b","name":"B","credits":1,"period":"week","price":{"amount":5,"currency":"gbp"},"sold_as":["pack","pack"]}"#,
            "sold_as",
        ),
        (
            r#"{"id":"b","name":"B","credits":1,"period":"week","price":{"amount":5,"currency":"gbp"},"sold_as":["pack"],"trial_days":7}"#,
            "trial_days",
        ),
        (
            r#"{"id":"free","name":"Again","credits":1,"period":"week"}"#,
            "id",
        ),
    ];
    for (plan, field) in cases {
        match with_plans(&format!("{FREE},{plan}")) {
            Err(CatalogueError::Plan { field: f, .. }) => assert_eq!(f, field, "{plan}"),
            other => panic!("{plan}: expected an error on {field}, got {other:?}"),
        }
    }
}

#[test]
fn a_catalogue_needs_exactly_one_free_plan() {
    let paid = r#"{"id":"b","name":"B","credits":1,"period":"month","price":{"amount":5,"currency":"gbp"},"sold_as":["subscription"]}"#;
    assert!(matches!(with_plans(paid), Err(CatalogueError::Shape(_))));
    let second_free = r#"{"id":"gratis","name":"Gratis","credits":1,"period":"week"}"#;
    assert!(matches!(
        with_plans(&format!("{FREE},{second_free}")),
        Err(CatalogueError::Plan { .. })
    ));
}

#[test]
fn malformed_json_and_wrong_shapes_are_rejected() {
    assert!(matches!(
        Catalogue::parse("{"),
        Err(CatalogueError::Json(_))
    ));
    assert!(matches!(
        Catalogue::parse("[]"),
        Err(CatalogueError::Shape(_))
    ));
    assert!(matches!(
        Catalogue::parse(r#"{"plans":[]}"#),
        Err(CatalogueError::Shape(_))
    ));
    assert!(matches!(
        Catalogue::parse(r#"{"plans":[],"x":1}"#),
        Err(CatalogueError::Shape(_))
    ));
}

#[test]
fn lookup_keys_round_trip_to_their_plan_and_mode() -> Result<(), CatalogueError> {
    let c = Catalogue::parse(SEED)?;
    for plan in c.paid_plans() {
        for mode in plan.sale_modes() {
            let found =
                parse_lookup_key(&c, &plan.lookup_key(mode)).map(|(p, m)| (p.id().clone(), m));
            assert_eq!(found, Some((plan.id().clone(), mode)));
        }
    }
    assert!(parse_lookup_key(&c, "someone_elses_price").is_none());
    Ok(())
}

/// A wrong type, or `null`, in each field gets the catalogue's own message, not serde's.
#[test]
fn a_wrong_type_in_each_field_is_named_in_the_catalogues_words() {
    let plan = |field: &str, value: &str| {
        format!(
            r#"{FREE},{{"id":"b","name":"B","credits":1,"period":"month","price":{{"amount":5,"currency":"gbp"}},"sold_as":["pack"],"{field}":{value}}}"#
        )
    };
    let cases = [
        (plan("id", "7"), "plan #2: field `id` must be a string"),
        (plan("id", "null"), "plan #2: field `id` must be a string"),
        (
            plan("name", "null"),
            "plan b: field `name` must be a string",
        ),
        (
            plan("credits", "\"1\""),
            "plan b: field `credits` must be a whole number",
        ),
        (
            plan("credits", "1.5"),
            "plan b: field `credits` must be a whole number",
        ),
        (
            plan("credits", "-1"),
            "plan b: field `credits` must be a whole number",
        ),
        (
            plan("period", "[]"),
            "plan b: field `period` must be a string",
        ),
        (
            plan("trial_days", "null"),
            "plan b: field `trial_days` must be a whole number from 0 to 730",
        ),
        (
            plan("price", "\"5\""),
            "plan b: field `price` must be an object {\"amount\", \"currency\"} or absent",
        ),
        (
            plan("price", r#"{"amount":"5","currency":"gbp"}"#),
            "plan b: field `price.amount` must be a whole number of minor units from 1 to 99999999",
        ),
        (
            plan("price", r#"{"amount":5,"currency":null}"#),
            "plan b: field `price.currency` must be a lowercase ISO 4217 code such as \"gbp\"",
        ),
        (
            plan("price", r#"{"amount":5,"currency":"gbp","tax":1,"a":2}"#),
            "plan b: field `price.a` is not a known field (known: amount, currency)",
        ),
        (
            plan("sold_as", "null"),
            "plan b: field `sold_as` must be an array",
        ),
        (
            plan("sold_as", "[1]"),
            "plan b: field `sold_as` holds something other than \"subscription\" or \"pack\"",
        ),
        (
            plan("zz", "1,\"colour\":2"),
            "plan b: field `colour` is not a known field (known: id, name, credits, period, price, trial_days, sold_as)",
        ),
        (format!("{FREE},[]"), "plan #2 is not an object"),
        (format!("{FREE},null"), "plan #2 is not an object"),
    ];
    for (plans, message) in cases {
        assert_eq!(
            with_plans(&plans).err().map(|e| e.to_string()),
            Some(format!("plans.json: {message}")),
            "{plans}"
        );
    }
    let shapes = [
        ("[]", "the top level must be an object with a `plans` array"),
        (r#"{"plans":null}"#, "`plans` must be an array"),
        (r#"{"plans":{}}"#, "`plans` must be an array"),
        (
            r#"{"zz":1,"x":1,"plans":[]}"#,
            "unknown top-level field `x` (only `plans` is allowed)",
        ),
    ];
    for (json, message) in shapes {
        assert_eq!(
            Catalogue::parse(json).err().map(|e| e.to_string()),
            Some(format!("plans.json: {message}")),
            "{json}"
        );
    }
}
