//! What the command-line tools (`creditgate`, `creditgate-dev`) share: their log set-up and how
//! an outcome becomes an exit code.

use std::process::ExitCode;

/// Logs to stderr, filtered by `CREDITGATE_LOG` (not `RUST_LOG`: the local env file sets that
/// for the Lambdas); warnings and errors by default.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CREDITGATE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,stripe=error")),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// Success, or the error with its causes on one line (`error: ...`) and exit status 1.
pub fn exit(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
