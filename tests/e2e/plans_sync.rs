use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use stripe_product::price::ListPrice;
use tests::{Stack, workspace_root};

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn plan_item(stack: &Stack, plan: &str) -> anyhow::Result<HashMap<String, AttributeValue>> {
    stack
        .dynamodb
        .get_item()
        .table_name(stack.var("TABLE_NAME")?)
        .key("pk", AttributeValue::S(format!("PLAN#{plan}")))
        .key("sk", AttributeValue::S("PLAN".into()))
        .consistent_read(true)
        .send()
        .await?
        .item
        .ok_or_else(|| anyhow::anyhow!("no PLAN#{plan} item"))
}

async fn price_ids(stack: &Stack, lookup_key: &str) -> anyhow::Result<Vec<(String, Option<i64>)>> {
    let prices = ListPrice::new()
        .lookup_keys(vec![lookup_key.to_owned()])
        .send(&stack.stripe)
        .await?;
    Ok(prices
        .data
        .into_iter()
        .map(|p| (p.id.to_string(), p.unit_amount))
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_sync_converges_says_so_on_a_rerun_moves_lookup_keys_and_rejects_bad_input()
-> anyhow::Result<()> {
    // scripts/dev has already run one sync.
    let stack = Stack::start("plans", 3600).await?;
    let basic_sub = price_ids(&stack, "creditgate_basic_subscription").await?;
    assert_eq!(basic_sub.len(), 1);
    assert_eq!(basic_sub[0].1, Some(500));
    let item = plan_item(&stack, "basic").await?;
    assert_eq!(
        item.get("subscription_price_id")
            .and_then(|v| v.as_s().ok()),
        Some(&basic_sub[0].0)
    );
    assert_eq!(
        item.get("credits")
            .and_then(|v| v.as_n().ok())
            .map(String::as_str),
        Some("1000")
    );
    assert!(
        !plan_item(&stack, "free")
            .await?
            .contains_key("subscription_price_id")
    );

    // A second run changes nothing and says so.
    let again = stack.creditgate(&["plans", "sync"])?;
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        text(&again).contains("nothing to change"),
        "{}",
        text(&again)
    );

    // A price change: the dry run only tells...
    let dearer = std::fs::read_to_string(workspace_root().join("plans.json"))?
        .replace("\"amount\": 500,", "\"amount\": 700,");
    let path = stack.state_dir.join("plans-dearer.json");
    std::fs::write(&path, dearer)?;
    let path = path.to_string_lossy().into_owned();
    let dry = stack.creditgate(&["plans", "sync", "--plans", &path, "--dry-run"])?;
    assert!(dry.status.success(), "{}", text(&dry));
    assert!(
        text(&dry).contains("would create price creditgate_basic_subscription"),
        "{}",
        text(&dry)
    );
    assert_eq!(
        price_ids(&stack, "creditgate_basic_subscription").await?,
        basic_sub
    );

    // ...the real run moves the lookup key to a new price and deactivates the old one.
    let real = stack.creditgate(&["plans", "sync", "--plans", &path])?;
    assert!(real.status.success(), "{}", text(&real));
    let moved = price_ids(&stack, "creditgate_basic_subscription").await?;
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].1, Some(700));
    assert_ne!(moved[0].0, basic_sub[0].0);
    let old = stripe_product::price::RetrievePrice::new(basic_sub[0].0.as_str())
        .send(&stack.stripe)
        .await?;
    assert!(!old.active);
    let item = plan_item(&stack, "basic").await?;
    assert_eq!(
        item.get("subscription_price_id")
            .and_then(|v| v.as_s().ok()),
        Some(&moved[0].0)
    );
    let settled = stack.creditgate(&["plans", "sync", "--plans", &path])?;
    assert!(
        text(&settled).contains("nothing to change"),
        "{}",
        text(&settled)
    );

    // Bad input: a clear message and a non-zero exit.
    let bad = stack.state_dir.join("plans-bad.json");
    std::fs::write(
        &bad,
        r#"{"plans":[{"id":"free","name":"Free","credits":50,"period":"week","colour":"red"}]}"#,
    )?;
    let out = stack.creditgate(&["plans", "sync", "--plans", &bad.to_string_lossy()])?;
    assert!(!out.status.success());
    assert!(
        text(&out).contains("plan free: field `colour`"),
        "{}",
        text(&out)
    );

    let missing = stack.creditgate(&["plans", "sync", "--plans", "/nonexistent/plans.json"])?;
    assert!(!missing.status.success());
    assert!(
        text(&missing).contains("read the catalogue"),
        "{}",
        text(&missing)
    );

    let unreachable = stack.creditgate_with(
        &["plans", "sync"],
        &[("STRIPE_API_BASE", "http://127.0.0.1:9/")],
    )?;
    assert!(!unreachable.status.success());
    assert!(
        text(&unreachable).contains("read the catalogue from Stripe"),
        "{}",
        text(&unreachable)
    );
    Ok(())
}
