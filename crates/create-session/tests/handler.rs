//! Handler tests for what create-session answers before it calls Stripe: the caller's identity,
//! the body, the plan and mode, the profile; then sessions and plan changes on the in-memory
//! `FakeStripe` (`with_fake_stripe`). (The same against the emulator: tests/e2e/account.rs.)

use adapters::fakes::{InMemoryAccounts, api_request, signed_up, unreachable_stripe};
use adapters::stripe_reads::StripeState;
use create_session::{Deps, handle};
use domain::account::CheckoutUrls;
use domain::catalogue::Catalogue;
use domain::ids::{CheckoutSessionId, SubscriptionId};
use domain::ports::Accounts;
use serde_json::Value;

async fn deps() -> anyhow::Result<Deps<InMemoryAccounts, StripeState>> {
    let deps = Deps {
        accounts: InMemoryAccounts::default(),
        stripe: unreachable_stripe(),
        catalogue: Catalogue::bundled()?,
        urls: CheckoutUrls {
            success: "https://app.example.com/ok".into(),
            cancel: "https://app.example.com/cancel".into(),
        },
    };
    deps.accounts.create_profile(&signed_up("user-1")).await?;
    Ok(deps)
}

async fn answer(
    deps: &Deps<InMemoryAccounts, StripeState>,
    request: lambda_http::Request,
) -> anyhow::Result<(u16, String)> {
    let response = handle(deps, request)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let body: Value = serde_json::from_slice(response.body().as_ref())?;
    Ok((
        response.status().as_u16(),
        body["error"].as_str().unwrap_or_default().to_owned(),
    ))
}

#[tokio::test]
async fn malformed_requests_are_400s_naming_the_problem() -> anyhow::Result<()> {
    let deps = deps().await?;
    let cases = [
        ("", "`plan` is required"),
        ("[]", "JSON object"),
        ("{", "not valid JSON"),
        (r#"{"plan": "basic"}"#, "`mode` is required"),
        (
            r#"{"plan": "basic", "mode": "monthly"}"#,
            "`mode` is required",
        ),
        (r#"{"plan": 7, "mode": "pack"}"#, "`plan` is required"),
        (
            r#"{"plan": "gold", "mode": "pack"}"#,
            "there is no plan `gold`",
        ),
        (
            r#"{"plan": "Basic!", "mode": "pack"}"#,
            "there is no plan `Basic!`",
        ),
        (
            r#"{"plan": "free", "mode": "subscription"}"#,
            "plan `free` is not sold as a subscription",
        ),
        (
            r#"{"plan": "free", "mode": "pack"}"#,
            "plan `free` is not sold as a pack",
        ),
        (
            r#"{"plan": "basic", "mode": "pack", "sub": "someone"}"#,
            "unknown field `sub`",
        ),
    ];
    for (body, message) in cases {
        let (status, error) = answer(
            &deps,
            api_request("POST", "/checkout-sessions", Some("user-1"), body),
        )
        .await?;
        assert_eq!(status, 400, "{body}");
        assert!(error.contains(message), "{body}: {error}");
    }
    Ok(())
}

#[tokio::test]
async fn no_verified_user_is_401_an_unknown_one_404_and_get_405() -> anyhow::Result<()> {
    let deps = deps().await?;
    let body = r#"{"plan": "basic", "mode": "pack"}"#;
    let (status, _) = answer(&deps, api_request("POST", "/checkout-sessions", None, body)).await?;
    assert_eq!(status, 401);
    let (status, error) = answer(
        &deps,
        api_request("POST", "/checkout-sessions", Some("user-2"), body),
    )
    .await?;
    assert_eq!((status, error.as_str()), (404, "no account for this user"));
    let (status, _) = answer(
        &deps,
        api_request("GET", "/checkout-sessions", Some("user-1"), ""),
    )
    .await?;
    assert_eq!(status, 405);
    Ok(())
}

#[tokio::test]
async fn a_stripe_outage_is_an_opaque_500() -> anyhow::Result<()> {
    let deps = deps().await?;
    let (status, error) = answer(
        &deps,
        api_request(
            "POST",
            "/checkout-sessions",
            Some("user-1"),
            r#"{"plan": "basic", "mode": "pack"}"#,
        ),
    )
    .await?;
    assert_eq!((status, error.as_str()), (500, "internal error"));
    Ok(())
}

/// The paths past Stripe, on the in-memory `FakeStripe` (its contract with the real adapter:
/// crates/adapters/tests/payments_contract.rs).
mod with_fake_stripe {
    use super::*;
    use adapters::fakes::FakeStripe;
    use domain::ids::StripeCustomerId;

    async fn deps() -> anyhow::Result<Deps<InMemoryAccounts, FakeStripe>> {
        let catalogue = Catalogue::bundled()?;
        let stripe = FakeStripe::new(&catalogue);
        stripe.add_customer(&StripeCustomerId::parse("cus_test1")?, "ada@example.com");
        let deps = Deps {
            accounts: InMemoryAccounts::default(),
            stripe,
            catalogue,
            urls: CheckoutUrls {
                success: "https://app.example.com/ok".into(),
                cancel: "https://app.example.com/cancel".into(),
            },
        };
        deps.accounts.create_profile(&signed_up("user-1")).await?;
        Ok(deps)
    }

    async fn post(
        deps: &Deps<InMemoryAccounts, FakeStripe>,
        body: &str,
        key: Option<&str>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut request = api_request("POST", "/checkout-sessions", Some("user-1"), body);
        if let Some(key) = key {
            request
                .headers_mut()
                .insert("idempotency-key", key.parse()?);
        }
        let response = handle(deps, request)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok((
            response.status().as_u16(),
            serde_json::from_slice(response.body().as_ref())?,
        ))
    }

    #[tokio::test]
    async fn a_pack_or_a_first_subscription_is_a_checkout_session_for_the_callers_customer()
    -> anyhow::Result<()> {
        use domain::ports::{SessionMode, StripeReads};
        let deps = deps().await?;
        let body = r#"{"plan": "basic", "mode": "pack"}"#;
        let (status, pack) = post(&deps, body, Some("k1")).await?;
        assert_eq!(status, 200, "{pack}");
        let id = pack["id"].as_str().unwrap_or_default();
        assert!(
            pack["url"].as_str().is_some_and(|u| u.ends_with(id)),
            "{pack}"
        );
        let session = deps
            .stripe
            .checkout_session(&CheckoutSessionId::parse(id)?)
            .await?;
        assert_eq!(
            session.as_ref().map(|s| (
                s.mode,
                s.paid,
                s.customer.as_ref().map(|c| c.as_str()),
                s.client_reference_id.as_deref(),
                s.items.clone()
            )),
            Some((
                SessionMode::Payment,
                false,
                Some("cus_test1"),
                Some("user-1"),
                vec![(Some("creditgate_basic_pack".to_owned()), 1)]
            )),
        );
        let (_, again) = post(&deps, body, Some("k1")).await?;
        assert_eq!(
            again["id"], pack["id"],
            "the same Idempotency-Key: the same session"
        );
        let (status, reused) =
            post(&deps, r#"{"plan": "power", "mode": "pack"}"#, Some("k1")).await?;
        assert_eq!(status, 409, "the same key for another purchase: {reused}");

        let (status, subscription) =
            post(&deps, r#"{"plan": "basic", "mode": "subscription"}"#, None).await?;
        assert_eq!(status, 200, "{subscription}");
        let id = subscription["id"].as_str().unwrap_or_default();
        assert_eq!(
            deps.stripe
                .checkout_session(&CheckoutSessionId::parse(id)?)
                .await?
                .map(|s| s.mode),
            Some(SessionMode::Subscription)
        );
        Ok(())
    }

    #[tokio::test]
    async fn with_a_live_subscription_another_plan_changes_it_in_place_and_the_same_is_409()
    -> anyhow::Result<()> {
        use domain::ports::StripeReads;
        let deps = deps().await?;
        let customer = StripeCustomerId::parse("cus_test1")?;
        let subscription = deps
            .stripe
            .subscribe(&customer, "creditgate_basic_subscription")?;
        let (status, changed) =
            post(&deps, r#"{"plan": "power", "mode": "subscription"}"#, None).await?;
        assert_eq!(status, 200, "{changed}");
        assert_eq!(
            (
                &changed["changed"],
                &changed["subscription"],
                &changed["from"],
                &changed["to"]
            ),
            (
                &Value::Bool(true),
                &Value::String(subscription.clone()),
                &Value::String("basic".into()),
                &Value::String("power".into())
            )
        );
        assert_eq!(
            deps.stripe
                .subscription(&SubscriptionId::parse(&subscription)?)
                .await?
                .and_then(|s| s.lookup_key),
            Some("creditgate_power_subscription".to_owned())
        );
        let (status, same) =
            post(&deps, r#"{"plan": "power", "mode": "subscription"}"#, None).await?;
        assert_eq!(status, 409, "{same}");
        // A pack is still a checkout of its own.
        let (status, _) = post(&deps, r#"{"plan": "basic", "mode": "pack"}"#, None).await?;
        assert_eq!(status, 200);
        Ok(())
    }
}
