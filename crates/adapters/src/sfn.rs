//! The `Scheduler` port on Step Functions: the credit-manager state machine (infra/).

use aws_sdk_sfn::Client;
use domain::ports::{ManagerRun, PortError, Scheduler, Started};
use serde_json::json;

/// Continue as a new execution after this many cycles: 50 weekly cycles stay well inside the
/// one-year limit of a Standard execution.
pub const CYCLES_PER_EXECUTION: u64 = 50;

#[derive(Clone)]
pub struct StepFunctionsScheduler {
    client: Client,
    state_machine_arn: String,
}

impl StepFunctionsScheduler {
    pub fn new(client: Client, state_machine_arn: impl Into<String>) -> Self {
        Self {
            client,
            state_machine_arn: state_machine_arn.into(),
        }
    }
}

/// The execution input the state machine reads (see infra/credit-manager.asl.json).
pub fn execution_input(run: &ManagerRun) -> serde_json::Value {
    json!({
        "sub": run.sub.as_str(),
        "generation": run.generation,
        "plan": run.plan.as_str(),
        "credits": run.credits.get(),
        "period_seconds": run.period_seconds,
        "cycles_per_execution": CYCLES_PER_EXECUTION,
        "execution_cycles": 0,
        "cycle": 0,
        "wait_first": false,
    })
}

impl Scheduler for StepFunctionsScheduler {
    async fn start_credit_manager(&self, run: &ManagerRun) -> Result<Started, PortError> {
        let result = self
            .client
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(run.execution_name())
            .input(execution_input(run).to_string())
            .send()
            .await;
        match result {
            Ok(_) => Ok(Started::New),
            // The deterministic name is taken: this run was started before.
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_execution_already_exists()) =>
            {
                Ok(Started::AlreadyRunning)
            }
            Err(err) => Err(PortError::new("start credit manager", err)),
        }
    }
}
