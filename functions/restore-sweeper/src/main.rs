//! `restore-sweeper`: on a schedule, settles pending objects whose completion event never came
//! (HeadObject past their tier's expected window), gives up what can't complete, fails stalled
//! jobs with a reason, and finalizes jobs that became complete.
use std::sync::Arc;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};
use shared::config::vars::{MANIFEST_BUCKET, SMTP_FROM};
use shared::domain::completion::Completion;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let completion = Arc::new(
        shared::wiring::completion_from_env(&[MANIFEST_BUCKET, SMTP_FROM], true, None).await?,
    );
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let completion = completion.clone();
        async move { handle(&completion, event).await }
    }))
    .await
}

async fn handle(completion: &Completion, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let report = completion.sweep(time::OffsetDateTime::now_utc()).await?;
    tracing::info!(
        request_id = %event.context.request_id,
        jobs = report.jobs,
        checked = report.checked,
        restored = report.restored,
        failed = report.failed,
        finalized = report.finalized.len(),
        "sweep done"
    );
    Ok(json!({
        "jobs": report.jobs,
        "checked": report.checked,
        "restored": report.restored,
        "notNeeded": report.not_needed,
        "failed": report.failed,
        "fromEarlyEvents": report.from_early_events,
        "finishedSettlements": report.finished_settlements,
        "failedJobs": report.failed_jobs,
        "finalized": report.finalized,
    }))
}
