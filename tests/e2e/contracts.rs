//! Port contracts, each run against its real adapter on moto and against the in-memory fake the
//! handler tests use, so a fake cannot drift (one stack for all the moto runs):
//! - `Directory` (Cognito): a user created for a pay-first buyer, found by email, taken twice;
//!   attributes and access synced and read back as reconciliation reads them; an unknown user
//!   neither found nor an error.
//! - `Scheduler` (Step Functions): starting the same credit-manager run twice leaves one
//!   execution (the deterministic name); another generation starts another.

use adapters::cognito::CognitoDirectory;
use adapters::fakes::{FakeDirectory, FakeScheduler};
use adapters::sfn::StepFunctionsScheduler;
use domain::ids::{Credits, Email, PlanId, UserSub};
use domain::ports::{Directory, ManagerRun, NewUser, Scheduler};
use domain::profile::Access;
use tests::Stack;

#[tokio::test]
async fn cognito_and_step_functions_on_moto_keep_the_directory_and_scheduler_contracts()
-> anyhow::Result<()> {
    let stack = Stack::start("contracts", 3600).await?;
    let directory = CognitoDirectory::new(stack.cognito.clone(), stack.var("USER_POOL_ID")?);
    directory_contract(&directory).await?;
    let arn = stack.var("CREDIT_MANAGER_ARN")?;
    let scheduler = StepFunctionsScheduler::new(stack.sfn.clone(), arn.clone());
    scheduler_contract(&scheduler, || async {
        let out = stack
            .sfn
            .list_executions()
            .state_machine_arn(&arn)
            .send()
            .await?;
        Ok(out
            .executions()
            .iter()
            .map(|e| e.name().to_owned())
            .collect())
    })
    .await
}

#[tokio::test]
async fn the_fake_directory_and_scheduler_keep_the_same_contracts() -> anyhow::Result<()> {
    directory_contract(&FakeDirectory::default()).await?;
    let scheduler = FakeScheduler::default();
    scheduler_contract(&scheduler, || async {
        Ok(scheduler
            .executions
            .lock()
            .map(|e| e.keys().cloned().collect())
            .unwrap_or_default())
    })
    .await
}

/// `executions` lists the names of the executions started so far.
async fn scheduler_contract<F, Fut>(scheduler: &impl Scheduler, executions: F) -> anyhow::Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Vec<String>>>,
{
    let run = ManagerRun {
        sub: UserSub::parse("33333333-3333-4333-8333-333333333333")?,
        generation: 1,
        plan: PlanId::parse("free")?,
        credits: Credits::new(50),
        period_seconds: 3600,
    };
    scheduler.start_credit_manager(&run).await?;
    // Again (a redelivered event): Step Functions keeps one execution by its name, whether it
    // answers the start again or refuses the name.
    scheduler.start_credit_manager(&run).await?;
    let next = ManagerRun {
        generation: 2,
        ..run.clone()
    };
    scheduler.start_credit_manager(&next).await?;
    let mut names = executions().await?;
    names.sort();
    assert_eq!(names, vec![run.execution_name(), next.execution_name()]);
    Ok(())
}

async fn directory_contract(directory: &impl Directory) -> anyhow::Result<()> {
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
