//! `restore-local`: the service on one machine against the local emulator.
//! Subcommands: `demo` (a guided restore of sample objects), `serve` (the HTTP API on
//! `LISTEN_ADDR`, default 127.0.0.1:9000).

use std::process::ExitCode;

mod demo;
mod serve;

const USAGE: &str = "usage: restore-local <command>\n\
  demo [--tier Expedited|Standard|Bulk]   restore sample objects on the emulator (AWS_ENDPOINT_URL)\n\
  serve                                   serve the HTTP API on LISTEN_ADDR (default 127.0.0.1:9000)\n\
  pipeline [--until-idle] [--window SECONDS]   completion loops: the emulator's S3 → SQS restore events, finalizer, sweeper";

#[tokio::main]
async fn main() -> ExitCode {
    shared::telemetry::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo::run(&args[1..]).await,
        Some("serve") => serve::run(&args[1..]).await,
        Some("pipeline") => restore_local::pipeline::run_cli(&args[1..]).await,
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(code = err.code(), error = %err, "restore-local failed");
            eprintln!("restore-local: {err}");
            ExitCode::FAILURE
        }
    }
}
