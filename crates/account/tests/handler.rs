//! Handler tests for the account routes that need no Stripe call, then `/me` and the billing
//! portal on the in-memory `FakeStripe`. (Key rotation through DynamoDB and the billing portal
//! against the emulator: tests/e2e/account.rs.)

use account::{Deps, handle};
use adapters::fakes::{
    FakeDirectory, FakeScheduler, InMemoryAccounts, api_request, signed_up, unreachable_stripe,
};
use adapters::stripe_reads::StripeState;
use domain::catalogue::Catalogue;
use domain::ids::{ApiKey, Credits};
use domain::lifecycle::AccessPolicy;
use domain::lifecycle::Lifecycle;
use domain::ports::Accounts;
use serde_json::Value;

type TestDeps = Deps<InMemoryAccounts, StripeState, FakeDirectory, FakeScheduler>;

/// The account Lambda on in-memory ports and an unreachable Stripe.
fn deps(accounts: InMemoryAccounts) -> anyhow::Result<TestDeps> {
    Ok(Deps {
        lifecycle: Lifecycle {
            store: accounts,
            stripe: unreachable_stripe(),
            directory: FakeDirectory::default(),
            scheduler: FakeScheduler::default(),
            catalogue: Catalogue::bundled()?,
            policy: AccessPolicy::default(),
            free_period_override: None,
        },
        portal_return_url: "https://app.example.com/account".into(),
    })
}

#[tokio::test]
async fn me_shows_plan_credits_and_the_key_prefix_and_routes_are_checked() -> anyhow::Result<()> {
    let accounts = InMemoryAccounts::default();
    let mut profile = signed_up("user-1");
    profile.allowance = Credits::new(30);
    profile.purchased = Credits::new(12);
    let key = ApiKey::from_entropy([9; 32]);
    profile.api_key = Some((key.hash(), key.prefix()));
    accounts.create_profile(&profile).await?;
    let deps = deps(accounts)?;
    let call = |method: &'static str, path: &'static str, sub: Option<&'static str>| {
        let deps = &deps;
        async move {
            let response = handle(deps, api_request(method, path, sub, ""))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let body: Value = serde_json::from_slice(response.body().as_ref())?;
            anyhow::Ok((response.status().as_u16(), body))
        }
    };
    let (status, me) = call("GET", "/me", Some("user-1")).await?;
    assert_eq!(status, 200);
    assert_eq!(me["plan"], "free");
    assert_eq!(me["credits"]["total"], 42);
    assert_eq!(me["api_key_prefix"], key.prefix());
    assert!(!me.to_string().contains(key.expose()));
    assert_eq!(call("GET", "/me", None).await?.0, 401);
    assert_eq!(call("GET", "/me", Some("user-2")).await?.0, 404);
    assert_eq!(call("POST", "/me", Some("user-1")).await?.0, 405);
    assert_eq!(call("GET", "/api-key", Some("user-1")).await?.0, 405);
    assert_eq!(call("GET", "/admin", Some("user-1")).await?.0, 404);
    let (status, rotated) = call("POST", "/api-key", Some("user-1")).await?;
    assert_eq!(status, 200);
    let new_key = rotated["api_key"].as_str().unwrap_or_default();
    assert!(new_key.starts_with("cgk_") && new_key != key.expose());
    let keys = deps
        .lifecycle
        .store
        .api_keys
        .lock()
        .map(|k| k.clone())
        .unwrap_or_default();
    assert_eq!(keys.len(), 1, "only the new key's hash is stored");
    assert!(keys.contains_key(domain::ids::ApiKeyHash::of(new_key).as_str()));
    let (_, me) = call("GET", "/me", Some("user-1")).await?;
    assert_eq!(me["api_key_prefix"], rotated["prefix"]);
    let (status, portal) = call("POST", "/billing-portal", Some("user-1")).await?;
    assert_eq!(
        (status, portal["error"].as_str()),
        (500, Some("internal error")),
        "Stripe unreachable"
    );
    Ok(())
}

#[tokio::test]
async fn claiming_needs_a_verified_email_a_session_id_and_a_purchase_held_for_that_email()
-> anyhow::Result<()> {
    use adapters::fakes::api_request_with_claims;
    use domain::ids::{Email, StripeCustomerId};
    use domain::ports::{HeldPurchase, Ledger, SessionMode};
    use serde_json::json;

    let accounts = InMemoryAccounts::default();
    accounts.create_profile(&signed_up("user-1")).await?;
    accounts
        .hold_purchase(&HeldPurchase {
            session: domain::ids::CheckoutSessionId::parse("cs_test_held")?,
            customer: StripeCustomerId::parse("cus_buyer")?,
            email: Email::parse("ada@example.com")?,
            mode: SessionMode::Payment,
            plan: Some(domain::ids::PlanId::parse("basic")?),
            held_at: 1,
            claimed_by: None,
        })
        .await?;
    let deps = deps(accounts)?;
    let call = |claims: Value, body: &'static str| {
        let deps = &deps;
        async move {
            let response = handle(
                deps,
                api_request_with_claims("POST", "/purchases/claim", Some(claims), body),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            let body: Value = serde_json::from_slice(response.body().as_ref())?;
            anyhow::Ok((response.status().as_u16(), body))
        }
    };
    let verified = json!({"sub": "user-1", "email": "ada@example.com", "email_verified": "true"});
    let unverified =
        json!({"sub": "user-1", "email": "ada@example.com", "email_verified": "false"});
    let access_token = json!({"sub": "user-1", "client_id": "web"});
    let other = json!({"sub": "user-1", "email": "eve@example.com", "email_verified": "true"});
    let held = r#"{"session": "cs_test_held"}"#;
    let cases = [
        (unverified, held, 403, "verified"),
        (access_token, held, 403, "verified"),
        (verified.clone(), r#"{}"#, 400, "`session` is required"),
        (verified.clone(), r#"{"session": "sub_1"}"#, 400, "cs_"),
        (
            verified.clone(),
            r#"{"session": "cs_x\" OR 1"}"#,
            400,
            "cs_",
        ),
        (
            verified.clone(),
            r#"{"session": 7}"#,
            400,
            "`session` is required",
        ),
        (
            verified.clone(),
            r#"{"session": "cs_test_held", "sub": "x"}"#,
            400,
            "unknown field `sub`",
        ),
        (
            other,
            held,
            404,
            "no purchase cs_test_held is held for your verified email",
        ),
        (
            verified.clone(),
            r#"{"session": "cs_test_other"}"#,
            404,
            "no purchase",
        ),
    ];
    for (claims, body, status, message) in cases {
        let (got, answer) = call(claims.clone(), body).await?;
        assert_eq!(got, status, "{claims} {body}: {answer}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap_or_default()
                .contains(message),
            "{answer}"
        );
    }
    // /me lists the held purchase only for the verified owner of the email.
    let me = |claims: Value| {
        let deps = &deps;
        async move {
            let response = handle(
                deps,
                api_request_with_claims("GET", "/me", Some(claims), ""),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            let body: Value = serde_json::from_slice(response.body().as_ref())?;
            anyhow::Ok((response.status().as_u16(), body))
        }
    };
    let (status, view) = me(verified).await?;
    assert_eq!(status, 200);
    assert_eq!(view["held_purchases"][0]["session"], "cs_test_held");
    assert_eq!(view["held_purchases"][0]["mode"], "pack");
    assert_eq!(
        view["subscriptions"],
        Value::Null,
        "Stripe unreachable: best effort"
    );
    assert_eq!(view["held_purchases"][0]["plan"], "basic");
    let (_, view) = me(json!({"sub": "user-1", "email": "ada@example.com"})).await?;
    assert_eq!(view["held_purchases"], json!([]), "not verified: not shown");
    // A signed-in user with no account yet (a pay-first buyer whose profile write failed) sees
    // what is held for her verified email, so she can claim it; without holds it is 404.
    let (status, view) =
        me(json!({"sub": "user-9", "email": "ada@example.com", "email_verified": "true"})).await?;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["held_purchases"][0]["session"], "cs_test_held");
    assert_eq!(view["account"], Value::Null);
    let (status, _) =
        me(json!({"sub": "user-9", "email": "eve@example.com", "email_verified": "true"})).await?;
    assert_eq!(status, 404);
    let (status, answer) = call(
        json!({"sub": "user-1", "email": "ada@example.com", "email_verified": "true"}),
        r#"{"session": "cs_test_held", "replace_subscription": "yes"}"#,
    )
    .await?;
    assert_eq!(status, 400, "{answer}");
    Ok(())
}

/// On the in-memory `FakeStripe` (its contract with the real adapter:
/// crates/adapters/tests/payments_contract.rs): `/me` lists the caller's live subscriptions and
/// `/billing-portal` answers a portal URL.
#[tokio::test]
async fn me_lists_live_subscriptions_and_the_billing_portal_answers_on_the_fake_stripe()
-> anyhow::Result<()> {
    use adapters::fakes::FakeStripe;
    use domain::ids::StripeCustomerId;

    let catalogue = Catalogue::bundled()?;
    let stripe = FakeStripe::new(&catalogue);
    let customer = StripeCustomerId::parse("cus_test1")?;
    stripe.add_customer(&customer, "ada@example.com");
    let subscription = stripe.subscribe(&customer, "creditgate_basic_subscription")?;
    let someone_else = stripe.customer("eve@example.com");
    stripe.subscribe(&someone_else, "creditgate_power_subscription")?;
    let deps = Deps {
        lifecycle: Lifecycle {
            store: InMemoryAccounts::default(),
            stripe,
            directory: FakeDirectory::default(),
            scheduler: FakeScheduler::default(),
            catalogue,
            policy: AccessPolicy::default(),
            free_period_override: None,
        },
        portal_return_url: "https://app.example.com/account".into(),
    };
    deps.lifecycle
        .store
        .create_profile(&signed_up("user-1"))
        .await?;
    let call = |method: &'static str, path: &'static str| {
        let deps = &deps;
        async move {
            let response = handle(deps, api_request(method, path, Some("user-1"), ""))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let body: Value = serde_json::from_slice(response.body().as_ref())?;
            anyhow::Ok((response.status().as_u16(), body))
        }
    };
    let (status, me) = call("GET", "/me").await?;
    assert_eq!(status, 200, "{me}");
    let listed = me["subscriptions"].as_array().cloned().unwrap_or_default();
    assert_eq!(listed.len(), 1, "only the caller's: {me}");
    assert_eq!(listed[0]["id"], subscription.as_str());
    assert_eq!(listed[0]["status"], "active");
    assert_eq!(
        listed[0]["price_lookup_key"],
        "creditgate_basic_subscription"
    );
    let (status, portal) = call("POST", "/billing-portal").await?;
    assert_eq!(status, 200, "{portal}");
    assert!(
        portal["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://")),
        "{portal}"
    );
    Ok(())
}
