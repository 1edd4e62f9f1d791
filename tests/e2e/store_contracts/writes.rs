//! Profile writes: conditioned on the version read and a new grant; only the webhook's fields.

use super::*;
use domain::facts::{SubStatus, SubscriptionState};
use domain::ids::SubscriptionId;

pub(super) async fn profile_write_contract<S: Accounts + Ledger>(
    store: &S,
    ids: &Ids,
) -> anyhow::Result<()> {
    let before = signed_up(store, ids, 5, 20).await?;
    let sub = before.sub.clone();
    let basic = plan("basic")?;
    let source = format!("in_sc{}:basic", ids.tag);
    assert!(!store.grant_exists(&sub, &source).await?);

    let after = Profile {
        plan: basic.clone(),
        stripe_clock: 1_700_000_000,
        allowance_source: Some(source.clone()),
        // Not the webhook's to write: the store keeps what it holds.
        purchased: Credits::new(12_345),
        manager_generation: before.manager_generation + 5,
        email: Email::parse("someone-else@example.com")?,
        ..before.clone()
    };
    let write = ProfileWrite {
        before: before.clone(),
        after: after.clone(),
        allowance: AllowanceWrite::Reset(Credits::new(500)),
        generation_bumped: false,
        grant: Some(GrantRecord {
            source: source.clone(),
            credits: Credits::new(500),
            cause: "invoice",
        }),
    };
    assert_eq!(store.write_profile(&write).await?, Saved::Written);
    let written = Profile {
        plan: basic.clone(),
        stripe_clock: 1_700_000_000,
        allowance_source: Some(source.clone()),
        allowance: Credits::new(500),
        version: before.version + 1,
        ..before.clone()
    };
    assert_eq!(
        current(store, &sub).await?,
        written,
        "the owned fields written, the allowance reset, the version bumped; nothing else"
    );
    assert!(
        store.grant_exists(&sub, &source).await?,
        "the grant is recorded"
    );

    // The same write again (a redelivery): its `before` is stale now.
    assert_eq!(store.write_profile(&write).await?, Saved::Conflict);
    assert_eq!(
        current(store, &sub).await?,
        written,
        "a conflict changes nothing"
    );

    // Up to date, but the same grant: it happens once.
    let again = ProfileWrite {
        before: written.clone(),
        after: Profile {
            stripe_clock: 1_700_000_100,
            ..written.clone()
        },
        ..write.clone()
    };
    assert_eq!(store.write_profile(&again).await?, Saved::Conflict);
    assert_eq!(
        current(store, &sub).await?,
        written,
        "the grant happens once"
    );

    // A cap conditioned on an allowance no longer there.
    let cap = ProfileWrite {
        before: written.clone(),
        after: written.clone(),
        allowance: AllowanceWrite::Cap {
            to: Credits::new(100),
            seen: Credits::new(499),
        },
        generation_bumped: false,
        grant: None,
    };
    assert_eq!(store.write_profile(&cap).await?, Saved::Conflict);
    assert_eq!(current(store, &sub).await?, written);
    let cap = ProfileWrite {
        allowance: AllowanceWrite::Cap {
            to: Credits::new(100),
            seen: Credits::new(500),
        },
        ..cap
    };
    assert_eq!(store.write_profile(&cap).await?, Saved::Written);
    let capped = Profile {
        allowance: Credits::new(100),
        version: written.version + 1,
        ..written.clone()
    };
    assert_eq!(current(store, &sub).await?, capped);

    // A bumped generation is written.
    let bump = ProfileWrite {
        before: capped.clone(),
        after: Profile {
            manager_generation: capped.manager_generation + 1,
            ..capped.clone()
        },
        allowance: AllowanceWrite::Keep,
        generation_bumped: true,
        grant: None,
    };
    assert_eq!(store.write_profile(&bump).await?, Saved::Written);
    let bumped = Profile {
        manager_generation: capped.manager_generation + 1,
        version: capped.version + 1,
        ..capped.clone()
    };
    assert_eq!(current(store, &sub).await?, bumped);

    // A followed subscription is written whole, then removed with the allowance's source.
    let state = SubscriptionState {
        id: SubscriptionId::parse(&format!("sub_sc{}", ids.tag))?,
        status: SubStatus::PastDue,
        plan: basic.clone(),
        price: "price_sc_basic".into(),
        created: 1_700_000_000,
        current_period_end: 1_702_592_000,
        cancel_at_period_end: true,
        past_due_since: Some(1_700_500_000),
    };
    let following = Profile {
        subscription: Some(state),
        version: bumped.version + 1,
        ..bumped.clone()
    };
    let follow = ProfileWrite {
        before: bumped.clone(),
        after: following.clone(),
        allowance: AllowanceWrite::Keep,
        generation_bumped: false,
        grant: None,
    };
    assert_eq!(store.write_profile(&follow).await?, Saved::Written);
    assert_eq!(
        current(store, &sub).await?,
        following,
        "the subscription as written"
    );
    let ended = Profile {
        subscription: None,
        allowance_source: None,
        version: following.version + 1,
        ..following.clone()
    };
    let end = ProfileWrite {
        before: following.clone(),
        after: ended.clone(),
        ..follow.clone()
    };
    assert_eq!(store.write_profile(&end).await?, Saved::Written);
    assert_eq!(
        current(store, &sub).await?,
        ended,
        "the subscription and the allowance's source removed"
    );

    // No profile: nothing to write.
    let ghost = ids.profile(0, 0)?;
    let orphan = ProfileWrite {
        before: ghost.clone(),
        after: ghost.clone(),
        allowance: AllowanceWrite::Keep,
        generation_bumped: false,
        grant: None,
    };
    assert_eq!(store.write_profile(&orphan).await?, Saved::Conflict);
    assert_eq!(store.profile(&ghost.sub).await?, None);

    // mark_followed records what it says and leaves the rest.
    store
        .mark_followed(&sub, Some((&basic, Access::Disabled)), Some(4))
        .await?;
    let followed = current(store, &sub).await?;
    assert_eq!(
        (followed.directory_synced.clone(), followed.manager_started),
        (Some((basic.clone(), Access::Disabled)), Some(4))
    );
    store.mark_followed(&sub, None, None).await?;
    assert_eq!(current(store, &sub).await?, followed, "None leaves both");
    store.mark_followed(&sub, None, Some(5)).await?;
    let later = current(store, &sub).await?;
    assert_eq!(
        (later.directory_synced.clone(), later.manager_started),
        (Some((basic.clone(), Access::Disabled)), Some(5))
    );
    assert_eq!(
        Profile {
            manager_started: Some(4),
            ..later
        },
        followed,
        "nothing else moved"
    );
    assert!(
        store
            .mark_followed(&ghost.sub, Some((&basic, Access::Active)), Some(1))
            .await
            .is_err(),
        "marking a user with no profile"
    );
    assert_eq!(store.profile(&ghost.sub).await?, None);
    Ok(())
}
