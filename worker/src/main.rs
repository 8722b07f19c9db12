//! Entrypoint of the `restore-worker` container. Exit codes: 0 everything in place, 1 some
//! objects failed or conflicted (listed in the JSON summary on stdout), 2 nothing attempted
//! (configuration or report unusable).

use std::process::ExitCode;

use restore_worker::{run, WorkerConfig};

#[tokio::main]
async fn main() -> ExitCode {
    shared::telemetry::init();
    let config = match WorkerConfig::from_env_and_args(std::env::args().skip(1)) {
        Ok(config) => config,
        Err(e) => return fatal(&e),
    };
    let s3 = restore_worker::aws::s3_client_from_env().await;
    match run(&s3, &config).await {
        Ok(summary) => {
            println!("{}", serde_json::to_string(&summary).unwrap_or_default());
            if summary.is_success() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => fatal(&e),
    }
}

fn fatal(error: &shared::Error) -> ExitCode {
    tracing::error!(code = error.code(), error = %error, "restore-worker stopped");
    println!(
        "{}",
        serde_json::json!({"error": {"code": error.code(), "message": error.to_string()}})
    );
    ExitCode::from(2)
}
