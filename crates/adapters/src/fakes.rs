//! In-memory ports for handler tests (feature `test-util`, never in release builds). Each
//! fake behaves like the real service where the use cases depend on it: conditional creates,
//! idempotency keys, deterministic execution names, and injectable failures.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use domain::ids::{Email, StripeCustomerId, UserSub};
use domain::ports::{Accounts, Billing, Created, ManagerRun, PortError, Scheduler, Started};
use domain::profile::Profile;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Fails the next `n` calls, then behaves.
#[derive(Default)]
pub struct FailNext(AtomicU32);

impl FailNext {
    pub fn set(&self, n: u32) {
        self.0.store(n, Ordering::SeqCst);
    }

    fn check(&self, operation: &'static str) -> Result<(), PortError> {
        let failed = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failed {
            Err(PortError::new(operation, "injected failure"))
        } else {
            Ok(())
        }
    }
}

#[derive(Default)]
pub struct InMemoryAccounts {
    pub profiles: Mutex<BTreeMap<String, Profile>>,
    /// customer id → sub
    pub customer_links: Mutex<BTreeMap<String, String>>,
    pub fail_reads: FailNext,
    pub fail_writes: FailNext,
}

impl Accounts for InMemoryAccounts {
    async fn profile(&self, sub: &UserSub) -> Result<Option<Profile>, PortError> {
        self.fail_reads.check("read profile")?;
        Ok(lock(&self.profiles).get(sub.as_str()).cloned())
    }

    async fn create_profile(&self, profile: &Profile) -> Result<Created, PortError> {
        self.fail_writes.check("create profile")?;
        let mut profiles = lock(&self.profiles);
        let mut links = lock(&self.customer_links);
        if profiles.contains_key(profile.sub.as_str()) {
            return Ok(Created::AlreadyExisted);
        }
        if links
            .get(profile.customer.as_str())
            .is_some_and(|owner| owner != profile.sub.as_str())
        {
            return Err(PortError::new(
                "create profile",
                "customer linked to another user",
            ));
        }
        profiles.insert(profile.sub.to_string(), profile.clone());
        links.insert(profile.customer.to_string(), profile.sub.to_string());
        Ok(Created::New)
    }
}

#[derive(Default)]
pub struct FakeBilling {
    /// idempotency key → customer, as Stripe keeps them.
    pub by_key: Mutex<HashMap<String, StripeCustomerId>>,
    pub customers: Mutex<Vec<(StripeCustomerId, String)>>,
    pub fail: FailNext,
}

impl Billing for FakeBilling {
    async fn create_customer(
        &self,
        _sub: &UserSub,
        email: &Email,
        idempotency_key: &str,
    ) -> Result<StripeCustomerId, PortError> {
        self.fail.check("create Stripe customer")?;
        let mut by_key = lock(&self.by_key);
        if let Some(existing) = by_key.get(idempotency_key) {
            return Ok(existing.clone());
        }
        let mut customers = lock(&self.customers);
        let id = StripeCustomerId::parse(&format!("cus_fake{}", customers.len() + 1))
            .map_err(|e| PortError::new("create Stripe customer", e))?;
        customers.push((id.clone(), email.to_string()));
        by_key.insert(idempotency_key.to_owned(), id.clone());
        Ok(id)
    }
}

#[derive(Default)]
pub struct FakeScheduler {
    /// execution name → run
    pub executions: Mutex<BTreeMap<String, ManagerRun>>,
    pub fail: FailNext,
}

impl Scheduler for FakeScheduler {
    async fn start_credit_manager(&self, run: &ManagerRun) -> Result<Started, PortError> {
        self.fail.check("start credit manager")?;
        let mut executions = lock(&self.executions);
        if executions.contains_key(&run.execution_name()) {
            return Ok(Started::AlreadyRunning);
        }
        executions.insert(run.execution_name(), run.clone());
        Ok(Started::New)
    }
}
