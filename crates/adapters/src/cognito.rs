//! The `Directory` port on Cognito: `custom:plan` / `custom:access`, enable/disable, and the
//! pay-first buyer's user.
//!
//! Users are addressed by their sub, which Cognito accepts as `Username` (the local stack's moto
//! is patched to accept it too: scripts/local_aws.py). Only the pay-first buyer's lookup by
//! email lists users (`ListUsers` filtered on `email`).

use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::types::{AttributeType, UserType};
use domain::ids::{Email, PlanId, UserSub};
use domain::ports::{Directory, DirectoryEntry, NewUser, PortError};
use domain::profile::Access;

#[derive(Clone)]
pub struct CognitoDirectory {
    client: Client,
    pool: String,
}

impl CognitoDirectory {
    pub fn new(client: Client, pool: impl Into<String>) -> Self {
        Self {
            client,
            pool: pool.into(),
        }
    }

    fn attribute(name: &str, value: &str) -> Result<AttributeType, PortError> {
        AttributeType::builder()
            .name(name)
            .value(value)
            .build()
            .map_err(|e| PortError::new("build Cognito attribute", e))
    }
}

fn sub_of(user: &UserType) -> Option<UserSub> {
    user.attributes()
        .iter()
        .find(|a| a.name() == "sub")
        .and_then(|a| a.value())
        .and_then(|v| UserSub::parse(v).ok())
}

impl Directory for CognitoDirectory {
    async fn sync_user(
        &self,
        sub: &UserSub,
        plan: &PlanId,
        access: Access,
    ) -> Result<(), PortError> {
        let attributes = vec![
            Self::attribute("custom:plan", plan.as_str())?,
            Self::attribute("custom:access", access.as_str())?,
        ];
        let update = |username: String| {
            self.client
                .admin_update_user_attributes()
                .user_pool_id(&self.pool)
                .username(username)
                .set_user_attributes(Some(attributes.clone()))
                .send()
        };
        // The sub is a valid Username in Cognito (and in the local stack's moto, patched to
        // match): no lookup, so no `ListUsers` in the roles that only sync attributes.
        match update(sub.to_string()).await {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_user_not_found_exception()) =>
            {
                tracing::warn!(user_sub = %sub, "no Cognito user for this profile: attributes not synced");
                return Ok(());
            }
            Err(e) => return Err(PortError::new("update Cognito attributes", e)),
        }
        let username = sub.to_string();
        match access {
            Access::Active => {
                self.client
                    .admin_enable_user()
                    .user_pool_id(&self.pool)
                    .username(&username)
                    .send()
                    .await
                    .map_err(|e| PortError::new("enable Cognito user", e))?;
            }
            Access::Disabled => {
                self.client
                    .admin_disable_user()
                    .user_pool_id(&self.pool)
                    .username(&username)
                    .send()
                    .await
                    .map_err(|e| PortError::new("disable Cognito user", e))?;
            }
        }
        Ok(())
    }

    async fn entry(&self, sub: &UserSub) -> Result<Option<DirectoryEntry>, PortError> {
        let user = match self
            .client
            .admin_get_user()
            .user_pool_id(&self.pool)
            .username(sub.to_string())
            .send()
            .await
        {
            Ok(user) => user,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_user_not_found_exception()) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(PortError::new("read Cognito user", e)),
        };
        let attribute = |name: &str| {
            user.user_attributes()
                .iter()
                .find(|a| a.name() == name)
                .and_then(|a| a.value())
                .map(str::to_owned)
        };
        Ok(Some(DirectoryEntry {
            plan: attribute("custom:plan"),
            access: attribute("custom:access"),
            enabled: user.enabled(),
        }))
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<UserSub>, PortError> {
        let escaped = email.as_str().replace('\\', "\\\\").replace('"', "\\\"");
        let out = self
            .client
            .list_users()
            .user_pool_id(&self.pool)
            .filter(format!("email = \"{escaped}\""))
            .limit(1)
            .send()
            .await;
        match out {
            Ok(out) => Ok(out.users.unwrap_or_default().first().and_then(sub_of)),
            // A filter Cognito cannot take (an email it would refuse anyway) finds nobody; the
            // create that follows then settles the purchase as refused or taken.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_invalid_parameter_exception()) =>
            {
                tracing::warn!("Cognito refused the email filter: treated as no match");
                Ok(None)
            }
            Err(e) => Err(PortError::new("find Cognito user", e)),
        }
    }

    async fn create_user(&self, email: &Email) -> Result<NewUser, PortError> {
        let result = self
            .client
            .admin_create_user()
            .user_pool_id(&self.pool)
            .username(email.as_str())
            .user_attributes(Self::attribute("email", email.as_str())?)
            .user_attributes(Self::attribute("email_verified", "true")?)
            .desired_delivery_mediums(
                aws_sdk_cognitoidentityprovider::types::DeliveryMediumType::Email,
            )
            .send()
            .await;
        match result {
            Ok(out) => out
                .user
                .as_ref()
                .and_then(sub_of)
                .map(NewUser::Created)
                .ok_or_else(|| PortError::new("create Cognito user", "Cognito returned no sub")),
            // Someone has this email already: never hand them the purchase (the caller holds it).
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_username_exists_exception()) =>
            {
                Ok(NewUser::EmailTaken)
            }
            // The email itself is refused (length, characters): no retry can change that.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_invalid_parameter_exception()) =>
            {
                Ok(NewUser::Refused(format!(
                    "Cognito refused the buyer's email: {}",
                    e.as_service_error()
                        .and_then(|e| e.meta().message())
                        .unwrap_or("invalid parameter")
                )))
            }
            Err(e) => Err(PortError::new("create Cognito user", e)),
        }
    }
}
