//! The webhook's `Ledger` on DynamoDB: customer links, `GRANT#<source>` entries and the
//! conditional profile writes (DESIGN.md "Data"). Credit changes are relative (`purchased`) or
//! conditioned on the value read (`allowance` caps), so a metered spend in between is never
//! overwritten.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use domain::ids::{CheckoutSessionId, Credits, PaymentIntentId, PlanId, StripeCustomerId, UserSub};
use domain::ports::{Created, HeldPurchase, Ledger, PortError, Saved};
use domain::profile::Access;
use domain::writes::{AllowanceWrite, PackGrant, ProfileWrite};
use serde::{Deserialize, Serialize};

use crate::dynamo::DynamoStore;
use crate::items::{
    CustomerLinkItem, HoldItem, PROFILE_SK, SubscriptionItem, customer_pk, hold_pk, hold_sk,
    user_pk,
};

/// `USER#<sub>` / `GRANT#<source>`: one credit grant and what later took from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantItem {
    pub pk: String,
    pub sk: String,
    /// `invoice` or `pack`.
    pub cause: String,
    pub credits: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_intent: Option<String>,
    #[serde(default)]
    pub revoked: u64,
    #[serde(default)]
    pub removed: u64,
    pub created_at: String,
}

/// A pack grant whose profile keeps changing under it (spends racing the capped write) is
/// tried this many times, then reported (the webhook answers 500 and Stripe retries).
const PACK_ATTEMPTS: usize = 4;

pub fn grant_sk(source: &str) -> String {
    format!("GRANT#{source}")
}

fn key(pk: String, sk: String) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(pk)),
        ("sk".to_owned(), AttributeValue::S(sk)),
    ])
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn now() -> String {
    domain::stripe_events::rfc3339(crate::unix_now())
}

fn pack_from(item: GrantItem) -> Result<PackGrant, PortError> {
    let decode = |e| PortError::new("decode pack grant", e);
    let session = CheckoutSessionId::parse(item.sk.strip_prefix("GRANT#").unwrap_or(&item.sk))
        .map_err(decode)?;
    Ok(PackGrant {
        session,
        plan: PlanId::parse(item.plan_id.as_deref().unwrap_or_default())
            .map_err(|e| PortError::new("decode pack grant", e))?,
        credits: Credits::new(item.credits),
        payment_intent: item
            .payment_intent
            .as_deref()
            .map(PaymentIntentId::parse)
            .transpose()
            .map_err(decode)?,
        revoked: Credits::new(item.revoked),
        removed: Credits::new(item.removed),
    })
}

fn cancelled<E>(err: &SdkError<E>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    matches!(
        err.as_service_error().and_then(|e| e.code()),
        Some("TransactionCanceledException" | "ConditionalCheckFailedException")
    )
}

impl DynamoStore {
    /// Every held purchase, claimed ones included, oldest first. A Scan: an operator's tool.
    pub async fn all_held_purchases(&self) -> Result<Vec<HeldPurchase>, PortError> {
        let mut held = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client()
                .scan()
                .table_name(self.table())
                .filter_expression("begins_with(pk, :hold)")
                .expression_attribute_values(":hold", s("HOLD#"))
                .set_exclusive_start_key(start)
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| PortError::new("list held purchases", e))?;
            for item in page.items.unwrap_or_default() {
                let item: HoldItem = serde_dynamo::from_item(item)
                    .map_err(|e| PortError::new("decode held purchase", e))?;
                held.push(
                    HeldPurchase::try_from(item)
                        .map_err(|e| PortError::new("decode held purchase", e))?,
                );
            }
            start = page.last_evaluated_key.filter(|k| !k.is_empty());
            if start.is_none() {
                break;
            }
        }
        held.sort_by_key(|h| h.held_at);
        Ok(held)
    }

    async fn get(
        &self,
        pk: String,
        sk: String,
    ) -> Result<Option<HashMap<String, AttributeValue>>, PortError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| PortError::new("read item", e))?;
        Ok(out.item)
    }

    /// One transaction; a cancelled one (a condition failed) is a `Conflict`, not an error.
    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
        operation: &'static str,
    ) -> Result<Saved, PortError> {
        match self
            .client()
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(Saved::Written),
            Err(e) if cancelled(&e) => Ok(Saved::Conflict),
            Err(e) => Err(PortError::new(operation, e)),
        }
    }

    fn profile_update(&self, write: &ProfileWrite) -> Result<Update, PortError> {
        let after = &write.after;
        let mut set = vec![
            "plan_id = :plan",
            "#access = :access",
            "stripe_clock = :clock",
            "version = :next",
            "updated_at = :now",
        ];
        let mut remove = Vec::new();
        let mut condition =
            "attribute_exists(pk) AND (attribute_not_exists(version) OR version = :version)"
                .to_owned();
        let mut values = HashMap::from([
            (":plan".to_owned(), s(after.plan.as_str())),
            (":access".to_owned(), s(after.access.as_str())),
            (":clock".to_owned(), n(after.stripe_clock)),
            (":version".to_owned(), n(write.before.version)),
            (":next".to_owned(), n(write.before.version + 1)),
            (":now".to_owned(), s(now())),
        ]);
        match &after.subscription {
            Some(sub) => {
                set.push("subscription = :subscription");
                values.insert(
                    ":subscription".into(),
                    serde_dynamo::to_attribute_value(SubscriptionItem::from(sub))
                        .map_err(|e| PortError::new("encode subscription", e))?,
                );
            }
            None => remove.push("subscription"),
        }
        match &after.allowance_source {
            Some(source) => {
                set.push("allowance_source = :source");
                values.insert(":source".into(), s(source.as_str()));
            }
            None => remove.push("allowance_source"),
        }
        if write.generation_bumped {
            set.push("manager_generation = :generation");
            values.insert(":generation".into(), n(after.manager_generation));
            remove.push("manager_cycle");
        }
        match write.allowance {
            AllowanceWrite::Keep => {}
            AllowanceWrite::Reset(to) => {
                set.push("allowance = :allowance");
                set.push("allowance_granted_at = :now");
                values.insert(":allowance".into(), n(to.get()));
            }
            AllowanceWrite::Cap { to, seen } => {
                set.push("allowance = :allowance");
                condition.push_str(" AND allowance = :seen");
                values.insert(":allowance".into(), n(to.get()));
                values.insert(":seen".into(), n(seen.get()));
            }
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        Update::builder()
            .table_name(self.table())
            .set_key(Some(key(user_pk(&after.sub), PROFILE_SK.to_owned())))
            .update_expression(expression)
            .condition_expression(condition)
            .expression_attribute_names("#access", "access")
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(|e| PortError::new("build profile update", e))
    }
}

impl Ledger for DynamoStore {
    async fn customer_owner(
        &self,
        customer: &StripeCustomerId,
    ) -> Result<Option<UserSub>, PortError> {
        let Some(item) = self.get(customer_pk(customer), "USER".into()).await? else {
            return Ok(None);
        };
        let link: CustomerLinkItem =
            serde_dynamo::from_item(item).map_err(|e| PortError::new("decode customer link", e))?;
        UserSub::parse(&link.sub)
            .map(Some)
            .map_err(|e| PortError::new("decode customer link", e))
    }

    async fn hold_purchase(&self, held: &HeldPurchase) -> Result<Created, PortError> {
        let item = serde_dynamo::to_item(HoldItem::from(held))
            .map_err(|e| PortError::new("encode held purchase", e))?;
        match self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
        {
            Ok(_) => Ok(Created::New),
            Err(e) if cancelled(&e) => Ok(Created::AlreadyExisted),
            Err(e) => Err(PortError::new("hold purchase", e)),
        }
    }

    async fn held_purchases(
        &self,
        email: &domain::ids::Email,
    ) -> Result<Vec<HeldPurchase>, PortError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client()
                .query()
                .table_name(self.table())
                .key_condition_expression("pk = :pk AND begins_with(sk, :session)")
                .expression_attribute_values(":pk", s(hold_pk(email)))
                .expression_attribute_values(":session", s("SESSION#"))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| PortError::new("read held purchases", e))?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        let mut held = items
            .into_iter()
            .map(|item| {
                serde_dynamo::from_item::<_, HoldItem>(item)
                    .map_err(|e| PortError::new("decode held purchase", e))
                    .and_then(|h| {
                        HeldPurchase::try_from(h)
                            .map_err(|e| PortError::new("decode held purchase", e))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        held.sort_by_key(|h| h.held_at);
        Ok(held)
    }

    async fn claim_purchase(&self, held: &HeldPurchase, sub: &UserSub) -> Result<Saved, PortError> {
        let build = |e| PortError::new("build claim", e);
        let hold = Update::builder()
            .table_name(self.table())
            .set_key(Some(key(hold_pk(&held.email), hold_sk(&held.session))))
            .update_expression("SET claimed_by = :sub, claimed_at = :now")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(claimed_by) OR claimed_by = :sub)",
            )
            .expression_attribute_values(":sub", s(sub.as_str()))
            .expression_attribute_values(":now", s(now()))
            .build()
            .map_err(build)?;
        let link = Put::builder()
            .table_name(self.table())
            .set_item(Some(
                serde_dynamo::to_item(CustomerLinkItem::new(&held.customer, sub))
                    .map_err(|e| PortError::new("encode customer link", e))?,
            ))
            .condition_expression("attribute_not_exists(pk) OR #sub = :sub")
            .expression_attribute_names("#sub", "sub")
            .expression_attribute_values(":sub", s(sub.as_str()))
            .build()
            .map_err(build)?;
        let profile = Update::builder()
            .table_name(self.table())
            .set_key(Some(key(user_pk(sub), PROFILE_SK.to_owned())))
            .update_expression("ADD linked_customers :customer SET updated_at = :now")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(
                ":customer",
                AttributeValue::Ss(vec![held.customer.to_string()]),
            )
            .expression_attribute_values(":now", s(now()))
            .build()
            .map_err(build)?;
        self.transact(
            vec![
                TransactWriteItem::builder().update(hold).build(),
                TransactWriteItem::builder().put(link).build(),
                TransactWriteItem::builder().update(profile).build(),
            ],
            "claim held purchase",
        )
        .await
    }

    async fn mark_followed(
        &self,
        sub: &UserSub,
        directory: Option<(&PlanId, Access)>,
        manager_started: Option<u64>,
    ) -> Result<(), PortError> {
        let mut set = Vec::new();
        let mut values = HashMap::new();
        if let Some((plan, access)) = directory {
            set.push("directory_plan = :plan, directory_access = :access");
            values.insert(":plan".to_owned(), s(plan.as_str()));
            values.insert(":access".to_owned(), s(access.as_str()));
        }
        if let Some(generation) = manager_started {
            set.push("manager_started = :generation");
            values.insert(":generation".to_owned(), n(generation));
        }
        if set.is_empty() {
            return Ok(());
        }
        self.client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(key(user_pk(sub), PROFILE_SK.to_owned())))
            .update_expression(format!("SET {}", set.join(", ")))
            .condition_expression("attribute_exists(pk)")
            .set_expression_attribute_values(Some(values))
            .send()
            .await
            .map_err(|e| PortError::new("record what Cognito and the manager follow", e))?;
        Ok(())
    }

    async fn grant_exists(&self, sub: &UserSub, source: &str) -> Result<bool, PortError> {
        Ok(self.get(user_pk(sub), grant_sk(source)).await?.is_some())
    }

    async fn write_profile(&self, write: &ProfileWrite) -> Result<Saved, PortError> {
        let update = self.profile_update(write)?;
        let Some(grant) = &write.grant else {
            // No grant: a single conditional UpdateItem (one write instead of a transaction).
            return match self
                .client()
                .update_item()
                .table_name(update.table_name())
                .set_key(Some(update.key().clone()))
                .update_expression(update.update_expression())
                .set_condition_expression(update.condition_expression().map(str::to_owned))
                .set_expression_attribute_names(update.expression_attribute_names().cloned())
                .set_expression_attribute_values(update.expression_attribute_values().cloned())
                .send()
                .await
            {
                Ok(_) => Ok(Saved::Written),
                Err(e) if cancelled(&e) => Ok(Saved::Conflict),
                Err(e) => Err(PortError::new("write profile", e)),
            };
        };
        let item = serde_dynamo::to_item(GrantItem {
            pk: user_pk(&write.after.sub),
            sk: grant_sk(&grant.source),
            cause: grant.cause.to_owned(),
            credits: grant.credits.get(),
            plan_id: Some(write.after.plan.to_string()),
            payment_intent: None,
            revoked: 0,
            removed: 0,
            created_at: now(),
        })
        .map_err(|e| PortError::new("encode grant", e))?;
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| PortError::new("build grant put", e))?;
        self.transact(
            vec![
                TransactWriteItem::builder().update(update).build(),
                TransactWriteItem::builder().put(put).build(),
            ],
            "write profile and grant",
        )
        .await
    }

    async fn pack_grant(
        &self,
        sub: &UserSub,
        session: &CheckoutSessionId,
    ) -> Result<Option<PackGrant>, PortError> {
        self.get(user_pk(sub), grant_sk(session.as_str()))
            .await?
            .map(|item| {
                serde_dynamo::from_item(item)
                    .map_err(|e| PortError::new("decode pack grant", e))
                    .and_then(pack_from)
            })
            .transpose()
    }

    async fn pack_for_payment(
        &self,
        sub: &UserSub,
        payment_intent: &PaymentIntentId,
    ) -> Result<Option<PackGrant>, PortError> {
        let out = self
            .client()
            .query()
            .table_name(self.table())
            .key_condition_expression("pk = :pk AND begins_with(sk, :grant)")
            .filter_expression("payment_intent = :pi")
            .expression_attribute_values(":pk", s(user_pk(sub)))
            .expression_attribute_values(":grant", s("GRANT#"))
            .expression_attribute_values(":pi", s(payment_intent.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| PortError::new("find pack grant", e))?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .next()
            .map(|item| {
                serde_dynamo::from_item(item)
                    .map_err(|e| PortError::new("decode pack grant", e))
                    .and_then(pack_from)
            })
            .transpose()
    }

    async fn record_pack(&self, sub: &UserSub, grant: &PackGrant) -> Result<Saved, PortError> {
        let item = serde_dynamo::to_item(GrantItem {
            pk: user_pk(sub),
            sk: grant_sk(grant.session.as_str()),
            cause: "pack".into(),
            credits: grant.credits.get(),
            plan_id: Some(grant.plan.to_string()),
            payment_intent: grant.payment_intent.as_ref().map(|p| p.to_string()),
            revoked: grant.revoked.get(),
            removed: grant.removed.get(),
            created_at: now(),
        })
        .map_err(|e| PortError::new("encode pack grant", e))?;
        let build = |e| PortError::new("build pack grant", e);
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build)?;
        let net = grant.credits.get().saturating_sub(grant.removed.get());
        // DynamoDB adds beyond u64::MAX without complaint, and such a profile no longer
        // decodes: the sum is capped at u64::MAX, as the domain's own sums saturate. The usual
        // write adds while `purchased` leaves room; a refusal is looked at (one read) and, if
        // the room was what lacked, the balance is set to the cap instead.
        let room = u64::MAX - net;
        let profile = |expression: &str, condition: &str| {
            Update::builder()
                .table_name(self.table())
                .set_key(Some(key(user_pk(sub), PROFILE_SK.to_owned())))
                .update_expression(expression)
                .condition_expression(condition)
                .expression_attribute_values(":room", n(room))
                .expression_attribute_values(":now", s(now()))
        };
        let add = profile(
            "SET purchased = purchased + :net, updated_at = :now",
            "attribute_exists(pk) AND purchased <= :room",
        )
        .expression_attribute_values(":net", n(net))
        .build()
        .map_err(build)?;
        let cap = profile(
            "SET purchased = :max, updated_at = :now",
            "attribute_exists(pk) AND purchased > :room",
        )
        .expression_attribute_values(":max", n(u64::MAX))
        .build()
        .map_err(build)?;
        let with = |update: Update| {
            vec![
                TransactWriteItem::builder().put(put.clone()).build(),
                TransactWriteItem::builder().update(update).build(),
            ]
        };
        for _ in 0..PACK_ATTEMPTS {
            if self
                .transact(with(add.clone()), "record pack grant")
                .await?
                == Saved::Written
            {
                return Ok(Saved::Written);
            }
            // Refused: the grant is recorded already, there is no profile, or no room.
            if self
                .get(user_pk(sub), grant_sk(grant.session.as_str()))
                .await?
                .is_some()
            {
                return Ok(Saved::Conflict);
            }
            let Some(profile) = self.get(user_pk(sub), PROFILE_SK.to_owned()).await? else {
                return Ok(Saved::Conflict);
            };
            let purchased = profile
                .get("purchased")
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if let Some(p) = purchased.filter(|p| *p > room)
                && self
                    .transact(with(cap.clone()), "record pack grant")
                    .await?
                    == Saved::Written
            {
                let beyond = u128::from(p) + u128::from(net) - u128::from(u64::MAX);
                tracing::warn!(
                    user_sub = %sub,
                    session = %grant.session,
                    lost = u64::try_from(beyond).unwrap_or(u64::MAX),
                    "pack credits capped at u64::MAX: the balance cannot hold more"
                );
                return Ok(Saved::Written);
            }
            // A metered spend moved `purchased` in between: try again.
        }
        Err(PortError::new(
            "record pack grant",
            format!("purchased kept changing over {PACK_ATTEMPTS} attempts"),
        ))
    }

    async fn revoke_pack(
        &self,
        sub: &UserSub,
        before: &PackGrant,
        after: &PackGrant,
    ) -> Result<Saved, PortError> {
        let build = |e| PortError::new("build pack revocation", e);
        let take = after.removed.get().saturating_sub(before.removed.get());
        let grant = Update::builder()
            .table_name(self.table())
            .set_key(Some(key(user_pk(sub), grant_sk(before.session.as_str()))))
            .update_expression("SET revoked = :revoked, removed = :removed, revoked_at = :now")
            .condition_expression("revoked = :before")
            .expression_attribute_values(":revoked", n(after.revoked.get()))
            .expression_attribute_values(":removed", n(after.removed.get()))
            .expression_attribute_values(":before", n(before.revoked.get()))
            .expression_attribute_values(":now", s(now()))
            .build()
            .map_err(build)?;
        let profile = Update::builder()
            .table_name(self.table())
            .set_key(Some(key(user_pk(sub), PROFILE_SK.to_owned())))
            .update_expression("SET purchased = purchased - :take, updated_at = :now")
            .condition_expression("purchased >= :take")
            .expression_attribute_values(":take", n(take))
            .expression_attribute_values(":now", s(now()))
            .build()
            .map_err(build)?;
        self.transact(
            vec![
                TransactWriteItem::builder().update(grant).build(),
                TransactWriteItem::builder().update(profile).build(),
            ],
            "revoke pack credits",
        )
        .await
    }
}
