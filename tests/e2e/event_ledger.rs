//! The webhook event ledger's conditional writes against moto's DynamoDB: submitted twice,
//! submitted concurrently, failed then retried, abandoned then taken over.

use adapters::dynamo::DynamoStore;
use domain::webhook::{Claim, EventLedger, Finished};
use tests::Stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_is_owned_by_exactly_one_delivery_and_applied_once() -> anyhow::Result<()> {
    let stack = Stack::start("ledger", 3600).await?;
    let ledger = DynamoStore::new(stack.dynamodb.clone(), stack.var("TABLE_NAME")?);
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
    ledger.finish("evt_concurrent", Finished::Done).await?;
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
    ledger.fail("evt_failing", "DynamoDB throttled").await?;
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
    Ok(())
}

async fn futures(
    ledger: &DynamoStore,
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
