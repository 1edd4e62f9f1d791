//! In-memory ports for handler tests (feature `test-util`, never in release builds). Each
//! fake behaves like the real service where the use cases depend on it: conditional creates,
//! idempotency keys, deterministic execution names, and injectable failures.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use domain::ids::{
    ApiKeyHash, CheckoutSessionId, Credits, Email, PaymentIntentId, PlanId, StripeCustomerId,
    UserSub,
};
use domain::metering::{Balances, Meter, Snapshot, SpendResult};
use domain::ports::{
    Accounts, Billing, Created, Directory, DirectoryEntry, Ledger, ManagerRun, PortError, Saved,
    Scheduler, Started,
};
use domain::profile::Access;
use domain::profile::Profile;
use domain::webhook::{Claim, EventLedger, Finished, UnsettledEvent, claim_decision};
use domain::writes::{AllowanceWrite, PackGrant, ProfileWrite};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Fails the next `n` calls (or the next call of one named operation), then behaves.
#[derive(Default)]
pub struct FailNext(AtomicU32, Mutex<Vec<&'static str>>);

impl FailNext {
    pub fn set(&self, n: u32) {
        self.0.store(n, Ordering::SeqCst);
    }

    /// Fails the next call of `operation` (as the port names it, e.g. "create profile") once.
    pub fn once(&self, operation: &'static str) {
        lock(&self.1).push(operation);
    }

    fn check(&self, operation: &'static str) -> Result<(), PortError> {
        let named = {
            let mut ops = lock(&self.1);
            match ops.iter().position(|o| *o == operation) {
                Some(i) => {
                    ops.remove(i);
                    true
                }
                None => false,
            }
        };
        let failed = named
            || self
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

/// An event record: (status, lease until, attempts, last error, event type).
pub type EventRecord = (String, i64, u32, Option<String>, String);

#[derive(Default)]
pub struct InMemoryAccounts {
    pub profiles: Mutex<BTreeMap<String, Profile>>,
    /// customer id → sub
    pub customer_links: Mutex<BTreeMap<String, String>>,
    /// (sub, source) → invoice grant credits
    pub grants: Mutex<BTreeMap<(String, String), u64>>,
    /// (sub, session) → pack grant
    pub packs: Mutex<BTreeMap<(String, String), PackGrant>>,
    /// event id → its record
    pub events: Mutex<BTreeMap<String, EventRecord>>,
    /// API key hash → sub
    pub api_keys: Mutex<BTreeMap<String, String>>,
    /// (lowercased email, session) → held purchase
    pub holds: Mutex<BTreeMap<(String, String), domain::ports::HeldPurchase>>,
    pub fail_reads: FailNext,
    pub fail_writes: FailNext,
}

impl Ledger for InMemoryAccounts {
    async fn customer_owner(
        &self,
        customer: &StripeCustomerId,
    ) -> Result<Option<UserSub>, PortError> {
        self.fail_reads.check("read customer link")?;
        lock(&self.customer_links)
            .get(customer.as_str())
            .map(|s| UserSub::parse(s).map_err(|e| PortError::new("read customer link", e)))
            .transpose()
    }

    async fn hold_purchase(
        &self,
        held: &domain::ports::HeldPurchase,
    ) -> Result<Created, PortError> {
        self.fail_writes.check("hold purchase")?;
        let mut holds = lock(&self.holds);
        let key = (
            held.email.normalized().to_string(),
            held.session.to_string(),
        );
        if holds.contains_key(&key) {
            return Ok(Created::AlreadyExisted);
        }
        holds.insert(key, held.clone());
        Ok(Created::New)
    }

    async fn held_purchases(
        &self,
        email: &Email,
    ) -> Result<Vec<domain::ports::HeldPurchase>, PortError> {
        self.fail_reads.check("read held purchases")?;
        let email = email.normalized().to_string();
        let mut held: Vec<_> = lock(&self.holds)
            .iter()
            .filter(|((e, _), _)| *e == email)
            .map(|(_, h)| h.clone())
            .collect();
        held.sort_by_key(|h| h.held_at);
        Ok(held)
    }

    async fn claim_purchase(
        &self,
        held: &domain::ports::HeldPurchase,
        sub: &UserSub,
    ) -> Result<Saved, PortError> {
        self.fail_writes.check("claim held purchase")?;
        let mut holds = lock(&self.holds);
        let mut links = lock(&self.customer_links);
        let mut profiles = lock(&self.profiles);
        let key = (
            held.email.normalized().to_string(),
            held.session.to_string(),
        );
        let (Some(hold), Some(profile)) = (holds.get_mut(&key), profiles.get_mut(sub.as_str()))
        else {
            return Ok(Saved::Conflict);
        };
        let mine = |owner: Option<&String>| owner.is_none_or(|o| o == sub.as_str());
        if !mine(
            hold.claimed_by
                .as_ref()
                .map(|s| s.as_str().to_owned())
                .as_ref(),
        ) || !mine(links.get(held.customer.as_str()))
        {
            return Ok(Saved::Conflict);
        }
        hold.claimed_by = Some(sub.clone());
        links.insert(held.customer.to_string(), sub.to_string());
        if !profile.linked_customers.contains(&held.customer) {
            profile.linked_customers.push(held.customer.clone());
        }
        Ok(Saved::Written)
    }

    async fn mark_followed(
        &self,
        sub: &UserSub,
        directory: Option<(&PlanId, Access)>,
        manager_started: Option<u64>,
    ) -> Result<(), PortError> {
        self.fail_writes.check("mark followed")?;
        if let Some(p) = lock(&self.profiles).get_mut(sub.as_str()) {
            if let Some((plan, access)) = directory {
                p.directory_synced = Some((plan.clone(), access));
            }
            if manager_started.is_some() {
                p.manager_started = manager_started;
            }
        }
        Ok(())
    }

    async fn grant_exists(&self, sub: &UserSub, source: &str) -> Result<bool, PortError> {
        self.fail_reads.check("read grant")?;
        Ok(lock(&self.grants).contains_key(&(sub.to_string(), source.to_owned())))
    }

    async fn write_profile(&self, write: &ProfileWrite) -> Result<Saved, PortError> {
        self.fail_writes.check("write profile")?;
        let mut profiles = lock(&self.profiles);
        let mut grants = lock(&self.grants);
        let sub = write.after.sub.to_string();
        let Some(current) = profiles.get(&sub) else {
            return Ok(Saved::Conflict);
        };
        if current.version != write.before.version {
            return Ok(Saved::Conflict);
        }
        if let AllowanceWrite::Cap { seen, .. } = write.allowance
            && current.allowance != seen
        {
            return Ok(Saved::Conflict);
        }
        if let Some(g) = &write.grant
            && grants.contains_key(&(sub.clone(), g.source.clone()))
        {
            return Ok(Saved::Conflict);
        }
        let mut next = write.after.clone();
        next.allowance = match write.allowance {
            AllowanceWrite::Keep => current.allowance,
            AllowanceWrite::Reset(to) | AllowanceWrite::Cap { to, .. } => to,
        };
        // What the webhook's profile write does not own stays as it is now.
        next.purchased = current.purchased;
        next.api_key = current.api_key.clone();
        next.directory_synced = current.directory_synced.clone();
        next.manager_started = current.manager_started;
        next.version = write.before.version + 1;
        if let Some(g) = &write.grant {
            grants.insert((sub.clone(), g.source.clone()), g.credits.get());
        }
        profiles.insert(sub, next);
        Ok(Saved::Written)
    }

    async fn pack_grant(
        &self,
        sub: &UserSub,
        session: &CheckoutSessionId,
    ) -> Result<Option<PackGrant>, PortError> {
        self.fail_reads.check("read pack grant")?;
        Ok(lock(&self.packs)
            .get(&(sub.to_string(), session.to_string()))
            .cloned())
    }

    async fn pack_for_payment(
        &self,
        sub: &UserSub,
        payment_intent: &PaymentIntentId,
    ) -> Result<Option<PackGrant>, PortError> {
        self.fail_reads.check("find pack grant")?;
        Ok(lock(&self.packs)
            .iter()
            .find(|((s, _), g)| {
                s == sub.as_str() && g.payment_intent.as_ref() == Some(payment_intent)
            })
            .map(|(_, g)| g.clone()))
    }

    async fn record_pack(&self, sub: &UserSub, grant: &PackGrant) -> Result<Saved, PortError> {
        self.fail_writes.check("record pack grant")?;
        let mut profiles = lock(&self.profiles);
        let mut packs = lock(&self.packs);
        let key = (sub.to_string(), grant.session.to_string());
        let Some(profile) = profiles.get_mut(sub.as_str()) else {
            return Ok(Saved::Conflict);
        };
        if packs.contains_key(&key) {
            return Ok(Saved::Conflict);
        }
        // Capped at what a balance can hold, as the DynamoDB adapter does.
        profile.purchased = Credits::new(
            profile
                .purchased
                .get()
                .saturating_add(grant.credits.get().saturating_sub(grant.removed.get())),
        );
        packs.insert(key, grant.clone());
        Ok(Saved::Written)
    }

    async fn revoke_pack(
        &self,
        sub: &UserSub,
        before: &PackGrant,
        after: &PackGrant,
    ) -> Result<Saved, PortError> {
        self.fail_writes.check("revoke pack credits")?;
        let mut profiles = lock(&self.profiles);
        let mut packs = lock(&self.packs);
        let key = (sub.to_string(), before.session.to_string());
        let take = after.removed.get().saturating_sub(before.removed.get());
        let (Some(profile), Some(stored)) = (profiles.get_mut(sub.as_str()), packs.get_mut(&key))
        else {
            return Ok(Saved::Conflict);
        };
        if stored.revoked != before.revoked || profile.purchased.get() < take {
            return Ok(Saved::Conflict);
        }
        profile.purchased = Credits::new(profile.purchased.get() - take);
        *stored = after.clone();
        Ok(Saved::Written)
    }
}

impl EventLedger for InMemoryAccounts {
    async fn claim(
        &self,
        event: &str,
        event_type: &str,
        now: i64,
        lease_until: i64,
    ) -> Result<Claim, PortError> {
        self.fail_writes.check("claim webhook event")?;
        let mut events = lock(&self.events);
        let stored = events.get(event).map(|(s, l, a, ..)| (s.as_str(), *l, *a));
        let decision = claim_decision(stored, now);
        if let Claim::Owned { attempt } = decision {
            events.insert(
                event.to_owned(),
                (
                    "processing".into(),
                    lease_until,
                    attempt,
                    None,
                    event_type.to_owned(),
                ),
            );
        }
        Ok(decision)
    }

    async fn finish(&self, event: &str, attempt: u32, status: Finished) -> Result<bool, PortError> {
        match lock(&self.events).get_mut(event) {
            Some(record) if record.2 == attempt => {
                record.0 = status.as_str().to_owned();
                record.3 = None;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn fail(&self, event: &str, attempt: u32, error: &str) -> Result<bool, PortError> {
        match lock(&self.events).get_mut(event) {
            Some(record) if record.2 == attempt => {
                record.0 = "failed".into();
                record.3 = Some(error.to_owned());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn unsettled_events(&self, now: i64) -> Result<Vec<UnsettledEvent>, PortError> {
        self.fail_reads.check("list unsettled webhook events")?;
        Ok(lock(&self.events)
            .iter()
            .filter(|(_, (status, lease, ..))| {
                status == "failed" || (status == "processing" && *lease <= now)
            })
            .map(
                |(id, (status, lease, attempts, error, event_type))| UnsettledEvent {
                    id: id.clone(),
                    event_type: event_type.clone(),
                    attempts: i64::from(*attempts),
                    last_error: error.clone().unwrap_or_default(),
                    lease_ended: (status == "processing").then_some(*lease),
                },
            )
            .collect())
    }

    async fn is_settled(&self, event: &str) -> Result<bool, PortError> {
        self.fail_reads.check("read webhook event record")?;
        Ok(lock(&self.events)
            .get(event)
            .is_some_and(|(status, ..)| status == "done" || status == "ignored"))
    }
}

impl domain::ports::ApiKeys for InMemoryAccounts {
    async fn rotate_api_key(
        &self,
        sub: &UserSub,
        new: &ApiKeyHash,
        prefix: &str,
    ) -> Result<(), PortError> {
        self.fail_writes.check("rotate API key")?;
        let mut profiles = lock(&self.profiles);
        let profile = profiles
            .get_mut(sub.as_str())
            .ok_or_else(|| PortError::new("rotate API key", "no profile"))?;
        let mut keys = lock(&self.api_keys);
        if let Some((old, _)) = &profile.api_key {
            keys.remove(old.as_str());
        }
        keys.insert(new.as_str().to_owned(), sub.to_string());
        profile.api_key = Some((new.clone(), prefix.to_owned()));
        Ok(())
    }
}

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

    /// Pages of two users, so callers meet more than one page.
    async fn users_page(
        &self,
        after: Option<&str>,
    ) -> Result<(Vec<UserSub>, Option<String>), PortError> {
        self.fail_reads.check("list users")?;
        let all: Vec<String> = lock(&self.profiles)
            .keys()
            .filter(|k| after.is_none_or(|a| k.as_str() > a))
            .cloned()
            .collect();
        let page: Vec<UserSub> = all
            .iter()
            .take(2)
            .map(|s| UserSub::parse(s).map_err(|e| PortError::new("list users", e)))
            .collect::<Result<_, _>>()?;
        let next = (all.len() > 2).then(|| all[1].clone());
        Ok((page, next))
    }
}

/// What a customer was created with: (Cognito sub, email).
pub type CustomerParams = (String, String);

#[derive(Default)]
pub struct FakeBilling {
    /// idempotency key → (the parameters first sent with it, the customer), as Stripe keeps
    /// them: the same key with other parameters is refused.
    pub by_key: Mutex<HashMap<String, (CustomerParams, StripeCustomerId)>>,
    pub customers: Mutex<Vec<(StripeCustomerId, String)>>,
    pub fail: FailNext,
}

impl Billing for FakeBilling {
    async fn create_customer(
        &self,
        sub: &UserSub,
        email: &Email,
        idempotency_key: &str,
    ) -> Result<StripeCustomerId, PortError> {
        self.fail.check("create Stripe customer")?;
        let mut by_key = lock(&self.by_key);
        let params = (sub.to_string(), email.to_string());
        if let Some((first, existing)) = by_key.get(idempotency_key) {
            if *first != params {
                return Err(PortError::new(
                    "create Stripe customer",
                    "idempotency_error: Keys for idempotent requests can only be used with the \
                     same parameters they were first used with",
                ));
            }
            return Ok(existing.clone());
        }
        let mut customers = lock(&self.customers);
        let id = StripeCustomerId::parse(&format!("cus_fake{}", customers.len() + 1))
            .map_err(|e| PortError::new("create Stripe customer", e))?;
        customers.push((id.clone(), email.to_string()));
        by_key.insert(idempotency_key.to_owned(), (params, id.clone()));
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

/// An API Gateway HTTP API (v2) request as the JWT authorizer passes it on: `sub` in the
/// verified claims (none: no authorizer context at all).
pub fn api_request(
    method: &str,
    path: &str,
    sub: Option<&str>,
    body: &str,
) -> lambda_http::Request {
    api_request_with_claims(
        method,
        path,
        sub.map(|sub| serde_json::json!({ "sub": sub })),
        body,
    )
}

/// [`api_request`] with the authorizer's whole claims object (an ID token's email and
/// `email_verified`, say).
pub fn api_request_with_claims(
    method: &str,
    path: &str,
    claims: Option<serde_json::Value>,
    body: &str,
) -> lambda_http::Request {
    let mut context = serde_json::json!({
        "accountId": "123456789012", "apiId": "test", "domainName": "localhost",
        "domainPrefix": "localhost", "requestId": "test", "routeKey": format!("{method} {path}"),
        "stage": "$default", "time": "23/Nov/2026:00:00:00 +0000", "timeEpoch": 0,
        "http": { "method": method, "path": path, "protocol": "HTTP/1.1",
                  "sourceIp": "127.0.0.1", "userAgent": "test" }
    });
    if let Some(claims) = claims {
        context["authorizer"] = serde_json::json!({ "jwt": { "claims": claims, "scopes": null } });
    }
    let event = serde_json::json!({
        "version": "2.0", "routeKey": format!("{method} {path}"), "rawPath": path,
        "rawQueryString": "", "headers": { "content-type": "application/json" },
        "requestContext": context, "body": body, "isBase64Encoded": false
    });
    match serde_json::from_value::<lambda_http::request::LambdaRequest>(event) {
        Ok(request) => request.into(),
        Err(e) => panic!("the test event does not parse: {e}"),
    }
}

/// A Stripe state whose client points at a closed port: for handler tests of paths that must
/// answer before calling Stripe.
pub fn unreachable_stripe() -> crate::stripe_reads::StripeState {
    crate::stripe_reads::StripeState::new(crate::secrets::StripeSecretSource::fixed(
        "sk_test_unreachable",
        &[],
        Some("http://127.0.0.1:9/".into()),
    ))
}

/// A Free profile for `sub` (customer `cus_test1`), as sign-up leaves it.
pub fn signed_up(sub: &str) -> Profile {
    let parse = |r: Result<Profile, domain::ids::InvalidId>| match r {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    parse((|| {
        Ok(Profile::new_signup(
            UserSub::parse(sub)?,
            Email::parse("ada@example.com")?,
            StripeCustomerId::parse("cus_test1")?,
            PlanId::parse("free")?,
            "2026-11-23T00:00:00Z".into(),
        ))
    })())
}
