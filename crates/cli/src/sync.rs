//! `creditgate plans sync`.

use std::path::Path;

use adapters::Env;
use adapters::stripe_api;
use anyhow::Context;
use domain::catalogue::Catalogue;
use domain::sync::changes;

pub async fn run(plans: &Path, dry_run: bool) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(plans)
        .with_context(|| format!("read the catalogue at {}", plans.display()))?;
    let catalogue = Catalogue::parse(&text)?;

    let env = Env::process();
    let aws = adapters::aws::sdk_config().await;
    let stripe = adapters::wiring::StripeConfig::for_tools(&env)?
        .state(&aws)
        .stripe()
        .await
        .context("read the Stripe secret")?
        .client;

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

    // Read back what Stripe now holds: a run is done only when nothing is left to change.
    if !dry_run && !stripe_changes.is_empty() {
        let after = stripe_api::read_catalogue(&stripe, &catalogue).await?;
        let left = changes(&catalogue, &after);
        anyhow::ensure!(
            left.is_empty(),
            "Stripe did not converge; still to do: {left:?}"
        );
    }

    match (made, dry_run) {
        (0, _) => println!("plans are in sync: nothing to change"),
        (n, true) => println!("dry run: {n} change(s) would be made"),
        (n, false) => println!("{n} change(s) made"),
    }
    Ok(())
}
