//! `creditgate reconcile`: first the events (what `events replay` does: records left failed or
//! stuck, events Stripe could not deliver), then every user's profile compared with Stripe and
//! repaired with the webhook's own reconciliation (`domain::reconcile`), a line per user that
//! drifted or failed, then the counts.

use adapters::Env;
use adapters::wiring::{LifecycleConfig, live_lifecycle};
use domain::reconcile::{self, Checked, Standing, reconcile_all};

fn describe(s: &Standing) -> String {
    let cognito = match &s.directory {
        None => "no Cognito user".to_owned(),
        Some(d) => format!(
            "Cognito {}/{}/{}",
            d.plan.as_deref().unwrap_or("-"),
            d.access.as_deref().unwrap_or("-"),
            if d.enabled { "enabled" } else { "disabled" }
        ),
    };
    let packs: Vec<String> = s
        .packs
        .iter()
        .map(|(session, grant)| match grant {
            None => format!("{session} not granted"),
            Some(grant) => format!(
                "{session} {} granted, {} revoked",
                grant.credits, grant.revoked
            ),
        })
        .collect();
    format!(
        "plan {}, access {}, subscription {}, allowance from {}, {cognito}, packs [{}]",
        s.plan,
        s.access.as_str(),
        s.subscription
            .as_ref()
            .map(|x| format!("{} ({})", x.id, x.status.as_str()))
            .unwrap_or_else(|| "none".into()),
        s.allowance_source.as_deref().unwrap_or("-"),
        packs.join("; "),
    )
}

pub async fn run() -> anyhow::Result<()> {
    let lifecycle = live_lifecycle(LifecycleConfig::for_tools(&Env::process())?).await?;
    println!("events:");
    // A replay that cannot run (Stripe unreachable, rate limits that outlast the backoff) does
    // not stop the users' reconciliation; it counts as an event still failing.
    let events_failing =
        match reconcile::replay_events(&lifecycle, None, adapters::unix_now, crate::events::print)
            .await
        {
            Ok(counts) => crate::events::print_counts(&counts),
            Err(e) => {
                println!(
                    "could not replay events: {:#}; reconciling the users anyway",
                    anyhow::Error::from(e)
                );
                1
            }
        };
    println!("users:");
    let report = reconcile_all(
        &lifecycle,
        adapters::unix_now,
        |sub, checked| match checked {
            Checked::InStep => {}
            Checked::Repaired { before, after } => println!(
                "{sub}: repaired: was {}; now {}",
                describe(before),
                describe(after)
            ),
            Checked::StillDrifting { before, after } => println!(
                "{sub}: STILL DRIFTING after a repair: was {}; now {}",
                describe(before),
                describe(after)
            ),
            Checked::Failed(error) => println!("{sub}: failed: {error}"),
        },
    )
    .await
    .map_err(|e| {
        anyhow::anyhow!(
            "list users (is AWS reachable?): {}",
            domain::ports::error_chain(&e)
        )
    })?;
    println!(
        "checked {}, drifted {}, repaired {}, failed {}",
        report.checked, report.drifted, report.repaired, report.failed
    );
    anyhow::ensure!(
        events_failing == 0 && report.failed == 0 && report.unrepaired() == 0,
        "{events_failing} event(s) still fail, {} user(s) failed, {} still drifting",
        report.failed,
        report.unrepaired()
    );
    Ok(())
}
