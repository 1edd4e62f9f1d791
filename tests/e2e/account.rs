//! The user-facing API end to end: create-session, cancel-subscriptions and account through
//! `cargo lambda watch`, invoked with API Gateway v2 events carrying the claims of a real ID
//! token issued by moto's Cognito (what the HTTP API's JWT authorizer passes on).

use std::time::Duration;

use adapters::dynamo::DynamoStore;
use domain::ids::UserSub;
use domain::ports::Accounts;
use serde_json::{Value, json};
use tests::{Stack, eventually};

use crate::api::{PASSWORD, call, claims};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_user_buys_upgrades_buys_a_pack_cancels_rotates_the_key_and_opens_the_portal()
-> anyhow::Result<()> {
    let stack = Stack::start("account", 3_600).await?;
    let email = "ada@example.com";
    let out = stack.creditgate_dev(&["signup", email, "--password", PASSWORD])?;
    anyhow::ensure!(
        out.status.success(),
        "signup: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ada = claims(&stack, email).await?;
    let sub = UserSub::parse(ada.get("sub").map(String::as_str).unwrap_or_default())?;
    let store = DynamoStore::new(stack.dynamodb.clone(), stack.var("TABLE_NAME")?);
    let customer = store
        .profile(&sub)
        .await?
        .map(|p| p.customer.to_string())
        .unwrap_or_default();

    // Bad input, named; no user, 401; a user without an account, 404.
    let cases = [
        (r#"{"plan": "basic"}"#, 400, "`mode` is required"),
        (r#"{"mode": "pack"}"#, 400, "`plan` is required"),
        (r#"{"plan": "gold", "mode": "pack"}"#, 400, "no plan `gold`"),
        (
            r#"{"plan": "free", "mode": "subscription"}"#,
            400,
            "not sold",
        ),
        (
            r#"{"plan": "basic", "mode": "subscription", "user": "x"}"#,
            400,
            "unknown field `user`",
        ),
        ("not json", 400, "not valid JSON"),
    ];
    for (body, status, message) in cases {
        let (got, answer) = call(
            &stack,
            "create-session",
            "POST",
            "/checkout-sessions",
            Some(&ada),
            body,
        )
        .await?;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap_or_default()
                .contains(message),
            "{body}: {answer}"
        );
    }
    let (status, _) = call(
        &stack,
        "create-session",
        "POST",
        "/checkout-sessions",
        None,
        r#"{"plan":"basic","mode":"pack"}"#,
    )
    .await?;
    assert_eq!(status, 401);
    let mut foreign = ada.clone();
    foreign.insert("sub".into(), "00000000-0000-0000-0000-000000000000".into());
    let (status, answer) = call(
        &stack,
        "create-session",
        "POST",
        "/checkout-sessions",
        Some(&foreign),
        r#"{"plan":"basic","mode":"pack"}"#,
    )
    .await?;
    assert_eq!(
        (status, answer["error"].as_str()),
        (404, Some("no account for this user"))
    );
    let (status, _) = call(&stack, "account", "GET", "/me", Some(&foreign), "").await?;
    assert_eq!(status, 404);
    let (status, _) = call(
        &stack,
        "cancel-subscriptions",
        "POST",
        "/subscriptions/cancel",
        Some(&ada),
        "",
    )
    .await?;
    assert_eq!(status, 409, "no subscription yet");
    let (status, _) = call(
        &stack,
        "cancel-subscriptions",
        "POST",
        "/subscriptions/cancel",
        Some(&ada),
        r#"{"at_period_end": "yes"}"#,
    )
    .await?;
    assert_eq!(status, 400);

    // Buy Basic: a session for her customer, completed in the emulator; the webhook does the rest.
    let (status, session) = call(
        &stack,
        "create-session",
        "POST",
        "/checkout-sessions",
        Some(&ada),
        r#"{"plan":"basic","mode":"subscription"}"#,
    )
    .await?;
    assert_eq!(status, 200, "{session}");
    let id = session["id"].as_str().unwrap_or_default();
    assert!(
        session["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://"))
    );
    let stored = stack
        .emulator("GET", &format!("/v1/checkout/sessions/{id}"), "")
        .await?;
    assert_eq!(stored["client_reference_id"], sub.as_str());
    assert_eq!(stored["customer"], customer.as_str());
    assert_eq!(stored["metadata"]["creditgate_plan"], "basic");
    stack
        .emulator(
            "POST",
            &format!("/_emulator/checkout/sessions/{id}/complete"),
            "",
        )
        .await?;
    eventually(WAIT, "Basic with 1,000 credits", || async {
        Ok(store
            .profile(&sub)
            .await?
            .filter(|p| p.plan.as_str() == "basic" && p.allowance.get() == 1_000))
    })
    .await?;

    // Upgrade: the same subscription's price changes in place; asking again is 409.
    let (status, changed) = call(
        &stack,
        "create-session",
        "POST",
        "/checkout-sessions",
        Some(&ada),
        r#"{"plan":"power","mode":"subscription"}"#,
    )
    .await?;
    assert_eq!(
        (status, &changed["changed"], changed["to"].as_str()),
        (200, &json!(true), Some("power")),
        "{changed}"
    );
    let subs = stack
        .emulator("GET", &format!("/v1/subscriptions?customer={customer}"), "")
        .await?;
    let subs = subs["data"].as_array().cloned().unwrap_or_default();
    assert_eq!(subs.len(), 1, "never a second subscription");
    assert_eq!(
        subs[0]["metadata"]["cognito_sub"],
        sub.as_str(),
        "metadata on the subscription"
    );
    assert_eq!(
        subs[0]["items"]["data"][0]["price"]["lookup_key"],
        "creditgate_power_subscription"
    );
    let recorded = stack
        .emulator(
            "GET",
            &format!(
                "/_emulator/subscriptions/{}",
                subs[0]["id"].as_str().unwrap_or_default()
            ),
            "",
        )
        .await?;
    assert!(
        recorded.to_string().contains("always_invoice"),
        "prorated: {recorded}"
    );
    eventually(WAIT, "Power with 100,000 credits", || async {
        Ok(store
            .profile(&sub)
            .await?
            .filter(|p| p.plan.as_str() == "power" && p.allowance.get() == 100_000))
    })
    .await?;
    let (status, answer) = call(
        &stack,
        "create-session",
        "POST",
        "/checkout-sessions",
        Some(&ada),
        r#"{"plan":"power","mode":"subscription"}"#,
    )
    .await?;
    assert_eq!(status, 409, "{answer}");

    // A pack: its own session; the credits land in `purchased`.
    let (status, pack) = call(
        &stack,
        "create-session",
        "POST",
        "/checkout-sessions",
        Some(&ada),
        r#"{"plan":"basic","mode":"pack"}"#,
    )
    .await?;
    assert_eq!(status, 200, "{pack}");
    stack
        .emulator(
            "POST",
            &format!(
                "/_emulator/checkout/sessions/{}/complete",
                pack["id"].as_str().unwrap_or_default()
            ),
            "",
        )
        .await?;
    eventually(WAIT, "1,000 pack credits", || async {
        Ok(store
            .profile(&sub)
            .await?
            .filter(|p| p.purchased.get() == 1_000))
    })
    .await?;

    // Cancel at period end, twice: the second changes nothing and says so.
    let (status, first) = call(
        &stack,
        "cancel-subscriptions",
        "POST",
        "/subscriptions/cancel",
        Some(&ada),
        r#"{"at_period_end": true}"#,
    )
    .await?;
    assert_eq!((status, &first["changed"]), (200, &json!(true)), "{first}");
    let (status, again) = call(
        &stack,
        "cancel-subscriptions",
        "POST",
        "/subscriptions/cancel",
        Some(&ada),
        "",
    )
    .await?;
    assert_eq!((status, &again["changed"]), (200, &json!(false)), "{again}");
    let p = store
        .profile(&sub)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no profile"))?;
    assert!(
        p.subscription
            .as_ref()
            .is_some_and(|s| s.cancel_at_period_end),
        "flagged at once"
    );
    assert_eq!(p.plan.as_str(), "power", "still paid until the period ends");

    // GET /me, key rotation (old key refused at once), the portal.
    let (status, me) = call(&stack, "account", "GET", "/me", Some(&ada), "").await?;
    assert_eq!(status, 200);
    assert_eq!(
        (me["plan"].as_str(), me["credits"]["total"].as_u64()),
        (Some("power"), Some(101_000))
    );
    assert_eq!(me["subscription"]["cancel_at_period_end"], true);
    assert_eq!(me["api_key_prefix"], Value::Null);
    let (status, first_key) = call(&stack, "account", "POST", "/api-key", Some(&ada), "").await?;
    assert_eq!(status, 200);
    let first_key = first_key["api_key"].as_str().unwrap_or_default().to_owned();
    let (_, me) = call(&stack, "account", "GET", "/me", Some(&ada), "").await?;
    assert!(first_key.starts_with(me["api_key_prefix"].as_str().unwrap_or("-")));
    assert!(!me.to_string().contains(&first_key), "never the key");
    let meter = |key: String| {
        let base = stack.var("LAMBDA_INVOKE_URL");
        async move {
            let (status, _, _) = tests::http(
                &base?,
                "POST",
                "/lambda-url/credit-meter/v1/meter",
                &[("x-api-key", &key)],
                "",
            )
            .await?;
            anyhow::Ok(status)
        }
    };
    assert_eq!(meter(first_key.clone()).await?, 200);
    let (_, second) = call(&stack, "account", "POST", "/api-key", Some(&ada), "").await?;
    let second = second["api_key"].as_str().unwrap_or_default().to_owned();
    assert_eq!(meter(first_key).await?, 401, "the old key stops at once");
    assert_eq!(meter(second).await?, 200);
    let (status, portal) =
        call(&stack, "account", "POST", "/billing-portal", Some(&ada), "").await?;
    assert_eq!(status, 200);
    assert!(
        portal["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://billing.stripe.com/"))
    );
    let (status, _) = call(&stack, "account", "POST", "/me", Some(&ada), "").await?;
    assert_eq!(status, 405);

    // Cancel now: on Free before the answer, the Free manager restarted; then nothing to cancel.
    let (status, now) = call(
        &stack,
        "cancel-subscriptions",
        "POST",
        "/subscriptions/cancel",
        Some(&ada),
        r#"{"at_period_end": false}"#,
    )
    .await?;
    assert_eq!((status, now["plan"].as_str()), (200, Some("free")), "{now}");
    let p = store
        .profile(&sub)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no profile"))?;
    assert_eq!(p.plan.as_str(), "free");
    let name = format!("{sub}-g{}-c0", p.manager_generation);
    assert!(
        stack.executions().await?.iter().any(|(n, _)| *n == name),
        "{name} started"
    );
    let (status, answer) = call(
        &stack,
        "cancel-subscriptions",
        "POST",
        "/subscriptions/cancel",
        Some(&ada),
        r#"{"at_period_end": false}"#,
    )
    .await?;
    assert_eq!(
        (status, answer["error"].as_str()),
        (409, Some("you have no live subscription"))
    );
    Ok(())
}
