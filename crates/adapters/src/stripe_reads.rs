//! `StripeReads` through async-stripe: the current state of the objects webhook events name.
//! No `expand`: a subscription and its latest invoice are two reads, which any Stripe API
//! version (and the stripe-emulator) answers the same way.

use domain::catalogue::{SaleMode, lookup_key};
use domain::facts::{ChargeFacts, InvoiceFacts, SubStatus, SubscriptionFacts};
use domain::ids::{
    ChargeId, CheckoutSessionId, Email, InvalidId, InvoiceId, PaymentIntentId, PlanId,
    StripeCustomerId, SubscriptionId,
};
use domain::ports::{PortError, SessionFacts, SessionMode, StripeReads};
use stripe_billing::invoice::RetrieveInvoice;
use stripe_billing::subscription::RetrieveSubscription;
use stripe_checkout::checkout_session::{
    ListCheckoutSession, ListLineItemsCheckoutSession, RetrieveCheckoutSession,
};
use stripe_core::charge::RetrieveCharge;
use stripe_core::payment_intent::RetrievePaymentIntent;
use stripe_shared::{
    Charge, CheckoutSessionMode, CheckoutSessionPaymentStatus, CheckoutSessionStatus,
    InvoiceStatus, Price,
};

use crate::secrets::StripeSecretSource;
use crate::stripe_api::RetryingClient;

/// Stripe through the client built from the current secret (see [`crate::secrets`]).
#[derive(Clone, Debug)]
pub struct StripeState {
    secrets: StripeSecretSource,
}

impl StripeState {
    pub fn new(secrets: StripeSecretSource) -> Self {
        Self { secrets }
    }

    /// The client for the secret key in force now (read from Secrets Manager if not cached),
    /// retrying what Stripe answers 429 (see [`crate::stripe_api::Backoff`]).
    pub async fn stripe(&self) -> Result<RetryingClient, PortError> {
        self.secrets.stripe().await
    }

    pub fn secrets(&self) -> &StripeSecretSource {
        &self.secrets
    }
}

/// The lookup key a price stands for: its own, or, once `creditgate plans sync` has moved the
/// key to a newer price (an amount changed), the one its creditgate metadata names. Prices are
/// created only with the secret key (by sync), so the metadata is ours, never a buyer's.
fn plan_key(price: &Price) -> Option<String> {
    price.lookup_key.clone().or_else(|| {
        let plan = PlanId::parse(price.metadata.get("creditgate_plan")?).ok()?;
        let mode = SaleMode::parse(price.metadata.get("creditgate_mode")?)?;
        Some(lookup_key(&plan, mode))
    })
}

fn customer_id(raw: &str) -> Result<StripeCustomerId, PortError> {
    StripeCustomerId::parse(raw).map_err(|e| PortError::new("read Stripe customer id", e))
}

/// An id Stripe answered, as creditgate's type: one that is not such an id is an error.
pub(crate) fn stripe_id<I>(
    parse: fn(&str) -> Result<I, InvalidId>,
    raw: &str,
) -> Result<I, PortError> {
    parse(raw).map_err(|e| PortError::new("read a Stripe id", e))
}

fn charge_facts(charge: Charge) -> Result<ChargeFacts, PortError> {
    Ok(ChargeFacts {
        id: stripe_id(ChargeId::parse, charge.id.as_str())?,
        customer: charge
            .customer
            .as_ref()
            .and_then(|c| StripeCustomerId::parse(c.id().as_str()).ok()),
        payment_intent: charge
            .payment_intent
            .as_ref()
            .map(|p| stripe_id(PaymentIntentId::parse, p.id().as_str()))
            .transpose()?,
        amount: u64::try_from(charge.amount).unwrap_or(0),
        amount_refunded: u64::try_from(charge.amount_refunded).unwrap_or(0),
        disputed: charge.disputed,
    })
}

impl StripeReads for StripeState {
    async fn subscription(
        &self,
        id: &SubscriptionId,
    ) -> Result<Option<SubscriptionFacts>, PortError> {
        let stripe = self.stripe().await?;
        let Some(sub) = stripe
            .find(
                &RetrieveSubscription::new(id.as_str()),
                "read Stripe subscription",
            )
            .await?
        else {
            return Ok(None);
        };
        let status = SubStatus::parse(sub.status.as_str()).ok_or_else(|| {
            PortError::new(
                "read Stripe subscription",
                format!("unknown status {}", sub.status.as_str()),
            )
        })?;
        let item = sub.items.data.first();
        let invoice_id = sub
            .latest_invoice
            .as_ref()
            .and_then(|i| {
                i.id()
                    .as_ref()
                    .map(|id| stripe_id(InvoiceId::parse, id.as_str()))
            })
            .transpose()?;
        let latest_invoice = match invoice_id {
            None => None,
            Some(invoice) => stripe
                .find(
                    &RetrieveInvoice::new(invoice.as_str()),
                    "read Stripe invoice",
                )
                .await?
                .map(|inv| InvoiceFacts {
                    id: invoice.clone(),
                    paid: inv.status == Some(InvoiceStatus::Paid),
                    created: inv.created,
                }),
        };
        Ok(Some(SubscriptionFacts {
            id: stripe_id(SubscriptionId::parse, sub.id.as_str())?,
            customer: customer_id(sub.customer.id().as_str())?,
            status,
            lookup_key: item.and_then(|i| plan_key(&i.price)),
            price: item.map(|i| i.price.id.to_string()).unwrap_or_default(),
            created: sub.created,
            current_period_end: item.map(|i| i.current_period_end).unwrap_or_default(),
            cancel_at_period_end: sub.cancel_at_period_end,
            latest_invoice,
            chosen: false,
        }))
    }

    async fn checkout_session(
        &self,
        id: &CheckoutSessionId,
    ) -> Result<Option<SessionFacts>, PortError> {
        let id = id.as_str();
        let stripe = self.stripe().await?;
        let Some(session) = stripe
            .find(
                &RetrieveCheckoutSession::new(id),
                "read Stripe checkout session",
            )
            .await?
        else {
            return Ok(None);
        };
        let mut items = Vec::new();
        let lines = stripe
            .call(
                &ListLineItemsCheckoutSession::new(id).limit(100),
                "read Stripe checkout line items",
            )
            .await?;
        for line in lines.data {
            items.push((
                line.price.as_ref().and_then(plan_key),
                line.quantity.unwrap_or(1),
            ));
        }
        let paid = session.status == Some(CheckoutSessionStatus::Complete)
            && matches!(
                session.payment_status,
                CheckoutSessionPaymentStatus::Paid
                    | CheckoutSessionPaymentStatus::NoPaymentRequired
            );
        Ok(Some(SessionFacts {
            id: stripe_id(CheckoutSessionId::parse, session.id.as_str())?,
            mode: match session.mode {
                CheckoutSessionMode::Subscription => SessionMode::Subscription,
                CheckoutSessionMode::Payment => SessionMode::Payment,
                _ => SessionMode::Other,
            },
            paid,
            customer: session
                .customer
                .as_ref()
                .map(|c| customer_id(c.id().as_str()))
                .transpose()?,
            client_reference_id: session.client_reference_id.clone(),
            email: session
                .customer_details
                .as_ref()
                .and_then(|d| d.email.as_deref())
                .or(session.customer_email.as_deref())
                .and_then(|e| Email::parse(e).ok()),
            subscription: session
                .subscription
                .as_ref()
                .map(|s| stripe_id(SubscriptionId::parse, s.id().as_str()))
                .transpose()?,
            payment_intent: session
                .payment_intent
                .as_ref()
                .map(|p| stripe_id(PaymentIntentId::parse, p.id().as_str()))
                .transpose()?,
            items,
        }))
    }

    async fn charge(&self, id: &ChargeId) -> Result<Option<ChargeFacts>, PortError> {
        self.stripe()
            .await?
            .find(&RetrieveCharge::new(id.as_str()), "read Stripe charge")
            .await?
            .map(charge_facts)
            .transpose()
    }

    async fn session_for_payment(
        &self,
        payment_intent: &PaymentIntentId,
    ) -> Result<Option<CheckoutSessionId>, PortError> {
        let list = self
            .stripe()
            .await?
            .call(
                &ListCheckoutSession::new()
                    .payment_intent(payment_intent.as_str())
                    .limit(1),
                "find Stripe checkout session",
            )
            .await?;
        list.data
            .first()
            .map(|s| stripe_id(CheckoutSessionId::parse, s.id.as_str()))
            .transpose()
    }

    async fn payment_charge(
        &self,
        payment_intent: &PaymentIntentId,
    ) -> Result<Option<ChargeFacts>, PortError> {
        let Some(intent) = self
            .stripe()
            .await?
            .find(
                &RetrievePaymentIntent::new(payment_intent.as_str()),
                "read Stripe payment intent",
            )
            .await?
        else {
            return Ok(None);
        };
        match intent.latest_charge {
            None => Ok(None),
            Some(charge) => {
                self.charge(&stripe_id(ChargeId::parse, charge.id().as_str())?)
                    .await
            }
        }
    }

    async fn paid_pack_sessions(
        &self,
        customer: &StripeCustomerId,
    ) -> Result<Vec<CheckoutSessionId>, PortError> {
        let stripe = self.stripe().await?;
        let mut ids = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut req = ListCheckoutSession::new()
                .customer(customer.as_str())
                .status(CheckoutSessionStatus::Complete)
                .limit(100);
            if let Some(a) = &after {
                req = req.starting_after(a.clone());
            }
            let page = stripe.call(&req, "list Stripe checkout sessions").await?;
            for s in page.data.iter().filter(|s| {
                s.mode == CheckoutSessionMode::Payment
                    && s.payment_status == CheckoutSessionPaymentStatus::Paid
            }) {
                ids.push(stripe_id(CheckoutSessionId::parse, s.id.as_str())?);
            }
            after = page.data.last().map(|s| s.id.to_string());
            if !page.has_more || after.is_none() {
                return Ok(ids);
            }
        }
    }

    async fn event_payload(&self, id: &str) -> Result<Option<String>, PortError> {
        let Some(event) = self
            .stripe()
            .await?
            .find(
                &stripe_core::event::RetrieveEvent::new(id),
                "read Stripe event",
            )
            .await?
        else {
            return Ok(None);
        };
        webhook_payload(&event).map(Some)
    }

    async fn events_since(
        &self,
        since: i64,
        undelivered_only: bool,
    ) -> Result<Vec<String>, PortError> {
        let stripe = self.stripe().await?;
        let mut found = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut req = stripe_core::event::ListEvent::new()
                .created(stripe_types::RangeQueryTs::gte(since))
                .limit(100);
            if undelivered_only {
                req = req.delivery_success(false);
            }
            if let Some(a) = &after {
                req = req.starting_after(a.clone());
            }
            let page = stripe.call(&req, "list Stripe events").await?;
            for event in &page.data {
                found.push((event.created, webhook_payload(event)?));
            }
            after = page.data.last().map(|e| e.id.to_string());
            if !page.has_more || after.is_none() {
                break;
            }
        }
        // Stripe lists newest first (within one second too); a replay goes in the order they
        // happened: reversed, then a stable sort by time keeps that order within a second.
        found.reverse();
        found.sort_by_key(|(created, _)| *created);
        Ok(found.into_iter().map(|(_, payload)| payload).collect())
    }
}

/// An event as a webhook receives it: the JSON Stripe would have delivered.
fn webhook_payload(event: &stripe_shared::Event) -> Result<String, PortError> {
    let object: serde_json::Value =
        serde_json::from_str(&miniserde::json::to_string(&event.data.object))
            .map_err(|e| PortError::new("decode Stripe event object", e))?;
    Ok(serde_json::json!({
        "id": event.id.as_str(),
        "object": "event",
        "type": event.type_.as_str(),
        "created": event.created,
        "data": { "object": object },
    })
    .to_string())
}
