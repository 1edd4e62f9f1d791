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

async fn accounts_contract<S: Accounts + Ledger>(store: &S, ids: &Ids) -> anyhow::Result<()> {
    let profile = ids.profile(7, 3)?;
    assert_eq!(store.profile(&profile.sub).await?, None, "an unknown user");
    assert_eq!(store.create_profile(&profile).await?, Created::New);
    assert_eq!(
        store.profile(&profile.sub).await?.as_ref(),
        Some(&profile),
        "the created profile reads back as written"
    );

    let retry = Profile {
        plan: plan("basic")?,
        allowance: Credits::new(999),
        ..profile.clone()
    };
    assert_eq!(
        store.create_profile(&retry).await?,
        Created::AlreadyExisted,
        "a second create of the same user"
    );
    assert_eq!(
        store.profile(&profile.sub).await?.as_ref(),
        Some(&profile),
        "a second create overwrites nothing"
    );

    assert_eq!(
        store.customer_owner(&profile.customer).await?,
        Some(profile.sub.clone()),
        "the sign-up customer belongs to the user"
    );
    assert_eq!(
        store.customer_owner(&ids.customer()?).await?,
        None,
        "an unknown customer"
    );

    // Another user with the first one's customer: refused, and nothing of it is written.
    let thief = Profile {
        customer: profile.customer.clone(),
        ..ids.profile(0, 0)?
    };
    assert!(
        store.create_profile(&thief).await.is_err(),
        "a profile for a customer linked to another user"
    );
    assert_eq!(store.profile(&thief.sub).await?, None);
    assert_eq!(
        store.customer_owner(&profile.customer).await?,
        Some(profile.sub.clone())
    );

    // Paging: every user created here is listed exactly once over all pages.
    let mut created = vec![profile.sub.clone()];
    for _ in 0..5 {
        created.push(signed_up(store, ids, 0, 0).await?.sub);
    }
    let mut listed: Vec<UserSub> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let (page, next) = store.users_page(cursor.as_deref()).await?;
        listed.extend(page);
        pages += 1;
        ensure!(pages < 10_000, "users_page never ends");
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    for sub in &created {
        let times = listed.iter().filter(|s| *s == sub).count();
        assert_eq!(times, 1, "{sub} listed {times} times over {pages} pages");
    }
    let mut unique = listed.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), listed.len(), "a user listed twice");
    assert!(
        !listed.contains(&thief.sub),
        "a refused profile is not listed"
    );
    Ok(())
}

async fn keys_and_meter_contract<S>(store: &S, ids: &Ids) -> anyhow::Result<()>
where
    S: Accounts + Ledger + ApiKeys + Meter,
{
    let user = signed_up(store, ids, 10, 5).await?;
    let sub = &user.sub;

    let first = ids.key();
    assert_eq!(store.sub_for_key(&first).await?, None, "a key never issued");
    store.rotate_api_key(sub, &first, "cgk_first").await?;
    assert_eq!(store.sub_for_key(&first).await?, Some(sub.clone()));
    assert_eq!(
        current(store, sub).await?.api_key,
        Some((first.clone(), "cgk_first".to_owned())),
        "the profile points at the new key"
    );

    assert_eq!(
        store.spend_allowance(sub, &first, Credits::new(4)).await?,
        SpendResult::Spent(balances(6, 5)),
        "a spend with the current key, covered by the allowance"
    );
    assert_eq!(held_balances(store, sub).await?, balances(6, 5));

    let second = ids.key();
    store.rotate_api_key(sub, &second, "cgk_second").await?;
    assert_eq!(store.sub_for_key(&second).await?, Some(sub.clone()));
    assert_eq!(
        store.sub_for_key(&first).await?,
        None,
        "the rotated-away key stops resolving at once"
    );
    let as_it_is = |allowance, purchased, access| {
        SpendResult::Refused(Some(Snapshot {
            key_hash: Some(second.clone()),
            access,
            balances: balances(allowance, purchased),
        }))
    };
    assert_eq!(
        store.spend_allowance(sub, &first, Credits::new(1)).await?,
        as_it_is(6, 5, Access::Active),
        "a spend with the rotated-away key"
    );
    assert_eq!(
        store.spend_allowance(sub, &second, Credits::new(7)).await?,
        as_it_is(6, 5, Access::Active),
        "a spend beyond the allowance"
    );
    assert_eq!(
        store
            .spend_split(sub, &first, Credits::new(6), Credits::new(1))
            .await?,
        as_it_is(6, 5, Access::Active),
        "a split with the rotated-away key"
    );
    assert_eq!(held_balances(store, sub).await?, balances(6, 5));

    assert_eq!(
        store
            .spend_split(sub, &second, Credits::new(6), Credits::new(1))
            .await?,
        SpendResult::Spent(balances(0, 4)),
        "the allowance's rest and one from purchased"
    );
    assert_eq!(
        store
            .spend_split(sub, &second, Credits::new(6), Credits::new(1))
            .await?,
        as_it_is(0, 4, Access::Active),
        "a split conditioned on an allowance no longer there"
    );
    assert_eq!(
        store
            .spend_split(sub, &second, Credits::ZERO, Credits::new(5))
            .await?,
        as_it_is(0, 4, Access::Active),
        "a split beyond purchased"
    );
    assert_eq!(
        store
            .spend_split(sub, &second, Credits::ZERO, Credits::new(4))
            .await?,
        SpendResult::Spent(balances(0, 0)),
        "the last of purchased"
    );
    assert_eq!(
        store.spend_allowance(sub, &second, Credits::new(1)).await?,
        as_it_is(0, 0, Access::Active),
        "nothing left: never below zero"
    );
    assert_eq!(
        store
            .spend_split(sub, &second, Credits::ZERO, Credits::new(1))
            .await?,
        as_it_is(0, 0, Access::Active)
    );
    assert_eq!(held_balances(store, sub).await?, balances(0, 0));

    // Access switched off (a webhook's profile write): the current key spends nothing.
    let off = signed_up(store, ids, 10, 10).await?;
    let key = ids.key();
    store.rotate_api_key(&off.sub, &key, "cgk_off").await?;
    let before = current(store, &off.sub).await?;
    let write = ProfileWrite {
        after: Profile {
            access: Access::Disabled,
            ..before.clone()
        },
        before,
        allowance: AllowanceWrite::Keep,
        generation_bumped: false,
        grant: None,
    };
    assert_eq!(store.write_profile(&write).await?, Saved::Written);
    assert_eq!(
        store
            .spend_allowance(&off.sub, &key, Credits::new(1))
            .await?,
        SpendResult::Refused(Some(Snapshot {
            key_hash: Some(key.clone()),
            access: Access::Disabled,
            balances: balances(10, 10),
        })),
        "a spend with access disabled"
    );
    assert_eq!(
        store
            .spend_split(&off.sub, &key, Credits::new(10), Credits::new(1))
            .await?,
        SpendResult::Refused(Some(Snapshot {
            key_hash: Some(key.clone()),
            access: Access::Disabled,
            balances: balances(10, 10),
        })),
        "a split with access disabled"
    );
    assert_eq!(held_balances(store, &off.sub).await?, balances(10, 10));

    let nobody = ids.sub()?;
    assert_eq!(
        store
            .spend_allowance(&nobody, &key, Credits::new(1))
            .await?,
        SpendResult::Refused(None),
        "a spend for a user with no profile"
    );

    let orphan = ids.key();
    assert!(
        store
            .rotate_api_key(&nobody, &orphan, "cgk_orphan")
            .await
            .is_err(),
        "rotating the key of a user with no profile"
    );
    assert_eq!(store.sub_for_key(&orphan).await?, None);
    assert_eq!(store.profile(&nobody).await?, None);

    // A key already issued to someone (a hash collision) is never taken over.
    assert!(
        store
            .rotate_api_key(&off.sub, &second, "cgk_taken")
            .await
            .is_err(),
        "rotating to a key another user holds"
    );
    assert_eq!(store.sub_for_key(&second).await?, Some(sub.clone()));
    assert_eq!(store.sub_for_key(&key).await?, Some(off.sub.clone()));
    assert_eq!(
        current(store, &off.sub).await?.api_key,
        Some((key.clone(), "cgk_off".to_owned())),
        "a refused rotation leaves the key as it was"
    );
    Ok(())
}

async fn profile_write_contract<S: Accounts + Ledger>(store: &S, ids: &Ids) -> anyhow::Result<()> {
    let before = signed_up(store, ids, 5, 20).await?;
    let sub = before.sub.clone();
    let basic = plan("basic")?;
    let source = format!("in_sc{}:basic", ids.tag);
    assert!(!store.grant_exists(&sub, &source).await?);

    let after = Profile {
        plan: basic.clone(),
        stripe_clock: 1_700_000_000,
        allowance_source: Some(source.clone()),
        // Not the webhook's to write: the store keeps what it holds.
        purchased: Credits::new(12_345),
        manager_generation: before.manager_generation + 5,
        email: Email::parse("someone-else@example.com")?,
        ..before.clone()
    };
    let write = ProfileWrite {
        before: before.clone(),
        after: after.clone(),
        allowance: AllowanceWrite::Reset(Credits::new(500)),
        generation_bumped: false,
        grant: Some(GrantRecord {
            source: source.clone(),
            credits: Credits::new(500),
            cause: "invoice",
        }),
    };
    assert_eq!(store.write_profile(&write).await?, Saved::Written);
    let written = Profile {
        plan: basic.clone(),
        stripe_clock: 1_700_000_000,
        allowance_source: Some(source.clone()),
        allowance: Credits::new(500),
        version: before.version + 1,
        ..before.clone()
    };
    assert_eq!(
        current(store, &sub).await?,
        written,
        "the owned fields written, the allowance reset, the version bumped; nothing else"
    );
    assert!(
        store.grant_exists(&sub, &source).await?,
        "the grant is recorded"
    );

    // The same write again (a redelivery): its `before` is stale now.
    assert_eq!(store.write_profile(&write).await?, Saved::Conflict);
    assert_eq!(
        current(store, &sub).await?,
        written,
        "a conflict changes nothing"
    );

    // Up to date, but the same grant: it happens once.
    let again = ProfileWrite {
        before: written.clone(),
        after: Profile {
            stripe_clock: 1_700_000_100,
            ..written.clone()
        },
        ..write.clone()
    };
    assert_eq!(store.write_profile(&again).await?, Saved::Conflict);
    assert_eq!(
        current(store, &sub).await?,
        written,
        "the grant happens once"
    );

    // A cap conditioned on an allowance no longer there.
    let cap = ProfileWrite {
        before: written.clone(),
        after: written.clone(),
        allowance: AllowanceWrite::Cap {
            to: Credits::new(100),
            seen: Credits::new(499),
        },
        generation_bumped: false,
        grant: None,
    };
    assert_eq!(store.write_profile(&cap).await?, Saved::Conflict);
    assert_eq!(current(store, &sub).await?, written);
    let cap = ProfileWrite {
        allowance: AllowanceWrite::Cap {
            to: Credits::new(100),
            seen: Credits::new(500),
        },
        ..cap
    };
    assert_eq!(store.write_profile(&cap).await?, Saved::Written);
    let capped = Profile {
        allowance: Credits::new(100),
        version: written.version + 1,
        ..written.clone()
    };
    assert_eq!(current(store, &sub).await?, capped);

    // A bumped generation is written.
    let bump = ProfileWrite {
        before: capped.clone(),
        after: Profile {
            manager_generation: capped.manager_generation + 1,
            ..capped.clone()
        },
        allowance: AllowanceWrite::Keep,
        generation_bumped: true,
        grant: None,
    };
    assert_eq!(store.write_profile(&bump).await?, Saved::Written);
    let bumped = Profile {
        manager_generation: capped.manager_generation + 1,
        version: capped.version + 1,
        ..capped.clone()
    };
    assert_eq!(current(store, &sub).await?, bumped);

    // No profile: nothing to write.
    let ghost = ids.profile(0, 0)?;
    let orphan = ProfileWrite {
        before: ghost.clone(),
        after: ghost.clone(),
        allowance: AllowanceWrite::Keep,
        generation_bumped: false,
        grant: None,
    };
    assert_eq!(store.write_profile(&orphan).await?, Saved::Conflict);
    assert_eq!(store.profile(&ghost.sub).await?, None);

    // mark_followed records what it says and leaves the rest.
    store
        .mark_followed(&sub, Some((&basic, Access::Disabled)), Some(4))
        .await?;
    let followed = current(store, &sub).await?;
    assert_eq!(
        (followed.directory_synced.clone(), followed.manager_started),
        (Some((basic.clone(), Access::Disabled)), Some(4))
    );
    store.mark_followed(&sub, None, None).await?;
    assert_eq!(current(store, &sub).await?, followed, "None leaves both");
    store.mark_followed(&sub, None, Some(5)).await?;
    let later = current(store, &sub).await?;
    assert_eq!(
        (later.directory_synced.clone(), later.manager_started),
        (Some((basic.clone(), Access::Disabled)), Some(5))
    );
    assert_eq!(
        Profile {
            manager_started: Some(4),
            ..later
        },
        followed,
        "nothing else moved"
    );
    assert!(
        store
            .mark_followed(&ghost.sub, Some((&basic, Access::Active)), Some(1))
            .await
            .is_err(),
        "marking a user with no profile"
    );
    assert_eq!(store.profile(&ghost.sub).await?, None);
    Ok(())
}

async fn held_purchase_contract<S: Accounts + Ledger>(store: &S, ids: &Ids) -> anyhow::Result<()> {
    let lower = format!("pay-{}@example.com", ids.tag);
    let mixed = Email::parse(&format!("Pay-{}@Example.COM", ids.tag))?;
    let later = HeldPurchase {
        session: ids.session()?,
        customer: ids.customer()?,
        email: mixed.clone(),
        mode: SessionMode::Payment,
        plan: Some(plan("power")?),
        held_at: 200,
        claimed_by: None,
    };
    let earlier = HeldPurchase {
        session: ids.session()?,
        customer: ids.customer()?,
        email: Email::parse(&lower)?,
        mode: SessionMode::Subscription,
        plan: Some(plan("basic")?),
        held_at: 100,
        claimed_by: None,
    };
    assert_eq!(store.hold_purchase(&later).await?, Created::New);
    assert_eq!(
        store.hold_purchase(&later).await?,
        Created::AlreadyExisted,
        "a redelivery"
    );
    let shouted = HeldPurchase {
        email: Email::parse(&lower.to_uppercase())?,
        held_at: 999,
        ..later.clone()
    };
    assert_eq!(
        store.hold_purchase(&shouted).await?,
        Created::AlreadyExisted,
        "the same session under the email in another case"
    );
    assert_eq!(store.hold_purchase(&earlier).await?, Created::New);

    let normalized = |h: &HeldPurchase| HeldPurchase {
        email: h.email.normalized(),
        ..h.clone()
    };
    let expected = vec![normalized(&earlier), normalized(&later)];
    for asked in [
        Email::parse(&lower)?,
        mixed.clone(),
        Email::parse(&lower.to_uppercase())?,
    ] {
        assert_eq!(
            store.held_purchases(&asked).await?,
            expected,
            "held for {asked}: oldest first, the email lowercased"
        );
    }
    assert_eq!(
        store
            .held_purchases(&Email::parse(&format!("other-{}@example.com", ids.tag))?)
            .await?,
        Vec::new()
    );

    let claimant = signed_up(store, ids, 0, 0).await?;
    let other = signed_up(store, ids, 0, 0).await?;
    assert_eq!(
        store.claim_purchase(&later, &claimant.sub).await?,
        Saved::Written
    );
    let claimed = HeldPurchase {
        claimed_by: Some(claimant.sub.clone()),
        ..normalized(&later)
    };
    assert_eq!(
        store.held_purchases(&mixed).await?,
        vec![normalized(&earlier), claimed.clone()]
    );
    assert_eq!(
        store.customer_owner(&later.customer).await?,
        Some(claimant.sub.clone())
    );
    let bound = Profile {
        linked_customers: vec![later.customer.clone()],
        ..claimant.clone()
    };
    assert_eq!(current(store, &claimant.sub).await?, bound);

    assert_eq!(
        store.claim_purchase(&later, &claimant.sub).await?,
        Saved::Written,
        "the same user claiming again: idempotent"
    );
    assert_eq!(current(store, &claimant.sub).await?, bound, "linked once");

    assert_eq!(
        store.claim_purchase(&later, &other.sub).await?,
        Saved::Conflict,
        "another user claiming a claimed purchase"
    );
    assert_eq!(
        store.held_purchases(&mixed).await?,
        vec![normalized(&earlier), claimed.clone()]
    );
    assert_eq!(
        store.customer_owner(&later.customer).await?,
        Some(claimant.sub.clone())
    );
    assert_eq!(current(store, &other.sub).await?, other);

    // A hold whose customer is someone's sign-up customer cannot be claimed by another user.
    let taken = HeldPurchase {
        session: ids.session()?,
        customer: other.customer.clone(),
        held_at: 300,
        ..earlier.clone()
    };
    assert_eq!(store.hold_purchase(&taken).await?, Created::New);
    assert_eq!(
        store.claim_purchase(&taken, &claimant.sub).await?,
        Saved::Conflict,
        "a customer linked to another user"
    );
    assert_eq!(current(store, &claimant.sub).await?, bound);

    let nobody = ids.sub()?;
    assert_eq!(
        store.claim_purchase(&earlier, &nobody).await?,
        Saved::Conflict,
        "a claim by a user with no profile"
    );
    let never = HeldPurchase {
        session: ids.session()?,
        ..earlier.clone()
    };
    assert_eq!(
        store.claim_purchase(&never, &claimant.sub).await?,
        Saved::Conflict,
        "a claim of a purchase never held"
    );
    assert_eq!(store.customer_owner(&earlier.customer).await?, None);
    assert_eq!(
        store.held_purchases(&mixed).await?,
        vec![normalized(&earlier), claimed, normalized(&taken)]
    );
    Ok(())
}

async fn pack_contract<S: Accounts + Ledger>(store: &S, ids: &Ids) -> anyhow::Result<()> {
    let user = signed_up(store, ids, 0, 10).await?;
    let sub = &user.sub;
    let grant = PackGrant {
        session: ids.session()?,
        plan: plan("power")?,
        credits: Credits::new(100),
        payment_intent: Some(ids.payment()?),
        revoked: Credits::ZERO,
        removed: Credits::ZERO,
    };
    let pi = grant
        .payment_intent
        .clone()
        .context("the grant has a payment intent")?;
    assert_eq!(store.pack_grant(sub, &grant.session).await?, None);
    assert_eq!(store.pack_for_payment(sub, &pi).await?, None);

    assert_eq!(store.record_pack(sub, &grant).await?, Saved::Written);
    assert_eq!(held_balances(store, sub).await?, balances(0, 110));
    assert_eq!(
        store.record_pack(sub, &grant).await?,
        Saved::Conflict,
        "the same pack again"
    );
    assert_eq!(
        held_balances(store, sub).await?,
        balances(0, 110),
        "purchased added once"
    );
    assert_eq!(
        store.pack_grant(sub, &grant.session).await?,
        Some(grant.clone())
    );
    assert_eq!(store.pack_for_payment(sub, &pi).await?, Some(grant.clone()));
    assert_eq!(store.pack_for_payment(sub, &ids.payment()?).await?, None);
    let stranger = signed_up(store, ids, 0, 0).await?;
    assert_eq!(store.pack_grant(&stranger.sub, &grant.session).await?, None);
    assert_eq!(store.pack_for_payment(&stranger.sub, &pi).await?, None);
    assert!(
        store.grant_exists(sub, grant.session.as_str()).await?,
        "a pack is a grant in the ledger, under its session"
    );

    let refunded = PackGrant {
        revoked: Credits::new(30),
        removed: Credits::new(30),
        ..grant.clone()
    };
    assert_eq!(
        store.revoke_pack(sub, &grant, &refunded).await?,
        Saved::Written
    );
    assert_eq!(held_balances(store, sub).await?, balances(0, 80));
    assert_eq!(
        store.pack_grant(sub, &grant.session).await?,
        Some(refunded.clone())
    );
    assert_eq!(
        store.pack_for_payment(sub, &pi).await?,
        Some(refunded.clone())
    );

    // Conditioned on what was revoked before: a stale `before` changes nothing.
    let stale = PackGrant {
        revoked: Credits::new(50),
        removed: Credits::new(50),
        ..grant.clone()
    };
    assert_eq!(
        store.revoke_pack(sub, &grant, &stale).await?,
        Saved::Conflict
    );
    assert_eq!(held_balances(store, sub).await?, balances(0, 80));
    assert_eq!(
        store.pack_grant(sub, &grant.session).await?,
        Some(refunded.clone())
    );

    // Revoked more than was removed (credits already spent): `removed` says what was taken.
    let disputed = PackGrant {
        revoked: Credits::new(100),
        removed: Credits::new(60),
        ..grant.clone()
    };
    assert_eq!(
        store.revoke_pack(sub, &refunded, &disputed).await?,
        Saved::Written
    );
    assert_eq!(held_balances(store, sub).await?, balances(0, 50));
    assert_eq!(store.pack_grant(sub, &grant.session).await?, Some(disputed));

    // No such pack, no such user.
    let unknown = PackGrant {
        session: ids.session()?,
        ..grant.clone()
    };
    assert_eq!(
        store.revoke_pack(sub, &unknown, &refunded).await?,
        Saved::Conflict,
        "revoking a pack never recorded"
    );
    assert_eq!(held_balances(store, sub).await?, balances(0, 50));
    let nobody = ids.sub()?;
    assert_eq!(
        store.record_pack(&nobody, &unknown).await?,
        Saved::Conflict,
        "a pack for a user with no profile"
    );
    assert_eq!(store.pack_grant(&nobody, &unknown.session).await?, None);
    Ok(())
}
