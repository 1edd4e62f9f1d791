//! Handler tests: the real stripe-emulator in process, in-memory DynamoDB/Cognito/Step Functions.
//!
//! Deliveries: redelivered, concurrent and failed events.

mod support;

use support::handler::*;
use support::*;

#[tokio::test]
async fn a_redelivered_event_answers_200_with_no_second_effect() -> anyhow::Result<()> {
    let (stripe, deps, _, _) = subscribed("creditgate_basic_subscription").await?;
    let events = stripe.events().await?;
    deliver_all(&deps, &events).await?;
    let before = profile(&deps, "user-1").await?;
    for e in &events {
        let (status, body) = deliver(&deps, e).await?;
        assert_eq!(
            (status, &body["duplicate"]),
            (200, &serde_json::json!(true))
        );
    }
    assert_eq!(profile(&deps, "user-1").await?, before);
    Ok(())
}

#[tokio::test]
async fn concurrent_deliveries_of_one_invoice_paid_grant_once() -> anyhow::Result<()> {
    let (stripe, deps, _, _) = subscribed("creditgate_basic_subscription").await?;
    let events = stripe.events().await?;
    let paid = events
        .iter()
        .find(|e| e.contains("\"invoice.paid\""))
        .cloned()
        .unwrap_or_default();
    let results = futures_join(&deps, &paid, 10).await?;
    assert!(results.contains(&200), "{results:?}");
    assert!(
        results.iter().all(|s| *s == 200 || *s == 409),
        "{results:?}"
    );
    let grants = deps
        .lifecycle
        .store
        .grants
        .lock()
        .map(|g| g.len())
        .unwrap_or(0);
    assert_eq!(grants, 1, "one grant for the invoice");
    // Spend, then deliver again: the allowance is not reset a second time.
    {
        let mut profiles = deps
            .lifecycle
            .store
            .profiles
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        if let Some(p) = profiles.get_mut("user-1") {
            p.allowance = domain::ids::Credits::new(10);
        }
    }
    deliver(&deps, &paid).await?;
    assert_eq!(profile(&deps, "user-1").await?.allowance.get(), 10);
    Ok(())
}

async fn futures_join(deps: &TestDeps, payload: &str, n: usize) -> anyhow::Result<Vec<u16>> {
    let mut set = Vec::new();
    for _ in 0..n {
        set.push(deliver(deps, payload));
    }
    let mut statuses = Vec::new();
    // Polled together on one task: the handler's awaits interleave.
    let results = join_all(set).await;
    for r in results {
        statuses.push(r?.0);
    }
    Ok(statuses)
}

async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

#[tokio::test]
async fn a_failed_event_is_marked_failed_answers_500_and_the_retry_completes_it()
-> anyhow::Result<()> {
    let (stripe, deps, _, _) = subscribed("creditgate_basic_subscription").await?;
    let events = stripe.events().await?;
    let paid = events
        .iter()
        .find(|e| e.contains("\"invoice.paid\""))
        .cloned()
        .unwrap_or_default();
    deps.lifecycle.directory.fail.set(1);
    let (status, body) = deliver(&deps, &paid).await?;
    assert_eq!(
        (status, body["error"].as_str()),
        (500, Some("internal error"))
    );
    let id = serde_json::from_str::<serde_json::Value>(&paid)?["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let record = deps
        .lifecycle
        .store
        .events
        .lock()
        .ok()
        .and_then(|e| e.get(&id).cloned());
    let (state, _, _, error, ..) = record.ok_or_else(|| anyhow::anyhow!("no record"))?;
    assert_eq!(state, "failed");
    assert!(error.unwrap_or_default().contains("Cognito"));
    let (status, _) = deliver(&deps, &paid).await?;
    assert_eq!(status, 200);
    let p = profile(&deps, "user-1").await?;
    assert_eq!((p.plan.as_str(), p.allowance.get()), ("basic", 1_000));
    assert_eq!(
        deps.lifecycle.directory.user("user-1").and_then(|u| u.plan),
        Some("basic".into())
    );
    Ok(())
}
