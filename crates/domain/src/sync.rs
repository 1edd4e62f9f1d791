//! Making Stripe's catalogue match `plans.json`: a pure diff from what Stripe has to the list of
//! changes, so the CLI's `--dry-run` and its real run are the same computation.
//!
//! Every change is safe to repeat and the diff is recomputed from Stripe's state on each run, so
//! a run that stopped half way is finished by the next one.

use std::fmt;

use crate::catalogue::{Catalogue, Period, Plan, SaleMode};
use crate::ports::PortError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeProduct {
    pub id: String,
    pub name: String,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripePrice {
    pub id: String,
    pub product: String,
    pub lookup_key: Option<String>,
    pub unit_amount: Option<u64>,
    pub currency: String,
    /// `Some(period)` for a recurring price with interval_count 1; `None` for one-off.
    pub recurring: Option<Period>,
    /// A recurring price with an interval we never create (day, year, count > 1).
    pub other_recurring: bool,
    pub active: bool,
}

/// What Stripe has that concerns us: our products, every active price on them, and any price
/// holding one of our lookup keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StripeCatalogue {
    pub products: Vec<StripeProduct>,
    pub prices: Vec<StripePrice>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPrice {
    pub product: String,
    pub plan: String,
    pub mode: SaleMode,
    pub lookup_key: String,
    pub unit_amount: u64,
    pub currency: String,
    pub recurring: Option<Period>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    CreateProduct {
        id: String,
        name: String,
        plan: String,
    },
    UpdateProduct {
        id: String,
        name: String,
    },
    /// Created with `transfer_lookup_key`, so the key moves from any older price atomically.
    CreatePrice(NewPrice),
    DeactivatePrice {
        id: String,
        why: &'static str,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::CreateProduct { id, name, .. } => write!(f, "create product {id} ({name})"),
            Change::UpdateProduct { id, name } => {
                write!(f, "update product {id}: name {name:?}, active")
            }
            Change::CreatePrice(p) => write!(
                f,
                "create price {} for {}: {} {}{}",
                p.lookup_key,
                p.product,
                p.unit_amount,
                p.currency,
                p.recurring
                    .map(|r| format!(" every {}", r.as_str()))
                    .unwrap_or_else(|| " one-off".into())
            ),
            Change::DeactivatePrice { id, why } => write!(f, "deactivate price {id} ({why})"),
        }
    }
}

fn price_matches(price: &StripePrice, plan: &Plan, mode: SaleMode) -> bool {
    let Some(money) = plan.price() else {
        return false;
    };
    let wanted_recurring = match mode {
        SaleMode::Subscription => Some(plan.period()),
        SaleMode::Pack => None,
    };
    price.active
        && price.product == plan.product_id()
        && price.unit_amount == Some(money.amount())
        && price.currency == money.currency()
        && price.recurring == wanted_recurring
        && !price.other_recurring
}

/// The price that currently serves `plan` in `mode`, if Stripe has one that matches exactly.
pub fn current_price<'s>(
    stripe: &'s StripeCatalogue,
    plan: &Plan,
    mode: SaleMode,
) -> Option<&'s StripePrice> {
    let key = plan.lookup_key(mode);
    stripe
        .prices
        .iter()
        .find(|p| p.lookup_key.as_deref() == Some(key.as_str()) && price_matches(p, plan, mode))
}

/// The changes that make `stripe` match `catalogue`, creations first.
pub fn changes(catalogue: &Catalogue, stripe: &StripeCatalogue) -> Vec<Change> {
    let mut creates = Vec::new();
    let mut deactivations = Vec::new();
    let mut keep: Vec<&str> = Vec::new();

    for plan in catalogue.paid_plans() {
        let product_id = plan.product_id();
        match stripe.products.iter().find(|p| p.id == product_id) {
            None => creates.push(Change::CreateProduct {
                id: product_id.clone(),
                name: plan.name().to_owned(),
                plan: plan.id().to_string(),
            }),
            Some(p) if p.name != plan.name() || !p.active => creates.push(Change::UpdateProduct {
                id: product_id.clone(),
                name: plan.name().to_owned(),
            }),
            Some(_) => {}
        }
        for mode in plan.sale_modes() {
            match current_price(stripe, plan, mode) {
                Some(price) => keep.push(&price.id),
                None => {
                    if let Some(money) = plan.price() {
                        creates.push(Change::CreatePrice(NewPrice {
                            product: product_id.clone(),
                            plan: plan.id().to_string(),
                            mode,
                            lookup_key: plan.lookup_key(mode),
                            unit_amount: money.amount(),
                            currency: money.currency().to_owned(),
                            recurring: match mode {
                                SaleMode::Subscription => Some(plan.period()),
                                SaleMode::Pack => None,
                            },
                        }));
                    }
                }
            }
        }
    }

    // Any other active price on one of our products is stale: a price whose amount changed, one
    // whose lookup key moved, or one left by a run that stopped between create and deactivate.
    let our_products: Vec<String> = catalogue.paid_plans().map(Plan::product_id).collect();
    for price in &stripe.prices {
        if price.active
            && our_products.contains(&price.product)
            && !keep.contains(&price.id.as_str())
        {
            deactivations.push(Change::DeactivatePrice {
                id: price.id.clone(),
                why: "superseded: no longer matches plans.json",
            });
        }
    }
    creates.extend(deactivations);
    creates
}

/// Stripe's products and prices, as plans sync reads and changes them (the port of `run`).
pub trait Products {
    /// What Stripe holds for the catalogue's plans: their products and prices.
    fn read_catalogue(
        &self,
        catalogue: &Catalogue,
    ) -> impl Future<Output = Result<StripeCatalogue, PortError>> + Send;

    /// Makes one change; `run_id` keys its idempotency, so a rerun of the same run repeats
    /// nothing.
    fn apply_change(
        &self,
        change: &Change,
        run_id: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// Why a sync stopped.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("read the catalogue from Stripe (is STRIPE_API_BASE or the network reachable?)")]
    Read(#[source] PortError),
    #[error("{change} (rerun to finish; completed steps are not repeated)")]
    Apply {
        change: Change,
        #[source]
        source: PortError,
    },
    #[error("Stripe did not converge; still to do: {0:?}")]
    NotConverged(Vec<Change>),
}

/// `creditgate plans sync`: the changes that make Stripe match `catalogue`, each made (or, on
/// a dry run, only listed) and told to `each`; then Stripe is read back, and the run is done
/// only when nothing is left to change. Returns how many changes were made (or would be).
pub async fn run<P: Products>(
    stripe: &P,
    catalogue: &Catalogue,
    dry_run: bool,
    run_id: &str,
    mut each: impl FnMut(&Change),
) -> Result<usize, SyncError> {
    let before = stripe
        .read_catalogue(catalogue)
        .await
        .map_err(SyncError::Read)?;
    let to_make = changes(catalogue, &before);
    for change in &to_make {
        if !dry_run {
            stripe
                .apply_change(change, run_id)
                .await
                .map_err(|source| SyncError::Apply {
                    change: change.clone(),
                    source,
                })?;
        }
        each(change);
    }
    if !dry_run && !to_make.is_empty() {
        let after = stripe
            .read_catalogue(catalogue)
            .await
            .map_err(SyncError::Read)?;
        let left = changes(catalogue, &after);
        if !left.is_empty() {
            return Err(SyncError::NotConverged(left));
        }
    }
    Ok(to_make.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed() -> Catalogue {
        match Catalogue::parse(include_str!("../../../plans.json")) {
            Ok(c) => c,
            Err(e) => panic!("seed catalogue: {e}"),
        }
    }

    /// Applies changes the way Stripe would, to test convergence without a server.
    fn apply(stripe: &mut StripeCatalogue, changes: &[Change]) {
        for change in changes {
            match change {
                Change::CreateProduct { id, name, .. } => stripe.products.push(StripeProduct {
                    id: id.clone(),
                    name: name.clone(),
                    active: true,
                }),
                Change::UpdateProduct { id, name } => {
                    for p in stripe.products.iter_mut().filter(|p| &p.id == id) {
                        p.name = name.clone();
                        p.active = true;
                    }
                }
                Change::CreatePrice(n) => {
                    for p in stripe.prices.iter_mut() {
                        if p.lookup_key.as_deref() == Some(n.lookup_key.as_str()) {
                            p.lookup_key = None;
                        }
                    }
                    let id = format!("price_{}", stripe.prices.len() + 1);
                    stripe.prices.push(StripePrice {
                        id,
                        product: n.product.clone(),
                        lookup_key: Some(n.lookup_key.clone()),
                        unit_amount: Some(n.unit_amount),
                        currency: n.currency.clone(),
                        recurring: n.recurring,
                        other_recurring: false,
                        active: true,
                    });
                }
                Change::DeactivatePrice { id, .. } => {
                    for p in stripe.prices.iter_mut().filter(|p| &p.id == id) {
                        p.active = false;
                    }
                }
            }
        }
    }

    #[test]
    fn an_empty_stripe_gets_a_product_and_a_price_per_mode_for_each_paid_plan() {
        let changes = changes(&seed(), &StripeCatalogue::default());
        let products = changes
            .iter()
            .filter(|c| matches!(c, Change::CreateProduct { .. }))
            .count();
        let prices: Vec<_> = changes
            .iter()
            .filter_map(|c| match c {
                Change::CreatePrice(p) => Some((p.lookup_key.as_str(), p.unit_amount, p.recurring)),
                _ => None,
            })
            .collect();
        assert_eq!(products, 2);
        assert_eq!(
            prices,
            vec![
                ("creditgate_basic_subscription", 500, Some(Period::Month)),
                ("creditgate_basic_pack", 500, None),
                ("creditgate_power_subscription", 5000, Some(Period::Month)),
                ("creditgate_power_pack", 5000, None),
            ]
        );
    }

    #[test]
    fn a_second_sync_changes_nothing() {
        let catalogue = seed();
        let mut stripe = StripeCatalogue::default();
        let first = changes(&catalogue, &stripe);
        apply(&mut stripe, &first);
        assert_eq!(changes(&catalogue, &stripe), vec![]);
    }

    #[test]
    fn a_changed_amount_moves_the_lookup_key_and_deactivates_the_old_price() {
        let mut stripe = StripeCatalogue::default();
        let first = changes(&seed(), &stripe);
        apply(&mut stripe, &first);
        let old = stripe
            .prices
            .iter()
            .find(|p| p.lookup_key.as_deref() == Some("creditgate_basic_subscription"))
            .map(|p| p.id.clone());

        let dearer =
            include_str!("../../../plans.json").replace("\"amount\": 500,", "\"amount\": 700,");
        let catalogue = match Catalogue::parse(&dearer) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        let plan = changes(&catalogue, &stripe);
        assert_eq!(plan.len(), 4, "{plan:#?}"); // two new basic prices, two deactivations
        assert!(
            plan.iter().any(
                |c| matches!(c, Change::DeactivatePrice { id, .. } if Some(id) == old.as_ref())
            )
        );
        apply(&mut stripe, &plan);
        assert_eq!(changes(&catalogue, &stripe), vec![]);
        let now = current_price(
            &stripe,
            &catalogue
                .paid_plans()
                .next()
                .cloned()
                .unwrap_or_else(|| panic!()),
            SaleMode::Subscription,
        );
        assert_eq!(now.and_then(|p| p.unit_amount), Some(700));
    }

    #[test]
    fn a_run_that_stopped_between_create_and_deactivate_is_finished_by_the_next() {
        let catalogue = seed();
        let mut stripe = StripeCatalogue::default();
        let first = changes(&catalogue, &stripe);
        apply(&mut stripe, &first);
        // An old price on our product lost its key to a newer one but was never deactivated.
        stripe.prices.push(StripePrice {
            id: "price_orphan".into(),
            product: "creditgate_basic".into(),
            lookup_key: None,
            unit_amount: Some(400),
            currency: "gbp".into(),
            recurring: Some(Period::Month),
            other_recurring: false,
            active: true,
        });
        assert_eq!(
            changes(&catalogue, &stripe),
            vec![Change::DeactivatePrice {
                id: "price_orphan".into(),
                why: "superseded: no longer matches plans.json"
            }]
        );
    }

    #[test]
    fn a_renamed_or_archived_product_is_updated() {
        let catalogue = seed();
        let mut stripe = StripeCatalogue::default();
        let first = changes(&catalogue, &stripe);
        apply(&mut stripe, &first);
        stripe.products[0].name = "Old name".into();
        stripe.products[1].active = false;
        let plan = changes(&catalogue, &stripe);
        assert_eq!(plan.len(), 2);
        assert!(
            plan.iter()
                .all(|c| matches!(c, Change::UpdateProduct { .. }))
        );
    }
}
