//! Stripe through async-stripe: the `Billing` port and the catalogue calls behind
//! `creditgate plans sync`. `STRIPE_API_BASE` points the client at the stripe-emulator.
//!
//! Every Stripe call creditgate makes goes through [`send`] (or [`RetryingClient::send`]): a
//! 429 (Stripe's rate limiter, or `lock_timeout` on an object another request holds) is tried
//! again after a jittered exponential wait ([`Backoff`]), with the same idempotency key; any
//! other error is returned as async-stripe gives it.

use std::collections::HashMap;
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use domain::catalogue::{Catalogue, Period};
use domain::ids::{Email, StripeCustomerId, UserSub};
use domain::ports::{Billing, PortError};
use domain::sync::{Change, Products, StripeCatalogue, StripePrice, StripeProduct};
use stripe::{Client, ClientBuilder, IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_core::customer::CreateCustomer;
use stripe_product::price::{
    CreatePrice, CreatePriceRecurring, CreatePriceRecurringInterval, ListPrice, UpdatePrice,
};
use stripe_product::product::{CreateProduct, RetrieveProduct, UpdateProduct};
use stripe_shared::{Price, RecurringInterval};
use stripe_types::Currency;

use crate::config::{ExposeSecret, SecretString};
use crate::secrets::StripeSecretSource;

/// One attempt of one Stripe call, connecting included: below every function's timeout.
pub const TIMEOUT: Duration = Duration::from_secs(8);

/// Builds a client for one secret key. `api_base` (e.g. `http://127.0.0.1:12111/`) replaces
/// api.stripe.com; `None` talks to Stripe.
pub fn client(secret: &SecretString, api_base: Option<&str>) -> Result<Client, StripeError> {
    client_with_timeout(secret, api_base, TIMEOUT)
}

pub fn client_with_timeout(
    secret: &SecretString,
    api_base: Option<&str>,
    timeout: Duration,
) -> Result<Client, StripeError> {
    let mut builder = ClientBuilder::new(secret.expose_secret())
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

/// How a call Stripe refused with 429 is tried again. Stripe refuses a rate-limited request
/// before running it, so trying again (with the same idempotency key, if any) is always safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Attempts in all, the first included (1: a 429 is returned at once).
    pub attempts: u32,
    /// The wait before the first retry, before jitter; each next one is twice the one before.
    pub first_wait: Duration,
}

impl Backoff {
    /// Five attempts, waits of about 250 ms, 500 ms, 1 s, 2 s: at most 3.75 s of waiting, well
    /// inside the functions' timeouts (10 s and more; post-confirmation has its own, shorter).
    pub const DEFAULT: Self = Self {
        attempts: 5,
        first_wait: Duration::from_millis(250),
    };

    /// The wait before retry number `retry` (1: the first retry), "equal jitter": half of
    /// `first_wait × 2^(retry-1)` always, plus `jitter` (0 to 1, from a random source) of the other
    /// half, so callers rate-limited together do not all come back at once.
    pub fn wait(&self, retry: u32, jitter: f64) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        let nominal = self.first_wait.saturating_mul(factor);
        let half = nominal / 2;
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let extra = Duration::try_from_secs_f64(half.as_secs_f64() * jitter)
            .unwrap_or(half)
            .min(half);
        (nominal - half).saturating_add(extra)
    }

    /// The longest all the waits can add up to.
    pub fn max_total_wait(&self) -> Duration {
        (1..self.attempts)
            .map(|retry| self.wait(retry, 1.0))
            .fold(Duration::ZERO, Duration::saturating_add)
    }

    /// `req` sent through `client` with `strategy` (the client's own, `Once`, if `None`),
    /// again after a wait while Stripe answers 429 and attempts remain. Each retry logs a
    /// WARN with `metric=stripe_rate_limited` and `what` (the operation, e.g.
    /// "create Stripe customer"); when the attempts run out the last 429 is returned.
    pub async fn send<R>(
        &self,
        req: &R,
        strategy: Option<&RequestStrategy>,
        client: &Client,
        what: &'static str,
    ) -> Result<R::Output, StripeError>
    where
        R: StripeRequest,
        R::Output: miniserde::Deserialize,
    {
        self.retry(what, rand::random::<f64>, tokio::time::sleep, || {
            // Built again for each attempt: the same parameters and the same key every time.
            let mut call = req.customize();
            if let Some(strategy) = strategy {
                call = call.request_strategy(strategy.clone());
            }
            call.send(client)
        })
        .await
    }

    /// The retry loop of [`Backoff::send`] with its randomness and its sleep injected (tests
    /// record the waits instead of sleeping).
    pub async fn retry<T, A, F, S, P>(
        &self,
        what: &'static str,
        mut jitter: impl FnMut() -> f64,
        mut sleep: S,
        mut attempt: A,
    ) -> Result<T, StripeError>
    where
        A: FnMut() -> F,
        F: Future<Output = Result<T, StripeError>>,
        S: FnMut(Duration) -> P,
        P: Future<Output = ()>,
    {
        let mut tried = 1;
        loop {
            match attempt().await {
                Err(e) if is_rate_limited(&e) && tried < self.attempts => {
                    let wait = self.wait(tried, jitter());
                    tracing::warn!(
                        metric = "stripe_rate_limited",
                        operation = what,
                        attempt = tried,
                        wait_ms = wait.as_millis() as u64,
                        "Stripe answered 429; trying again after a wait"
                    );
                    sleep(wait).await;
                    tried += 1;
                }
                result => return result,
            }
        }
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Whether Stripe refused the request with 429 (`rate_limit`, or `lock_timeout`).
pub fn is_rate_limited(err: &StripeError) -> bool {
    matches!(err, StripeError::Stripe(_, 429))
}

/// [`Backoff::send`] with [`Backoff::DEFAULT`] (the operator's tools).
pub async fn send<R>(
    req: &R,
    strategy: Option<&RequestStrategy>,
    client: &Client,
    what: &'static str,
) -> Result<R::Output, StripeError>
where
    R: StripeRequest,
    R::Output: miniserde::Deserialize,
{
    Backoff::DEFAULT.send(req, strategy, client, what).await
}

/// A Stripe client and how its 429s are retried: what the ports call Stripe through.
#[derive(Debug, Clone)]
pub struct RetryingClient {
    pub client: Client,
    pub backoff: Backoff,
}

impl RetryingClient {
    /// [`Backoff::send`] with this client and its backoff.
    pub async fn send<R>(
        &self,
        req: &R,
        strategy: Option<&RequestStrategy>,
        what: &'static str,
    ) -> Result<R::Output, StripeError>
    where
        R: StripeRequest,
        R::Output: miniserde::Deserialize,
    {
        self.backoff.send(req, strategy, &self.client, what).await
    }

    /// A call without an idempotency key (a read, or an update that is the same however often
    /// it runs); an error is the port's, named `what`.
    pub async fn call<R>(&self, req: &R, what: &'static str) -> Result<R::Output, PortError>
    where
        R: StripeRequest,
        R::Output: miniserde::Deserialize,
    {
        self.send(req, None, what)
            .await
            .map_err(|e| PortError::new(what, e))
    }

    /// A read of an object that may not exist: Stripe's 404 is `None`.
    pub async fn find<R>(&self, req: &R, what: &'static str) -> Result<Option<R::Output>, PortError>
    where
        R: StripeRequest,
        R::Output: miniserde::Deserialize,
    {
        match self.send(req, None, what).await {
            Ok(found) => Ok(Some(found)),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(PortError::new(what, e)),
        }
    }
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
        let create = CreateCustomer::new()
            .email(email.as_str())
            .metadata(HashMap::from([("cognito_sub".to_owned(), sub.to_string())]));
        let what = "create Stripe customer";
        let customer = self
            .secrets
            .stripe()
            .await?
            .send(&create, Some(&idempotent(idempotency_key)?), what)
            .await
            .map_err(|e| PortError::new(what, e))?;
        StripeCustomerId::parse(customer.id.as_str())
            .map_err(|e| PortError::new("read Stripe customer id", e))
    }
}

/// Plans sync's port on Stripe: the products and prices read and changed with the key from
/// the secret source.
impl Products for StripeBilling {
    async fn read_catalogue(&self, catalogue: &Catalogue) -> Result<StripeCatalogue, PortError> {
        let stripe = self.secrets.stripe().await?;
        self::read_catalogue(&stripe.client, catalogue).await
    }

    async fn apply_change(&self, change: &Change, run_id: &str) -> Result<(), PortError> {
        let stripe = self.secrets.stripe().await?;
        self::apply_change(&stripe.client, change, run_id).await
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
        let what = "read Stripe product";
        match send(&RetrieveProduct::new(plan.product_id()), None, client, what).await {
            Ok(p) => state.products.push(StripeProduct {
                id: p.id.to_string(),
                name: p.name,
                active: p.active,
            }),
            Err(e) if is_missing(&e) => continue,
            Err(e) => return Err(PortError::new(what, e)),
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
            let what = "list Stripe prices";
            let page = send(&req, None, client, what)
                .await
                .map_err(|e| PortError::new(what, e))?;
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
        let what = "list Stripe prices by lookup key";
        let holders = send(
            &ListPrice::new().lookup_keys(keys).limit(100),
            None,
            client,
            what,
        )
        .await
        .map_err(|e| PortError::new(what, e))?;
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
            let create = CreateProduct::new(name.clone())
                .id(id.clone())
                .metadata(HashMap::from([(
                    "creditgate_plan".to_owned(),
                    plan.clone(),
                )]));
            let what = "create Stripe product";
            send(&create, None, client, what)
                .await
                .map_err(|e| PortError::new(what, e))?;
        }
        Change::UpdateProduct { id, name } => {
            let update = UpdateProduct::new(id.clone())
                .name(name.clone())
                .active(true);
            let what = "update Stripe product";
            send(&update, None, client, what)
                .await
                .map_err(|e| PortError::new(what, e))?;
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
            let key = idempotent(&format!("creditgate-sync-{run_id}-{}", new.lookup_key))?;
            let what = "create Stripe price";
            send(&req, Some(&key), client, what)
                .await
                .map_err(|e| PortError::new(what, e))?;
        }
        Change::DeactivatePrice { id, .. } => {
            let what = "deactivate Stripe price";
            send(
                &UpdatePrice::new(id.clone()).active(false),
                None,
                client,
                what,
            )
            .await
            .map_err(|e| PortError::new(what, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod backoff_tests;
