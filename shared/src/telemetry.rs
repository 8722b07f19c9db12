//! Structured JSON logs for every binary, set up once at init.

/// Installs a JSON `tracing` subscriber filtered by `RUST_LOG` (default `info`).
/// Lambda adds the request id; handlers add `job_id` as a span field.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_target(false)
        .try_init();
}
