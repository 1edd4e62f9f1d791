//! A Stripe event as creditgate reads it: the few fields it needs and the typed action its type
//! and object ids ask for (`lifecycle` carries the action out). `HANDLED_TYPES` is the list the
//! endpoint is registered for.

use serde_json::Value;

use crate::ids::{ChargeId, CheckoutSessionId, InvalidId, InvoiceId, SubscriptionId};

/// The parts of an event the handler needs; the rest is read from Stripe.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRef {
    pub id: String,
    pub kind: String,
    pub created: i64,
    pub object: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the payload is not a Stripe event: {0}")]
pub struct MalformedEvent(&'static str);

impl EventRef {
    pub fn parse(payload: &[u8]) -> Result<Self, MalformedEvent> {
        let value: Value =
            serde_json::from_slice(payload).map_err(|_| MalformedEvent("not JSON"))?;
        let id = value["id"]
            .as_str()
            .filter(|id| id.starts_with("evt_"))
            .ok_or(MalformedEvent("no evt_ id"))?;
        let kind = value["type"].as_str().ok_or(MalformedEvent("no type"))?;
        let created = value["created"]
            .as_i64()
            .ok_or(MalformedEvent("no created time"))?;
        let object = value["data"]["object"].clone();
        if !object.is_object() {
            return Err(MalformedEvent("no data.object"));
        }
        Ok(Self {
            id: id.to_owned(),
            kind: kind.to_owned(),
            created,
            object,
        })
    }

    fn object_str(&self, path: &[&str]) -> Option<String> {
        let mut v = &self.object;
        for p in path {
            v = &v[*p];
        }
        // An expanded reference is an object with an id.
        v.as_str().or_else(|| v["id"].as_str()).map(str::to_owned)
    }

    /// The invoice's subscription: `parent.subscription_details.subscription` in the current
    /// API, `subscription` in older versions.
    fn invoice_subscription(&self) -> Option<String> {
        self.object_str(&["parent", "subscription_details", "subscription"])
            .or_else(|| self.object_str(&["subscription"]))
    }
}

/// The event types the webhook acts on: what its Stripe endpoint must be registered for
/// (README, Deploying; `scripts/dev` registers the same list with the emulator).
pub const HANDLED_TYPES: &[&str] = &[
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.resumed",
    "customer.subscription.trial_will_end",
    "invoice.paid",
    "invoice.payment_failed",
    "invoice.payment_succeeded",
    "charge.refunded",
    "charge.dispute.created",
];

/// What an event asks of creditgate, decided once from its type and the ids in its object
/// (everything else is read from Stripe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A Checkout Session completed or its delayed payment succeeded.
    CheckoutCompleted { session: CheckoutSessionId },
    /// A subscription changed, or one of its invoices was paid: reconcile with it.
    SyncSubscription { subscription: SubscriptionId },
    TrialWillEnd {
        subscription: SubscriptionId,
        trial_end: i64,
    },
    /// An invoice payment failed: logged, then its subscription (if any) reconciled.
    InvoicePaymentFailed {
        /// `None` if the event's invoice id is missing or malformed.
        invoice: Option<InvoiceId>,
        attempt_count: u64,
        subscription: Option<SubscriptionId>,
    },
    /// A refund or a dispute of a charge.
    ChargeChanged { charge: ChargeId },
    /// Verified but nothing to do, and why (type not handled, an id missing).
    Ignore(String),
}

impl EventRef {
    /// What this event asks for: a typed action, or why it is ignored.
    pub fn action(&self) -> Action {
        /// The id at `path` as an `I`, or why the event is ignored (absent, or not such an id).
        fn typed<I>(
            event: &EventRef,
            what: &str,
            path: &[&str],
            parse: fn(&str) -> Result<I, InvalidId>,
        ) -> Result<I, Action> {
            let raw = event
                .object_str(path)
                .ok_or_else(|| Action::Ignore(format!("{what} without id")))?;
            parse(&raw).map_err(|e| Action::Ignore(format!("{what} with an {e}")))
        }
        let done = |result: Result<Action, Action>| result.unwrap_or_else(|ignore| ignore);
        match self.kind.as_str() {
            "checkout.session.completed" | "checkout.session.async_payment_succeeded" => done(
                typed(self, "session", &["id"], CheckoutSessionId::parse)
                    .map(|session| Action::CheckoutCompleted { session }),
            ),
            "customer.subscription.created"
            | "customer.subscription.updated"
            | "customer.subscription.deleted"
            | "customer.subscription.paused"
            | "customer.subscription.resumed" => done(
                typed(self, "subscription", &["id"], SubscriptionId::parse)
                    .map(|subscription| Action::SyncSubscription { subscription }),
            ),
            "customer.subscription.trial_will_end" => done(
                typed(self, "subscription", &["id"], SubscriptionId::parse).map(|subscription| {
                    Action::TrialWillEnd {
                        subscription,
                        trial_end: self.object["trial_end"].as_i64().unwrap_or_default(),
                    }
                }),
            ),
            // The subscription is reconciled whatever the invoice id says: it is only logged.
            "invoice.payment_failed" => Action::InvoicePaymentFailed {
                invoice: self
                    .object_str(&["id"])
                    .and_then(|i| InvoiceId::parse(&i).ok()),
                attempt_count: self.object["attempt_count"].as_u64().unwrap_or_default(),
                subscription: self
                    .invoice_subscription()
                    .and_then(|s| SubscriptionId::parse(&s).ok()),
            },
            "invoice.paid" | "invoice.payment_succeeded" => match self.invoice_subscription() {
                Some(raw) => match SubscriptionId::parse(&raw) {
                    Ok(subscription) => Action::SyncSubscription { subscription },
                    Err(e) => Action::Ignore(format!("invoice with an {e}")),
                },
                None => Action::Ignore("invoice without a subscription".into()),
            },
            "charge.refunded" => done(
                typed(self, "charge", &["id"], ChargeId::parse)
                    .map(|charge| Action::ChargeChanged { charge }),
            ),
            "charge.dispute.created" => match self.object_str(&["charge"]) {
                Some(_) => done(
                    typed(self, "dispute", &["charge"], ChargeId::parse)
                        .map(|charge| Action::ChargeChanged { charge }),
                ),
                None => Action::Ignore("dispute without a charge".into()),
            },
            other => Action::Ignore(format!("{other} is not handled")),
        }
    }
}

/// Seconds since the epoch as RFC 3339 (UTC); the epoch itself for a time out of range.
pub fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_parses_to_its_reference() {
        let e = EventRef::parse(
            br#"{"id":"evt_1","type":"invoice.paid","created":5,"data":{"object":{"id":"in_1","parent":{"subscription_details":{"subscription":"sub_1"}}}}}"#,
        );
        let e = e.unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(e.invoice_subscription().as_deref(), Some("sub_1"));
    }

    #[test]
    fn garbage_is_a_malformed_event_not_a_panic() {
        assert!(EventRef::parse(b"nope").is_err());
        assert!(EventRef::parse(br#"{"id":"x","type":"a","created":1,"data":{}}"#).is_err());
        assert!(EventRef::parse(br#"{"id":"evt_1","type":"a","created":1,"data":{}}"#).is_err());
    }

    #[test]
    fn epoch_seconds_format_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
    }
}
