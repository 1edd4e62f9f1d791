//! The credit manager (Step Functions).

use std::future::Future;

use super::PortError;
use crate::catalogue::Period;
use crate::ids::{Credits, PlanId, UserSub};

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
