//! Handler tests: the real stripe-emulator in process, in-memory DynamoDB/Cognito/Step Functions.

mod support;

use adapters::unix_now as now;
use domain::facts::SubStatus;
use domain::lifecycle::{AccessPolicy, LapseMode};
use domain::profile::Access;
use support::*;

async fn deliver_all(deps: &TestDeps, events: &[String]) -> anyhow::Result<()> {
    for e in events {
        let (status, body) = deliver(deps, e).await?;
        anyhow::ensure!(status == 200, "{status}: {body} for {e}");
    }
    Ok(())
}

#[tokio::test]
async fn a_bad_missing_stale_or_tampered_signature_is_401_and_writes_nothing() -> anyhow::Result<()>
{
    let (stripe, deps, _, _) = subscribed("creditgate_basic_subscription").await?;
    let event = stripe.events().await?.pop().unwrap_or_default();
    let cases = [
        delivery(&event, "whsec_someone_else", now())?,
        delivery(&event, SECRET, now() - 301)?,
        delivery(&event, SECRET, now() + 301)?,
        {
            let mut r = delivery(&event, SECRET, now())?;
            *r.body_mut() = lambda_http::Body::Text(event.replace("user-1", "user-2"));
            r
        },
        {
            let mut r = delivery(&event, SECRET, now())?;
            r.headers_mut().remove("stripe-signature");
            r
        },
    ];
    for request in cases {
        let response = stripe_webhook::handle(&deps, request)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        assert_eq!(response.status(), 401);
        let body: serde_json::Value = serde_json::from_slice(response.body().as_ref())?;
        assert_eq!(body["error"], "invalid Stripe-Signature");
    }
    assert!(
        deps.lifecycle
            .store
            .events
            .lock()
            .map(|e| e.is_empty())
            .unwrap_or(false),
        "no event record"
    );
    let p = profile(&deps, "user-1").await?;
    assert_eq!((p.plan.as_str(), p.version), ("free", 0), "nothing written");
    Ok(())
}

#[tokio::test]
async fn a_base64_body_from_api_gateway_verifies() -> anyhow::Result<()> {
    let (stripe, deps, _, _) = subscribed("creditgate_basic_subscription").await?;
    let event = stripe.events().await?.pop().unwrap_or_default();
    let api_gateway = serde_json::json!({
        "version": "2.0", "routeKey": "POST /stripe/webhook", "rawPath": "/stripe/webhook",
        "rawQueryString": "", "headers": {
            "stripe-signature": domain::webhook::sign(event.as_bytes(), &domain::webhook::WebhookSecret::parse(SECRET)?, now()),
            "content-type": "application/json"
        },
        "requestContext": { "accountId": "1", "apiId": "a", "domainName": "x", "domainPrefix": "x",
            "http": { "method": "POST", "path": "/stripe/webhook", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "Stripe/1.0" },
            "requestId": "r", "routeKey": "POST /stripe/webhook", "stage": "$default", "time": "23/Nov/2026:00:00:00 +0000", "timeEpoch": 0 },
        "body": base64(event.as_bytes()),
        "isBase64Encoded": true
    });
    let request: lambda_http::request::LambdaRequest = serde_json::from_value(api_gateway)?;
    let request: lambda_http::Request = request.into();
    let response = stripe_webhook::handle(&deps, request)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(response.status(), 200);
    Ok(())
}

fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test]
async fn buying_basic_moves_the_user_to_basic_with_1000_credits_and_stops_the_free_manager()
-> anyhow::Result<()> {
    let (stripe, deps, _, session) = subscribed("creditgate_basic_subscription").await?;
    deliver_all(&deps, &stripe.events().await?).await?;
    let p = profile(&deps, "user-1").await?;
    assert_eq!(p.plan.as_str(), "basic");
    assert_eq!(p.allowance.get(), 1_000);
    assert_eq!(p.access, Access::Active);
    assert_eq!(
        p.manager_generation, 2,
        "bumped: the free manager's grants stop"
    );
    let sub = p
        .subscription
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no subscription"))?;
    assert_eq!(Some(sub.id.as_str()), session["subscription"].as_str());
    assert_eq!(sub.status, SubStatus::Active);
    let user = deps.lifecycle.directory.user("user-1");
    assert_eq!(user.and_then(|u| u.plan), Some("basic".to_owned()));
    let syncs = deps
        .lifecycle
        .directory
        .syncs
        .load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        syncs, 1,
        "Cognito is called when plan or access changes, not for every event"
    );
    Ok(())
}

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

/// The placeholder `sam deploy` leaves in the secret, counting reads.
#[derive(Clone, Default)]
struct Placeholder(std::sync::Arc<std::sync::atomic::AtomicU32>);

impl adapters::secrets::SecretStore for Placeholder {
    fn fetch(&self) -> adapters::secrets::SecretFuture<'_> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async { Ok(r#"{"secret_key":"","webhook_secrets":""}"#.to_owned()) })
    }

    fn name(&self) -> String {
        "creditgate/stripe".into()
    }
}

#[tokio::test]
async fn before_the_secret_is_put_forged_deliveries_cost_at_most_one_read_and_never_a_401_for_stripe()
-> anyhow::Result<()> {
    let stripe = Stripe::start().await?;
    let mut deps = deps(&stripe, AccessPolicy::default())?;
    let store = Placeholder::default();
    deps.secrets = adapters::secrets::StripeSecretSource::new(store.clone(), None);
    let reads = || store.0.load(std::sync::atomic::Ordering::SeqCst);
    let payload = r#"{"id":"evt_1","type":"invoice.paid","created":1,"data":{"object":{}}}"#;
    // Malformed or stale headers are refused without reading the secret.
    for header in ["x", "t=1,v1=00", "v1=abc", &format!("t={},v0=ab", now())] {
        let request = lambda_http::http::Request::builder()
            .method("POST")
            .uri("/stripe/webhook")
            .header("stripe-signature", header)
            .body(lambda_http::Body::Text(payload.to_owned()))?;
        let response = stripe_webhook::handle(&deps, request)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        assert_eq!(response.status(), 401, "{header}");
    }
    assert_eq!(reads(), 0);
    // Well formed and fresh: it needs the secret, which is unusable: 503 (Stripe retries), and
    // a flood reads it once.
    for _ in 0..50 {
        let response = stripe_webhook::handle(&deps, delivery(payload, "whsec_forged", now())?)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        assert_eq!(response.status(), 503);
    }
    assert_eq!(reads(), 1);
    Ok(())
}

#[tokio::test]
async fn verified_events_of_other_types_are_200_and_ignored() -> anyhow::Result<()> {
    let (stripe, deps, _, _) = subscribed("creditgate_basic_subscription").await?;
    let created = stripe
        .events()
        .await?
        .into_iter()
        .find(|e| e.contains("\"invoice.created\""))
        .unwrap_or_default();
    let (status, body) = deliver(&deps, &created).await?;
    assert_eq!(status, 200);
    assert!(
        body["ignored"]
            .as_str()
            .unwrap_or_default()
            .contains("not handled")
    );
    Ok(())
}

#[tokio::test]
async fn a_renewal_resets_the_allowance_once_and_cancel_at_period_end_lands_on_free()
-> anyhow::Result<()> {
    let (stripe, deps, _, session) = subscribed("creditgate_basic_subscription").await?;
    deliver_all(&deps, &stripe.events().await?).await?;
    {
        let mut profiles = deps
            .lifecycle
            .store
            .profiles
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        if let Some(p) = profiles.get_mut("user-1") {
            p.allowance = domain::ids::Credits::new(3);
        }
    }
    let seen = stripe.events().await?.len();
    stripe.advance_days(31).await?;
    deliver_all(&deps, &stripe.events().await?[seen..]).await?;
    assert_eq!(profile(&deps, "user-1").await?.allowance.get(), 1_000);

    let sub = session["subscription"].as_str().unwrap_or_default();
    let seen = stripe.events().await?.len();
    stripe
        .call(
            "POST",
            &format!("/v1/subscriptions/{sub}"),
            "cancel_at_period_end=true",
        )
        .await?;
    stripe.advance_days(1).await?;
    deliver_all(&deps, &stripe.events().await?[seen..]).await?;
    let p = profile(&deps, "user-1").await?;
    assert_eq!(p.plan.as_str(), "basic", "still paid until the period ends");
    assert!(
        p.subscription
            .as_ref()
            .is_some_and(|s| s.cancel_at_period_end)
    );

    let seen = stripe.events().await?.len();
    stripe.advance_days(31).await?;
    deliver_all(&deps, &stripe.events().await?[seen..]).await?;
    let p = profile(&deps, "user-1").await?;
    assert_eq!(p.plan.as_str(), "free");
    assert_eq!(p.manager_generation, 3, "the free manager restarts");
    let executions = deps
        .lifecycle
        .scheduler
        .executions
        .lock()
        .map(|e| e.keys().cloned().collect::<Vec<_>>())
        .unwrap_or_default();
    assert!(
        executions.contains(&"user-1-g3-c0".to_owned()),
        "{executions:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_failed_renewal_keeps_access_for_the_grace_then_lapses_and_recovery_restores_it()
-> anyhow::Result<()> {
    for lapse in [LapseMode::Downgrade, LapseMode::Disable] {
        let stripe = Stripe::start().await?;
        let deps = deps(
            &stripe,
            AccessPolicy {
                grace_seconds: 7 * 86_400,
                lapse,
            },
        )?;
        let customer = stripe.customer("ada@example.com").await?;
        sign_up(&deps, "user-1", "ada@example.com", &customer).await?;
        stripe
            .subscribe(&customer, "user-1", "creditgate_basic_subscription")
            .await?;
        stripe
            .call(
                "POST",
                &format!("/_emulator/customers/{customer}/payment_method"),
                "failing=true",
            )
            .await?;
        stripe.advance_days(31).await?;
        deliver_all(&deps, &stripe.events().await?).await?;
        let p = profile(&deps, "user-1").await?;
        assert_eq!(
            p.subscription.as_ref().map(|s| s.status),
            Some(SubStatus::PastDue)
        );
        assert_eq!(
            (p.plan.as_str(), p.access),
            ("basic", Access::Active),
            "grace"
        );

        // Retries at +3 and +8 days fail; past the 7-day grace the user lapses.
        let seen = stripe.events().await?.len();
        stripe.advance_days(9).await?;
        deliver_all(&deps, &stripe.events().await?[seen..]).await?;
        let p = profile(&deps, "user-1").await?;
        let user = deps.lifecycle.directory.user("user-1");
        match lapse {
            LapseMode::Downgrade => {
                assert_eq!((p.plan.as_str(), p.access), ("free", Access::Active));
                assert_eq!(user.map(|u| u.enabled), Some(true));
            }
            LapseMode::Disable => {
                assert_eq!((p.plan.as_str(), p.access), ("basic", Access::Disabled));
                assert_eq!(user.map(|u| u.enabled), Some(false));
            }
        }

        // The card works again; the next retry pays: access back, allowance reset.
        stripe
            .call(
                "POST",
                &format!("/_emulator/customers/{customer}/payment_method"),
                "failing=false",
            )
            .await?;
        let seen = stripe.events().await?.len();
        stripe.advance_days(7).await?;
        deliver_all(&deps, &stripe.events().await?[seen..]).await?;
        let p = profile(&deps, "user-1").await?;
        assert_eq!(
            p.subscription.as_ref().map(|s| s.status),
            Some(SubStatus::Active)
        );
        assert_eq!(
            (p.plan.as_str(), p.access, p.allowance.get()),
            ("basic", Access::Active, 1_000)
        );
        assert_eq!(
            deps.lifecycle.directory.user("user-1").map(|u| u.enabled),
            Some(true)
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_pack_grants_once_and_a_refund_or_dispute_revokes_never_below_zero() -> anyhow::Result<()>
{
    let stripe = Stripe::start().await?;
    let deps = deps(&stripe, AccessPolicy::default())?;
    let customer = stripe.customer("ada@example.com").await?;
    sign_up(&deps, "user-1", "ada@example.com", &customer).await?;
    let session = stripe
        .checkout(
            Some(&customer),
            Some("user-1"),
            "creditgate_basic_pack",
            None,
        )
        .await?;
    let events = stripe.events().await?;
    deliver_all(&deps, &events).await?;
    deliver_all(&deps, &events).await?;
    assert_eq!(profile(&deps, "user-1").await?.purchased.get(), 1_000);

    // Half refunded: half the credits go.
    let pi = session["payment_intent"].as_str().unwrap_or_default();
    stripe
        .call(
            "POST",
            "/v1/refunds",
            &format!("payment_intent={pi}&amount=250"),
        )
        .await?;
    let seen = events.len();
    deliver_all(&deps, &stripe.events().await?[seen..]).await?;
    assert_eq!(profile(&deps, "user-1").await?.purchased.get(), 500);

    // Spent down to 100, then disputed: the rest goes, not below zero.
    {
        let mut profiles = deps
            .lifecycle
            .store
            .profiles
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        if let Some(p) = profiles.get_mut("user-1") {
            p.purchased = domain::ids::Credits::new(100);
        }
    }
    let intent = stripe
        .call("GET", &format!("/v1/payment_intents/{pi}"), "")
        .await?;
    let charge = intent["latest_charge"].as_str().unwrap_or_default();
    let seen = stripe.events().await?.len();
    stripe
        .call("POST", &format!("/_emulator/charges/{charge}/dispute"), "")
        .await?;
    deliver_all(&deps, &stripe.events().await?[seen..]).await?;
    assert_eq!(profile(&deps, "user-1").await?.purchased.get(), 0);
    let pack = deps
        .lifecycle
        .store
        .packs
        .lock()
        .ok()
        .and_then(|p| p.values().next().cloned());
    let pack = pack.ok_or_else(|| anyhow::anyhow!("no pack record"))?;
    assert_eq!((pack.revoked.get(), pack.removed.get()), (1_000, 600));
    Ok(())
}

#[tokio::test]
async fn a_pay_first_buyer_gets_a_cognito_user_a_profile_and_the_credits() -> anyhow::Result<()> {
    let stripe = Stripe::start().await?;
    let deps = deps(&stripe, AccessPolicy::default())?;
    stripe
        .checkout(
            None,
            None,
            "creditgate_basic_subscription",
            Some("grace@example.com"),
        )
        .await?;
    deliver_all(&deps, &stripe.events().await?).await?;
    let users = deps
        .lifecycle
        .directory
        .users
        .lock()
        .map(|u| u.clone())
        .unwrap_or_default();
    assert_eq!(users.len(), 1);
    let (sub, user) = users
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("no user"))?;
    assert_eq!(user.email, "grace@example.com");
    let p = profile(&deps, &sub).await?;
    assert_eq!((p.plan.as_str(), p.allowance.get()), ("basic", 1_000));
    assert_eq!(user.plan.as_deref(), Some("basic"));
    Ok(())
}

#[tokio::test]
async fn a_trial_gives_the_plan_and_its_credits_and_trial_will_end_is_noted() -> anyhow::Result<()>
{
    let stripe = Stripe::start().await?;
    let deps = deps(&stripe, AccessPolicy::default())?;
    let customer = stripe.customer("ada@example.com").await?;
    sign_up(&deps, "user-1", "ada@example.com", &customer).await?;
    let price = stripe.price("creditgate_basic_subscription").await?;
    let session = stripe
        .call(
            "POST",
            "/v1/checkout/sessions",
            &format!("mode=subscription&customer={customer}&client_reference_id=user-1&line_items[0][price]={price}&subscription_data[trial_period_days]=7&success_url=https://example.com/ok"),
        )
        .await?;
    let id = session["id"].as_str().unwrap_or_default();
    stripe
        .call(
            "POST",
            &format!("/_emulator/checkout/sessions/{id}/complete"),
            "",
        )
        .await?;
    stripe.advance_days(5).await?;
    let events = stripe.events().await?;
    assert!(
        events
            .iter()
            .any(|e| e.contains("\"customer.subscription.trial_will_end\""))
    );
    deliver_all(&deps, &events).await?;
    let p = profile(&deps, "user-1").await?;
    assert_eq!(
        p.subscription.as_ref().map(|s| s.status),
        Some(SubStatus::Trialing)
    );
    assert_eq!((p.plan.as_str(), p.allowance.get()), ("basic", 1_000));
    Ok(())
}

#[tokio::test]
async fn a_refund_delivered_before_its_checkout_completion_grants_the_pack_net_of_it()
-> anyhow::Result<()> {
    let stripe = Stripe::start().await?;
    let deps = deps(&stripe, AccessPolicy::default())?;
    let customer = stripe.customer("ada@example.com").await?;
    sign_up(&deps, "user-1", "ada@example.com", &customer).await?;
    let session = stripe
        .checkout(
            Some(&customer),
            Some("user-1"),
            "creditgate_basic_pack",
            None,
        )
        .await?;
    let pi = session["payment_intent"].as_str().unwrap_or_default();
    stripe
        .call(
            "POST",
            "/v1/refunds",
            &format!("payment_intent={pi}&amount=100"),
        )
        .await?;
    let events = stripe.events().await?;
    let refunded = events
        .iter()
        .find(|e| e.contains("\"charge.refunded\""))
        .cloned()
        .unwrap_or_default();
    let (status, body) = deliver(&deps, &refunded).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        profile(&deps, "user-1").await?.purchased.get(),
        800,
        "1,000 less 20% refunded"
    );
    deliver_all(&deps, &events).await?;
    assert_eq!(
        profile(&deps, "user-1").await?.purchased.get(),
        800,
        "granted once"
    );
    Ok(())
}
