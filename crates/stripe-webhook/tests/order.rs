//! Order independence, as a seeded property: for each lifecycle scenario played in the
//! stripe-emulator, delivering every event 1–3 times in a shuffled order ends in the same
//! profile, credits and Cognito attributes as delivering them once in order — and that state
//! agrees with the emulator's.

mod support;

use domain::lifecycle::AccessPolicy;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use support::*;

/// Seeds per scenario; a failure prints the seed, and `ORDER_SEED=<n>` replays just that one.
const SEEDS: u64 = 12;

type Step = for<'a> fn(
    &'a Stripe,
    &'a Scenario,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = anyhow::Result<()>> + 'a>,
>;

struct Scenario {
    customer: String,
    subscription: std::sync::Mutex<Option<String>>,
    payment_intent: std::sync::Mutex<Option<String>>,
}

impl Scenario {
    fn subscription(&self) -> String {
        self.subscription
            .lock()
            .ok()
            .and_then(|s| s.clone())
            .unwrap_or_default()
    }
}

async fn buy(stripe: &Stripe, s: &Scenario, key: &str) -> anyhow::Result<()> {
    let session = stripe
        .checkout(Some(&s.customer), Some("user-1"), key, None)
        .await?;
    if let Some(id) = session["subscription"].as_str()
        && let Ok(mut slot) = s.subscription.lock()
    {
        *slot = Some(id.to_owned());
    }
    if let Some(id) = session["payment_intent"].as_str()
        && let Ok(mut slot) = s.payment_intent.lock()
    {
        *slot = Some(id.to_owned());
    }
    Ok(())
}

async fn change_plan(stripe: &Stripe, s: &Scenario, key: &str) -> anyhow::Result<()> {
    let sub = stripe.subscription(&s.subscription()).await?;
    let item = sub["items"]["data"][0]["id"].as_str().unwrap_or_default();
    let price = stripe.price(key).await?;
    stripe
        .call(
            "POST",
            &format!("/v1/subscriptions/{}", s.subscription()),
            &format!(
                "items[0][id]={item}&items[0][price]={price}&proration_behavior=always_invoice"
            ),
        )
        .await?;
    Ok(())
}

async fn failing(stripe: &Stripe, s: &Scenario, yes: bool) -> anyhow::Result<()> {
    stripe
        .call(
            "POST",
            &format!("/_emulator/customers/{}/payment_method", s.customer),
            &format!("failing={yes}"),
        )
        .await?;
    Ok(())
}

fn scenarios() -> Vec<(&'static str, Vec<Step>)> {
    vec![
        (
            "subscribe",
            vec![|st, s| Box::pin(buy(st, s, "creditgate_basic_subscription"))],
        ),
        (
            "renew",
            vec![
                |st, s| Box::pin(buy(st, s, "creditgate_basic_subscription")),
                |st, _| Box::pin(st.advance_days(31)),
            ],
        ),
        (
            "fail then recover",
            vec![
                |st, s| Box::pin(buy(st, s, "creditgate_basic_subscription")),
                |st, s| Box::pin(failing(st, s, true)),
                |st, _| Box::pin(st.advance_days(31)),
                |st, s| Box::pin(failing(st, s, false)),
                |st, _| Box::pin(st.advance_days(4)),
            ],
        ),
        (
            "upgrade",
            vec![
                |st, s| Box::pin(buy(st, s, "creditgate_basic_subscription")),
                |st, s| Box::pin(change_plan(st, s, "creditgate_power_subscription")),
            ],
        ),
        (
            "downgrade",
            vec![
                |st, s| Box::pin(buy(st, s, "creditgate_power_subscription")),
                |st, s| Box::pin(change_plan(st, s, "creditgate_basic_subscription")),
                |st, _| Box::pin(st.advance_days(31)),
            ],
        ),
        (
            "cancel at period end",
            vec![
                |st, s| Box::pin(buy(st, s, "creditgate_basic_subscription")),
                |st, s| {
                    Box::pin(async move {
                        st.call(
                            "POST",
                            &format!("/v1/subscriptions/{}", s.subscription()),
                            "cancel_at_period_end=true",
                        )
                        .await
                        .map(|_| ())
                    })
                },
                |st, _| Box::pin(st.advance_days(32)),
            ],
        ),
        (
            "cancel now",
            vec![
                |st, s| Box::pin(buy(st, s, "creditgate_power_subscription")),
                |st, s| {
                    Box::pin(async move {
                        st.call(
                            "DELETE",
                            &format!("/v1/subscriptions/{}", s.subscription()),
                            "",
                        )
                        .await
                        .map(|_| ())
                    })
                },
            ],
        ),
        (
            "pack purchase",
            vec![|st, s| Box::pin(buy(st, s, "creditgate_power_pack"))],
        ),
        (
            "refund",
            vec![
                |st, s| Box::pin(buy(st, s, "creditgate_basic_pack")),
                |st, s| {
                    Box::pin(async move {
                        let pi = s
                            .payment_intent
                            .lock()
                            .ok()
                            .and_then(|p| p.clone())
                            .unwrap_or_default();
                        st.call(
                            "POST",
                            "/v1/refunds",
                            &format!("payment_intent={pi}&amount=100"),
                        )
                        .await
                        .map(|_| ())
                    })
                },
            ],
        ),
    ]
}

/// Everything a delivery order could change, except the write counter.
async fn state(deps: &TestDeps) -> anyhow::Result<Value> {
    let mut p = profile(deps, "user-1").await?;
    p.version = 0;
    let user = deps.lifecycle.directory.user("user-1");
    let grants: Vec<String> = deps
        .lifecycle
        .store
        .grants
        .lock()
        .map(|g| g.keys().map(|(_, s)| s.clone()).collect())
        .unwrap_or_default();
    let packs: Vec<String> = deps
        .lifecycle
        .store
        .packs
        .lock()
        .map(|p| p.values().map(|g| format!("{g:?}")).collect())
        .unwrap_or_default();
    Ok(serde_json::json!({
        "profile": format!("{p:?}"),
        "cognito": format!("{user:?}"),
        "grants": grants,
        "packs": packs,
    }))
}

#[tokio::test]
async fn every_scenario_ends_in_the_same_state_whatever_the_delivery_order() -> anyhow::Result<()> {
    let only: Option<u64> = std::env::var("ORDER_SEED")
        .ok()
        .and_then(|s| s.parse().ok());
    for (name, steps) in scenarios() {
        let stripe = Stripe::start().await?;
        let customer = stripe.customer("ada@example.com").await?;
        let scenario = Scenario {
            customer: customer.clone(),
            subscription: Default::default(),
            payment_intent: Default::default(),
        };
        for step in &steps {
            step(&stripe, &scenario).await?;
        }
        let events = stripe.events().await?;

        let fresh = || async {
            let deps = deps(&stripe, AccessPolicy::default())?;
            sign_up(&deps, "user-1", "ada@example.com", &customer).await?;
            anyhow::Ok(deps)
        };
        let in_order = fresh().await?;
        deliver_order(&in_order, events.iter().collect()).await?;
        let expected = state(&in_order).await?;
        agrees_with_the_emulator(name, &stripe, &scenario, &in_order).await?;

        for seed in 0..SEEDS {
            if only.is_some_and(|o| o != seed) {
                continue;
            }
            let mut rng = StdRng::seed_from_u64(seed);
            let mut order: Vec<&String> = events
                .iter()
                .flat_map(|e| std::iter::repeat_n(e, rng.random_range(1..=3)))
                .collect();
            order.shuffle(&mut rng);
            let shuffled = fresh().await?;
            deliver_order(&shuffled, order).await?;
            let got = state(&shuffled).await?;
            assert_eq!(
                got, expected,
                "scenario `{name}`, seed {seed} (ORDER_SEED={seed} replays it): the shuffled delivery ended elsewhere"
            );
        }
    }
    Ok(())
}

async fn agrees_with_the_emulator(
    name: &str,
    stripe: &Stripe,
    scenario: &Scenario,
    deps: &TestDeps,
) -> anyhow::Result<()> {
    let p = profile(deps, "user-1").await?;
    let catalogue = domain::catalogue::Catalogue::bundled()?;
    let user = deps.lifecycle.directory.user("user-1");
    assert_eq!(
        user.as_ref().and_then(|u| u.plan.clone()).as_deref(),
        Some(p.plan.as_str()),
        "{name}: Cognito's custom:plan follows the profile"
    );
    let sub_id = scenario.subscription();
    if sub_id.is_empty() {
        // Packs: credits = pack credits less the refunded share (rounded up).
        let pi = scenario
            .payment_intent
            .lock()
            .ok()
            .and_then(|p| p.clone())
            .unwrap_or_default();
        let intent = stripe
            .call("GET", &format!("/v1/payment_intents/{pi}"), "")
            .await?;
        let charge = stripe
            .call(
                "GET",
                &format!(
                    "/v1/charges/{}",
                    intent["latest_charge"].as_str().unwrap_or_default()
                ),
                "",
            )
            .await?;
        let amount = charge["amount"].as_u64().unwrap_or(1);
        let refunded = charge["amount_refunded"].as_u64().unwrap_or(0);
        let credits = deps
            .lifecycle
            .store
            .packs
            .lock()
            .ok()
            .and_then(|p| p.values().next().map(|g| g.credits.get()))
            .unwrap_or(0);
        assert!(credits > 0, "{name}: a pack grant is recorded");
        assert_eq!(
            p.purchased.get(),
            credits - (credits * refunded).div_ceil(amount),
            "{name}: purchased credits match the charge"
        );
        assert_eq!(p.plan.as_str(), "free");
        return Ok(());
    }
    let sub = stripe.subscription(&sub_id).await?;
    let mine = p
        .subscription
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("{name}: no subscription"))?;
    assert_eq!(
        Some(mine.status.as_str()),
        sub["status"].as_str(),
        "{name}: status"
    );
    assert_eq!(
        mine.cancel_at_period_end,
        sub["cancel_at_period_end"] == true,
        "{name}"
    );
    assert_eq!(
        Some(mine.current_period_end),
        sub["items"]["data"][0]["current_period_end"].as_i64(),
        "{name}: period end"
    );
    let key = sub["items"]["data"][0]["price"]["lookup_key"]
        .as_str()
        .unwrap_or_default();
    let (plan, _) = domain::catalogue::parse_lookup_key(&catalogue, key)
        .ok_or_else(|| anyhow::anyhow!("{name}: price not ours"))?;
    match sub["status"].as_str() {
        Some("active" | "trialing") => {
            assert_eq!(p.plan.as_str(), plan.id().as_str(), "{name}: plan");
            assert_eq!(p.allowance, plan.credits(), "{name}: this period's credits");
        }
        Some("canceled") => assert_eq!(p.plan.as_str(), "free", "{name}: back to free"),
        other => panic!("{name}: unexpected final status {other:?}"),
    }
    Ok(())
}
