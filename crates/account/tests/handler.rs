//! Handler tests for the account routes that need no Stripe call. (Key rotation through
//! DynamoDB and the billing portal: tests/e2e/account.rs.)

use account::{Deps, handle};
use adapters::fakes::{
    FakeDirectory, FakeScheduler, InMemoryAccounts, api_request, signed_up, unreachable_stripe,
};
use domain::catalogue::Catalogue;
use domain::ids::{ApiKey, Credits};
use domain::lifecycle::AccessPolicy;
use domain::ports::Accounts;
use domain::stripe_events::Lifecycle;
use serde_json::Value;

#[tokio::test]
async fn me_shows_plan_credits_and_the_key_prefix_and_routes_are_checked() -> anyhow::Result<()> {
    let accounts = InMemoryAccounts::default();
    let mut profile = signed_up("user-1");
    profile.allowance = Credits::new(30);
    profile.purchased = Credits::new(12);
    let key = ApiKey::from_entropy([9; 32]);
    profile.api_key = Some((key.hash(), key.prefix()));
    accounts.create_profile(&profile).await?;
    let deps = Deps {
        lifecycle: Lifecycle {
            store: accounts,
            stripe: unreachable_stripe(),
            directory: FakeDirectory::default(),
            scheduler: FakeScheduler::default(),
            catalogue: Catalogue::bundled()?,
            policy: AccessPolicy::default(),
            free_period_override: None,
        },
        portal_return_url: "https://app.example.com/account".into(),
    };
    let call = |method: &'static str, path: &'static str, sub: Option<&'static str>| {
        let deps = &deps;
        async move {
            let response = handle(deps, api_request(method, path, sub, ""))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let body: Value = serde_json::from_slice(response.body().as_ref())?;
            anyhow::Ok((response.status().as_u16(), body))
        }
    };
    let (status, me) = call("GET", "/me", Some("user-1")).await?;
    assert_eq!(status, 200);
    assert_eq!(me["plan"], "free");
    assert_eq!(me["credits"]["total"], 42);
    assert_eq!(me["api_key_prefix"], key.prefix());
    assert!(!me.to_string().contains(key.expose()));
    assert_eq!(call("GET", "/me", None).await?.0, 401);
    assert_eq!(call("GET", "/me", Some("user-2")).await?.0, 404);
    assert_eq!(call("POST", "/me", Some("user-1")).await?.0, 405);
    assert_eq!(call("GET", "/api-key", Some("user-1")).await?.0, 405);
    assert_eq!(call("GET", "/admin", Some("user-1")).await?.0, 404);
    let (status, rotated) = call("POST", "/api-key", Some("user-1")).await?;
    assert_eq!(status, 200);
    let new_key = rotated["api_key"].as_str().unwrap_or_default();
    assert!(new_key.starts_with("cgk_") && new_key != key.expose());
    let keys = deps
        .lifecycle
        .store
        .api_keys
        .lock()
        .map(|k| k.clone())
        .unwrap_or_default();
    assert_eq!(keys.len(), 1, "only the new key's hash is stored");
    assert!(keys.contains_key(domain::ids::ApiKeyHash::of(new_key).as_str()));
    let (_, me) = call("GET", "/me", Some("user-1")).await?;
    assert_eq!(me["api_key_prefix"], rotated["prefix"]);
    let (status, portal) = call("POST", "/billing-portal", Some("user-1")).await?;
    assert_eq!(
        (status, portal["error"].as_str()),
        (500, Some("internal error")),
        "Stripe unreachable"
    );
    Ok(())
}
