//! Stripe's 429, played by an in-process stripe-emulator (`POST /_emulator/rate_limit`),
//! against the real adapters: fewer refusals than the backoff's attempts and the call succeeds,
//! a create with its one idempotency key creating once; more and it fails with the 429,
//! having created nothing.

use std::time::Duration;

use adapters::secrets::{FixedSecret, SourceOptions, StripeSecretSource};
use adapters::stripe_api::{Backoff, StripeBilling};
use adapters::stripe_reads::StripeState;
use domain::ids::{Email, UserSub};
use domain::ports::{Billing, PortError, StripeReads};
use serde_json::Value;
use stripe_emulator::client;

const KEY: &str = "sk_test_rate_limit";

/// The default number of attempts, with waits short enough for a test (the waits themselves
/// are checked in `stripe_api`'s unit tests, without sleeping).
const BACKOFF: Backoff = Backoff {
    attempts: Backoff::DEFAULT.attempts,
    first_wait: Duration::from_millis(2),
};

struct Emulator {
    base: String,
    source: StripeSecretSource,
}

impl Emulator {
    async fn start() -> anyhow::Result<Self> {
        let base = stripe_emulator::spawn(stripe_emulator::Emulator::new(KEY)).await?;
        let options = SourceOptions {
            stripe_backoff: BACKOFF,
            ..SourceOptions::new(Some(base.clone()))
        };
        let source = StripeSecretSource::with_options(FixedSecret::of(KEY, &[]), options);
        Ok(Self { base, source })
    }

    async fn call(&self, method: &str, path: &str, body: &str) -> anyhow::Result<Value> {
        client::call(&self.base, KEY, method, path, body).await
    }

    /// The next `n` /v1 requests answer 429.
    async fn rate_limit(&self, n: u32) -> anyhow::Result<()> {
        self.call("POST", "/_emulator/rate_limit", &format!("requests={n}"))
            .await?;
        Ok(())
    }

    /// The requests refused so far (method, path, idempotency key) and how many remain.
    async fn refused(&self) -> anyhow::Result<(Vec<(String, String, Option<String>)>, u64)> {
        let view = self.call("GET", "/_emulator/rate_limit", "").await?;
        let refused = view["refused"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|r| {
                (
                    r["method"].as_str().unwrap_or_default().to_owned(),
                    r["path"].as_str().unwrap_or_default().to_owned(),
                    r["idempotency_key"].as_str().map(str::to_owned),
                )
            })
            .collect();
        Ok((refused, view["remaining"].as_u64().unwrap_or_default()))
    }

    async fn customers(&self, email: &str) -> anyhow::Result<Vec<String>> {
        let list = self
            .call("GET", &format!("/v1/customers?email={email}"), "")
            .await?;
        Ok(list["data"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|c| c["id"].as_str().map(str::to_owned))
            .collect())
    }
}

fn is_429(e: &PortError) -> bool {
    matches!(
        e.source.downcast_ref::<stripe::StripeError>(),
        Some(stripe::StripeError::Stripe(_, 429))
    )
}

async fn sign_up(
    billing: &StripeBilling,
    email: &str,
    key: &str,
) -> Result<domain::ids::StripeCustomerId, PortError> {
    let sub = UserSub::parse("0d7e5a51-7c43-4b56-9bd7-2c1a4e3f6a10")
        .map_err(|e| PortError::new("sub", e))?;
    let email = Email::parse(email).map_err(|e| PortError::new("email", e))?;
    billing.create_customer(&sub, &email, key).await
}

#[tokio::test]
async fn a_create_rate_limited_fewer_times_than_the_bound_creates_once_with_one_key()
-> anyhow::Result<()> {
    let stripe = Emulator::start().await?;
    let billing = StripeBilling::new(stripe.source.clone());
    stripe.rate_limit(BACKOFF.attempts - 1).await?;

    let customer = sign_up(&billing, "ada@example.com", "creditgate-signup-ada").await?;

    assert_eq!(
        stripe.customers("ada@example.com").await?,
        vec![customer.to_string()]
    );
    let (refused, remaining) = stripe.refused().await?;
    assert_eq!(remaining, 0);
    let key = Some("creditgate-signup-ada".to_owned());
    assert_eq!(
        refused,
        vec![("POST".to_owned(), "/v1/customers".to_owned(), key); 4],
        "every attempt carried the same idempotency key"
    );
    // The attempt that went through was saved under that key: asking again replays it.
    let again = sign_up(&billing, "ada@example.com", "creditgate-signup-ada").await?;
    assert_eq!(again, customer);
    assert_eq!(stripe.customers("ada@example.com").await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_read_rate_limited_fewer_times_than_the_bound_succeeds() -> anyhow::Result<()> {
    let stripe = Emulator::start().await?;
    let created = stripe
        .call("POST", "/v1/customers", "email=grace@example.com")
        .await?;
    let reads = StripeState::new(stripe.source.clone());
    stripe.rate_limit(BACKOFF.attempts - 1).await?;

    let events = reads.events_since(0, false).await?;

    assert_eq!(events.len(), 1);
    assert!(events[0].contains(created["id"].as_str().unwrap_or("?")));
    let (refused, remaining) = stripe.refused().await?;
    assert_eq!((refused.len(), remaining), (4, 0));
    assert!(
        refused
            .iter()
            .all(|(m, p, k)| m == "GET" && p == "/v1/events" && k.is_none())
    );
    Ok(())
}

#[tokio::test]
async fn past_the_bound_the_call_fails_with_the_429_and_nothing_is_created_twice()
-> anyhow::Result<()> {
    let stripe = Emulator::start().await?;
    let billing = StripeBilling::new(stripe.source.clone());
    let reads = StripeState::new(stripe.source.clone());
    stripe.rate_limit(2 * BACKOFF.attempts + 2).await?;

    let create = sign_up(&billing, "alan@example.com", "creditgate-signup-alan").await;
    let read = reads
        .charge(&domain::ids::ChargeId::parse("ch_anything")?)
        .await;

    let create = create
        .err()
        .ok_or_else(|| anyhow::anyhow!("the create succeeded"))?;
    assert!(is_429(&create), "{create:?}");
    assert_eq!(create.operation, "create Stripe customer");
    let read = read
        .err()
        .ok_or_else(|| anyhow::anyhow!("the read succeeded"))?;
    assert!(is_429(&read), "{read:?}");
    let (refused, remaining) = stripe.refused().await?;
    assert_eq!((refused.len() as u32, remaining), (2 * BACKOFF.attempts, 2));
    stripe.rate_limit(0).await?;
    assert!(stripe.customers("alan@example.com").await?.is_empty());

    // Stripe saved none of the refused attempts under the key: once the limit lifts, the same
    // key creates, once.
    let customer = sign_up(&billing, "alan@example.com", "creditgate-signup-alan").await?;
    sign_up(&billing, "alan@example.com", "creditgate-signup-alan").await?;
    assert_eq!(
        stripe.customers("alan@example.com").await?,
        vec![customer.to_string()]
    );
    Ok(())
}
