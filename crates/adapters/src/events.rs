//! The webhook event ledger on DynamoDB: `EVENT#<evt_id>` / `EVENT`, TTL 35 days. A claim is one
//! conditional UpdateItem; a refused claim returns the record as it was, so the decision costs no
//! extra read.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use domain::ports::PortError;
use domain::webhook::{Claim, EventLedger, Finished, UnsettledEvent, claim_decision};

use crate::dynamo::DynamoStore;

/// How long event records are kept (Stripe retries for up to three days; replays need a margin).
pub const EVENT_TTL_SECONDS: i64 = 35 * 86_400;

fn key(event: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(format!("EVENT#{event}"))),
        ("sk".to_owned(), AttributeValue::S("EVENT".to_owned())),
    ])
}

fn n(item: &HashMap<String, AttributeValue>, name: &str) -> i64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn num(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A conditional settle: written, or refused because another attempt holds the record now.
fn settled<T>(
    result: Result<T, SdkError<UpdateItemError, aws_sdk_dynamodb::config::http::HttpResponse>>,
    operation: &'static str,
) -> Result<bool, PortError> {
    match result {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(PortError::new(operation, e)),
    }
}

impl EventLedger for DynamoStore {
    async fn claim(
        &self,
        event: &str,
        event_type: &str,
        now: i64,
        lease_until: i64,
    ) -> Result<Claim, PortError> {
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(key(event)))
            .condition_expression(
                "attribute_not_exists(pk) OR #status = :failed OR (#status = :processing AND \
                 (attribute_not_exists(lease_until) OR lease_until <= :now))",
            )
            .update_expression(
                "SET #status = :processing, event_type = :type, lease_until = :lease, \
                 attempts = if_not_exists(attempts, :zero) + :one, updated_at = :now, expires_at = :ttl",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":failed", AttributeValue::S("failed".into()))
            .expression_attribute_values(":processing", AttributeValue::S("processing".into()))
            .expression_attribute_values(":type", AttributeValue::S(event_type.to_owned()))
            .expression_attribute_values(":now", num(now))
            .expression_attribute_values(":lease", num(lease_until))
            .expression_attribute_values(":zero", num(0))
            .expression_attribute_values(":one", num(1))
            .expression_attribute_values(":ttl", num(now + EVENT_TTL_SECONDS))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => {
                let attempt = out.attributes().map(|a| n(a, "attempts")).unwrap_or(1);
                Ok(Claim::Owned {
                    attempt: u32::try_from(attempt).unwrap_or(u32::MAX),
                })
            }
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                let old = match e.into_err() {
                    UpdateItemError::ConditionalCheckFailedException(c) => {
                        c.item.unwrap_or_default()
                    }
                    _ => HashMap::new(),
                };
                let status = old
                    .get("status")
                    .and_then(|v| v.as_s().ok())
                    .map(String::as_str)
                    .unwrap_or("processing");
                let attempts = u32::try_from(n(&old, "attempts")).unwrap_or(u32::MAX);
                Ok(
                    match claim_decision(Some((status, n(&old, "lease_until"), attempts)), now) {
                        // The condition refused it, so it is not ours even if the clock moved on.
                        Claim::Owned { .. } => Claim::InProgress,
                        other => other,
                    },
                )
            }
            Err(e) => Err(PortError::new("claim webhook event", e)),
        }
    }

    async fn finish(&self, event: &str, attempt: u32, status: Finished) -> Result<bool, PortError> {
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(key(event)))
            .condition_expression("attempts = :attempt")
            .update_expression("SET #status = :status REMOVE lease_until, last_error")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", AttributeValue::S(status.as_str().into()))
            .expression_attribute_values(":attempt", num(i64::from(attempt)))
            .send()
            .await;
        settled(result, "mark webhook event finished")
    }

    async fn fail(&self, event: &str, attempt: u32, error: &str) -> Result<bool, PortError> {
        let error: String = error.chars().take(500).collect();
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(key(event)))
            .condition_expression("attempts = :attempt")
            .update_expression("SET #status = :failed, last_error = :error REMOVE lease_until")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":failed", AttributeValue::S("failed".into()))
            .expression_attribute_values(":error", AttributeValue::S(error))
            .expression_attribute_values(":attempt", num(i64::from(attempt)))
            .send()
            .await;
        settled(result, "mark webhook event failed")
    }

    /// A Scan: an operator's tool, run rarely, on a table whose event records expire after 35
    /// days.
    async fn unsettled_events(&self, now: i64) -> Result<Vec<UnsettledEvent>, PortError> {
        let mut found = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client()
                .scan()
                .table_name(self.table())
                .filter_expression(
                    "begins_with(pk, :event) AND (#status = :failed \
                     OR (#status = :processing AND (attribute_not_exists(lease_until) \
                     OR lease_until <= :now)))",
                )
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":event", AttributeValue::S("EVENT#".into()))
                .expression_attribute_values(":failed", AttributeValue::S("failed".into()))
                .expression_attribute_values(":processing", AttributeValue::S("processing".into()))
                .expression_attribute_values(":now", num(now))
                .set_exclusive_start_key(start.take())
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| PortError::new("list failed webhook events", e))?;
            for item in page.items() {
                let s = |name: &str| {
                    item.get(name)
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                        .unwrap_or_default()
                };
                found.push(UnsettledEvent {
                    id: s("pk").trim_start_matches("EVENT#").to_owned(),
                    event_type: s("event_type"),
                    attempts: n(item, "attempts"),
                    last_error: s("last_error"),
                    lease_ended: (s("status") == "processing").then(|| n(item, "lease_until")),
                });
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        found.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(found)
    }

    async fn is_settled(&self, event: &str) -> Result<bool, PortError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(key(event)))
            .projection_expression("#status")
            .expression_attribute_names("#status", "status")
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| PortError::new("read webhook event record", e))?;
        Ok(out
            .item()
            .and_then(|item| item.get("status"))
            .and_then(|v| v.as_s().ok())
            .is_some_and(|status| status == "done" || status == "ignored"))
    }
}
