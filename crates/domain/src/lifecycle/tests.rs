//! The pure rules: reconciling a subscription, the access policy, refunds.

use super::*;
use crate::facts::InvoiceFacts;
use crate::ids::{ChargeId, CheckoutSessionId, StripeCustomerId};
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

fn facts(status: SubStatus, plan: &str, invoice: Option<(&str, bool, i64)>) -> SubscriptionFacts {
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

#[test]
fn an_applied_outcome_reads_as_the_webhook_answers_and_logs_it() {
    let session = id(CheckoutSessionId::parse("cs_test_1"));
    let cases = [
        (
            Applied::Subscription {
                id: id(SubscriptionId::parse("sub_1")),
                status: SubStatus::Active,
                plan: id(PlanId::parse("basic")),
                access: Access::Active,
                grant: Some((Credits::new(1_000), "in_1:basic".into())),
            },
            "subscription sub_1 active: plan basic, access active, granted 1000 for in_1:basic",
        ),
        (
            Applied::Held {
                session: session.clone(),
            },
            "session cs_test_1 held for the owner of its email to claim",
        ),
        (
            Applied::Pack {
                session: session.clone(),
                credits: Credits::new(1_000),
            },
            "pack of 1000 credits for session cs_test_1 recorded",
        ),
        (
            Applied::PackRevoked {
                session: session.clone(),
                revoked: Credits::new(500),
                removed: 400,
            },
            "pack cs_test_1 revoked 500 credits (400 removed)",
        ),
        (
            Applied::PackAlreadyRevoked {
                session,
                revoked: Credits::new(500),
            },
            "pack cs_test_1 already revoked 500",
        ),
        (Applied::TrialEndNoted, "trial end noted for notification"),
    ];
    for (applied, words) in cases {
        assert_eq!(applied.to_string(), words);
    }
}
