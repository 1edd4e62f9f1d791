//! Subscriptions, invoices and the billing test routes (clock, payment method). Each handler
//! reads the parameters, in the order Stripe's errors come, and calls the billing engine
//! ([`crate::engine::subscriptions`], [`crate::engine::clock`], [`crate::engine::dunning`]) with
//! typed inputs.

use serde_json::Value;

use crate::engine::store::{Page, State};
use crate::engine::subscriptions::{ItemChange, SubscriptionFilter, SubscriptionUpdate};
use crate::engine::{clock, dunning, subscriptions};
use crate::error::ApiError;
use crate::params::Params;
use crate::server::handlers::Op;

pub const SUBSCRIPTION_UPDATE: &[&str] = &[
    "items",
    "proration_behavior",
    "cancel_at_period_end",
    "metadata",
];
pub const SUBSCRIPTION_LIST: &[&str] = &[
    "customer",
    "status",
    "price",
    "limit",
    "starting_after",
    "ending_before",
];
pub const SUBSCRIPTION_CANCEL: &[&str] = &["invoice_now", "prorate"];
pub const CLOCK_ADVANCE: &[&str] = &["seconds"];
pub const PAYMENT_METHOD: &[&str] = &["failing"];

pub const LIST_SUBSCRIPTIONS: Op = Op {
    allowed: SUBSCRIPTION_LIST,
    apply: |state, _, params| list_subscriptions(state, params),
};
pub const RETRIEVE_SUBSCRIPTION: Op = Op {
    allowed: &[],
    apply: |state, id, _| subscriptions::fetch(state, id),
};
pub const UPDATE_SUBSCRIPTION: Op = Op {
    allowed: SUBSCRIPTION_UPDATE,
    apply: update_subscription,
};
pub const CANCEL_SUBSCRIPTION: Op = Op {
    allowed: SUBSCRIPTION_CANCEL,
    apply: cancel_subscription,
};
/// `GET /_emulator/subscriptions/{id}`: what the emulator records beyond Stripe's object.
pub const EMULATOR_VIEW: Op = Op {
    allowed: &[],
    apply: |state, id, _| subscriptions::emulator_view(state, id),
};
pub const RETRIEVE_INVOICE: Op = Op {
    allowed: &[],
    apply: |state, id, _| state.invoices.fetch("invoice", id, "invoice"),
};
/// `POST /_emulator/clock/advance` with `seconds`.
pub const ADVANCE_CLOCK: Op = Op {
    allowed: CLOCK_ADVANCE,
    apply: |state, _, params| advance_clock(state, params),
};
/// `POST /_emulator/customers/{id}/payment_method` with `failing`.
pub const SET_PAYMENT_METHOD: Op = Op {
    allowed: PAYMENT_METHOD,
    apply: set_payment_method,
};

fn list_subscriptions(state: &State, params: Params) -> Result<Value, ApiError> {
    let filter = SubscriptionFilter {
        customer: params.str("customer")?,
        status: params.str("status")?,
        price: params.str("price")?,
    };
    subscriptions::list_subscriptions(state, &filter, &Page::read(&params)?)
}

/// Stripe's errors in Stripe's order: the subscription (404, then canceled), the proration
/// behaviour (recorded as soon as it is read, as before), each item (its parameters, the item,
/// the price), `cancel_at_period_end`, the metadata.
fn update_subscription(state: &mut State, id: &str, params: Params) -> Result<Value, ApiError> {
    let old = subscriptions::fetch_live(state, id)?;
    if let Some(behavior) = params.str("proration_behavior")? {
        if !subscriptions::PRORATION_BEHAVIORS.contains(&behavior.as_str()) {
            return Err(ApiError::invalid(
                "Invalid proration_behavior",
                Some("proration_behavior"),
            ));
        }
        subscriptions::record_proration(state, id, behavior);
    }
    let mut items = Vec::new();
    if let Some(changes) = params.objects("items")? {
        for (index, item) in changes.iter().enumerate() {
            item.refuse_unknown(&["id", "price", "quantity"], &format!("items[{index}]"))?;
            let item_id = item
                .required_str("id")
                .map_err(|_| ApiError::missing_param(&format!("items[{index}][id]")))?;
            let position = subscriptions::item_position(&old, &item_id, index)?;
            let price = match item.str("price")? {
                Some(price_id) => Some(subscriptions::recurring_price(state, &price_id, index)?),
                None => None,
            };
            items.push(ItemChange {
                position,
                price,
                quantity: item.int("quantity")?,
            });
        }
    }
    let cancel_at_period_end = params.bool("cancel_at_period_end")?;
    let metadata = params.merge_metadata(&old["metadata"])?;
    subscriptions::update_subscription(
        state,
        id,
        SubscriptionUpdate {
            items,
            cancel_at_period_end,
            metadata,
        },
    )
}

fn cancel_subscription(state: &mut State, id: &str, params: Params) -> Result<Value, ApiError> {
    subscriptions::fetch(state, id)?;
    let prorate = params.bool("prorate")?.unwrap_or(false);
    subscriptions::cancel_subscription(state, id, prorate)
}

fn advance_clock(state: &mut State, params: Params) -> Result<Value, ApiError> {
    let seconds = params
        .int("seconds")?
        .ok_or_else(|| ApiError::missing_param("seconds"))?;
    clock::advance_clock(state, seconds)
}

fn set_payment_method(
    state: &mut State,
    customer: &str,
    params: Params,
) -> Result<Value, ApiError> {
    dunning::check_customer(state, customer)?;
    let failing = params
        .bool("failing")?
        .ok_or_else(|| ApiError::missing_param("failing"))?;
    dunning::set_payment_method(state, customer, failing)
}
