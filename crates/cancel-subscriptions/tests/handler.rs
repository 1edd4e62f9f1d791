//! Handler tests for what cancel-subscriptions answers before it calls Stripe. (Cancelling at
//! period end and now, and repeating it: tests/e2e/account.rs.)

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
