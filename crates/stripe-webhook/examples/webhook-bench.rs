//! Figures for `scripts/bench` (never a test): the stripe-webhook handler, in process, against
//! the local stack (moto's DynamoDB, Cognito and Step Functions; the stripe-emulator).
//!
//! A lifecycle is played in the emulator for the bench user (subscribe to Basic, three
//! renewals, a pack, a partial refund). Its events are then delivered to the handler signed:
//! once each in order (first deliveries: the effects happen), then 1,000 more as fresh event
//! ids cycling through the same events (warm: the objects are read again, nothing changes).
//! Prints handling time median / p99 and DynamoDB requests per event type.
//!
//! Env: the local stack's (`.local/env`) plus `BENCH_SUB` (a signed-up user).

use std::collections::BTreeMap;
use std::time::Instant;

use adapters::aws::RequestCounter;
use adapters::cognito::CognitoDirectory;
use adapters::dynamo::DynamoStore;
use adapters::secrets::StripeSecretSource;
use adapters::sfn::StepFunctionsScheduler;
use adapters::stripe_reads::StripeState;
use anyhow::Context;
use domain::catalogue::Catalogue;
use domain::ids::UserSub;
use domain::lifecycle::AccessPolicy;
use domain::lifecycle::Lifecycle;
use domain::ports::Accounts;
use domain::webhook::{WebhookSecret, sign};
use lambda_http::Body;
use serde_json::Value;
use stripe_emulator::client;
use stripe_webhook::{Deps, handle};

const SECRET: &str = "whsec_bench";

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set"))
}

struct Emulator {
    base: String,
    key: String,
}

impl Emulator {
    async fn call(&self, method: &str, path: &str, body: &str) -> anyhow::Result<Value> {
        client::call(&self.base, &self.key, method, path, body).await
    }

    /// Buys `lookup_key` for the bench user in Checkout, completed.
    async fn buy(&self, customer: &str, sub: &str, lookup_key: &str) -> anyhow::Result<Value> {
        let purchase = client::Purchase {
            lookup_key,
            customer: Some(customer),
            client_reference_id: Some(sub),
            email: None,
        };
        client::buy(&self.base, &self.key, purchase).await
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn median_u64(values: &mut [u64]) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let sub = UserSub::parse(&env("BENCH_SUB")?)?;
    let events_wanted: usize = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let emulator = Emulator {
        base: env("STRIPE_API_BASE")?,
        key: env("STRIPE_SECRET_KEY")?,
    };
    let aws = adapters::aws::sdk_config().await;
    let counter = RequestCounter::default();
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&aws)
            .interceptor(counter.clone())
            .build(),
    );
    let secrets = StripeSecretSource::fixed(&emulator.key, &[SECRET], Some(emulator.base.clone()));
    let deps = Deps {
        lifecycle: Lifecycle {
            store: DynamoStore::new(dynamodb, env("TABLE_NAME")?),
            stripe: StripeState::new(secrets.clone()),
            directory: CognitoDirectory::new(
                aws_sdk_cognitoidentityprovider::Client::new(&aws),
                env("USER_POOL_ID")?,
            ),
            scheduler: StepFunctionsScheduler::new(
                aws_sdk_sfn::Client::new(&aws),
                env("CREDIT_MANAGER_ARN")?,
            ),
            catalogue: Catalogue::bundled()?,
            policy: AccessPolicy::default(),
            free_period_override: None,
        },
        secrets,
    };
    let profile = deps
        .lifecycle
        .store
        .profile(&sub)
        .await?
        .context("the bench user has no profile")?;
    let customer = profile.customer.to_string();

    // This process is the only webhook: the stack's endpoint would apply the events first.
    let endpoints = emulator.call("GET", "/v1/webhook_endpoints", "").await?;
    for e in endpoints["data"].as_array().cloned().unwrap_or_default() {
        if let Some(id) = e["id"].as_str() {
            emulator
                .call("DELETE", &format!("/v1/webhook_endpoints/{id}"), "")
                .await?;
        }
    }
    let seen = client::events(&emulator.base, &emulator.key).await?.len();
    emulator
        .buy(&customer, sub.as_str(), "creditgate_basic_subscription")
        .await?;
    for _ in 0..3 {
        emulator
            .call(
                "POST",
                "/_emulator/clock/advance",
                &format!("seconds={}", 31 * 86_400),
            )
            .await?;
    }
    let pack = emulator
        .buy(&customer, sub.as_str(), "creditgate_basic_pack")
        .await?;
    let pi = pack["payment_intent"].as_str().context("payment intent")?;
    emulator
        .call(
            "POST",
            "/v1/refunds",
            &format!("payment_intent={pi}&amount=100"),
        )
        .await?;

    let mut events = client::events(&emulator.base, &emulator.key).await?;
    let events: Vec<Value> = events.split_off(seen.min(events.len()));

    let deliver = |payload: String| async {
        let request = lambda_http::http::Request::builder()
            .method("POST")
            .uri("/stripe/webhook")
            .header(
                "stripe-signature",
                sign(
                    payload.as_bytes(),
                    &WebhookSecret::parse(SECRET)?,
                    adapters::unix_now(),
                ),
            )
            .body(Body::Text(payload))?;
        let before = counter.get();
        let started = Instant::now();
        let response = handle(&deps, request)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let elapsed = started.elapsed().as_secs_f64() * 1e3;
        anyhow::ensure!(response.status() == 200, "status {}", response.status());
        anyhow::Ok((elapsed, counter.get() - before))
    };

    // First deliveries: the effects happen.
    let mut first: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for e in &events {
        let (_, requests) = deliver(e.to_string()).await?;
        first
            .entry(e["type"].as_str().unwrap_or_default().to_owned())
            .or_default()
            .push(requests);
    }
    let after_first = deps
        .lifecycle
        .store
        .profile(&sub)
        .await?
        .context("profile")?;

    // Warm: fresh event ids over the same events.
    let mut times = Vec::with_capacity(events_wanted);
    let mut warm: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for i in 0..events_wanted {
        let mut e = events[i % events.len()].clone();
        e["id"] = Value::from(format!(
            "evt_bench{i:05}{}",
            e["id"]
                .as_str()
                .unwrap_or_default()
                .trim_start_matches("evt_")
        ));
        let (ms, requests) = deliver(e.to_string()).await?;
        times.push(ms);
        warm.entry(e["type"].as_str().unwrap_or_default().to_owned())
            .or_default()
            .push(requests);
    }
    times.sort_by(f64::total_cmp);

    println!(
        "\nstripe-webhook handler in process against the local stack (moto + stripe-emulator)"
    );
    println!(
        "lifecycle: {} events (subscribe to Basic, 3 renewals, a pack, a partial refund); profile after: plan {}, allowance {}, purchased {}",
        events.len(),
        after_first.plan,
        after_first.allowance,
        after_first.purchased
    );
    println!(
        "warm handling time over {events_wanted} signed events: median {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&times, 50.0),
        percentile(&times, 99.0),
        times.last().copied().unwrap_or(0.0)
    );
    println!("DynamoDB requests per event (median): first delivery / warm repeat");
    for (kind, mut firsts) in first {
        let mut repeats = warm.remove(&kind).unwrap_or_default();
        println!(
            "  {kind:<36} {:>2} / {:>2}",
            median_u64(&mut firsts),
            median_u64(&mut repeats)
        );
    }
    Ok(())
}
