//! Structured JSON logs for every binary, set up once at init.

/// Crates of the AWS SDK whose debug and trace events carry the resolved identity (the access
/// key id), signing details (canonical request, signature) or raw requests. They stay at `info`
/// unless `RUST_LOG` names one of them itself, so `RUST_LOG=debug` never puts credentials or
/// signatures into the logs.
const SDK_TARGETS: [&str; 7] = [
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_runtime",
    "aws_sigv4",
    "aws_config",
    "aws_credential_types",
];

/// Installs a JSON `tracing` subscriber filtered by `RUST_LOG` (default `info`).
/// Lambda adds the request id; handlers add `job_id` as a span field.
pub fn init() {
    let spec = std::env::var("RUST_LOG").unwrap_or_default();
    let mut filter = tracing_subscriber::EnvFilter::try_new(&spec)
        .ok()
        .filter(|_| !spec.trim().is_empty())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"));
    if !spec.contains("aws_") {
        for target in SDK_TARGETS {
            if let Ok(directive) = format!("{target}=info").parse() {
                filter = filter.add_directive(directive);
            }
        }
    }
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_target(false)
        .try_init();
}
