//! What the webhook writes to the table: a profile write (the fields it owns, set absolutely,
//! and credit changes that never overwrite a metered spend) and the ledger entries that make
//! each grant happen once. `lifecycle` builds them; the `Ledger` port writes them.

use crate::ids::{CheckoutSessionId, Credits, PaymentIntentId, PlanId};
use crate::profile::Profile;

/// How a webhook write changes `allowance`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowanceWrite {
    Keep,
    /// A new period (or an upgrade within one): reset to the plan's credits.
    Reset(Credits),
    /// A downgrade within a period: no more than the new plan's credits. Written only if the
    /// allowance is still `seen` (a metered call in between makes the write retry).
    Cap {
        to: Credits,
        seen: Credits,
    },
}

/// A ledger entry: `GRANT#<source>`; its conditional put makes the grant happen once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord {
    pub source: String,
    pub credits: Credits,
    pub cause: &'static str,
}

/// One webhook write of a profile: the fields the webhook owns, set absolutely, and the credit
/// changes, which never overwrite a metered spend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileWrite {
    /// The profile as read; the write is conditioned on its `version`.
    pub before: Profile,
    /// The profile as it should be (credits as `before`; see `allowance`).
    pub after: Profile,
    pub allowance: AllowanceWrite,
    /// The manager generation was bumped: `manager_cycle` is removed with it.
    pub generation_bumped: bool,
    pub grant: Option<GrantRecord>,
}

/// A pack purchase's ledger entry (`GRANT#<checkout session>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackGrant {
    pub session: CheckoutSessionId,
    pub plan: PlanId,
    pub credits: Credits,
    pub payment_intent: Option<PaymentIntentId>,
    /// Credits taken back so far by refunds and disputes (of `credits`).
    pub revoked: Credits,
    /// What was actually removed from `purchased` (less than `revoked` when credits were
    /// already spent: never below zero).
    pub removed: Credits,
}
