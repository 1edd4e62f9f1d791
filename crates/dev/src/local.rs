//! `creditgate-dev`'s commands: what Cognito and a buyer do, done against the local stack.

use std::collections::HashMap;

use adapters::Env;
use adapters::config::ExposeSecret;
use anyhow::{Context, bail};
use aws_sdk_cognitoidentityprovider::types::{AttributeType, MessageActionType};
use serde_json::json;

pub async fn signup(email: &str, password: &str) -> anyhow::Result<()> {
    let email = domain::ids::Email::parse(email)?;
    let env = Env::process();
    let pool = env.required("USER_POOL_ID")?;
    let invoke = env
        .optional("LAMBDA_INVOKE_URL")
        .unwrap_or_else(|| "http://127.0.0.1:9000".into());
    let aws = adapters::aws::sdk_config().await;
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&aws);

    let user = match cognito
        .admin_create_user()
        .user_pool_id(&pool)
        .username(email.as_str())
        .user_attributes(
            AttributeType::builder()
                .name("email")
                .value(email.as_str())
                .build()?,
        )
        .user_attributes(
            AttributeType::builder()
                .name("email_verified")
                .value("true")
                .build()?,
        )
        .message_action(MessageActionType::Suppress)
        .send()
        .await
    {
        Ok(out) => out.user.context("Cognito returned no user")?,
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_username_exists_exception()) =>
        {
            bail!("{email} is already signed up in the local user pool")
        }
        Err(e) => return Err(e).context("create the Cognito user (is moto running?)"),
    };
    cognito
        .admin_set_user_password()
        .user_pool_id(&pool)
        .username(email.as_str())
        .password(password)
        .permanent(true)
        .send()
        .await
        .context("set the user's password")?;
    let attributes: HashMap<String, String> = user
        .attributes()
        .iter()
        .filter_map(|a| a.value().map(|v| (a.name().to_owned(), v.to_owned())))
        .collect();
    let sub = attributes
        .get("sub")
        .context("the Cognito user has no sub")?;

    let event = post_confirmation_event(&pool, sub, email.as_str());
    let response = post_json(
        &invoke,
        "/2015-03-31/functions/post-confirmation/invocations",
        &event.to_string(),
    )
    .await
    .with_context(|| format!("invoke post-confirmation through cargo lambda watch at {invoke}"))?;
    if response.0 != 200 {
        bail!("post-confirmation failed ({}): {}", response.0, response.1);
    }
    println!("signed up {email} as {sub}");
    Ok(())
}

pub async fn api_key(email: &str) -> anyhow::Result<()> {
    let email = domain::ids::Email::parse(email)?;
    let env = Env::process();
    let pool = env.required("USER_POOL_ID")?;
    let table = env.required("TABLE_NAME")?;
    let aws = adapters::aws::sdk_config().await;
    let sub = user_sub(&aws, &pool, &email).await?;
    let store = adapters::dynamo::DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table);
    let key = domain::account::issue_api_key(&store, &sub, rand::random())
        .await
        .context("store the new API key")?;
    println!("{}", key.expose());
    Ok(())
}

async fn user_sub(
    aws: &aws_config::SdkConfig,
    pool: &str,
    email: &domain::ids::Email,
) -> anyhow::Result<domain::ids::UserSub> {
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(aws);
    let user = cognito
        .admin_get_user()
        .user_pool_id(pool)
        .username(email.as_str())
        .send()
        .await
        .with_context(|| format!("find {email} in the local user pool (signed up?)"))?;
    let sub = user
        .user_attributes()
        .iter()
        .find(|a| a.name() == "sub")
        .and_then(|a| a.value())
        .context("the Cognito user has no sub")?;
    Ok(domain::ids::UserSub::parse(sub)?)
}

/// `creditgate-dev checkout`: buys through the rules a signed-in user gets from
/// create-session (`domain::account::start_checkout`): a Checkout Session for the user's own
/// customer, completed in the stripe-emulator as a buyer would complete it in the browser; with
/// a live subscription, another plan is a change in place and the same plan is refused.
pub async fn checkout(email: &str, plan: &str, pack: bool) -> anyhow::Result<()> {
    let email = domain::ids::Email::parse(email)?;
    let env = Env::process();
    let pool = env.required("USER_POOL_ID")?;
    let table = env.required("TABLE_NAME")?;
    let base = env
        .required("STRIPE_API_BASE")
        .context("local checkout completes sessions in the stripe-emulator")?;
    let aws = adapters::aws::sdk_config().await;
    let stripe = adapters::wiring::StripeConfig::for_tools(&env)?.state(&aws);
    let key = stripe
        .secrets()
        .current()
        .await
        .context("read the Stripe secret")?
        .secrets
        .secret_key
        .expose_secret()
        .to_owned();
    let catalogue = domain::catalogue::Catalogue::bundled()?;
    let mode = if pack {
        domain::catalogue::SaleMode::Pack
    } else {
        domain::catalogue::SaleMode::Subscription
    };
    let sub = user_sub(&aws, &pool, &email).await?;
    let store = adapters::dynamo::DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table);
    let urls = domain::account::CheckoutUrls {
        success: env
            .optional("CHECKOUT_SUCCESS_URL")
            .unwrap_or_else(|| "http://127.0.0.1/ok".into()),
        cancel: env
            .optional("CHECKOUT_CANCEL_URL")
            .unwrap_or_else(|| "http://127.0.0.1/cancel".into()),
    };
    let idempotency_key = format!(
        "creditgate-checkout-{sub}-local-{:032x}",
        rand::random::<u128>()
    );
    let outcome = domain::account::start_checkout(
        &store,
        &stripe,
        &catalogue,
        &sub,
        plan,
        mode,
        &urls,
        &idempotency_key,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    match outcome {
        domain::account::CheckoutOutcome::Session(session) => {
            let done = stripe_emulator::client::call(
                &base,
                &key,
                "POST",
                &format!("/_emulator/checkout/sessions/{}/complete", session.id),
                "",
            )
            .await
            .with_context(|| format!("complete {} in the stripe-emulator at {base}", session.id))?;
            println!(
                "completed {} ({}): the emulator is delivering its events to stripe-webhook",
                session.id,
                done["subscription"]
                    .as_str()
                    .or(done["payment_intent"].as_str())
                    .unwrap_or_default()
            );
        }
        domain::account::CheckoutOutcome::PlanChanged {
            subscription,
            from,
            to,
        } => println!(
            "changed {subscription} from {} to {to} in place (prorated; no second subscription): the emulator is delivering its events to stripe-webhook",
            from.map(|p| p.to_string())
                .unwrap_or_else(|| "another plan".into())
        ),
    }
    Ok(())
}

/// The event Cognito sends a PostConfirmation trigger after a sign-up is confirmed.
pub fn post_confirmation_event(pool: &str, sub: &str, email: &str) -> serde_json::Value {
    json!({
        "version": "1",
        "region": "us-east-1",
        "userPoolId": pool,
        "userName": sub,
        "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "local"},
        "triggerSource": "PostConfirmation_ConfirmSignUp",
        "request": {"userAttributes": {
            "sub": sub,
            "email": email,
            "email_verified": "true",
            "cognito:user_status": "CONFIRMED"
        }},
        "response": {}
    })
}

/// A minimal HTTP/1.1 POST for the loopback runtime API of `cargo lambda watch`.
async fn post_json(base: &str, path: &str, body: &str) -> anyhow::Result<(u16, String)> {
    anyhow::ensure!(
        base.starts_with("http://"),
        "LAMBDA_INVOKE_URL must be an http:// URL"
    );
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let answer = stripe_emulator::http::send(
        "POST",
        &url,
        &[("content-type", "application/json")],
        body,
        std::time::Duration::from_secs(120),
    )
    .await
    .map_err(anyhow::Error::msg)?;
    Ok((answer.status, answer.body))
}
