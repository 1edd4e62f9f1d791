//! The account as its owner sees it: `GET /me` (`show`), a new API key (`issue_api_key`), the
//! billing portal (`portal`); and for operators, every held purchase (`held_purchases`).

use super::AccountError;
use crate::facts::SubStatus;
use crate::ids::{ApiKey, Email, UserSub};
use crate::ports::{Accounts, ApiKeys, HeldPurchase, Ledger, Payments, error_chain};
use crate::profile::Profile;

/// `GET /me`: the caller's account, the purchases held for her verified email (`None`: the
/// token carries no verified email) and her live subscriptions in Stripe, best effort (`null`
/// when Stripe cannot be read). A caller with no account but unclaimed purchases held for her
/// verified email sees those, since claiming one creates the account; anyone else `NoProfile`.
pub async fn show<St, P>(
    store: &St,
    stripe: &P,
    sub: &UserSub,
    verified_email: Option<&Email>,
) -> Result<serde_json::Value, AccountError>
where
    St: Accounts + Ledger,
    P: Payments,
{
    let profile = store.profile(sub).await?;
    let held = match verified_email {
        Some(email) => store.held_purchases(email).await?,
        None => Vec::new(),
    };
    let Some(profile) = profile else {
        if !held.iter().any(|h| h.claimed_by.is_none()) {
            return Err(AccountError::NoProfile);
        }
        return Ok(me_without_profile(&held));
    };
    let live = stripe.live_subscriptions(&profile.customers()).await;
    let mut view = me(&profile, &held, live.as_deref().unwrap_or_default());
    if let Err(e) = live {
        tracing::warn!(error = %error_chain(&e), "could not list the caller's subscriptions in Stripe");
        view["subscriptions"] = serde_json::Value::Null;
    }
    Ok(view)
}

/// A new API key for the caller, made from `entropy`; the previous key stops working at once.
/// The key is returned to be shown once: only its hash and prefix are stored.
pub async fn issue_api_key<St>(
    store: &St,
    sub: &UserSub,
    entropy: [u8; 32],
) -> Result<ApiKey, AccountError>
where
    St: Accounts + ApiKeys,
{
    super::find_profile(store, sub).await?;
    let key = ApiKey::from_entropy(entropy);
    store
        .rotate_api_key(sub, &key.hash(), &key.prefix())
        .await?;
    tracing::info!(user_sub = %sub, "API key rotated");
    Ok(key)
}

/// `creditgate purchases held`: the purchases held for the owners of their emails, oldest
/// first; the claimed ones too when `include_claimed`.
pub async fn held_purchases<L: Ledger>(
    store: &L,
    include_claimed: bool,
) -> Result<Vec<HeldPurchase>, AccountError> {
    let mut held = store.all_held_purchases().await?;
    held.retain(|h| include_claimed || h.claimed_by.is_none());
    Ok(held)
}

/// A billing portal session for the caller's sign-up customer: its URL.
pub async fn portal<St, P>(
    store: &St,
    stripe: &P,
    sub: &UserSub,
    return_url: &str,
) -> Result<String, AccountError>
where
    St: Accounts,
    P: Payments,
{
    let profile = super::find_profile(store, sub).await?;
    Ok(stripe.portal_session(&profile.customer, return_url).await?)
}

/// What `GET /me` shows: never the key, only its prefix. `held` are the purchases held for the
/// caller's verified email (none when the token carries no verified email), `live` every live
/// subscription bound to the caller in Stripe.
pub fn me(
    profile: &Profile,
    held: &[crate::ports::HeldPurchase],
    live: &[crate::ports::LiveSubscription],
) -> serde_json::Value {
    serde_json::json!({
        "plan": profile.plan.as_str(),
        "access": profile.access.as_str(),
        "subscription": profile.subscription.as_ref().map(|s| serde_json::json!({
            "id": s.id,
            "plan": s.plan.as_str(),
            "status": s.status.as_str(),
            "current_period_end": s.current_period_end,
            "cancel_at_period_end": s.cancel_at_period_end,
            "live": s.status.is_live() && s.status != SubStatus::Incomplete,
        })),
        "credits": {
            "allowance": profile.allowance.get(),
            "purchased": profile.purchased.get(),
            "total": profile.allowance.get().saturating_add(profile.purchased.get()),
        },
        "api_key_prefix": profile.api_key.as_ref().map(|(_, prefix)| prefix.as_str()),
        "subscriptions": live.iter().map(|s| serde_json::json!({
            "id": s.id,
            "status": s.status.as_str(),
            "price_lookup_key": s.lookup_key,
            "cancel_at_period_end": s.cancel_at_period_end,
            "current_period_end": s.current_period_end,
        })).collect::<Vec<_>>(),
        "held_purchases": held_view(held),
    })
}

/// The purchases held for the caller's verified email that nobody claimed yet.
fn held_view(held: &[crate::ports::HeldPurchase]) -> Vec<serde_json::Value> {
    held.iter()
        .filter(|h| h.claimed_by.is_none())
        .map(|h| {
            serde_json::json!({
                "session": h.session,
                "mode": match h.mode {
                    crate::ports::SessionMode::Subscription => "subscription",
                    crate::ports::SessionMode::Payment => "pack",
                    crate::ports::SessionMode::Other => "other",
                },
                "plan": h.plan.as_ref().map(|p| p.as_str()),
                "held_at": h.held_at,
                "claim": format!("POST /purchases/claim {{\"session\": \"{}\"}}", h.session),
                "note": match h.mode {
                    crate::ports::SessionMode::Subscription => "a subscription someone paid for with your email through a payment link: claiming it makes it yours (its card stays the buyer's) and replaces a live subscription you have, which needs \"replace_subscription\": true",
                    _ => "a credit pack someone paid for with your email through a payment link",
                },
            })
        })
        .collect()
}

/// What `GET /me` shows a signed-in user who has no account yet but purchases held for her
/// verified email (claiming one creates the account).
pub fn me_without_profile(held: &[crate::ports::HeldPurchase]) -> serde_json::Value {
    serde_json::json!({
        "plan": null,
        "account": null,
        "held_purchases": held_view(held),
        "message": "no account yet: claim a held purchase to create it",
    })
}
