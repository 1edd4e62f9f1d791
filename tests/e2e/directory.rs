//! The `Directory` port's contract, run against Cognito on moto (`CognitoDirectory`) and against
//! the in-memory `FakeDirectory` the handler tests use, so the fake cannot drift: a user created
//! for a pay-first buyer, found by email, taken twice; attributes and access synced and read
//! back as reconciliation reads them; an unknown user neither found nor an error.

use adapters::cognito::CognitoDirectory;
use adapters::fakes::FakeDirectory;
use domain::ids::{Email, PlanId, UserSub};
use domain::ports::{Directory, NewUser};
use domain::profile::Access;
use tests::Stack;

#[tokio::test]
async fn cognito_on_moto_keeps_the_directory_contract() -> anyhow::Result<()> {
    let stack = Stack::start("directory", 3600).await?;
    let directory = CognitoDirectory::new(stack.cognito.clone(), stack.var("USER_POOL_ID")?);
    contract(&directory).await
}

#[tokio::test]
async fn the_fake_directory_keeps_the_same_contract() -> anyhow::Result<()> {
    contract(&FakeDirectory::default()).await
}

async fn contract(directory: &impl Directory) -> anyhow::Result<()> {
    let nobody = UserSub::parse("8f0c6a53-0000-4000-8000-000000000000")?;
    assert_eq!(directory.entry(&nobody).await?, None, "an unknown user");
    directory
        .sync_user(&nobody, &PlanId::parse("basic")?, Access::Active)
        .await?;
    assert_eq!(
        directory.entry(&nobody).await?,
        None,
        "syncing nobody makes nobody"
    );

    let email = Email::parse("grace@example.com")?;
    assert_eq!(directory.find_by_email(&email).await?, None);
    let NewUser::Created(sub) = directory.create_user(&email).await? else {
        anyhow::bail!("the first user with this email was not created");
    };
    assert_eq!(directory.find_by_email(&email).await?, Some(sub.clone()));
    assert_eq!(
        directory.create_user(&email).await?,
        NewUser::EmailTaken,
        "a second user with the same email"
    );
    let fresh = directory
        .entry(&sub)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the new user has no entry"))?;
    assert_eq!(
        (
            fresh.plan.as_deref(),
            fresh.access.as_deref(),
            fresh.enabled
        ),
        (None, None, true),
        "a new user: nothing synced yet, enabled"
    );

    let basic = PlanId::parse("basic")?;
    directory.sync_user(&sub, &basic, Access::Active).await?;
    let active = directory.entry(&sub).await?;
    assert!(
        active.as_ref().is_some_and(
            |e| e.agrees(&basic, Access::Active) && !e.agrees(&basic, Access::Disabled)
        ),
        "{active:?}"
    );
    directory.sync_user(&sub, &basic, Access::Disabled).await?;
    let disabled = directory.entry(&sub).await?;
    assert_eq!(
        disabled.as_ref().map(|e| (
            e.access.as_deref(),
            e.enabled,
            e.agrees(&basic, Access::Disabled)
        )),
        Some((Some("disabled"), false, true)),
        "{disabled:?}"
    );
    // Idempotent: the same sync again changes nothing.
    directory.sync_user(&sub, &basic, Access::Disabled).await?;
    assert_eq!(directory.entry(&sub).await?, disabled);
    Ok(())
}
