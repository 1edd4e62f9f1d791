//! `Scheduler` (the credit manager's Step Functions executions) in memory.

use std::collections::BTreeMap;
use std::sync::Mutex;

use domain::ports::{ManagerRun, PortError, Scheduler, Started};

use super::{FailNext, lock};

#[derive(Default)]
pub struct FakeScheduler {
    /// execution name → run
    pub executions: Mutex<BTreeMap<String, ManagerRun>>,
    pub fail: FailNext,
}

impl Scheduler for FakeScheduler {
    async fn start_credit_manager(&self, run: &ManagerRun) -> Result<Started, PortError> {
        self.fail.check("start credit manager")?;
        let mut executions = lock(&self.executions);
        if executions.contains_key(&run.execution_name()) {
            return Ok(Started::AlreadyRunning);
        }
        executions.insert(run.execution_name(), run.clone());
        Ok(Started::New)
    }
}
