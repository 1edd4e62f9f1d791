//! Webhook endpoints, events and signed delivery: every delivered event verifies and parses
//! with async-stripe's webhook module and with Stripe's official Python library, failures are
//! retried, and `GET /v1/events` serves the same events.

use std::path::PathBuf;
use std::time::Duration;

use stripe::ClientBuilder;
use stripe_core::customer::{CreateCustomer, UpdateCustomer};
use stripe_webhook::{EventObject, Webhook};

mod common;

use common::{form, listen, next};

const KEY: &str = "sk_test_emulator_webhooks";

async fn start() -> anyhow::Result<(String, stripe::Client)> {
    let listener = stripe_emulator::bind(0).await?;
    let base = format!("http://{}/", listener.local_addr()?);
    // An hour's retry wait takes 3.6 ms.
    let delivery = stripe_emulator::Delivery {
        retry_compression: 1_000_000.0,
        timeout: Duration::from_secs(5),
    };
    tokio::spawn(stripe_emulator::serve(
        listener,
        stripe_emulator::Emulator::with_delivery(KEY, delivery),
    ));
    Ok((base.clone(), ClientBuilder::new(KEY).url(base).build()?))
}

fn python() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
}

#[tokio::test]
async fn a_delivered_event_is_signed_as_stripe_signs_and_parses_with_async_stripe()
-> anyhow::Result<()> {
    let (base, client) = start().await?;
    let (secret, endpoint, mut rx) = listen(KEY, &base, &["customer.*"], vec![]).await?;
    assert!(secret.starts_with("whsec_"), "{endpoint}");

    let customer = CreateCustomer::new()
        .email("ada@example.com")
        .send(&client)
        .await?;
    let got = next(&mut rx).await?;
    assert!(
        got.signature.starts_with("t=") && got.signature.contains(",v1="),
        "{}",
        got.signature
    );
    let event = Webhook::construct_event(&got.payload, &got.signature, &secret)?;
    assert_eq!(event.type_.as_str(), "customer.created");
    match event.data.object {
        EventObject::CustomerCreated(c) => assert_eq!(c.id, customer.id),
        other => panic!("expected a customer, got {other:?}"),
    }
    let raw: serde_json::Value = serde_json::from_str(&got.payload)?;
    assert_eq!(raw["api_version"], stripe_emulator::STRIPE_API_VERSION);
    assert_eq!(raw["pending_webhooks"], 1);
    assert!(
        raw["request"]["id"]
            .as_str()
            .is_some_and(|r| r.starts_with("req_"))
    );

    // A tampered payload or another secret does not verify.
    assert!(
        Webhook::construct_event(&got.payload.replace("ada", "eve"), &got.signature, &secret)
            .is_err()
    );
    assert!(Webhook::construct_event(&got.payload, &got.signature, "whsec_other").is_err());

    // An update carries the previous values.
    UpdateCustomer::new(customer.id.clone())
        .name("Ada Lovelace")
        .send(&client)
        .await?;
    let got = next(&mut rx).await?;
    let raw: serde_json::Value = serde_json::from_str(&got.payload)?;
    assert_eq!(raw["type"], "customer.updated");
    assert_eq!(
        raw["data"]["previous_attributes"],
        serde_json::json!({"name": null})
    );
    Ok(())
}

#[tokio::test]
async fn a_signature_verifies_with_stripes_official_python_library() -> anyhow::Result<()> {
    let python = python();
    anyhow::ensure!(
        python.exists(),
        "{} is missing: run scripts/test (it creates the venv with `stripe`)",
        python.display()
    );
    let (base, client) = start().await?;
    let (secret, _, mut rx) = listen(KEY, &base, &["*"], vec![]).await?;
    CreateCustomer::new()
        .email("grace@example.com")
        .send(&client)
        .await?;
    let got = next(&mut rx).await?;

    let script = "import os, stripe\n\
        e = stripe.Webhook.construct_event(os.environ['PAYLOAD'], os.environ['SIG'], os.environ['SECRET'])\n\
        print(e['type'])\n\
        try:\n    stripe.Webhook.construct_event(os.environ['PAYLOAD'] + ' ', os.environ['SIG'], os.environ['SECRET'])\n    print('tampered payload verified')\n\
        except stripe.SignatureVerificationError:\n    print('tampered payload refused')\n";
    let out = std::process::Command::new(&python)
        .args(["-c", script])
        .env("PAYLOAD", &got.payload)
        .env("SIG", &got.signature)
        .env("SECRET", &secret)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        vec!["customer.created", "tampered payload refused"]
    );
    Ok(())
}

#[tokio::test]
async fn a_failed_delivery_is_retried_until_it_succeeds_and_the_log_shows_every_attempt()
-> anyhow::Result<()> {
    let (base, client) = start().await?;
    let (_, _, mut rx) = listen(KEY, &base, &["customer.created"], vec![500, 503]).await?;
    CreateCustomer::new()
        .email("retry@example.com")
        .send(&client)
        .await?;
    let payloads = [
        next(&mut rx).await?.payload,
        next(&mut rx).await?.payload,
        next(&mut rx).await?.payload,
    ];
    assert!(
        payloads.iter().all(|p| p == &payloads[0]),
        "every attempt carries the same event"
    );

    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = form(KEY, &base, "GET", "/_emulator/deliveries", "").await?;
    let attempts: Vec<(u64, Option<u64>, bool)> = log["data"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|d| {
                    (
                        d["attempt"].as_u64().unwrap_or(0),
                        d["status_code"].as_u64(),
                        d["delivered"] == true,
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        attempts,
        vec![
            (1, Some(500), false),
            (2, Some(503), false),
            (3, Some(200), true)
        ]
    );

    let event_id = serde_json::from_str::<serde_json::Value>(&payloads[0])?["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let event = form(KEY, &base, "GET", &format!("/v1/events/{event_id}"), "").await?;
    assert_eq!(event["pending_webhooks"], 0);
    Ok(())
}

#[tokio::test]
async fn events_are_listed_by_type_and_deleted_endpoints_get_nothing() -> anyhow::Result<()> {
    let (base, client) = start().await?;
    let (_, endpoint, mut rx) = listen(KEY, &base, &["price.created"], vec![]).await?;
    CreateCustomer::new()
        .email("a@example.com")
        .send(&client)
        .await?;
    form(KEY, &base, "POST", "/v1/products", "id=p1&name=P").await?;
    let events = form(KEY, &base, "GET", "/v1/events?type=customer.created", "").await?;
    assert_eq!(events["data"].as_array().map(Vec::len), Some(1));
    let all = form(KEY, &base, "GET", "/v1/events", "").await?;
    assert_eq!(all["data"].as_array().map(Vec::len), Some(2));

    let id = endpoint["id"].as_str().unwrap_or_default();
    let deleted = form(
        KEY,
        &base,
        "DELETE",
        &format!("/v1/webhook_endpoints/{id}"),
        "",
    )
    .await?;
    assert_eq!(deleted["deleted"], true);
    form(
        KEY,
        &base,
        "POST",
        "/v1/prices",
        "product=p1&currency=gbp&unit_amount=5",
    )
    .await?;
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx.recv())
            .await
            .is_err(),
        "a deleted endpoint got a delivery"
    );
    let missing = form(KEY, &base, "POST", "/v1/webhook_endpoints", "url=ftp://x").await?;
    assert_eq!(missing["error"]["param"], "url");
    Ok(())
}

#[tokio::test]
async fn events_not_delivered_to_every_endpoint_are_listed_with_delivery_success_false_and_by_created()
-> anyhow::Result<()> {
    let (base, client) = start().await?;
    let ids = |list: &serde_json::Value| -> Vec<String> {
        list["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["id"].as_str().map(str::to_owned))
            .collect()
    };
    // Before any endpoint: nothing to deliver, so the event counts as delivered.
    CreateCustomer::new()
        .email("before@example.com")
        .send(&client)
        .await?;
    let (_, _, mut rx) = listen(KEY, &base, &["customer.created"], vec![]).await?;
    CreateCustomer::new()
        .email("delivered@example.com")
        .send(&client)
        .await?;
    next(&mut rx).await?;
    // An endpoint nobody listens on: its event stays pending, then is given up on.
    form(
        KEY,
        &base,
        "POST",
        "/v1/webhook_endpoints",
        "url=http://127.0.0.1:1/dead&enabled_events[]=product.created",
    )
    .await?;
    form(KEY, &base, "POST", "/v1/products", "id=p1&name=P").await?;
    let all = form(KEY, &base, "GET", "/v1/events", "").await?;
    let Ok([product, delivered, before]) = <[String; 3]>::try_from(ids(&all)) else {
        anyhow::bail!("three events expected: {all}");
    };
    let pending = |body: serde_json::Value| ids(&body);
    // The delivery to the live endpoint is counted when it answers.
    for _ in 0..100 {
        let ok = form(KEY, &base, "GET", "/v1/events?delivery_success=true", "").await?;
        if pending(ok).contains(&delivered) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let failed = form(KEY, &base, "GET", "/v1/events?delivery_success=false", "").await?;
    assert_eq!(pending(failed), vec![product.clone()]);
    let ok = form(KEY, &base, "GET", "/v1/events?delivery_success=true", "").await?;
    assert_eq!(pending(ok), vec![delivered.clone(), before.clone()]);

    let created = all["data"][0]["created"].as_i64().unwrap_or_default();
    let later = form(
        KEY,
        &base,
        "GET",
        &format!("/v1/events?created[gt]={created}"),
        "",
    )
    .await?;
    assert_eq!(ids(&later), Vec::<String>::new());
    let up_to = form(
        KEY,
        &base,
        "GET",
        &format!("/v1/events?created[lte]={created}&delivery_success=false"),
        "",
    )
    .await?;
    assert_eq!(ids(&up_to), vec![product]);
    let exactly = form(
        KEY,
        &base,
        "GET",
        &format!("/v1/events?created={created}"),
        "",
    )
    .await?;
    assert_eq!(ids(&exactly).len(), 3, "{exactly}");

    // A cursor is found by id whatever the filters: an event that no longer matches (it was
    // delivered meanwhile) still pages on.
    let after = form(
        KEY,
        &base,
        "GET",
        &format!("/v1/events?delivery_success=false&starting_after={delivered}"),
        "",
    )
    .await?;
    assert_eq!(
        (ids(&after).len(), after["has_more"].as_bool()),
        (0, Some(false)),
        "{after}"
    );
    let just_before = form(
        KEY,
        &base,
        "GET",
        &format!("/v1/events?ending_before={before}&limit=1"),
        "",
    )
    .await?;
    assert_eq!(ids(&just_before), vec![delivered.clone()], "{just_before}");
    assert_eq!(
        just_before["has_more"], true,
        "the product's event is newer still"
    );

    let bad = form(KEY, &base, "GET", "/v1/events?created[after]=1", "").await?;
    assert_eq!(bad["error"]["param"], "created[after]", "{bad}");
    let bad = form(KEY, &base, "GET", "/v1/events?created[gte]=soon", "").await?;
    assert_eq!(bad["error"]["param"], "created[gte]", "{bad}");
    let bad = form(KEY, &base, "GET", "/v1/events?delivery_success=maybe", "").await?;
    assert_eq!(bad["error"]["param"], "delivery_success", "{bad}");
    Ok(())
}
