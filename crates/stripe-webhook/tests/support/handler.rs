//! The handler tests' helper (tests/handler_*.rs): delivering a batch of events.

use super::*;

pub async fn deliver_all(deps: &TestDeps, events: &[String]) -> anyhow::Result<()> {
    for e in events {
        let (status, body) = deliver(deps, e).await?;
        anyhow::ensure!(status == 200, "{status}: {body} for {e}");
    }
    Ok(())
}
