//! The credit-manager state machine itself, run by moto's Step Functions (not re-implemented
//! in Rust): grants each period, continues as a new execution, cannot fork, and stops when
//! superseded.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use tests::{Stack, eventually};

const SUB: &str = "7c1d2e3f-0000-4000-8000-00000000c0de";

fn key() -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".into(), AttributeValue::S(format!("USER#{SUB}"))),
        ("sk".into(), AttributeValue::S("PROFILE".into())),
    ])
}

async fn profile(stack: &Stack) -> anyhow::Result<HashMap<String, AttributeValue>> {
    stack
        .dynamodb
        .get_item()
        .table_name(stack.var("TABLE_NAME")?)
        .set_key(Some(key()))
        .consistent_read(true)
        .send()
        .await?
        .item
        .ok_or_else(|| anyhow::anyhow!("no profile"))
}

fn n(item: &HashMap<String, AttributeValue>, name: &str) -> Option<u64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn input(generation: u64, plan: &str, cycles_per_execution: u64) -> String {
    serde_json::json!({
        "sub": SUB,
        "generation": generation,
        "plan": plan,
        "credits": 50,
        "period_seconds": 1,
        "cycles_per_execution": cycles_per_execution,
        "execution_cycles": 0,
        "cycle": 0,
        "wait_first": false
    })
    .to_string()
}

async fn start(stack: &Stack, name: &str, input: String) -> anyhow::Result<()> {
    let result = stack
        .sfn
        .start_execution()
        .state_machine_arn(stack.var("CREDIT_MANAGER_ARN")?)
        .name(name)
        .input(input)
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_execution_already_exists()) =>
        {
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_credit_manager_grants_each_period_continues_as_new_cannot_fork_and_stops_when_superseded()
-> anyhow::Result<()> {
    let stack = Stack::start("manager", 3600).await?;
    let table = stack.var("TABLE_NAME")?;
    stack
        .dynamodb
        .put_item()
        .table_name(&table)
        .set_item(Some(HashMap::from([
            ("pk".into(), AttributeValue::S(format!("USER#{SUB}"))),
            ("sk".into(), AttributeValue::S("PROFILE".into())),
            ("plan_id".into(), AttributeValue::S("free".into())),
            ("manager_generation".into(), AttributeValue::N("1".into())),
            ("allowance".into(), AttributeValue::N("0".into())),
        ])))
        .send()
        .await?;

    // Two cycles per execution, so continue-as-new happens within seconds.
    let first = format!("{SUB}-g1-c0");
    start(&stack, &first, input(1, "free", 2)).await?;
    start(&stack, &first, input(1, "free", 2)).await?; // a second start: refused or the same run

    let continued = format!("{SUB}-g1-c2");
    eventually(
        Duration::from_secs(40),
        "a continuation execution granting cycle 2+",
        || async {
            let names = stack.executions().await?;
            let p = profile(&stack).await?;
            Ok((names.iter().any(|(name, _)| name == &continued)
                && n(&p, "manager_cycle").unwrap_or(0) >= 2)
                .then_some(()))
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", stack.logs()))?;

    let names = stack.executions().await?;
    assert_eq!(
        names.iter().filter(|(name, _)| name == &first).count(),
        1,
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .all(|(name, _)| name.starts_with(&format!("{SUB}-g1-c"))),
        "{names:?}"
    );
    assert_eq!(n(&profile(&stack).await?, "allowance"), Some(50));

    // A paid plan starts: the generation moves on, so the running manager may not grant again.
    stack
        .dynamodb
        .update_item()
        .table_name(&table)
        .set_key(Some(key()))
        .update_expression(
            "SET manager_generation = :g, plan_id = :plan, allowance = :a REMOVE manager_cycle",
        )
        .expression_attribute_values(":g", AttributeValue::N("2".into()))
        .expression_attribute_values(":plan", AttributeValue::S("basic".into()))
        .expression_attribute_values(":a", AttributeValue::N("1000".into()))
        .send()
        .await?;
    eventually(
        Duration::from_secs(20),
        "every generation-1 execution to stop",
        || async {
            let names = stack.executions().await?;
            Ok(names
                .iter()
                .all(|(_, status)| status != "RUNNING")
                .then_some(()))
        },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let p = profile(&stack).await?;
    assert_eq!(
        n(&p, "allowance"),
        Some(1000),
        "a superseded manager granted Free credits"
    );

    // A stale run (old generation) started late can never grant either.
    start(&stack, &format!("{SUB}-g1-c90"), input(1, "free", 2)).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(n(&profile(&stack).await?, "allowance"), Some(1000));
    Ok(())
}
