//! `Meter` (the credit meter's DynamoDB requests) in memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use domain::ids::{ApiKeyHash, Credits, UserSub};
use domain::metering::{Balances, Meter, Snapshot, SpendResult};
use domain::ports::PortError;
use domain::profile::Access;

use super::lock;

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
