//! The fake's engine: ids, events, idempotency keys, payments and Checkout completion.

use std::collections::BTreeMap;

use domain::catalogue::SaleMode;
use domain::facts::{ChargeFacts, InvoiceFacts, SubStatus};
use domain::ids::{ChargeId, InvoiceId, PaymentIntentId, StripeCustomerId};
use domain::ports::{PortError, Refusal, SessionRequest};
use serde_json::{Value, json};

use super::json::{charge_json, session_json, sub_json};
use super::{
    FakeEvent, FakePrice, FakeSession, FakeSessionStatus, FakeSubscription, StripeData, error, made,
};

impl StripeData {
    pub(super) fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}_fake{}", self.next_id)
    }

    pub(super) fn emit(&mut self, kind: &str, object: Value) {
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
    pub(super) fn price_for(&self, lookup_key: &str) -> Result<FakePrice, PortError> {
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

    pub(super) fn price(&self, id: &str) -> Option<&FakePrice> {
        self.prices.iter().find(|p| p.id == id)
    }

    pub(super) fn subscription_mut(&mut self, id: &str) -> Option<&mut FakeSubscription> {
        self.subscriptions.iter_mut().find(|s| s.id == id)
    }

    /// Runs `apply` under an idempotency key as Stripe does: a new key saves the answer (an
    /// error too); the same key with the same `fingerprint` replays it; with another, refused.
    pub(super) fn keyed(
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

    pub(super) fn open_session(
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
    pub(super) fn complete(&mut self, id: &str) -> Result<(), PortError> {
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

    pub(super) fn payload(event: &FakeEvent) -> String {
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
