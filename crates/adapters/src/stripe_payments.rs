//! The `Payments` port through async-stripe: Checkout Sessions, in-place plan changes,
//! cancellation and billing portal sessions. Every create carries an idempotency key.

use std::collections::HashMap;

use domain::catalogue::SaleMode;
use domain::facts::SubStatus;
use domain::ids::StripeCustomerId;
use domain::ports::{
    CreatedSession, LiveSubscription, Payments, PortError, Refusal, SessionRequest,
};
use stripe::{IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
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

impl StripeState {
    async fn price_for(&self, lookup_key: &str) -> Result<String, PortError> {
        let prices = ListPrice::new()
            .lookup_keys(vec![lookup_key.to_owned()])
            .active(true)
            .send(&self.client().await?)
            .await
            .map_err(|e| PortError::new("find Stripe price", e))?;
        prices
            .data
            .first()
            .map(|p| p.id.to_string())
            .ok_or_else(|| {
                PortError::new(
                    "find Stripe price",
                    format!(
                        "no active price has lookup key {lookup_key}: run `creditgate plans sync`"
                    ),
                )
            })
    }
}

impl Payments for StripeState {
    async fn create_checkout_session(
        &self,
        request: &SessionRequest,
    ) -> Result<CreatedSession, PortError> {
        let price = self.price_for(&request.lookup_key).await?;
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
        let session = create
            .customize()
            .request_strategy(idempotent(&request.idempotency_key)?)
            .send(&self.client().await?)
            .await
            .map_err(|e| keyed_error("create Stripe checkout session", e))?;
        Ok(CreatedSession {
            id: session.id.to_string(),
            url: session.url.unwrap_or_default(),
        })
    }

    async fn live_subscriptions(
        &self,
        customers: &[StripeCustomerId],
    ) -> Result<Vec<LiveSubscription>, PortError> {
        let mut live = Vec::new();
        for customer in customers {
            let list = ListSubscription::new()
                .customer(customer.as_str())
                .limit(100)
                .send(&self.client().await?)
                .await
                .map_err(|e| PortError::new("list Stripe subscriptions", e))?;
            for s in &list.data {
                let Some(status) = SubStatus::parse(s.status.as_str()).filter(|st| st.is_live())
                else {
                    continue;
                };
                let item = s.items.data.first();
                live.push(LiveSubscription {
                    id: s.id.to_string(),
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
        subscription: &str,
        lookup_key: &str,
        idempotency_key: &str,
    ) -> Result<(), PortError> {
        let price = self.price_for(lookup_key).await?;
        let current = RetrieveSubscription::new(subscription)
            .send(&self.client().await?)
            .await
            .map_err(|e| PortError::new("read Stripe subscription", e))?;
        let item_id = current
            .items
            .data
            .first()
            .map(|i| i.id.to_string())
            .ok_or_else(|| PortError::new("change plan", "the subscription has no item"))?;
        let mut item = UpdateSubscriptionItems::new();
        item.id = Some(item_id);
        item.price = Some(price);
        UpdateSubscription::new(subscription)
            .items(vec![item])
            .proration_behavior(UpdateSubscriptionProrationBehavior::AlwaysInvoice)
            .customize()
            .request_strategy(idempotent(idempotency_key)?)
            .send(&self.client().await?)
            .await
            .map_err(|e| keyed_error("change Stripe subscription price", e))?;
        Ok(())
    }

    async fn cancel_subscription(
        &self,
        subscription: &str,
        at_period_end: bool,
    ) -> Result<(), PortError> {
        if at_period_end {
            UpdateSubscription::new(subscription)
                .cancel_at_period_end(true)
                .send(&self.client().await?)
                .await
                .map_err(|e| PortError::new("cancel Stripe subscription at period end", e))?;
        } else {
            CancelSubscription::new(subscription)
                .send(&self.client().await?)
                .await
                .map_err(|e| PortError::new("cancel Stripe subscription", e))?;
        }
        Ok(())
    }

    async fn cancel_duplicate(&self, subscription: &str) -> Result<(), PortError> {
        let result = CancelSubscription::new(subscription)
            .prorate(true)
            .invoice_now(true)
            .customize()
            .request_strategy(idempotent(&format!(
                "creditgate-one-subscription-{subscription}"
            ))?)
            .send(&self.client().await?)
            .await;
        let Err(e) = result else {
            return Ok(());
        };
        // Already canceled (by a concurrent delivery, or by the user): done.
        let now = RetrieveSubscription::new(subscription)
            .send(&self.client().await?)
            .await
            .map_err(|e| PortError::new("read Stripe subscription", e))?;
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
        let session = CreateBillingPortalSession::new()
            .customer(customer.as_str())
            .return_url(return_url)
            .send(&self.client().await?)
            .await
            .map_err(|e| PortError::new("create Stripe billing portal session", e))?;
        Ok(session.url)
    }
}
