//! The plan catalogue: `plans.json`, parsed once into typed plans.
//!
//! The file's shape is declared once, by serde-derived raw structs (`RawCatalogue`, `RawPlan`,
//! `RawMoney`) whose fields take any JSON value, then converted with `TryFrom` into
//! the typed plans, so that every error (a wrong type, a missing or unknown field, a rule broken)
//! names the plan and the field at fault in the catalogue's own words.

use std::collections::{BTreeMap, BTreeSet};

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::ids::{Credits, PlanId};

/// How often a plan's allowance is granted (and a subscription renews).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    Week,
    Month,
}

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Week => "week",
            Period::Month => "month",
        }
    }

    /// The period in seconds, for the credit manager's Wait state. A month is 30 days: the
    /// manager only grants the Free plan, whose period is a week; paid periods follow Stripe's
    /// invoices, not this number.
    pub fn seconds(self) -> u64 {
        match self {
            Period::Week => 7 * 24 * 3600,
            Period::Month => 30 * 24 * 3600,
        }
    }
}

/// The two ways a paid plan can be sold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SaleMode {
    /// A recurring Stripe price; the allowance is reset on each paid invoice.
    Subscription,
    /// A one-off Stripe price; the plan's credits go to `purchased` and never expire.
    Pack,
}

impl SaleMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SaleMode::Subscription => "subscription",
            SaleMode::Pack => "pack",
        }
    }

    /// `subscription` or `pack`, as [`SaleMode::as_str`] writes them.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "subscription" => Some(SaleMode::Subscription),
            "pack" => Some(SaleMode::Pack),
            _ => None,
        }
    }
}

/// An amount of money in minor units (pence, cents) and a lowercase ISO currency.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Money {
    amount: u64,
    currency: String,
}

impl Money {
    pub fn amount(&self) -> u64 {
        self.amount
    }

    pub fn currency(&self) -> &str {
        &self.currency
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    id: PlanId,
    name: String,
    credits: Credits,
    period: Period,
    price: Option<Money>,
    trial_days: u32,
    sold_as: BTreeSet<SaleMode>,
}

impl Plan {
    pub fn id(&self) -> &PlanId {
        &self.id
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn credits(&self) -> Credits {
        self.credits
    }
    pub fn period(&self) -> Period {
        self.period
    }
    pub fn price(&self) -> Option<&Money> {
        self.price.as_ref()
    }
    pub fn trial_days(&self) -> u32 {
        self.trial_days
    }
    pub fn sells_as(&self, mode: SaleMode) -> bool {
        self.sold_as.contains(&mode)
    }
    pub fn sale_modes(&self) -> impl Iterator<Item = SaleMode> + '_ {
        self.sold_as.iter().copied()
    }
    pub fn is_free(&self) -> bool {
        self.price.is_none()
    }

    /// The Stripe price lookup key for this plan sold in `mode`. Lookup keys, not price ids, are
    /// what ties the catalogue to Stripe: a price change moves the key to a new price.
    pub fn lookup_key(&self, mode: SaleMode) -> String {
        lookup_key(&self.id, mode)
    }

    /// The Stripe product id for this plan. Stripe accepts caller-chosen product ids, which makes
    /// creating the product naturally idempotent.
    pub fn product_id(&self) -> String {
        product_id(&self.id)
    }
}

pub fn lookup_key(plan: &PlanId, mode: SaleMode) -> String {
    format!(
        "creditgate_{}_{}",
        plan.as_str().replace('-', "_"),
        mode.as_str()
    )
}

pub fn product_id(plan: &PlanId) -> String {
    format!("creditgate_{}", plan.as_str().replace('-', "_"))
}

/// Which plan and sale mode a lookup key stands for, if it is one of ours.
pub fn parse_lookup_key<'c>(catalogue: &'c Catalogue, key: &str) -> Option<(&'c Plan, SaleMode)> {
    catalogue.plans().iter().find_map(|plan| {
        plan.sold_as
            .iter()
            .find(|mode| plan.lookup_key(**mode) == key)
            .map(|mode| (plan, *mode))
    })
}

/// The whole catalogue. Exactly one plan is free; it is the plan every sign-up starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalogue {
    plans: Vec<Plan>,
    free: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueError {
    #[error("plans.json is not valid JSON: {0}")]
    Json(String),
    #[error("plans.json: {0}")]
    Shape(String),
    #[error("plans.json: plan {plan}: field `{field}` {problem}")]
    Plan {
        plan: String,
        field: String,
        problem: String,
    },
}

const FIELDS: &[&str] = &[
    "id",
    "name",
    "credits",
    "period",
    "price",
    "trial_days",
    "sold_as",
];

const MAX_CREDITS: u64 = 1_000_000_000;
const MAX_AMOUNT: u64 = 99_999_999;
const MAX_TRIAL_DAYS: u64 = 730;

/// A field as `plans.json` wrote it: the type the catalogue expects, or anything else, which the
/// conversion names in its own words (serde's would not say which plan).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Field<T> {
    Ok(T),
    Wrong(IgnoredAny),
}

impl<T> Field<T> {
    fn ok(self) -> Option<T> {
        match self {
            Field::Ok(value) => Some(value),
            Field::Wrong(_) => None,
        }
    }
}

/// `Some` for a field that is there, even as `null`; absence is left to `#[serde(default)]`.
/// For the fields where an explicit `null` is a wrong type rather than "not given".
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// The shape of `plans.json`. No field can fail to deserialize: a wrong type is kept as
/// [`Field::Wrong`] and a field of no known name lands in `unknown`, so that the conversion
/// ([`Catalogue::try_from`]) reports them in the catalogue's own words.
#[derive(Debug, Deserialize)]
struct RawCatalogue {
    #[serde(default)]
    plans: Option<Field<Vec<Field<RawPlan>>>>,
    #[serde(flatten)]
    unknown: BTreeMap<String, IgnoredAny>,
}

#[derive(Debug, Deserialize)]
struct RawPlan {
    #[serde(default, deserialize_with = "present")]
    id: Option<Field<String>>,
    #[serde(default, deserialize_with = "present")]
    name: Option<Field<String>>,
    #[serde(default, deserialize_with = "present")]
    credits: Option<Field<u64>>,
    #[serde(default, deserialize_with = "present")]
    period: Option<Field<String>>,
    /// `null` is no price, as is absence: the free plan.
    #[serde(default)]
    price: Option<Field<RawMoney>>,
    #[serde(default, deserialize_with = "present")]
    trial_days: Option<Field<u64>>,
    #[serde(default, deserialize_with = "present")]
    sold_as: Option<Field<Vec<Field<String>>>>,
    #[serde(flatten)]
    unknown: BTreeMap<String, IgnoredAny>,
}

#[derive(Debug, Deserialize)]
struct RawMoney {
    #[serde(default)]
    amount: Option<Field<u64>>,
    #[serde(default)]
    currency: Option<Field<String>>,
    #[serde(flatten)]
    unknown: BTreeMap<String, IgnoredAny>,
}

impl Catalogue {
    /// Parses and checks `plans.json`.
    pub fn parse(json: &str) -> Result<Self, CatalogueError> {
        // Through a `Value` first: JSON errors read as serde_json's own, and a key given twice in
        // an object keeps its last value rather than failing the struct.
        let root: Value =
            serde_json::from_str(json).map_err(|e| CatalogueError::Json(e.to_string()))?;
        // Every field of `RawCatalogue` takes any value, so only a top level that is not an
        // object fails here.
        let raw = RawCatalogue::deserialize(root).map_err(|_| {
            CatalogueError::Shape("the top level must be an object with a `plans` array".into())
        })?;
        Self::try_from(raw)
    }

    /// The workspace's `plans.json`, compiled into every binary so a deployed Lambda and the
    /// catalogue it was built with cannot disagree. Changing plans means a redeploy and a
    /// `creditgate plans sync`.
    pub fn bundled() -> Result<Self, CatalogueError> {
        Self::parse(include_str!("../../../plans.json"))
    }

    pub fn plans(&self) -> &[Plan] {
        &self.plans
    }

    pub fn free_plan(&self) -> &Plan {
        &self.plans[self.free]
    }

    pub fn get(&self, id: &PlanId) -> Option<&Plan> {
        self.plans.iter().find(|p| &p.id == id)
    }

    pub fn paid_plans(&self) -> impl Iterator<Item = &Plan> {
        self.plans.iter().filter(|p| !p.is_free())
    }
}

impl TryFrom<RawCatalogue> for Catalogue {
    type Error = CatalogueError;

    fn try_from(root: RawCatalogue) -> Result<Self, CatalogueError> {
        // The first unknown key in key order, as serde_json's (sorted) `Map` gave it.
        if let Some(unknown) = root.unknown.keys().next() {
            return Err(CatalogueError::Shape(format!(
                "unknown top-level field `{unknown}` (only `plans` is allowed)"
            )));
        }
        let Some(Field::Ok(raw_plans)) = root.plans else {
            return Err(CatalogueError::Shape("`plans` must be an array".into()));
        };
        if raw_plans.is_empty() {
            return Err(CatalogueError::Shape("`plans` is empty".into()));
        }

        let mut plans = Vec::with_capacity(raw_plans.len());
        for (index, raw) in raw_plans.into_iter().enumerate() {
            let Field::Ok(raw) = raw else {
                return Err(CatalogueError::Shape(format!(
                    "plan #{} is not an object",
                    index + 1
                )));
            };
            plans.push(Plan::try_from((index, raw))?);
        }

        let mut seen = BTreeSet::new();
        for plan in &plans {
            if !seen.insert(plan.id.clone()) {
                return Err(plan_err(
                    plan.id.as_str(),
                    "id",
                    "is used by more than one plan",
                ));
            }
        }
        let free: Vec<usize> = plans
            .iter()
            .enumerate()
            .filter(|(_, p)| p.is_free())
            .map(|(i, _)| i)
            .collect();
        let free = match free.as_slice() {
            [one] => *one,
            [] => {
                return Err(CatalogueError::Shape(
                    "no free plan (a plan without `price`): sign-ups need one to start on".into(),
                ));
            }
            [_, second, ..] => {
                return Err(plan_err(
                    plans[*second].id.as_str(),
                    "price",
                    "is missing, but another plan is already the free plan (only one may be)",
                ));
            }
        };
        Ok(Self { plans, free })
    }
}

fn plan_err(plan: &str, field: &str, problem: impl Into<String>) -> CatalogueError {
    CatalogueError::Plan {
        plan: plan.to_owned(),
        field: field.to_owned(),
        problem: problem.into(),
    }
}

/// A plan from the `index`th (0-based) entry of `plans`.
impl TryFrom<(usize, RawPlan)> for Plan {
    type Error = CatalogueError;

    fn try_from((index, raw): (usize, RawPlan)) -> Result<Self, CatalogueError> {
        // Name the plan by its id when it has a usable one, else by its position.
        let label = match &raw.id {
            Some(Field::Ok(id)) if !id.is_empty() => id.clone(),
            _ => format!("#{}", index + 1),
        };
        let err = |field: &str, problem: &str| plan_err(&label, field, problem);

        if let Some(unknown) = raw.unknown.keys().next() {
            return Err(err(
                unknown,
                &format!("is not a known field (known: {})", FIELDS.join(", ")),
            ));
        }

        let id = PlanId::parse(&required(raw.id, "id", &label, "must be a string")?)
            .map_err(|e| err("id", e.problem))?;
        let name = required(raw.name, "name", &label, "must be a string")?
            .trim()
            .to_owned();
        if name.is_empty() || name.len() > 100 {
            return Err(err("name", "must be 1 to 100 characters"));
        }
        let credits = required(raw.credits, "credits", &label, "must be a whole number")?;
        if credits == 0 || credits > MAX_CREDITS {
            return Err(err(
                "credits",
                &format!("must be between 1 and {MAX_CREDITS}"),
            ));
        }
        let period = match required(raw.period, "period", &label, "must be a string")?.as_str() {
            "week" => Period::Week,
            "month" => Period::Month,
            _ => return Err(err("period", "must be \"week\" or \"month\"")),
        };
        let trial_days = match raw.trial_days {
            None => 0,
            Some(v) => v.ok().filter(|d| *d <= MAX_TRIAL_DAYS).ok_or_else(|| {
                err(
                    "trial_days",
                    &format!("must be a whole number from 0 to {MAX_TRIAL_DAYS}"),
                )
            })?,
        } as u32;
        let price = match raw.price {
            None => None,
            Some(Field::Ok(money)) => Some(Money::try_from((label.as_str(), money))?),
            Some(Field::Wrong(_)) => {
                return Err(err(
                    "price",
                    "must be an object {\"amount\", \"currency\"} or absent",
                ));
            }
        };
        let mut sold_as = BTreeSet::new();
        match raw.sold_as {
            None => {}
            Some(Field::Ok(modes)) => {
                for mode in modes {
                    let mode = mode
                        .ok()
                        .as_deref()
                        .and_then(SaleMode::parse)
                        .ok_or_else(|| {
                            err(
                                "sold_as",
                                "holds something other than \"subscription\" or \"pack\"",
                            )
                        })?;
                    if !sold_as.insert(mode) {
                        return Err(err("sold_as", "lists a mode twice"));
                    }
                }
            }
            Some(Field::Wrong(_)) => return Err(err("sold_as", "must be an array")),
        }

        match (&price, sold_as.is_empty()) {
            (Some(_), true) => {
                return Err(err(
                    "sold_as",
                    "is empty, but the plan has a price: say \"subscription\", \"pack\" or both",
                ));
            }
            (None, false) => {
                return Err(err(
                    "price",
                    "is missing, but the plan is sold (`sold_as` is not empty)",
                ));
            }
            _ => {}
        }
        if price.is_none() && trial_days > 0 {
            return Err(err("trial_days", "must be 0 on the free plan"));
        }
        if trial_days > 0 && !sold_as.contains(&SaleMode::Subscription) {
            return Err(err(
                "trial_days",
                "only applies to plans sold as a subscription",
            ));
        }

        Ok(Plan {
            id,
            name,
            credits: Credits::new(credits),
            period,
            price,
            trial_days,
            sold_as,
        })
    }
}

/// The price of the plan labelled `label`.
impl TryFrom<(&str, RawMoney)> for Money {
    type Error = CatalogueError;

    fn try_from((label, raw): (&str, RawMoney)) -> Result<Self, CatalogueError> {
        if let Some(unknown) = raw.unknown.keys().next() {
            return Err(plan_err(
                label,
                &format!("price.{unknown}"),
                "is not a known field (known: amount, currency)",
            ));
        }
        let amount = raw
            .amount
            .and_then(Field::ok)
            .filter(|a| (1..=MAX_AMOUNT).contains(a))
            .ok_or_else(|| {
                plan_err(
                    label,
                    "price.amount",
                    format!("must be a whole number of minor units from 1 to {MAX_AMOUNT}"),
                )
            })?;
        let currency = raw
            .currency
            .and_then(Field::ok)
            .filter(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_lowercase()))
            .ok_or_else(|| {
                plan_err(
                    label,
                    "price.currency",
                    "must be a lowercase ISO 4217 code such as \"gbp\"",
                )
            })?;
        Ok(Money { amount, currency })
    }
}

/// A field the plan must have: "is missing" when absent, `wrong` when of another type.
fn required<T>(
    field: Option<Field<T>>,
    name: &str,
    label: &str,
    wrong: &str,
) -> Result<T, CatalogueError> {
    match field {
        None => Err(plan_err(label, name, "is missing")),
        Some(Field::Ok(value)) => Ok(value),
        Some(Field::Wrong(_)) => Err(plan_err(label, name, wrong)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = include_str!("../../../plans.json");

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
}
