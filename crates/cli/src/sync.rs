//! `creditgate plans sync`.

use std::path::Path;

use adapters::Env;
use adapters::stripe_api::StripeBilling;
use anyhow::Context;
use domain::catalogue::Catalogue;
use domain::sync;

pub async fn run(plans: &Path, dry_run: bool) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(plans)
        .with_context(|| format!("read the catalogue at {}", plans.display()))?;
    let catalogue = Catalogue::parse(&text)?;

    let env = Env::process();
    let aws = adapters::aws::sdk_config().await;
    let source = adapters::wiring::StripeConfig::for_tools(&env)?.source(&aws);
    source.stripe().await.context("read the Stripe secret")?;
    let stripe = StripeBilling::new(source);
    let run_id = format!("{:016x}", rand::random::<u64>());
    let made = sync::run(&stripe, &catalogue, dry_run, &run_id, |change| {
        if dry_run {
            println!("would {change}");
        } else {
            println!("{change}");
        }
    })
    .await?;
    match (made, dry_run) {
        (0, _) => println!("plans are in sync: nothing to change"),
        (n, true) => println!("dry run: {n} change(s) would be made"),
        (n, false) => println!("{n} change(s) made"),
    }
    Ok(())
}
