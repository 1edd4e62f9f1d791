//! Fault injection, end to end: a fault proxy stands between the functions and moto (DynamoDB,
//! Cognito) and between the functions and the stripe-emulator. For each operation the webhook
//! depends on (the event claim, the profile + grant write, the pack write, the Cognito update,
//! mark-done, the Stripe read) one user buys a subscription and a credit pack while that
//! operation first stalls, then fails, until Stripe has given up on every delivery. Then the
//! faults stop and `creditgate reconcile` runs once: every user's DynamoDB items, Cognito
//! attributes and Stripe objects equal those of a user who bought the same with no fault, and
//! a second run finds nothing to do.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use adapters::dynamo::DynamoStore;
use aws_sdk_dynamodb::types::AttributeValue;
use domain::ids::UserSub;
use domain::ports::Accounts;
use serde_json::Value;
use tests::faults::{Fault, FaultProxy, Matcher};
use tests::{Stack, StackOptions, eventually, free_port};

/// Webhook retries compressed so Stripe's three days of retries take about three seconds.
const RETRY_COMPRESSION: &str = "36000";
/// Attempts Stripe makes at one delivery: the first and its six retries.
const ATTEMPTS: u64 = 7;
/// An AWS call held past the SDK's 2 s attempt timeout; a Stripe read past its 8 s one.
const AWS_STALL: Duration = Duration::from_secs(3);
const STRIPE_STALL: Duration = Duration::from_secs(9);

/// What a user's purchases left behind, free of ids and times: what must match a fault-free run.
#[derive(Debug, PartialEq, Eq)]
struct EndState {
    /// plan, access, allowance, purchased, the followed subscription's (status, plan, price
    /// lookup), whether an allowance grant is recorded, what Cognito was last synced to.
    profile: Option<Value>,
    /// Every grant: (cause, credits, revoked, removed), sorted.
    grants: Vec<(String, u64, u64, u64)>,
    /// custom:plan, custom:access, enabled.
    cognito: (Option<String>, Option<String>, bool),
    /// The customer's subscriptions (status, lookup key), sorted.
    subscriptions: Vec<(String, String)>,
    /// The customer's checkout sessions (mode, status, payment status), sorted.
    sessions: Vec<(String, String, String)>,
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

fn number(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> u64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

async fn end_state(stack: &Stack, email: &str, sub: &UserSub) -> anyhow::Result<EndState> {
    let store = DynamoStore::new(stack.dynamodb.clone(), stack.var("TABLE_NAME")?);
    let profile = store.profile(sub).await?;
    let customer = profile.as_ref().map(|p| p.customer.to_string());
    let profile = profile.map(|p| {
        serde_json::json!({
            "plan": p.plan.as_str(),
            "access": p.access.as_str(),
            "allowance": p.allowance.get(),
            "purchased": p.purchased.get(),
            "subscription": p.subscription.as_ref().map(|s| {
                (format!("{:?}", s.status), s.plan.to_string(), s.cancel_at_period_end)
            }),
            "allowance_granted": p.allowance_source.is_some(),
            "directory_synced": p.directory_synced.as_ref().map(|(plan, access)| {
                (plan.to_string(), access.as_str())
            }),
        })
    });
    let items = stack
        .dynamodb
        .query()
        .table_name(stack.var("TABLE_NAME")?)
        .key_condition_expression("pk = :pk AND begins_with(sk, :grant)")
        .expression_attribute_values(":pk", AttributeValue::S(format!("USER#{sub}")))
        .expression_attribute_values(":grant", AttributeValue::S("GRANT#".into()))
        .consistent_read(true)
        .send()
        .await?;
    let mut grants: Vec<(String, u64, u64, u64)> = items
        .items()
        .iter()
        .map(|g| {
            (
                g.get("cause")
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default(),
                number(g, "credits"),
                number(g, "revoked"),
                number(g, "removed"),
            )
        })
        .collect();
    grants.sort();
    let user = stack
        .cognito
        .admin_get_user()
        .user_pool_id(stack.var("USER_POOL_ID")?)
        .username(email)
        .send()
        .await?;
    let attribute = |name: &str| {
        user.user_attributes()
            .iter()
            .find(|a| a.name() == name)
            .and_then(|a| a.value())
            .map(str::to_owned)
    };
    let cognito = (
        attribute("custom:plan"),
        attribute("custom:access"),
        user.enabled(),
    );
    let (subscriptions, sessions) = match customer {
        None => (Vec::new(), Vec::new()),
        Some(customer) => {
            let subs = stack
                .emulator(
                    "GET",
                    &format!("/v1/subscriptions?customer={customer}&status=all"),
                    "",
                )
                .await?;
            let mut subscriptions: Vec<(String, String)> = subs["data"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|s| {
                    (
                        self::s(&s["status"]),
                        self::s(&s["items"]["data"][0]["price"]["lookup_key"]),
                    )
                })
                .collect();
            subscriptions.sort();
            let sessions = stack
                .emulator(
                    "GET",
                    &format!("/v1/checkout/sessions?customer={customer}"),
                    "",
                )
                .await?;
            let mut sessions: Vec<(String, String, String)> = sessions["data"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|c| (s(&c["mode"]), s(&c["status"]), s(&c["payment_status"])))
                .collect();
            sessions.sort();
            (subscriptions, sessions)
        }
    };
    Ok(EndState {
        profile,
        grants,
        cognito,
        subscriptions,
        sessions,
    })
}

/// Waits until Stripe has finished with every event: delivered, or all its attempts failed.
async fn stripe_finished_trying(stack: &Stack) -> anyhow::Result<()> {
    eventually(
        Duration::from_secs(240),
        "Stripe done delivering",
        || async {
            let events = stack.emulator("GET", "/v1/events?limit=100", "").await?;
            let log = stack.emulator("GET", "/_emulator/deliveries", "").await?;
            let mut last: BTreeMap<String, (u64, bool)> = BTreeMap::new();
            for d in log["data"].as_array().cloned().unwrap_or_default() {
                let entry = last.entry(s(&d["event"])).or_insert((0, false));
                entry.0 = entry.0.max(d["attempt"].as_u64().unwrap_or(0));
                entry.1 |= d["delivered"].as_bool().unwrap_or(false);
            }
            let done = events["data"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .all(|e| {
                    e["pending_webhooks"].as_u64() == Some(0)
                        || last.get(&s(&e["id"])).is_some_and(|(attempts, delivered)| {
                            *delivered || *attempts >= ATTEMPTS
                        })
                });
            Ok(done.then_some(()))
        },
    )
    .await
}

fn buy(stack: &Stack, email: &str) -> anyhow::Result<()> {
    for args in [
        &["checkout", email, "basic"][..],
        &["checkout", email, "basic", "--pack"][..],
    ] {
        let out = stack.creditgate_dev(args)?;
        anyhow::ensure!(
            out.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Event records still `processing` (a mark-done that failed) or `failed`.
async fn unsettled_records(stack: &Stack) -> anyhow::Result<Vec<(String, String)>> {
    let out = stack
        .dynamodb
        .scan()
        .table_name(stack.var("TABLE_NAME")?)
        .filter_expression("sk = :event AND #status <> :done AND #status <> :ignored")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":event", AttributeValue::S("EVENT".into()))
        .expression_attribute_values(":done", AttributeValue::S("done".into()))
        .expression_attribute_values(":ignored", AttributeValue::S("ignored".into()))
        .send()
        .await?;
    Ok(out
        .items()
        .iter()
        .map(|i| {
            let text = |k: &str| {
                i.get(k)
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default()
            };
            (text("pk"), text("status"))
        })
        .collect())
}

struct Case {
    name: &'static str,
    matcher: Matcher,
    stall: Duration,
}

fn cases() -> Vec<Case> {
    let dynamo = |op: &'static str| Matcher::aws(op);
    vec![
        // First: its records stay `processing` until their lease lapses, during the others.
        Case {
            name: "mark-done",
            matcher: dynamo("DynamoDB_20120810.UpdateItem").with("REMOVE lease_until, last_error"),
            stall: AWS_STALL,
        },
        Case {
            name: "claim",
            matcher: dynamo("DynamoDB_20120810.UpdateItem").with("if_not_exists(attempts"),
            stall: AWS_STALL,
        },
        Case {
            name: "profile + grant write",
            matcher: dynamo("DynamoDB_20120810.TransactWriteItems")
                .with("GRANT#")
                .without("purchased + :net"),
            stall: AWS_STALL,
        },
        Case {
            name: "pack write",
            matcher: dynamo("DynamoDB_20120810.TransactWriteItems").with("purchased + :net"),
            stall: AWS_STALL,
        },
        Case {
            name: "Cognito update",
            matcher: Matcher::aws("AWSCognitoIdentityProviderService.AdminUpdateUserAttributes"),
            stall: AWS_STALL,
        },
        Case {
            name: "Stripe read",
            matcher: Matcher::request("GET /v1/"),
            stall: STRIPE_STALL,
        },
    ]
}

#[tokio::test]
async fn after_faults_in_every_webhook_operation_reconcile_leaves_what_a_fault_free_run_leaves()
-> anyhow::Result<()> {
    let (moto_port, emulator_port) = (free_port()?, free_port()?);
    let aws = FaultProxy::start(moto_port)?;
    let stripe = FaultProxy::start(emulator_port)?;
    let stack = Stack::start_with(
        "faults",
        3_600,
        StackOptions {
            moto_port: Some(moto_port),
            emulator_port: Some(emulator_port),
            env: vec![
                ("AWS_ENDPOINT_URL_DYNAMODB".into(), aws.url()),
                (
                    "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER".into(),
                    aws.url(),
                ),
                (
                    "FUNCTIONS_STRIPE_API_BASE".into(),
                    format!("{}/", stripe.url()),
                ),
                (
                    "STRIPE_EMULATOR_RETRY_COMPRESSION".into(),
                    RETRY_COMPRESSION.into(),
                ),
            ],
        },
    )
    .await?;

    // The run every other is compared with: the same purchases, no fault.
    let baseline_email = "baseline@example.com";
    let baseline = stack.sign_up(baseline_email).await?;
    buy(&stack, baseline_email)?;
    stripe_finished_trying(&stack).await?;
    let expected = end_state(&stack, baseline_email, &baseline).await?;
    assert_eq!(
        (
            expected.profile.as_ref().map(|p| p["plan"].clone()),
            expected.grants.len()
        ),
        (Some(Value::from("basic")), 2),
        "the fault-free run: {expected:#?}\n{}",
        stack.logs()
    );

    let mut users = Vec::new();
    let mut lease_lapses = Instant::now();
    for case in cases() {
        let email = format!("{}@example.com", case.name.replace([' ', '+'], ""));
        let sub = stack.sign_up(&email).await?;
        let proxy = if case.name == "Stripe read" {
            &stripe
        } else {
            &aws
        };
        // The first such request hangs, every later one fails, until Stripe gives up.
        proxy.inject_times(case.name, case.matcher.clone(), Fault::Stall(case.stall), 1);
        proxy.inject(case.name, case.matcher, Fault::Fail);
        buy(&stack, &email)?;
        stripe_finished_trying(&stack).await?;
        proxy.clear();
        if case.name == "mark-done" {
            lease_lapses =
                Instant::now() + Duration::from_secs(domain::webhook::LEASE_SECONDS as u64 + 1);
        }
        let before = end_state(&stack, &email, &sub).await?;
        users.push((case.name, email, sub, before));
    }
    let mut injected = aws.injected();
    injected.extend(stripe.injected());
    for (name, ..) in &users {
        assert!(
            injected.get(name).is_some_and(|n| *n > 0),
            "no fault was injected for {name}: {injected:?}\n{}",
            stack.logs()
        );
    }
    // The faults did harm: every user but mark-done's misses something, and mark-done's
    // records are stuck `processing`.
    for (name, _, _, before) in &users {
        if *name != "mark-done" {
            assert_ne!(before, &expected, "{name}: the fault changed nothing");
        }
    }
    let stuck = unsettled_records(&stack).await?;
    assert!(
        stuck.iter().any(|(_, status)| status == "processing"),
        "{stuck:?}"
    );

    // Stuck records are retried once their lease has lapsed (as a daily run finds them).
    tokio::time::sleep(lease_lapses.saturating_duration_since(Instant::now())).await;
    let out = stack.creditgate(&["reconcile"])?;
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "reconcile: {printed}\n{}",
        stack.logs()
    );

    for (name, email, sub, _) in &users {
        let after = end_state(&stack, email, sub).await?;
        assert_eq!(after, expected, "{name} after reconcile\n{printed}");
    }
    assert_eq!(unsettled_records(&stack).await?, Vec::new(), "{printed}");

    let again = stack.creditgate(&["reconcile"])?;
    let again_printed = String::from_utf8_lossy(&again.stdout).into_owned();
    assert!(
        again.status.success()
            && again_printed.contains("no failed events match")
            && again_printed.contains("drifted 0, repaired 0, failed 0"),
        "second reconcile: {again_printed}{}",
        String::from_utf8_lossy(&again.stderr)
    );
    eprintln!(
        "faults injected {injected:?}; flows {}; end states compared {}; first reconcile:\n{printed}",
        2 * (users.len() + 1),
        users.len()
    );
    Ok(())
}
