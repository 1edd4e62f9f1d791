//! Handler tests for what create-session answers before it calls Stripe: the caller's identity,
//! the body, the plan and mode, the profile. (Sessions and plan changes: tests/e2e/account.rs.)

use adapters::fakes::{InMemoryAccounts, api_request, signed_up, unreachable_stripe};
use adapters::stripe_reads::StripeState;
use create_session::{Deps, handle};
use domain::account::CheckoutUrls;
use domain::catalogue::Catalogue;
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
