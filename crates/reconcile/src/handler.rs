use domain::events::{Outcome, ReplayFilter, Replayed, replay};
use domain::ports::{Accounts, Directory, Ledger, Payments, Scheduler, StripeReads, error_chain};
use domain::reconcile::reconcile_all;
use domain::stripe_events::Lifecycle;
use domain::webhook::EventLedger;
use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a run may be asked (EventBridge Scheduler sends `{}`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// How far back (unix seconds) to ask Stripe for undelivered events; default 30 days.
    #[serde(default)]
    pub since: Option<i64>,
}

/// What a run did: the answer, and the one `reconcile_report` log line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub events_replayed: u64,
    pub events_failed: u64,
    pub checked: u64,
    pub drifted: u64,
    pub repaired: u64,
    pub failed: u64,
    pub unrepaired: u64,
}

pub async fn handle<St, R, D, S>(
    lifecycle: &Lifecycle<St, R, D, S>,
    event: LambdaEvent<Value>,
) -> Result<Summary, lambda_runtime::Error>
where
    St: Accounts + Ledger + EventLedger + Sync,
    R: StripeReads + Payments + Sync,
    D: Directory + Sync,
    S: Scheduler + Sync,
{
    let input: Input = match event.payload {
        Value::Null => Input::default(),
        payload => serde_json::from_value(payload).map_err(|e| {
            format!("the reconcile input is `{{}}` or `{{\"since\": <unix seconds>}}`: {e}")
        })?,
    };
    let filter = ReplayFilter {
        since: input.since,
        ..ReplayFilter::default()
    };
    let replayed = replay(lifecycle, &filter, false, adapters::unix_now, |_| {})
        .await
        .map_err(|e| error_chain(&e))?;
    let outcomes = |f: fn(&Outcome) -> bool| {
        replayed
            .iter()
            .filter(|r| matches!(r, Replayed::Processed(_, o) if f(o)))
            .count() as u64
    };
    let report = reconcile_all(lifecycle, adapters::unix_now, |_, _| {})
        .await
        .map_err(|e| error_chain(&e))?;
    let summary = Summary {
        events_replayed: outcomes(|o| matches!(o, Outcome::Applied(_) | Outcome::Ignored(_))),
        events_failed: outcomes(|o| matches!(o, Outcome::Failed)),
        checked: report.checked,
        drifted: report.drifted,
        repaired: report.repaired,
        failed: report.failed,
        unrepaired: report.unrepaired(),
    };
    tracing::info!(
        metric = "reconcile_report",
        events_replayed = summary.events_replayed,
        events_failed = summary.events_failed,
        checked = summary.checked,
        drifted = summary.drifted,
        repaired = summary.repaired,
        failed = summary.failed,
        unrepaired = summary.unrepaired,
        "reconciliation done"
    );
    Ok(summary)
}
