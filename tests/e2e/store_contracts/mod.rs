//! The DynamoDB ports' contract (`Accounts`, `Ledger`, `ApiKeys`, `Meter`), written once and
//! run against `DynamoStore` on moto's DynamoDB and against `InMemoryAccounts`, the fake the
//! handler tests use, so the fake cannot drift from the table (DynamoDB is the truth):
//! - accounts: a profile is created once (a second create finds it and changes nothing), reads
//!   back equal, an unknown user has none; a customer linked to another user is refused; the
//!   users' pages list every user once; the sign-up customer's owner is the user.
//! - API keys and the meter: a rotated key resolves and the old one stops at once; spends need
//!   the current key, active access and enough credits (a refusal returns the profile as it
//!   was and changes nothing); a split takes the rest from `purchased`; never below zero.
//! - profile writes: conditioned on the version read and on the grant being new; only the
//!   fields the webhook owns are written; `mark_followed` records what it says.
//! - held purchases: held once, found by email in any case, claimed once, by one user.
//! - packs: recorded once, read back by session and payment intent, revoked conditioned on
//!   what was revoked before.
//!
//! Every run uses fresh subs, customers and sessions, so runs on one table never collide.

use std::sync::atomic::{AtomicU64, Ordering};

use adapters::dynamo::DynamoStore;
use adapters::fakes::InMemoryAccounts;
use anyhow::{Context, ensure};
use domain::ids::{
    ApiKeyHash, CheckoutSessionId, Credits, Email, PaymentIntentId, PlanId, StripeCustomerId,
    UserSub,
};
use domain::metering::{Balances, Meter, Snapshot, SpendResult};
use domain::ports::{Accounts, ApiKeys, Created, HeldPurchase, Ledger, Saved, SessionMode};
use domain::profile::{Access, Profile};
use domain::writes::{AllowanceWrite, GrantRecord, PackGrant, ProfileWrite};
use tests::Stack;

mod accounts;
mod keys;
mod packs;
mod writes;

use accounts::accounts_contract;
use keys::keys_and_meter_contract;
use packs::{held_purchase_contract, pack_contract};
use writes::profile_write_contract;

#[tokio::test]
async fn dynamodb_on_moto_keeps_the_store_contract() -> anyhow::Result<()> {
    let stack = Stack::start("store-contracts", 3600).await?;
    let store = DynamoStore::new(stack.dynamodb.clone(), stack.var("TABLE_NAME")?);
    store_contract(&store).await
}

#[tokio::test]
async fn the_in_memory_accounts_keep_the_same_store_contract() -> anyhow::Result<()> {
    store_contract(&InMemoryAccounts::default()).await
}

async fn store_contract<S>(store: &S) -> anyhow::Result<()>
where
    S: Accounts + Ledger + ApiKeys + Meter,
{
    let ids = Ids::new();
    accounts_contract(store, &ids).await.context("accounts")?;
    keys_and_meter_contract(store, &ids)
        .await
        .context("API keys and the meter")?;
    profile_write_contract(store, &ids)
        .await
        .context("profile writes")?;
    held_purchase_contract(store, &ids)
        .await
        .context("held purchases")?;
    pack_contract(store, &ids).await.context("packs")
}

/// Fresh ids for one run: a tag from the process and the clock, and a counter.
struct Ids {
    tag: String,
    next: AtomicU64,
}

impl Ids {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        Self {
            tag: format!("{:x}x{:x}", std::process::id(), nanos),
            next: AtomicU64::new(0),
        }
    }

    fn n(&self) -> u64 {
        self.next.fetch_add(1, Ordering::SeqCst)
    }

    fn sub(&self) -> anyhow::Result<UserSub> {
        Ok(UserSub::parse(&format!("sc-{}-{}", self.tag, self.n()))?)
    }

    fn customer(&self) -> anyhow::Result<StripeCustomerId> {
        Ok(StripeCustomerId::parse(&format!(
            "cus_sc{}x{}",
            self.tag,
            self.n()
        ))?)
    }

    fn session(&self) -> anyhow::Result<CheckoutSessionId> {
        Ok(CheckoutSessionId::parse(&format!(
            "cs_sc_{}_{}",
            self.tag,
            self.n()
        ))?)
    }

    fn payment(&self) -> anyhow::Result<PaymentIntentId> {
        Ok(PaymentIntentId::parse(&format!(
            "pi_sc_{}_{}",
            self.tag,
            self.n()
        ))?)
    }

    fn key(&self) -> ApiKeyHash {
        ApiKeyHash::of(&format!("cgk_sc_{}_{}", self.tag, self.n()))
    }

    /// A new user's profile (not stored), with these balances.
    fn profile(&self, allowance: u64, purchased: u64) -> anyhow::Result<Profile> {
        let sub = self.sub()?;
        let mut profile = Profile::new_signup(
            sub.clone(),
            Email::parse(&format!("{sub}@example.com"))?,
            self.customer()?,
            plan("free")?,
            "2026-01-01T00:00:00Z".into(),
        );
        profile.allowance = Credits::new(allowance);
        profile.purchased = Credits::new(purchased);
        Ok(profile)
    }
}

fn plan(id: &str) -> anyhow::Result<PlanId> {
    Ok(PlanId::parse(id)?)
}

fn balances(allowance: u64, purchased: u64) -> Balances {
    Balances {
        allowance: Credits::new(allowance),
        purchased: Credits::new(purchased),
    }
}

/// A user created through the port, read back.
async fn signed_up<S: Accounts>(
    store: &S,
    ids: &Ids,
    allowance: u64,
    purchased: u64,
) -> anyhow::Result<Profile> {
    let profile = ids.profile(allowance, purchased)?;
    ensure!(store.create_profile(&profile).await? == Created::New);
    current(store, &profile.sub).await
}

async fn current<S: Accounts>(store: &S, sub: &UserSub) -> anyhow::Result<Profile> {
    store
        .profile(sub)
        .await?
        .with_context(|| format!("{sub} has no profile"))
}

async fn held_balances<S: Accounts>(store: &S, sub: &UserSub) -> anyhow::Result<Balances> {
    let p = current(store, sub).await?;
    Ok(Balances {
        allowance: p.allowance,
        purchased: p.purchased,
    })
}
