//! `Directory` (Cognito) in memory.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use domain::ids::{Email, PlanId, UserSub};
use domain::ports::{Directory, DirectoryEntry, PortError};
use domain::profile::Access;

use super::{FailNext, lock};

/// Cognito as the webhook sees it: users by sub and email, attributes, enabled flag.
#[derive(Default)]
pub struct FakeDirectory {
    /// sub → user
    pub users: Mutex<BTreeMap<String, DirectoryUser>>,
    /// How many times attributes were pushed.
    pub syncs: AtomicU32,
    pub fail: FailNext,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    pub email: String,
    pub plan: Option<String>,
    pub access: Option<String>,
    pub enabled: bool,
}

impl FakeDirectory {
    pub fn add(&self, sub: &str, email: &str) {
        lock(&self.users).insert(
            sub.to_owned(),
            DirectoryUser {
                email: email.to_owned(),
                plan: None,
                access: None,
                enabled: true,
            },
        );
    }

    pub fn user(&self, sub: &str) -> Option<DirectoryUser> {
        lock(&self.users).get(sub).cloned()
    }
}

impl Directory for FakeDirectory {
    async fn sync_user(
        &self,
        sub: &UserSub,
        plan: &PlanId,
        access: Access,
    ) -> Result<(), PortError> {
        self.fail.check("update Cognito attributes")?;
        self.syncs.fetch_add(1, Ordering::SeqCst);
        if let Some(user) = lock(&self.users).get_mut(sub.as_str()) {
            user.plan = Some(plan.to_string());
            user.access = Some(access.as_str().to_owned());
            user.enabled = access == Access::Active;
        }
        Ok(())
    }

    async fn entry(&self, sub: &UserSub) -> Result<Option<DirectoryEntry>, PortError> {
        self.fail.check("read Cognito user")?;
        Ok(lock(&self.users).get(sub.as_str()).map(|u| DirectoryEntry {
            plan: u.plan.clone(),
            access: u.access.clone(),
            enabled: u.enabled,
        }))
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<UserSub>, PortError> {
        self.fail.check("find Cognito user")?;
        lock(&self.users)
            .iter()
            .find(|(_, u)| u.email.eq_ignore_ascii_case(email.as_str()))
            .map(|(s, _)| UserSub::parse(s).map_err(|e| PortError::new("find Cognito user", e)))
            .transpose()
    }

    async fn create_user(&self, email: &Email) -> Result<domain::ports::NewUser, PortError> {
        self.fail.check("create Cognito user")?;
        if self.find_by_email(email).await?.is_some() {
            return Ok(domain::ports::NewUser::EmailTaken);
        }
        let sub = format!("payfirst-{}", lock(&self.users).len() + 1);
        self.add(&sub, email.as_str());
        UserSub::parse(&sub)
            .map(domain::ports::NewUser::Created)
            .map_err(|e| PortError::new("create Cognito user", e))
    }
}
