//! The plan catalogue: `plans.json`, parsed once into typed plans.
//!
//! The file's shape is declared once, by serde-derived raw structs (`RawCatalogue`, `RawPlan`,
//! `RawMoney`) whose fields take any JSON value, then converted with `TryFrom` into
//! the typed plans, so that every error (a wrong type, a missing or unknown field, a rule broken)
//! names the plan and the field at fault in the catalogue's own words.

mod parse;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::Value;

use crate::ids::{Credits, PlanId};
use parse::RawCatalogue;

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
        Self::parse(include_str!("../../../../plans.json"))
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
