use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_cognitoidentityprovider::types::{AttributeType, MessageActionType};
use aws_sdk_dynamodb::types::AttributeValue;
use stripe_core::customer::ListCustomer;
use tests::{Stack, eventually};

fn key(pk: String, sk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".into(), AttributeValue::S(pk)),
        ("sk".into(), AttributeValue::S(sk.into())),
    ])
}

async fn item(
    stack: &Stack,
    pk: String,
    sk: &str,
) -> anyhow::Result<Option<HashMap<String, AttributeValue>>> {
    Ok(stack
        .dynamodb
        .get_item()
        .table_name(stack.var("TABLE_NAME")?)
        .set_key(Some(key(pk, sk)))
        .consistent_read(true)
        .send()
        .await?
        .item)
}

fn s<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn n(item: &HashMap<String, AttributeValue>, name: &str) -> Option<u64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

async fn customers_with_email(stack: &Stack, email: &str) -> anyhow::Result<Vec<String>> {
    let list = ListCustomer::new().email(email).send(&stack.stripe).await?;
    Ok(list.data.into_iter().map(|c| c.id.to_string()).collect())
}

async fn cognito_sub(stack: &Stack, email: &str) -> anyhow::Result<String> {
    let user = stack
        .cognito
        .admin_get_user()
        .user_pool_id(stack.var("USER_POOL_ID")?)
        .username(email)
        .send()
        .await?;
    user.user_attributes()
        .iter()
        .find(|a| a.name() == "sub")
        .and_then(|a| a.value())
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no sub"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_sign_up_gets_one_stripe_customer_a_free_profile_and_weekly_credits_from_the_running_state_machine()
-> anyhow::Result<()> {
    let stack = Stack::start("signup", 3).await?;
    let email = "ada@example.com";

    let out = stack.creditgate_dev(&["signup", email])?;
    assert!(
        out.status.success(),
        "signup failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        stack.logs()
    );
    let sub = cognito_sub(&stack, email).await?;

    // Exactly one Stripe customer, tagged with the user's sub.
    let customers = customers_with_email(&stack, email).await?;
    assert_eq!(customers.len(), 1, "{customers:?}");

    // The profile (Free, linked to that customer) and the customer link.
    let profile = item(&stack, format!("USER#{sub}"), "PROFILE")
        .await?
        .ok_or_else(|| anyhow::anyhow!("no profile\n{}", stack.logs()))?;
    assert_eq!(s(&profile, "plan_id"), Some("free"));
    assert_eq!(s(&profile, "email"), Some(email));
    assert_eq!(
        s(&profile, "stripe_customer_id"),
        Some(customers[0].as_str())
    );
    assert_eq!(s(&profile, "access"), Some("active"));
    let link = item(&stack, format!("CUSTOMER#{}", customers[0]), "USER").await?;
    assert_eq!(link.as_ref().and_then(|l| s(l, "sub")), Some(sub.as_str()));

    // One credit-manager execution, deterministically named.
    assert_eq!(
        stack.executions().await?,
        vec![(format!("{sub}-g1-c0"), "RUNNING".to_owned())]
    );

    // The running state machine grants the Free plan's 50 credits...
    let granted = eventually(Duration::from_secs(30), "the first Free grant", || async {
        let p = item(&stack, format!("USER#{sub}"), "PROFILE").await?;
        Ok(p.filter(|p| n(p, "allowance") == Some(50)))
    })
    .await?;
    let first_cycle = n(&granted, "manager_cycle").unwrap_or_default();

    // ...and, a period later, resets (not adds to) whatever was left.
    stack
        .dynamodb
        .update_item()
        .table_name(stack.var("TABLE_NAME")?)
        .set_key(Some(key(format!("USER#{sub}"), "PROFILE")))
        .update_expression("SET allowance = :left")
        .expression_attribute_values(":left", AttributeValue::N("7".into()))
        .send()
        .await?;
    let renewed = eventually(
        Duration::from_secs(30),
        "the next period's grant",
        || async {
            let p = item(&stack, format!("USER#{sub}"), "PROFILE").await?;
            Ok(p.filter(|p| {
                n(p, "manager_cycle").unwrap_or_default() > first_cycle
                    && n(p, "allowance") == Some(50)
            }))
        },
    )
    .await?;
    assert_eq!(n(&renewed, "allowance"), Some(50));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_confirmation_invoked_three_times_concurrently_and_again_in_turn_leaves_one_customer_profile_and_execution()
-> anyhow::Result<()> {
    let stack = Stack::start("retries", 3600).await?;
    let email = "grace@example.com";
    let pool = stack.var("USER_POOL_ID")?;
    stack
        .cognito
        .admin_create_user()
        .user_pool_id(&pool)
        .username(email)
        .user_attributes(
            AttributeType::builder()
                .name("email")
                .value(email)
                .build()?,
        )
        .message_action(MessageActionType::Suppress)
        .send()
        .await?;
    let sub = cognito_sub(&stack, email).await?;
    let fixture: serde_json::Value = serde_json::from_str(include_str!(
        "../fixtures/cognito/post-confirmation-sign-up.json"
    ))?;
    let mut event = fixture.clone();
    event["userPoolId"] = pool.clone().into();
    event["userName"] = sub.clone().into();
    event["request"]["userAttributes"]["sub"] = sub.clone().into();
    event["request"]["userAttributes"]["email"] = email.into();

    let (a, b, c) = tokio::join!(
        stack.invoke("post-confirmation", &event),
        stack.invoke("post-confirmation", &event),
        stack.invoke("post-confirmation", &event)
    );
    for (status, body) in [a?, b?, c?] {
        assert_eq!(status, 200, "{body}\n{}", stack.logs());
        // Cognito needs its event back unchanged.
        assert_eq!(serde_json::from_str::<serde_json::Value>(&body)?, event);
    }
    for _ in 0..3 {
        let (status, body) = stack.invoke("post-confirmation", &event).await?;
        assert_eq!(status, 200, "{body}");
    }

    assert_eq!(customers_with_email(&stack, email).await?.len(), 1);
    let profiles = stack
        .dynamodb
        .scan()
        .table_name(stack.var("TABLE_NAME")?)
        .filter_expression("begins_with(pk, :user) AND sk = :profile")
        .expression_attribute_values(":user", AttributeValue::S("USER#".into()))
        .expression_attribute_values(":profile", AttributeValue::S("PROFILE".into()))
        .send()
        .await?;
    assert_eq!(profiles.count(), 1);
    assert_eq!(stack.executions().await?.len(), 1);

    // A forgotten-password confirmation changes nothing.
    let mut forgot = event.clone();
    forgot["triggerSource"] = "PostConfirmation_ConfirmForgotPassword".into();
    forgot["request"]["userAttributes"]["sub"] = "11111111-2222-3333-4444-555555555555".into();
    let (status, _) = stack.invoke("post-confirmation", &forgot).await?;
    assert_eq!(status, 200);
    assert!(
        item(
            &stack,
            "USER#11111111-2222-3333-4444-555555555555".into(),
            "PROFILE"
        )
        .await?
        .is_none()
    );
    assert_eq!(stack.executions().await?.len(), 1);
    Ok(())
}
