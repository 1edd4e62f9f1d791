//! Keeping a user in step with Stripe: what each event means, as use cases over the ports (find
//! the user, read the object from Stripe, reconcile, write conditionally, then make Cognito and
//! the credit manager agree), and the pure rules they apply.
//!
//! Every path is safe to run again (a retry, a replay, a duplicate delivery) and converges to
//! Stripe's current truth whatever order the events come in.
//!
//! Order independence comes from refetching: a webhook event only says *which* object changed;
//! the handler reads the object from Stripe and reconciles the profile with that truth. Whatever
//! order events arrive in, and however often, the last reconciliation sees the same truth and
//! writes the same state. Grants are keyed (`<invoice>:<plan>`, the checkout session), so each
//! happens once.
//!
//! - `policy.rs`: the access policy table (lapse mode, grace, standing, entitlement).
//! - `subscriptions.rs`: reconciling a subscription, one bill per user.
//! - `checkout.rs`: completed Checkout Sessions, pay-first buyers, held purchases and claims.
//! - `charges.rs`: refunds and disputes of packs.

mod charges;
mod checkout;
mod policy;
mod subscriptions;
#[cfg(test)]
mod tests;

pub use charges::revoked_share;
pub use policy::{AccessPolicy, LapseMode, Standing, entitlement, standing};
pub use subscriptions::{
    LifecycleError, SubscriptionOutcome, candidate_grant, duplicates, free_manager,
    invoice_grant_source, keep_one, reconcile_subscription,
};

use crate::catalogue::{Catalogue, SaleMode, parse_lookup_key};
use crate::facts::{ChargeFacts, SubStatus, SubscriptionFacts, SubscriptionState};
use crate::ids::{
    ChargeId, CheckoutSessionId, Credits, Email, GrantSource, InvoiceId, PaymentIntentId, PlanId,
    StripeCustomerId, SubscriptionId, UserSub,
};
use crate::lifecycle;
use crate::ports::{
    Accounts, Created, Directory, HeldPurchase, Ledger, ManagerRun, NewUser, Payments, PortError,
    Saved, Scheduler, SessionFacts, SessionMode, StripeReads,
};
use crate::profile::{Access, Profile};
use crate::stripe_events::{Action, EventRef, rfc3339};
use crate::writes::{AllowanceWrite, GrantRecord, PackGrant, ProfileWrite};

/// What handling an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    Applied(Applied),
    /// Verified but nothing to do (type not handled, object not ours): answer 200.
    Ignored(String),
}

/// What an applied event changed, one variant per effect. Logs, the webhook's answer and
/// replay lines show it in the words of its `Display`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The profile follows the subscription as Stripe has it now (and its grant, if one was
    /// made: the credits and the grant's source).
    Subscription {
        id: SubscriptionId,
        status: SubStatus,
        plan: PlanId,
        access: Access,
        grant: Option<(Credits, String)>,
    },
    /// A pay-first purchase held for the owner of its email to claim.
    Held { session: CheckoutSessionId },
    /// A pack's credits recorded (once).
    Pack {
        session: CheckoutSessionId,
        credits: Credits,
    },
    /// A refund or dispute that the pack's grant already counts.
    PackAlreadyRevoked {
        session: CheckoutSessionId,
        revoked: Credits,
    },
    /// A pack's share taken back: `revoked` in all, `removed` of it from `purchased` now.
    PackRevoked {
        session: CheckoutSessionId,
        revoked: Credits,
        removed: u64,
    },
    /// A trial ends soon (noted for a notification).
    TrialEndNoted,
}

impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Subscription {
                id,
                status,
                plan,
                access,
                grant,
            } => {
                write!(
                    f,
                    "subscription {id} {}: plan {plan}, access {}",
                    status.as_str(),
                    access.as_str()
                )?;
                match grant {
                    Some((credits, source)) => write!(f, ", granted {credits} for {source}"),
                    None => Ok(()),
                }
            }
            Self::Held { session } => {
                write!(
                    f,
                    "session {session} held for the owner of its email to claim"
                )
            }
            Self::Pack { session, credits } => {
                write!(
                    f,
                    "pack of {credits} credits for session {session} recorded"
                )
            }
            Self::PackAlreadyRevoked { session, revoked } => {
                write!(f, "pack {session} already revoked {revoked}")
            }
            Self::PackRevoked {
                session,
                revoked,
                removed,
            } => write!(
                f,
                "pack {session} revoked {revoked} credits ({removed} removed)"
            ),
            Self::TrialEndNoted => f.write_str("trial end noted for notification"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    #[error(transparent)]
    Port(#[from] PortError),
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    #[error("{0}")]
    NotReady(String),
    #[error("gave up after {0} conflicting writes")]
    Contention(u32),
}

/// Why a held purchase could not be claimed (each a 4xx for the caller).
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("no purchase {0} is held for your verified email")]
    NothingHeld(CheckoutSessionId),
    #[error("purchase {0} was claimed by another account")]
    ClaimedByAnother(CheckoutSessionId),
    #[error(
        "you have a live subscription ({current}); claiming purchase {session} ({claimed}) replaces it: the current one is cancelled now, prorated, and the claimed one bills the card its buyer gave. Send {{\"session\": \"{session}\", \"replace_subscription\": true}} to confirm"
    )]
    WouldReplace {
        session: CheckoutSessionId,
        current: String,
        claimed: String,
    },
    #[error(
        "purchase {session} is a subscription that is {status}, not paying: its buyer's payments fail, so it cannot be claimed"
    )]
    NotPaying {
        session: CheckoutSessionId,
        status: String,
    },
    #[error(transparent)]
    Handle(#[from] HandleError),
}

impl From<PortError> for ClaimError {
    fn from(e: PortError) -> Self {
        Self::Handle(HandleError::Port(e))
    }
}

/// Whom a completed Checkout Session's payment belongs to.
enum Binding {
    User(UserSub),
    /// Held for the owner of its email to claim: settled, bound to nobody.
    Held(CheckoutSessionId),
    /// Names no user creditgate can know: settled with the reason.
    Unbound(String),
}

/// Everything that keeps a profile in step with Stripe, built once per cold start: the webhook,
/// cancel-subscriptions and `creditgate events replay` share it. `store` is the one table
/// (profiles, links, grants; `Accounts` + `Ledger`).
pub struct Lifecycle<St, R, D, S> {
    pub store: St,
    pub stripe: R,
    pub directory: D,
    pub scheduler: S,
    pub catalogue: Catalogue,
    pub policy: AccessPolicy,
    /// Replaces the free plan's period in the credit manager (local runs only).
    pub free_period_override: Option<u64>,
}

const MAX_ATTEMPTS: u32 = 8;

/// The longest username (here: the email) Cognito's AdminCreateUser takes.
const MAX_USERNAME: usize = 128;

impl<St, R, D, S> Lifecycle<St, R, D, S>
where
    St: Accounts + Ledger + Sync,
    R: StripeReads + Payments + Sync,
    D: Directory + Sync,
    S: Scheduler + Sync,
{
    pub async fn handle(&self, event: &EventRef) -> Result<Handled, HandleError> {
        match event.action() {
            Action::CheckoutCompleted { session } => {
                self.checkout_completed(&session, event.created).await
            }
            Action::SyncSubscription { subscription } => {
                self.sync_subscription(&subscription, event.created).await
            }
            Action::TrialWillEnd {
                subscription,
                trial_end,
            } => {
                tracing::info!(subscription = %subscription, trial_end, "trial ends soon: notify the user");
                Ok(Handled::Applied(Applied::TrialEndNoted))
            }
            Action::InvoicePaymentFailed {
                invoice,
                attempt_count,
                subscription,
            } => {
                tracing::warn!(
                    invoice = invoice.as_ref().map(|i| i.as_str()).unwrap_or_default(),
                    attempt_count,
                    "invoice payment failed"
                );
                match subscription {
                    Some(id) => self.sync_subscription(&id, event.created).await,
                    None => Ok(Handled::Ignored("invoice without a subscription".into())),
                }
            }
            Action::ChargeChanged { charge } => self.charge_changed(&charge, event.created).await,
            Action::Ignore(why) => Ok(Handled::Ignored(why)),
        }
    }

    async fn profile(&self, sub: &UserSub) -> Result<Profile, HandleError> {
        self.store
            .profile(sub)
            .await?
            .ok_or_else(|| HandleError::NotReady(format!("user {sub} has no profile yet")))
    }

    /// Cognito and the credit manager follow the profile. Each is called only when the
    /// profile's marker says it has not yet seen this state; the marker is written after the
    /// call succeeds, so a failure here is completed by the retry, and a steady event costs
    /// neither call.
    async fn follow_up(&self, profile: &Profile) -> Result<(), HandleError> {
        let want = (profile.plan.clone(), profile.access);
        let directory = (profile.directory_synced.as_ref() != Some(&want)).then_some(want);
        let manager = free_manager(profile, &self.catalogue, self.free_period_override)
            .filter(|run| profile.manager_started != Some(run.generation));
        if let Some((plan, access)) = &directory {
            self.directory
                .sync_user(&profile.sub, plan, *access)
                .await?;
        }
        if let Some(run) = &manager {
            self.scheduler.start_credit_manager(run).await?;
        }
        if directory.is_some() || manager.is_some() {
            self.store
                .mark_followed(
                    &profile.sub,
                    directory.as_ref().map(|(p, a)| (p, *a)),
                    manager.map(|run| run.generation),
                )
                .await?;
        }
        Ok(())
    }
}
