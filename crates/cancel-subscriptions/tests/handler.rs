//! Handler tests for what cancel-subscriptions answers before it calls Stripe, then cancelling
//! on the in-memory `FakeStripe`. (Cancelling at period end and now, and repeating it, against
//! the emulator: tests/e2e/account.rs.)

use adapters::fakes::{
    FakeDirectory, FakeScheduler, InMemoryAccounts, api_request, signed_up, unreachable_stripe,
};
use cancel_subscriptions::handle;
use domain::catalogue::Catalogue;
use domain::lifecycle::AccessPolicy;
use domain::lifecycle::Lifecycle;
use domain::ports::Accounts;
use serde_json::Value;

#[tokio::test]
async fn bad_bodies_are_400_no_user_401_an_unknown_user_404() -> anyhow::Result<()> {
    let lifecycle = Lifecycle {
        store: InMemoryAccounts::default(),
        stripe: unreachable_stripe(),
        directory: FakeDirectory::default(),
        scheduler: FakeScheduler::default(),
        catalogue: Catalogue::bundled()?,
        policy: AccessPolicy::default(),
        free_period_override: None,
    };
    lifecycle.store.create_profile(&signed_up("user-1")).await?;
    let cases = [
        (
            Some("user-1"),
            r#"{"at_period_end": "yes"}"#,
            400,
            "true or false",
        ),
        (
            Some("user-1"),
            r#"{"now": true}"#,
            400,
            "unknown field `now`",
        ),
        (Some("user-1"), "[true]", 400, "JSON object"),
        (None, "", 401, "no authenticated user"),
        (Some("user-2"), "", 404, "no account for this user"),
    ];
    for (sub, body, status, message) in cases {
        let response = handle(
            &lifecycle,
            api_request("POST", "/subscriptions/cancel", sub, body),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let answer: Value = serde_json::from_slice(response.body().as_ref())?;
        assert_eq!(response.status().as_u16(), status, "{body}: {answer}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap_or_default()
                .contains(message),
            "{answer}"
        );
    }
    Ok(())
}

/// Cancelling on the in-memory `FakeStripe` (its contract with the real adapter:
/// crates/adapters/tests/payments_contract.rs): none live is 409; at period end flags it (again:
/// unchanged); now ends it and puts the profile on the free plan at once.
#[tokio::test]
async fn cancelling_at_period_end_then_now_on_the_fake_stripe() -> anyhow::Result<()> {
    use adapters::fakes::FakeStripe;
    use domain::facts::SubStatus;
    use domain::ids::{StripeCustomerId, UserSub};

    let catalogue = Catalogue::bundled()?;
    let stripe = FakeStripe::new(&catalogue);
    let customer = StripeCustomerId::parse("cus_test1")?;
    stripe.add_customer(&customer, "ada@example.com");
    let lifecycle = Lifecycle {
        store: InMemoryAccounts::default(),
        stripe,
        directory: FakeDirectory::default(),
        scheduler: FakeScheduler::default(),
        catalogue,
        policy: AccessPolicy::default(),
        free_period_override: None,
    };
    lifecycle.store.create_profile(&signed_up("user-1")).await?;
    let cancel = |body: &'static str| {
        let lifecycle = &lifecycle;
        async move {
            let response = handle(
                lifecycle,
                api_request("POST", "/subscriptions/cancel", Some("user-1"), body),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            let answer: Value = serde_json::from_slice(response.body().as_ref())?;
            anyhow::Ok((response.status().as_u16(), answer))
        }
    };
    let (status, answer) = cancel("").await?;
    assert_eq!(status, 409, "no live subscription: {answer}");

    let subscription = lifecycle
        .stripe
        .subscribe(&customer, "creditgate_basic_subscription")?;
    let period_end = lifecycle
        .stripe
        .subscription_state(&subscription)
        .map(|s| s.current_period_end);
    let (status, answer) = cancel("").await?;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (
            &answer["changed"],
            answer["subscription"].as_str(),
            answer["cancels_at"].as_i64()
        ),
        (&Value::Bool(true), Some(subscription.as_str()), period_end),
    );
    let flagged = lifecycle
        .stripe
        .subscription_state(&subscription)
        .map(|s| (s.status, s.cancel_at_period_end));
    assert_eq!(flagged, Some((SubStatus::Active, true)));
    let profile = lifecycle.store.profile(&UserSub::parse("user-1")?).await?;
    assert_eq!(
        profile.as_ref().map(|p| (
            p.plan.as_str(),
            p.subscription.as_ref().map(|s| s.cancel_at_period_end)
        )),
        Some(("basic", Some(true))),
        "the profile follows the flagged subscription: {profile:?}"
    );
    let (status, again) = cancel(r#"{"at_period_end": true}"#).await?;
    assert_eq!(
        (status, &again["changed"]),
        (200, &Value::Bool(false)),
        "{again}"
    );

    let (status, now) = cancel(r#"{"at_period_end": false}"#).await?;
    assert_eq!(status, 200, "{now}");
    assert_eq!(
        (&now["changed"], &now["plan"]),
        (&Value::Bool(true), &Value::from("free"))
    );
    assert_eq!(
        lifecycle
            .stripe
            .subscription_state(&subscription)
            .map(|s| s.status),
        Some(SubStatus::Canceled)
    );
    let profile = lifecycle.store.profile(&UserSub::parse("user-1")?).await?;
    assert_eq!(profile.map(|p| p.plan.to_string()), Some("free".to_owned()));
    let free_runs = lifecycle
        .scheduler
        .executions
        .lock()
        .map(|e| e.values().filter(|r| r.plan.as_str() == "free").count())
        .unwrap_or_default();
    assert!(
        free_runs > 0,
        "the free credit manager is started before the answer"
    );
    let (status, _) = cancel("").await?;
    assert_eq!(status, 409, "nothing left to cancel");
    Ok(())
}
