//! `restore-fanout` Lambda: continues big jobs page by page. Triggered by the jobs table's
//! stream (job items still listing: each committed page or released lease emits a record) or
//! invoked directly with `{"jobId": "..."}`. Works until 60 s before its own timeout, then
//! releases the lease; that release is the stream record that triggers the next invocation.
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};
use shared::config::{aws_sdk_config, vars, Config};
use shared::domain::fanout::jobs_to_continue;

/// Time kept back from the invocation's deadline to commit the page in progress.
const MARGIN: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = Config::from_env(&[vars::ASSET_BUCKET_LIST])?;
    let sdk = aws_sdk_config(&config).await;
    let fanout = shared::api::Wiring::fanout_only(&config, &sdk, &|n| std::env::var(n).ok())?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let fanout = Arc::clone(&fanout);
        async move {
            let remaining = event
                .context
                .deadline()
                .duration_since(SystemTime::now())
                .unwrap_or_default();
            let deadline = Instant::now() + remaining.saturating_sub(MARGIN);
            let mut outcomes = Vec::new();
            for job_id in jobs_to_continue(&event.payload) {
                let span = tracing::info_span!("fanout", job_id = %job_id);
                let _enter = span.enter();
                // An error fails the batch: Lambda retries the stream records, and the page
                // replays safely.
                let outcome = fanout.drive(&job_id, deadline).await?;
                tracing::info!(job_id = %job_id, ?outcome, "fan-out invocation done");
                outcomes.push(json!({"jobId": job_id, "outcome": format!("{outcome:?}")}));
            }
            Ok::<Value, Error>(json!({"jobs": outcomes}))
        }
    }))
    .await
}
