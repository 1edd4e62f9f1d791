//! `impl Payments for FakeStripe`: Checkout Sessions, subscription changes and cancellations,
//! billing portal sessions.

use domain::facts::SubStatus;
use domain::ids::{CheckoutSessionId, StripeCustomerId, SubscriptionId};
use domain::ports::{CreatedSession, LiveSubscription, Payments, PortError, SessionRequest};

use super::json::sub_json;
use super::{FakeStripe, error, made};

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
