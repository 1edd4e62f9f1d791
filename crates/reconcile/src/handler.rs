use domain::events::ReplayCounts;
use domain::lifecycle::Lifecycle;
use domain::ports::{Accounts, Directory, Ledger, Payments, Scheduler, StripeReads, error_chain};
use domain::reconcile;
use domain::webhook::EventLedger;
use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What a run may be asked (EventBridge Scheduler sends `{}`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// How far back (unix seconds) to ask Stripe for undelivered events; default 30 days.
    #[serde(default)]
    pub since: Option<i64>,
    /// Where an earlier run stopped for want of time (its answer's `resume`): this run goes on
    /// from there with the users, without replaying events again.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// Time left for one more page of users when a run decides whether to go on: a page is one
/// Scan of at most `adapters::dynamo::USERS_PAGE_ITEMS` items and a few Stripe and Cognito
/// reads per user on it.
pub const PAGE_MARGIN: Duration = Duration::from_secs(180);

/// What a run did: the answer, and the one `reconcile_report` log line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub events_replayed: u64,
    pub events_failed: u64,
    /// The replay could not run at all (its error is logged); the users were still checked.
    pub replay_failed: bool,
    pub checked: u64,
    pub drifted: u64,
    pub repaired: u64,
    pub failed: u64,
    pub unrepaired: u64,
    /// Present when the run stopped before the last user for want of time: the input
    /// `{"cursor": <this>}` goes on from there (the template's state machine does so).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resume: Option<String>,
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
            format!(
                "the reconcile input is `{{}}`, `{{\"since\": <unix seconds>}}` or \
                 `{{\"cursor\": <an earlier answer's resume>}}`: {e}"
            )
        })?,
    };
    // Lambda's deadline; a context without one (a test's) lets the run go to the end.
    let deadline = UNIX_EPOCH + Duration::from_millis(event.context.deadline);
    let more_time = || {
        event.context.deadline == 0
            || SystemTime::now()
                .checked_add(PAGE_MARGIN)
                .is_some_and(|t| t < deadline)
    };
    // A continuation goes on with the users: the first run of the chain replayed the events.
    // A replay that cannot run does not stop the users' reconciliation: it is logged (alarmed)
    // at once and answered as `replay_failed`.
    let (events, replay_failed) = match input.cursor {
        Some(_) => (ReplayCounts::default(), false),
        None => {
            match reconcile::replay_events(lifecycle, input.since, adapters::unix_now, |_| {}).await
            {
                Ok(counts) => (counts, false),
                Err(e) => {
                    tracing::error!(
                        metric = "reconcile_replay_failed",
                        error = %error_chain(&e),
                        "could not replay events; reconciling the users anyway"
                    );
                    (ReplayCounts::default(), true)
                }
            }
        }
    };
    let progress = reconcile::reconcile_from(
        lifecycle,
        input.cursor,
        more_time,
        adapters::unix_now,
        |_, _| {},
    )
    .await
    .map_err(|e| error_chain(&e))?;
    let report = progress.report;
    let summary = Summary {
        events_replayed: events.replayed,
        events_failed: events.still_failing,
        replay_failed,
        checked: report.checked,
        drifted: report.drifted,
        repaired: report.repaired,
        failed: report.failed,
        unrepaired: report.unrepaired(),
        resume: progress.resume,
    };
    tracing::info!(
        metric = "reconcile_report",
        events_replayed = summary.events_replayed,
        events_failed = summary.events_failed,
        replay_failed = summary.replay_failed,
        checked = summary.checked,
        drifted = summary.drifted,
        repaired = summary.repaired,
        failed = summary.failed,
        unrepaired = summary.unrepaired,
        resume = summary.resume.is_some(),
        "{}",
        if summary.resume.is_some() {
            "reconciliation stopped for time: the answer's resume goes on"
        } else {
            "reconciliation done"
        }
    );
    Ok(summary)
}
