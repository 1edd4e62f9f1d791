//! The Stripe webhook end to end: sign-up, Checkout in the emulator, the emulator's signed
//! deliveries through `cargo lambda watch` to the real stripe-webhook binary, DynamoDB and
//! Cognito in moto; renewal, a failed renewal and its recovery, cancellation at period end.

use std::time::Duration;

use adapters::dynamo::DynamoStore;
use domain::ids::UserSub;
use domain::lifecycle::SubStatus;
use domain::ports::Accounts;
use domain::profile::Profile;
use tests::{Stack, eventually};

const WAIT: Duration = Duration::from_secs(60);

async fn emulator(
    stack: &Stack,
    method: &str,
    path: &str,
    body: &str,
) -> anyhow::Result<serde_json::Value> {
    let (status, value) = stripe_emulator::client::request(
        &stack.var("STRIPE_API_BASE")?,
        method,
        path,
        Some(&stack.var("STRIPE_SECRET_KEY")?),
        body,
    )
    .await?;
    anyhow::ensure!(status < 300, "{method} {path} → {status}: {value}");
    Ok(value)
}

async fn advance_days(stack: &Stack, days: i64) -> anyhow::Result<()> {
    emulator(
        stack,
        "POST",
        "/_emulator/clock/advance",
        &format!("seconds={}", days * 86_400),
    )
    .await?;
    Ok(())
}

async fn cognito_attribute(
    stack: &Stack,
    email: &str,
    name: &str,
) -> anyhow::Result<Option<String>> {
    let user = stack
        .cognito
        .admin_get_user()
        .user_pool_id(stack.var("USER_POOL_ID")?)
        .username(email)
        .send()
        .await?;
    Ok(user
        .user_attributes()
        .iter()
        .find(|a| a.name() == name)
        .and_then(|a| a.value().map(str::to_owned)))
}

/// Waits until the profile satisfies `check`, failing with the last profile and the logs.
async fn profile_where(
    stack: &Stack,
    store: &DynamoStore,
    sub: &UserSub,
    what: &str,
    check: impl Fn(&Profile) -> bool,
) -> anyhow::Result<Profile> {
    let result = eventually(WAIT, what, || async {
        let p = store.profile(sub).await?;
        Ok(p.filter(|p| check(p)))
    })
    .await;
    match result {
        Ok(p) => Ok(p),
        Err(e) => anyhow::bail!(
            "{e}\nlast profile: {:?}\n{}",
            store.profile(sub).await.ok().flatten(),
            stack.logs()
        ),
    }
}

#[tokio::test]
async fn a_user_buys_basic_renews_fails_and_recovers_then_cancels_at_period_end()
-> anyhow::Result<()> {
    // A long free period: only the webhook moves credits in this test.
    let stack = Stack::start("webhook", 3_600).await?;
    let email = "ada@example.com";
    let out = stack.creditgate(&["local", "signup", email])?;
    anyhow::ensure!(
        out.status.success(),
        "signup: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let user = stack
        .cognito
        .admin_get_user()
        .user_pool_id(stack.var("USER_POOL_ID")?)
        .username(email)
        .send()
        .await?;
    let sub = UserSub::parse(
        user.user_attributes()
            .iter()
            .find(|a| a.name() == "sub")
            .and_then(|a| a.value())
            .unwrap_or_default(),
    )?;
    let store = DynamoStore::new(stack.dynamodb.clone(), stack.var("TABLE_NAME")?);

    // Buy Basic in Checkout; the emulator delivers the events to the webhook.
    let out = stack.creditgate(&["local", "checkout", email, "basic"])?;
    anyhow::ensure!(
        out.status.success(),
        "checkout: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = profile_where(&stack, &store, &sub, "Basic with 1,000 credits", |p| {
        p.plan.as_str() == "basic" && p.allowance.get() == 1_000
    })
    .await?;
    assert_eq!(p.manager_generation, 2, "the free manager was superseded");
    let subscription = p.subscription.clone().map(|s| s.id).unwrap_or_default();
    assert_eq!(
        cognito_attribute(&stack, email, "custom:plan")
            .await?
            .as_deref(),
        Some("basic")
    );
    assert_eq!(
        cognito_attribute(&stack, email, "custom:access")
            .await?
            .as_deref(),
        Some("active")
    );

    // Spend some, then a month passes: the renewal's invoice.paid resets the allowance.
    let key = String::from_utf8(stack.creditgate(&["local", "api-key", email])?.stdout)?;
    let (status, _, body) = tests::http(
        &stack.var("LAMBDA_INVOKE_URL")?,
        "POST",
        "/lambda-url/credit-meter/v1/meter",
        &[("x-api-key", key.trim())],
        r#"{"credits": 25}"#,
    )
    .await?;
    anyhow::ensure!(status == 200, "meter: {status} {body}");
    profile_where(&stack, &store, &sub, "975 left", |p| {
        p.allowance.get() == 975
    })
    .await?;
    let before = p.allowance_source.clone();
    advance_days(&stack, 31).await?;
    profile_where(&stack, &store, &sub, "the renewal's reset", |p| {
        p.allowance.get() == 1_000 && p.allowance_source != before
    })
    .await?;

    // The card fails at the next renewal: past due, still Basic (grace); then it works again
    // and the retry three days later pays.
    let customer = p.customer.to_string();
    emulator(
        &stack,
        "POST",
        &format!("/_emulator/customers/{customer}/payment_method"),
        "failing=true",
    )
    .await?;
    advance_days(&stack, 31).await?;
    profile_where(&stack, &store, &sub, "past due on Basic", |p| {
        p.subscription
            .as_ref()
            .is_some_and(|s| s.status == SubStatus::PastDue)
            && p.plan.as_str() == "basic"
    })
    .await?;
    emulator(
        &stack,
        "POST",
        &format!("/_emulator/customers/{customer}/payment_method"),
        "failing=false",
    )
    .await?;
    let recovered_from = store.profile(&sub).await?.and_then(|p| p.allowance_source);
    advance_days(&stack, 4).await?;
    profile_where(
        &stack,
        &store,
        &sub,
        "active again with a fresh allowance",
        |p| {
            p.subscription
                .as_ref()
                .is_some_and(|s| s.status == SubStatus::Active)
                && p.allowance_source != recovered_from
                && p.allowance.get() == 1_000
        },
    )
    .await?;

    // Cancel at period end: still Basic until the period ends, then Free with a new manager.
    emulator(
        &stack,
        "POST",
        &format!("/v1/subscriptions/{subscription}"),
        "cancel_at_period_end=true",
    )
    .await?;
    profile_where(&stack, &store, &sub, "flagged to cancel", |p| {
        p.subscription
            .as_ref()
            .is_some_and(|s| s.cancel_at_period_end)
            && p.plan.as_str() == "basic"
    })
    .await?;
    advance_days(&stack, 31).await?;
    let p = profile_where(&stack, &store, &sub, "back on Free", |p| {
        p.plan.as_str() == "free"
    })
    .await?;
    assert_eq!(p.subscription.map(|s| s.status), Some(SubStatus::Canceled));
    assert_eq!(p.manager_generation, 3);
    let name = format!("{sub}-g3-c0");
    eventually(WAIT, "the restarted free manager", || async {
        Ok(stack
            .executions()
            .await?
            .into_iter()
            .find(|(n, _)| *n == name))
    })
    .await?;
    assert_eq!(
        cognito_attribute(&stack, email, "custom:plan")
            .await?
            .as_deref(),
        Some("free")
    );

    // No delivery was refused or failed (409 = "being processed", which Stripe retries).
    let deliveries = emulator(&stack, "GET", "/_emulator/deliveries", "").await?;
    let refused: Vec<_> = deliveries["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|d| {
            d["status_code"]
                .as_u64()
                .is_some_and(|s| s >= 300 && s != 409)
        })
        .collect();
    anyhow::ensure!(refused.is_empty(), "refused deliveries: {refused:?}");
    Ok(())
}
