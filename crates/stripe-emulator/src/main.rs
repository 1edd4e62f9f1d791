//! `stripe-emulator --port 12111 --api-key sk_test_emulator`: see the crate docs and the README.

use clap::Parser;

#[derive(Parser)]
#[command(
    version,
    about = "An offline emulator of the Stripe API endpoints creditgate uses (dev and test only)."
)]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one; the chosen address is printed).
    #[arg(long, env = "STRIPE_EMULATOR_PORT", default_value_t = 12111)]
    port: u16,
    /// The secret key clients must present as `Authorization: Bearer <key>`.
    #[arg(
        long,
        env = "STRIPE_EMULATOR_API_KEY",
        default_value = "sk_test_emulator"
    )]
    api_key: String,
    /// Stripe's webhook retry delays are divided by this (3600: an hour's wait takes a second).
    #[arg(long, default_value_t = 3600.0)]
    retry_compression: f64,
    /// Keep state in this JSON file (loaded at start if present, rewritten after every change).
    /// Without it, state lives in memory only.
    #[arg(long)]
    state_file: Option<std::path::PathBuf>,
    /// Seconds a webhook endpoint may take to answer before the attempt counts as failed.
    #[arg(long, default_value_t = 10)]
    delivery_timeout: u64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let listener = stripe_emulator::bind(args.port).await?;
    // The one line on stdout: scripts read the address from it.
    println!(
        "stripe-emulator listening on http://{}",
        listener.local_addr()?
    );
    if !(args.retry_compression.is_finite() && args.retry_compression >= 1.0) {
        anyhow::bail!("--retry-compression must be a number >= 1");
    }
    let delivery = stripe_emulator::Delivery {
        retry_compression: args.retry_compression,
        timeout: std::time::Duration::from_secs(args.delivery_timeout),
    };
    let mut emulator = stripe_emulator::Emulator::with_delivery(args.api_key, delivery);
    if let Some(path) = &args.state_file {
        emulator = emulator
            .with_state_file(path)
            .map_err(|e| anyhow::anyhow!("state file {}: {e}", path.display()))?;
    }
    stripe_emulator::serve(listener, emulator).await?;
    Ok(())
}
