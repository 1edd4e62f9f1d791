//! The emulator through async-stripe's own client: every response below was parsed by
//! async-stripe's generated types, which is the proof that the emulator's objects have the
//! current API shape. Raw HTTP checks cover what the typed client cannot send.

use std::collections::HashMap;

use stripe::{Client, ClientBuilder, StripeError, StripeRequest};
use stripe_core::customer::{CreateCustomer, ListCustomer, RetrieveCustomer};
use stripe_product::price::{
    CreatePrice, CreatePriceRecurring, CreatePriceRecurringInterval, ListPrice, UpdatePrice,
};
use stripe_product::product::{CreateProduct, RetrieveProduct, UpdateProduct};
use stripe_shared::{PriceType, RecurringInterval};
use stripe_types::Currency;

mod common;

use common::request as raw;

const KEY: &str = "sk_test_emulator_tests";

async fn start() -> anyhow::Result<(String, Client)> {
    let listener = stripe_emulator::bind(0).await?;
    let base = format!("http://{}/", listener.local_addr()?);
    tokio::spawn(stripe_emulator::serve(
        listener,
        stripe_emulator::Emulator::new(KEY),
    ));
    let client = ClientBuilder::new(KEY).url(base.clone()).build()?;
    Ok((base, client))
}

fn idempotent(key: &str) -> stripe::RequestStrategy {
    match stripe::IdempotencyKey::new(key) {
        Ok(k) => stripe::RequestStrategy::Idempotent(k),
        Err(e) => panic!("{e}"),
    }
}

fn stripe_error(err: StripeError) -> (u16, Option<String>, String) {
    match err {
        StripeError::Stripe(api, status) => (
            status,
            api.code.map(|c| c.to_string()),
            api.message.unwrap_or_default(),
        ),
        other => panic!("expected a Stripe API error, got {other:?}"),
    }
}

#[tokio::test]
async fn customers_round_trip_through_async_stripe_types() -> anyhow::Result<()> {
    let (_, client) = start().await?;
    let created = CreateCustomer::new()
        .email("ada@example.com")
        .metadata(HashMap::from([(
            "cognito_sub".to_owned(),
            "sub-1".to_owned(),
        )]))
        .send(&client)
        .await?;
    assert!(created.id.as_str().starts_with("cus_"));
    assert_eq!(created.email.as_deref(), Some("ada@example.com"));
    assert_eq!(
        created
            .metadata
            .as_ref()
            .and_then(|m| m.get("cognito_sub"))
            .map(String::as_str),
        Some("sub-1")
    );

    let fetched = RetrieveCustomer::new(created.id.clone())
        .send(&client)
        .await?;
    let stripe_core::customer::RetrieveCustomerReturned::Customer(fetched) = fetched else {
        panic!("expected a live customer");
    };
    assert_eq!(fetched.id, created.id);

    CreateCustomer::new()
        .email("someone-else@example.com")
        .send(&client)
        .await?;
    let listed = ListCustomer::new()
        .email("ada@example.com")
        .send(&client)
        .await?;
    assert_eq!(
        listed.data.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
        vec![created.id]
    );
    Ok(())
}

#[tokio::test]
async fn the_same_idempotency_key_yields_the_same_customer_even_concurrently() -> anyhow::Result<()>
{
    let (_, client) = start().await?;
    let attempts = (0..8).map(|_| {
        let client = client.clone();
        async move {
            CreateCustomer::new()
                .email("ada@example.com")
                .customize()
                .request_strategy(idempotent("signup-sub-1"))
                .send(&client)
                .await
        }
    });
    let customers = futures_join_all(attempts).await;
    let ids: std::collections::BTreeSet<String> = customers
        .into_iter()
        .map(|c| c.map(|c| c.id.to_string()))
        .collect::<Result<_, _>>()?;
    assert_eq!(ids.len(), 1, "{ids:?}");
    let all = ListCustomer::new().send(&client).await?;
    assert_eq!(all.data.len(), 1);
    Ok(())
}

async fn futures_join_all<F>(futs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        match h.await {
            Ok(v) => out.push(v),
            Err(e) => panic!("task failed: {e}"),
        }
    }
    out
}

#[tokio::test]
async fn reusing_an_idempotency_key_with_other_parameters_is_an_idempotency_error()
-> anyhow::Result<()> {
    let (_, client) = start().await?;
    CreateCustomer::new()
        .email("ada@example.com")
        .customize()
        .request_strategy(idempotent("k1"))
        .send(&client)
        .await?;
    let err = CreateCustomer::new()
        .email("bob@example.com")
        .customize()
        .request_strategy(idempotent("k1"))
        .send(&client)
        .await
        .err()
        .map(stripe_error);
    let (status, _, message) = err.unwrap_or_default();
    assert_eq!(status, 400);
    assert!(message.contains("same parameters"), "{message}");
    Ok(())
}

#[tokio::test]
async fn products_and_prices_by_lookup_key_with_transfer_and_deactivation() -> anyhow::Result<()> {
    let (_, client) = start().await?;
    let product = CreateProduct::new("Basic")
        .id("creditgate_basic")
        .send(&client)
        .await?;
    assert_eq!(product.id.as_str(), "creditgate_basic");
    assert!(product.active);

    let again = CreateProduct::new("Basic")
        .id("creditgate_basic")
        .send(&client)
        .await;
    assert_eq!(
        again.err().map(stripe_error).and_then(|e| e.1),
        Some("resource_already_exists".into())
    );

    let monthly = CreatePrice::new(Currency::GBP)
        .product("creditgate_basic")
        .unit_amount(500)
        .recurring(CreatePriceRecurring::new(
            CreatePriceRecurringInterval::Month,
        ))
        .lookup_key("creditgate_basic_subscription")
        .send(&client)
        .await?;
    assert_eq!(monthly.type_, PriceType::Recurring);
    assert_eq!(
        monthly.recurring.as_ref().map(|r| r.interval.clone()),
        Some(RecurringInterval::Month)
    );
    assert_eq!(monthly.unit_amount, Some(500));

    // Without transfer the key is taken; with it the key moves.
    let clash = CreatePrice::new(Currency::GBP)
        .product("creditgate_basic")
        .unit_amount(700)
        .recurring(CreatePriceRecurring::new(
            CreatePriceRecurringInterval::Month,
        ))
        .lookup_key("creditgate_basic_subscription")
        .send(&client)
        .await;
    assert_eq!(clash.err().map(|e| stripe_error(e).0), Some(400));
    let dearer = CreatePrice::new(Currency::GBP)
        .product("creditgate_basic")
        .unit_amount(700)
        .recurring(CreatePriceRecurring::new(
            CreatePriceRecurringInterval::Month,
        ))
        .lookup_key("creditgate_basic_subscription")
        .transfer_lookup_key(true)
        .send(&client)
        .await?;

    let by_key = ListPrice::new()
        .lookup_keys(vec!["creditgate_basic_subscription".to_owned()])
        .send(&client)
        .await?;
    assert_eq!(
        by_key.data.iter().map(|p| p.id.clone()).collect::<Vec<_>>(),
        vec![dearer.id.clone()]
    );

    let old = UpdatePrice::new(monthly.id.clone())
        .active(false)
        .send(&client)
        .await?;
    assert!(!old.active);
    assert_eq!(old.lookup_key, None);
    let active = ListPrice::new()
        .product("creditgate_basic")
        .active(true)
        .send(&client)
        .await?;
    assert_eq!(active.data.len(), 1);

    let pack = CreatePrice::new(Currency::GBP)
        .product("creditgate_basic")
        .unit_amount(500)
        .lookup_key("creditgate_basic_pack")
        .send(&client)
        .await?;
    assert_eq!(pack.type_, PriceType::OneTime);

    let renamed = UpdateProduct::new("creditgate_basic")
        .name("Basic plan")
        .send(&client)
        .await?;
    assert_eq!(renamed.name, "Basic plan");
    let fetched = RetrieveProduct::new("creditgate_basic")
        .send(&client)
        .await?;
    assert_eq!(fetched.name, "Basic plan");
    Ok(())
}

#[tokio::test]
async fn unknown_parameters_routes_and_keys_get_stripes_errors() -> anyhow::Result<()> {
    let (base, _) = start().await?;
    let (status, body) = raw(&base, "POST", "/v1/customers", Some(KEY), "emial=a%40b.com").await?;
    assert_eq!(
        (
            status,
            body["error"]["code"].as_str(),
            body["error"]["param"].as_str()
        ),
        (400, Some("parameter_unknown"), Some("emial"))
    );

    let (status, body) = raw(&base, "GET", "/v1/teapots", Some(KEY), "").await?;
    assert_eq!(status, 404);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Unrecognized request URL")
    );

    let (status, body) = raw(&base, "GET", "/v1/customers", None, "").await?;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (401, Some("invalid_request_error"))
    );
    let (status, _) = raw(&base, "GET", "/v1/customers", Some("sk_test_wrong"), "").await?;
    assert_eq!(status, 401);

    let (status, body) = raw(&base, "GET", "/v1/customers/cus_missing", Some(KEY), "").await?;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("resource_missing"))
    );

    let (status, body) = raw(
        &base,
        "POST",
        "/v1/prices",
        Some(KEY),
        "currency=gbp&product=nope&unit_amount=5",
    )
    .await?;
    assert_eq!(
        (status, body["error"]["param"].as_str()),
        (404, Some("product"))
    );
    let (status, body) = raw(
        &base,
        "POST",
        "/v1/products",
        Some(KEY),
        "name=x&recurring[interval]=day",
    )
    .await?;
    assert_eq!(
        (status, body["error"]["param"].as_str()),
        (400, Some("recurring"))
    );
    let (status, _) = raw(&base, "POST", "/v1/customers", Some(KEY), "a=1&a[b]=2").await?;
    assert_eq!(status, 400);
    Ok(())
}

#[tokio::test]
async fn with_a_state_file_a_restarted_emulator_keeps_its_objects_and_idempotency_keys()
-> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("stripe-emulator-state-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("state.json");
    let _ = std::fs::remove_file(&path);

    let start = |path: std::path::PathBuf| async move {
        let listener = stripe_emulator::bind(0).await?;
        let base = format!("http://{}/", listener.local_addr()?);
        let emulator = stripe_emulator::Emulator::new(KEY).with_state_file(path)?;
        tokio::spawn(stripe_emulator::serve(listener, emulator));
        anyhow::Ok(ClientBuilder::new(KEY).url(base).build()?)
    };
    let first = start(path.clone()).await?;
    let created = CreateCustomer::new()
        .email("kept@example.com")
        .customize()
        .request_strategy(idempotent("persisted-key"))
        .send(&first)
        .await?;

    let second = start(path.clone()).await?;
    let listed = ListCustomer::new()
        .email("kept@example.com")
        .send(&second)
        .await?;
    assert_eq!(
        listed.data.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
        vec![created.id.clone()]
    );
    let replayed = CreateCustomer::new()
        .email("kept@example.com")
        .customize()
        .request_strategy(idempotent("persisted-key"))
        .send(&second)
        .await?;
    assert_eq!(replayed.id, created.id);

    std::fs::write(&path, "not json")?;
    assert!(
        stripe_emulator::Emulator::new(KEY)
            .with_state_file(path.clone())
            .is_err()
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test]
async fn rate_limited_requests_answer_stripes_429_and_apply_nothing_until_the_count_is_spent()
-> anyhow::Result<()> {
    let (base, client) = start().await?;
    let (status, body) = raw(
        &base,
        "POST",
        "/_emulator/rate_limit",
        Some(KEY),
        "requests=3",
    )
    .await?;
    assert_eq!((status, body["remaining"].as_u64()), (200, Some(3)));

    // async-stripe reads it as Stripe's rate-limit error.
    let create = || {
        CreateCustomer::new()
            .email("limited@example.com")
            .customize()
            .request_strategy(idempotent("limited-1"))
            .send(&client)
    };
    let (status, code, message) = stripe_error(
        create()
            .await
            .err()
            .ok_or_else(|| anyhow::anyhow!("a rate-limited create succeeded"))?,
    );
    assert_eq!((status, code.as_deref()), (429, Some("rate_limit")));
    assert!(
        message.starts_with("Request rate limit exceeded"),
        "{message}"
    );

    let (status, body) = raw(&base, "GET", "/v1/customers", Some(KEY), "").await?;
    assert_eq!(
        (
            status,
            body["error"]["type"].as_str(),
            body["error"]["code"].as_str()
        ),
        (429, Some("invalid_request_error"), Some("rate_limit"))
    );
    // Authentication comes first, and the emulator's own routes are never limited.
    let (status, _) = raw(&base, "GET", "/v1/customers", None, "").await?;
    assert_eq!(status, 401);
    let (status, body) = raw(&base, "GET", "/_emulator/rate_limit", Some(KEY), "").await?;
    assert_eq!((status, body["remaining"].as_u64()), (200, Some(1)));

    assert_eq!(
        stripe_error(
            create()
                .await
                .err()
                .ok_or_else(|| anyhow::anyhow!("succeeded"))?
        )
        .0,
        429
    );
    // The count is spent: the same key now creates, since a refused request was never saved.
    let created = create().await?;
    assert_eq!(create().await?.id, created.id);
    let listed = ListCustomer::new()
        .email("limited@example.com")
        .send(&client)
        .await?;
    assert_eq!(listed.data.len(), 1);

    let (_, body) = raw(&base, "GET", "/_emulator/rate_limit", Some(KEY), "").await?;
    let refused = body["refused"].as_array().cloned().unwrap_or_default();
    let seen: Vec<(&str, &str, Option<&str>)> = refused
        .iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap_or_default(),
                r["path"].as_str().unwrap_or_default(),
                r["idempotency_key"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("POST", "/v1/customers", Some("limited-1")),
            ("GET", "/v1/customers", None),
            ("POST", "/v1/customers", Some("limited-1")),
        ]
    );
    assert_eq!(body["remaining"].as_u64(), Some(0));

    let (status, body) = raw(
        &base,
        "POST",
        "/_emulator/rate_limit",
        Some(KEY),
        "requests=-1",
    )
    .await?;
    assert_eq!(
        (status, body["error"]["param"].as_str()),
        (400, Some("requests"))
    );
    let (status, body) = raw(&base, "POST", "/_emulator/rate_limit", Some(KEY), "").await?;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("parameter_missing"))
    );
    Ok(())
}
