//! `impl StripeReads for FakeStripe`: what the fake holds, read back as the real adapter reads it.

use domain::catalogue::SaleMode;
use domain::facts::{ChargeFacts, SubscriptionFacts};
use domain::ids::{
    ChargeId, CheckoutSessionId, Email, PaymentIntentId, StripeCustomerId, SubscriptionId,
};
use domain::ports::{PortError, SessionFacts, SessionMode, StripeReads};

use super::{FakeEvent, FakeSessionStatus, FakeStripe, StripeData, made};

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
