//! Credit arithmetic at the u64 limits, one property run against the in-memory fakes and
//! against DynamoDB (moto): balances near u64::MAX and i64::MAX, costs of 0, 1 and huge, pack
//! grants that would overflow. Spends (`domain::metering::meter` over the `Meter` port) never
//! wrap and never go below zero, and a refused spend changes nothing; a pack grant
//! (`Ledger::record_pack`) is capped at u64::MAX, as the domain's saturating sums intend
//! (quantity × credits, `Balances::total`), so the profile stays readable; a revocation never
//! takes more than is there. The fakes run 256 cases, moto 32 (`PROPTEST_CASES` sets both).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use adapters::dynamo::DynamoStore;
use adapters::fakes::{InMemoryAccounts, InMemoryMeter};
use adapters::items::api_key_pk;
use anyhow::{Context, bail, ensure};
use aws_sdk_dynamodb::types::AttributeValue;
use domain::ids::{ApiKeyHash, Credits, Email, PlanId, StripeCustomerId, UserSub};
use domain::metering::{KeyCache, Meter, MeterError, meter};
use domain::ports::{Accounts, Ledger, Saved};
use domain::profile::Profile;
use domain::writes::PackGrant;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use tests::Stack;

/// A u64 where arithmetic breaks: 0, 1, around i64::MAX and u64::MAX, and anything.
fn edge() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0),
        Just(1),
        0u64..1_000,
        (0u64..1_000).prop_map(|d| MAX - d),
        (0u64..1_000).prop_map(|d| I64_MAX - d),
        (0u64..1_000).prop_map(|d| I64_MAX + d),
        any::<u64>(),
    ]
}

#[derive(Debug, Clone)]
struct SpendCase {
    allowance: u64,
    purchased: u64,
    cost: u64,
}

/// A cost anywhere, or right at the boundaries the store decides on: the allowance, one more,
/// the whole balance, one more than that.
fn spend_case() -> impl Strategy<Value = SpendCase> {
    (edge(), edge(), edge(), 0u8..5).prop_map(|(allowance, purchased, any, pick)| {
        let whole = allowance.saturating_add(purchased);
        let cost = match pick {
            0 => any,
            1 => allowance,
            2 => allowance.saturating_add(1),
            3 => whole,
            _ => whole.saturating_add(1),
        };
        SpendCase {
            allowance,
            purchased,
            cost,
        }
    })
}

#[derive(Debug, Clone)]
struct GrantCase {
    purchased: u64,
    credits: u64,
    /// Already taken back when the grant is recorded (a refund that came first).
    removed: u64,
    /// Taken back afterwards.
    take: u64,
}

fn grant_case() -> impl Strategy<Value = GrantCase> {
    (edge(), edge(), edge(), edge(), 0u8..3, 0u8..3).prop_map(
        |(purchased, credits, r, t, pick_r, pick_t)| {
            let within = |n: u64, max: u64, pick: u8| match pick {
                0 => 0,
                1 => max,
                _ => n.checked_rem(max.saturating_add(1)).unwrap_or(n),
            };
            let removed = within(r, credits, pick_r);
            let take = within(t, credits - removed, pick_t);
            GrantCase {
                purchased,
                credits,
                removed,
                take,
            }
        },
    )
}

/// What the property needs of a store beyond its ports: a user with these balances, an
/// active profile holding `key`, and the balances read back (through the profile, so an item
/// that no longer decodes fails the case).
trait CreditStore {
    fn put(
        &self,
        sub: &UserSub,
        key: &str,
        allowance: u64,
        purchased: u64,
    ) -> impl Future<Output = anyhow::Result<()>>;
    fn balances(&self, sub: &UserSub) -> impl Future<Output = anyhow::Result<(u64, u64)>>;
}

static USERS: AtomicU64 = AtomicU64::new(0);

/// A sub never used before in this process (DynamoDB's table outlives the cases).
fn fresh() -> anyhow::Result<(UserSub, String)> {
    let n = USERS.fetch_add(1, Ordering::SeqCst);
    let sub = UserSub::parse(&format!("limits-{}-{n}", std::process::id()))?;
    Ok((sub, format!("cgk_limits_{n}")))
}

fn profile(sub: &UserSub, key: &str, allowance: u64, purchased: u64) -> anyhow::Result<Profile> {
    let n = sub.as_str().rsplit('-').next().unwrap_or("0");
    let mut profile = Profile::new_signup(
        sub.clone(),
        Email::parse(&format!("{}@example.com", sub.as_str()))?,
        StripeCustomerId::parse(&format!("cus_limits{}x{n}", std::process::id()))?,
        PlanId::parse("free")?,
        "2026-01-01T00:00:00Z".into(),
    );
    profile.allowance = Credits::new(allowance);
    profile.purchased = Credits::new(purchased);
    profile.api_key = Some((ApiKeyHash::of(key), key.chars().take(12).collect()));
    Ok(profile)
}

async fn spend_holds<M: Meter, S: CreditStore>(
    meter_port: &M,
    store: &S,
    case: SpendCase,
) -> anyhow::Result<()> {
    let SpendCase {
        allowance: a,
        purchased: p,
        cost: c,
    } = case;
    let (sub, key) = fresh()?;
    store.put(&sub, &key, a, p).await?;
    let result = meter(meter_port, &KeyCache::new(4), &key, Credits::new(c)).await;
    let after = store.balances(&sub).await?;
    let whole = u128::from(a) + u128::from(p);
    if u128::from(c) <= whole {
        let expected = if c <= a { (a - c, p) } else { (0, p - (c - a)) };
        let spent = match result {
            Ok((_, b)) => (b.allowance.get(), b.purchased.get()),
            Err(e) => bail!("a covered spend was refused: {e}"),
        };
        ensure!(
            spent == expected,
            "answered {spent:?}, expected {expected:?}"
        );
        ensure!(after == expected, "stored {after:?}, expected {expected:?}");
    } else {
        match result {
            Err(MeterError::NoCredits { remaining, needed }) => ensure!(
                (remaining.get(), needed.get()) == (a.saturating_add(p), c),
                "refusal said {remaining} left, {needed} needed"
            ),
            other => bail!("a spend beyond the balance was not refused: {other:?}"),
        }
        ensure!(
            after == (a, p),
            "a refused spend changed {:?} to {after:?}",
            (a, p)
        );
    }
    Ok(())
}

async fn grant_holds<L: Ledger, S: CreditStore>(
    ledger: &L,
    store: &S,
    case: GrantCase,
) -> anyhow::Result<()> {
    let GrantCase {
        purchased: p,
        credits,
        removed,
        take,
    } = case;
    let (sub, key) = fresh()?;
    store.put(&sub, &key, 0, p).await?;
    let grant = PackGrant {
        session: domain::ids::CheckoutSessionId::parse(&format!(
            "cs_limits_{}",
            sub.as_str().replace('-', "_")
        ))?,
        plan: PlanId::parse("power")?,
        credits: Credits::new(credits),
        payment_intent: Some(domain::ids::PaymentIntentId::parse(&format!(
            "pi_limits_{}",
            sub.as_str().replace('-', "_")
        ))?),
        revoked: Credits::new(removed),
        removed: Credits::new(removed),
    };
    ensure!(ledger.record_pack(&sub, &grant).await? == Saved::Written);
    let granted = p.saturating_add(credits - removed);
    let after = store.balances(&sub).await?;
    ensure!(
        after == (0, granted),
        "a grant of {} to {p} left {after:?}, expected {granted} (capped at u64::MAX)",
        credits - removed
    );
    ensure!(
        ledger.record_pack(&sub, &grant).await? == Saved::Conflict,
        "the same pack recorded twice"
    );
    ensure!(
        store.balances(&sub).await? == (0, granted),
        "a second record changed the balance"
    );

    let revoked = PackGrant {
        revoked: Credits::new(removed + take),
        removed: Credits::new(removed + take),
        ..grant.clone()
    };
    let saved = ledger.revoke_pack(&sub, &grant, &revoked).await?;
    let after = store.balances(&sub).await?;
    if take <= granted {
        ensure!(saved == Saved::Written, "a covered revocation was refused");
        ensure!(
            after == (0, granted - take),
            "revoking {take} of {granted} left {after:?}"
        );
    } else {
        ensure!(
            saved == Saved::Conflict,
            "a revocation below zero was written"
        );
        ensure!(
            after == (0, granted),
            "a refused revocation changed {granted} to {after:?}"
        );
    }
    Ok(())
}

const MAX: u64 = u64::MAX;
const I64_MAX: u64 = i64::MAX as u64;

/// Run on every store before the random cases, so the limits are always visited.
fn fixed_spends() -> Vec<SpendCase> {
    let case = |allowance, purchased, cost| SpendCase {
        allowance,
        purchased,
        cost,
    };
    vec![
        case(0, 0, 0),
        case(0, 0, 1),
        case(MAX, MAX, MAX),
        case(MAX, 0, MAX),
        case(0, MAX, MAX),
        case(MAX - 1, 1, MAX),
        case(MAX - 1, 0, MAX),
        case(1, MAX, MAX),
        case(I64_MAX, I64_MAX + 1, MAX),
        case(I64_MAX, I64_MAX, MAX),
        case(I64_MAX, 0, I64_MAX + 1),
    ]
}

fn fixed_grants() -> Vec<GrantCase> {
    let case = |purchased, credits, removed, take| GrantCase {
        purchased,
        credits,
        removed,
        take,
    };
    vec![
        case(MAX, 1, 0, 0),
        case(459, MAX, 0, 1),
        case(MAX, MAX, 0, MAX),
        case(MAX, MAX, MAX, 0),
        case(I64_MAX + 1, I64_MAX + 1, 0, 0),
        case(I64_MAX, I64_MAX + 1, 1, I64_MAX),
        case(0, MAX, 0, MAX),
        case(0, 5, 0, 5),
    ]
}

/// Runs `check` on the `fixed` cases, then on `cases` cases of `strategy`; a failure reports
/// the smallest failing case.
fn property<S, F, Fut>(
    rt: &tokio::runtime::Runtime,
    fixed: Vec<S::Value>,
    cases: u32,
    strategy: S,
    check: F,
) -> anyhow::Result<()>
where
    S: Strategy,
    S::Value: std::fmt::Debug + Clone,
    F: Fn(S::Value) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    for case in fixed {
        rt.block_on(check(case.clone()))
            .with_context(|| format!("fixed case {case:?}"))?;
    }
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(cases);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&strategy, |case| {
            rt.block_on(check(case))
                .map_err(|e| TestCaseError::fail(format!("{e:#}")))
        })
        .map_err(|e| anyhow::anyhow!("{e}"))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

impl CreditStore for InMemoryMeter {
    async fn put(
        &self,
        sub: &UserSub,
        key: &str,
        allowance: u64,
        purchased: u64,
    ) -> anyhow::Result<()> {
        self.add_user(sub.as_str(), key, allowance, purchased);
        Ok(())
    }

    async fn balances(&self, sub: &UserSub) -> anyhow::Result<(u64, u64)> {
        InMemoryMeter::balances(self, sub.as_str()).context("no such user")
    }
}

impl CreditStore for InMemoryAccounts {
    async fn put(
        &self,
        sub: &UserSub,
        key: &str,
        allowance: u64,
        purchased: u64,
    ) -> anyhow::Result<()> {
        self.create_profile(&profile(sub, key, allowance, purchased)?)
            .await?;
        Ok(())
    }

    async fn balances(&self, sub: &UserSub) -> anyhow::Result<(u64, u64)> {
        let p = self.profile(sub).await?.context("no profile")?;
        Ok((p.allowance.get(), p.purchased.get()))
    }
}

#[test]
fn the_in_memory_fakes_keep_credits_exact_at_the_u64_limits() -> anyhow::Result<()> {
    let rt = runtime()?;
    let meter_fake = InMemoryMeter::default();
    property(&rt, fixed_spends(), 256, spend_case(), |case| {
        spend_holds(&meter_fake, &meter_fake, case)
    })?;
    let ledger_fake = InMemoryAccounts::default();
    property(&rt, fixed_grants(), 256, grant_case(), |case| {
        grant_holds(&ledger_fake, &ledger_fake, case)
    })
}

/// The profile and API key items as the functions write them, on moto's DynamoDB.
struct Dynamo {
    store: DynamoStore,
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl CreditStore for Dynamo {
    async fn put(
        &self,
        sub: &UserSub,
        key: &str,
        allowance: u64,
        purchased: u64,
    ) -> anyhow::Result<()> {
        self.store
            .create_profile(&profile(sub, key, allowance, purchased)?)
            .await?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(api_key_pk(&ApiKeyHash::of(key))))
            .item("sk", AttributeValue::S("USER".into()))
            .item("sub", AttributeValue::S(sub.to_string()))
            .send()
            .await?;
        Ok(())
    }

    async fn balances(&self, sub: &UserSub) -> anyhow::Result<(u64, u64)> {
        let p = self
            .store
            .profile(sub)
            .await
            .map_err(|e| anyhow::anyhow!(domain::ports::error_chain(&e)))?
            .context("no profile")?;
        Ok((p.allowance.get(), p.purchased.get()))
    }
}

#[test]
fn dynamodb_keeps_credits_exact_at_the_u64_limits() -> anyhow::Result<()> {
    let rt = runtime()?;
    let stack = rt.block_on(Stack::start("limits", 3600))?;
    let table = stack.var("TABLE_NAME")?;
    let dynamo = Dynamo {
        store: DynamoStore::new(stack.dynamodb.clone(), table.clone()),
        client: stack.dynamodb.clone(),
        table,
    };
    property(&rt, fixed_spends(), 32, spend_case(), |case| {
        spend_holds(&dynamo.store, &dynamo, case)
    })?;
    property(&rt, fixed_grants(), 32, grant_case(), |case| {
        grant_holds(&dynamo.store, &dynamo, case)
    })
}
