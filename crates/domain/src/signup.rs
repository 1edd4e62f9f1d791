//! A confirmed sign-up: exactly one Stripe customer, one Free profile, one credit manager,
//! however often Cognito retries the trigger and however concurrently.

use crate::catalogue::Catalogue;
use crate::ids::{Email, UserSub};
use crate::ports::{Accounts, Billing, Created, ManagerRun, PortError, Scheduler, Started};
use crate::profile::Profile;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignUp {
    pub sub: UserSub,
    pub email: Email,
    /// RFC 3339 "now", injected so the use case stays pure.
    pub now: String,
    /// Replaces the free plan's period in the credit manager's input (local runs and tests use
    /// seconds instead of a week). `None` in production.
    pub period_override_seconds: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignUpReport {
    pub profile: Created,
    pub manager: Started,
    pub customer: crate::ids::StripeCustomerId,
}

#[derive(Debug, thiserror::Error)]
pub enum SignUpError {
    #[error(transparent)]
    Port(#[from] PortError),
    #[error("the profile vanished between its conditional create and the read that followed")]
    ProfileVanished,
}

/// The Stripe idempotency key for a user's customer: derived from the sub alone, so every retry
/// of the trigger asks Stripe for the same customer.
pub fn customer_idempotency_key(sub: &UserSub) -> String {
    format!("creditgate-signup-{sub}")
}

pub async fn confirm_sign_up<A, B, S>(
    accounts: &A,
    billing: &B,
    scheduler: &S,
    catalogue: &Catalogue,
    signup: SignUp,
) -> Result<SignUpReport, SignUpError>
where
    A: Accounts,
    B: Billing,
    S: Scheduler,
{
    // A retry after a complete or partial earlier attempt finds the profile and only finishes
    // what is missing; it never calls Stripe again.
    let (profile, created) = match accounts.profile(&signup.sub).await? {
        Some(existing) => (existing, Created::AlreadyExisted),
        None => {
            let customer = billing
                .create_customer(
                    &signup.sub,
                    &signup.email,
                    &customer_idempotency_key(&signup.sub),
                )
                .await?;
            let fresh = Profile::new_signup(
                signup.sub.clone(),
                signup.email,
                customer,
                catalogue.free_plan().id().clone(),
                signup.now,
            );
            match accounts.create_profile(&fresh).await? {
                Created::New => (fresh, Created::New),
                // A concurrent attempt won the race; its profile is the truth.
                Created::AlreadyExisted => (
                    accounts
                        .profile(&signup.sub)
                        .await?
                        .ok_or(SignUpError::ProfileVanished)?,
                    Created::AlreadyExisted,
                ),
            }
        }
    };

    // Start the manager only while the user is on the free plan: a webhook may already have
    // moved a fast buyer to a paid plan, and then nothing must grant Free credits.
    let free = catalogue.free_plan();
    let manager = if &profile.plan == free.id() {
        let mut run = ManagerRun::for_plan(
            profile.sub.clone(),
            profile.manager_generation,
            free.id().clone(),
            free.credits(),
            free.period(),
        );
        if let Some(seconds) = signup.period_override_seconds {
            run.period_seconds = seconds;
        }
        scheduler.start_credit_manager(&run).await?
    } else {
        Started::NotNeeded
    };

    Ok(SignUpReport {
        profile: created,
        manager,
        customer: profile.customer,
    })
}
