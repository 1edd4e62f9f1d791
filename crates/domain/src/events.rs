//! The webhook's use cases over the ports: processing one verified Stripe event exactly once
//! (claim its record, apply it, settle the record) and replaying failed events. The
//! stripe-webhook Lambda calls [`process`] for each delivery; `creditgate events replay` calls
//! [`replay`], which runs the same [`process`] on the event as Stripe's API returns it, for
//! records left failed or stuck and for events Stripe could not deliver.

use crate::lifecycle::{Handled, Lifecycle};
use crate::ports::{Accounts, Directory, Ledger, Payments, Scheduler, StripeReads, error_chain};
use crate::stripe_events::EventRef;
use crate::webhook::{Claim, EventLedger, Finished, LEASE_SECONDS, UnsettledEvent};

/// What processing a verified event came to; the webhook turns it into a status code in one
/// place, replays into a line of output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Applied(crate::lifecycle::Applied),
    Ignored(String),
    /// Already done: nothing happened now.
    Duplicate,
    /// Another delivery holds the event's lease.
    InProgress,
    /// Failed and recorded as failed; Stripe's retry or a replay will complete it.
    Failed,
}

/// Claims, applies and settles one verified event at `now` (unix seconds). Every way it can
/// fail logs one ERROR line with `metric = "webhook_event_failed"` (the template's alarm).
#[tracing::instrument(skip_all, fields(stripe_event_id = %event.id, event_type = %event.kind))]
pub async fn process<St, R, D, S>(
    lifecycle: &Lifecycle<St, R, D, S>,
    event: &EventRef,
    now: i64,
) -> Outcome
where
    St: Accounts + Ledger + EventLedger + Sync,
    R: StripeReads + Payments + Sync,
    D: Directory + Sync,
    S: Scheduler + Sync,
{
    let store = &lifecycle.store;
    let claim = match store
        .claim(&event.id, &event.kind, now, now + LEASE_SECONDS)
        .await
    {
        Ok(claim) => claim,
        Err(e) => {
            tracing::error!(
                error = %error_chain(&e),
                metric = "webhook_event_failed",
                "could not claim the event"
            );
            return Outcome::Failed;
        }
    };
    let attempt = match claim {
        Claim::AlreadyDone => {
            tracing::info!("duplicate delivery of a finished event: nothing to do");
            return Outcome::Duplicate;
        }
        Claim::InProgress => {
            tracing::info!("event is being processed by another delivery");
            return Outcome::InProgress;
        }
        Claim::Owned { attempt } => attempt,
    };
    let (outcome, finished) = match lifecycle.handle(event).await {
        Ok(Handled::Applied(what)) => {
            tracing::info!(attempt, result = %what, "event applied");
            (Outcome::Applied(what), Finished::Done)
        }
        Ok(Handled::Ignored(why)) => {
            tracing::info!(attempt, reason = %why, "event ignored");
            (Outcome::Ignored(why), Finished::Ignored)
        }
        Err(e) => {
            let error = error_chain(&e);
            tracing::error!(
                attempt,
                error = %error,
                metric = "webhook_event_failed",
                "event failed; Stripe will retry"
            );
            match store.fail(&event.id, attempt, &error).await {
                Ok(true) => {}
                Ok(false) => tracing::warn!(
                    attempt,
                    "another delivery took the event over: it settles the record"
                ),
                Err(e) => tracing::error!(
                    error = %error_chain(&e),
                    "could not mark the event failed (its lease will lapse)"
                ),
            }
            return Outcome::Failed;
        }
    };
    match store.finish(&event.id, attempt, finished).await {
        Ok(true) => {}
        // Our lease lapsed and another delivery took the event over: applied here as well,
        // which converges (every effect is keyed or a reconciliation); it settles the record.
        Ok(false) => tracing::warn!(
            attempt,
            "another delivery took the event over while this one applied it: it settles the record"
        ),
        Err(e) => {
            // Applied but not marked: a redelivery applies it again, which converges to the
            // same state (every effect is keyed or a reconciliation).
            tracing::error!(
                error = %error_chain(&e),
                metric = "webhook_event_failed",
                "could not mark the event finished"
            );
            return Outcome::Failed;
        }
    }
    outcome
}

/// Which events a replay takes: all of them, or those every given filter admits.
#[derive(Debug, Clone, Default)]
pub struct ReplayFilter {
    pub ids: Vec<String>,
    /// `invoice.paid`, or a prefix ending in `*` such as `customer.subscription.*`.
    pub event_type: Option<String>,
    /// Unix seconds, inclusive, on the Stripe event's `created`.
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Every event Stripe has since `since` (or 30 days) without a settled record, not only
    /// those whose delivery failed: for when Stripe never tried (a deleted or disabled
    /// endpoint).
    pub all_events: bool,
    /// Also every event of a type the webhook handles created since then that has no settled
    /// record, delivered or not (what `creditgate reconcile` and the reconcile Lambda sweep:
    /// an endpoint deleted or disabled makes Stripe try nothing, so nothing is "undelivered").
    pub unrecorded_since: Option<i64>,
}

/// How far back reconciliation sweeps for handled events with no settled record, by default:
/// longer than any outage a daily run would not already have swept.
pub const UNRECORDED_SWEEP_SECONDS: i64 = 3 * 86_400;

impl ReplayFilter {
    /// What reconciliation replays (`creditgate reconcile`, the reconcile Lambda): records
    /// failed or stuck, events Stripe could not deliver since `since` (or 30 days), and the
    /// handled events of the last three days (or since `since`) with no settled record.
    pub fn for_reconcile(since: Option<i64>, now: i64) -> Self {
        Self {
            since,
            unrecorded_since: Some(since.unwrap_or(now - UNRECORDED_SWEEP_SECONDS)),
            ..Self::default()
        }
    }

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

/// Why a replay takes an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Its record is `failed` (with the error).
    Failed { attempts: i64, last_error: String },
    /// Its record was left `processing` and its lease ended at `lease_ended`.
    Stuck { attempts: i64, lease_ended: i64 },
    /// Stripe could not deliver it (`delivery_success=false`) and it has no settled record:
    /// the claim itself failed, or no delivery ever reached the webhook.
    Undelivered,
    /// It has no settled record, and Stripe never reported a failed delivery: it was never
    /// sent (the endpoint was deleted or disabled, or not subscribed to its type). Taken with
    /// `all_events`, or when named by id.
    Unrecorded,
}

/// An event a replay takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: String,
    pub event_type: String,
    pub reason: Reason,
}

impl From<UnsettledEvent> for Candidate {
    fn from(e: UnsettledEvent) -> Self {
        let reason = match e.lease_ended {
            Some(lease_ended) => Reason::Stuck {
                attempts: e.attempts,
                lease_ended,
            },
            None => Reason::Failed {
                attempts: e.attempts,
                last_error: e.last_error,
            },
        };
        Self {
            id: e.id,
            event_type: e.event_type,
            reason,
        }
    }
}

/// What a replay did with one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replayed {
    /// `dry_run`: it would be processed again.
    WouldReplay(Candidate),
    /// Processed again with the webhook's own [`process`].
    Processed(Candidate, Outcome),
    /// Stripe no longer has the event (older than 30 days?).
    Gone(Candidate),
}

/// A replay's outcomes counted: events listed, processed to an end, and still failing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayCounts {
    /// Every event the replay found (processed, gone, or listed by a dry run).
    pub listed: u64,
    /// Processed and applied or ignored: done.
    pub replayed: u64,
    pub still_failing: u64,
}

impl ReplayCounts {
    pub fn of(done: &[Replayed]) -> Self {
        let count = |f: fn(&Outcome) -> bool| {
            done.iter()
                .filter(|r| matches!(r, Replayed::Processed(_, o) if f(o)))
                .count() as u64
        };
        Self {
            listed: done.len() as u64,
            replayed: count(|o| matches!(o, Outcome::Applied(_) | Outcome::Ignored(_))),
            still_failing: count(|o| matches!(o, Outcome::Failed)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("list unsettled events (is AWS reachable?)")]
    List(#[source] crate::ports::PortError),
    #[error("list Stripe's events")]
    ListStripe(#[source] crate::ports::PortError),
    #[error("read {0} from Stripe")]
    Read(String, #[source] crate::ports::PortError),
    #[error("{0} from Stripe")]
    Malformed(String, #[source] crate::stripe_events::MalformedEvent),
}

/// How far back a replay asks Stripe for undelivered events: Stripe keeps events 30 days.
pub const UNDELIVERED_LOOKBACK_SECONDS: i64 = 30 * 86_400;

/// Re-processes, with the webhook's own [`process`], the events the filter admits among: the
/// records left `failed` or stuck `processing` past their lease, then the events Stripe could
/// not deliver (with `all_events`: every event) that have no settled record (since
/// `filter.since`, or the last 30 days), then the ids the filter names that have none. Each
/// is read from Stripe's API as Stripe would deliver it; `now` is asked before each event and
/// `each` is told of each as it is done. Stops at the first event it cannot read.
pub async fn replay<St, R, D, S>(
    lifecycle: &Lifecycle<St, R, D, S>,
    filter: &ReplayFilter,
    dry_run: bool,
    now: impl Fn() -> i64,
    mut each: impl FnMut(&Replayed),
) -> Result<Vec<Replayed>, ReplayError>
where
    St: Accounts + Ledger + EventLedger + Sync,
    R: StripeReads + Payments + Sync,
    D: Directory + Sync,
    S: Scheduler + Sync,
{
    let mut candidates: Vec<(Candidate, Option<EventRef>)> = lifecycle
        .store
        .unsettled_events(now())
        .await
        .map_err(ReplayError::List)?
        .into_iter()
        .map(|e| (Candidate::from(e), None))
        .collect();
    let mut gone_early = Vec::new();
    let since = filter
        .since
        .unwrap_or_else(|| now() - UNDELIVERED_LOOKBACK_SECONDS);
    let reason = if filter.all_events {
        Reason::Unrecorded
    } else {
        Reason::Undelivered
    };
    let mut lists = vec![(since, !filter.all_events, reason, false)];
    // The recent handled events with no settled record, whatever Stripe says of delivery.
    if let Some(sweep_since) = filter.unrecorded_since.filter(|_| !filter.all_events) {
        lists.push((sweep_since, false, Reason::Unrecorded, true));
    }
    for (since, undelivered_only, reason, handled_only) in lists {
        for payload in lifecycle
            .stripe
            .events_since(since, undelivered_only)
            .await
            .map_err(ReplayError::ListStripe)?
        {
            let event = EventRef::parse(payload.as_bytes())
                .map_err(|e| ReplayError::Malformed("an event listed".into(), e))?;
            if (handled_only && !crate::stripe_events::HANDLED_TYPES.contains(&event.kind.as_str()))
                || candidates.iter().any(|(c, _)| c.id == event.id)
                || !filter.admits_record(&event.id, &event.kind)
                || lifecycle
                    .store
                    .is_settled(&event.id)
                    .await
                    .map_err(ReplayError::List)?
            {
                continue;
            }
            let candidate = Candidate {
                id: event.id.clone(),
                event_type: event.kind.clone(),
                reason: reason.clone(),
            };
            candidates.push((candidate, Some(event)));
        }
    }
    // An event named by id is taken whatever Stripe says of its delivery, if it has no
    // settled record (older than the window, or never sent).
    for id in &filter.ids {
        if candidates.iter().any(|(c, _)| c.id == *id)
            || lifecycle
                .store
                .is_settled(id)
                .await
                .map_err(ReplayError::List)?
        {
            continue;
        }
        let Some(payload) = lifecycle
            .stripe
            .event_payload(id)
            .await
            .map_err(|e| ReplayError::Read(id.clone(), e))?
        else {
            let gone = Replayed::Gone(Candidate {
                id: id.clone(),
                event_type: String::new(),
                reason: Reason::Unrecorded,
            });
            each(&gone);
            gone_early.push(gone);
            continue;
        };
        let event = EventRef::parse(payload.as_bytes())
            .map_err(|e| ReplayError::Malformed(id.clone(), e))?;
        let candidate = Candidate {
            id: event.id.clone(),
            event_type: event.kind.clone(),
            reason: Reason::Unrecorded,
        };
        candidates.push((candidate, Some(event)));
    }

    let mut done = gone_early;
    for (candidate, event) in candidates {
        if !filter.admits_record(&candidate.id, &candidate.event_type) {
            continue;
        }
        let event = match event {
            Some(event) => event,
            None => {
                let Some(payload) = lifecycle
                    .stripe
                    .event_payload(&candidate.id)
                    .await
                    .map_err(|e| ReplayError::Read(candidate.id.clone(), e))?
                else {
                    let gone = Replayed::Gone(candidate);
                    each(&gone);
                    done.push(gone);
                    continue;
                };
                EventRef::parse(payload.as_bytes())
                    .map_err(|e| ReplayError::Malformed(candidate.id.clone(), e))?
            }
        };
        if !filter.admits_time(event.created) {
            continue;
        }
        let replayed = if dry_run {
            Replayed::WouldReplay(candidate)
        } else {
            let outcome = process(lifecycle, &event, now()).await;
            Replayed::Processed(candidate, outcome)
        };
        each(&replayed);
        done.push(replayed);
    }
    Ok(done)
}
