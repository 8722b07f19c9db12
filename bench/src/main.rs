//! `restore-bench <section>`: runs one section of `make bench` (see `scripts/bench.sh`), or
//! `restore-bench s3-endpoint` to serve the latency-modelling endpoint alone for manual runs.

use std::time::Duration;

use restore_bench::sections;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    shared::telemetry::init();
    let section = std::env::args().nth(1).unwrap_or_default();
    let result = match section.as_str() {
        "fanout" => sections::fanout::run().await,
        "tally" => sections::tally::run().await,
        "sweep" => sections::sweep::run().await,
        "coldstart" => sections::coldstart::run().await,
        "copy" => sections::copy::run().await,
        "s3-endpoint" => serve().await,
        other => Err(format!(
            "unknown section {other:?}; one of: fanout, tally, sweep, coldstart, copy, s3-endpoint"
        )),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("restore-bench {section}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Serves the latency endpoint with `BENCH_OBJECTS` GLACIER objects in `bench-assets` until
/// killed (for trying a tool by hand).
async fn serve() -> Result<(), String> {
    let latency = Duration::from_millis(restore_bench::tools::env_number("BENCH_LATENCY_MS", 25));
    let endpoint = restore_bench::s3_endpoint::start(latency)
        .await
        .map_err(|e| e.to_string())?;
    let n = restore_bench::tools::env_number("BENCH_OBJECTS", 1000) as usize;
    endpoint
        .catalogue
        .fill_glacier("bench-assets", "bench/", n, 1 << 20);
    println!("{}", endpoint.url());
    std::future::pending::<()>().await;
    Ok(())
}
