//! Recovery without luck, end to end: events that never reached the webhook are applied by
//! `creditgate events replay` (read from Stripe's undelivered events), and drift that no event
//! will ever report is repaired by `creditgate reconcile`; both say what they did and a second
//! run finds nothing to do.

use std::process::Output;

use adapters::dynamo::DynamoStore;
use aws_sdk_dynamodb::types::AttributeValue;
use domain::ports::Accounts;
use tests::Stack;

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn s(v: &serde_json::Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

fn succeeded(what: &str, out: &Output) -> anyhow::Result<String> {
    anyhow::ensure!(
        out.status.success(),
        "{what}: {}{}",
        stdout(out),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(stdout(out))
}

#[tokio::test]
async fn undelivered_events_are_replayed_and_drift_no_event_reports_is_reconciled()
-> anyhow::Result<()> {
    let stack = Stack::start("recovery", 3_600).await?;
    let store = DynamoStore::new(stack.dynamodb.clone(), stack.var("TABLE_NAME")?);
    let ada = stack.sign_up("ada@example.com").await?;

    // The webhook's endpoint is replaced by one nobody answers: from now on Stripe cannot
    // deliver anything, and keeps retrying.
    stack.delete_webhook_endpoint().await?;
    stack
        .emulator(
            "POST",
            "/v1/webhook_endpoints",
            "url=http://127.0.0.1:1/dead&enabled_events[]=*",
        )
        .await?;
    succeeded(
        "checkout",
        &stack.creditgate_dev(&["checkout", "ada@example.com", "basic"])?,
    )?;
    let p = store.profile(&ada).await?;
    assert_eq!(p.map(|p| p.plan.to_string()), Some("free".into()));

    let listed = succeeded(
        "replay --dry-run",
        &stack.creditgate(&["events", "replay", "--dry-run"])?,
    )?;
    assert!(
        listed.contains("customer.subscription.created")
            && listed.contains("Stripe could not deliver it and it has no settled record"),
        "{listed}"
    );
    let replayed = succeeded("replay", &stack.creditgate(&["events", "replay"])?)?;
    assert!(replayed.contains("still failing 0"), "{replayed}");
    let p = store
        .profile(&ada)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no profile"))?;
    assert_eq!((p.plan.as_str(), p.allowance.get()), ("basic", 1_000));
    let again = succeeded("replay again", &stack.creditgate(&["events", "replay"])?)?;
    assert!(again.contains("no failed events match"), "{again}");

    // Nothing drifted: reconcile checks and repairs nothing.
    let quiet = succeeded("reconcile", &stack.creditgate(&["reconcile"])?)?;
    assert!(
        quiet.contains("checked 1, drifted 0, repaired 0, failed 0"),
        "{quiet}"
    );

    // No endpoint at all any more: the subscription ends in Stripe, and its events are
    // recorded as done without having been applied (as by a bug since fixed), so no event
    // replay will report the change: reconcile's comparison of the user finds it.
    stack.delete_webhook_endpoint().await?;
    let subscription = p
        .subscription
        .as_ref()
        .map(|s| s.id.to_string())
        .unwrap_or_default();
    stack
        .emulator("DELETE", &format!("/v1/subscriptions/{subscription}"), "")
        .await?;
    let table = stack.var("TABLE_NAME")?;
    for event in stripe_emulator::client::events(
        &stack.var("STRIPE_API_BASE")?,
        &stack.var("STRIPE_SECRET_KEY")?,
    )
    .await?
    {
        let id = event["id"].as_str().unwrap_or_default();
        let written = stack
            .dynamodb
            .put_item()
            .table_name(&table)
            .item("pk", AttributeValue::S(format!("EVENT#{id}")))
            .item("sk", AttributeValue::S("EVENT".into()))
            .item("status", AttributeValue::S("done".into()))
            .item("event_type", AttributeValue::S(s(&event["type"])))
            .item("attempts", AttributeValue::N("1".into()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        if let Err(e) = written
            && !e
                .as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception())
        {
            return Err(e.into());
        }
    }
    let repaired = succeeded("reconcile", &stack.creditgate(&["reconcile"])?)?;
    assert!(
        repaired.contains("no failed events match")
            && repaired.contains(&format!("{ada}: repaired: was plan basic"))
            && repaired.contains("checked 1, drifted 1, repaired 1, failed 0"),
        "{repaired}"
    );
    let p = store
        .profile(&ada)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no profile"))?;
    assert_eq!(p.plan.as_str(), "free");
    let quiet = succeeded("reconcile again", &stack.creditgate(&["reconcile"])?)?;
    assert!(quiet.contains("drifted 0"), "{quiet}");
    Ok(())
}
