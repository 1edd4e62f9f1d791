//! Handler tests: the real stripe-emulator in process, in-memory DynamoDB/Cognito/Step Functions.
//!
//! Subscriptions: a purchase, renewals, a failed renewal's grace and recovery, a trial.

mod support;

use domain::facts::SubStatus;
use domain::lifecycle::{AccessPolicy, LapseMode};
use domain::profile::Access;
use support::handler::*;
use support::*;

#[tokio::test]
async fn buying_basic_moves_the_user_to_basic_with_1000_credits_and_stops_the_free_manager()
-> anyhow::Result<()> {
    let (stripe, deps, _, session) = subscribed("creditgate_basic_subscription").await?;
    deliver_all(&deps, &stripe.events().await?).await?;
    let p = profile(&deps, "user-1").await?;
    assert_eq!(p.plan.as_str(), "basic");
    assert_eq!(p.allowance.get(), 1_000);
    assert_eq!(p.access, Access::Active);
    assert_eq!(
        p.manager_generation, 2,
        "bumped: the free manager's grants stop"
    );
    let sub = p
        .subscription
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no subscription"))?;
    assert_eq!(Some(sub.id.as_str()), session["subscription"].as_str());
    assert_eq!(sub.status, SubStatus::Active);
    let user = deps.lifecycle.directory.user("user-1");
    assert_eq!(user.and_then(|u| u.plan), Some("basic".to_owned()));
    let syncs = deps
        .lifecycle
        .directory
        .syncs
        .load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        syncs, 1,
        "Cognito is called when plan or access changes, not for every event"
    );
    Ok(())
}

#[tokio::test]
async fn a_renewal_resets_the_allowance_once_and_cancel_at_period_end_lands_on_free()
-> anyhow::Result<()> {
    let (stripe, deps, _, session) = subscribed("creditgate_basic_subscription").await?;
    deliver_all(&deps, &stripe.events().await?).await?;
    {
        let mut profiles = deps
            .lifecycle
            .store
            .profiles
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        if let Some(p) = profiles.get_mut("user-1") {
            p.allowance = domain::ids::Credits::new(3);
        }
    }
    let seen = stripe.events().await?.len();
    stripe.advance_days(31).await?;
    deliver_all(&deps, &stripe.events().await?[seen..]).await?;
    assert_eq!(profile(&deps, "user-1").await?.allowance.get(), 1_000);

    let sub = session["subscription"].as_str().unwrap_or_default();
    let seen = stripe.events().await?.len();
    stripe
        .call(
            "POST",
            &format!("/v1/subscriptions/{sub}"),
            "cancel_at_period_end=true",
        )
        .await?;
    stripe.advance_days(1).await?;
    deliver_all(&deps, &stripe.events().await?[seen..]).await?;
    let p = profile(&deps, "user-1").await?;
    assert_eq!(p.plan.as_str(), "basic", "still paid until the period ends");
    assert!(
        p.subscription
            .as_ref()
            .is_some_and(|s| s.cancel_at_period_end)
    );

    let seen = stripe.events().await?.len();
    stripe.advance_days(31).await?;
    deliver_all(&deps, &stripe.events().await?[seen..]).await?;
    let p = profile(&deps, "user-1").await?;
    assert_eq!(p.plan.as_str(), "free");
    assert_eq!(p.manager_generation, 3, "the free manager restarts");
    let executions = deps
        .lifecycle
        .scheduler
        .executions
        .lock()
        .map(|e| e.keys().cloned().collect::<Vec<_>>())
        .unwrap_or_default();
    assert!(
        executions.contains(&"user-1-g3-c0".to_owned()),
        "{executions:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_failed_renewal_keeps_access_for_the_grace_then_lapses_and_recovery_restores_it()
-> anyhow::Result<()> {
    for lapse in [LapseMode::Downgrade, LapseMode::Disable] {
        let stripe = Stripe::start().await?;
        let deps = deps(
            &stripe,
            AccessPolicy {
                grace_seconds: 7 * 86_400,
                lapse,
            },
        )?;
        let customer = stripe.customer("ada@example.com").await?;
        sign_up(&deps, "user-1", "ada@example.com", &customer).await?;
        stripe
            .subscribe(&customer, "user-1", "creditgate_basic_subscription")
            .await?;
        stripe
            .call(
                "POST",
                &format!("/_emulator/customers/{customer}/payment_method"),
                "failing=true",
            )
            .await?;
        stripe.advance_days(31).await?;
        deliver_all(&deps, &stripe.events().await?).await?;
        let p = profile(&deps, "user-1").await?;
        assert_eq!(
            p.subscription.as_ref().map(|s| s.status),
            Some(SubStatus::PastDue)
        );
        assert_eq!(
            (p.plan.as_str(), p.access),
            ("basic", Access::Active),
            "grace"
        );

        // Retries at +3 and +8 days fail; past the 7-day grace the user lapses.
        let seen = stripe.events().await?.len();
        stripe.advance_days(9).await?;
        deliver_all(&deps, &stripe.events().await?[seen..]).await?;
        let p = profile(&deps, "user-1").await?;
        let user = deps.lifecycle.directory.user("user-1");
        match lapse {
            LapseMode::Downgrade => {
                assert_eq!((p.plan.as_str(), p.access), ("free", Access::Active));
                assert_eq!(user.map(|u| u.enabled), Some(true));
            }
            LapseMode::Disable => {
                assert_eq!((p.plan.as_str(), p.access), ("basic", Access::Disabled));
                assert_eq!(user.map(|u| u.enabled), Some(false));
            }
        }

        // The card works again; the next retry pays: access back, allowance reset.
        stripe
            .call(
                "POST",
                &format!("/_emulator/customers/{customer}/payment_method"),
                "failing=false",
            )
            .await?;
        let seen = stripe.events().await?.len();
        stripe.advance_days(7).await?;
        deliver_all(&deps, &stripe.events().await?[seen..]).await?;
        let p = profile(&deps, "user-1").await?;
        assert_eq!(
            p.subscription.as_ref().map(|s| s.status),
            Some(SubStatus::Active)
        );
        assert_eq!(
            (p.plan.as_str(), p.access, p.allowance.get()),
            ("basic", Access::Active, 1_000)
        );
        assert_eq!(
            deps.lifecycle.directory.user("user-1").map(|u| u.enabled),
            Some(true)
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_trial_gives_the_plan_and_its_credits_and_trial_will_end_is_noted() -> anyhow::Result<()>
{
    let stripe = Stripe::start().await?;
    let deps = deps(&stripe, AccessPolicy::default())?;
    let customer = stripe.customer("ada@example.com").await?;
    sign_up(&deps, "user-1", "ada@example.com", &customer).await?;
    let price = stripe.price("creditgate_basic_subscription").await?;
    let session = stripe
        .call(
            "POST",
            "/v1/checkout/sessions",
            &format!("mode=subscription&customer={customer}&client_reference_id=user-1&line_items[0][price]={price}&subscription_data[trial_period_days]=7&success_url=https://example.com/ok"),
        )
        .await?;
    let id = session["id"].as_str().unwrap_or_default();
    stripe
        .call(
            "POST",
            &format!("/_emulator/checkout/sessions/{id}/complete"),
            "",
        )
        .await?;
    stripe.advance_days(5).await?;
    let events = stripe.events().await?;
    assert!(
        events
            .iter()
            .any(|e| e.contains("\"customer.subscription.trial_will_end\""))
    );
    deliver_all(&deps, &events).await?;
    let p = profile(&deps, "user-1").await?;
    assert_eq!(
        p.subscription.as_ref().map(|s| s.status),
        Some(SubStatus::Trialing)
    );
    assert_eq!((p.plan.as_str(), p.allowance.get()), ("basic", 1_000));
    Ok(())
}
