//! `creditgate-dev`: helpers for the local stack started by `scripts/dev` (never deployed; the
//! operator's `creditgate` links none of this).
//!
//! - `creditgate-dev signup EMAIL`: the local stack's sign-up: creates the user in moto's
//!   Cognito and invokes post-confirmation through `cargo lambda watch` with the event Cognito
//!   would send (moto calls no triggers).
//! - `creditgate-dev api-key EMAIL`: issues (rotates) the user's API key and prints it once.
//! - `creditgate-dev checkout EMAIL PLAN [--pack]`: buys by create-session's rules against the
//!   stripe-emulator: a session for the user's own customer, completed at once (the emulator
//!   then delivers the events to the webhook); with a live subscription, another plan is a
//!   change in place and the same plan is refused.
//!
//! Env (`.local/env`, written by `scripts/dev`): `TABLE_NAME`, `USER_POOL_ID`,
//! `STRIPE_SECRET_ARN` or `STRIPE_SECRET_KEY`, `STRIPE_API_BASE`, `LAMBDA_INVOKE_URL`
//! (`cargo lambda watch`'s address, default http://127.0.0.1:9000), AWS endpoints via the SDK's
//! variables.

mod local;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "creditgate-dev",
    version,
    about = "creditgate-dev: helpers for the local stack started by scripts/dev"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sign a user up locally: Cognito user in moto, then the PostConfirmation trigger via watch.
    Signup {
        email: String,
        /// The password to set (the user is confirmed with it).
        #[arg(long, default_value = "Local-passw0rd!")]
        password: String,
    },
    /// Issue (or rotate) a signed-up user's API key and print it; the old key stops working.
    ApiKey { email: String },
    /// Buy a plan for a signed-up user, by the rules create-session applies: a Checkout Session
    /// for her own customer, completed in the stripe-emulator; with a live subscription, another
    /// plan changes it in place (prorated) and the same plan is refused.
    Checkout {
        /// The signed-up user's email (`creditgate-dev signup EMAIL` first).
        email: String,
        /// A plan id from plans.json sold as a subscription (or, with --pack, as a pack): basic, power.
        plan: String,
        /// Buy the plan's one-off credit pack instead of subscribing.
        #[arg(long)]
        pack: bool,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    adapters::tools::init_logging();
    let result = match Cli::parse().command {
        Command::Signup { email, password } => local::signup(&email, &password).await,
        Command::ApiKey { email } => local::api_key(&email).await,
        Command::Checkout { email, plan, pack } => local::checkout(&email, &plan, pack).await,
    };
    adapters::tools::exit(result)
}
