//! Trust boundaries (issue 10), played as an attacker with only what a buyer has: a Checkout
//! Session with no customer (what a Payment Link makes), completed with any email and any
//! `client_reference_id`. Only what creditgate wrote with its secret key (the customer sign-up
//! created, the sessions create-session makes for it) may bind a payment to a user.
//!
//! The seeded property: outsiders never change anyone who did not pay.

mod support;

use domain::account::cancel;
use domain::catalogue::SaleMode;
use domain::ids::UserSub;
use domain::lifecycle::{AccessPolicy, LapseMode};
use serde_json::Value;
use support::trust::*;
use support::*;

/// Seeded property: random purchases, plan changes, cancellations and card failures by
/// signed-up users, interleaved with outside buyers' Payment Link purchases (some typing a user's
/// email, in any case, or a user's sub as the reference) and their card failures. Every user
/// ends exactly where the same script without the outsiders ends: an outsider never changes the
/// plan, credits, access or Cognito state of anyone who did not pay. `TRUST_SEED=<n>` replays one.
mod property {
    use super::*;
    use rand::rngs::StdRng;
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};

    const SEEDS: u64 = 8;
    const STEPS: usize = 12;
    const USERS: usize = 3;
    const OUTSIDERS: usize = 2;
    const PLANS: [&str; 2] = ["basic", "power"];

    #[derive(Debug, Clone, Copy)]
    enum Mail {
        Own,
        Victim(usize),
        VictimShouted(usize),
    }

    #[derive(Debug, Clone, Copy)]
    enum Reference {
        None,
        Victim(usize),
        Garbage,
    }

    #[derive(Debug, Clone, Copy)]
    enum Act {
        Own {
            user: usize,
            plan: &'static str,
            pack: bool,
        },
        Cancel {
            user: usize,
            now: bool,
        },
        Card {
            user: usize,
            failing: bool,
        },
        Link {
            buyer: usize,
            plan: &'static str,
            pack: bool,
            mail: Mail,
            reference: Reference,
        },
        OutsiderCard {
            buyer: usize,
            failing: bool,
        },
        Advance {
            days: i64,
        },
    }

    impl Act {
        fn by_outsider(self) -> bool {
            matches!(self, Act::Link { .. } | Act::OutsiderCard { .. })
        }
    }

    fn script(rng: &mut StdRng) -> Vec<Act> {
        (0..STEPS)
            .map(|_| match rng.random_range(0..10) {
                0 | 1 => Act::Own {
                    user: rng.random_range(0..USERS),
                    plan: PLANS[rng.random_range(0..2)],
                    pack: rng.random_bool(0.3),
                },
                2 => Act::Cancel {
                    user: rng.random_range(0..USERS),
                    now: rng.random_bool(0.5),
                },
                3 => Act::Card {
                    user: rng.random_range(0..USERS),
                    failing: rng.random_bool(0.6),
                },
                4..=6 => Act::Link {
                    buyer: rng.random_range(0..OUTSIDERS),
                    plan: PLANS[rng.random_range(0..2)],
                    pack: rng.random_bool(0.4),
                    mail: match rng.random_range(0..3) {
                        0 => Mail::Own,
                        1 => Mail::Victim(rng.random_range(0..USERS)),
                        _ => Mail::VictimShouted(rng.random_range(0..USERS)),
                    },
                    reference: match rng.random_range(0..3) {
                        0 => Reference::None,
                        1 => Reference::Victim(rng.random_range(0..USERS)),
                        _ => Reference::Garbage,
                    },
                },
                7 => Act::OutsiderCard {
                    buyer: rng.random_range(0..OUTSIDERS),
                    failing: rng.random_bool(0.7),
                },
                _ => Act::Advance {
                    days: [3, 16, 31][rng.random_range(0..3)],
                },
            })
            .collect()
    }

    fn user(i: usize) -> String {
        format!("user-{i}")
    }

    fn email(i: usize) -> String {
        format!("user{i}@example.com")
    }

    /// Delivers the new events shuffled, some twice; 409/500 are delivered again later.
    async fn deliver_shuffled(
        deps: &TestDeps,
        stripe: &Stripe,
        seen: &mut usize,
        rng: &mut StdRng,
    ) -> anyhow::Result<()> {
        let events = stripe.events().await?;
        let mut order: Vec<&String> = events[(*seen).min(events.len())..]
            .iter()
            .flat_map(|e| std::iter::repeat_n(e, rng.random_range(1..=2)))
            .collect();
        *seen = events.len();
        order.shuffle(rng);
        deliver_order(deps, order).await
    }

    /// Plays the script (without the outsiders' acts when `outsiders` is false); returns what
    /// each signed-up user has.
    async fn play(seed: u64, acts: &[Act], outsiders: bool) -> anyhow::Result<Vec<Value>> {
        let stripe = Stripe::start().await?;
        let policy = AccessPolicy {
            lapse: if seed.is_multiple_of(2) {
                LapseMode::Downgrade
            } else {
                LapseMode::Disable
            },
            ..AccessPolicy::default()
        };
        let deps = deps(&stripe, policy)?;
        let mut customers = Vec::new();
        for i in 0..USERS {
            let customer = stripe.customer(&email(i)).await?;
            sign_up(&deps, &user(i), &email(i), &customer).await?;
            customers.push(customer);
        }
        let mut outsider_customers: Vec<Vec<String>> = vec![Vec::new(); OUTSIDERS];
        let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(7_919));
        let mut seen = 0;
        for act in acts {
            if act.by_outsider() && !outsiders {
                continue;
            }
            match *act {
                Act::Own {
                    user: u,
                    plan,
                    pack,
                } => {
                    let mode = if pack {
                        SaleMode::Pack
                    } else {
                        SaleMode::Subscription
                    };
                    // A refusal (already on the plan) is the user's answer, the same in both runs.
                    let _ = own_purchase(&stripe, &deps, &user(u), plan, mode).await;
                }
                Act::Cancel { user: u, now } => {
                    let _ = cancel(
                        &deps.lifecycle,
                        &deps.lifecycle.stripe,
                        &UserSub::parse(&user(u))?,
                        !now,
                        adapters::unix_now(),
                    )
                    .await;
                }
                Act::Card { user: u, failing } => {
                    stripe
                        .call(
                            "POST",
                            &format!("/_emulator/customers/{}/payment_method", customers[u]),
                            &format!("failing={failing}"),
                        )
                        .await?;
                }
                Act::Link {
                    buyer,
                    plan,
                    pack,
                    mail,
                    reference,
                } => {
                    let typed = match mail {
                        Mail::Own => format!("outsider{buyer}@example.com"),
                        Mail::Victim(v) => email(v),
                        Mail::VictimShouted(v) => email(v).to_uppercase(),
                    };
                    let reference = match reference {
                        Reference::None => None,
                        Reference::Victim(v) => Some(user(v)),
                        Reference::Garbage => Some("<script>".to_owned()),
                    };
                    let key = format!(
                        "creditgate_{plan}_{}",
                        if pack { "pack" } else { "subscription" }
                    );
                    let session =
                        link_purchase(&stripe, &key, &typed, reference.as_deref()).await?;
                    if let Some(c) = session["customer"].as_str() {
                        outsider_customers[buyer].push(c.to_owned());
                    }
                }
                Act::OutsiderCard { buyer, failing } => {
                    for c in &outsider_customers[buyer] {
                        stripe
                            .call(
                                "POST",
                                &format!("/_emulator/customers/{c}/payment_method"),
                                &format!("failing={failing}"),
                            )
                            .await?;
                    }
                }
                Act::Advance { days } => stripe.advance_days(days).await?,
            }
            deliver_shuffled(&deps, &stripe, &mut seen, &mut rng).await?;
        }
        let mut states = Vec::new();
        for i in 0..USERS {
            let p = profile(&deps, &user(i)).await?;
            let cognito = deps.lifecycle.directory.user(&user(i));
            states.push(serde_json::json!({
                "user": user(i),
                "plan": p.plan.as_str(),
                "access": p.access.as_str(),
                "allowance": p.allowance.get(),
                "purchased": p.purchased.get(),
                "customers": p.customers().len(),
                "subscription": p.subscription.as_ref().map(|s| serde_json::json!({
                    "plan": s.plan.as_str(), "status": s.status.as_str(),
                    "cancel_at_period_end": s.cancel_at_period_end,
                })),
                "cognito": cognito.map(|u| (u.plan, u.access, u.enabled)),
            }));
        }
        Ok(states)
    }

    #[tokio::test]
    async fn outside_buyers_never_change_anything_for_users_who_did_not_pay() -> anyhow::Result<()>
    {
        let only: Option<u64> = std::env::var("TRUST_SEED")
            .ok()
            .and_then(|s| s.parse().ok());
        for seed in 0..SEEDS {
            if only.is_some_and(|o| o != seed) {
                continue;
            }
            let acts = script(&mut StdRng::seed_from_u64(seed));
            if !acts.iter().any(|a| a.by_outsider()) {
                continue;
            }
            let without = play(seed, &acts, false).await?;
            let with = play(seed, &acts, true).await?;
            assert_eq!(
                with, without,
                "seed {seed} (TRUST_SEED={seed} replays it), script {acts:?}: an outsider changed a user"
            );
        }
        Ok(())
    }
}
