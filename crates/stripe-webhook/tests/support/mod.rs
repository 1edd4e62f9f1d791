//! The webhook handler against a real stripe-emulator (in process) and in-memory AWS ports:
//! scenarios are played in the emulator, then its events are delivered to the handler, signed.
#![allow(dead_code)]

use adapters::config::SecretString;
use adapters::fakes::{FakeDirectory, FakeScheduler, InMemoryAccounts};
use adapters::secrets::StripeSecretSource;
use adapters::stripe_api;
use adapters::stripe_reads::StripeState;
use anyhow::Context;
use domain::catalogue::Catalogue;
use domain::ids::{Email, StripeCustomerId, UserSub};
use domain::lifecycle::AccessPolicy;
use domain::lifecycle::Lifecycle;
use domain::ports::Accounts;
use domain::profile::Profile;
use domain::webhook::{WebhookSecret, sign};
use lambda_http::{Body, Request};
use serde_json::Value;
use stripe_emulator::client;
use stripe_webhook::Deps;

pub mod handler;
pub mod trust;

pub const KEY: &str = "sk_test_webhook_tests";
pub const SECRET: &str = "whsec_webhook_tests_secret";

pub type TestDeps = Deps<InMemoryAccounts, StripeState, FakeDirectory, FakeScheduler>;

pub struct Stripe {
    pub base: String,
    pub client: stripe::Client,
}

impl Stripe {
    /// A fresh emulator with plans.json synced into it.
    pub async fn start() -> anyhow::Result<Self> {
        let base = stripe_emulator::spawn(stripe_emulator::Emulator::new(KEY)).await?;
        let client = stripe_api::client(&SecretString::from(KEY), Some(&base))?;
        let catalogue = Catalogue::bundled()?;
        let state = stripe_api::read_catalogue(&client, &catalogue).await?;
        for change in domain::sync::changes(&catalogue, &state) {
            stripe_api::apply_change(&client, &change, "tests").await?;
        }
        Ok(Self { base, client })
    }

    pub async fn call(&self, method: &str, path: &str, body: &str) -> anyhow::Result<Value> {
        client::call(&self.base, KEY, method, path, body).await
    }

    pub async fn price(&self, lookup_key: &str) -> anyhow::Result<String> {
        let list = self
            .call(
                "GET",
                &format!(
                    "/v1/prices?{}",
                    stripe_emulator::client::form(&[("lookup_keys[]", lookup_key)])
                ),
                "",
            )
            .await?;
        list["data"][0]["id"]
            .as_str()
            .map(str::to_owned)
            .context("no price for the lookup key")
    }

    pub async fn customer(&self, email: &str) -> anyhow::Result<String> {
        let c = self
            .call(
                "POST",
                "/v1/customers",
                &stripe_emulator::client::form(&[("email", email)]),
            )
            .await?;
        c["id"]
            .as_str()
            .map(str::to_owned)
            .context("no customer id")
    }

    /// Creates and completes a Checkout Session; returns the completed session.
    pub async fn checkout(
        &self,
        customer: Option<&str>,
        reference: Option<&str>,
        lookup_key: &str,
        email: Option<&str>,
    ) -> anyhow::Result<Value> {
        let purchase = client::Purchase {
            lookup_key,
            customer,
            client_reference_id: reference,
            email,
        };
        client::buy(&self.base, KEY, purchase).await
    }

    pub async fn advance_days(&self, days: i64) -> anyhow::Result<()> {
        self.call(
            "POST",
            "/_emulator/clock/advance",
            &format!("seconds={}", days * 86_400),
        )
        .await?;
        Ok(())
    }

    pub async fn subscription(&self, id: &str) -> anyhow::Result<Value> {
        self.call("GET", &format!("/v1/subscriptions/{id}"), "")
            .await
    }

    /// An endpoint nobody answers, for every event type: from now on each event's delivery
    /// fails and stays pending, as when the webhook is down.
    pub async fn dead_endpoint(&self) -> anyhow::Result<()> {
        self.call(
            "POST",
            "/v1/webhook_endpoints",
            "url=http://127.0.0.1:1/dead&enabled_events[]=*",
        )
        .await?;
        Ok(())
    }

    /// `customer` (of user `sub`) subscribes to `lookup_key` through Checkout.
    pub async fn subscribe(
        &self,
        customer: &str,
        sub: &str,
        lookup_key: &str,
    ) -> anyhow::Result<Value> {
        self.checkout(Some(customer), Some(sub), lookup_key, None)
            .await
    }

    /// The first event of `event_type`: its payload and its id.
    pub async fn event(&self, event_type: &str) -> anyhow::Result<(String, String)> {
        let needle = format!("\"{event_type}\"");
        let payload = self
            .events()
            .await?
            .into_iter()
            .find(|e| e.contains(&needle))
            .with_context(|| format!("no {event_type} event"))?;
        let id = serde_json::from_str::<Value>(&payload)?["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        Ok((payload, id))
    }

    /// Every event so far, oldest first, as raw JSON payloads.
    pub async fn events(&self) -> anyhow::Result<Vec<String>> {
        let all = client::events(&self.base, KEY).await?;
        Ok(all.iter().map(Value::to_string).collect())
    }
}

pub fn deps(stripe: &Stripe, policy: AccessPolicy) -> anyhow::Result<TestDeps> {
    let secrets = StripeSecretSource::fixed(KEY, &[SECRET], Some(stripe.base.clone()));
    Ok(Deps {
        lifecycle: Lifecycle {
            store: InMemoryAccounts::default(),
            stripe: StripeState::new(secrets.clone()),
            directory: FakeDirectory::default(),
            scheduler: FakeScheduler::default(),
            catalogue: Catalogue::bundled()?,
            policy,
            free_period_override: None,
        },
        secrets,
    })
}

/// What post-confirmation leaves behind: a Cognito user, a Free profile, its customer link.
pub async fn sign_up(
    deps: &TestDeps,
    sub: &str,
    email: &str,
    customer: &str,
) -> anyhow::Result<()> {
    deps.lifecycle.directory.add(sub, email);
    let profile = Profile::new_signup(
        UserSub::parse(sub)?,
        Email::parse(email)?,
        StripeCustomerId::parse(customer)?,
        Catalogue::bundled()?.free_plan().id().clone(),
        "2026-11-23T00:00:00Z".into(),
    );
    deps.lifecycle.store.create_profile(&profile).await?;
    Ok(())
}

/// A delivery as API Gateway hands it over: raw body, Stripe-Signature made with `secret`.
pub fn delivery(payload: &str, secret: &str, timestamp: i64) -> anyhow::Result<Request> {
    let header = sign(
        payload.as_bytes(),
        &WebhookSecret::parse(secret)?,
        timestamp,
    );
    Ok(lambda_http::http::Request::builder()
        .method("POST")
        .uri("/stripe/webhook")
        .header("stripe-signature", header)
        .body(Body::Text(payload.to_owned()))?)
}

/// Delivers one payload, signed now; returns status and JSON body.
pub async fn deliver(deps: &TestDeps, payload: &str) -> anyhow::Result<(u16, Value)> {
    let response = stripe_webhook::handle(deps, delivery(payload, SECRET, adapters::unix_now())?)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let status = response.status().as_u16();
    let body: Value = serde_json::from_slice(response.body().as_ref())?;
    Ok((status, body))
}

pub async fn profile(deps: &TestDeps, sub: &str) -> anyhow::Result<Profile> {
    deps.lifecycle
        .store
        .profile(&UserSub::parse(sub)?)
        .await?
        .context("no profile")
}

/// Delivers `order`; a delivery answered 409 or 500 is delivered again later, as Stripe does
/// (at most 200 redeliveries); anything else is an error.
pub async fn deliver_order(deps: &TestDeps, order: Vec<&String>) -> anyhow::Result<()> {
    let mut queue: std::collections::VecDeque<&String> = order.into();
    let mut retries = 0;
    while let Some(event) = queue.pop_front() {
        let (status, body) = deliver(deps, event).await?;
        match status {
            200 => {}
            409 | 500 if retries < 200 => {
                retries += 1;
                queue.push_back(event);
            }
            _ => anyhow::bail!("{status}: {body} for {event}"),
        }
    }
    Ok(())
}

/// `user-1` signed up on a fresh emulator and subscribed through Checkout; nothing delivered.
pub async fn subscribed(
    lookup_key: &str,
) -> anyhow::Result<(Stripe, TestDeps, String, serde_json::Value)> {
    subscribed_on(Stripe::start().await?, lookup_key).await
}

/// `user-1` signed up and subscribed through Checkout on `stripe`; nothing delivered yet.
pub async fn subscribed_on(
    stripe: Stripe,
    lookup_key: &str,
) -> anyhow::Result<(Stripe, TestDeps, String, serde_json::Value)> {
    let deps = deps(&stripe, AccessPolicy::default())?;
    let customer = stripe.customer("ada@example.com").await?;
    sign_up(&deps, "user-1", "ada@example.com", &customer).await?;
    let session = stripe
        .checkout(Some(&customer), Some("user-1"), lookup_key, None)
        .await?;
    Ok((stripe, deps, customer, session))
}
