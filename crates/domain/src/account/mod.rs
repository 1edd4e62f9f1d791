//! The user-facing API's use cases: buy (a Checkout Session, or a plan change in place) and
//! cancel here; the account itself (`GET /me`, a new API key, the billing portal) in `view.rs`.

use crate::catalogue::{Catalogue, SaleMode};
use crate::ids::{PlanId, SubscriptionId, UserSub};
use crate::lifecycle::{HandleError, Lifecycle};
use crate::ports::{
    Accounts, CreatedSession, Directory, Ledger, Payments, PortError, Scheduler, SessionRequest,
    StripeReads,
};
use crate::profile::Profile;

mod view;

pub use view::{held_purchases, issue_api_key, me, me_without_profile, portal, show};

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("no account for this user")]
    NoProfile,
    #[error("there is no plan `{0}`")]
    UnknownPlan(String),
    #[error("plan `{plan}` is not sold as a {mode}")]
    NotSold { plan: PlanId, mode: &'static str },
    #[error("you are already subscribed to `{0}`")]
    AlreadyOnPlan(PlanId),
    #[error("you have no live subscription")]
    NoSubscription,
    #[error(
        "your subscription {0} was claimed from a payment link and bills the card its buyer gave: it can be cancelled (POST /subscriptions/cancel), not changed; subscribe to another plan after it ends"
    )]
    ClaimedSubscription(SubscriptionId),
    #[error("this Idempotency-Key was already used for a different request; use a new key")]
    IdempotencyKeyReused,
    #[error(
        "claiming a purchase needs an ID token whose email is verified: verify your email and sign in again"
    )]
    EmailNotVerified,
    #[error(transparent)]
    Claim(#[from] crate::lifecycle::ClaimError),
    #[error(transparent)]
    Port(PortError),
    #[error(transparent)]
    Sync(#[from] HandleError),
}

impl From<PortError> for AccountError {
    /// A refusal the caller caused is the caller's error; anything else is ours.
    fn from(e: PortError) -> Self {
        match e.refused.clone() {
            Some(crate::ports::Refusal::IdempotencyKeyReused) => Self::IdempotencyKeyReused,
            None => Self::Port(e),
        }
    }
}

/// The Stripe idempotency key for a caller's `Idempotency-Key`: scoped to the caller, and never
/// longer than the 255 characters Stripe takes (a longer one is replaced by its SHA-256).
pub fn scoped_idempotency_key(sub: &UserSub, client_key: &str) -> String {
    let plain = format!("creditgate-checkout-{sub}-{client_key}");
    if plain.len() <= 255 {
        return plain;
    }
    use sha2::Digest;
    format!(
        "creditgate-checkout-sha256-{}",
        hex::encode(sha2::Sha256::digest(plain.as_bytes()))
    )
}

/// Where Checkout sends the buyer back to (configuration, never hard-coded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutUrls {
    pub success: String,
    pub cancel: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckoutOutcome {
    Session(CreatedSession),
    /// The live subscription's price was changed in place (prorated): never a second one.
    PlanChanged {
        subscription: SubscriptionId,
        from: Option<PlanId>,
        to: PlanId,
    },
}

async fn find_profile<A: Accounts>(accounts: &A, sub: &UserSub) -> Result<Profile, AccountError> {
    accounts.profile(sub).await?.ok_or(AccountError::NoProfile)
}

/// `POST /checkout-sessions`.
#[allow(clippy::too_many_arguments)]
pub async fn start_checkout<A, P>(
    accounts: &A,
    payments: &P,
    catalogue: &Catalogue,
    sub: &UserSub,
    plan: &str,
    mode: SaleMode,
    urls: &CheckoutUrls,
    idempotency_key: &str,
) -> Result<CheckoutOutcome, AccountError>
where
    A: Accounts,
    P: Payments,
{
    let plan = PlanId::parse(plan)
        .ok()
        .and_then(|id| catalogue.get(&id))
        .ok_or_else(|| AccountError::UnknownPlan(plan.to_owned()))?;
    if plan.is_free() || !plan.sells_as(mode) {
        return Err(AccountError::NotSold {
            plan: plan.id().clone(),
            mode: mode.as_str(),
        });
    }
    let profile = find_profile(accounts, sub).await?;
    let lookup_key = plan.lookup_key(mode);
    let live = if mode == SaleMode::Subscription {
        payments.live_subscriptions(&profile.customers()).await?
    } else {
        Vec::new()
    };
    if let Some(live) = crate::lifecycle::keep_one(&live).cloned() {
        // Stripe is asked, not the profile: a webhook still on its way must not let a second
        // subscription start. Every customer bound to the user is asked, so a subscription
        // claimed from a payment link counts too; the one the user keeps is changed, if it
        // bills her own customer.
        let current = live
            .lookup_key
            .as_deref()
            .and_then(|k| crate::catalogue::parse_lookup_key(catalogue, k))
            .map(|(p, _)| p.id().clone());
        if current.as_ref() == Some(plan.id()) {
            return Err(AccountError::AlreadyOnPlan(plan.id().clone()));
        }
        if live.customer != profile.customer {
            // Changing its price would bill a card the user may not own.
            return Err(AccountError::ClaimedSubscription(live.id));
        }
        payments
            .change_subscription_price(&live.id, &lookup_key, idempotency_key)
            .await?;
        return Ok(CheckoutOutcome::PlanChanged {
            subscription: live.id,
            from: current,
            to: plan.id().clone(),
        });
    }
    let session = payments
        .create_checkout_session(&SessionRequest {
            sub: sub.clone(),
            customer: profile.customer,
            plan: plan.id().clone(),
            mode,
            lookup_key,
            trial_days: if mode == SaleMode::Subscription {
                plan.trial_days()
            } else {
                0
            },
            success_url: urls.success.clone(),
            cancel_url: urls.cancel.clone(),
            idempotency_key: idempotency_key.to_owned(),
        })
        .await?;
    Ok(CheckoutOutcome::Session(session))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    /// Flagged: the subscription ends at `period_end`, and the deletion webhook finishes it.
    AtPeriodEnd {
        subscription: SubscriptionId,
        period_end: i64,
    },
    /// It was already flagged: nothing changed.
    AlreadyAtPeriodEnd {
        subscription: SubscriptionId,
        period_end: i64,
    },
    /// Canceled now: the profile is on the free plan already.
    Now {
        subscription: SubscriptionId,
        plan: PlanId,
    },
}

/// `POST /subscriptions/cancel`: only the caller's own live subscription; the profile is
/// reconciled with Stripe at once (the webhook's later delivery then changes nothing).
pub async fn cancel<St, R, D, S, P>(
    lifecycle: &Lifecycle<St, R, D, S>,
    payments: &P,
    sub: &UserSub,
    at_period_end: bool,
    now: i64,
) -> Result<CancelOutcome, AccountError>
where
    St: Accounts + Ledger + Sync,
    R: StripeReads + Payments + Sync,
    D: Directory + Sync,
    S: Scheduler + Sync,
    P: Payments,
{
    let profile = find_profile(&lifecycle.store, sub).await?;
    // Listed by the customers bound to the caller: they can only be the caller's own, and
    // every one of them is cancelled (one bill, whatever the entry point made).
    let all = payments.live_subscriptions(&profile.customers()).await?;
    let live = crate::lifecycle::keep_one(&all)
        .cloned()
        .ok_or(AccountError::NoSubscription)?;
    if at_period_end && all.iter().all(|s| s.cancel_at_period_end) {
        lifecycle.sync_subscription(&live.id, now).await?;
        return Ok(CancelOutcome::AlreadyAtPeriodEnd {
            subscription: live.id,
            period_end: live.current_period_end,
        });
    }
    for each in all
        .iter()
        .filter(|s| !(at_period_end && s.cancel_at_period_end))
    {
        payments
            .cancel_subscription(&each.id, at_period_end)
            .await?;
    }
    lifecycle.sync_subscription(&live.id, now).await?;
    if at_period_end {
        Ok(CancelOutcome::AtPeriodEnd {
            subscription: live.id,
            period_end: live.current_period_end,
        })
    } else {
        let after = find_profile(&lifecycle.store, sub).await?;
        Ok(CancelOutcome::Now {
            subscription: live.id,
            plan: after.plan,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ApiKey, Credits, Email, StripeCustomerId};

    #[test]
    fn a_callers_idempotency_key_is_scoped_and_never_longer_than_stripe_takes() {
        let sub = UserSub::parse("3f1c2a9e-1234-4d2b-9c7e-0a1b2c3d4e5f")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            scoped_idempotency_key(&sub, "k1"),
            format!("creditgate-checkout-{sub}-k1")
        );
        for n in [150, 198, 199, 200, 1_000] {
            let key = "k".repeat(n);
            let scoped = scoped_idempotency_key(&sub, &key);
            assert!(scoped.len() <= 255, "{n}: {}", scoped.len());
            assert_eq!(scoped, scoped_idempotency_key(&sub, &key), "deterministic");
            assert_ne!(scoped, scoped_idempotency_key(&sub, &format!("{key}x")));
        }
    }

    #[test]
    fn me_shows_credits_and_the_key_prefix_but_never_the_key() {
        let mut p = Profile::new_signup(
            UserSub::parse("u-1").unwrap_or_else(|e| panic!("{e}")),
            Email::parse("a@example.com").unwrap_or_else(|e| panic!("{e}")),
            StripeCustomerId::parse("cus_1").unwrap_or_else(|e| panic!("{e}")),
            PlanId::parse("free").unwrap_or_else(|e| panic!("{e}")),
            "2026-01-01T00:00:00Z".into(),
        );
        p.allowance = Credits::new(40);
        p.purchased = Credits::new(2);
        let key = ApiKey::from_entropy([7; 32]);
        p.api_key = Some((key.hash(), key.prefix()));
        let view = me(&p, &[], &[]);
        assert_eq!(view["credits"]["total"], 42);
        assert_eq!(view["api_key_prefix"], key.prefix());
        assert!(!view.to_string().contains(key.expose()));
        assert!(!view.to_string().contains(key.hash().as_str()));
        assert!(!view.to_string().contains("a@example.com"));
    }
}
