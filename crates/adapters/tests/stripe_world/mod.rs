//! One Stripe for a contract test to play scenarios in, two ways: the real adapter
//! (`StripeState`) on an in-process stripe-emulator, driven through the emulator's HTTP API
//! (as the webhook tests drive it), and the in-memory `FakeStripe` through its setup methods.
//! A contract is written once against [`World`] and run on both.
#![allow(dead_code)]

use adapters::config::SecretString;
use adapters::fakes::FakeStripe;
use adapters::secrets::StripeSecretSource;
use adapters::stripe_api;
use adapters::stripe_reads::StripeState;
use domain::catalogue::{Catalogue, SaleMode};
use domain::ids::{PlanId, StripeCustomerId, UserSub};
use domain::ports::{Payments, SessionRequest, StripeReads};
use serde_json::Value;
use stripe_emulator::client;

const KEY: &str = "sk_test_stripe_contract";

/// What a scenario needs beyond the ports: customers, a buyer paying in Checkout, refunds and
/// disputes, a webhook endpoint that stops answering, time passing.
pub(crate) trait World {
    type Stripe: Payments + StripeReads + Sync;

    fn stripe(&self) -> &Self::Stripe;

    async fn customer(&self, email: &str) -> anyhow::Result<StripeCustomerId>;

    /// The buyer completes the open Checkout Session (pays, or starts the trial).
    async fn complete(&self, session: &str) -> anyhow::Result<()>;

    async fn refund(&self, charge: &str, amount: u64) -> anyhow::Result<()>;

    async fn dispute(&self, charge: &str) -> anyhow::Result<()>;

    /// From now on every event's delivery fails (an endpoint for every type that never
    /// answers).
    async fn webhook_down(&self) -> anyhow::Result<()>;

    /// Stripe's clock moves on.
    async fn advance(&self, seconds: i64) -> anyhow::Result<()>;
}

/// The real adapter on a fresh in-process emulator with plans.json synced into it.
pub(crate) struct Emulated {
    base: String,
    stripe: StripeState,
}

impl Emulated {
    pub(crate) async fn start() -> anyhow::Result<Self> {
        let base = stripe_emulator::spawn(stripe_emulator::Emulator::new(KEY)).await?;
        let client = stripe_api::client(&SecretString::from(KEY), Some(&base))?;
        let catalogue = Catalogue::bundled()?;
        let state = stripe_api::read_catalogue(&client, &catalogue).await?;
        for change in domain::sync::changes(&catalogue, &state) {
            stripe_api::apply_change(&client, &change, "contract").await?;
        }
        let stripe = StripeState::new(StripeSecretSource::fixed(KEY, &[], Some(base.clone())));
        Ok(Self { base, stripe })
    }

    async fn call(&self, method: &str, path: &str, body: &str) -> anyhow::Result<Value> {
        client::call(&self.base, KEY, method, path, body).await
    }
}

impl World for Emulated {
    type Stripe = StripeState;

    fn stripe(&self) -> &StripeState {
        &self.stripe
    }

    async fn customer(&self, email: &str) -> anyhow::Result<StripeCustomerId> {
        let c = self
            .call("POST", "/v1/customers", &format!("email={email}"))
            .await?;
        Ok(StripeCustomerId::parse(
            c["id"].as_str().unwrap_or_default(),
        )?)
    }

    async fn complete(&self, session: &str) -> anyhow::Result<()> {
        self.call(
            "POST",
            &format!("/_emulator/checkout/sessions/{session}/complete"),
            "",
        )
        .await?;
        Ok(())
    }

    async fn refund(&self, charge: &str, amount: u64) -> anyhow::Result<()> {
        self.call(
            "POST",
            "/v1/refunds",
            &format!("charge={charge}&amount={amount}"),
        )
        .await?;
        Ok(())
    }

    async fn dispute(&self, charge: &str) -> anyhow::Result<()> {
        self.call("POST", &format!("/_emulator/charges/{charge}/dispute"), "")
            .await?;
        Ok(())
    }

    async fn webhook_down(&self) -> anyhow::Result<()> {
        self.call(
            "POST",
            "/v1/webhook_endpoints",
            "url=http://127.0.0.1:1/dead&enabled_events[]=*",
        )
        .await?;
        Ok(())
    }

    async fn advance(&self, seconds: i64) -> anyhow::Result<()> {
        self.call(
            "POST",
            "/_emulator/clock/advance",
            &format!("seconds={seconds}"),
        )
        .await?;
        Ok(())
    }
}

/// The in-memory fake with plans.json's prices.
pub(crate) struct Fake(pub FakeStripe);

impl Fake {
    pub(crate) fn start() -> anyhow::Result<Self> {
        Ok(Self(FakeStripe::new(&Catalogue::bundled()?)))
    }
}

impl World for Fake {
    type Stripe = FakeStripe;

    fn stripe(&self) -> &FakeStripe {
        &self.0
    }

    async fn customer(&self, email: &str) -> anyhow::Result<StripeCustomerId> {
        Ok(self.0.customer(email))
    }

    async fn complete(&self, session: &str) -> anyhow::Result<()> {
        Ok(self.0.complete_session(session)?)
    }

    async fn refund(&self, charge: &str, amount: u64) -> anyhow::Result<()> {
        Ok(self.0.refund(charge, amount)?)
    }

    async fn dispute(&self, charge: &str) -> anyhow::Result<()> {
        Ok(self.0.dispute(charge)?)
    }

    async fn webhook_down(&self) -> anyhow::Result<()> {
        self.0.webhook_down();
        Ok(())
    }

    async fn advance(&self, seconds: i64) -> anyhow::Result<()> {
        self.0.advance(seconds);
        Ok(())
    }
}

/// A Checkout Session request for `sub` (customer `customer`) buying `plan` in `mode`.
pub(crate) fn session_request(
    sub: &str,
    customer: &StripeCustomerId,
    plan: &str,
    mode: SaleMode,
    trial_days: u32,
    idempotency_key: &str,
) -> anyhow::Result<SessionRequest> {
    let plan = PlanId::parse(plan)?;
    Ok(SessionRequest {
        sub: UserSub::parse(sub)?,
        customer: customer.clone(),
        lookup_key: domain::catalogue::lookup_key(&plan, mode),
        plan,
        mode,
        trial_days,
        success_url: "https://app.example.com/ok".into(),
        cancel_url: "https://app.example.com/cancel".into(),
        idempotency_key: idempotency_key.to_owned(),
    })
}

/// Creates the session through the port and completes it as the buyer; returns its id.
pub(crate) async fn buy(world: &impl World, request: &SessionRequest) -> anyhow::Result<String> {
    let session = world.stripe().create_checkout_session(request).await?.id;
    world.complete(&session).await?;
    Ok(session.to_string())
}
