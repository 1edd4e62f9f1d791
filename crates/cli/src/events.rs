//! `creditgate events replay`: re-processes failed webhook events with the webhook's own code.

use adapters::Env;
use adapters::wiring::{LifecycleConfig, live_lifecycle};
use anyhow::Context;
use domain::stripe_events::EventRef;
use stripe_webhook::handler::Outcome;
use stripe_webhook::{Deps, process};

pub struct Filter {
    pub ids: Vec<String>,
    pub event_type: Option<String>,
    /// Unix seconds, inclusive, on the Stripe event's `created`.
    pub since: Option<i64>,
    pub until: Option<i64>,
}

impl Filter {
    fn admits_record(&self, id: &str, event_type: &str) -> bool {
        (self.ids.is_empty() || self.ids.iter().any(|i| i == id))
            && self.event_type.as_deref().is_none_or(|t| {
                t == event_type
                    || (t.ends_with('*') && event_type.starts_with(t.trim_end_matches('*')))
            })
    }

    fn admits_time(&self, created: i64) -> bool {
        self.since.is_none_or(|s| created >= s) && self.until.is_none_or(|u| created <= u)
    }
}

/// RFC 3339 or unix seconds.
pub fn parse_time(raw: &str) -> Result<i64, String> {
    if let Ok(secs) = raw.parse::<i64>() {
        return Ok(secs);
    }
    time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| format!("`{raw}` is neither RFC 3339 (2026-11-23T10:00:00Z) nor unix seconds"))
}

pub async fn replay(filter: Filter, dry_run: bool) -> anyhow::Result<()> {
    let lifecycle = live_lifecycle(LifecycleConfig::for_tools(&Env::process())?).await?;
    let deps = Deps {
        // Replays read events from Stripe's API: there is no signature to check.
        secrets: lifecycle.stripe.secrets().clone(),
        lifecycle,
    };

    let failed = deps
        .lifecycle
        .store
        .failed_events()
        .await
        .context("list failed events (is AWS reachable?)")?;
    let chosen: Vec<_> = failed
        .into_iter()
        .filter(|e| filter.admits_record(&e.id, &e.event_type))
        .collect();
    if chosen.is_empty() {
        println!("no failed events match");
        return Ok(());
    }
    let (mut replayed, mut still_failing) = (0usize, 0usize);
    for record in chosen {
        let Some(payload) = deps
            .lifecycle
            .stripe
            .event_payload(&record.id)
            .await
            .with_context(|| format!("read {} from Stripe", record.id))?
        else {
            println!(
                "{}: Stripe no longer has this event (older than 30 days?); skipped",
                record.id
            );
            continue;
        };
        let event = EventRef::parse(payload.as_bytes())
            .with_context(|| format!("{} from Stripe", record.id))?;
        if !filter.admits_time(event.created) {
            continue;
        }
        if dry_run {
            println!(
                "would replay {} ({}, {} attempts, last error: {})",
                record.id, record.event_type, record.attempts, record.last_error
            );
            continue;
        }
        match process(&deps, &event).await {
            Outcome::Applied(what) => {
                replayed += 1;
                println!("{}: applied: {what}", record.id);
            }
            Outcome::Ignored(why) => {
                replayed += 1;
                println!("{}: ignored: {why}", record.id);
            }
            Outcome::Duplicate => println!("{}: already done", record.id),
            Outcome::InProgress => println!(
                "{}: being processed by a delivery right now; skipped",
                record.id
            ),
            Outcome::Failed => {
                still_failing += 1;
                println!("{}: failed again (see the log above)", record.id);
            }
        }
    }
    if !dry_run {
        println!("replayed {replayed}, still failing {still_failing}");
    }
    anyhow::ensure!(still_failing == 0, "{still_failing} event(s) still fail");
    Ok(())
}
