//! The DynamoDB pieces the ledger is built from: keys and attribute values, a consistent read,
//! a transaction whose cancellation is a `Conflict`, the conditional profile update, and the
//! operator's scan of held purchases.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use domain::ports::{HeldPurchase, PortError, Saved};
use domain::writes::{AllowanceWrite, ProfileWrite};

use crate::dynamo::DynamoStore;
use crate::items::{HoldItem, PROFILE_SK, SubscriptionItem, user_pk};

pub(super) fn key(pk: String, sk: String) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(pk)),
        ("sk".to_owned(), AttributeValue::S(sk)),
    ])
}

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) fn now() -> String {
    domain::stripe_events::rfc3339(crate::unix_now())
}

pub(super) fn cancelled<E>(err: &SdkError<E>) -> bool
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
    pub(super) async fn scan_held_purchases(&self) -> Result<Vec<HeldPurchase>, PortError> {
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
        domain::ports::HeldPurchase::sort_oldest_first(&mut held);
        Ok(held)
    }

    pub(super) async fn get(
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
    pub(super) async fn transact(
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

    pub(super) fn profile_update(&self, write: &ProfileWrite) -> Result<Update, PortError> {
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
