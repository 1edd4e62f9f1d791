//! Trust boundaries end to end (issue 10): an attacker with only what a buyer has (a Checkout
//! Session without a customer, as a Payment Link makes it, completed with any email and any
//! `client_reference_id`) against the real stack; the emulator delivers to the real
//! stripe-webhook under `cargo lambda watch`, and the user API is invoked with the claims of
//! real moto ID tokens.

use std::time::Duration;

use adapters::dynamo::DynamoStore;
use domain::ids::{Email, UserSub};
use domain::ports::{Accounts, Ledger};
use domain::webhook::EventLedger;
use serde_json::{Value, json};
use stripe_emulator::client::form;
use tests::{Stack, eventually, http};

use crate::api::{PASSWORD, call, claims, event};

const WAIT: Duration = Duration::from_secs(90);

/// A Payment Link purchase: a session with no customer; the buyer types `email` and the link
/// may carry a `client_reference_id`.
async fn link_purchase(
    stack: &Stack,
    lookup_key: &str,
    email: &str,
    reference: Option<&str>,
) -> anyhow::Result<Value> {
    let prices = stack
        .emulator(
            "GET",
            &format!("/v1/prices?{}", form(&[("lookup_keys[]", lookup_key)])),
            "",
        )
        .await?;
    let price = &prices["data"][0];
    let mode = if price["type"] == "recurring" {
        "subscription"
    } else {
        "payment"
    };
    let mut fields = vec![
        ("mode", mode),
        (
            "line_items[0][price]",
            price["id"].as_str().unwrap_or_default(),
        ),
        ("success_url", "http://127.0.0.1/ok"),
    ];
    if let Some(r) = reference {
        fields.push(("client_reference_id", r));
    }
    let session = stack
        .emulator("POST", "/v1/checkout/sessions", &form(&fields))
        .await?;
    let id = session["id"].as_str().unwrap_or_default();
    stack
        .emulator(
            "POST",
            &format!("/_emulator/checkout/sessions/{id}/complete"),
            &form(&[("email", email)]),
        )
        .await
}

/// Signs `email` up with the e2e password; returns the ID token's claims and the sub.
async fn sign_up(
    stack: &Stack,
    email: &str,
) -> anyhow::Result<(std::collections::HashMap<String, String>, UserSub)> {
    let out = stack.creditgate_dev(&["signup", email, "--password", PASSWORD])?;
    anyhow::ensure!(
        out.status.success(),
        "signup: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let claims = claims(stack, email).await?;
    let sub = UserSub::parse(claims.get("sub").map(String::as_str).unwrap_or_default())?;
    Ok((claims, sub))
}

/// create-session for the caller, then the buyer completes the session in Checkout.
async fn subscribe(
    stack: &Stack,
    claims: &std::collections::HashMap<String, String>,
    plan: &str,
) -> anyhow::Result<Value> {
    let (status, created) = call(
        stack,
        "create-session",
        "POST",
        "/checkout-sessions",
        Some(claims),
        &json!({"plan": plan, "mode": "subscription"}).to_string(),
    )
    .await?;
    anyhow::ensure!(status == 200, "create-session: {status} {created}");
    let id = created["id"].as_str().unwrap_or_default();
    stack
        .emulator(
            "POST",
            &format!("/_emulator/checkout/sessions/{id}/complete"),
            "",
        )
        .await
}

async fn plan_of(store: &DynamoStore, sub: &UserSub) -> anyhow::Result<Option<String>> {
    Ok(store.profile(sub).await?.map(|p| p.plan.to_string()))
}

#[tokio::test]
async fn outside_buyers_bind_nothing_to_a_user_and_settle_without_failing() -> anyhow::Result<()> {
    let stack = Stack::start("trust-attacks", 3_600).await?;
    let store = DynamoStore::new(stack.dynamodb.clone(), stack.var("TABLE_NAME")?);
    let (ada, ada_sub) = sign_up(&stack, "ada@example.com").await?;
    subscribe(&stack, &ada, "power").await?;
    eventually(WAIT, "Ada on Power", || async {
        Ok(plan_of(&store, &ada_sub)
            .await?
            .filter(|p| p == "power")
            .map(|_| ()))
    })
    .await?;
    let before = store
        .profile(&ada_sub)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no profile"))?;

    // Case 6: one Idempotency-Key with two bodies is the caller's mistake: 409, never a 500.
    let keyed = |body: &str| {
        let mut e = event("POST", "/checkout-sessions", Some(&ada), body);
        e["headers"]["idempotency-key"] = json!("one-key-two-bodies");
        e
    };
    let (status, raw) = stack
        .invoke(
            "create-session",
            &keyed(r#"{"plan": "basic", "mode": "pack"}"#),
        )
        .await?;
    let first: Value = serde_json::from_str(&raw)?;
    assert_eq!(
        (status, first["statusCode"].as_u64()),
        (200, Some(200)),
        "{raw}"
    );
    let (_, raw) = stack
        .invoke(
            "create-session",
            &keyed(r#"{"plan": "power", "mode": "pack"}"#),
        )
        .await?;
    let second: Value = serde_json::from_str(&raw)?;
    assert_eq!(second["statusCode"], 409, "{raw}");
    assert!(
        second["body"]
            .as_str()
            .unwrap_or_default()
            .contains("Idempotency-Key was already used"),
        "{raw}"
    );

    // Case 1: an attacker pays for Basic with Ada's email (in another case), then lets the card
    // fail. Case 2: Eve's Payment Link carries Ada's sub. Case 4: a reference that is no user.
    let attack = link_purchase(
        &stack,
        "creditgate_basic_subscription",
        "Ada@Example.com",
        None,
    )
    .await?;
    let eve_pack = link_purchase(
        &stack,
        "creditgate_power_pack",
        "eve@example.com",
        Some(ada_sub.as_str()),
    )
    .await?;
    link_purchase(
        &stack,
        "creditgate_basic_pack",
        "new@example.com",
        Some("00000000-dead-beef-0000-000000000000"),
    )
    .await?;
    let attacker = attack["customer"].as_str().unwrap_or_default().to_owned();
    stack
        .emulator(
            "POST",
            &format!("/_emulator/customers/{attacker}/payment_method"),
            "failing=true",
        )
        .await?;
    let email = Email::parse("ada@example.com")?;
    eventually(
        WAIT,
        "the attacker's purchase held for Ada's email",
        || async {
            Ok(store
                .held_purchases(&email)
                .await?
                .into_iter()
                .find(|h| Some(h.session.as_str()) == attack["id"].as_str()))
        },
    )
    .await?;
    let eve = eventually(WAIT, "Eve's own user with her pack", || async {
        let Some(owner) = store
            .customer_owner(&domain::ids::StripeCustomerId::parse(
                eve_pack["customer"].as_str().unwrap_or_default(),
            )?)
            .await?
        else {
            return Ok(None);
        };
        Ok(store
            .profile(&owner)
            .await?
            .filter(|p| p.purchased.get() == 100_000)
            .map(|_| owner))
    })
    .await?;
    assert_ne!(eve, ada_sub);
    // A month and the attacker's failed retries later, Ada is where she was, renewed.
    stack
        .emulator("POST", "/_emulator/clock/advance", "seconds=2678400")
        .await?;
    stack
        .emulator("POST", "/_emulator/clock/advance", "seconds=1382400")
        .await?;
    let failing = |s: &Value| s["status"] == "past_due" || s["status"] == "unpaid";
    let attacker_sub = attack["subscription"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    eventually(WAIT, "the attacker's subscription failing", || async {
        let s = stack
            .emulator("GET", &format!("/v1/subscriptions/{attacker_sub}"), "")
            .await?;
        Ok(failing(&s).then_some(()))
    })
    .await?;
    stack.all_delivered(WAIT).await?;
    let refused = stack.refused_deliveries().await?;
    assert!(refused.is_empty(), "refused deliveries: {refused:?}");
    let after = store
        .profile(&ada_sub)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no profile"))?;
    assert_eq!(after.plan.as_str(), "power");
    assert_eq!(after.access, domain::profile::Access::Active);
    assert_eq!(after.purchased, before.purchased, "no pack landed on Ada");
    assert_eq!(after.customers(), before.customers());
    assert_eq!(
        after.subscription.as_ref().map(|s| &s.id),
        before.subscription.as_ref().map(|s| &s.id)
    );
    assert!(store.failed_events().await?.is_empty(), "nothing failed");
    // /me shows the purchase held for her verified email, and her one live subscription.
    let (status, me) = call(&stack, "account", "GET", "/me", Some(&ada), "").await?;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["held_purchases"][0]["session"], attack["id"], "{me}");
    assert_eq!(
        me["subscriptions"].as_array().map(Vec::len),
        Some(1),
        "{me}"
    );
    assert_eq!(me["plan"], "power");
    // Operators see it too.
    let out = stack.creditgate(&["purchases", "held"])?;
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{listed}");
    assert!(
        listed.contains(attack["id"].as_str().unwrap_or("?")) && listed.contains("unclaimed"),
        "{listed}"
    );
    let user = stack
        .cognito
        .admin_get_user()
        .user_pool_id(stack.var("USER_POOL_ID")?)
        .username("ada@example.com")
        .send()
        .await?;
    assert!(user.enabled());

    // Case 5's settings, provisioned from the template: email changes wait for verification;
    // the app client answers alike for unknown users.
    let pool = stack
        .cognito
        .describe_user_pool()
        .user_pool_id(stack.var("USER_POOL_ID")?)
        .send()
        .await?;
    let needs = pool
        .user_pool()
        .and_then(|p| p.user_attribute_update_settings())
        .map(|s| s.attributes_require_verification_before_update().to_vec())
        .unwrap_or_default();
    assert_eq!(
        needs,
        [aws_sdk_cognitoidentityprovider::types::VerifiedAttributeType::Email]
    );
    let client = stack
        .cognito
        .describe_user_pool_client()
        .user_pool_id(stack.var("USER_POOL_ID")?)
        .client_id(stack.var("USER_POOL_CLIENT_ID")?)
        .send()
        .await?;
    assert_eq!(
        client
            .user_pool_client()
            .and_then(|c| c.prevent_user_existence_errors())
            .map(|p| p.as_str()),
        Some("ENABLED")
    );

    // Case 7: a hostile timestamp is a 401, not a crash; the security log names API Gateway's
    // source address, never the caller's X-Forwarded-For.
    let (status, _, body) = http(
        &stack.var("LAMBDA_INVOKE_URL")?,
        "POST",
        "/lambda-url/stripe-webhook/stripe/webhook",
        &[
            (
                "stripe-signature",
                &format!("t=-9223372036854775808,v1={}", "0".repeat(64)),
            ),
            ("x-forwarded-for", "6.6.6.6"),
        ],
        r#"{"id":"evt_1"}"#,
    )
    .await?;
    assert_eq!(status, 401, "{body}");
    assert!(
        !stack.logs().contains("6.6.6.6"),
        "the spoofed address was logged"
    );
    Ok(())
}

#[tokio::test]
async fn her_own_link_purchase_is_claimed_and_one_subscription_and_one_bill_remain()
-> anyhow::Result<()> {
    let stack = Stack::start("trust-claim", 3_600).await?;
    let store = DynamoStore::new(stack.dynamodb.clone(), stack.var("TABLE_NAME")?);
    let (grace, sub) = sign_up(&stack, "grace@example.com").await?;
    let first = subscribe(&stack, &grace, "basic").await?;
    eventually(WAIT, "Grace on Basic", || async {
        Ok(plan_of(&store, &sub)
            .await?
            .filter(|p| p == "basic")
            .map(|_| ()))
    })
    .await?;
    // `creditgate-dev checkout` buys by the same rules: the same plan is refused, another is
    // a change in place, never a second subscription.
    let out = stack.creditgate_dev(&["checkout", "grace@example.com", "basic"])?;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already subscribed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = stack.creditgate_dev(&["checkout", "grace@example.com", "power"])?;
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success() && said.contains("in place"), "{said}");
    eventually(WAIT, "Grace on Power, changed in place", || async {
        Ok(plan_of(&store, &sub)
            .await?
            .filter(|p| p == "power")
            .map(|_| ()))
    })
    .await?;

    // Case 3: a day later she also buys Basic through a Payment Link with her own email: held,
    // not merged.
    stack
        .emulator("POST", "/_emulator/clock/advance", "seconds=86400")
        .await?;
    let link = link_purchase(
        &stack,
        "creditgate_basic_subscription",
        "grace@example.com",
        None,
    )
    .await?;
    let session = link["id"].as_str().unwrap_or_default().to_owned();
    let (status, me) = eventually(WAIT, "the held purchase in /me", || async {
        let (status, me) = call(&stack, "account", "GET", "/me", Some(&grace), "").await?;
        Ok((me["held_purchases"][0]["session"] == session.as_str()).then_some((status, me)))
    })
    .await?;
    assert_eq!((status, &me["plan"]), (200, &json!("power")), "{me}");
    // Case 5: Mallory sets her email to Grace's (the app client may write `email`); the pool
    // keeps her verified email until the new one is confirmed, so her ID token still names her
    // own, and the claim finds nothing held for it.
    sign_up(&stack, "mallory@example.com").await?;
    let auth = stack
        .cognito
        .initiate_auth()
        .client_id(stack.var("USER_POOL_CLIENT_ID")?)
        .auth_flow(aws_sdk_cognitoidentityprovider::types::AuthFlowType::UserPasswordAuth)
        .auth_parameters("USERNAME", "mallory@example.com")
        .auth_parameters("PASSWORD", PASSWORD)
        .send()
        .await?;
    let access = auth
        .authentication_result()
        .and_then(|r| r.access_token())
        .unwrap_or_default()
        .to_owned();
    stack
        .cognito
        .update_user_attributes()
        .access_token(access)
        .user_attributes(
            aws_sdk_cognitoidentityprovider::types::AttributeType::builder()
                .name("email")
                .value("grace@example.com")
                .build()?,
        )
        .send()
        .await?;
    let mallory_claims = claims(&stack, "mallory@example.com").await?;
    assert_eq!(
        mallory_claims.get("email").map(String::as_str),
        Some("mallory@example.com"),
        "{mallory_claims:?}"
    );
    let body = json!({ "session": session }).to_string();
    let (status, answer) = call(
        &stack,
        "account",
        "POST",
        "/purchases/claim",
        Some(&mallory_claims),
        &body,
    )
    .await?;
    assert_eq!(status, 404, "{answer}");
    // She has a live subscription: the claim replaces it only when she says so.
    let (status, answer) = call(
        &stack,
        "account",
        "POST",
        "/purchases/claim",
        Some(&grace),
        &body,
    )
    .await?;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("replace_subscription")),
        "{answer}"
    );
    let replace = json!({ "session": session, "replace_subscription": true }).to_string();
    let (status, answer) = call(
        &stack,
        "account",
        "POST",
        "/purchases/claim",
        Some(&grace),
        &replace,
    )
    .await?;
    assert_eq!(status, 200, "{answer}");
    let kept = link["subscription"].as_str().unwrap_or_default().to_owned();
    let p = eventually(WAIT, "Grace following the claimed subscription", || async {
        Ok(store.profile(&sub).await?.filter(|p| {
            p.subscription.as_ref().map(|s| s.id.as_str()) == Some(kept.as_str())
                && p.plan.as_str() == "basic"
        }))
    })
    .await?;
    assert_eq!(p.customers().len(), 2);
    // One bill: the subscription she replaced was cancelled with proration.
    let old = first["subscription"].as_str().unwrap_or_default();
    let view = stack
        .emulator("GET", &format!("/_emulator/subscriptions/{old}"), "")
        .await?;
    assert!(
        view["proration_behaviors"]
            .as_array()
            .is_some_and(|b| b.iter().any(|x| x == "cancel_prorate")),
        "{view}"
    );
    let (_, me) = call(&stack, "account", "GET", "/me", Some(&grace), "").await?;
    assert_eq!(
        me["subscriptions"]
            .as_array()
            .map(|s| s.iter().map(|s| s["id"].clone()).collect::<Vec<_>>()),
        Some(vec![json!(kept)]),
        "{me}"
    );
    assert_eq!(me["held_purchases"], json!([]), "claimed");
    let (status, again) = call(
        &stack,
        "account",
        "POST",
        "/purchases/claim",
        Some(&grace),
        &body,
    )
    .await?;
    assert_eq!(status, 200, "claiming again is harmless: {again}");
    // cancel-subscriptions sees the claimed subscription.
    let (status, cancelled) = call(
        &stack,
        "cancel-subscriptions",
        "POST",
        "/subscriptions/cancel",
        Some(&grace),
        r#"{"at_period_end": true}"#,
    )
    .await?;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["subscription"], json!(kept));
    Ok(())
}
