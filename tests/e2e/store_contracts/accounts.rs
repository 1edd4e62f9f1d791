//! Accounts: created once, read back, customers owned by one user, every user paged once.

use super::*;

pub(super) async fn accounts_contract<S: Accounts + Ledger>(
    store: &S,
    ids: &Ids,
) -> anyhow::Result<()> {
    let profile = ids.profile(7, 3)?;
    assert_eq!(store.profile(&profile.sub).await?, None, "an unknown user");
    assert_eq!(store.create_profile(&profile).await?, Created::New);
    assert_eq!(
        store.profile(&profile.sub).await?.as_ref(),
        Some(&profile),
        "the created profile reads back as written"
    );

    let retry = Profile {
        plan: plan("basic")?,
        allowance: Credits::new(999),
        ..profile.clone()
    };
    assert_eq!(
        store.create_profile(&retry).await?,
        Created::AlreadyExisted,
        "a second create of the same user"
    );
    assert_eq!(
        store.profile(&profile.sub).await?.as_ref(),
        Some(&profile),
        "a second create overwrites nothing"
    );

    assert_eq!(
        store.customer_owner(&profile.customer).await?,
        Some(profile.sub.clone()),
        "the sign-up customer belongs to the user"
    );
    assert_eq!(
        store.customer_owner(&ids.customer()?).await?,
        None,
        "an unknown customer"
    );

    // Another user with the first one's customer: refused, and nothing of it is written.
    let thief = Profile {
        customer: profile.customer.clone(),
        ..ids.profile(0, 0)?
    };
    assert!(
        store.create_profile(&thief).await.is_err(),
        "a profile for a customer linked to another user"
    );
    assert_eq!(store.profile(&thief.sub).await?, None);
    assert_eq!(
        store.customer_owner(&profile.customer).await?,
        Some(profile.sub.clone())
    );

    // Paging: every user created here is listed exactly once over all pages.
    let mut created = vec![profile.sub.clone()];
    for _ in 0..5 {
        created.push(signed_up(store, ids, 0, 0).await?.sub);
    }
    let mut listed: Vec<UserSub> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let (page, next) = store.users_page(cursor.as_deref()).await?;
        listed.extend(page);
        pages += 1;
        ensure!(pages < 10_000, "users_page never ends");
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    for sub in &created {
        let times = listed.iter().filter(|s| *s == sub).count();
        assert_eq!(times, 1, "{sub} listed {times} times over {pages} pages");
    }
    let mut unique = listed.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), listed.len(), "a user listed twice");
    assert!(
        !listed.contains(&thief.sub),
        "a refused profile is not listed"
    );
    Ok(())
}
