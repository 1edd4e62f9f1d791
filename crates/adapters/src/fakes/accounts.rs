//! Profiles, customer links, grants, packs, held purchases, webhook event records and API keys
//! in memory: `Accounts`, `Ledger`, `EventLedger` and `ApiKeys` as the DynamoDB adapters keep them.

use std::collections::BTreeMap;
use std::sync::Mutex;

use domain::ids::{
    ApiKeyHash, CheckoutSessionId, Credits, Email, PaymentIntentId, PlanId, StripeCustomerId,
    UserSub,
};
use domain::ports::{Accounts, Created, Ledger, PortError, Saved};
use domain::profile::Access;
use domain::profile::Profile;
use domain::webhook::{Claim, EventLedger, Finished, UnsettledEvent, claim_decision};
use domain::writes::{AllowanceWrite, PackGrant, ProfileWrite};

use super::{FailNext, lock};

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
        // Stored under its lowercased email, as the table's `HOLD#<email>` item holds it.
        let stored = domain::ports::HeldPurchase {
            email: held.email.normalized(),
            ..held.clone()
        };
        holds.insert(key, stored);
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
        domain::ports::HeldPurchase::sort_oldest_first(&mut held);
        Ok(held)
    }

    async fn all_held_purchases(&self) -> Result<Vec<domain::ports::HeldPurchase>, PortError> {
        self.fail_reads.check("list held purchases")?;
        let mut held: Vec<_> = lock(&self.holds).values().cloned().collect();
        domain::ports::HeldPurchase::sort_oldest_first(&mut held);
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
        if directory.is_none() && manager_started.is_none() {
            return Ok(());
        }
        // DynamoDB's update is conditioned on the profile being there.
        let mut profiles = lock(&self.profiles);
        let p = profiles.get_mut(sub.as_str()).ok_or_else(|| {
            PortError::new("record what Cognito and the manager follow", "no profile")
        })?;
        if let Some((plan, access)) = directory {
            p.directory_synced = Some((plan.clone(), access));
        }
        if manager_started.is_some() {
            p.manager_started = manager_started;
        }
        Ok(())
    }

    async fn grant_exists(&self, sub: &UserSub, source: &str) -> Result<bool, PortError> {
        self.fail_reads.check("read grant")?;
        // A pack is a `GRANT#<session>` item in the table, like an invoice's grant.
        let key = (sub.to_string(), source.to_owned());
        Ok(lock(&self.grants).contains_key(&key) || lock(&self.packs).contains_key(&key))
    }

    async fn write_profile(&self, write: &ProfileWrite) -> Result<Saved, PortError> {
        self.fail_writes.check("write profile")?;
        let mut profiles = lock(&self.profiles);
        let mut grants = lock(&self.grants);
        let packs = lock(&self.packs);
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
        // One `GRANT#<source>` item per source, an invoice's grant or a pack.
        if let Some(g) = &write.grant
            && (grants.contains_key(&(sub.clone(), g.source.clone()))
                || packs.contains_key(&(sub.clone(), g.source.clone())))
        {
            return Ok(Saved::Conflict);
        }
        // Only the fields the webhook owns are written (DynamoDB's UpdateItem sets these and
        // nothing else); the rest stays as it is now.
        let mut next = current.clone();
        next.plan = write.after.plan.clone();
        next.access = write.after.access;
        next.stripe_clock = write.after.stripe_clock;
        next.subscription = write.after.subscription.clone();
        next.allowance_source = write.after.allowance_source.clone();
        if write.generation_bumped {
            next.manager_generation = write.after.manager_generation;
        }
        next.allowance = match write.allowance {
            AllowanceWrite::Keep => current.allowance,
            AllowanceWrite::Reset(to) | AllowanceWrite::Cap { to, .. } => to,
        };
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
        let grants = lock(&self.grants);
        let mut packs = lock(&self.packs);
        let key = (sub.to_string(), grant.session.to_string());
        let Some(profile) = profiles.get_mut(sub.as_str()) else {
            return Ok(Saved::Conflict);
        };
        if packs.contains_key(&key) || grants.contains_key(&key) {
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
        // The table sets `revoked` and `removed`; the rest of the grant stays as recorded.
        stored.revoked = after.revoked;
        stored.removed = after.removed;
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
        // DynamoDB puts the new `APIKEY#` item only if it is not there: a key issued before
        // (to anyone) fails the whole transaction.
        if keys.contains_key(new.as_str()) {
            return Err(PortError::new(
                "rotate API key",
                "the key is issued already",
            ));
        }
        if let Some((old, _)) = &profile.api_key {
            keys.remove(old.as_str());
        }
        keys.insert(new.as_str().to_owned(), sub.to_string());
        profile.api_key = Some((new.clone(), prefix.to_owned()));
        Ok(())
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
