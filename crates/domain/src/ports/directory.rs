//! The user directory (Cognito).

use std::future::Future;

use super::PortError;
use crate::ids::{Email, PlanId, UserSub};

/// The user directory (Cognito).
pub trait Directory {
    /// Makes `custom:plan` / `custom:access` say `plan` / `access`, and the user enabled unless
    /// access is disabled. Idempotent. A user missing from the directory is logged, not an error.
    fn sync_user(
        &self,
        sub: &UserSub,
        plan: &PlanId,
        access: crate::profile::Access,
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    /// What the directory holds for the user now (`None`: no such user), for reconciliation
    /// to compare with the profile: attributes can be changed outside creditgate.
    fn entry(
        &self,
        sub: &UserSub,
    ) -> impl Future<Output = Result<Option<DirectoryEntry>, PortError>> + Send;

    /// Any user whose email attribute is `email`, verified or not. Used only to decide that a
    /// pay-first purchase must be held, never to bind a payment to that user.
    fn find_by_email(
        &self,
        email: &Email,
    ) -> impl Future<Output = Result<Option<UserSub>, PortError>> + Send;

    /// Creates a user for a pay-first buyer (email verified; Cognito sends the invitation).
    /// A user already there with that email is never returned: the answer is `EmailTaken`.
    fn create_user(&self, email: &Email)
    -> impl Future<Output = Result<NewUser, PortError>> + Send;
}

/// A user as the directory holds it: `custom:plan`, `custom:access`, enabled or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryEntry {
    pub plan: Option<String>,
    pub access: Option<String>,
    pub enabled: bool,
}

impl DirectoryEntry {
    /// Whether it says what [`Directory::sync_user`] with `plan` and `access` would make it say.
    pub fn agrees(&self, plan: &PlanId, access: crate::profile::Access) -> bool {
        self.plan.as_deref() == Some(plan.as_str())
            && self.access.as_deref() == Some(access.as_str())
            && self.enabled == (access == crate::profile::Access::Active)
    }

    /// [`Self::agrees`], except that before creditgate first synced the user (`synced` false)
    /// an attribute not set yet is no disagreement.
    pub fn agrees_so_far(
        &self,
        plan: &PlanId,
        access: crate::profile::Access,
        synced: bool,
    ) -> bool {
        if synced {
            return self.agrees(plan, access);
        }
        self.plan.as_deref().is_none_or(|p| p == plan.as_str())
            && self.access.as_deref().is_none_or(|a| a == access.as_str())
            && self.enabled == (access == crate::profile::Access::Active)
    }
}

/// What creating a pay-first buyer's user came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewUser {
    Created(UserSub),
    /// Someone already has this email: the purchase is held for them to claim.
    EmailTaken,
    /// Cognito refused the email itself (too long, characters it does not take): the purchase
    /// can bind to nobody; it settles with this reason.
    Refused(String),
}
