//! The `Payments` port through async-stripe: Checkout Sessions, in-place plan changes,
//! cancellation and billing portal sessions. Every create carries an idempotency key.

use std::collections::HashMap;

use domain::catalogue::SaleMode;
use domain::facts::SubStatus;
use domain::ids::{CheckoutSessionId, StripeCustomerId, SubscriptionId};

use crate::stripe_reads::stripe_id;
use domain::ports::{
    CreatedSession, LiveSubscription, Payments, PortError, Refusal, SessionRequest,
};
use stripe::{IdempotencyKey, RequestStrategy, StripeError};
use stripe_billing::billing_portal_session::CreateBillingPortalSession;
use stripe_billing::subscription::{
    CancelSubscription, ListSubscription, RetrieveSubscription, UpdateSubscription,
    UpdateSubscriptionItems, UpdateSubscriptionProrationBehavior,
};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionPaymentIntentData,
    CreateCheckoutSessionSubscriptionData,
};
use stripe_product::price::ListPrice;
use stripe_shared::{ApiErrorsType, CheckoutSessionMode};

use crate::stripe_api::RetryingClient;
use crate::stripe_reads::StripeState;

fn idempotent(key: &str) -> Result<RequestStrategy, PortError> {
    IdempotencyKey::new(key)
        .map(RequestStrategy::Idempotent)
        .map_err(|e| PortError::new("build idempotency key", e))
}

/// A Stripe error on a request whose idempotency key the caller chose: Stripe's
/// `idempotency_error` (the key was used for another request) is the caller's to fix.
fn keyed_error(operation: &'static str, e: StripeError) -> PortError {
    let reused =
        matches!(&e, StripeError::Stripe(api, _) if api.type_ == ApiErrorsType::IdempotencyError);
    let error = PortError::new(operation, e);
    if reused {
        error.refused(Refusal::IdempotencyKeyReused)
    } else {
        error
    }
}

async fn price_for(stripe: &RetryingClient, lookup_key: &str) -> Result<String, PortError> {
    let prices = stripe
        .call(
            &ListPrice::new()
                .lookup_keys(vec![lookup_key.to_owned()])
                .active(true),
            "find Stripe price",
        )
        .await?;
    prices
        .data
        .first()
        .map(|p| p.id.to_string())
        .ok_or_else(|| {
            PortError::new(
                "find Stripe price",
                format!("no active price has lookup key {lookup_key}: run `creditgate plans sync`"),
            )
        })
}

impl Payments for StripeState {
    async fn create_checkout_session(
        &self,
        request: &SessionRequest,
    ) -> Result<CreatedSession, PortError> {
        let stripe = self.stripe().await?;
        let price = price_for(&stripe, &request.lookup_key).await?;
        let metadata = HashMap::from([
            ("cognito_sub".to_owned(), request.sub.to_string()),
            ("creditgate_plan".to_owned(), request.plan.to_string()),
            (
                "creditgate_mode".to_owned(),
                request.mode.as_str().to_owned(),
            ),
        ]);
        let mut item = CreateCheckoutSessionLineItems::new();
        item.price = Some(price);
        item.quantity = Some(1);
        let mut create = CreateCheckoutSession::new()
            .customer(request.customer.as_str())
            .client_reference_id(request.sub.as_str())
            .line_items(vec![item])
            .metadata(metadata.clone())
            .success_url(request.success_url.as_str())
            .cancel_url(request.cancel_url.as_str());
        create = match request.mode {
            SaleMode::Subscription => {
                let mut data = CreateCheckoutSessionSubscriptionData::new();
                data.metadata = Some(metadata);
                data.trial_period_days = (request.trial_days > 0).then_some(request.trial_days);
                create
                    .mode(CheckoutSessionMode::Subscription)
                    .subscription_data(data)
            }
            SaleMode::Pack => {
                let mut data = CreateCheckoutSessionPaymentIntentData::new();
                data.metadata = Some(metadata);
                create
                    .mode(CheckoutSessionMode::Payment)
                    .payment_intent_data(data)
            }
        };
        let what = "create Stripe checkout session";
        let session = stripe
            .send(&create, Some(&idempotent(&request.idempotency_key)?), what)
            .await
            .map_err(|e| keyed_error(what, e))?;
        Ok(CreatedSession {
            id: stripe_id(CheckoutSessionId::parse, session.id.as_str())?,
            url: session.url.unwrap_or_default(),
        })
    }

    async fn live_subscriptions(
        &self,
        customers: &[StripeCustomerId],
    ) -> Result<Vec<LiveSubscription>, PortError> {
        let stripe = self.stripe().await?;
        let mut live = Vec::new();
        for customer in customers {
            let list = stripe
                .call(
                    &ListSubscription::new()
                        .customer(customer.as_str())
                        .limit(100),
                    "list Stripe subscriptions",
                )
                .await?;
            for s in &list.data {
                let Some(status) = SubStatus::parse(s.status.as_str()).filter(|st| st.is_live())
                else {
                    continue;
                };
                let item = s.items.data.first();
                live.push(LiveSubscription {
                    id: stripe_id(SubscriptionId::parse, s.id.as_str())?,
                    customer: customer.clone(),
                    status,
                    created: s.created,
                    lookup_key: item.and_then(|i| i.price.lookup_key.clone()),
                    cancel_at_period_end: s.cancel_at_period_end,
                    current_period_end: item.map(|i| i.current_period_end).unwrap_or_default(),
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
        let stripe = self.stripe().await?;
        let price = price_for(&stripe, lookup_key).await?;
        let current = stripe
            .call(
                &RetrieveSubscription::new(subscription),
                "read Stripe subscription",
            )
            .await?;
        let item_id = current
            .items
            .data
            .first()
            .map(|i| i.id.to_string())
            .ok_or_else(|| PortError::new("change plan", "the subscription has no item"))?;
        let mut item = UpdateSubscriptionItems::new();
        item.id = Some(item_id);
        item.price = Some(price);
        let update = UpdateSubscription::new(subscription)
            .items(vec![item])
            .proration_behavior(UpdateSubscriptionProrationBehavior::AlwaysInvoice);
        let what = "change Stripe subscription price";
        stripe
            .send(&update, Some(&idempotent(idempotency_key)?), what)
            .await
            .map_err(|e| keyed_error(what, e))?;
        Ok(())
    }

    async fn cancel_subscription(
        &self,
        subscription: &SubscriptionId,
        at_period_end: bool,
    ) -> Result<(), PortError> {
        let subscription = subscription.as_str();
        let stripe = self.stripe().await?;
        if at_period_end {
            stripe
                .call(
                    &UpdateSubscription::new(subscription).cancel_at_period_end(true),
                    "cancel Stripe subscription at period end",
                )
                .await?;
        } else {
            stripe
                .call(
                    &CancelSubscription::new(subscription),
                    "cancel Stripe subscription",
                )
                .await?;
        }
        Ok(())
    }

    async fn cancel_duplicate(&self, subscription: &SubscriptionId) -> Result<(), PortError> {
        let subscription = subscription.as_str();
        let stripe = self.stripe().await?;
        let cancel = CancelSubscription::new(subscription)
            .prorate(true)
            .invoice_now(true);
        let key = idempotent(&format!("creditgate-one-subscription-{subscription}"))?;
        let result = stripe
            .send(&cancel, Some(&key), "cancel duplicate Stripe subscription")
            .await;
        let Err(e) = result else {
            return Ok(());
        };
        // Already canceled (by a concurrent delivery, or by the user): done.
        let now = stripe
            .call(
                &RetrieveSubscription::new(subscription),
                "read Stripe subscription",
            )
            .await?;
        match SubStatus::parse(now.status.as_str()) {
            Some(status) if !status.is_live() => Ok(()),
            _ => Err(PortError::new("cancel duplicate Stripe subscription", e)),
        }
    }

    async fn portal_session(
        &self,
        customer: &StripeCustomerId,
        return_url: &str,
    ) -> Result<String, PortError> {
        let session = self
            .stripe()
            .await?
            .call(
                &CreateBillingPortalSession::new()
                    .customer(customer.as_str())
                    .return_url(return_url),
                "create Stripe billing portal session",
            )
            .await?;
        Ok(session.url)
    }
}
