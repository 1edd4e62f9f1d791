//! Metering: spending credits for an API call, atomically, never below zero.
//!
//! The warm path is one conditional write: decrement `allowance` if the key is still the
//! profile's current key, access allows use and the allowance covers the cost. Only when that
//! write is refused does the use case look at why (the refused write returns the item as it was,
//! so this costs no extra read): a rotated key, switched-off access, no credits at all, or an
//! allowance too small on its own, in which case a second conditional write spends the rest of
//! the allowance and the remainder from `purchased`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use crate::ids::{ApiKeyHash, Credits, UserSub};
use crate::ports::PortError;
use crate::profile::Access;

/// The most credits one call may spend.
pub const MAX_CREDITS_PER_CALL: u64 = 1_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MeterBodyError {
    #[error("the body must be a JSON object such as {{\"credits\": 1}}")]
    NotAnObject,
    #[error("unknown field `{0}` (only `credits` is accepted)")]
    UnknownField(String),
    #[error("`credits` must be a whole number from 1 to {MAX_CREDITS_PER_CALL}")]
    Credits,
}

/// The meter's JSON body as sent; `TryFrom` turns it into the call's cost.
#[derive(Debug, Default, serde::Deserialize)]
struct MeterBody {
    /// Present (even as `null`) or absent: `null` is refused, absence costs 1 credit.
    #[serde(default, deserialize_with = "present")]
    credits: Option<serde_json::Value>,
    /// Any other field, named in the refusal.
    #[serde(flatten)]
    unknown: std::collections::BTreeMap<String, serde::de::IgnoredAny>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde::Deserialize::deserialize(d).map(Some)
}

impl TryFrom<MeterBody> for Credits {
    type Error = MeterBodyError;

    fn try_from(body: MeterBody) -> Result<Self, MeterBodyError> {
        if let Some(unknown) = body.unknown.into_keys().next() {
            return Err(MeterBodyError::UnknownField(unknown));
        }
        match body.credits {
            None => Ok(Credits::new(1)),
            Some(v) => v
                .as_u64()
                .filter(|n| (1..=MAX_CREDITS_PER_CALL).contains(n))
                .map(Credits::new)
                .ok_or(MeterBodyError::Credits),
        }
    }
}

/// The cost of a call from its body: empty means 1 credit.
pub fn parse_cost(body: &[u8]) -> Result<Credits, MeterBodyError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Credits::new(1));
    }
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| MeterBodyError::NotAnObject)?;
    if !value.is_object() {
        return Err(MeterBodyError::NotAnObject);
    }
    let body: MeterBody = serde_json::from_value(value).map_err(|_| MeterBodyError::NotAnObject)?;
    Credits::try_from(body)
}

/// The two balances after a spend, or as they were when a spend was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Balances {
    pub allowance: Credits,
    pub purchased: Credits,
}

impl Balances {
    pub fn total(self) -> Credits {
        Credits::new(self.allowance.get().saturating_add(self.purchased.get()))
    }
}

/// What a profile held when a conditional spend was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub key_hash: Option<ApiKeyHash>,
    pub access: Access,
    pub balances: Balances,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpendResult {
    Spent(Balances),
    /// The condition failed; the profile as it was (None: there is no profile).
    Refused(Option<Snapshot>),
}

/// Key lookups and conditional spends on the profile.
pub trait Meter {
    /// One consistent read of `APIKEY#<hash>`.
    fn sub_for_key(
        &self,
        hash: &ApiKeyHash,
    ) -> impl Future<Output = Result<Option<UserSub>, PortError>> + Send;

    /// `allowance -= cost` if the key is current, access is active and `allowance >= cost`.
    fn spend_allowance(
        &self,
        sub: &UserSub,
        hash: &ApiKeyHash,
        cost: Credits,
    ) -> impl Future<Output = Result<SpendResult, PortError>> + Send;

    /// `allowance = 0, purchased -= from_purchased` if the key is current, access is active,
    /// the allowance is still exactly `allowance_was` and `purchased >= from_purchased`.
    fn spend_split(
        &self,
        sub: &UserSub,
        hash: &ApiKeyHash,
        allowance_was: Credits,
        from_purchased: Credits,
    ) -> impl Future<Output = Result<SpendResult, PortError>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum MeterError {
    #[error("unknown or revoked API key")]
    UnknownKey,
    #[error("API access is switched off for this account")]
    AccessDenied,
    #[error("not enough credits: {} left, {} needed", .remaining, .needed)]
    NoCredits { remaining: Credits, needed: Credits },
    #[error(transparent)]
    Port(#[from] PortError),
    #[error("the balance kept changing under concurrent calls; try again")]
    Contended,
}

/// The warm Lambda's key → sub map. Bounded: cleared when full (keys are few per account and
/// a miss costs one read, so a simple bound beats an LRU's bookkeeping).
#[derive(Debug)]
pub struct KeyCache {
    map: Mutex<HashMap<String, UserSub>>,
    capacity: usize,
}

impl KeyCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    fn get(&self, hash: &ApiKeyHash) -> Option<UserSub> {
        self.map.lock().ok()?.get(hash.as_str()).cloned()
    }

    fn put(&self, hash: &ApiKeyHash, sub: UserSub) {
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= self.capacity {
                map.clear();
            }
            map.insert(hash.as_str().to_owned(), sub);
        }
    }

    fn forget(&self, hash: &ApiKeyHash) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(hash.as_str());
        }
    }
}

/// Concurrent calls can change the allowance between the refused write and the split; each
/// retry re-reads it from the refused write itself.
const SPLIT_ATTEMPTS: usize = 5;

pub async fn meter<M: Meter>(
    store: &M,
    cache: &KeyCache,
    key: &str,
    cost: Credits,
) -> Result<(UserSub, Balances), MeterError> {
    let hash = ApiKeyHash::of(key);
    let sub = match cache.get(&hash) {
        Some(sub) => sub,
        None => {
            let sub = store
                .sub_for_key(&hash)
                .await?
                .ok_or(MeterError::UnknownKey)?;
            cache.put(&hash, sub.clone());
            sub
        }
    };

    let mut result = store.spend_allowance(&sub, &hash, cost).await?;
    for _ in 0..SPLIT_ATTEMPTS {
        let snapshot = match result {
            SpendResult::Spent(balances) => return Ok((sub, balances)),
            SpendResult::Refused(None) => {
                cache.forget(&hash);
                return Err(MeterError::UnknownKey);
            }
            SpendResult::Refused(Some(snapshot)) => snapshot,
        };
        if snapshot.key_hash.as_ref() != Some(&hash) {
            // Rotated or revoked: fail now, even though the cache still knew the key.
            cache.forget(&hash);
            return Err(MeterError::UnknownKey);
        }
        if snapshot.access != Access::Active {
            return Err(MeterError::AccessDenied);
        }
        let Balances {
            allowance,
            purchased,
        } = snapshot.balances;
        if snapshot.balances.total() < cost {
            return Err(MeterError::NoCredits {
                remaining: snapshot.balances.total(),
                needed: cost,
            });
        }
        if allowance >= cost {
            // The allowance was refilled between the two writes: the plain spend applies.
            result = store.spend_allowance(&sub, &hash, cost).await?;
            continue;
        }
        let from_purchased = Credits::new(cost.get() - allowance.get());
        debug_assert!(purchased >= from_purchased);
        result = store
            .spend_split(&sub, &hash, allowance, from_purchased)
            .await?;
    }
    match result {
        SpendResult::Spent(balances) => Ok((sub, balances)),
        _ => Err(MeterError::Contended),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_body_costs_one_credit() {
        assert_eq!(parse_cost(b""), Ok(Credits::new(1)));
        assert_eq!(parse_cost(b"  \n"), Ok(Credits::new(1)));
        assert_eq!(parse_cost(b"{}"), Ok(Credits::new(1)));
    }

    #[test]
    fn a_cost_must_be_a_bounded_whole_number() {
        assert_eq!(parse_cost(br#"{"credits": 5}"#), Ok(Credits::new(5)));
        assert_eq!(
            parse_cost(br#"{"credits": 0}"#),
            Err(MeterBodyError::Credits)
        );
        assert_eq!(
            parse_cost(br#"{"credits": -1}"#),
            Err(MeterBodyError::Credits)
        );
        assert_eq!(
            parse_cost(br#"{"credits": 1.5}"#),
            Err(MeterBodyError::Credits)
        );
        assert_eq!(
            parse_cost(br#"{"credits": "2"}"#),
            Err(MeterBodyError::Credits)
        );
        assert_eq!(
            parse_cost(br#"{"credits": 1001}"#),
            Err(MeterBodyError::Credits)
        );
    }

    #[test]
    fn malformed_bodies_say_what_is_wrong() {
        assert_eq!(parse_cost(b"{"), Err(MeterBodyError::NotAnObject));
        assert_eq!(parse_cost(b"[1]"), Err(MeterBodyError::NotAnObject));
        assert_eq!(
            parse_cost(br#"{"credit": 2}"#),
            Err(MeterBodyError::UnknownField("credit".into()))
        );
    }
}
