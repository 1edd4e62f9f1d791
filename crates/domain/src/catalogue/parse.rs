//! `plans.json` as serde reads it (raw structs whose fields take any value) and the `TryFrom`
//! conversions into the typed plans, each error naming the plan and field at fault.

use std::collections::BTreeMap;

use serde::Deserializer;
use serde::de::IgnoredAny;

use super::*;

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
pub(super) struct RawCatalogue {
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
