//! `Meter` (the credit meter's DynamoDB requests) in memory: on `InMemoryAccounts`, whose
//! `Meter` keeps the store contract with DynamoDB (tests/e2e/store_contracts/), and as
//! `InMemoryMeter`, the credit meter's handler-test fake: the same profiles and keys, counting
//! requests like the real adapter's interceptor.

use std::sync::atomic::{AtomicU64, Ordering};

use domain::ids::{ApiKey, ApiKeyHash, Credits, Email, PlanId, StripeCustomerId, UserSub};
use domain::metering::{Balances, Meter, Snapshot, SpendResult};
use domain::ports::PortError;
use domain::profile::{Access, Profile};

use super::{InMemoryAccounts, lock};

/// `Meter` with DynamoDB's semantics (each call is one atomic conditional request that, when
/// refused, returns the item as it was), on `InMemoryAccounts`' profiles and API keys. Counts
/// requests and yields before each, so concurrent callers really interleave.
#[derive(Default)]
pub struct InMemoryMeter {
    pub accounts: InMemoryAccounts,
    pub requests: AtomicU64,
}

impl InMemoryMeter {
    pub fn with_user(sub: &str, key: &str, allowance: u64, purchased: u64) -> Self {
        let meter = Self::default();
        meter.add_user(sub, key, allowance, purchased);
        meter
    }

    /// A user holding `key` (its hash is what the table keeps), with these balances.
    pub fn add_user(&self, sub: &str, key: &str, allowance: u64, purchased: u64) {
        let n = lock(&self.accounts.profiles).len();
        let parsed = (|| {
            Ok::<_, domain::ids::InvalidId>((
                UserSub::parse(sub)?,
                Email::parse(&format!("meter{n}@example.com"))?,
                StripeCustomerId::parse(&format!("cus_meter{n}"))?,
                PlanId::parse("free")?,
            ))
        })();
        let (user, email, customer, plan) = match parsed {
            Ok(ids) => ids,
            Err(e) => panic!("InMemoryMeter::add_user({sub:?}): {e}"),
        };
        let hash = ApiKeyHash::of(key);
        let mut profile = Profile::new_signup(user, email, customer, plan, String::new());
        profile.allowance = Credits::new(allowance);
        profile.purchased = Credits::new(purchased);
        profile.api_key = Some((hash.clone(), prefix(key)));
        lock(&self.accounts.api_keys).insert(hash.as_str().to_owned(), sub.to_owned());
        lock(&self.accounts.profiles).insert(sub.to_owned(), profile);
    }

    /// What rotation does: the old key's item goes and the profile points at the new key.
    pub fn rotate(&self, sub: &str, old: &str, new: &str) {
        let mut keys = lock(&self.accounts.api_keys);
        keys.remove(ApiKeyHash::of(old).as_str());
        keys.insert(ApiKeyHash::of(new).as_str().to_owned(), sub.to_owned());
        if let Some(p) = lock(&self.accounts.profiles).get_mut(sub) {
            p.api_key = Some((ApiKeyHash::of(new), prefix(new)));
        }
    }

    /// What a webhook's profile write does to access.
    pub fn set_access(&self, sub: &str, access: Access) {
        if let Some(p) = lock(&self.accounts.profiles).get_mut(sub) {
            p.access = access;
        }
    }

    pub fn balances(&self, sub: &str) -> Option<(u64, u64)> {
        lock(&self.accounts.profiles)
            .get(sub)
            .map(|p| (p.allowance.get(), p.purchased.get()))
    }

    async fn request(&self) {
        self.requests.fetch_add(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
    }
}

/// What a profile keeps of a key besides its hash, as `ApiKey::prefix` makes it.
fn prefix(key: &str) -> String {
    key.chars().take(ApiKey::SCHEME.len() + 8).collect()
}

impl Meter for InMemoryMeter {
    async fn sub_for_key(&self, hash: &ApiKeyHash) -> Result<Option<UserSub>, PortError> {
        self.request().await;
        self.accounts.sub_for_key(hash).await
    }

    async fn spend_allowance(
        &self,
        sub: &UserSub,
        hash: &ApiKeyHash,
        cost: Credits,
    ) -> Result<SpendResult, PortError> {
        self.request().await;
        self.accounts.spend_allowance(sub, hash, cost).await
    }

    async fn spend_split(
        &self,
        sub: &UserSub,
        hash: &ApiKeyHash,
        allowance_was: Credits,
        from_purchased: Credits,
    ) -> Result<SpendResult, PortError> {
        self.request().await;
        self.accounts
            .spend_split(sub, hash, allowance_was, from_purchased)
            .await
    }
}

impl Meter for super::InMemoryAccounts {
    async fn sub_for_key(&self, hash: &ApiKeyHash) -> Result<Option<UserSub>, PortError> {
        self.fail_reads.check("read API key")?;
        let sub = lock(&self.api_keys).get(hash.as_str()).cloned();
        sub.map(|s| UserSub::parse(&s).map_err(|e| PortError::new("read API key", e)))
            .transpose()
    }

    async fn spend_allowance(
        &self,
        sub: &UserSub,
        hash: &ApiKeyHash,
        cost: Credits,
    ) -> Result<SpendResult, PortError> {
        self.fail_writes.check("spend allowance")?;
        Ok(self.spend(
            sub,
            hash,
            |p| p.allowance >= cost,
            |p| p.allowance = Credits::new(p.allowance.get() - cost.get()),
        ))
    }

    async fn spend_split(
        &self,
        sub: &UserSub,
        hash: &ApiKeyHash,
        allowance_was: Credits,
        from_purchased: Credits,
    ) -> Result<SpendResult, PortError> {
        self.fail_writes
            .check("spend allowance and purchased credits")?;
        Ok(self.spend(
            sub,
            hash,
            |p| p.allowance == allowance_was && p.purchased >= from_purchased,
            |p| {
                p.allowance = Credits::ZERO;
                p.purchased = Credits::new(p.purchased.get() - from_purchased.get());
            },
        ))
    }
}

impl super::InMemoryAccounts {
    /// One conditional update of the profile: applied if the key is current, access is active
    /// and `condition` holds; refused with the profile as it was otherwise.
    fn spend(
        &self,
        sub: &UserSub,
        hash: &ApiKeyHash,
        condition: impl FnOnce(&domain::profile::Profile) -> bool,
        apply: impl FnOnce(&mut domain::profile::Profile),
    ) -> SpendResult {
        let mut profiles = lock(&self.profiles);
        let Some(p) = profiles.get_mut(sub.as_str()) else {
            return SpendResult::Refused(None);
        };
        let current = p.api_key.as_ref().map(|(h, _)| h);
        if current == Some(hash) && p.access == Access::Active && condition(p) {
            apply(p);
            SpendResult::Spent(Balances {
                allowance: p.allowance,
                purchased: p.purchased,
            })
        } else {
            SpendResult::Refused(Some(Snapshot {
                key_hash: current.cloned(),
                access: p.access,
                balances: Balances {
                    allowance: p.allowance,
                    purchased: p.purchased,
                },
            }))
        }
    }
}
