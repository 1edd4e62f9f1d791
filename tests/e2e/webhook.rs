//! The Stripe webhook end to end: sign-up, Checkout in the emulator, the emulator's signed
//! deliveries through `cargo lambda watch` to the real stripe-webhook binary, DynamoDB and
//! Cognito in moto; renewal, a failed renewal and its recovery, cancellation at period end.

use std::time::Duration;

use adapters::dynamo::DynamoStore;
use domain::facts::SubStatus;
use domain::ids::UserSub;
use domain::ports::{Accounts, Directory};
use domain::profile::Access;
use domain::profile::Profile;
use domain::webhook::EventLedger;
use tests::{Stack, eventually};

const WAIT: Duration = Duration::from_secs(60);

async fn advance_days(stack: &Stack, days: i64) -> anyhow::Result<()> {
    stack
        .emulator(
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
    let out = stack.creditgate_dev(&["signup", email])?;
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
    let out = stack.creditgate_dev(&["checkout", email, "basic"])?;
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
    let subscription = p
        .subscription
        .clone()
        .map(|s| s.id.to_string())
        .unwrap_or_default();
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
    let key = String::from_utf8(stack.creditgate_dev(&["api-key", email])?.stdout)?;
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
    stack
        .emulator(
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
    stack
        .emulator(
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
    stack
        .emulator(
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
    let refused = stack.refused_deliveries().await?;
    anyhow::ensure!(refused.is_empty(), "refused deliveries: {refused:?}");
    Ok(())
}

fn sub_of(
    user: &[aws_sdk_cognitoidentityprovider::types::AttributeType],
) -> anyhow::Result<UserSub> {
    Ok(UserSub::parse(
        user.iter()
            .find(|a| a.name() == "sub")
            .and_then(|a| a.value())
            .unwrap_or_default(),
    )?)
}

#[tokio::test]
async fn a_pack_is_granted_and_refunded_and_a_failed_event_is_replayed_once_its_cause_is_fixed()
-> anyhow::Result<()> {
    let stack = Stack::start("webhook-packs", 3_600).await?;
    let store = DynamoStore::new(stack.dynamodb.clone(), stack.var("TABLE_NAME")?);
    let pool = stack.var("USER_POOL_ID")?;

    // A pack, then half of it refunded.
    let ada = stack.sign_up("ada@example.com").await?;
    let out = stack.creditgate_dev(&["checkout", "ada@example.com", "basic", "--pack"])?;
    let stdout = String::from_utf8(out.stdout)?;
    anyhow::ensure!(
        out.status.success(),
        "checkout: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pi = stdout
        .split(['(', ')'])
        .find(|s| s.starts_with("pi_"))
        .unwrap_or_default()
        .to_owned();
    profile_where(&stack, &store, &ada, "1,000 pack credits", |p| {
        p.purchased.get() == 1_000
    })
    .await?;
    stack
        .emulator(
            "POST",
            "/v1/refunds",
            &format!("payment_intent={pi}&amount=250"),
        )
        .await?;
    let p = profile_where(&stack, &store, &ada, "half revoked", |p| {
        p.purchased.get() == 500
    })
    .await?;
    assert_eq!(p.plan.as_str(), "free", "a pack changes no plan");

    // A buyer whose sign-up trigger has not run yet pays through a link whose reference names
    // her: the reference is buyer input and her email is taken, so the purchase is held (200,
    // nothing failed) until she, signed up and signed in with that email verified, claims it.
    let grace = stack
        .cognito
        .admin_create_user()
        .user_pool_id(&pool)
        .username("grace@example.com")
        .user_attributes(
            aws_sdk_cognitoidentityprovider::types::AttributeType::builder()
                .name("email")
                .value("grace@example.com")
                .build()?,
        )
        .user_attributes(
            aws_sdk_cognitoidentityprovider::types::AttributeType::builder()
                .name("email_verified")
                .value("true")
                .build()?,
        )
        .message_action(aws_sdk_cognitoidentityprovider::types::MessageActionType::Suppress)
        .send()
        .await?;
    let grace = sub_of(
        grace
            .user
            .map(|u| u.attributes)
            .unwrap_or_default()
            .unwrap_or_default()
            .as_slice(),
    )?;
    let prices = stack
        .emulator("GET", "/v1/prices?lookup_keys[]=creditgate_basic_pack", "")
        .await?;
    let price = prices["data"][0]["id"].as_str().unwrap_or_default();
    let session = stack.emulator("POST",
        "/v1/checkout/sessions",
        &format!("mode=payment&customer_email=grace@example.com&client_reference_id={grace}&line_items[0][price]={price}&success_url=http://127.0.0.1/ok"),
    )
    .await?;
    let id = session["id"].as_str().unwrap_or_default().to_owned();
    stack
        .emulator(
            "POST",
            &format!("/_emulator/checkout/sessions/{id}/complete"),
            "",
        )
        .await?;
    let email = domain::ids::Email::parse("grace@example.com")?;
    eventually(WAIT, "the purchase held for Grace's email", || async {
        Ok(domain::ports::Ledger::held_purchases(&store, &email)
            .await?
            .into_iter()
            .find(|h| h.session.as_str() == id))
    })
    .await?;
    assert!(store.failed_events().await?.is_empty(), "held, not failed");
    assert!(store.profile(&grace).await?.is_none(), "bound to nobody");

    // Her sign-up completes; she claims the purchase with her verified email, once.
    let (status, body) = stack
        .invoke(
            "post-confirmation",
            &serde_json::json!({
                "version": "1", "region": "us-east-1", "userPoolId": pool, "userName": grace.as_str(),
                "callerContext": {"awsSdkVersion": "e2e", "clientId": "e2e"},
                "triggerSource": "PostConfirmation_ConfirmSignUp",
                "request": {"userAttributes": {"sub": grace.as_str(), "email": "grace@example.com", "email_verified": "true"}},
                "response": {}
            }),
        )
        .await?;
    anyhow::ensure!(status == 200, "post-confirmation: {status} {body}");
    let claims = serde_json::json!({
        "sub": grace.as_str(), "email": "grace@example.com", "email_verified": "true",
        "token_use": "id",
    });
    let claim = serde_json::json!({
        "version": "2.0", "routeKey": "POST /purchases/claim", "rawPath": "/purchases/claim",
        "rawQueryString": "", "headers": {"content-type": "application/json"},
        "requestContext": {"accountId": "123456789012", "apiId": "local", "domainName": "localhost",
            "domainPrefix": "localhost", "requestId": "e2e", "routeKey": "POST /purchases/claim",
            "stage": "$default", "time": "23/Nov/2026:00:00:00 +0000", "timeEpoch": 0,
            "http": {"method": "POST", "path": "/purchases/claim", "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "e2e"},
            "authorizer": {"jwt": {"claims": claims, "scopes": null}}},
        "body": serde_json::json!({"session": id}).to_string(), "isBase64Encoded": false
    });
    for _ in 0..2 {
        let (status, raw) = stack.invoke("account", &claim).await?;
        let answer: serde_json::Value = serde_json::from_str(&raw)?;
        assert_eq!(
            (status, answer["statusCode"].as_u64()),
            (200, Some(200)),
            "{raw}"
        );
    }
    let p = profile_where(&stack, &store, &grace, "the claimed pack", |p| {
        p.purchased.get() == 1_000
    })
    .await?;
    assert_eq!(p.purchased.get(), 1_000, "once");

    // A failed event is replayed once its cause is fixed: Ada's subscription is moved (as in
    // the dashboard) to a price that is no plan, so its update fails; the price then gets
    // Power's lookup key, and the replay applies it once.
    let out = stack.creditgate_dev(&["checkout", "ada@example.com", "basic"])?;
    anyhow::ensure!(
        out.status.success(),
        "checkout: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = profile_where(&stack, &store, &ada, "Ada on Basic", |p| {
        p.plan.as_str() == "basic"
    })
    .await?;
    let subscription = p
        .subscription
        .as_ref()
        .map(|s| s.id.to_string())
        .unwrap_or_default();
    // The Basic checkout's events all delivered first.
    stack.all_delivered(WAIT).await?;
    let stray = stack
        .emulator(
            "POST",
            "/v1/prices",
            "product=creditgate_power&currency=gbp&unit_amount=5000&recurring[interval]=month",
        )
        .await?;
    let stray = stray["id"].as_str().unwrap_or_default().to_owned();
    let current = stack
        .emulator("GET", &format!("/v1/subscriptions/{subscription}"), "")
        .await?;
    let item = current["items"]["data"][0]["id"]
        .as_str()
        .unwrap_or_default();
    stack
        .emulator(
            "POST",
            &format!("/v1/subscriptions/{subscription}"),
            &format!("items[0][id]={item}&items[0][price]={stray}"),
        )
        .await?;
    let failed = eventually(WAIT, "the failed event record", || async {
        Ok(store
            .failed_events()
            .await?
            .into_iter()
            .find(|e| e.event_type == "customer.subscription.updated"))
    })
    .await?;
    assert!(
        failed.last_error.contains("no plan in plans.json"),
        "{failed:?}"
    );
    stack.delete_webhook_endpoint().await?;
    // A retry already on its way when the endpoint went still lands: the cause is fixed only
    // once the record has stayed `failed`, its attempts unchanged, for a few seconds.
    let deadline = std::time::Instant::now() + WAIT;
    let mut seen = (failed.attempts, std::time::Instant::now());
    while seen.1.elapsed() < Duration::from_secs(3) {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "a retry still in flight after {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = store
            .failed_events()
            .await?
            .into_iter()
            .find(|e| e.id == failed.id)
            .map_or(-1, |e| e.attempts);
        if now != seen.0 {
            seen = (now, std::time::Instant::now());
        }
    }

    // The cause is fixed (the price is given Power's lookup key); the replay applies it once.
    stack
        .emulator(
            "POST",
            &format!("/v1/prices/{stray}"),
            "lookup_key=creditgate_power_subscription&transfer_lookup_key=true",
        )
        .await?;
    let out = stack.creditgate(&["events", "replay", "--dry-run"])?;
    let listed = String::from_utf8(out.stdout)?;
    assert!(listed.contains(&failed.id), "{listed}");
    let out = stack.creditgate(&["events", "replay", "--type", "customer.subscription.*"])?;
    let replayed = String::from_utf8(out.stdout)?;
    anyhow::ensure!(
        out.status.success(),
        "replay: {replayed} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        replayed.contains("replayed 1, still failing 0"),
        "{replayed}"
    );
    let p = store
        .profile(&ada)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no profile"))?;
    assert_eq!(p.plan.as_str(), "power");
    let left = store.failed_events().await?;
    assert!(left.is_empty(), "{left:?}");
    let out = stack.creditgate(&["events", "replay"])?;
    assert!(String::from_utf8(out.stdout)?.contains("no failed events match"));
    assert_eq!(
        store.profile(&ada).await?.map(|p| p.plan.to_string()),
        Some("power".to_owned()),
        "once"
    );

    // The Cognito adapter as the `disable` lapse mode uses it, against moto.
    let directory = adapters::cognito::CognitoDirectory::new(stack.cognito.clone(), pool.clone());
    let basic = domain::ids::PlanId::parse("basic")?;
    directory
        .sync_user(&grace, &basic, Access::Disabled)
        .await?;
    let user = stack
        .cognito
        .admin_get_user()
        .user_pool_id(&pool)
        .username("grace@example.com")
        .send()
        .await?;
    assert!(!user.enabled(), "disabled");
    assert_eq!(
        cognito_attribute(&stack, "grace@example.com", "custom:access")
            .await?
            .as_deref(),
        Some("disabled")
    );
    directory.sync_user(&grace, &basic, Access::Active).await?;
    let user = stack
        .cognito
        .admin_get_user()
        .user_pool_id(&pool)
        .username("grace@example.com")
        .send()
        .await?;
    assert!(user.enabled(), "enabled again");
    let email = domain::ids::Email::parse("grace@example.com")?;
    assert_eq!(directory.find_by_email(&email).await?, Some(grace.clone()));
    assert_eq!(
        directory.create_user(&email).await?,
        domain::ports::NewUser::EmailTaken,
        "an existing user is never handed a pay-first purchase (issue 10)"
    );
    Ok(())
}
