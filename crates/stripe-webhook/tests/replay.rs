//! `events replay`'s use case (`domain::events::replay`) against the real stripe-emulator in
//! process and the in-memory AWS ports: failed, stuck, undelivered and never-sent events.

mod support;

use adapters::unix_now as now;
use support::*;

#[tokio::test]
async fn replay_lists_a_failed_event_then_completes_it_from_stripe_and_leaves_no_failed_record()
-> anyhow::Result<()> {
    use domain::events::{Candidate, Outcome, Reason, ReplayFilter, Replayed, replay};
    let (stripe, deps, _, _) = subscribed("creditgate_basic_subscription").await?;
    let (paid, id) = stripe.event("invoice.paid").await?;
    deps.lifecycle.directory.fail.set(1);
    assert_eq!(deliver(&deps, &paid).await?.0, 500);

    // Another type's filter takes nothing; a dry run names the event and changes nothing.
    let other = ReplayFilter {
        event_type: Some("charge.*".into()),
        ..ReplayFilter::default()
    };
    let none = replay(&deps.lifecycle, &other, false, adapters::unix_now, |_| {}).await?;
    assert!(none.is_empty(), "{none:?}");
    let all = ReplayFilter::default();
    let listed = replay(&deps.lifecycle, &all, true, adapters::unix_now, |_| {}).await?;
    assert!(
        matches!(listed.as_slice(), [Replayed::WouldReplay(Candidate { id: i, event_type, reason: Reason::Failed { attempts: 1, last_error } })] if *i == id && event_type == "invoice.paid" && last_error.contains("Cognito")),
        "{listed:?}"
    );
    let cognito_plan = || deps.lifecycle.directory.user("user-1").and_then(|u| u.plan);
    assert_ne!(
        cognito_plan(),
        Some("basic".into()),
        "Cognito missed the update"
    );

    let mut printed = Vec::new();
    let done = replay(&deps.lifecycle, &all, false, adapters::unix_now, |r| {
        printed.push(r.clone())
    })
    .await?;
    assert_eq!(printed, done, "each event is reported as it is replayed");
    assert!(
        matches!(done.as_slice(), [Replayed::Processed(r, Outcome::Applied(_))] if r.id == id),
        "{done:?}"
    );
    let p = profile(&deps, "user-1").await?;
    assert_eq!((p.plan.as_str(), p.allowance.get()), ("basic", 1_000));
    assert_eq!(cognito_plan(), Some("basic".into()));
    let again = replay(&deps.lifecycle, &all, false, adapters::unix_now, |_| {}).await?;
    assert!(again.is_empty(), "nothing is failed any more: {again:?}");
    Ok(())
}

#[tokio::test]
async fn replay_applies_events_that_never_reached_the_webhook_and_takes_over_a_stuck_record()
-> anyhow::Result<()> {
    use domain::events::{Candidate, Outcome, Reason, ReplayFilter, Replayed, replay};
    use domain::webhook::EventLedger;
    let stripe = Stripe::start().await?;
    // Every delivery fails from here on: the endpoint is dead, so Stripe keeps them pending.
    stripe.dead_endpoint().await?;
    let (stripe, deps, _, _) = subscribed_on(stripe, "creditgate_basic_subscription").await?;
    let undelivered: Vec<String> = stripe
        .call("GET", "/v1/events?delivery_success=false&limit=100", "")
        .await?["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["id"].as_str().map(str::to_owned))
        .collect();
    let (_, paid) = stripe.event("invoice.paid").await?;
    assert!(undelivered.contains(&paid), "{undelivered:?}");
    // A delivery of invoice.paid claimed it and died: its record stays `processing`.
    let t = now();
    deps.lifecycle
        .store
        .claim(&paid, "invoice.paid", t - 120, t - 60)
        .await?;

    let all = ReplayFilter::default();
    let listed = replay(&deps.lifecycle, &all, true, now, |_| {}).await?;
    let mut ids: Vec<&str> = listed
        .iter()
        .filter_map(|r| match r {
            Replayed::WouldReplay(c) => Some(c.id.as_str()),
            _ => None,
        })
        .collect();
    ids.sort_unstable();
    let mut expected: Vec<&str> = undelivered.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(ids, expected, "each undelivered event once: {listed:?}");
    for r in &listed {
        let Replayed::WouldReplay(Candidate { id, reason, .. }) = r else {
            anyhow::bail!("{r:?}");
        };
        if *id == paid {
            assert_eq!(
                *reason,
                Reason::Stuck {
                    attempts: 1,
                    lease_ended: t - 60
                }
            );
        } else {
            assert_eq!(*reason, Reason::Undelivered, "{id}");
        }
    }
    assert_eq!(profile(&deps, "user-1").await?.plan.as_str(), "free");

    let done = replay(&deps.lifecycle, &all, false, now, |_| {}).await?;
    assert_eq!(done.len(), undelivered.len());
    assert!(
        done.iter().all(|r| matches!(
            r,
            Replayed::Processed(_, Outcome::Applied(_) | Outcome::Ignored(_))
        )),
        "{done:?}"
    );
    let p = profile(&deps, "user-1").await?;
    assert_eq!((p.plan.as_str(), p.allowance.get()), ("basic", 1_000));
    assert_eq!(
        deps.lifecycle.directory.user("user-1").and_then(|u| u.plan),
        Some("basic".into())
    );
    // Stripe still lists them as undelivered, but their records are settled: nothing to do.
    let again = replay(&deps.lifecycle, &all, false, now, |_| {}).await?;
    assert!(again.is_empty(), "{again:?}");
    Ok(())
}

#[tokio::test]
async fn events_stripe_never_sent_are_replayed_by_id_or_with_all_events() -> anyhow::Result<()> {
    use domain::events::{Candidate, Outcome, Reason, ReplayFilter, Replayed, replay};
    // No endpoint at all (deleted, or disabled by Stripe): nothing is pending, nothing failed.
    let (stripe, deps, _, _) = subscribed("creditgate_basic_subscription").await?;
    let default = ReplayFilter::default();
    let nothing = replay(&deps.lifecycle, &default, false, now, |_| {}).await?;
    assert!(nothing.is_empty(), "{nothing:?}");

    let (_, paid) = stripe.event("invoice.paid").await?;
    let by_id = ReplayFilter {
        ids: vec![paid.clone()],
        ..ReplayFilter::default()
    };
    let one = replay(&deps.lifecycle, &by_id, false, now, |_| {}).await?;
    assert!(
        matches!(one.as_slice(), [Replayed::Processed(Candidate { id, reason: Reason::Unrecorded, .. }, Outcome::Applied(_))] if *id == paid),
        "{one:?}"
    );
    assert_eq!(profile(&deps, "user-1").await?.allowance.get(), 1_000);
    let again = replay(&deps.lifecycle, &by_id, false, now, |_| {}).await?;
    assert!(again.is_empty(), "settled: {again:?}");
    let missing = ReplayFilter {
        ids: vec!["evt_nosuchevent".into()],
        ..ReplayFilter::default()
    };
    let gone = replay(&deps.lifecycle, &missing, false, now, |_| {}).await?;
    assert!(matches!(gone.as_slice(), [Replayed::Gone(_)]), "{gone:?}");

    let all = ReplayFilter {
        all_events: true,
        ..ReplayFilter::default()
    };
    let rest = replay(&deps.lifecycle, &all, false, now, |_| {}).await?;
    assert!(!rest.is_empty());
    assert!(
        rest.iter().all(|r| matches!(r, Replayed::Processed(c, Outcome::Applied(_) | Outcome::Ignored(_)) if c.reason == Reason::Unrecorded && c.id != paid)),
        "{rest:?}"
    );
    assert_eq!(profile(&deps, "user-1").await?.plan.as_str(), "basic");
    let none = replay(&deps.lifecycle, &all, false, now, |_| {}).await?;
    assert!(none.is_empty(), "{none:?}");
    Ok(())
}
