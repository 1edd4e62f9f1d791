//! The webhook's `Ledger` on DynamoDB: customer links, `GRANT#<source>` entries and the
//! conditional profile writes (DESIGN.md "Data"). Credit changes are relative (`purchased`) or
//! conditioned on the value read (`allowance` caps), so a metered spend in between is never
//! overwritten.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use domain::ids::{CheckoutSessionId, PaymentIntentId, PlanId, StripeCustomerId, UserSub};
use domain::ports::{Created, HeldPurchase, Ledger, PortError, Saved};
use domain::profile::Access;
use domain::writes::{PackGrant, ProfileWrite};

use crate::dynamo::DynamoStore;
use crate::items::{
    CustomerLinkItem, HoldItem, PROFILE_SK, customer_pk, hold_pk, hold_sk, user_pk,
};

mod grants;
mod requests;

use grants::pack_from;
pub use grants::{GrantItem, grant_sk};
use requests::{cancelled, key, n, now, s};

/// A pack grant whose profile keeps changing under it (spends racing the capped write) is
/// tried this many times, then reported (the webhook answers 500 and Stripe retries).
const PACK_ATTEMPTS: usize = 4;

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
        domain::ports::HeldPurchase::sort_oldest_first(&mut held);
        Ok(held)
    }

    async fn all_held_purchases(&self) -> Result<Vec<HeldPurchase>, PortError> {
        self.scan_held_purchases().await
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
