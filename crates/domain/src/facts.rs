//! What creditgate reads from Stripe: plain data, as Stripe has it now (never taken from an
//! event's payload). The ports return these; `lifecycle` decides what they mean.

use crate::ids::{ChargeId, InvoiceId, PaymentIntentId, PlanId, StripeCustomerId, SubscriptionId};

/// A Stripe subscription's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubStatus {
    Trialing,
    Active,
    PastDue,
    Unpaid,
    Canceled,
    Incomplete,
    IncompleteExpired,
    Paused,
}

impl SubStatus {
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "trialing" => Self::Trialing,
            "active" => Self::Active,
            "past_due" => Self::PastDue,
            "unpaid" => Self::Unpaid,
            "canceled" => Self::Canceled,
            "incomplete" => Self::Incomplete,
            "incomplete_expired" => Self::IncompleteExpired,
            "paused" => Self::Paused,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trialing => "trialing",
            Self::Active => "active",
            Self::PastDue => "past_due",
            Self::Unpaid => "unpaid",
            Self::Canceled => "canceled",
            Self::Incomplete => "incomplete",
            Self::IncompleteExpired => "incomplete_expired",
            Self::Paused => "paused",
        }
    }

    /// Stripe may still bill it (everything but the two terminal states).
    pub fn is_live(self) -> bool {
        !matches!(self, Self::Canceled | Self::IncompleteExpired)
    }

    /// How good a live subscription's standing is, for choosing the one a user keeps:
    /// paying, then past due, then lapsed, then not yet paid (incomplete).
    pub(crate) fn rank(self) -> u8 {
        match self {
            Self::Active | Self::Trialing => 4,
            Self::PastDue => 3,
            Self::Unpaid | Self::Paused => 2,
            Self::Incomplete => 1,
            Self::Canceled | Self::IncompleteExpired => 0,
        }
    }

    /// Billing the customer now (incomplete ones are not paid for yet and are never cancelled
    /// as a duplicate: that would cancel a payment in progress).
    pub fn bills(self) -> bool {
        self.rank() >= 2
    }
}

/// A subscription's latest invoice, as Stripe has it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceFacts {
    pub id: InvoiceId,
    pub paid: bool,
    /// When it was created (Stripe's clock): a failed renewal has been past due since then.
    pub created: i64,
}

/// A subscription as Stripe has it now (read from Stripe, never from the event payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionFacts {
    pub id: SubscriptionId,
    pub customer: StripeCustomerId,
    pub status: SubStatus,
    /// The first item's price lookup key.
    pub lookup_key: Option<String>,
    pub price: String,
    pub created: i64,
    pub current_period_end: i64,
    pub cancel_at_period_end: bool,
    pub latest_invoice: Option<InvoiceFacts>,
    /// Chosen by `lifecycle::keep_one` from every live subscription bound to the user: the profile
    /// follows it whatever it followed before.
    pub chosen: bool,
}

/// The subscription a profile follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionState {
    pub id: SubscriptionId,
    pub status: SubStatus,
    pub plan: PlanId,
    pub price: String,
    pub created: i64,
    pub current_period_end: i64,
    pub cancel_at_period_end: bool,
    /// Since when the latest invoice has been unpaid, while the subscription is past due.
    pub past_due_since: Option<i64>,
}

/// A charge as Stripe has it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeFacts {
    pub id: ChargeId,
    pub customer: Option<StripeCustomerId>,
    pub payment_intent: Option<PaymentIntentId>,
    pub amount: u64,
    pub amount_refunded: u64,
    pub disputed: bool,
}
