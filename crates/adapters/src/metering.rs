//! The `Meter` and `ApiKeys` ports on DynamoDB: one conditional UpdateItem per warm metered
//! call; a refused update returns the item as it was (`ReturnValuesOnConditionCheckFailure`),
//! so working out why costs no extra read.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValue, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};
use domain::ids::{ApiKeyHash, Credits, UserSub};
use domain::metering::{Balances, Meter, Snapshot, SpendResult};
use domain::ports::{ApiKeys, PortError};
use domain::profile::Access;

use crate::dynamo::DynamoStore;
use crate::items::{PROFILE_SK, api_key_pk, user_pk};

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> u64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn balances(item: &HashMap<String, AttributeValue>) -> Balances {
    Balances {
        allowance: Credits::new(number(item, "allowance")),
        purchased: Credits::new(number(item, "purchased")),
    }
}

fn snapshot(item: &HashMap<String, AttributeValue>) -> Snapshot {
    Snapshot {
        key_hash: item
            .get("api_key_hash")
            .and_then(|v| v.as_s().ok())
            .and_then(|h| ApiKeyHash::from_stored(h).ok()),
        access: item
            .get("access")
            .and_then(|v| v.as_s().ok())
            .and_then(|a| Access::parse(a))
            .unwrap_or(Access::Disabled),
        balances: balances(item),
    }
}

fn n(value: Credits) -> AttributeValue {
    AttributeValue::N(value.get().to_string())
}

type UpdateResult = Result<
    aws_sdk_dynamodb::operation::update_item::UpdateItemOutput,
    SdkError<UpdateItemError, aws_sdk_dynamodb::config::http::HttpResponse>,
>;

fn spend_result(result: UpdateResult, operation: &'static str) -> Result<SpendResult, PortError> {
    match result {
        Ok(out) => Ok(SpendResult::Spent(balances(
            out.attributes().unwrap_or(&HashMap::new()),
        ))),
        Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
            let old = match e.into_err() {
                UpdateItemError::ConditionalCheckFailedException(c) => c.item,
                _ => None,
            };
            Ok(SpendResult::Refused(old.as_ref().map(snapshot)))
        }
        Err(e) => Err(PortError::new(operation, e)),
    }
}

impl Meter for DynamoStore {
    async fn sub_for_key(&self, hash: &ApiKeyHash) -> Result<Option<UserSub>, PortError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .key("pk", AttributeValue::S(api_key_pk(hash)))
            .key("sk", AttributeValue::S("USER".into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| PortError::new("read API key", e))?;
        Ok(out
            .item
            .as_ref()
            .and_then(|i| i.get("sub"))
            .and_then(|v| v.as_s().ok())
            .and_then(|s| UserSub::parse(s).ok()))
    }

    async fn spend_allowance(
        &self,
        sub: &UserSub,
        hash: &ApiKeyHash,
        cost: Credits,
    ) -> Result<SpendResult, PortError> {
        let result = guarded_update(self, sub, hash)
            .condition_expression(
                "api_key_hash = :key AND #access = :active AND allowance >= :cost",
            )
            .update_expression("SET allowance = allowance - :cost")
            .expression_attribute_values(":cost", n(cost))
            .send()
            .await;
        spend_result(result, "spend allowance")
    }

    async fn spend_split(
        &self,
        sub: &UserSub,
        hash: &ApiKeyHash,
        allowance_was: Credits,
        from_purchased: Credits,
    ) -> Result<SpendResult, PortError> {
        let result = guarded_update(self, sub, hash)
            .condition_expression(
                "api_key_hash = :key AND #access = :active AND allowance = :was AND purchased >= :rest",
            )
            .update_expression("SET allowance = :zero, purchased = purchased - :rest")
            .expression_attribute_values(":was", n(allowance_was))
            .expression_attribute_values(":rest", n(from_purchased))
            .expression_attribute_values(":zero", n(Credits::ZERO))
            .send()
            .await;
        spend_result(result, "spend allowance and purchased credits")
    }
}

/// An UpdateItem on the profile with what every spend checks (`:key`, `#access`, `:active`)
/// bound, returning the new item, or the old one when the condition fails.
fn guarded_update(
    store: &DynamoStore,
    sub: &UserSub,
    hash: &ApiKeyHash,
) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
    store
        .client()
        .update_item()
        .table_name(store.table())
        .key("pk", AttributeValue::S(user_pk(sub)))
        .key("sk", AttributeValue::S(PROFILE_SK.into()))
        .expression_attribute_names("#access", "access")
        .expression_attribute_values(":key", AttributeValue::S(hash.as_str().to_owned()))
        .expression_attribute_values(":active", AttributeValue::S(Access::Active.as_str().into()))
        .return_values(ReturnValue::AllNew)
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
}

impl ApiKeys for DynamoStore {
    async fn rotate_api_key(
        &self,
        sub: &UserSub,
        new: &ApiKeyHash,
        prefix: &str,
    ) -> Result<(), PortError> {
        let build = |e| PortError::new("build API key transaction", e);
        let profile = self
            .client()
            .get_item()
            .table_name(self.table())
            .key("pk", AttributeValue::S(user_pk(sub)))
            .key("sk", AttributeValue::S(PROFILE_SK.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| PortError::new("read profile", e))?
            .item
            .ok_or_else(|| PortError::new("rotate API key", "the user has no profile"))?;
        let old = profile
            .get("api_key_hash")
            .and_then(|v| v.as_s().ok())
            .and_then(|h| ApiKeyHash::from_stored(h).ok());

        let put_key = Put::builder()
            .table_name(self.table())
            .item("pk", AttributeValue::S(api_key_pk(new)))
            .item("sk", AttributeValue::S("USER".into()))
            .item("sub", AttributeValue::S(sub.to_string()))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build)?;
        // Conditioned on the key we read, so two concurrent rotations cannot both win and leave
        // an orphaned key item behind.
        let mut update = Update::builder()
            .table_name(self.table())
            .key("pk", AttributeValue::S(user_pk(sub)))
            .key("sk", AttributeValue::S(PROFILE_SK.into()))
            .update_expression("SET api_key_hash = :new, api_key_prefix = :prefix")
            .expression_attribute_values(":new", AttributeValue::S(new.as_str().to_owned()))
            .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned()));
        update = match &old {
            Some(old) => update
                .condition_expression("api_key_hash = :old")
                .expression_attribute_values(":old", AttributeValue::S(old.as_str().to_owned())),
            None => update.condition_expression(
                "attribute_exists(pk) AND attribute_not_exists(api_key_hash)",
            ),
        };
        let mut tx = self
            .client()
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put_key).build())
            .transact_items(
                TransactWriteItem::builder()
                    .update(update.build().map_err(build)?)
                    .build(),
            );
        if let Some(old) = &old {
            let delete = Delete::builder()
                .table_name(self.table())
                .key("pk", AttributeValue::S(api_key_pk(old)))
                .key("sk", AttributeValue::S("USER".into()))
                .build()
                .map_err(build)?;
            tx = tx.transact_items(TransactWriteItem::builder().delete(delete).build());
        }
        tx.send()
            .await
            .map_err(|e| PortError::new("rotate API key", e))?;
        Ok(())
    }
}
