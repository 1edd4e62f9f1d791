use stripe_product::price::ListPrice;
use tests::{Stack, workspace_root};

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The plan and sale mode that `plans sync` wrote on a price (what the webhook and reconcile
/// read once its lookup key has moved on).
async fn price_names(stack: &Stack, price: &str) -> anyhow::Result<(String, String)> {
    let price = stripe_product::price::RetrievePrice::new(price)
        .send(&stack.stripe)
        .await?;
    let metadata = price.metadata;
    let get = |k: &str| metadata.get(k).cloned().unwrap_or_default();
    Ok((get("creditgate_plan"), get("creditgate_mode")))
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
    assert_eq!(
        price_names(&stack, &basic_sub[0].0).await?,
        ("basic".to_owned(), "subscription".to_owned())
    );
    assert!(
        price_ids(&stack, "creditgate_free_subscription")
            .await?
            .is_empty()
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
    // It counts what it would do (it once listed the changes, then said all was in sync).
    assert!(
        text(&dry).contains("change(s) would be made") && !text(&dry).contains("nothing to change"),
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
    assert_eq!(
        price_names(&stack, &moved[0].0).await?,
        ("basic".to_owned(), "subscription".to_owned())
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
