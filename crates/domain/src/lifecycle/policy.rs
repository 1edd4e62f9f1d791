//! The access policy table: what a subscription's status means for a user's access.

use super::*;

/// What lapsing (past due beyond the grace, or `unpaid`) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LapseMode {
    /// Back to the free plan; the API key keeps working on free credits.
    Downgrade,
    /// Cognito user disabled and API access switched off until the next paid invoice.
    Disable,
}

impl LapseMode {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "downgrade" => Some(Self::Downgrade),
            "disable" => Some(Self::Disable),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessPolicy {
    pub grace_seconds: i64,
    pub lapse: LapseMode,
}

impl Default for AccessPolicy {
    /// Seven days of grace, then downgrade.
    fn default() -> Self {
        Self {
            grace_seconds: 7 * 86_400,
            lapse: LapseMode::Downgrade,
        }
    }
}

/// Where a subscription stands, per the access policy table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// active, trialing: the plan's access.
    Paying,
    /// past_due within the grace: still the plan's access.
    Grace,
    /// past_due beyond the grace, unpaid, paused: what the lapse mode says.
    Lapsed,
    /// canceled, incomplete, incomplete_expired: the free plan.
    Ended,
}

/// The access policy table (DESIGN.md "Access policy").
pub fn standing(
    status: SubStatus,
    past_due_since: Option<i64>,
    now: i64,
    policy: &AccessPolicy,
) -> Standing {
    match status {
        SubStatus::Active | SubStatus::Trialing => Standing::Paying,
        SubStatus::PastDue => match past_due_since {
            Some(since) if now >= since.saturating_add(policy.grace_seconds) => Standing::Lapsed,
            _ => Standing::Grace,
        },
        SubStatus::Unpaid | SubStatus::Paused => Standing::Lapsed,
        SubStatus::Canceled | SubStatus::Incomplete | SubStatus::IncompleteExpired => {
            Standing::Ended
        }
    }
}

/// The plan and access a standing gives.
pub fn entitlement(
    standing: Standing,
    plan: &PlanId,
    free: &PlanId,
    policy: &AccessPolicy,
) -> (PlanId, Access) {
    match (standing, policy.lapse) {
        (Standing::Paying | Standing::Grace, _) => (plan.clone(), Access::Active),
        (Standing::Lapsed, LapseMode::Disable) => (plan.clone(), Access::Disabled),
        (Standing::Lapsed, LapseMode::Downgrade) | (Standing::Ended, _) => {
            (free.clone(), Access::Active)
        }
    }
}
