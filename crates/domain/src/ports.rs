//! Ports: the small traits the use cases call. `adapters` implements them on DynamoDB, Cognito,
//! Step Functions and Stripe, and (behind its `test-util` feature) in memory.

use std::error::Error as StdError;
use std::future::Future;

use crate::catalogue::Period;
use crate::ids::{
    ChargeId, CheckoutSessionId, Credits, Email, PaymentIntentId, PlanId, StripeCustomerId,
    SubscriptionId, UserSub,
};
use crate::profile::Profile;

pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// A port's call failed. `operation` says which call in domain words; the cause is kept as the
/// source for logs and never shown to a caller.
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed")]
pub struct PortError {
    pub operation: &'static str,
    #[source]
    pub source: BoxError,
    /// Set when the provider refused the request because of what the caller sent (Stripe's
    /// `idempotency_error`): a 4xx for the caller, never a 500.
    pub refused: Option<Refusal>,
}

/// Why a provider refused a request the caller shaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The `Idempotency-Key` was used before with a different request.
    IdempotencyKeyReused,
}

/// An error and its sources on one line, `outer: inner: ...`, for logs and stored errors.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

impl PortError {
    pub fn new(operation: &'static str, source: impl Into<BoxError>) -> Self {
        Self {
            operation,
            source: source.into(),
            refused: None,
        }
    }

    pub fn refused(mut self, refusal: Refusal) -> Self {
        self.refused = Some(refusal);
        self
    }
}

/// Whether a conditional create made something new or found it already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    New,
    AlreadyExisted,
}

/// User profiles and the items that must change with them.
pub trait Accounts {
    /// A consistent read of the user's profile.
    fn profile(
        &self,
        sub: &UserSub,
    ) -> impl Future<Output = Result<Option<Profile>, PortError>> + Send;

    /// Writes the profile and its customer link in one transaction, only if the user has no
    /// profile yet: a retry can never overwrite what an earlier attempt or a webhook wrote.
    fn create_profile(
        &self,
        profile: &Profile,
    ) -> impl Future<Output = Result<Created, PortError>> + Send;

    /// One page of the users that have a profile, from `after` (a cursor a previous page
    /// returned; `None`: the first page), and the cursor of the next page if there is one.
    /// For reconciliation: a Scan, run rarely.
    fn users_page(
        &self,
        after: Option<&str>,
    ) -> impl Future<Output = Result<(Vec<UserSub>, Option<String>), PortError>> + Send;
}

/// API keys: hash-only storage, one current key per user.
pub trait ApiKeys {
    /// Makes `new` the user's only key in one transaction: its `APIKEY#` item is written, the
    /// profile points at it, and the previous key's item (if any) is deleted, so the old key
    /// stops working at once. Fails if the profile does not exist.
    fn rotate_api_key(
        &self,
        sub: &UserSub,
        new: &crate::ids::ApiKeyHash,
        prefix: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

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

/// One run of the credit manager: grants `credits` every `period_seconds` while the profile's
/// manager generation is `generation` and its plan is `plan`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagerRun {
    pub sub: UserSub,
    pub generation: u64,
    pub plan: PlanId,
    pub credits: Credits,
    pub period_seconds: u64,
}

impl ManagerRun {
    pub fn for_plan(
        sub: UserSub,
        generation: u64,
        plan: PlanId,
        credits: Credits,
        period: Period,
    ) -> Self {
        Self {
            sub,
            generation,
            plan,
            credits,
            period_seconds: period.seconds(),
        }
    }

    /// Deterministic, so a second start of the same run is refused by Step Functions itself.
    /// The state machine names its continuations `<sub>-g<generation>-c<cycle>` the same way.
    pub fn execution_name(&self) -> String {
        format!("{}-g{}-c0", self.sub, self.generation)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    New,
    AlreadyRunning,
    /// The user is not on the free plan: nothing to grant.
    NotNeeded,
}

/// The credit manager's executions.
pub trait Scheduler {
    fn start_credit_manager(
        &self,
        run: &ManagerRun,
    ) -> impl Future<Output = Result<Started, PortError>> + Send;
}

/// Whether a conditional write landed or lost a race (re-read and decide again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    Written,
    Conflict,
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

/// The user directory (Cognito).
pub trait Directory {
    /// Makes `custom:plan` / `custom:access` say `plan` / `access`, and the user enabled unless
    /// access is disabled. Idempotent. A user missing from the directory is logged, not an error.
    fn sync_user(
        &self,
        sub: &UserSub,
        plan: &PlanId,
        access: crate::profile::Access,
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    /// What the directory holds for the user now (`None`: no such user), for reconciliation
    /// to compare with the profile: attributes can be changed outside creditgate.
    fn entry(
        &self,
        sub: &UserSub,
    ) -> impl Future<Output = Result<Option<DirectoryEntry>, PortError>> + Send;

    /// Any user whose email attribute is `email`, verified or not. Used only to decide that a
    /// pay-first purchase must be held, never to bind a payment to that user.
    fn find_by_email(
        &self,
        email: &Email,
    ) -> impl Future<Output = Result<Option<UserSub>, PortError>> + Send;

    /// Creates a user for a pay-first buyer (email verified; Cognito sends the invitation).
    /// A user already there with that email is never returned: the answer is `EmailTaken`.
    fn create_user(&self, email: &Email)
    -> impl Future<Output = Result<NewUser, PortError>> + Send;
}

/// A user as the directory holds it: `custom:plan`, `custom:access`, enabled or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryEntry {
    pub plan: Option<String>,
    pub access: Option<String>,
    pub enabled: bool,
}

impl DirectoryEntry {
    /// Whether it says what [`Directory::sync_user`] with `plan` and `access` would make it say.
    pub fn agrees(&self, plan: &PlanId, access: crate::profile::Access) -> bool {
        self.plan.as_deref() == Some(plan.as_str())
            && self.access.as_deref() == Some(access.as_str())
            && self.enabled == (access == crate::profile::Access::Active)
    }

    /// [`Self::agrees`], except that before creditgate first synced the user (`synced` false)
    /// an attribute not set yet is no disagreement.
    pub fn agrees_so_far(
        &self,
        plan: &PlanId,
        access: crate::profile::Access,
        synced: bool,
    ) -> bool {
        if synced {
            return self.agrees(plan, access);
        }
        self.plan.as_deref().is_none_or(|p| p == plan.as_str())
            && self.access.as_deref().is_none_or(|a| a == access.as_str())
            && self.enabled == (access == crate::profile::Access::Active)
    }
}

/// What creating a pay-first buyer's user came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewUser {
    Created(UserSub),
    /// Someone already has this email: the purchase is held for them to claim.
    EmailTaken,
    /// Cognito refused the email itself (too long, characters it does not take): the purchase
    /// can bind to nobody; it settles with this reason.
    Refused(String),
}

/// A pay-first purchase whose email belongs to an existing user: paid and settled, bound to
/// nobody until that user, signed in with the email verified, claims it (`HOLD#<email>` /
/// `SESSION#<id>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldPurchase {
    pub session: CheckoutSessionId,
    pub customer: StripeCustomerId,
    /// Lowercased.
    pub email: Email,
    pub mode: SessionMode,
    /// The plan the session sold (its line items' lookup key), shown to the claimant.
    pub plan: Option<PlanId>,
    /// Stripe's time of the event that held it.
    pub held_at: i64,
    pub claimed_by: Option<UserSub>,
}

/// The webhook's writes: customer links, the grant ledger, and conditional profile writes.
pub trait Ledger {
    fn customer_owner(
        &self,
        customer: &StripeCustomerId,
    ) -> impl Future<Output = Result<Option<UserSub>, PortError>> + Send;

    /// Records a held purchase (only if new: a redelivery changes nothing).
    fn hold_purchase(
        &self,
        held: &HeldPurchase,
    ) -> impl Future<Output = Result<Created, PortError>> + Send;

    /// The purchases held for `email` (claimed ones included), oldest first.
    fn held_purchases(
        &self,
        email: &Email,
    ) -> impl Future<Output = Result<Vec<HeldPurchase>, PortError>> + Send;

    /// Binds a held purchase to `sub` in one transaction: the hold marked claimed by `sub`
    /// (unless another user claimed it), the customer linked to `sub` (unless linked to
    /// another) and added to the profile's customers. `Conflict` if either belongs to another.
    fn claim_purchase(
        &self,
        held: &HeldPurchase,
        sub: &UserSub,
    ) -> impl Future<Output = Result<Saved, PortError>> + Send;

    /// Records what Cognito (`directory`) and the credit manager (`manager_started`) were
    /// brought to; `None` leaves that marker as it is.
    fn mark_followed(
        &self,
        sub: &UserSub,
        directory: Option<(&PlanId, crate::profile::Access)>,
        manager_started: Option<u64>,
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    fn grant_exists(
        &self,
        sub: &UserSub,
        source: &str,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;

    /// Writes a reconciled profile (and its grant's ledger entry) in one transaction,
    /// conditioned on the version read and on the grant being new.
    fn write_profile(
        &self,
        write: &crate::writes::ProfileWrite,
    ) -> impl Future<Output = Result<Saved, PortError>> + Send;

    fn pack_grant(
        &self,
        sub: &UserSub,
        session: &CheckoutSessionId,
    ) -> impl Future<Output = Result<Option<crate::writes::PackGrant>, PortError>> + Send;

    fn pack_for_payment(
        &self,
        sub: &UserSub,
        payment_intent: &PaymentIntentId,
    ) -> impl Future<Output = Result<Option<crate::writes::PackGrant>, PortError>> + Send;

    /// Writes the pack's ledger entry (only if new) and adds `credits - revoked` to `purchased`,
    /// capped at u64::MAX (the most a balance holds; the domain's sums saturate the same way).
    fn record_pack(
        &self,
        sub: &UserSub,
        grant: &crate::writes::PackGrant,
    ) -> impl Future<Output = Result<Saved, PortError>> + Send;

    /// Moves the entry from `before` to `after` (conditioned on `before.revoked`) and takes
    /// `after.removed - before.removed` from `purchased` (conditioned on enough being there).
    fn revoke_pack(
        &self,
        sub: &UserSub,
        before: &crate::writes::PackGrant,
        after: &crate::writes::PackGrant,
    ) -> impl Future<Output = Result<Saved, PortError>> + Send;
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
