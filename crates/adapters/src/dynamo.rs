//! The `Accounts` port and the plan store on one DynamoDB table.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use domain::ids::UserSub;
use domain::ports::{Accounts, Created, PortError};
use domain::profile::Profile;

use crate::items::{CustomerLinkItem, PROFILE_SK, ProfileItem, user_pk};

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn key(pk: String, sk: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_owned(), AttributeValue::S(pk)),
            ("sk".to_owned(), AttributeValue::S(sk.to_owned())),
        ])
    }
}

/// Items one `users_page` Scan reads (profiles among them are the page's users).
pub const USERS_PAGE_ITEMS: i32 = 100;

impl Accounts for DynamoStore {
    async fn profile(&self, sub: &UserSub) -> Result<Option<Profile>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(user_pk(sub), PROFILE_SK)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| PortError::new("read profile", e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let item: ProfileItem =
            serde_dynamo::from_item(item).map_err(|e| PortError::new("decode profile", e))?;
        Profile::try_from(item)
            .map(Some)
            .map_err(|e| PortError::new("decode profile", e))
    }

    async fn create_profile(&self, profile: &Profile) -> Result<Created, PortError> {
        let encode = |e| PortError::new("encode profile", e);
        let profile_item = serde_dynamo::to_item(ProfileItem::from(profile)).map_err(encode)?;
        let link_item =
            serde_dynamo::to_item(CustomerLinkItem::new(&profile.customer, &profile.sub))
                .map_err(encode)?;
        let build = |e| PortError::new("build profile transaction", e);
        let put_profile = Put::builder()
            .table_name(&self.table)
            .set_item(Some(profile_item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build)?;
        // The link may already exist from an earlier attempt, but only ever for this user.
        let put_link = Put::builder()
            .table_name(&self.table)
            .set_item(Some(link_item))
            .condition_expression("attribute_not_exists(pk) OR #sub = :sub")
            .expression_attribute_names("#sub", "sub")
            .expression_attribute_values(":sub", AttributeValue::S(profile.sub.to_string()))
            .build()
            .map_err(build)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put_profile).build())
            .transact_items(TransactWriteItem::builder().put(put_link).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(Created::New),
            Err(err) => {
                let cancelled = err
                    .as_service_error()
                    .is_some_and(|e| e.is_transaction_canceled_exception());
                // A cancelled transaction wrote nothing. If the profile now exists, a concurrent
                // or earlier attempt made it; anything else (a customer linked to another user)
                // is a real error.
                if cancelled && self.profile(&profile.sub).await?.is_some() {
                    Ok(Created::AlreadyExisted)
                } else {
                    Err(PortError::new("create profile", err))
                }
            }
        }
    }

    /// A Scan page (up to 1 MB read) filtered to profile items; the cursor is the page's last
    /// evaluated key, `pk` and `sk` on two lines.
    async fn users_page(
        &self,
        after: Option<&str>,
    ) -> Result<(Vec<UserSub>, Option<String>), PortError> {
        let start = match after {
            None => None,
            Some(cursor) => {
                let (pk, sk) = cursor
                    .split_once('\n')
                    .ok_or_else(|| PortError::new("list users", "malformed page cursor"))?;
                Some(Self::key(pk.to_owned(), sk))
            }
        };
        let page = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("begins_with(pk, :user) AND sk = :profile")
            .expression_attribute_values(":user", AttributeValue::S("USER#".into()))
            .expression_attribute_values(":profile", AttributeValue::S(PROFILE_SK.into()))
            .projection_expression("pk")
            // A page is what one reconcile slice must finish before it checks its time again:
            // at most this many items read (fewer profiles among them), not 1 MB of keys.
            .limit(USERS_PAGE_ITEMS)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| PortError::new("list users", e))?;
        let users = page
            .items()
            .iter()
            .filter_map(|item| item.get("pk").and_then(|v| v.as_s().ok()))
            .filter_map(|pk| pk.strip_prefix("USER#"))
            .map(|sub| UserSub::parse(sub).map_err(|e| PortError::new("list users", e)))
            .collect::<Result<Vec<_>, _>>()?;
        let next = page.last_evaluated_key.filter(|k| !k.is_empty()).map(|k| {
            let part = |name: &str| {
                k.get(name)
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default()
            };
            format!("{}\n{}", part("pk"), part("sk"))
        });
        Ok((users, next))
    }
}
