//! `USER#<sub>` / `GRANT#<source>` items: a credit grant as stored, and a pack grant read back.

use domain::ids::{CheckoutSessionId, Credits, PaymentIntentId, PlanId};
use domain::ports::PortError;
use domain::writes::PackGrant;
use serde::{Deserialize, Serialize};

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

pub fn grant_sk(source: &str) -> String {
    format!("GRANT#{source}")
}

pub(super) fn pack_from(item: GrantItem) -> Result<PackGrant, PortError> {
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
