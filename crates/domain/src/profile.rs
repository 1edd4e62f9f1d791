//! A user's profile: the one record that says what a user has.

use crate::ids::{Credits, Email, PlanId, StripeCustomerId, UserSub};

/// What a user may do with their API key, as the access policy decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The plan's credits may be spent.
    Active,
    /// Lapsed and switched off (`disable` lapse mode): nothing may be spent until a paid invoice.
    Disabled,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Active => "active",
            Access::Disabled => "disabled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "active" => Some(Access::Active),
            "disabled" => Some(Access::Disabled),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub sub: UserSub,
    pub email: Email,
    /// The customer creditgate created at sign-up (or for a pay-first buyer).
    pub customer: StripeCustomerId,
    /// Customers bound later by claiming a held purchase: their subscriptions are this user's too.
    pub linked_customers: Vec<StripeCustomerId>,
    pub plan: PlanId,
    /// This period's plan credits; reset, not added to, at each period start.
    pub allowance: Credits,
    /// Pack credits; never expire.
    pub purchased: Credits,
    pub access: Access,
    /// Only a credit-manager execution started for this generation may grant. Bumped whenever
    /// the manager must stop (a paid plan starts) or restart (back to Free).
    pub manager_generation: u64,
    /// The current API key's hash and display prefix; `None` until a key is issued.
    pub api_key: Option<(crate::ids::ApiKeyHash, String)>,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// The Stripe subscription the profile follows, as last read from Stripe.
    pub subscription: Option<crate::facts::SubscriptionState>,
    /// The grant (`<invoice>:<plan>`) that last reset `allowance`.
    pub allowance_source: Option<String>,
    /// The newest Stripe event time seen (Stripe's clock, which a test clock moves): the "now"
    /// of the access policy, so its verdict does not depend on delivery order.
    pub stripe_clock: i64,
    /// Bumped by every webhook write; each write is conditioned on the version it read.
    pub version: u64,
    /// The plan and access last pushed to Cognito: pushed again only when they differ.
    pub directory_synced: Option<(PlanId, Access)>,
    /// The manager generation whose execution was last started: started again only when the
    /// generation moves on.
    pub manager_started: Option<u64>,
}

impl Profile {
    /// Every Stripe customer bound to this user, its own first.
    pub fn customers(&self) -> Vec<StripeCustomerId> {
        let mut all = vec![self.customer.clone()];
        for c in &self.linked_customers {
            if !all.contains(c) {
                all.push(c.clone());
            }
        }
        all
    }

    /// The profile a confirmed sign-up starts with: the free plan, no credits until the credit
    /// manager's first grant, manager generation 1.
    pub fn new_signup(
        sub: UserSub,
        email: Email,
        customer: StripeCustomerId,
        free_plan: PlanId,
        now_rfc3339: String,
    ) -> Self {
        Self {
            sub,
            email,
            customer,
            linked_customers: Vec::new(),
            plan: free_plan,
            allowance: Credits::ZERO,
            purchased: Credits::ZERO,
            access: Access::Active,
            manager_generation: 1,
            api_key: None,
            created_at: now_rfc3339,
            subscription: None,
            allowance_source: None,
            stripe_clock: 0,
            version: 0,
            directory_synced: None,
            manager_started: None,
        }
    }
}
