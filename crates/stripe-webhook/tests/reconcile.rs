//! Reconciliation (`domain::reconcile`) against the real stripe-emulator in process and the
//! in-memory AWS ports: drift made by events that never arrived is found and repaired, once.

mod support;

use adapters::unix_now as now;
use domain::lifecycle::AccessPolicy;
use domain::reconcile::{Checked, Report, reconcile_all};
use support::*;

async fn run(deps: &TestDeps) -> anyhow::Result<(Report, Vec<(String, Checked)>)> {
    let mut seen = Vec::new();
    let report = reconcile_all(&deps.lifecycle, now, |sub, c| {
        seen.push((sub.to_string(), c.clone()))
    })
    .await?;
    Ok((report, seen))
}

/// A user signed up with her own customer.
async fn user(stripe: &Stripe, deps: &TestDeps, sub: &str) -> anyhow::Result<String> {
    let email = format!("{sub}@example.com");
    let customer = stripe.customer(&email).await?;
    sign_up(deps, sub, &email, &customer).await?;
    Ok(customer)
}

#[tokio::test]
async fn a_subscription_whose_events_never_arrived_is_found_repaired_once_and_then_in_step()
-> anyhow::Result<()> {
    let stripe = Stripe::start().await?;
    let deps = deps(&stripe, AccessPolicy::default())?;
    // Three users (more than one page); one buys Basic and not one event reaches the webhook.
    for sub in ["user-1", "user-2", "user-3"] {
        user(&stripe, &deps, sub).await?;
    }
    let customer = user(&stripe, &deps, "user-4").await?;
    stripe
        .subscribe(&customer, "user-4", "creditgate_basic_subscription")
        .await?;
    assert_eq!(profile(&deps, "user-4").await?.plan.as_str(), "free");

    let (report, seen) = run(&deps).await?;
    assert_eq!(
        report,
        Report {
            checked: 4,
            drifted: 1,
            repaired: 1,
            failed: 0
        }
    );
    let repaired: Vec<_> = seen
        .iter()
        .filter(|(_, c)| !matches!(c, Checked::InStep))
        .collect();
    assert!(
        matches!(repaired.as_slice(), [(sub, Checked::Repaired { before, after })]
            if sub == "user-4" && before.plan.as_str() == "free" && after.plan.as_str() == "basic"),
        "{seen:?}"
    );
    let p = profile(&deps, "user-4").await?;
    assert_eq!((p.plan.as_str(), p.allowance.get()), ("basic", 1_000));
    assert_eq!(
        deps.lifecycle.directory.user("user-4").and_then(|u| u.plan),
        Some("basic".into()),
        "Cognito follows"
    );

    // The next run finds nothing to repair and grants nothing again.
    let (report, _) = run(&deps).await?;
    assert_eq!((report.checked, report.drifted), (4, 0));
    assert_eq!(profile(&deps, "user-4").await?.allowance.get(), 1_000);
    Ok(())
}

#[tokio::test]
async fn a_cancellation_that_never_arrived_moves_the_user_back_to_free() -> anyhow::Result<()> {
    let stripe = Stripe::start().await?;
    let deps = deps(&stripe, AccessPolicy::default())?;
    let customer = user(&stripe, &deps, "user-1").await?;
    let session = stripe
        .subscribe(&customer, "user-1", "creditgate_basic_subscription")
        .await?;
    for event in stripe.events().await? {
        deliver(&deps, &event).await?;
    }
    assert_eq!(profile(&deps, "user-1").await?.plan.as_str(), "basic");
    let subscription = session["subscription"].as_str().unwrap_or_default();
    stripe
        .call("DELETE", &format!("/v1/subscriptions/{subscription}"), "")
        .await?;

    let (report, seen) = run(&deps).await?;
    assert_eq!((report.drifted, report.repaired), (1, 1), "{seen:?}");
    let p = profile(&deps, "user-1").await?;
    assert_eq!(p.plan.as_str(), "free");
    assert_eq!(p.subscription.map(|s| s.status.as_str()), Some("canceled"));
    Ok(())
}

#[tokio::test]
async fn a_user_that_cannot_be_reconciled_is_counted_and_the_run_goes_on() -> anyhow::Result<()> {
    let stripe = Stripe::start().await?;
    let deps = deps(&stripe, AccessPolicy::default())?;
    for sub in ["user-1", "user-2"] {
        let customer = user(&stripe, &deps, sub).await?;
        stripe
            .subscribe(&customer, sub, "creditgate_basic_subscription")
            .await?;
    }
    // Cognito fails once: the first user's repair stops before Cognito follows.
    deps.lifecycle.directory.fail.set(1);
    let (report, seen) = run(&deps).await?;
    assert_eq!(
        (report.checked, report.failed, report.repaired),
        (2, 1, 1),
        "{seen:?}"
    );
    assert!(
        matches!(&seen[0], (_, Checked::Failed(e)) if e.contains("Cognito")),
        "{seen:?}"
    );
    // The next run completes it.
    let (report, _) = run(&deps).await?;
    assert_eq!(report.failed, 0);
    for sub in ["user-1", "user-2"] {
        assert_eq!(
            deps.lifecycle.directory.user(sub).and_then(|u| u.plan),
            Some("basic".into()),
            "{sub}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn two_runs_at_once_grant_the_allowance_once() -> anyhow::Result<()> {
    let stripe = Stripe::start().await?;
    let deps = deps(&stripe, AccessPolicy::default())?;
    let customer = user(&stripe, &deps, "user-1").await?;
    stripe
        .subscribe(&customer, "user-1", "creditgate_basic_subscription")
        .await?;
    let (a, b) = tokio::join!(run(&deps), run(&deps));
    let (a, b) = (a?.0, b?.0);
    assert_eq!(a.failed + b.failed, 0);
    assert!(a.repaired + b.repaired >= 1, "{a:?} {b:?}");
    let p = profile(&deps, "user-1").await?;
    assert_eq!((p.plan.as_str(), p.allowance.get()), ("basic", 1_000));
    let grants = deps
        .lifecycle
        .store
        .grants
        .lock()
        .map(|g| g.keys().filter(|(s, _)| s == "user-1").count())
        .unwrap_or_default();
    assert_eq!(grants, 1, "one grant for the invoice");
    Ok(())
}

/// The scheduled Lambda (crates/reconcile) runs the same two use cases and answers the counts.
#[tokio::test]
async fn the_scheduled_function_replays_undelivered_events_then_reconciles_and_answers_the_counts()
-> anyhow::Result<()> {
    let stripe = Stripe::start().await?;
    stripe.dead_endpoint().await?;
    let deps = deps(&stripe, AccessPolicy::default())?;
    let customer = user(&stripe, &deps, "user-1").await?;
    user(&stripe, &deps, "user-2").await?;
    stripe
        .subscribe(&customer, "user-1", "creditgate_basic_subscription")
        .await?;
    let invoke = |payload: serde_json::Value| {
        reconcile::handle(
            &deps.lifecycle,
            lambda_runtime::LambdaEvent::new(payload, lambda_runtime::Context::default()),
        )
    };
    let bad = invoke(serde_json::json!({"lookback": 3})).await;
    assert!(
        bad.as_ref()
            .is_err_and(|e| e.to_string().contains("unknown field `lookback`")),
        "{bad:?}"
    );
    assert_eq!(
        profile(&deps, "user-1").await?.plan.as_str(),
        "free",
        "nothing ran"
    );

    let summary = invoke(serde_json::json!({}))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // The undelivered events made user-1 Basic: the users had nothing left to repair.
    assert!(summary.events_replayed > 0, "{summary:?}");
    assert_eq!(
        (
            summary.events_failed,
            summary.checked,
            summary.drifted,
            summary.failed
        ),
        (0, 2, 0, 0),
        "{summary:?}"
    );
    assert_eq!(profile(&deps, "user-1").await?.plan.as_str(), "basic");
    let again = invoke(serde_json::Value::Null)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(
        again,
        reconcile::Summary {
            checked: 2,
            ..reconcile::Summary::default()
        }
    );
    Ok(())
}

/// A run that would not finish in its time stops between pages and answers where to go on;
/// the next run, given that cursor, reconciles the rest without replaying events again. The
/// chain checks every user once.
#[tokio::test]
async fn a_run_short_of_time_answers_a_cursor_and_the_next_run_goes_on_from_it()
-> anyhow::Result<()> {
    let stripe = Stripe::start().await?;
    stripe.dead_endpoint().await?;
    let deps = deps(&stripe, AccessPolicy::default())?;
    for sub in ["user-1", "user-2", "user-3", "user-4"] {
        user(&stripe, &deps, sub).await?;
    }
    let customer = user(&stripe, &deps, "user-5").await?;
    stripe
        .subscribe(&customer, "user-5", "creditgate_basic_subscription")
        .await?;
    let invoke = |payload: serde_json::Value, deadline: u64| {
        let mut context = lambda_runtime::Context::default();
        context.deadline = deadline;
        reconcile::handle(
            &deps.lifecycle,
            lambda_runtime::LambdaEvent::new(payload, context),
        )
    };
    // Less than a page's margin left: one page (two users here), then the cursor.
    let almost_out = u64::try_from(
        (std::time::SystemTime::now() + reconcile::handler::PAGE_MARGIN
            - std::time::Duration::from_secs(1))
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis(),
    )?;
    let first = invoke(serde_json::json!({}), almost_out)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(first.checked, 2, "{first:?}");
    assert!(first.events_replayed > 0, "{first:?}");
    let cursor = first
        .resume
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no cursor: {first:?}"))?;
    let answer = serde_json::to_value(&first)?;
    assert_eq!(answer["resume"], serde_json::json!(cursor), "{answer}");

    let rest = invoke(serde_json::json!({ "cursor": cursor }), 0)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(
        (
            rest.checked,
            rest.events_replayed,
            rest.failed,
            rest.resume.clone()
        ),
        (3, 0, 0, None),
        "{rest:?}"
    );
    let answer = serde_json::to_value(&rest)?;
    assert!(answer.get("resume").is_none(), "{answer}");
    assert_eq!(profile(&deps, "user-5").await?.plan.as_str(), "basic");
    Ok(())
}

/// A pack whose checkout completion never arrived is granted, and a refund of another pack that
/// no event reported is taken back: both through the webhook's own handling, once.
#[tokio::test]
async fn a_pack_never_granted_and_a_refund_never_reported_are_repaired_once() -> anyhow::Result<()>
{
    let stripe = Stripe::start().await?;
    let deps = deps(&stripe, AccessPolicy::default())?;
    let customer = user(&stripe, &deps, "user-1").await?;
    let first = stripe
        .checkout(
            Some(&customer),
            Some("user-1"),
            "creditgate_basic_pack",
            None,
        )
        .await?;
    // The first pack's events arrive; then nothing more does.
    for payload in stripe.events().await? {
        deliver(&deps, &payload).await?;
    }
    assert_eq!(profile(&deps, "user-1").await?.purchased.get(), 1_000);
    stripe.dead_endpoint().await?;
    stripe
        .checkout(
            Some(&customer),
            Some("user-1"),
            "creditgate_basic_pack",
            None,
        )
        .await?;
    let pi = first["payment_intent"].as_str().unwrap_or_default();
    stripe
        .call(
            "POST",
            "/v1/refunds",
            &format!("payment_intent={pi}&amount=250"),
        )
        .await?;
    assert_eq!(profile(&deps, "user-1").await?.purchased.get(), 1_000);

    let (report, seen) = run(&deps).await?;
    assert_eq!(
        report,
        Report {
            checked: 1,
            drifted: 1,
            repaired: 1,
            failed: 0
        },
        "{seen:?}"
    );
    // 1,000 for the first pack less the half refunded (250 of 500), 1,000 for the second.
    assert_eq!(profile(&deps, "user-1").await?.purchased.get(), 1_500);
    let (again, _) = run(&deps).await?;
    assert_eq!((again.drifted, again.failed), (0, 0), "{again:?}");
    assert_eq!(profile(&deps, "user-1").await?.purchased.get(), 1_500);
    Ok(())
}

/// Cognito attributes changed outside creditgate (by hand in the console, by another tool) are
/// found and set back to what the profile says; the user is enabled again.
#[tokio::test]
async fn cognito_attributes_changed_outside_creditgate_are_set_back() -> anyhow::Result<()> {
    let (stripe, deps, _, _) = subscribed("creditgate_basic_subscription").await?;
    for payload in stripe.events().await? {
        deliver(&deps, &payload).await?;
    }
    let entry = |deps: &TestDeps| {
        deps.lifecycle
            .directory
            .users
            .lock()
            .map(|u| u.get("user-1").cloned())
            .ok()
            .flatten()
    };
    assert_eq!(entry(&deps).and_then(|u| u.plan), Some("basic".into()));
    let (quiet, _) = run(&deps).await?;
    assert_eq!(quiet.drifted, 0, "{quiet:?}");

    if let Ok(mut users) = deps.lifecycle.directory.users.lock()
        && let Some(u) = users.get_mut("user-1")
    {
        u.plan = Some("power".into());
        u.enabled = false;
    }
    let (report, seen) = run(&deps).await?;
    assert_eq!((report.drifted, report.repaired), (1, 1), "{seen:?}");
    let u = entry(&deps).ok_or_else(|| anyhow::anyhow!("no Cognito user"))?;
    assert_eq!(
        (u.plan.as_deref(), u.access.as_deref(), u.enabled),
        (Some("basic"), Some("active"), true)
    );
    let (again, _) = run(&deps).await?;
    assert_eq!(again.drifted, 0, "{again:?}");
    Ok(())
}

/// A user creditgate never synced to Cognito (no attributes yet) who is disabled there by hand
/// is enabled again: the enabled state is compared whatever has been synced.
#[tokio::test]
async fn a_never_synced_user_disabled_by_hand_is_enabled_again() -> anyhow::Result<()> {
    let stripe = Stripe::start().await?;
    let deps = deps(&stripe, AccessPolicy::default())?;
    user(&stripe, &deps, "user-1").await?;
    let (quiet, _) = run(&deps).await?;
    assert_eq!(
        quiet.drifted, 0,
        "nothing synced yet is no drift: {quiet:?}"
    );
    if let Ok(mut users) = deps.lifecycle.directory.users.lock()
        && let Some(u) = users.get_mut("user-1")
    {
        u.enabled = false;
    }
    let (report, seen) = run(&deps).await?;
    assert_eq!((report.drifted, report.repaired), (1, 1), "{seen:?}");
    let enabled = deps
        .lifecycle
        .directory
        .users
        .lock()
        .map(|u| u.get("user-1").is_some_and(|u| u.enabled))
        .unwrap_or(false);
    assert!(enabled);
    Ok(())
}

/// A replay that cannot run (Stripe's rate limit outlasting the backoff) does not stop the
/// users' reconciliation: the Lambda answers `replay_failed` and still checks every user.
#[tokio::test]
async fn a_replay_that_cannot_run_still_leaves_the_users_checked() -> anyhow::Result<()> {
    let stripe = Stripe::start().await?;
    let deps = deps(&stripe, AccessPolicy::default())?;
    user(&stripe, &deps, "user-1").await?;
    user(&stripe, &deps, "user-2").await?;
    // As many 429s as the backoff makes attempts: the first Stripe call (the events list) fails.
    stripe
        .call(
            "POST",
            "/_emulator/rate_limit",
            &format!(
                "requests={}",
                adapters::stripe_api::Backoff::DEFAULT.attempts
            ),
        )
        .await?;
    let summary = reconcile::handle(
        &deps.lifecycle,
        lambda_runtime::LambdaEvent::new(serde_json::json!({}), lambda_runtime::Context::default()),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert!(summary.replay_failed, "{summary:?}");
    assert_eq!((summary.checked, summary.failed), (2, 0), "{summary:?}");
    Ok(())
}
