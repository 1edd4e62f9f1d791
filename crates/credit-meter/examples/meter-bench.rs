//! Figures for `scripts/bench` (never a test): the credit-meter handler, in process, against the
//! local stack's DynamoDB (moto): DynamoDB requests per metered call (cold, warm, dipping into
//! purchased), metered calls per second, and the handler's own CPU time per call.
//!
//! Env: the local stack's (`.local/env`: `AWS_ENDPOINT_URL`, `TABLE_NAME`, ...) plus
//! `BENCH_API_KEY` and `BENCH_SUB` for a signed-up user whose key was issued.

use std::time::Instant;

use adapters::aws::RequestCounter;
use adapters::dynamo::DynamoStore;
use anyhow::Context;
use aws_sdk_dynamodb::types::AttributeValue;
use credit_meter::{Deps, handle};
use lambda_http::Body;

fn cpu_seconds() -> anyhow::Result<f64> {
    // utime + stime of this process, in clock ticks (USER_HZ = 100 on Linux).
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let after_comm = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("stat")?;
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let utime: f64 = fields.get(11).context("utime")?.parse()?;
    let stime: f64 = fields.get(12).context("stime")?.parse()?;
    Ok((utime + stime) / 100.0)
}

async fn call(deps: &Deps<DynamoStore>, key: &str) -> anyhow::Result<u16> {
    let request = lambda_http::http::Request::builder()
        .method("POST")
        .uri("/v1/meter")
        .header("x-api-key", key)
        .body(Body::Empty)?;
    Ok(handle(deps, request).await?.status().as_u16())
}

async fn set_balances(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    sub: &str,
    allowance: u64,
    purchased: u64,
) -> anyhow::Result<()> {
    client
        .update_item()
        .table_name(table)
        .key("pk", AttributeValue::S(format!("USER#{sub}")))
        .key("sk", AttributeValue::S("PROFILE".into()))
        .update_expression("SET allowance = :a, purchased = :p")
        .expression_attribute_values(":a", AttributeValue::N(allowance.to_string()))
        .expression_attribute_values(":p", AttributeValue::N(purchased.to_string()))
        .send()
        .await?;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let key = std::env::var("BENCH_API_KEY").context("BENCH_API_KEY")?;
    let sub = std::env::var("BENCH_SUB").context("BENCH_SUB")?;
    let table = std::env::var("TABLE_NAME").context("TABLE_NAME")?;
    let calls: u32 = std::env::var("BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);

    let aws = adapters::aws::sdk_config().await;
    let counter = RequestCounter::default();
    let conf = aws_sdk_dynamodb::config::Builder::from(&aws)
        .interceptor(counter.clone())
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(conf);
    let admin = aws_sdk_dynamodb::Client::new(&aws);
    let deps = Deps::new(DynamoStore::new(client, table.clone()));

    set_balances(&admin, &table, &sub, 1_000_000, 0).await?;
    let before = counter.get();
    anyhow::ensure!(
        call(&deps, &key).await? == 200,
        "the first call was refused"
    );
    let cold = counter.get() - before;
    let before = counter.get();
    call(&deps, &key).await?;
    let warm = counter.get() - before;

    set_balances(&admin, &table, &sub, 0, 1_000_000).await?;
    let before = counter.get();
    call(&deps, &key).await?;
    let dip = counter.get() - before;

    set_balances(&admin, &table, &sub, 1_000_000, 0).await?;
    let cpu_before = cpu_seconds()?;
    let started = Instant::now();
    let before = counter.get();
    for _ in 0..calls {
        let status = call(&deps, &key).await?;
        anyhow::ensure!(status == 200, "a metered call answered {status}");
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds()? - cpu_before;
    let requests = counter.get() - before;

    println!(
        "\ncredit-meter handler in process against the local stack (moto), {calls} sequential warm calls"
    );
    println!(
        "DynamoDB requests per metered call: cold {cold}, warm {warm}, dipping into purchased {dip} (targets: warm 1, cold 2; the seed made 2 always)"
    );
    println!(
        "DynamoDB requests per call over the run: {:.3}",
        requests as f64 / f64::from(calls)
    );
    println!(
        "metered calls per second: {:.0} (wall {:.2} s; moto, serialised, is most of it)",
        f64::from(calls) / wall,
        wall
    );
    println!(
        "handler CPU time per call (this process: handler + SDK + HTTP client): {:.0} µs",
        cpu / f64::from(calls) * 1e6
    );
    Ok(())
}
