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
use domain::facts::{ChargeFacts, InvoiceFacts, SubStatus, SubscriptionFacts};
use domain::ids::{
    ChargeId, CheckoutSessionId, Email, InvalidId, InvoiceId, PaymentIntentId, StripeCustomerId,
    SubscriptionId,
};
use domain::ports::{
    CreatedSession, LiveSubscription, Payments, PortError, Refusal, SessionFacts, SessionMode,
    SessionRequest, StripeReads,
};
use serde_json::{Value, json};

use super::{FailNext, lock};

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

fn sub_json(s: &FakeSubscription) -> Value {
    json!({
        "id": s.id,
        "object": "subscription",
        "customer": s.customer.as_str(),
        "status": s.status.as_str(),
        "cancel_at_period_end": s.cancel_at_period_end,
        "latest_invoice": s.latest_invoice.as_ref().map(|i| i.id.clone()),
        "items": { "object": "list", "data": [
            { "object": "subscription_item", "price": { "id": s.price },
              "current_period_end": s.current_period_end }
        ] },
        "metadata": s.metadata,
    })
}

fn session_json(s: &FakeSession) -> Value {
    let mode = match s.mode {
        SaleMode::Subscription => "subscription",
        SaleMode::Pack => "payment",
    };
    let status = match s.status {
        FakeSessionStatus::Open => "open",
        FakeSessionStatus::Complete => "complete",
    };
    let payment_status = if s.no_payment_required {
        "no_payment_required"
    } else if s.paid {
        "paid"
    } else {
        "unpaid"
    };
    json!({
        "id": s.id,
        "object": "checkout.session",
        "mode": mode,
        "status": status,
        "payment_status": payment_status,
        "customer": s.customer.as_str(),
        "client_reference_id": s.client_reference_id,
        "customer_details": s.email.as_ref().map(|e| json!({ "email": e })),
        "subscription": s.subscription,
        "payment_intent": s.payment_intent,
        "metadata": s.metadata,
    })
}

fn charge_json(c: &ChargeFacts) -> Value {
    json!({
        "id": c.id,
        "object": "charge",
        "customer": c.customer.as_ref().map(|c| c.as_str().to_owned()),
        "payment_intent": c.payment_intent,
        "amount": c.amount,
        "amount_refunded": c.amount_refunded,
        "refunded": c.amount_refunded >= c.amount,
        "disputed": c.disputed,
    })
}

impl StripeData {
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}_fake{}", self.next_id)
    }

    fn emit(&mut self, kind: &str, object: Value) {
        let id = self.id("evt");
        let undelivered = self.webhook_down;
        self.events.push(FakeEvent {
            id,
            kind: kind.to_owned(),
            created: self.now,
            object,
            undelivered,
        });
    }

    /// The active price holding `lookup_key`, as `ListPrice` with `lookup_keys` and `active`
    /// finds it.
    fn price_for(&self, lookup_key: &str) -> Result<FakePrice, PortError> {
        self.prices
            .iter()
            .find(|p| p.active && p.lookup_key.as_deref() == Some(lookup_key))
            .cloned()
            .ok_or_else(|| {
                error(
                    "find Stripe price",
                    format!(
                        "no active price has lookup key {lookup_key}: run `creditgate plans sync`"
                    ),
                )
            })
    }

    fn price(&self, id: &str) -> Option<&FakePrice> {
        self.prices.iter().find(|p| p.id == id)
    }

    fn subscription_mut(&mut self, id: &str) -> Option<&mut FakeSubscription> {
        self.subscriptions.iter_mut().find(|s| s.id == id)
    }

    /// Runs `apply` under an idempotency key as Stripe does: a new key saves the answer (an
    /// error too); the same key with the same `fingerprint` replays it; with another, refused.
    fn keyed(
        &mut self,
        operation: &'static str,
        key: &str,
        fingerprint: String,
        apply: impl FnOnce(&mut Self) -> Result<String, String>,
    ) -> Result<String, PortError> {
        // What async-stripe's `IdempotencyKey::new` refuses, before any request.
        if key.is_empty() || key.len() > 255 {
            return Err(error(
                "build idempotency key",
                format!(
                    "an idempotency key has 1 to 255 characters, not {}",
                    key.len()
                ),
            ));
        }
        if let Some((first, answer)) = self.idempotency.get(key) {
            if *first != fingerprint {
                return Err(error(
                    operation,
                    format!(
                        "idempotency_error: Keys for idempotent requests can only be used with \
                         the same parameters they were first used with. Try using a key other \
                         than '{key}' if you meant to execute a different request."
                    ),
                )
                .refused(Refusal::IdempotencyKeyReused));
            }
            return answer.clone().map_err(|e| error(operation, e));
        }
        let answer = apply(self);
        self.idempotency
            .insert(key.to_owned(), (fingerprint, answer.clone()));
        answer.map_err(|e| error(operation, e))
    }

    /// A successful card payment: a payment intent and its charge, with
    /// `payment_intent.created`, `charge.succeeded`, `payment_intent.succeeded`.
    fn pay(&mut self, customer: &StripeCustomerId, amount: u64) -> Result<String, PortError> {
        let pi = self.id("pi");
        let charge = self.id("ch");
        self.payment_intents.insert(pi.clone(), None);
        self.emit(
            "payment_intent.created",
            json!({ "id": pi, "object": "payment_intent", "customer": customer.as_str(),
                    "status": "requires_payment_method", "latest_charge": null }),
        );
        let facts = ChargeFacts {
            id: made(ChargeId::parse, &charge)?,
            customer: Some(customer.clone()),
            payment_intent: Some(made(PaymentIntentId::parse, &pi)?),
            amount,
            amount_refunded: 0,
            disputed: false,
        };
        self.charges.insert(charge.clone(), facts.clone());
        self.emit("charge.succeeded", charge_json(&facts));
        self.payment_intents
            .insert(pi.clone(), Some(charge.clone()));
        self.emit(
            "payment_intent.succeeded",
            json!({ "id": pi, "object": "payment_intent", "customer": customer.as_str(),
                    "status": "succeeded", "latest_charge": charge }),
        );
        Ok(pi)
    }

    fn open_session(
        &mut self,
        request: &SessionRequest,
        price: &FakePrice,
    ) -> Result<String, String> {
        if !self.customers.contains_key(request.customer.as_str()) {
            return Err(format!("No such customer: '{}'", request.customer));
        }
        match (request.mode, price.recurring) {
            (SaleMode::Subscription, false) => {
                return Err(
                    "You must provide at least one recurring price in `subscription` \
                            mode when using prices."
                        .into(),
                );
            }
            (SaleMode::Pack, true) => {
                return Err("You specified `payment` mode but passed a recurring price.".into());
            }
            _ => {}
        }
        let id = self.id("cs_test");
        let metadata = BTreeMap::from([
            ("cognito_sub".to_owned(), request.sub.to_string()),
            ("creditgate_plan".to_owned(), request.plan.to_string()),
            (
                "creditgate_mode".to_owned(),
                request.mode.as_str().to_owned(),
            ),
        ]);
        self.sessions.push(FakeSession {
            id: id.clone(),
            mode: request.mode,
            status: FakeSessionStatus::Open,
            paid: false,
            no_payment_required: false,
            customer: request.customer.clone(),
            client_reference_id: Some(request.sub.to_string()),
            email: None,
            subscription: None,
            payment_intent: None,
            price: price.id.clone(),
            trial_days: if request.mode == SaleMode::Subscription {
                request.trial_days
            } else {
                0
            },
            metadata,
            created: self.now,
        });
        Ok(id)
    }

    /// What the emulator's `POST /_emulator/checkout/sessions/{id}/complete` does.
    fn complete(&mut self, id: &str) -> Result<(), PortError> {
        let what = "complete checkout session";
        let session = self
            .sessions
            .iter()
            .find(|s| s.id == id)
            .cloned()
            .ok_or_else(|| error(what, format!("No such checkout.session: '{id}'")))?;
        if session.status != FakeSessionStatus::Open {
            return Err(error(what, "only open sessions can be completed"));
        }
        let price = self
            .price(&session.price)
            .cloned()
            .ok_or_else(|| error(what, "the session's price is gone"))?;
        let email = self
            .customers
            .get(session.customer.as_str())
            .cloned()
            .flatten();
        let mut done = session.clone();
        done.status = FakeSessionStatus::Complete;
        done.email = email;
        match session.mode {
            SaleMode::Pack => {
                done.payment_intent = Some(self.pay(&session.customer, price.amount)?);
                done.paid = true;
            }
            SaleMode::Subscription => {
                let trial = session.trial_days > 0;
                let sub_id = self.id("sub");
                let invoice = self.id("in");
                let now = self.now;
                let sub = FakeSubscription {
                    id: sub_id.clone(),
                    customer: session.customer.clone(),
                    status: if trial {
                        SubStatus::Trialing
                    } else {
                        SubStatus::Active
                    },
                    price: price.id.clone(),
                    created: now,
                    current_period_end: if trial {
                        now + i64::from(session.trial_days) * 86_400
                    } else {
                        now + price.period_seconds
                    },
                    cancel_at_period_end: false,
                    latest_invoice: Some(InvoiceFacts {
                        id: made(InvoiceId::parse, &invoice)?,
                        paid: true,
                        created: now,
                    }),
                    metadata: session.metadata.clone(),
                };
                self.subscriptions.push(sub.clone());
                self.emit("customer.subscription.created", sub_json(&sub));
                let total = if trial { 0 } else { price.amount };
                self.issue_invoice(&sub, &invoice, total)?;
                done.subscription = Some(sub_id);
                done.paid = true;
                done.no_payment_required = total == 0;
            }
        }
        if let Some(s) = self.sessions.iter_mut().find(|s| s.id == id) {
            *s = done.clone();
        }
        self.emit("checkout.session.completed", session_json(&done));
        Ok(())
    }

    /// An invoice for the subscription, paid: `invoice.created`, `invoice.finalized`, the
    /// payment's events (when there is something to pay), `invoice.paid`,
    /// `invoice.payment_succeeded`.
    fn issue_invoice(
        &mut self,
        sub: &FakeSubscription,
        invoice: &str,
        total: u64,
    ) -> Result<(), PortError> {
        let object = |status: &str| {
            json!({
                "id": invoice,
                "object": "invoice",
                "customer": sub.customer.as_str(),
                "status": status,
                "total": total,
                "attempt_count": u64::from(total > 0 && status == "paid"),
                "parent": { "subscription_details": { "subscription": sub.id } },
            })
        };
        self.emit("invoice.created", object("draft"));
        self.emit("invoice.finalized", object("open"));
        if total > 0 {
            self.pay(&sub.customer, total)?;
        }
        self.emit("invoice.paid", object("paid"));
        self.emit("invoice.payment_succeeded", object("paid"));
        Ok(())
    }

    fn payload(event: &FakeEvent) -> String {
        json!({
            "id": event.id,
            "object": "event",
            "type": event.kind,
            "created": event.created,
            "data": { "object": event.object },
        })
        .to_string()
    }
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

impl Payments for FakeStripe {
    async fn create_checkout_session(
        &self,
        request: &SessionRequest,
    ) -> Result<CreatedSession, PortError> {
        self.fail.check("create Stripe checkout session")?;
        let mut data = self.data();
        let price = data.price_for(&request.lookup_key)?;
        let fingerprint = format!(
            "create checkout session {} {} {} {} {} {} {} {}",
            request.sub,
            request.customer,
            request.plan,
            request.mode.as_str(),
            price.id,
            request.trial_days,
            request.success_url,
            request.cancel_url
        );
        let id = data.keyed(
            "create Stripe checkout session",
            &request.idempotency_key,
            fingerprint,
            |data| data.open_session(request, &price),
        )?;
        Ok(CreatedSession {
            url: format!("https://checkout.stripe.com/c/pay/{id}"),
            id: made(CheckoutSessionId::parse, &id)?,
        })
    }

    async fn live_subscriptions(
        &self,
        customers: &[StripeCustomerId],
    ) -> Result<Vec<LiveSubscription>, PortError> {
        self.fail.check("list Stripe subscriptions")?;
        let data = self.data();
        let mut live = Vec::new();
        for customer in customers {
            // Newest first, as Stripe lists.
            for s in data.subscriptions.iter().rev() {
                if s.customer != *customer || !s.status.is_live() {
                    continue;
                }
                live.push(LiveSubscription {
                    id: made(SubscriptionId::parse, &s.id)?,
                    customer: customer.clone(),
                    status: s.status,
                    created: s.created,
                    lookup_key: data.price(&s.price).and_then(|p| p.lookup_key.clone()),
                    cancel_at_period_end: s.cancel_at_period_end,
                    current_period_end: s.current_period_end,
                });
            }
        }
        Ok(live)
    }

    async fn change_subscription_price(
        &self,
        subscription: &SubscriptionId,
        lookup_key: &str,
        idempotency_key: &str,
    ) -> Result<(), PortError> {
        let subscription = subscription.as_str();
        self.fail.check("change Stripe subscription price")?;
        let mut data = self.data();
        let price = data.price_for(lookup_key)?;
        if data.subscription_mut(subscription).is_none() {
            return Err(error(
                "read Stripe subscription",
                format!("No such subscription: '{subscription}'"),
            ));
        }
        let fingerprint = format!("change price {subscription} {}", price.id);
        data.keyed(
            "change Stripe subscription price",
            idempotency_key,
            fingerprint,
            |data| {
                if !price.recurring || !price.active {
                    return Err("The price must be an active recurring price.".into());
                }
                let Some(s) = data.subscription_mut(subscription) else {
                    return Err(format!("No such subscription: '{subscription}'"));
                };
                if !s.status.is_live() {
                    return Err("A canceled subscription can only update its \
                                cancellation_details and metadata."
                        .into());
                }
                if s.price != price.id {
                    s.price = price.id.clone();
                    let object = sub_json(s);
                    data.emit("customer.subscription.updated", object);
                }
                Ok(String::new())
            },
        )?;
        Ok(())
    }

    async fn cancel_subscription(
        &self,
        subscription: &SubscriptionId,
        at_period_end: bool,
    ) -> Result<(), PortError> {
        let subscription = subscription.as_str();
        let what = if at_period_end {
            "cancel Stripe subscription at period end"
        } else {
            "cancel Stripe subscription"
        };
        self.fail.check(what)?;
        let mut data = self.data();
        let s = data
            .subscription_mut(subscription)
            .ok_or_else(|| error(what, format!("No such subscription: '{subscription}'")))?;
        if !s.status.is_live() {
            return Err(error(
                what,
                format!("the subscription {subscription} is already canceled"),
            ));
        }
        let kind = if at_period_end {
            if s.cancel_at_period_end {
                return Ok(());
            }
            s.cancel_at_period_end = true;
            "customer.subscription.updated"
        } else {
            s.status = SubStatus::Canceled;
            "customer.subscription.deleted"
        };
        let object = sub_json(s);
        data.emit(kind, object);
        Ok(())
    }

    async fn cancel_duplicate(&self, subscription: &SubscriptionId) -> Result<(), PortError> {
        let subscription = subscription.as_str();
        let what = "cancel duplicate Stripe subscription";
        self.fail.check(what)?;
        let mut data = self.data();
        let cancelled = data.keyed(
            what,
            &format!("creditgate-one-subscription-{subscription}"),
            format!("cancel duplicate {subscription}"),
            |data| {
                let Some(s) = data.subscription_mut(subscription) else {
                    return Err(format!("No such subscription: '{subscription}'"));
                };
                if !s.status.is_live() {
                    return Err(format!(
                        "No such subscription: '{subscription}' is already canceled."
                    ));
                }
                s.status = SubStatus::Canceled;
                let object = sub_json(s);
                data.emit("customer.subscription.deleted", object);
                Ok(String::new())
            },
        );
        let Err(e) = cancelled else {
            return Ok(());
        };
        // Already canceled (by a concurrent delivery, or by the user): done.
        match data.subscriptions.iter().find(|s| s.id == subscription) {
            None => Err(error(
                "read Stripe subscription",
                format!("No such subscription: '{subscription}'"),
            )),
            Some(s) if !s.status.is_live() => Ok(()),
            Some(_) => Err(e),
        }
    }

    async fn portal_session(
        &self,
        customer: &StripeCustomerId,
        _return_url: &str,
    ) -> Result<String, PortError> {
        let what = "create Stripe billing portal session";
        self.fail.check(what)?;
        let mut data = self.data();
        if !data.customers.contains_key(customer.as_str()) {
            return Err(error(what, format!("No such customer: '{customer}'")));
        }
        data.portal_sessions += 1;
        Ok(format!(
            "https://billing.stripe.com/p/session/test_fake{}",
            data.portal_sessions
        ))
    }
}

impl StripeReads for FakeStripe {
    async fn subscription(
        &self,
        id: &SubscriptionId,
    ) -> Result<Option<SubscriptionFacts>, PortError> {
        self.fail.check("read Stripe subscription")?;
        let data = self.data();
        Ok(data
            .subscriptions
            .iter()
            .find(|s| s.id == id.as_str())
            .map(|s| SubscriptionFacts {
                id: id.clone(),
                customer: s.customer.clone(),
                status: s.status,
                lookup_key: data.price(&s.price).and_then(|p| p.lookup_key.clone()),
                price: s.price.clone(),
                created: s.created,
                current_period_end: s.current_period_end,
                cancel_at_period_end: s.cancel_at_period_end,
                latest_invoice: s.latest_invoice.clone(),
                chosen: false,
            }))
    }

    async fn checkout_session(
        &self,
        id: &CheckoutSessionId,
    ) -> Result<Option<SessionFacts>, PortError> {
        self.fail.check("read Stripe checkout session")?;
        let data = self.data();
        data.sessions
            .iter()
            .find(|s| s.id == id.as_str())
            .map(|s| -> Result<SessionFacts, PortError> {
                Ok(SessionFacts {
                    id: id.clone(),
                    mode: match s.mode {
                        SaleMode::Subscription => SessionMode::Subscription,
                        SaleMode::Pack => SessionMode::Payment,
                    },
                    paid: s.status == FakeSessionStatus::Complete && s.paid,
                    customer: Some(s.customer.clone()),
                    client_reference_id: s.client_reference_id.clone(),
                    email: s.email.as_deref().and_then(|e| Email::parse(e).ok()),
                    subscription: s
                        .subscription
                        .as_deref()
                        .map(|raw| made(SubscriptionId::parse, raw))
                        .transpose()?,
                    payment_intent: s
                        .payment_intent
                        .as_deref()
                        .map(|raw| made(PaymentIntentId::parse, raw))
                        .transpose()?,
                    items: vec![(data.price(&s.price).and_then(|p| p.lookup_key.clone()), 1)],
                })
            })
            .transpose()
    }

    async fn charge(&self, id: &ChargeId) -> Result<Option<ChargeFacts>, PortError> {
        self.fail.check("read Stripe charge")?;
        Ok(self.data().charges.get(id.as_str()).cloned())
    }

    async fn session_for_payment(
        &self,
        payment_intent: &PaymentIntentId,
    ) -> Result<Option<CheckoutSessionId>, PortError> {
        self.fail.check("find Stripe checkout session")?;
        self.data()
            .sessions
            .iter()
            .rev()
            .find(|s| s.payment_intent.as_deref() == Some(payment_intent.as_str()))
            .map(|s| made(CheckoutSessionId::parse, &s.id))
            .transpose()
    }

    async fn payment_charge(
        &self,
        payment_intent: &PaymentIntentId,
    ) -> Result<Option<ChargeFacts>, PortError> {
        self.fail.check("read Stripe payment intent")?;
        let data = self.data();
        Ok(data
            .payment_intents
            .get(payment_intent.as_str())
            .cloned()
            .flatten()
            .and_then(|charge| data.charges.get(&charge).cloned()))
    }

    async fn paid_pack_sessions(
        &self,
        customer: &StripeCustomerId,
    ) -> Result<Vec<CheckoutSessionId>, PortError> {
        self.fail.check("list Stripe checkout sessions")?;
        self.data()
            .sessions
            .iter()
            .rev()
            .filter(|s| {
                s.customer == *customer
                    && s.status == FakeSessionStatus::Complete
                    && s.mode == SaleMode::Pack
                    && s.paid
                    && !s.no_payment_required
            })
            .map(|s| made(CheckoutSessionId::parse, &s.id))
            .collect()
    }

    async fn event_payload(&self, id: &str) -> Result<Option<String>, PortError> {
        self.fail.check("read Stripe event")?;
        Ok(self
            .data()
            .events
            .iter()
            .find(|e| e.id == id)
            .map(StripeData::payload))
    }

    async fn events_since(
        &self,
        since: i64,
        undelivered_only: bool,
    ) -> Result<Vec<String>, PortError> {
        self.fail.check("list Stripe events")?;
        let data = self.data();
        let mut found: Vec<&FakeEvent> = data
            .events
            .iter()
            .filter(|e| e.created >= since && (!undelivered_only || e.undelivered))
            .collect();
        found.sort_by_key(|e| e.created);
        Ok(found.into_iter().map(StripeData::payload).collect())
    }
}
