//! Reconciliation: every user's profile compared with Stripe's current truth, and repaired
//! through the webhook's own reconciliation (`Lifecycle::sync_subscription`), so an event Stripe
//! gave up on, or one applied by a bug since fixed, does not leave a user on the wrong plan.
//!
//! For each user with a profile: the subscription the profile should follow is chosen from
//! every live subscription of the user's customers as the webhook chooses it (one bill stays:
//! a duplicate is cancelled), or, with none live, the one the profile follows (Stripe says how
//! it ended); the profile is reconciled with it. What the webhook owns (plan, access, the
//! followed subscription, the allowance's grant) is compared before and after: a difference
//! is drift, repaired by that write. A repaired user is checked once more; drift that is still
//! there is reported, never hidden. Safe to run twice at once and beside live deliveries: every
//! write is version-checked and every grant keyed.

use crate::events::{ReplayCounts, ReplayError, ReplayFilter, Replayed, replay};
use crate::facts::SubscriptionState;
use crate::ids::{CheckoutSessionId, PlanId, UserSub};
use crate::lifecycle::revoked_share;
use crate::lifecycle::{HandleError, Lifecycle};
use crate::ports::{
    Accounts, Directory, DirectoryEntry, Ledger, Payments, PortError, Scheduler, StripeReads,
    error_chain,
};
use crate::profile::{Access, Profile};
use crate::webhook::EventLedger;
use crate::writes::PackGrant;

/// What the webhook owns of a user: what reconciliation compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub plan: PlanId,
    pub access: Access,
    pub subscription: Option<SubscriptionState>,
    pub allowance_source: Option<String>,
    /// What Cognito holds (`None`: no such user there), changed outside creditgate or not.
    pub directory: Option<DirectoryEntry>,
    /// Every pack Stripe says the user paid for: (session, its grant, `None` while no grant is
    /// recorded).
    pub packs: Vec<(CheckoutSessionId, Option<PackGrant>)>,
}

impl Standing {
    /// The profile's part, without Cognito and packs (see [`standing`]).
    fn of(p: &Profile) -> Self {
        Self {
            plan: p.plan.clone(),
            access: p.access,
            subscription: p.subscription.clone(),
            allowance_source: p.allowance_source.clone(),
            directory: None,
            packs: Vec::new(),
        }
    }
}

/// What reconciling one user found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// The profile already agreed with Stripe.
    InStep,
    /// It did not, and the write made it agree.
    Repaired {
        before: Box<Standing>,
        after: Box<Standing>,
    },
    /// It did not, and after the repair it still does not (checked again at once).
    StillDrifting {
        before: Box<Standing>,
        after: Box<Standing>,
    },
    /// Reconciling failed (Stripe or AWS unreachable, a write conflict that did not settle).
    Failed(String),
}

/// The counts a run reports (and publishes as metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    pub checked: u64,
    pub drifted: u64,
    pub repaired: u64,
    pub failed: u64,
}

impl Report {
    fn count(&mut self, checked: &Checked) {
        self.checked += 1;
        match checked {
            Checked::InStep => {}
            Checked::Repaired { .. } => {
                self.drifted += 1;
                self.repaired += 1;
            }
            Checked::StillDrifting { .. } => self.drifted += 1,
            Checked::Failed(_) => self.failed += 1,
        }
    }

    /// Drift that is still there after the run: what should page someone.
    pub fn unrepaired(&self) -> u64 {
        self.drifted - self.repaired
    }
}

/// Reconciles every user, a page of the table at a time; `now` is the time the repairs are
/// made at (as an event's time), `each` is told of each user as it is done. Fails only when
/// the users cannot be listed; a user that fails is counted and the run goes on.
pub async fn reconcile_all<St, R, D, S>(
    lifecycle: &Lifecycle<St, R, D, S>,
    now: impl Fn() -> i64,
    each: impl FnMut(&UserSub, &Checked),
) -> Result<Report, PortError>
where
    St: Accounts + Ledger + Sync,
    R: StripeReads + Payments + Sync,
    D: Directory + Sync,
    S: Scheduler + Sync,
{
    Ok(reconcile_from(lifecycle, None, || true, now, each)
        .await?
        .report)
}

/// How far a run that may stop early got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub report: Report,
    /// Where the next run starts (a page cursor), when this one stopped for want of time;
    /// `None` when every user was reconciled.
    pub resume: Option<String>,
}

/// [`reconcile_all`] from the page at `start` (the first if `None`), asking `more_time` before
/// each further page: when it says no, the run stops there and answers where to resume, so a
/// table too large for one run (a Lambda's 15 minutes) is reconciled by a chain of runs.
/// Stopping only between pages, and a repeated page being harmless, no user is skipped.
pub async fn reconcile_from<St, R, D, S>(
    lifecycle: &Lifecycle<St, R, D, S>,
    start: Option<String>,
    mut more_time: impl FnMut() -> bool,
    now: impl Fn() -> i64,
    mut each: impl FnMut(&UserSub, &Checked),
) -> Result<Progress, PortError>
where
    St: Accounts + Ledger + Sync,
    R: StripeReads + Payments + Sync,
    D: Directory + Sync,
    S: Scheduler + Sync,
{
    let mut report = Report::default();
    let mut cursor = start;
    loop {
        let (users, next) = lifecycle.store.users_page(cursor.as_deref()).await?;
        for sub in users {
            let checked = reconcile_user(lifecycle, &sub, now()).await;
            report.count(&checked);
            each(&sub, &checked);
        }
        match next {
            Some(next) if more_time() => cursor = Some(next),
            resume => return Ok(Progress { report, resume }),
        }
    }
}

/// A reconciliation's first step: the events `events replay` would take (records left failed
/// or stuck, events Stripe could not deliver since `since` or 30 days, handled events with no
/// settled record), processed again, each told to `on_event`; their outcomes counted.
pub async fn replay_events<St, R, D, S>(
    lifecycle: &Lifecycle<St, R, D, S>,
    since: Option<i64>,
    now: impl Fn() -> i64,
    on_event: impl FnMut(&Replayed),
) -> Result<ReplayCounts, ReplayError>
where
    St: Accounts + Ledger + EventLedger + Sync,
    R: StripeReads + Payments + Sync,
    D: Directory + Sync,
    S: Scheduler + Sync,
{
    let filter = ReplayFilter::for_reconcile(since, now());
    let done = replay(lifecycle, &filter, false, now, on_event).await?;
    Ok(ReplayCounts::of(&done))
}

/// Reconciles one user (see the module's docs), checking a repaired one once more.
pub async fn reconcile_user<St, R, D, S>(
    lifecycle: &Lifecycle<St, R, D, S>,
    sub: &UserSub,
    now: i64,
) -> Checked
where
    St: Accounts + Ledger + Sync,
    R: StripeReads + Payments + Sync,
    D: Directory + Sync,
    S: Scheduler + Sync,
{
    let first = match compare(lifecycle, sub, now).await {
        Ok(first) => first,
        Err(e) => return failed(sub, &e),
    };
    let Some((before, after)) = first else {
        return Checked::InStep;
    };
    match compare(lifecycle, sub, now).await {
        Ok(None) => {
            tracing::warn!(
                user_sub = %sub,
                metric = "reconcile_drift_repaired",
                before = ?before,
                after = ?after,
                "the profile had drifted from Stripe: repaired"
            );
            Checked::Repaired {
                before: Box::new(before),
                after: Box::new(after),
            }
        }
        Ok(Some((_, still))) => {
            tracing::error!(
                user_sub = %sub,
                metric = "reconcile_drift_remains",
                before = ?before,
                after = ?still,
                "the profile still differs from Stripe after a repair"
            );
            Checked::StillDrifting {
                before: Box::new(before),
                after: Box::new(still),
            }
        }
        Err(e) => failed(sub, &e),
    }
}

fn failed(sub: &UserSub, e: &HandleError) -> Checked {
    let error = error_chain(e);
    tracing::error!(user_sub = %sub, metric = "reconcile_failed", error = %error, "could not reconcile the user");
    Checked::Failed(error)
}

/// One reconciliation: `Some((before, after))` if it changed what the webhook owns.
async fn compare<St, R, D, S>(
    lifecycle: &Lifecycle<St, R, D, S>,
    sub: &UserSub,
    now: i64,
) -> Result<Option<(Standing, Standing)>, HandleError>
where
    St: Accounts + Ledger + Sync,
    R: StripeReads + Payments + Sync,
    D: Directory + Sync,
    S: Scheduler + Sync,
{
    let Some(profile) = lifecycle.store.profile(sub).await? else {
        return Ok(None);
    };
    let before = standing(lifecycle, &profile).await?;
    let target = match lifecycle.one_subscription(&profile).await? {
        Some(keep) => Some(keep),
        None => profile.subscription.as_ref().map(|s| s.id.clone()),
    };
    // No subscription, live or followed: nothing in Stripe says otherwise than Free.
    if let Some(subscription) = target {
        lifecycle.sync_subscription(&subscription, now).await?;
    }
    // Packs: one paid for with no grant is granted, a refund or dispute no event reported is
    // taken back, each through the webhook's own handling of that event.
    for (session, grant) in &before.packs {
        match grant {
            None => {
                lifecycle.checkout_completed(session, now).await?;
            }
            Some(pack) => {
                let Some(pi) = &pack.payment_intent else {
                    continue;
                };
                if let Some(charge) = lifecycle.stripe.payment_charge(pi).await?
                    && revoked_share(pack.credits, Some(&charge)) > pack.revoked
                {
                    lifecycle.charge_changed(&charge.id, now).await?;
                }
            }
        }
    }
    let Some(after) = lifecycle.store.profile(sub).await? else {
        return Ok(None);
    };
    // Cognito: attributes or the enabled state changed outside creditgate are set again. A
    // user creditgate never synced may have no attributes yet (the first event sets them);
    // whatever is there, and the enabled state, must still agree.
    if let Some(entry) = &before.directory
        && !entry.agrees_so_far(&after.plan, after.access, after.directory_synced.is_some())
    {
        lifecycle
            .directory
            .sync_user(sub, &after.plan, after.access)
            .await?;
    }
    let after = standing(lifecycle, &after).await?;
    Ok((before != after).then_some((before, after)))
}

/// The user's standing: the profile's part, what Cognito holds, and the packs Stripe says
/// were paid for with what their grants record.
async fn standing<St, R, D, S>(
    lifecycle: &Lifecycle<St, R, D, S>,
    profile: &Profile,
) -> Result<Standing, HandleError>
where
    St: Accounts + Ledger + Sync,
    R: StripeReads + Payments + Sync,
    D: Directory + Sync,
    S: Scheduler + Sync,
{
    let mut standing = Standing::of(profile);
    standing.directory = lifecycle.directory.entry(&profile.sub).await?;
    for customer in profile.customers() {
        for session in lifecycle.stripe.paid_pack_sessions(&customer).await? {
            let grant = lifecycle.store.pack_grant(&profile.sub, &session).await?;
            standing.packs.push((session, grant));
        }
    }
    standing.packs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(standing)
}
