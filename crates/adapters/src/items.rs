//! DynamoDB item shapes, separate from the domain types and converted with `TryFrom`.
//! One table: `pk`/`sk` strings (see DESIGN.md "Data").

use domain::facts::{SubStatus, SubscriptionState};
use domain::ids::{
    ApiKeyHash, CheckoutSessionId, Credits, Email, InvalidId, PlanId, StripeCustomerId,
    SubscriptionId, UserSub,
};
use domain::profile::{Access, Profile};
use serde::{Deserialize, Serialize};

pub const PROFILE_SK: &str = "PROFILE";

pub fn user_pk(sub: &UserSub) -> String {
    format!("USER#{sub}")
}

pub fn customer_pk(customer: &StripeCustomerId) -> String {
    format!("CUSTOMER#{customer}")
}

pub fn api_key_pk(hash: &ApiKeyHash) -> String {
    format!("APIKEY#{}", hash.as_str())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileItem {
    pub pk: String,
    pub sk: String,
    pub sub: String,
    pub email: String,
    pub stripe_customer_id: String,
    /// Customers bound by a claim (a string set: `ADD` is idempotent).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub linked_customers: Vec<String>,
    pub plan_id: String,
    pub allowance: u64,
    pub purchased: u64,
    pub access: String,
    pub manager_generation: u64,
    /// The last credit-manager cycle that granted (written by the state machine only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager_cycle: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowance_granted_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_prefix: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<SubscriptionItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowance_source: Option<String>,
    #[serde(default)]
    pub stripe_clock: i64,
    #[serde(default)]
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_plan: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_access: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager_started: Option<u64>,
}

/// The subscription a profile follows (a map attribute on the profile item).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionItem {
    pub id: String,
    pub status: String,
    pub plan_id: String,
    pub price: String,
    pub created: i64,
    pub current_period_end: i64,
    pub cancel_at_period_end: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub past_due_since: Option<i64>,
}

impl From<&SubscriptionState> for SubscriptionItem {
    fn from(s: &SubscriptionState) -> Self {
        Self {
            id: s.id.to_string(),
            status: s.status.as_str().into(),
            plan_id: s.plan.to_string(),
            price: s.price.clone(),
            created: s.created,
            current_period_end: s.current_period_end,
            cancel_at_period_end: s.cancel_at_period_end,
            past_due_since: s.past_due_since,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ItemError {
    #[error("profile item {pk}: {source}")]
    Id {
        pk: String,
        #[source]
        source: InvalidId,
    },
    #[error("profile item {pk}: unknown access state")]
    Access { pk: String },
    #[error("profile item {pk}: unknown subscription status")]
    Status { pk: String },
}

impl From<&Profile> for ProfileItem {
    fn from(p: &Profile) -> Self {
        Self {
            pk: user_pk(&p.sub),
            sk: PROFILE_SK.into(),
            sub: p.sub.to_string(),
            email: p.email.to_string(),
            stripe_customer_id: p.customer.to_string(),
            linked_customers: p.linked_customers.iter().map(|c| c.to_string()).collect(),
            plan_id: p.plan.to_string(),
            allowance: p.allowance.get(),
            purchased: p.purchased.get(),
            access: p.access.as_str().into(),
            manager_generation: p.manager_generation,
            manager_cycle: None,
            allowance_granted_at: None,
            api_key_hash: p.api_key.as_ref().map(|(h, _)| h.as_str().to_owned()),
            api_key_prefix: p.api_key.as_ref().map(|(_, prefix)| prefix.clone()),
            created_at: p.created_at.clone(),
            updated_at: p.created_at.clone(),
            subscription: p.subscription.as_ref().map(SubscriptionItem::from),
            allowance_source: p.allowance_source.clone(),
            stripe_clock: p.stripe_clock,
            version: p.version,
            directory_plan: p
                .directory_synced
                .as_ref()
                .map(|(plan, _)| plan.to_string()),
            directory_access: p
                .directory_synced
                .as_ref()
                .map(|(_, access)| access.as_str().to_owned()),
            manager_started: p.manager_started,
        }
    }
}

impl TryFrom<ProfileItem> for Profile {
    type Error = ItemError;

    fn try_from(item: ProfileItem) -> Result<Self, Self::Error> {
        let pk = item.pk.clone();
        let id = |source| ItemError::Id {
            pk: pk.clone(),
            source,
        };
        Ok(Profile {
            sub: UserSub::parse(&item.sub).map_err(id)?,
            email: Email::parse(&item.email).map_err(id)?,
            customer: StripeCustomerId::parse(&item.stripe_customer_id).map_err(id)?,
            linked_customers: item
                .linked_customers
                .iter()
                .map(|c| StripeCustomerId::parse(c))
                .collect::<Result<_, _>>()
                .map_err(id)?,
            plan: PlanId::parse(&item.plan_id).map_err(id)?,
            allowance: Credits::new(item.allowance),
            purchased: Credits::new(item.purchased),
            access: Access::parse(&item.access).ok_or(ItemError::Access { pk: pk.clone() })?,
            manager_generation: item.manager_generation,
            api_key: match (item.api_key_hash, item.api_key_prefix) {
                (Some(hash), Some(prefix)) => {
                    Some((ApiKeyHash::from_stored(&hash).map_err(id)?, prefix))
                }
                _ => None,
            },
            created_at: item.created_at,
            subscription: item
                .subscription
                .map(|s| -> Result<SubscriptionState, ItemError> {
                    Ok(SubscriptionState {
                        status: SubStatus::parse(&s.status)
                            .ok_or(ItemError::Status { pk: pk.clone() })?,
                        plan: PlanId::parse(&s.plan_id).map_err(id)?,
                        id: SubscriptionId::parse(&s.id).map_err(id)?,
                        price: s.price,
                        created: s.created,
                        current_period_end: s.current_period_end,
                        cancel_at_period_end: s.cancel_at_period_end,
                        past_due_since: s.past_due_since,
                    })
                })
                .transpose()?,
            allowance_source: item.allowance_source,
            stripe_clock: item.stripe_clock,
            version: item.version,
            directory_synced: match (item.directory_plan, item.directory_access) {
                (Some(plan), Some(access)) => Some((
                    PlanId::parse(&plan).map_err(id)?,
                    Access::parse(&access).ok_or(ItemError::Access { pk: pk.clone() })?,
                )),
                _ => None,
            },
            manager_started: item.manager_started,
        })
    }
}

/// `CUSTOMER#<cus_id>` / `USER`: webhooks arrive with customer ids; this finds the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerLinkItem {
    pub pk: String,
    pub sk: String,
    pub sub: String,
}

impl CustomerLinkItem {
    pub fn new(customer: &StripeCustomerId, sub: &UserSub) -> Self {
        Self {
            pk: customer_pk(customer),
            sk: "USER".into(),
            sub: sub.to_string(),
        }
    }
}

pub fn hold_pk(email: &Email) -> String {
    format!("HOLD#{}", email.normalized())
}

pub fn hold_sk(session: &CheckoutSessionId) -> String {
    format!("SESSION#{session}")
}

/// `HOLD#<email>` / `SESSION#<cs_id>`: a pay-first purchase held for the owner of an email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldItem {
    pub pk: String,
    pub sk: String,
    pub session: String,
    pub customer: String,
    pub email: String,
    /// `subscription` or `payment`.
    pub mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<String>,
    pub held_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_at: Option<String>,
}

impl From<&domain::ports::HeldPurchase> for HoldItem {
    fn from(h: &domain::ports::HeldPurchase) -> Self {
        use domain::ports::SessionMode;
        Self {
            pk: hold_pk(&h.email),
            sk: hold_sk(&h.session),
            session: h.session.to_string(),
            customer: h.customer.to_string(),
            email: h.email.normalized().to_string(),
            mode: match h.mode {
                SessionMode::Subscription => "subscription",
                SessionMode::Payment => "payment",
                SessionMode::Other => "other",
            }
            .into(),
            plan_id: h.plan.as_ref().map(|p| p.to_string()),
            held_at: h.held_at,
            claimed_by: h.claimed_by.as_ref().map(|s| s.to_string()),
            claimed_at: None,
        }
    }
}

impl TryFrom<HoldItem> for domain::ports::HeldPurchase {
    type Error = InvalidId;

    fn try_from(item: HoldItem) -> Result<Self, InvalidId> {
        use domain::ports::SessionMode;
        Ok(Self {
            session: CheckoutSessionId::parse(&item.session)?,
            customer: StripeCustomerId::parse(&item.customer)?,
            email: Email::parse(&item.email)?,
            mode: match item.mode.as_str() {
                "subscription" => SessionMode::Subscription,
                "payment" => SessionMode::Payment,
                _ => SessionMode::Other,
            },
            plan: item.plan_id.as_deref().map(PlanId::parse).transpose()?,
            held_at: item.held_at,
            claimed_by: item.claimed_by.as_deref().map(UserSub::parse).transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    use aws_sdk_dynamodb::types::AttributeValue;

    fn profile() -> Result<Profile, InvalidId> {
        Ok(Profile::new_signup(
            UserSub::parse("0f6c2a4e-1111-2222-3333-444455556666")?,
            Email::parse("ada@example.com")?,
            StripeCustomerId::parse("cus_ABC123")?,
            PlanId::parse("free")?,
            "2026-11-23T15:00:00Z".into(),
        ))
    }

    #[test]
    fn a_profile_round_trips_through_its_dynamodb_item() -> anyhow::Result<()> {
        let original = profile()?;
        let item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(ProfileItem::from(&original))?;
        assert_eq!(
            item.get("pk"),
            Some(&AttributeValue::S(
                "USER#0f6c2a4e-1111-2222-3333-444455556666".into()
            ))
        );
        assert_eq!(item.get("allowance"), Some(&AttributeValue::N("0".into())));
        assert_eq!(
            item.get("manager_generation"),
            Some(&AttributeValue::N("1".into()))
        );
        let back: ProfileItem = serde_dynamo::from_item(item)?;
        assert_eq!(Profile::try_from(back)?, original);
        Ok(())
    }

    #[test]
    fn a_profile_with_an_api_key_round_trips() -> anyhow::Result<()> {
        let mut original = profile()?;
        let key = domain::ids::ApiKey::from_entropy([1; 32]);
        original.api_key = Some((key.hash(), key.prefix()));
        let item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(ProfileItem::from(&original))?;
        assert_eq!(
            item.get("api_key_prefix"),
            Some(&AttributeValue::S("cgk_01010101".into()))
        );
        let back: ProfileItem = serde_dynamo::from_item(item)?;
        assert_eq!(Profile::try_from(back)?, original);
        Ok(())
    }

    #[test]
    fn a_profile_following_a_subscription_round_trips() -> anyhow::Result<()> {
        let mut original = profile()?;
        original.subscription = Some(SubscriptionState {
            id: SubscriptionId::parse("sub_1")?,
            status: SubStatus::PastDue,
            plan: PlanId::parse("basic")?,
            price: "price_1".into(),
            created: 10,
            current_period_end: 20,
            cancel_at_period_end: true,
            past_due_since: Some(15),
        });
        original.allowance_source = Some("in_1:basic".into());
        original.stripe_clock = 30;
        original.version = 4;
        original.directory_synced = Some((PlanId::parse("basic")?, Access::Disabled));
        original.manager_started = Some(2);
        let item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(ProfileItem::from(&original))?;
        let back: ProfileItem = serde_dynamo::from_item(item)?;
        assert_eq!(Profile::try_from(back)?, original);
        Ok(())
    }

    #[test]
    fn a_corrupt_item_is_an_error_naming_the_item() -> anyhow::Result<()> {
        let mut item = ProfileItem::from(&profile()?);
        item.stripe_customer_id = "not-a-customer".into();
        let err = Profile::try_from(item)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("USER#0f6c2a4e") && err.contains("Stripe customer id"),
            "{err}"
        );
        Ok(())
    }
}
