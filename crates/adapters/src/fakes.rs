//! In-memory ports for handler tests (feature `test-util`, never in release builds). Each
//! fake behaves like the real service where the use cases depend on it: conditional creates,
//! idempotency keys, deterministic execution names, and injectable failures.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use domain::ids::{ApiKeyHash, Credits, Email, StripeCustomerId, UserSub};
use domain::metering::{Balances, Meter, Snapshot, SpendResult};
use domain::ports::{Accounts, Billing, Created, ManagerRun, PortError, Scheduler, Started};
use domain::profile::Access;
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

/// A profile as the meter sees it.
#[derive(Debug, Clone)]
pub struct MeterProfile {
    pub key_hash: Option<ApiKeyHash>,
    pub access: Access,
    pub allowance: u64,
    pub purchased: u64,
}

/// `Meter` with DynamoDB's semantics: each call is one atomic conditional request that, when
/// refused, returns the item as it was. Counts requests like the real adapter's interceptor.
#[derive(Default)]
pub struct InMemoryMeter {
    pub profiles: Mutex<HashMap<String, MeterProfile>>,
    /// key hash → sub
    pub keys: Mutex<HashMap<String, String>>,
    pub requests: AtomicU64,
}

impl InMemoryMeter {
    pub fn with_user(sub: &str, key: &str, allowance: u64, purchased: u64) -> Self {
        let meter = Self::default();
        meter.add_user(sub, key, allowance, purchased);
        meter
    }

    pub fn add_user(&self, sub: &str, key: &str, allowance: u64, purchased: u64) {
        let hash = ApiKeyHash::of(key);
        lock(&self.keys).insert(hash.as_str().to_owned(), sub.to_owned());
        lock(&self.profiles).insert(
            sub.to_owned(),
            MeterProfile {
                key_hash: Some(hash),
                access: Access::Active,
                allowance,
                purchased,
            },
        );
    }

    /// What rotation does: the old key's item goes and the profile points at the new key.
    pub fn rotate(&self, sub: &str, old: &str, new: &str) {
        let mut keys = lock(&self.keys);
        keys.remove(ApiKeyHash::of(old).as_str());
        keys.insert(ApiKeyHash::of(new).as_str().to_owned(), sub.to_owned());
        if let Some(p) = lock(&self.profiles).get_mut(sub) {
            p.key_hash = Some(ApiKeyHash::of(new));
        }
    }

    pub fn balances(&self, sub: &str) -> Option<(u64, u64)> {
        lock(&self.profiles)
            .get(sub)
            .map(|p| (p.allowance, p.purchased))
    }

    fn spend(
        &self,
        sub: &UserSub,
        condition: impl FnOnce(&MeterProfile) -> bool,
        apply: impl FnOnce(&mut MeterProfile),
    ) -> SpendResult {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let mut profiles = lock(&self.profiles);
        let Some(p) = profiles.get_mut(sub.as_str()) else {
            return SpendResult::Refused(None);
        };
        if condition(p) {
            apply(p);
            SpendResult::Spent(Balances {
                allowance: Credits::new(p.allowance),
                purchased: Credits::new(p.purchased),
            })
        } else {
            SpendResult::Refused(Some(Snapshot {
                key_hash: p.key_hash.clone(),
                access: p.access,
                balances: Balances {
                    allowance: Credits::new(p.allowance),
                    purchased: Credits::new(p.purchased),
                },
            }))
        }
    }
}

impl Meter for InMemoryMeter {
    async fn sub_for_key(&self, hash: &ApiKeyHash) -> Result<Option<UserSub>, PortError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        // Yield, so concurrent callers really interleave.
        tokio::task::yield_now().await;
        let sub = lock(&self.keys).get(hash.as_str()).cloned();
        sub.map(|s| UserSub::parse(&s).map_err(|e| PortError::new("read API key", e)))
            .transpose()
    }

    async fn spend_allowance(
        &self,
        sub: &UserSub,
        hash: &ApiKeyHash,
        cost: Credits,
    ) -> Result<SpendResult, PortError> {
        tokio::task::yield_now().await;
        Ok(self.spend(
            sub,
            |p| {
                p.key_hash.as_ref() == Some(hash)
                    && p.access == Access::Active
                    && p.allowance >= cost.get()
            },
            |p| p.allowance -= cost.get(),
        ))
    }

    async fn spend_split(
        &self,
        sub: &UserSub,
        hash: &ApiKeyHash,
        allowance_was: Credits,
        from_purchased: Credits,
    ) -> Result<SpendResult, PortError> {
        tokio::task::yield_now().await;
        Ok(self.spend(
            sub,
            |p| {
                p.key_hash.as_ref() == Some(hash)
                    && p.access == Access::Active
                    && p.allowance == allowance_was.get()
                    && p.purchased >= from_purchased.get()
            },
            |p| {
                p.allowance = 0;
                p.purchased -= from_purchased.get();
            },
        ))
    }
}
