//! What Stripe's billing state means for a user: the access policy table, and the pure
//! reconciliation of a profile with what Stripe says now.
//!
//! Order independence comes from refetching: a webhook event only says *which* object changed;
//! the handler reads the object from Stripe and reconciles the profile with that truth. Whatever
//! order events arrive in, and however often, the last reconciliation sees the same truth and
//! writes the same state. Grants are keyed (`<invoice>:<plan>`, the checkout session), so each
//! happens once.

use crate::catalogue::Catalogue;
use crate::facts::{ChargeFacts, SubStatus, SubscriptionFacts, SubscriptionState};
use crate::ids::{Credits, GrantSource, InvoiceId, PlanId, SubscriptionId};
use crate::ports::ManagerRun;
use crate::profile::{Access, Profile};
use crate::writes::{AllowanceWrite, GrantRecord, ProfileWrite};

/// Of one user's live subscriptions, the one kept: the best standing, then the newest, then
/// the greatest id, so every delivery (and every concurrent one) chooses the same.
pub fn keep_one(
    live: &[crate::ports::LiveSubscription],
) -> Option<&crate::ports::LiveSubscription> {
    live.iter().filter(|s| s.status.is_live()).max_by(|a, b| {
        (a.status.rank(), a.created, &a.id).cmp(&(b.status.rank(), b.created, &b.id))
    })
}

/// The live subscriptions a user must lose so that one bill remains: every billing one but
/// the kept one.
pub fn duplicates(live: &[crate::ports::LiveSubscription]) -> Vec<&crate::ports::LiveSubscription> {
    let Some(keep) = keep_one(live) else {
        return Vec::new();
    };
    live.iter()
        .filter(|s| s.id != keep.id && s.status.bills())
        .collect()
}

/// What lapsing (past due beyond the grace, or `unpaid`) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LapseMode {
    /// Back to the free plan; the API key keeps working on free credits.
    Downgrade,
    /// Cognito user disabled and API access switched off until the next paid invoice.
    Disable,
}

impl LapseMode {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "downgrade" => Some(Self::Downgrade),
            "disable" => Some(Self::Disable),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessPolicy {
    pub grace_seconds: i64,
    pub lapse: LapseMode,
}

impl Default for AccessPolicy {
    /// Seven days of grace, then downgrade.
    fn default() -> Self {
        Self {
            grace_seconds: 7 * 86_400,
            lapse: LapseMode::Downgrade,
        }
    }
}

/// Where a subscription stands, per the access policy table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// active, trialing: the plan's access.
    Paying,
    /// past_due within the grace: still the plan's access.
    Grace,
    /// past_due beyond the grace, unpaid, paused: what the lapse mode says.
    Lapsed,
    /// canceled, incomplete, incomplete_expired: the free plan.
    Ended,
}

/// The access policy table (DESIGN.md "Access policy").
pub fn standing(
    status: SubStatus,
    past_due_since: Option<i64>,
    now: i64,
    policy: &AccessPolicy,
) -> Standing {
    match status {
        SubStatus::Active | SubStatus::Trialing => Standing::Paying,
        SubStatus::PastDue => match past_due_since {
            Some(since) if now >= since.saturating_add(policy.grace_seconds) => Standing::Lapsed,
            _ => Standing::Grace,
        },
        SubStatus::Unpaid | SubStatus::Paused => Standing::Lapsed,
        SubStatus::Canceled | SubStatus::Incomplete | SubStatus::IncompleteExpired => {
            Standing::Ended
        }
    }
}

/// The plan and access a standing gives.
pub fn entitlement(
    standing: Standing,
    plan: &PlanId,
    free: &PlanId,
    policy: &AccessPolicy,
) -> (PlanId, Access) {
    match (standing, policy.lapse) {
        (Standing::Paying | Standing::Grace, _) => (plan.clone(), Access::Active),
        (Standing::Lapsed, LapseMode::Disable) => (plan.clone(), Access::Disabled),
        (Standing::Lapsed, LapseMode::Downgrade) | (Standing::Ended, _) => {
            (free.clone(), Access::Active)
        }
    }
}

/// What reconciling a subscription decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionOutcome {
    /// The subscription is not one the profile follows (an older one, or not our price).
    NotFollowed(&'static str),
    Write(Box<ProfileWrite>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error("subscription {0}'s price has lookup key {1:?}, which is no plan in plans.json")]
    UnknownPlan(SubscriptionId, Option<String>),
}

/// The grant key of an invoice for a plan: an upgrade within a period is a second grant for
/// the same invoice, and each (invoice, plan) grants at most once.
pub fn invoice_grant_source(invoice: &InvoiceId, plan: &PlanId) -> String {
    GrantSource {
        invoice: invoice.clone(),
        plan: plan.clone(),
    }
    .to_string()
}

/// Whether the profile should follow `facts` rather than the subscription it follows now.
fn follows(profile: &Profile, facts: &SubscriptionFacts) -> bool {
    match &profile.subscription {
        None => true,
        Some(_) if facts.chosen => true,
        Some(current) if current.id == facts.id => true,
        // A newer live subscription takes over; an old one ending changes nothing.
        Some(current) => {
            facts.status.is_live()
                && (!current.status.is_live() || facts.created >= current.created)
        }
    }
}

/// The grant (if any) the latest invoice implies for `plan`: only a paid invoice of a paying
/// (or grace) subscription grants. Returns the source key.
pub fn candidate_grant(facts: &SubscriptionFacts, plan: &PlanId) -> Option<String> {
    facts
        .latest_invoice
        .as_ref()
        .filter(|i| i.paid)
        .map(|i| invoice_grant_source(&i.id, plan))
}

/// Reconciles `profile` with a subscription as Stripe has it now. `granted` says whether the
/// candidate grant's ledger entry already exists. `now` is Stripe's clock
/// (`max(event.created, profile.stripe_clock)`).
pub fn reconcile_subscription(
    profile: &Profile,
    facts: &SubscriptionFacts,
    granted: bool,
    catalogue: &Catalogue,
    policy: &AccessPolicy,
    now: i64,
) -> Result<SubscriptionOutcome, LifecycleError> {
    let plan = facts
        .lookup_key
        .as_deref()
        .and_then(|key| crate::catalogue::parse_lookup_key(catalogue, key))
        .filter(|(plan, mode)| *mode == crate::catalogue::SaleMode::Subscription && !plan.is_free())
        .map(|(plan, _)| plan)
        .ok_or_else(|| LifecycleError::UnknownPlan(facts.id.clone(), facts.lookup_key.clone()))?;
    if !follows(profile, facts) {
        return Ok(SubscriptionOutcome::NotFollowed(
            "the profile follows a newer live subscription",
        ));
    }
    let past_due_since = (facts.status == SubStatus::PastDue)
        .then(|| {
            facts
                .latest_invoice
                .as_ref()
                .filter(|i| !i.paid)
                .map(|i| i.created)
        })
        .flatten();
    let free = catalogue.free_plan();
    let now = now.max(profile.stripe_clock);
    let standing = standing(facts.status, past_due_since, now, policy);
    let (new_plan, access) = entitlement(standing, plan.id(), free.id(), policy);

    let mut after = profile.clone();
    after.plan = new_plan.clone();
    after.access = access;
    after.stripe_clock = now;
    after.subscription = Some(SubscriptionState {
        id: facts.id.clone(),
        status: facts.status,
        plan: plan.id().clone(),
        price: facts.price.clone(),
        created: facts.created,
        current_period_end: facts.current_period_end,
        cancel_at_period_end: facts.cancel_at_period_end,
        past_due_since,
    });
    let was_free = &profile.plan == free.id();
    let is_free = &new_plan == free.id();
    let generation_bumped = was_free != is_free;
    if generation_bumped {
        after.manager_generation += 1;
    }

    // Credits: the latest paid invoice resets the allowance once per (invoice, plan).
    let mut allowance = AllowanceWrite::Keep;
    let mut grant = None;
    if !is_free
        && access == Access::Active
        && let Some(source) = candidate_grant(facts, plan.id())
        && profile.allowance_source.as_deref() != Some(source.as_str())
        && !granted
    {
        let previous = profile
            .allowance_source
            .as_deref()
            .and_then(GrantSource::parse);
        let same_invoice = previous.as_ref().map(|p| &p.invoice)
            == GrantSource::parse(&source).as_ref().map(|s| &s.invoice)
            && previous.is_some();
        let previous_credits = previous
            .as_ref()
            .and_then(|p| catalogue.get(&p.plan).map(|p| p.credits()));
        allowance = match previous_credits {
            // A downgrade within the period keeps no more than the new plan's credits.
            Some(prev) if same_invoice && plan.credits() < prev => AllowanceWrite::Cap {
                to: plan.credits().min(profile.allowance),
                seen: profile.allowance,
            },
            _ => AllowanceWrite::Reset(plan.credits()),
        };
        after.allowance_source = Some(source.clone());
        grant = Some(GrantRecord {
            source,
            credits: plan.credits(),
            cause: "invoice",
        });
    }
    Ok(SubscriptionOutcome::Write(Box::new(ProfileWrite {
        before: profile.clone(),
        after,
        allowance,
        generation_bumped,
        grant,
    })))
}

/// The free credit manager a profile needs, if it is on the free plan.
pub fn free_manager(
    profile: &Profile,
    catalogue: &Catalogue,
    period_override_seconds: Option<u64>,
) -> Option<ManagerRun> {
    let free = catalogue.free_plan();
    (&profile.plan == free.id()).then(|| {
        let mut run = ManagerRun::for_plan(
            profile.sub.clone(),
            profile.manager_generation,
            free.id().clone(),
            free.credits(),
            free.period(),
        );
        if let Some(seconds) = period_override_seconds {
            run.period_seconds = seconds;
        }
        run
    })
}

/// How many of a pack's `credits` a charge's refunds and disputes take back: all of them for a
/// dispute, else the refunded share, rounded up so a refund never leaves a credit unpaid for.
pub fn revoked_share(credits: Credits, charge: Option<&ChargeFacts>) -> Credits {
    let Some(charge) = charge else {
        return Credits::ZERO;
    };
    if charge.disputed || (charge.amount > 0 && charge.amount_refunded >= charge.amount) {
        return credits;
    }
    if charge.amount == 0 || charge.amount_refunded == 0 {
        return Credits::ZERO;
    }
    let share = (u128::from(credits.get()) * u128::from(charge.amount_refunded))
        .div_ceil(u128::from(charge.amount));
    Credits::new(u64::try_from(share).unwrap_or(u64::MAX).min(credits.get()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::InvoiceFacts;
    use crate::ids::{ChargeId, StripeCustomerId};
    use crate::ids::{Email, UserSub};

    fn catalogue() -> Catalogue {
        Catalogue::bundled().unwrap_or_else(|e| panic!("{e}"))
    }

    fn id<T, E: std::fmt::Debug>(r: Result<T, E>) -> T {
        r.unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn profile() -> Profile {
        Profile::new_signup(
            id(UserSub::parse("u-1")),
            id(Email::parse("a@example.com")),
            id(StripeCustomerId::parse("cus_1")),
            id(PlanId::parse("free")),
            "2026-01-01T00:00:00Z".into(),
        )
    }

    fn facts(
        status: SubStatus,
        plan: &str,
        invoice: Option<(&str, bool, i64)>,
    ) -> SubscriptionFacts {
        SubscriptionFacts {
            id: id(SubscriptionId::parse("sub_1")),
            customer: id(StripeCustomerId::parse("cus_1")),
            status,
            lookup_key: Some(format!("creditgate_{plan}_subscription")),
            price: format!("price_{plan}"),
            created: 100,
            current_period_end: 2_000_000,
            cancel_at_period_end: false,
            latest_invoice: invoice.map(|(invoice, paid, created)| InvoiceFacts {
                id: id(InvoiceId::parse(invoice)),
                paid,
                created,
            }),
            chosen: false,
        }
    }

    fn write(outcome: Result<SubscriptionOutcome, LifecycleError>) -> ProfileWrite {
        match outcome {
            Ok(SubscriptionOutcome::Write(w)) => *w,
            other => panic!("expected a write, got {other:?}"),
        }
    }

    fn applied(w: &ProfileWrite) -> Profile {
        let mut p = w.after.clone();
        match w.allowance {
            AllowanceWrite::Keep => {}
            AllowanceWrite::Reset(c) => p.allowance = c,
            AllowanceWrite::Cap { to, .. } => p.allowance = to,
        }
        p
    }

    #[test]
    fn the_policy_table_maps_every_status() {
        let p = AccessPolicy::default();
        assert_eq!(standing(SubStatus::Active, None, 0, &p), Standing::Paying);
        assert_eq!(standing(SubStatus::Trialing, None, 0, &p), Standing::Paying);
        assert_eq!(
            standing(SubStatus::PastDue, Some(0), 3600, &p),
            Standing::Grace
        );
        assert_eq!(
            standing(SubStatus::PastDue, Some(0), 7 * 86_400, &p),
            Standing::Lapsed
        );
        assert_eq!(standing(SubStatus::Unpaid, None, 0, &p), Standing::Lapsed);
        assert_eq!(standing(SubStatus::Canceled, None, 0, &p), Standing::Ended);
        assert_eq!(
            standing(SubStatus::IncompleteExpired, None, 0, &p),
            Standing::Ended
        );
        let free = id(PlanId::parse("free"));
        let basic = id(PlanId::parse("basic"));
        assert_eq!(
            entitlement(Standing::Lapsed, &basic, &free, &p),
            (free.clone(), Access::Active)
        );
        let disable = AccessPolicy {
            lapse: LapseMode::Disable,
            ..p
        };
        assert_eq!(
            entitlement(Standing::Lapsed, &basic, &free, &disable),
            (basic.clone(), Access::Disabled)
        );
        assert_eq!(
            entitlement(Standing::Ended, &basic, &free, &disable),
            (free, Access::Active)
        );
    }

    #[test]
    fn a_paid_subscription_moves_the_user_to_its_plan_and_resets_the_allowance() {
        let c = catalogue();
        let w = write(reconcile_subscription(
            &profile(),
            &facts(SubStatus::Active, "basic", Some(("in_1", true, 100))),
            false,
            &c,
            &AccessPolicy::default(),
            200,
        ));
        let p = applied(&w);
        assert_eq!(p.plan.as_str(), "basic");
        assert_eq!(p.allowance.get(), 1_000);
        assert!(w.generation_bumped, "the free manager must stop");
        assert_eq!(p.manager_generation, 2);
        assert_eq!(w.grant.map(|g| g.source), Some("in_1:basic".to_owned()));
    }

    #[test]
    fn an_invoice_already_granted_grants_nothing() {
        let c = catalogue();
        let first = applied(&write(reconcile_subscription(
            &profile(),
            &facts(SubStatus::Active, "basic", Some(("in_1", true, 100))),
            false,
            &c,
            &AccessPolicy::default(),
            200,
        )));
        let again = write(reconcile_subscription(
            &first,
            &facts(SubStatus::Active, "basic", Some(("in_1", true, 100))),
            false,
            &c,
            &AccessPolicy::default(),
            300,
        ));
        assert_eq!(again.allowance, AllowanceWrite::Keep);
        assert_eq!(again.grant, None);
        assert!(!again.generation_bumped);
    }

    #[test]
    fn an_upgrade_within_a_period_resets_and_a_downgrade_caps() {
        let c = catalogue();
        let policy = AccessPolicy::default();
        let mut basic = applied(&write(reconcile_subscription(
            &profile(),
            &facts(SubStatus::Active, "basic", Some(("in_1", true, 100))),
            false,
            &c,
            &policy,
            200,
        )));
        basic.allowance = Credits::new(400);
        let power = applied(&write(reconcile_subscription(
            &basic,
            &facts(SubStatus::Active, "power", Some(("in_1", true, 100))),
            false,
            &c,
            &policy,
            300,
        )));
        assert_eq!(power.allowance.get(), 100_000);
        let back = write(reconcile_subscription(
            &power,
            &facts(SubStatus::Active, "basic", Some(("in_1", true, 100))),
            true,
            &c,
            &policy,
            400,
        ));
        assert_eq!(
            back.allowance,
            AllowanceWrite::Keep,
            "basic was granted for in_1"
        );
        let mut spent = power.clone();
        spent.allowance = Credits::new(99_990);
        let fresh_down = write(reconcile_subscription(
            &spent,
            &facts(SubStatus::Active, "basic", Some(("in_1", true, 100))),
            false,
            &c,
            &policy,
            400,
        ));
        assert_eq!(
            fresh_down.allowance,
            AllowanceWrite::Cap {
                to: Credits::new(1_000),
                seen: Credits::new(99_990)
            }
        );
    }

    #[test]
    fn past_due_keeps_access_for_the_grace_then_downgrades() {
        let c = catalogue();
        let policy = AccessPolicy::default();
        let paid = applied(&write(reconcile_subscription(
            &profile(),
            &facts(SubStatus::Active, "basic", Some(("in_1", true, 100))),
            false,
            &c,
            &policy,
            200,
        )));
        let failing = facts(SubStatus::PastDue, "basic", Some(("in_2", false, 1_000)));
        let grace = applied(&write(reconcile_subscription(
            &paid, &failing, false, &c, &policy, 2_000,
        )));
        assert_eq!(grace.plan.as_str(), "basic");
        assert_eq!(
            grace.allowance.get(),
            1_000,
            "no new grant for an unpaid invoice"
        );
        let lapsed = write(reconcile_subscription(
            &grace,
            &failing,
            false,
            &c,
            &policy,
            1_000 + 7 * 86_400,
        ));
        assert_eq!(lapsed.after.plan.as_str(), "free");
        assert!(lapsed.generation_bumped);
        let disable = AccessPolicy {
            lapse: LapseMode::Disable,
            ..policy
        };
        let disabled = write(reconcile_subscription(
            &grace,
            &failing,
            false,
            &c,
            &disable,
            1_000 + 7 * 86_400,
        ));
        assert_eq!(disabled.after.access, Access::Disabled);
        assert_eq!(disabled.after.plan.as_str(), "basic");
    }

    #[test]
    fn an_old_subscription_ending_does_not_touch_the_newer_one() {
        let c = catalogue();
        let policy = AccessPolicy::default();
        let mut newer = facts(SubStatus::Active, "power", Some(("in_9", true, 500)));
        newer.id = id(SubscriptionId::parse("sub_2"));
        newer.created = 500;
        let p = applied(&write(reconcile_subscription(
            &profile(),
            &newer,
            false,
            &c,
            &policy,
            600,
        )));
        let old = facts(SubStatus::Canceled, "basic", Some(("in_1", true, 100)));
        assert!(matches!(
            reconcile_subscription(&p, &old, false, &c, &policy, 700),
            Ok(SubscriptionOutcome::NotFollowed(_))
        ));
    }

    #[test]
    fn a_price_that_is_no_plan_is_an_error_naming_it() {
        let c = catalogue();
        let mut f = facts(SubStatus::Active, "basic", None);
        f.lookup_key = Some("someone_else".into());
        let err = reconcile_subscription(&profile(), &f, false, &c, &AccessPolicy::default(), 0)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("someone_else"), "{err}");
    }

    #[test]
    fn refunds_revoke_their_share_rounded_up_and_disputes_everything() {
        let charge = |refunded, disputed| ChargeFacts {
            id: id(ChargeId::parse("ch_1")),
            customer: None,
            payment_intent: None,
            amount: 500,
            amount_refunded: refunded,
            disputed,
        };
        let credits = Credits::new(1_000);
        assert_eq!(revoked_share(credits, None), Credits::ZERO);
        assert_eq!(
            revoked_share(credits, Some(&charge(0, false))),
            Credits::ZERO
        );
        assert_eq!(revoked_share(credits, Some(&charge(250, false))).get(), 500);
        assert_eq!(revoked_share(credits, Some(&charge(1, false))).get(), 2);
        assert_eq!(revoked_share(credits, Some(&charge(500, false))), credits);
        assert_eq!(revoked_share(credits, Some(&charge(0, true))), credits);
    }
}
