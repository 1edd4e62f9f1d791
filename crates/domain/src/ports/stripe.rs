//! Stripe: the customer at sign-up (`Billing`), what the API asks of it (`Payments`) and what
//! creditgate reads from it (`StripeReads`).

use std::future::Future;

use super::PortError;
use crate::ids::{
    ChargeId, CheckoutSessionId, Email, PaymentIntentId, PlanId, StripeCustomerId, SubscriptionId,
    UserSub,
};

/// The payment provider's customers.
pub trait Billing {
    /// Creates the customer for `sub`. The same `idempotency_key` always yields the same
    /// customer, however often and however concurrently it is called.
    fn create_customer(
        &self,
        sub: &UserSub,
        email: &Email,
        idempotency_key: &str,
    ) -> impl Future<Output = Result<StripeCustomerId, PortError>> + Send;
}

/// A Checkout Session's mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionMode {
    Subscription,
    Payment,
    Other,
}

/// A Checkout Session as Stripe has it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFacts {
    pub id: CheckoutSessionId,
    pub mode: SessionMode,
    /// `complete` and paid (or needing no payment, as a trial does).
    pub paid: bool,
    pub customer: Option<StripeCustomerId>,
    pub client_reference_id: Option<String>,
    pub email: Option<Email>,
    pub subscription: Option<SubscriptionId>,
    pub payment_intent: Option<PaymentIntentId>,
    /// Each line item's price lookup key and quantity.
    pub items: Vec<(Option<String>, u64)>,
}

/// What creditgate reads from Stripe: the current state of an object an event names.
pub trait StripeReads {
    /// The subscription with its latest invoice; `None` if Stripe has no such subscription.
    fn subscription(
        &self,
        id: &SubscriptionId,
    ) -> impl Future<Output = Result<Option<crate::facts::SubscriptionFacts>, PortError>> + Send;

    fn checkout_session(
        &self,
        id: &CheckoutSessionId,
    ) -> impl Future<Output = Result<Option<SessionFacts>, PortError>> + Send;

    fn charge(
        &self,
        id: &ChargeId,
    ) -> impl Future<Output = Result<Option<crate::facts::ChargeFacts>, PortError>> + Send;

    /// The Checkout Session that created a payment intent, if one did.
    fn session_for_payment(
        &self,
        payment_intent: &PaymentIntentId,
    ) -> impl Future<Output = Result<Option<CheckoutSessionId>, PortError>> + Send;

    /// The latest charge of a payment intent.
    fn payment_charge(
        &self,
        payment_intent: &PaymentIntentId,
    ) -> impl Future<Output = Result<Option<crate::facts::ChargeFacts>, PortError>> + Send;

    /// The ids of the customer's Checkout Sessions in payment mode that are complete and paid
    /// (the credit packs it bought), for reconciliation.
    fn paid_pack_sessions(
        &self,
        customer: &StripeCustomerId,
    ) -> impl Future<Output = Result<Vec<CheckoutSessionId>, PortError>> + Send;

    /// An event as Stripe delivers it (the JSON a webhook receives), for replays; `None` if
    /// Stripe no longer has it (events are kept 30 days).
    fn event_payload(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<String>, PortError>> + Send;

    /// Every event created at or after `since`, oldest first, each as a webhook would receive
    /// it; with `undelivered_only`, only those whose delivery has not succeeded to every
    /// endpoint (Stripe's `delivery_success=false`: still retrying, or given up).
    fn events_since(
        &self,
        since: i64,
        undelivered_only: bool,
    ) -> impl Future<Output = Result<Vec<String>, PortError>> + Send;
}

/// A Checkout Session to create for a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRequest {
    pub sub: UserSub,
    pub customer: StripeCustomerId,
    pub plan: PlanId,
    pub mode: crate::catalogue::SaleMode,
    pub lookup_key: String,
    pub trial_days: u32,
    pub success_url: String,
    pub cancel_url: String,
    pub idempotency_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedSession {
    pub id: CheckoutSessionId,
    pub url: String,
}

/// A customer's live subscription, as Stripe lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSubscription {
    pub id: SubscriptionId,
    pub customer: StripeCustomerId,
    pub status: crate::facts::SubStatus,
    pub created: i64,
    /// The first item's price lookup key.
    pub lookup_key: Option<String>,
    pub cancel_at_period_end: bool,
    pub current_period_end: i64,
}

/// What the user-facing API asks of Stripe.
pub trait Payments {
    fn create_checkout_session(
        &self,
        request: &SessionRequest,
    ) -> impl Future<Output = Result<CreatedSession, PortError>> + Send;

    /// Every live (not canceled, not incomplete_expired) subscription of these customers
    /// (all the customers bound to one user).
    fn live_subscriptions(
        &self,
        customers: &[StripeCustomerId],
    ) -> impl Future<Output = Result<Vec<LiveSubscription>, PortError>> + Send;

    /// Moves the subscription's price to the one with `lookup_key`, prorated and invoiced now.
    fn change_subscription_price(
        &self,
        subscription: &SubscriptionId,
        lookup_key: &str,
        idempotency_key: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    /// Cancels at period end (`true`) or now.
    fn cancel_subscription(
        &self,
        subscription: &SubscriptionId,
        at_period_end: bool,
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    /// Cancels a second live subscription of one user now, crediting its unused time
    /// (`prorate`, `invoice_now`). Idempotent: an already canceled one is not an error.
    fn cancel_duplicate(
        &self,
        subscription: &SubscriptionId,
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    /// A billing portal session's URL for the customer.
    fn portal_session(
        &self,
        customer: &StripeCustomerId,
        return_url: &str,
    ) -> impl Future<Output = Result<String, PortError>> + Send;
}
