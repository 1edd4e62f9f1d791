//! post-confirmation's handler against in-memory ports, from the fixture events Cognito sends.

use adapters::fakes::{FakeBilling, FakeScheduler, InMemoryAccounts};
use domain::catalogue::Catalogue;
use domain::ids::Credits;
use lambda_runtime::{Context, LambdaEvent};
use post_confirmation::{Deps, handle};
use serde_json::Value;

const SIGN_UP: &str =
    include_str!("../../../tests/fixtures/cognito/post-confirmation-sign-up.json");
const FORGOT_PASSWORD: &str =
    include_str!("../../../tests/fixtures/cognito/post-confirmation-forgot-password.json");
const SUB: &str = "0f6c2a4e-5b1d-4c1b-9e2f-1a2b3c4d5e6f";

type TestDeps = Deps<InMemoryAccounts, FakeBilling, FakeScheduler>;

fn deps() -> anyhow::Result<TestDeps> {
    Ok(Deps {
        accounts: InMemoryAccounts::default(),
        billing: FakeBilling::default(),
        scheduler: FakeScheduler::default(),
        catalogue: Catalogue::bundled()?,
        free_period_seconds: None,
    })
}

fn event(json: &str) -> anyhow::Result<LambdaEvent<Value>> {
    Ok(LambdaEvent::new(
        serde_json::from_str(json)?,
        Context::default(),
    ))
}

fn counts(deps: &TestDeps) -> (usize, usize, usize) {
    let customers = deps
        .billing
        .customers
        .lock()
        .map(|c| c.len())
        .unwrap_or(usize::MAX);
    let profiles = deps
        .accounts
        .profiles
        .lock()
        .map(|p| p.len())
        .unwrap_or(usize::MAX);
    let executions = deps
        .scheduler
        .executions
        .lock()
        .map(|e| e.len())
        .unwrap_or(usize::MAX);
    (customers, profiles, executions)
}

#[tokio::test]
async fn a_confirmed_sign_up_gets_one_customer_a_free_profile_and_a_weekly_credit_manager()
-> anyhow::Result<()> {
    let deps = deps()?;
    handle(&deps, event(SIGN_UP)?).await?;
    assert_eq!(counts(&deps), (1, 1, 1));

    let profiles = deps
        .accounts
        .profiles
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?;
    let profile = &profiles[SUB];
    assert_eq!(profile.plan.as_str(), "free");
    assert_eq!(profile.email.as_str(), "ada@example.com");
    assert_eq!(profile.customer.as_str(), "cus_fake1");
    assert_eq!(
        profile.allowance,
        Credits::ZERO,
        "credits come from the manager's first grant"
    );
    assert_eq!(profile.manager_generation, 1);
    drop(profiles);

    let executions = deps
        .scheduler
        .executions
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?;
    let run = &executions[&format!("{SUB}-g1-c0")];
    assert_eq!(
        (run.credits.get(), run.period_seconds, run.plan.as_str()),
        (50, 7 * 24 * 3600, "free")
    );
    Ok(())
}

#[tokio::test]
async fn the_event_is_returned_exactly_as_received() -> anyhow::Result<()> {
    let deps = deps()?;
    let returned = handle(&deps, event(SIGN_UP)?).await?;
    assert_eq!(returned, serde_json::from_str::<Value>(SIGN_UP)?);
    Ok(())
}

#[tokio::test]
async fn three_invocations_one_after_another_leave_one_of_each() -> anyhow::Result<()> {
    let deps = deps()?;
    for _ in 0..3 {
        handle(&deps, event(SIGN_UP)?).await?;
    }
    assert_eq!(counts(&deps), (1, 1, 1));
    Ok(())
}

#[tokio::test]
async fn three_concurrent_invocations_leave_one_of_each() -> anyhow::Result<()> {
    let deps = deps()?;
    let (a, b, c) = tokio::join!(
        handle(&deps, event(SIGN_UP)?),
        handle(&deps, event(SIGN_UP)?),
        handle(&deps, event(SIGN_UP)?)
    );
    a?;
    b?;
    c?;
    assert_eq!(counts(&deps), (1, 1, 1));
    Ok(())
}

#[tokio::test]
async fn a_forgotten_password_confirmation_changes_nothing() -> anyhow::Result<()> {
    let deps = deps()?;
    let returned = handle(&deps, event(FORGOT_PASSWORD)?).await?;
    assert_eq!(returned, serde_json::from_str::<Value>(FORGOT_PASSWORD)?);
    assert_eq!(counts(&deps), (0, 0, 0));
    Ok(())
}

#[tokio::test]
async fn stripe_failing_is_an_error_that_leaves_nothing_and_a_retry_completes() -> anyhow::Result<()>
{
    let deps = deps()?;
    deps.billing.fail.set(1);
    assert!(handle(&deps, event(SIGN_UP)?).await.is_err());
    assert_eq!(counts(&deps), (0, 0, 0));
    handle(&deps, event(SIGN_UP)?).await?;
    assert_eq!(counts(&deps), (1, 1, 1));
    Ok(())
}

#[tokio::test]
async fn dynamodb_failing_after_the_customer_exists_is_finished_by_a_retry_with_the_same_customer()
-> anyhow::Result<()> {
    let deps = deps()?;
    deps.accounts.fail_writes.set(1);
    assert!(handle(&deps, event(SIGN_UP)?).await.is_err());
    assert_eq!(counts(&deps), (1, 0, 0));
    handle(&deps, event(SIGN_UP)?).await?;
    assert_eq!(
        counts(&deps),
        (1, 1, 1),
        "the retry reused the customer via its idempotency key"
    );
    Ok(())
}

#[tokio::test]
async fn step_functions_failing_leaves_a_profile_that_a_retry_completes() -> anyhow::Result<()> {
    let deps = deps()?;
    deps.scheduler.fail.set(1);
    assert!(handle(&deps, event(SIGN_UP)?).await.is_err());
    assert_eq!(counts(&deps), (1, 1, 0));
    handle(&deps, event(SIGN_UP)?).await?;
    assert_eq!(counts(&deps), (1, 1, 1));
    Ok(())
}

#[tokio::test]
async fn an_event_without_an_email_or_sub_is_an_error_not_a_panic() -> anyhow::Result<()> {
    let deps = deps()?;
    let no_email = SIGN_UP.replace("\"email\": \"ada@example.com\"", "\"locale\": \"en\"");
    let err = handle(&deps, event(&no_email)?)
        .await
        .err()
        .map(|e| format!("{e:#}"));
    assert!(
        err.as_deref().is_some_and(|e| e.contains("email")),
        "{err:?}"
    );

    let bad_sub = SIGN_UP.replace(&format!("\"sub\": \"{SUB}\""), "\"sub\": \"a#b\"");
    assert!(handle(&deps, event(&bad_sub)?).await.is_err());

    let not_cognito = LambdaEvent::new(serde_json::json!({"hello": [1, 2]}), Context::default());
    assert!(handle(&deps, not_cognito).await.is_err());
    assert_eq!(counts(&deps), (0, 0, 0));
    Ok(())
}

#[tokio::test]
async fn the_injected_period_reaches_the_credit_manager() -> anyhow::Result<()> {
    let mut deps = deps()?;
    deps.free_period_seconds = Some(3);
    handle(&deps, event(SIGN_UP)?).await?;
    let executions = deps
        .scheduler
        .executions
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?;
    assert_eq!(
        executions
            .values()
            .map(|r| r.period_seconds)
            .collect::<Vec<_>>(),
        vec![3]
    );
    Ok(())
}

#[test]
fn a_rate_limited_stripe_call_still_ends_inside_cognitos_five_seconds() {
    // Refusals come back at once; what can take long is the waits and the one attempt that
    // runs (a timed-out attempt is not retried by the backoff).
    let worst =
        post_confirmation::STRIPE_BACKOFF.max_total_wait() + post_confirmation::STRIPE_TIMEOUT;
    assert!(worst < std::time::Duration::from_secs(4), "{worst:?}");
}
