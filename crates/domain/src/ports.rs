//! Ports: the small traits the use cases call. `adapters` implements them on DynamoDB, Cognito,
//! Step Functions and Stripe, and (behind its `test-util` feature) in memory.

use std::error::Error as StdError;
use std::future::Future;

use crate::catalogue::Period;
use crate::ids::{Credits, Email, PlanId, StripeCustomerId, UserSub};
use crate::profile::Profile;

pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// A port's call failed. `operation` says which call in domain words; the cause is kept as the
/// source for logs and never shown to a caller.
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed")]
pub struct PortError {
    pub operation: &'static str,
    #[source]
    pub source: BoxError,
}

impl PortError {
    pub fn new(operation: &'static str, source: impl Into<BoxError>) -> Self {
        Self {
            operation,
            source: source.into(),
        }
    }
}

/// Whether a conditional create made something new or found it already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    New,
    AlreadyExisted,
}

/// User profiles and the items that must change with them.
pub trait Accounts {
    /// A consistent read of the user's profile.
    fn profile(
        &self,
        sub: &UserSub,
    ) -> impl Future<Output = Result<Option<Profile>, PortError>> + Send;

    /// Writes the profile and its customer link in one transaction, only if the user has no
    /// profile yet: a retry can never overwrite what an earlier attempt or a webhook wrote.
    fn create_profile(
        &self,
        profile: &Profile,
    ) -> impl Future<Output = Result<Created, PortError>> + Send;
}

/// API keys: hash-only storage, one current key per user.
pub trait ApiKeys {
    /// Makes `new` the user's only key in one transaction: its `APIKEY#` item is written, the
    /// profile points at it, and the previous key's item (if any) is deleted, so the old key
    /// stops working at once. Fails if the profile does not exist.
    fn rotate_api_key(
        &self,
        sub: &UserSub,
        new: &crate::ids::ApiKeyHash,
        prefix: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// The payment provider's customers.
pub trait Billing {
    /// Creates the customer for `sub`. The same `idempotency_key` always yields the same
    /// customer, however often and however concurrently it is called.
    fn create_customer(
        &self,
        sub: &UserSub,
        email: &Email,
        idempotency_key: &str,
    ) -> impl Future<Output = Result<StripeCustomerId, PortError>> + Send;
}

/// One run of the credit manager: grants `credits` every `period_seconds` while the profile's
/// manager generation is `generation` and its plan is `plan`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagerRun {
    pub sub: UserSub,
    pub generation: u64,
    pub plan: PlanId,
    pub credits: Credits,
    pub period_seconds: u64,
}

impl ManagerRun {
    pub fn for_plan(
        sub: UserSub,
        generation: u64,
        plan: PlanId,
        credits: Credits,
        period: Period,
    ) -> Self {
        Self {
            sub,
            generation,
            plan,
            credits,
            period_seconds: period.seconds(),
        }
    }

    /// Deterministic, so a second start of the same run is refused by Step Functions itself.
    /// The state machine names its continuations `<sub>-g<generation>-c<cycle>` the same way.
    pub fn execution_name(&self) -> String {
        format!("{}-g{}-c0", self.sub, self.generation)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    New,
    AlreadyRunning,
    /// The user is not on the free plan: nothing to grant.
    NotNeeded,
}

/// The credit manager's executions.
pub trait Scheduler {
    fn start_credit_manager(
        &self,
        run: &ManagerRun,
    ) -> impl Future<Output = Result<Started, PortError>> + Send;
}
