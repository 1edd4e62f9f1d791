//! `creditgate plans sync`.

use std::path::Path;

use adapters::Env;
use adapters::dynamo::DynamoStore;
use adapters::items::{PlanItem, plan_pk};
use adapters::stripe_api;
use anyhow::Context;
use domain::catalogue::{Catalogue, SaleMode};
use domain::sync::{changes, current_price};

pub async fn run(plans: &Path, dry_run: bool) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(plans)
        .with_context(|| format!("read the catalogue at {}", plans.display()))?;
    let catalogue = Catalogue::parse(&text)?;

    let env = Env::process();
    let table = env.required("TABLE_NAME")?;
    let aws = adapters::aws::sdk_config().await;
    let stripe = adapters::wiring::StripeConfig::for_tools(&env)?
        .state(&aws)
        .stripe()
        .await
        .context("read the Stripe secret")?
        .client;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table);

    let before = stripe_api::read_catalogue(&stripe, &catalogue)
        .await
        .context("read the catalogue from Stripe (is STRIPE_API_BASE or the network reachable?)")?;
    let stripe_changes = changes(&catalogue, &before);

    let run_id = format!("{:016x}", rand::random::<u64>());
    let mut made = 0usize;
    for change in &stripe_changes {
        if dry_run {
            println!("would {change}");
            continue;
        }
        stripe_api::apply_change(&stripe, change, &run_id)
            .await
            .with_context(|| {
                format!("{change} (rerun to finish; completed steps are not repeated)")
            })?;
        println!("{change}");
        made += 1;
    }

    // Read back what Stripe now holds: plan items carry the price ids that really serve.
    let after = if dry_run || stripe_changes.is_empty() {
        before
    } else {
        let after = stripe_api::read_catalogue(&stripe, &catalogue).await?;
        let left = changes(&catalogue, &after);
        anyhow::ensure!(
            left.is_empty(),
            "Stripe did not converge; still to do: {left:?}"
        );
        after
    };

    for plan in catalogue.plans() {
        let price_of = |mode| {
            plan.sells_as(mode)
                .then(|| current_price(&after, plan, mode).map(|p| p.id.clone()))
                .flatten()
        };
        let wanted = PlanItem::new(
            plan,
            price_of(SaleMode::Subscription),
            price_of(SaleMode::Pack),
        );
        let stored = store.plan_item(&plan_pk(plan.id())).await.context(
            "read plan items from DynamoDB (is TABLE_NAME right and the endpoint reachable?)",
        )?;
        if stored.as_ref() == Some(&wanted) {
            continue;
        }
        if dry_run {
            println!("would write plan item {}", wanted.pk);
            made += 1;
            continue;
        }
        store
            .put_plan_item(&wanted)
            .await
            .with_context(|| format!("write plan item {}", wanted.pk))?;
        println!("wrote plan item {}", wanted.pk);
        made += 1;
    }

    match (made, dry_run) {
        (0, _) => println!("plans are in sync: nothing to change"),
        (n, true) => println!("dry run: {n} change(s) would be made"),
        (n, false) => println!("{n} change(s) made"),
    }
    Ok(())
}
