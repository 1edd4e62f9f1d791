//! API keys and the meter: rotation, spends conditioned on the current key, access and credits.

use super::*;

pub(super) async fn keys_and_meter_contract<S>(store: &S, ids: &Ids) -> anyhow::Result<()>
where
    S: Accounts + Ledger + ApiKeys + Meter,
{
    let user = signed_up(store, ids, 10, 5).await?;
    let sub = &user.sub;

    let first = ids.key();
    assert_eq!(store.sub_for_key(&first).await?, None, "a key never issued");
    store.rotate_api_key(sub, &first, "cgk_first").await?;
    assert_eq!(store.sub_for_key(&first).await?, Some(sub.clone()));
    assert_eq!(
        current(store, sub).await?.api_key,
        Some((first.clone(), "cgk_first".to_owned())),
        "the profile points at the new key"
    );

    assert_eq!(
        store.spend_allowance(sub, &first, Credits::new(4)).await?,
        SpendResult::Spent(balances(6, 5)),
        "a spend with the current key, covered by the allowance"
    );
    assert_eq!(held_balances(store, sub).await?, balances(6, 5));

    let second = ids.key();
    store.rotate_api_key(sub, &second, "cgk_second").await?;
    assert_eq!(store.sub_for_key(&second).await?, Some(sub.clone()));
    assert_eq!(
        store.sub_for_key(&first).await?,
        None,
        "the rotated-away key stops resolving at once"
    );
    let as_it_is = |allowance, purchased, access| {
        SpendResult::Refused(Some(Snapshot {
            key_hash: Some(second.clone()),
            access,
            balances: balances(allowance, purchased),
        }))
    };
    assert_eq!(
        store.spend_allowance(sub, &first, Credits::new(1)).await?,
        as_it_is(6, 5, Access::Active),
        "a spend with the rotated-away key"
    );
    assert_eq!(
        store.spend_allowance(sub, &second, Credits::new(7)).await?,
        as_it_is(6, 5, Access::Active),
        "a spend beyond the allowance"
    );
    assert_eq!(
        store
            .spend_split(sub, &first, Credits::new(6), Credits::new(1))
            .await?,
        as_it_is(6, 5, Access::Active),
        "a split with the rotated-away key"
    );
    assert_eq!(held_balances(store, sub).await?, balances(6, 5));

    assert_eq!(
        store
            .spend_split(sub, &second, Credits::new(6), Credits::new(1))
            .await?,
        SpendResult::Spent(balances(0, 4)),
        "the allowance's rest and one from purchased"
    );
    assert_eq!(
        store
            .spend_split(sub, &second, Credits::new(6), Credits::new(1))
            .await?,
        as_it_is(0, 4, Access::Active),
        "a split conditioned on an allowance no longer there"
    );
    assert_eq!(
        store
            .spend_split(sub, &second, Credits::ZERO, Credits::new(5))
            .await?,
        as_it_is(0, 4, Access::Active),
        "a split beyond purchased"
    );
    assert_eq!(
        store
            .spend_split(sub, &second, Credits::ZERO, Credits::new(4))
            .await?,
        SpendResult::Spent(balances(0, 0)),
        "the last of purchased"
    );
    assert_eq!(
        store.spend_allowance(sub, &second, Credits::new(1)).await?,
        as_it_is(0, 0, Access::Active),
        "nothing left: never below zero"
    );
    assert_eq!(
        store
            .spend_split(sub, &second, Credits::ZERO, Credits::new(1))
            .await?,
        as_it_is(0, 0, Access::Active)
    );
    assert_eq!(held_balances(store, sub).await?, balances(0, 0));

    // Access switched off (a webhook's profile write): the current key spends nothing.
    let off = signed_up(store, ids, 10, 10).await?;
    let key = ids.key();
    store.rotate_api_key(&off.sub, &key, "cgk_off").await?;
    let before = current(store, &off.sub).await?;
    let write = ProfileWrite {
        after: Profile {
            access: Access::Disabled,
            ..before.clone()
        },
        before,
        allowance: AllowanceWrite::Keep,
        generation_bumped: false,
        grant: None,
    };
    assert_eq!(store.write_profile(&write).await?, Saved::Written);
    assert_eq!(
        store
            .spend_allowance(&off.sub, &key, Credits::new(1))
            .await?,
        SpendResult::Refused(Some(Snapshot {
            key_hash: Some(key.clone()),
            access: Access::Disabled,
            balances: balances(10, 10),
        })),
        "a spend with access disabled"
    );
    assert_eq!(
        store
            .spend_split(&off.sub, &key, Credits::new(10), Credits::new(1))
            .await?,
        SpendResult::Refused(Some(Snapshot {
            key_hash: Some(key.clone()),
            access: Access::Disabled,
            balances: balances(10, 10),
        })),
        "a split with access disabled"
    );
    assert_eq!(held_balances(store, &off.sub).await?, balances(10, 10));

    let nobody = ids.sub()?;
    assert_eq!(
        store
            .spend_allowance(&nobody, &key, Credits::new(1))
            .await?,
        SpendResult::Refused(None),
        "a spend for a user with no profile"
    );

    let orphan = ids.key();
    assert!(
        store
            .rotate_api_key(&nobody, &orphan, "cgk_orphan")
            .await
            .is_err(),
        "rotating the key of a user with no profile"
    );
    assert_eq!(store.sub_for_key(&orphan).await?, None);
    assert_eq!(store.profile(&nobody).await?, None);

    // A key already issued to someone (a hash collision) is never taken over.
    assert!(
        store
            .rotate_api_key(&off.sub, &second, "cgk_taken")
            .await
            .is_err(),
        "rotating to a key another user holds"
    );
    assert_eq!(store.sub_for_key(&second).await?, Some(sub.clone()));
    assert_eq!(store.sub_for_key(&key).await?, Some(off.sub.clone()));
    assert_eq!(
        current(store, &off.sub).await?.api_key,
        Some((key.clone(), "cgk_off".to_owned())),
        "a refused rotation leaves the key as it was"
    );
    Ok(())
}
