//! Subscriptions after Checkout: price changes, `cancel_at_period_end`, cancelling now, lists.

mod common;

use common::checkout::{KEY, subscribed};
use common::{form, listen, next};
use stripe_webhook::{EventObject, Webhook};

#[tokio::test]
async fn a_price_change_and_cancel_at_period_end_update_the_subscription_with_previous_attributes()
-> anyhow::Result<()> {
    let (s, sub, item, power) = subscribed().await?;
    let (secret, _, mut rx) = listen(KEY, &s.base, &["customer.subscription.*"], vec![]).await?;

    let updated = form(
        KEY,
        &s.base,
        "POST",
        &format!("/v1/subscriptions/{sub}"),
        &format!("items[0][id]={item}&items[0][price]={power}&proration_behavior=always_invoice"),
    )
    .await?;
    assert_eq!(
        updated["items"]["data"][0]["price"]["id"],
        power.as_str(),
        "{updated}"
    );
    let got = next(&mut rx).await?;
    let raw: serde_json::Value = serde_json::from_str(&got.payload)?;
    assert_eq!(raw["type"], "customer.subscription.updated");
    assert!(raw["data"]["previous_attributes"]["items"].is_object());
    match Webhook::construct_event(&got.payload, &got.signature, &secret)?
        .data
        .object
    {
        EventObject::CustomerSubscriptionUpdated(sub) => {
            assert_eq!(sub.items.data[0].price.unit_amount, Some(5000))
        }
        other => panic!("{other:?}"),
    }
    let recorded = form(
        KEY,
        &s.base,
        "GET",
        &format!("/_emulator/subscriptions/{sub}"),
        "",
    )
    .await?;
    assert_eq!(
        recorded["proration_behaviors"],
        serde_json::json!(["always_invoice"])
    );

    let flagged = form(
        KEY,
        &s.base,
        "POST",
        &format!("/v1/subscriptions/{sub}"),
        "cancel_at_period_end=true",
    )
    .await?;
    assert_eq!(
        (
            flagged["cancel_at_period_end"].as_bool(),
            flagged["status"].as_str()
        ),
        (Some(true), Some("active"))
    );
    let raw: serde_json::Value = serde_json::from_str(&next(&mut rx).await?.payload)?;
    assert_eq!(
        raw["data"]["previous_attributes"]["cancel_at_period_end"],
        false
    );

    // The same update again changes nothing and emits nothing.
    form(
        KEY,
        &s.base,
        "POST",
        &format!("/v1/subscriptions/{sub}"),
        "cancel_at_period_end=true",
    )
    .await?;
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), rx.recv())
            .await
            .is_err()
    );
    Ok(())
}

#[tokio::test]
async fn cancelling_now_deletes_the_subscription_and_lists_follow_status() -> anyhow::Result<()> {
    let (s, sub, _, _) = subscribed().await?;
    let listed = form(
        KEY,
        &s.base,
        "GET",
        &format!("/v1/subscriptions?customer={}&status=active", s.customer),
        "",
    )
    .await?;
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(1));

    let canceled = form(
        KEY,
        &s.base,
        "DELETE",
        &format!("/v1/subscriptions/{sub}"),
        "",
    )
    .await?;
    assert_eq!(canceled["status"], "canceled");
    assert!(canceled["ended_at"].is_i64());
    let again = form(
        KEY,
        &s.base,
        "DELETE",
        &format!("/v1/subscriptions/{sub}"),
        "",
    )
    .await?;
    assert!(again["error"].is_object());
    let live = form(
        KEY,
        &s.base,
        "GET",
        &format!("/v1/subscriptions?customer={}", s.customer),
        "",
    )
    .await?;
    assert_eq!(live["data"].as_array().map(Vec::len), Some(0));
    let all = form(
        KEY,
        &s.base,
        "GET",
        &format!("/v1/subscriptions?customer={}&status=all", s.customer),
        "",
    )
    .await?;
    assert_eq!(all["data"].as_array().map(Vec::len), Some(1));
    let events = form(
        KEY,
        &s.base,
        "GET",
        "/v1/events?type=customer.subscription.deleted",
        "",
    )
    .await?;
    assert_eq!(events["data"].as_array().map(Vec::len), Some(1));
    Ok(())
}
