//! `Billing` (Stripe customers) in memory.

use std::collections::HashMap;
use std::sync::Mutex;

use domain::ids::{Email, StripeCustomerId, UserSub};
use domain::ports::{Billing, PortError};

use super::{FailNext, lock};

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
