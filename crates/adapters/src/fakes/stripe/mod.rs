//! Stripe in memory: `Payments` and `StripeReads` over one shared state, answering as the real
//! adapter (`StripeState`) answers against the stripe-emulator. The contract tests
//! (crates/adapters/tests/payments_contract.rs, stripe_reads_contract.rs) run the same cases
//! against both.
//!
//! What it keeps: prices by lookup key, customers, Checkout Sessions, subscriptions with their
//! latest invoice, payment intents, charges, and every event in creation order (each as a
//! webhook receives it: `id`, `type`, `created`, `data.object` with the fields creditgate reads).
//! As Stripe: an unknown id reads as `None` (or an empty list), an invalid request (unknown
//! customer, price or subscription, a canceled subscription changed, a price of the wrong kind)
//! is an error, and an idempotency key replays its first answer, errors included, or is refused
//! (`Refusal::IdempotencyKeyReused`) with other parameters.
//!
//! Time is the wall clock when the fake is made, frozen (moved only by [`FakeStripe::advance`]);
//! ids are counters (`cs_test_fake3`, `sub_fake4`, ...).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use domain::catalogue::{Catalogue, SaleMode};
use domain::facts::{ChargeFacts, InvoiceFacts, SubStatus};
use domain::ids::{InvalidId, StripeCustomerId};
use domain::ports::{PortError, SessionRequest};
use serde_json::{Value, json};

use super::{FailNext, lock};
use json::{charge_json, sub_json};

mod data;
mod json;
mod payments;
mod reads;

/// An id the fake made (`<prefix>_fake<n>`) as creditgate's type, as the real adapter reads
/// Stripe's ids: one that is not such an id is an error.
fn made<I>(parse: fn(&str) -> Result<I, InvalidId>, raw: &str) -> Result<I, PortError> {
    parse(raw).map_err(|e| PortError::new("read a Stripe id", e))
}

/// `Payments` in memory: [`FakeStripe`], whose reads see what its payments did.
pub type FakePayments = FakeStripe;
/// `StripeReads` in memory: [`FakeStripe`], whose reads see what its payments did.
pub type FakeStripeReads = FakeStripe;

/// A price, found by its lookup key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakePrice {
    pub id: String,
    pub lookup_key: Option<String>,
    pub recurring: bool,
    pub active: bool,
    pub amount: u64,
    /// The billing period of a recurring price.
    pub period_seconds: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeSessionStatus {
    Open,
    Complete,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeSession {
    pub id: String,
    pub mode: SaleMode,
    pub status: FakeSessionStatus,
    /// `payment_status` is `paid` (or `no_payment_required`, a trial).
    pub paid: bool,
    pub no_payment_required: bool,
    pub customer: StripeCustomerId,
    pub client_reference_id: Option<String>,
    /// `customer_details.email`: the customer's email, once completed.
    pub email: Option<String>,
    pub subscription: Option<String>,
    pub payment_intent: Option<String>,
    /// The line item's price id (quantity 1).
    pub price: String,
    pub trial_days: u32,
    pub metadata: BTreeMap<String, String>,
    pub created: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeSubscription {
    pub id: String,
    pub customer: StripeCustomerId,
    pub status: SubStatus,
    /// The first item's price id.
    pub price: String,
    pub created: i64,
    pub current_period_end: i64,
    pub cancel_at_period_end: bool,
    pub latest_invoice: Option<InvoiceFacts>,
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FakeEvent {
    pub id: String,
    pub kind: String,
    pub created: i64,
    pub object: Value,
    /// Created while [`FakeStripe::webhook_down`]: its delivery never succeeded.
    pub undelivered: bool,
}

/// An idempotency key's first request and answer (an error's message, as Stripe saves errors).
type Replay = (String, Result<String, String>);

#[derive(Debug, Default)]
pub struct StripeData {
    pub now: i64,
    next_id: u64,
    pub prices: Vec<FakePrice>,
    /// customer id → email
    pub customers: BTreeMap<String, Option<String>>,
    /// In creation order.
    pub sessions: Vec<FakeSession>,
    /// In creation order.
    pub subscriptions: Vec<FakeSubscription>,
    /// payment intent id → its latest charge
    pub payment_intents: BTreeMap<String, Option<String>>,
    pub charges: BTreeMap<String, ChargeFacts>,
    /// In creation order.
    pub events: Vec<FakeEvent>,
    pub idempotency: HashMap<String, Replay>,
    pub webhook_down: bool,
    portal_sessions: u64,
}

pub struct FakeStripe {
    pub data: Mutex<StripeData>,
    pub fail: FailNext,
}

impl Default for FakeStripe {
    /// No prices and no customers yet.
    fn default() -> Self {
        Self {
            data: Mutex::new(StripeData {
                now: crate::unix_now(),
                ..StripeData::default()
            }),
            fail: FailNext::default(),
        }
    }
}

fn error(operation: &'static str, message: impl Into<String>) -> PortError {
    PortError::new(operation, message.into())
}

impl FakeStripe {
    /// Stripe after `creditgate plans sync`: an active price for each way each paid plan sells,
    /// holding its lookup key (recurring for subscriptions).
    pub fn new(catalogue: &Catalogue) -> Self {
        let fake = Self::default();
        for plan in catalogue.paid_plans() {
            let amount = plan.price().map(|p| p.amount()).unwrap_or_default();
            for mode in plan.sale_modes() {
                fake.add_price(
                    &plan.lookup_key(mode),
                    mode == SaleMode::Subscription,
                    amount,
                    i64::try_from(plan.period().seconds()).unwrap_or(i64::MAX),
                );
            }
        }
        fake
    }

    fn data(&self) -> std::sync::MutexGuard<'_, StripeData> {
        lock(&self.data)
    }

    /// Adds an active price holding `lookup_key` (moving the key from the price that held it,
    /// as `transfer_lookup_key` does); returns its id.
    pub fn add_price(
        &self,
        lookup_key: &str,
        recurring: bool,
        amount: u64,
        period_seconds: i64,
    ) -> String {
        let mut data = self.data();
        let id = data.id("price");
        for p in data.prices.iter_mut() {
            if p.lookup_key.as_deref() == Some(lookup_key) {
                p.lookup_key = None;
            }
        }
        data.prices.push(FakePrice {
            id: id.clone(),
            lookup_key: Some(lookup_key.to_owned()),
            recurring,
            active: true,
            amount,
            period_seconds,
        });
        id
    }

    /// A new customer with this email.
    pub fn customer(&self, email: &str) -> StripeCustomerId {
        let mut data = self.data();
        let id = data.id("cus");
        data.customers.insert(id.clone(), Some(email.to_owned()));
        StripeCustomerId::parse(&id).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A customer with a chosen id (the one a test profile names), as if `Billing` made it.
    pub fn add_customer(&self, id: &StripeCustomerId, email: &str) {
        self.data()
            .customers
            .insert(id.to_string(), Some(email.to_owned()));
    }

    /// The buyer pays in Checkout (the emulator's `/_emulator/checkout/sessions/{id}/complete`):
    /// a pack's payment intent and charge, or a subscription (trialing when the session asked
    /// for trial days), its paid first invoice and its payment; the session complete and paid;
    /// the events Stripe emits, in its order.
    pub fn complete_session(&self, id: &str) -> Result<(), PortError> {
        self.data().complete(id)
    }

    /// A session for `customer` buying the price of `lookup_key`, completed: returns the
    /// session id (and with it, through [`StripeReads::checkout_session`], the subscription or
    /// payment intent).
    pub fn buy(
        &self,
        customer: &StripeCustomerId,
        lookup_key: &str,
        trial_days: u32,
    ) -> Result<String, PortError> {
        let mut data = self.data();
        let price = data.price_for(lookup_key)?;
        let request = SessionRequest {
            sub: domain::ids::UserSub::parse("fake-buyer").map_err(|e| PortError::new("buy", e))?,
            customer: customer.clone(),
            plan: domain::ids::PlanId::parse("fake").map_err(|e| PortError::new("buy", e))?,
            mode: if price.recurring {
                SaleMode::Subscription
            } else {
                SaleMode::Pack
            },
            lookup_key: lookup_key.to_owned(),
            trial_days,
            success_url: "http://127.0.0.1/ok".into(),
            cancel_url: "http://127.0.0.1/cancel".into(),
            idempotency_key: String::new(),
        };
        let id = data
            .open_session(&request, &price)
            .map_err(|e| error("create Stripe checkout session", e))?;
        data.complete(&id)?;
        Ok(id)
    }

    /// A subscription for `customer` to the price of `lookup_key`, bought through Checkout;
    /// returns its id.
    pub fn subscribe(
        &self,
        customer: &StripeCustomerId,
        lookup_key: &str,
    ) -> Result<String, PortError> {
        let session = self.buy(customer, lookup_key, 0)?;
        self.data()
            .sessions
            .iter()
            .find(|s| s.id == session)
            .and_then(|s| s.subscription.clone())
            .ok_or_else(|| error("subscribe", format!("{lookup_key} is not a subscription")))
    }

    /// Refunds `amount` of a charge: `charge.refunded`.
    pub fn refund(&self, charge: &str, amount: u64) -> Result<(), PortError> {
        let mut data = self.data();
        let facts = data
            .charges
            .get_mut(charge)
            .ok_or_else(|| error("refund", format!("No such charge: '{charge}'")))?;
        if amount == 0 || amount > facts.amount - facts.amount_refunded {
            return Err(error(
                "refund",
                "Refund amount is greater than unrefunded amount",
            ));
        }
        facts.amount_refunded += amount;
        let object = charge_json(facts);
        data.emit("charge.refunded", object);
        Ok(())
    }

    /// The cardholder disputes a charge: `charge.dispute.created`.
    pub fn dispute(&self, charge: &str) -> Result<(), PortError> {
        let mut data = self.data();
        let facts = data
            .charges
            .get_mut(charge)
            .ok_or_else(|| error("dispute", format!("No such charge: '{charge}'")))?;
        facts.disputed = true;
        let object = json!({ "id": format!("du_{charge}"), "object": "dispute", "charge": charge });
        data.emit("charge.dispute.created", object);
        Ok(())
    }

    /// From now on no delivery succeeds (a webhook endpoint that does not answer): every new
    /// event is listed by `events_since(_, true)`.
    pub fn webhook_down(&self) {
        self.data().webhook_down = true;
    }

    /// Moves the clock on by `seconds`; a subscription whose period ends on the way and that
    /// was set to cancel at period end is canceled (`customer.subscription.deleted`). (Renewals
    /// are not played: a period end passed without cancellation leaves it as it was.)
    pub fn advance(&self, seconds: i64) {
        let mut data = self.data();
        data.now += seconds;
        let now = data.now;
        let mut ended = Vec::new();
        for s in data.subscriptions.iter_mut() {
            if s.status.is_live() && s.cancel_at_period_end && s.current_period_end <= now {
                s.status = SubStatus::Canceled;
                ended.push(sub_json(s));
            }
        }
        for object in ended {
            data.emit("customer.subscription.deleted", object);
        }
    }

    /// The subscription as the fake holds it.
    pub fn subscription_state(&self, id: &str) -> Option<FakeSubscription> {
        self.data()
            .subscriptions
            .iter()
            .find(|s| s.id == id)
            .cloned()
    }
}
