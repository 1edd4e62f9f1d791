//! Stripe through async-stripe: the `Billing` port and the catalogue calls behind
//! `creditgate plans sync`. `STRIPE_API_BASE` points the client at the stripe-emulator.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use domain::catalogue::{Catalogue, Period};
use domain::ids::{Email, StripeCustomerId, UserSub};
use domain::ports::{Billing, PortError};
use domain::sync::{Change, StripeCatalogue, StripePrice, StripeProduct};
use stripe::{Client, ClientBuilder, IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_core::customer::CreateCustomer;
use stripe_product::price::{
    CreatePrice, CreatePriceRecurring, CreatePriceRecurringInterval, ListPrice, UpdatePrice,
};
use stripe_product::product::{CreateProduct, RetrieveProduct, UpdateProduct};
use stripe_shared::{Price, RecurringInterval};
use stripe_types::Currency;

use crate::config::Secret;
use crate::secrets::StripeSecretSource;

/// One attempt of one Stripe call, connecting included: below every function's timeout.
pub const TIMEOUT: Duration = Duration::from_secs(8);

/// Builds a client for one secret key. `api_base` (e.g. `http://127.0.0.1:12111/`) replaces
/// api.stripe.com; `None` talks to Stripe.
pub fn client(secret: &Secret, api_base: Option<&str>) -> Result<Client, StripeError> {
    client_with_timeout(secret, api_base, TIMEOUT)
}

pub fn client_with_timeout(
    secret: &Secret,
    api_base: Option<&str>,
    timeout: Duration,
) -> Result<Client, StripeError> {
    let mut builder = ClientBuilder::new(secret.expose())
        .app_info(
            "creditgate",
            Some(env!("CARGO_PKG_VERSION").to_owned()),
            None,
        )
        .timeout(timeout);
    if let Some(base) = api_base {
        let base = if base.ends_with('/') {
            base.to_owned()
        } else {
            format!("{base}/")
        };
        builder = builder.url(base);
    }
    builder.build()
}

fn idempotent(key: &str) -> Result<RequestStrategy, PortError> {
    IdempotencyKey::new(key)
        .map(RequestStrategy::Idempotent)
        .map_err(|e| PortError::new("build idempotency key", e))
}

/// Whether Stripe answered that the object does not exist.
pub fn is_missing(err: &StripeError) -> bool {
    matches!(err, StripeError::Stripe(_, 404))
}

#[derive(Clone)]
pub struct StripeBilling {
    secrets: StripeSecretSource,
}

impl StripeBilling {
    pub fn new(secrets: StripeSecretSource) -> Self {
        Self { secrets }
    }
}

impl Billing for StripeBilling {
    async fn create_customer(
        &self,
        sub: &UserSub,
        email: &Email,
        idempotency_key: &str,
    ) -> Result<StripeCustomerId, PortError> {
        let customer = CreateCustomer::new()
            .email(email.as_str())
            .metadata(HashMap::from([("cognito_sub".to_owned(), sub.to_string())]))
            .customize()
            .request_strategy(idempotent(idempotency_key)?)
            .send(&self.secrets.current().await?.stripe)
            .await
            .map_err(|e| PortError::new("create Stripe customer", e))?;
        StripeCustomerId::parse(customer.id.as_str())
            .map_err(|e| PortError::new("read Stripe customer id", e))
    }
}

fn period_of(price: &Price) -> (Option<Period>, bool) {
    match &price.recurring {
        None => (None, false),
        Some(r) if r.interval_count == 1 => match r.interval {
            RecurringInterval::Week => (Some(Period::Week), false),
            RecurringInterval::Month => (Some(Period::Month), false),
            _ => (None, true),
        },
        Some(_) => (None, true),
    }
}

fn to_price(price: &Price) -> StripePrice {
    let (recurring, other_recurring) = period_of(price);
    StripePrice {
        id: price.id.to_string(),
        product: price.product.id().to_string(),
        lookup_key: price.lookup_key.clone(),
        unit_amount: price.unit_amount.and_then(|a| u64::try_from(a).ok()),
        currency: price.currency.to_string(),
        recurring,
        other_recurring,
        active: price.active,
    }
}

/// What Stripe holds for our catalogue: our products, every active price on them, and whatever
/// price holds one of our lookup keys.
pub async fn read_catalogue(
    client: &Client,
    catalogue: &Catalogue,
) -> Result<StripeCatalogue, PortError> {
    let mut state = StripeCatalogue::default();
    for plan in catalogue.paid_plans() {
        match RetrieveProduct::new(plan.product_id()).send(client).await {
            Ok(p) => state.products.push(StripeProduct {
                id: p.id.to_string(),
                name: p.name,
                active: p.active,
            }),
            Err(e) if is_missing(&e) => continue,
            Err(e) => return Err(PortError::new("read Stripe product", e)),
        }
        let mut after: Option<String> = None;
        loop {
            let mut req = ListPrice::new()
                .product(plan.product_id())
                .active(true)
                .limit(100);
            if let Some(a) = &after {
                req = req.starting_after(a.clone());
            }
            let page = req
                .send(client)
                .await
                .map_err(|e| PortError::new("list Stripe prices", e))?;
            state.prices.extend(page.data.iter().map(to_price));
            after = page.data.last().map(|p| p.id.to_string());
            if !page.has_more || after.is_none() {
                break;
            }
        }
    }
    let keys: Vec<String> = catalogue
        .paid_plans()
        .flat_map(|p| p.sale_modes().map(|m| p.lookup_key(m)).collect::<Vec<_>>())
        .collect();
    if !keys.is_empty() {
        let holders = ListPrice::new()
            .lookup_keys(keys)
            .limit(100)
            .send(client)
            .await
            .map_err(|e| PortError::new("list Stripe prices by lookup key", e))?;
        for price in holders.data.iter().map(to_price) {
            if !state.prices.iter().any(|p| p.id == price.id) {
                state.prices.push(price);
            }
        }
    }
    Ok(state)
}

/// Applies one change. `run_id` scopes idempotency keys to this sync run, so a retried request
/// inside a run never creates twice, while a later run is free to create again.
pub async fn apply_change(client: &Client, change: &Change, run_id: &str) -> Result<(), PortError> {
    match change {
        Change::CreateProduct { id, name, plan } => {
            CreateProduct::new(name.clone())
                .id(id.clone())
                .metadata(HashMap::from([(
                    "creditgate_plan".to_owned(),
                    plan.clone(),
                )]))
                .send(client)
                .await
                .map_err(|e| PortError::new("create Stripe product", e))?;
        }
        Change::UpdateProduct { id, name } => {
            UpdateProduct::new(id.clone())
                .name(name.clone())
                .active(true)
                .send(client)
                .await
                .map_err(|e| PortError::new("update Stripe product", e))?;
        }
        Change::CreatePrice(new) => {
            let currency = Currency::from_str(&new.currency).map_err(|_| {
                PortError::new(
                    "read currency",
                    format!("unknown currency {}", new.currency),
                )
            })?;
            let mut req = CreatePrice::new(currency)
                .product(new.product.clone())
                .unit_amount(new.unit_amount as i64)
                .lookup_key(new.lookup_key.clone())
                .transfer_lookup_key(true)
                .metadata(HashMap::from([
                    ("creditgate_plan".to_owned(), new.plan.clone()),
                    ("creditgate_mode".to_owned(), new.mode.as_str().to_owned()),
                ]));
            if let Some(period) = new.recurring {
                req = req.recurring(CreatePriceRecurring::new(match period {
                    Period::Week => CreatePriceRecurringInterval::Week,
                    Period::Month => CreatePriceRecurringInterval::Month,
                }));
            }
            req.customize()
                .request_strategy(idempotent(&format!(
                    "creditgate-sync-{run_id}-{}",
                    new.lookup_key
                ))?)
                .send(client)
                .await
                .map_err(|e| PortError::new("create Stripe price", e))?;
        }
        Change::DeactivatePrice { id, .. } => {
            UpdatePrice::new(id.clone())
                .active(false)
                .send(client)
                .await
                .map_err(|e| PortError::new("deactivate Stripe price", e))?;
        }
    }
    Ok(())
}
