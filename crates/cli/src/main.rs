//! `creditgate`: the operator's command line.
//!
//! - `creditgate plans sync [--plans plans.json] [--dry-run]`: makes Stripe's products and prices
//!   match plans.json by lookup key (each price's metadata names its plan and mode). Safe to
//!   rerun; a rerun finishes whatever an interrupted run left half done.
//! - `creditgate reconcile`: replays what `events replay` would, then compares every user's
//!   profile with Stripe (plan, access, the followed subscription, the allowance's grant) and
//!   repairs drift with the webhook's own reconciliation; prints each event, each repaired or
//!   failed user and the counts; fails if any remain.
//! - `creditgate purchases held [--all]`: pay-first purchases held because their email belongs
//!   to an existing user (unclaimed ones; `--all` adds the claimed), for operators.
//! - `creditgate events replay [--id evt_...] [--type T] [--since T] [--until T] [--all-events]
//!   [--dry-run]`:
//!   re-processes webhook events left failed or stuck, and events Stripe could not deliver that
//!   have no settled record, with the webhook's own use case (`domain::events::replay`).
//!
//! The local stack's helpers (sign up, API key, checkout against the stripe-emulator) are in
//! the development binary `creditgate-dev` (crates/dev): this one links no emulator and no
//! Lambda crate.
//!
//! Env: `TABLE_NAME`, `STRIPE_SECRET_ARN` (the deployed secret) or `STRIPE_SECRET_KEY`,
//! `STRIPE_API_BASE` (optional), AWS endpoints via the SDK's variables; `events replay` the
//! webhook's variables (`USER_POOL_ID`, `CREDIT_MANAGER_ARN`, optional `LAPSE_MODE`,
//! `PAST_DUE_GRACE_SECONDS`).

mod events;
mod reconcile;
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
    /// Webhook events.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Replay failed, stuck and undelivered events, then compare every user's profile with
    /// Stripe and repair what drifted, with the webhook's own reconciliation; prints each
    /// event, each repaired or failed user, then the counts.
    Reconcile,
    /// Pay-first purchases held for the owner of their email (DESIGN.md "Trust model").
    Purchases {
        #[command(subcommand)]
        command: PurchasesCommand,
    },
}

#[derive(Subcommand)]
enum PlansCommand {
    /// Make Stripe's products and prices match plans.json.
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
enum PurchasesCommand {
    /// List held purchases: session, plan, buyer's customer, email, when held, who claimed it.
    Held {
        /// Also list the ones already claimed.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Subcommand)]
enum EventsCommand {
    /// Re-process webhook events left failed or stuck, and those Stripe could not deliver (all
    /// of them, or those the filters select).
    Replay {
        /// Only these events (repeatable); one named here is replayed from Stripe even if its
        /// delivery never failed, as long as it has no settled record.
        #[arg(long = "id")]
        ids: Vec<String>,
        /// Only events of this type (`invoice.paid`, or a prefix such as `customer.subscription.*`).
        #[arg(long = "type")]
        event_type: Option<String>,
        /// Only events created at or after this time (RFC 3339 or unix seconds).
        #[arg(long, value_parser = events::parse_time)]
        since: Option<i64>,
        /// Only events created at or before this time (RFC 3339 or unix seconds).
        #[arg(long, value_parser = events::parse_time)]
        until: Option<i64>,
        /// Also every event Stripe has (since --since, or 30 days) that has no settled record,
        /// not only those whose delivery failed: when Stripe never tried (the endpoint was
        /// deleted or disabled).
        #[arg(long)]
        all_events: bool,
        /// List what would be replayed.
        #[arg(long)]
        dry_run: bool,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    adapters::tools::init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Plans {
            command: PlansCommand::Sync { plans, dry_run },
        } => sync::run(&plans, dry_run).await,
        Command::Purchases {
            command: PurchasesCommand::Held { all },
        } => held(all).await,
        Command::Reconcile => reconcile::run().await,
        Command::Events {
            command:
                EventsCommand::Replay {
                    ids,
                    event_type,
                    since,
                    until,
                    all_events,
                    dry_run,
                },
        } => {
            events::replay(
                domain::events::ReplayFilter {
                    ids,
                    event_type,
                    since,
                    until,
                    all_events,
                    unrecorded_since: None,
                },
                dry_run,
            )
            .await
        }
    };
    adapters::tools::exit(result)
}

/// `creditgate purchases held`: one line per held purchase.
async fn held(all: bool) -> anyhow::Result<()> {
    let env = adapters::Env::process();
    let aws = adapters::aws::sdk_config().await;
    let store = adapters::dynamo::DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&aws),
        env.required("TABLE_NAME")?,
    );
    let held = domain::account::held_purchases(&store, all).await?;
    if held.is_empty() {
        println!("no held purchases");
        return Ok(());
    }
    for h in &held {
        println!(
            "{}  {:<12} {:<6} customer {}  for {}  held {}  {}",
            h.session,
            match h.mode {
                domain::ports::SessionMode::Subscription => "subscription",
                domain::ports::SessionMode::Payment => "pack",
                domain::ports::SessionMode::Other => "other",
            },
            h.plan.as_ref().map(|p| p.as_str()).unwrap_or("-"),
            h.customer,
            h.email,
            domain::stripe_events::rfc3339(h.held_at),
            h.claimed_by
                .as_ref()
                .map(|s| format!("claimed by {s}"))
                .unwrap_or_else(|| {
                    "unclaimed: the email's owner claims it (POST /purchases/claim)".into()
                }),
        );
    }
    println!("{} held purchase(s)", held.len());
    Ok(())
}
