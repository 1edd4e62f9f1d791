//! `creditgate`: the operator's command line.
//!
//! - `creditgate plans sync [--plans plans.json] [--dry-run]`: makes Stripe's products and prices
//!   match plans.json by lookup key and writes the plan items to DynamoDB. Safe to rerun; a
//!   rerun finishes whatever an interrupted run left half done.
//! - `creditgate local signup EMAIL`: the local stack's sign-up: creates the user in moto's
//!   Cognito and invokes post-confirmation through `cargo lambda watch` with the event Cognito
//!   would send (moto calls no triggers).
//! - `creditgate local api-key EMAIL`: issues (rotates) the user's API key and prints it once.
//!
//! Env: `TABLE_NAME`, `STRIPE_SECRET_KEY`, `STRIPE_API_BASE` (optional), AWS endpoints via the
//! SDK's variables; `local signup` also needs `USER_POOL_ID` and `LAMBDA_INVOKE_URL`
//! (`cargo lambda watch`'s address, default http://127.0.0.1:9000).

mod local;
mod sync;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "creditgate",
    version,
    about = "creditgate: Stripe billing for serverless SaaS on AWS"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The plan catalogue.
    Plans {
        #[command(subcommand)]
        command: PlansCommand,
    },
    /// Helpers for the local stack started by scripts/dev.
    Local {
        #[command(subcommand)]
        command: LocalCommand,
    },
}

#[derive(Subcommand)]
enum PlansCommand {
    /// Make Stripe and DynamoDB match plans.json.
    Sync {
        /// The catalogue to sync.
        #[arg(long, default_value = "plans.json")]
        plans: PathBuf,
        /// Print the changes without making them.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum LocalCommand {
    /// Sign a user up locally: Cognito user in moto, then the PostConfirmation trigger via watch.
    Signup {
        email: String,
        /// The password to set (the user is confirmed with it).
        #[arg(long, default_value = "Local-passw0rd!")]
        password: String,
    },
    /// Issue (or rotate) a signed-up user's API key and print it; the old key stops working.
    ApiKey { email: String },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            // Not RUST_LOG: the local env file sets that for the Lambdas.
            tracing_subscriber::EnvFilter::try_from_env("CREDITGATE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,stripe=error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Plans {
            command: PlansCommand::Sync { plans, dry_run },
        } => sync::run(&plans, dry_run).await,
        Command::Local {
            command: LocalCommand::Signup { email, password },
        } => local::signup(&email, &password).await,
        Command::Local {
            command: LocalCommand::ApiKey { email },
        } => local::api_key(&email).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
