//! `restore-events`: tallies restore completions from S3 notifications (direct or through
//! SQS/SNS) and EventBridge "Object Restore Completed" events. Idempotent: a redelivered event
//! counts nothing. With SQS it answers a partial batch response, so only messages whose
//! completions could not be recorded come back. Finishing the job is the finalizer's (table
//! stream), so this function stays small and never sends mail.
use std::sync::Arc;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use shared::domain::completion::Completion;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let completion = Arc::new(shared::wiring::completion_from_env(&[], false, None).await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let completion = completion.clone();
        async move { handle(&completion, event).await }
    }))
    .await
}

async fn handle(completion: &Completion, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let result = completion.handle_events(&event.payload).await?;
    tracing::info!(
        request_id = %event.context.request_id,
        completed = result.completed,
        ignored = result.ignored,
        malformed = result.malformed,
        jobs = result.touched_jobs.len(),
        "events handled"
    );
    Ok(result.response)
}
