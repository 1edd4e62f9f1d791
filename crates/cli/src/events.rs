//! `creditgate events replay`: re-processes failed webhook events with the webhook's own use
//! case (`domain::events::replay`), printing a line per event as it goes.

use adapters::Env;
use adapters::wiring::{LifecycleConfig, LiveLifecycle, live_lifecycle};
use domain::events::{
    Candidate, Outcome, Reason, ReplayCounts, ReplayFilter, Replayed, replay as replay_events,
};

/// RFC 3339 or unix seconds.
pub fn parse_time(raw: &str) -> Result<i64, String> {
    if let Ok(secs) = raw.parse::<i64>() {
        return Ok(secs);
    }
    time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| format!("`{raw}` is neither RFC 3339 (2026-11-23T10:00:00Z) nor unix seconds"))
}

fn why(candidate: &Candidate) -> String {
    match &candidate.reason {
        Reason::Failed {
            attempts,
            last_error,
        } => format!("{attempts} attempts, last error: {last_error}"),
        Reason::Stuck {
            attempts,
            lease_ended,
        } => format!(
            "{attempts} attempts, left processing: its lease ended {}",
            domain::stripe_events::rfc3339(*lease_ended)
        ),
        Reason::Undelivered => "Stripe could not deliver it and it has no settled record".into(),
        Reason::Unrecorded => "it has no settled record (Stripe never sent it)".into(),
    }
}

fn line(replayed: &Replayed) -> String {
    match replayed {
        Replayed::Gone(record) => format!(
            "{}: Stripe no longer has this event (older than 30 days?); skipped",
            record.id
        ),
        Replayed::WouldReplay(record) => format!(
            "would replay {} ({}, {})",
            record.id,
            record.event_type,
            why(record)
        ),
        Replayed::Processed(record, outcome) => match outcome {
            Outcome::Applied(what) => format!("{}: applied: {what}", record.id),
            Outcome::Ignored(why) => format!("{}: ignored: {why}", record.id),
            Outcome::Duplicate => format!("{}: already done", record.id),
            Outcome::InProgress => format!(
                "{}: being processed by a delivery right now; skipped",
                record.id
            ),
            Outcome::Failed => format!("{}: failed again (see the log above)", record.id),
        },
    }
}

pub async fn replay(filter: ReplayFilter, dry_run: bool) -> anyhow::Result<()> {
    let lifecycle = live_lifecycle(LifecycleConfig::for_tools(&Env::process())?).await?;
    let still_failing = replay_with(&lifecycle, &filter, dry_run).await?;
    anyhow::ensure!(still_failing == 0, "{still_failing} event(s) still fail");
    Ok(())
}

/// Replays, printing a line per event and the counts; returns how many still fail.
pub async fn replay_with(
    lifecycle: &LiveLifecycle,
    filter: &ReplayFilter,
    dry_run: bool,
) -> anyhow::Result<u64> {
    let done = replay_events(lifecycle, filter, dry_run, adapters::unix_now, print).await?;
    if dry_run && !done.is_empty() {
        return Ok(0);
    }
    Ok(print_counts(&ReplayCounts::of(&done)))
}

/// One line per event a replay took.
pub fn print(replayed: &Replayed) {
    println!("{}", line(replayed));
}

/// A replay's counts, as one line; returns how many still fail.
pub fn print_counts(counts: &ReplayCounts) -> u64 {
    if counts.listed == 0 {
        println!("no failed events match (nor stuck or undelivered ones)");
    } else {
        println!(
            "replayed {}, still failing {}",
            counts.replayed, counts.still_failing
        );
    }
    counts.still_failing
}
