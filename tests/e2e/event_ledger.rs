//! The webhook event ledger's conditional writes against moto's DynamoDB: submitted twice,
//! submitted concurrently, failed then retried, abandoned then taken over.

use std::sync::Arc;

use adapters::dynamo::DynamoStore;
use adapters::fakes::InMemoryAccounts;
use aws_sdk_dynamodb::types::AttributeValue;
use domain::webhook::{Claim, EventLedger, Finished};
use tests::Stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_is_owned_by_exactly_one_delivery_and_applied_once() -> anyhow::Result<()> {
    let stack = Stack::start("ledger", 3600).await?;
    let ledger = Arc::new(DynamoStore::new(
        stack.dynamodb.clone(),
        stack.var("TABLE_NAME")?,
    ));
    let table = stack.var("TABLE_NAME")?;
    contract(ledger, || async {
        stack
            .dynamodb
            .put_item()
            .table_name(&table)
            .item("pk", AttributeValue::S("EVENT#evt_leaseless".into()))
            .item("sk", AttributeValue::S("EVENT".into()))
            .item("status", AttributeValue::S("processing".into()))
            .item("event_type", AttributeValue::S("invoice.paid".into()))
            .item("attempts", AttributeValue::N("1".into()))
            .send()
            .await?;
        Ok(())
    })
    .await
}

/// The same contract for the in-memory ledger the handler tests use, so it cannot drift from
/// DynamoDB's conditional writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_memory_ledger_keeps_the_same_contract() -> anyhow::Result<()> {
    let ledger = Arc::new(InMemoryAccounts::default());
    let fake = ledger.clone();
    contract(ledger, || async move {
        if let Ok(mut events) = fake.events.lock() {
            // No lease: the fake's 0, as a missing `lease_until` on DynamoDB.
            events.insert(
                "evt_leaseless".into(),
                ("processing".into(), 0, 1, None, "invoice.paid".into()),
            );
        }
        Ok(())
    })
    .await
}

/// Submitted twice, submitted concurrently, failed then retried, abandoned then taken over, a
/// lapsed holder back late, a record without a lease. `leaseless` writes `evt_leaseless` as a
/// `processing` record of attempt 1 with no lease.
async fn contract<L, F, Fut>(ledger: Arc<L>, leaseless: F) -> anyhow::Result<()>
where
    L: EventLedger + Send + Sync + 'static,
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let now = 1_800_000_000;

    // Ten concurrent deliveries of one event: exactly one owns it.
    let claims = futures(&ledger, "evt_concurrent", now).await?;
    assert_eq!(
        claims
            .iter()
            .filter(|c| matches!(c, Claim::Owned { attempt: 1 }))
            .count(),
        1,
        "{claims:?}"
    );
    assert_eq!(
        claims.iter().filter(|c| **c == Claim::InProgress).count(),
        9,
        "{claims:?}"
    );

    // Done: a redelivery is a no-op.
    ledger.finish("evt_concurrent", 1, Finished::Done).await?;
    assert_eq!(
        ledger
            .claim("evt_concurrent", "invoice.paid", now + 1, now + 61)
            .await?,
        Claim::AlreadyDone
    );

    // Failed: the retry takes it over, counting the attempt.
    assert_eq!(
        ledger
            .claim("evt_failing", "invoice.paid", now, now + 60)
            .await?,
        Claim::Owned { attempt: 1 }
    );
    ledger.fail("evt_failing", 1, "DynamoDB throttled").await?;
    assert_eq!(
        ledger
            .claim("evt_failing", "invoice.paid", now + 5, now + 65)
            .await?,
        Claim::Owned { attempt: 2 }
    );

    // Abandoned (the Lambda died mid-way): blocked while the lease lives, taken over after.
    assert_eq!(
        ledger
            .claim("evt_abandoned", "invoice.paid", now, now + 60)
            .await?,
        Claim::Owned { attempt: 1 }
    );
    assert_eq!(
        ledger
            .claim("evt_abandoned", "invoice.paid", now + 30, now + 90)
            .await?,
        Claim::InProgress
    );
    assert_eq!(
        ledger
            .claim("evt_abandoned", "invoice.paid", now + 61, now + 121)
            .await?,
        Claim::Owned { attempt: 2 }
    );

    // The first holder, whose lease lapsed, comes back late: it cannot settle the record the
    // second holds; the second's settle stands, and a later failure of the first changes nothing.
    assert!(!ledger.finish("evt_abandoned", 1, Finished::Done).await?);
    assert!(ledger.finish("evt_abandoned", 2, Finished::Done).await?);
    assert!(!ledger.fail("evt_abandoned", 1, "late").await?);
    assert_eq!(
        ledger
            .claim("evt_abandoned", "invoice.paid", now + 200, now + 260)
            .await?,
        Claim::AlreadyDone
    );
    assert!(
        ledger
            .unsettled_events(now + 200)
            .await?
            .iter()
            .all(|e| e.id != "evt_abandoned")
    );

    // A `processing` record without a lease (written by hand or an older version) is listed
    // as stuck and can be taken over, never blocked for good.
    leaseless().await?;
    assert!(
        ledger
            .unsettled_events(now)
            .await?
            .iter()
            .any(|e| e.id == "evt_leaseless" && e.lease_ended.is_some())
    );
    assert_eq!(
        ledger
            .claim("evt_leaseless", "invoice.paid", now, now + 60)
            .await?,
        Claim::Owned { attempt: 2 }
    );
    Ok(())
}

async fn futures<L: EventLedger + Send + Sync + 'static>(
    ledger: &Arc<L>,
    event: &'static str,
    now: i64,
) -> anyhow::Result<Vec<Claim>> {
    let handles: Vec<_> = (0..10)
        .map(|_| {
            let ledger = ledger.clone();
            tokio::spawn(async move { ledger.claim(event, "invoice.paid", now, now + 60).await })
        })
        .collect();
    let mut claims = Vec::new();
    for h in handles {
        claims.push(h.await??);
    }
    Ok(claims)
}
