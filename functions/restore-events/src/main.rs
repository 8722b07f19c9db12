//! `restore-events`: consumes restore-completion events (DESIGN §5) and tallies each object.
//!
//! The whole invocation is [`Completion::handle_events`], the code `restore-local` also feeds
//! the emulator's S3 → SQS notifications to. Triggers, told apart by the payload's shape (see
//! `shared::domain::event`):
//! * SQS (S3 → SQS, or S3 → SNS → SQS): answers a partial batch response
//!   (`ReportBatchItemFailures`), naming only the messages with a malformed record or a failed
//!   tally, so the rest of the batch is deleted and the bad ones end in the queue's DLQ.
//! * S3, SNS or EventBridge invoking the function directly (asynchronous invocation): every
//!   record is processed; if any was malformed or failed to tally the invocation returns an
//!   error, so Lambda retries and finally hands the event to the on-failure destination.
//!   Retrying the good records too is safe because the tally is idempotent (one conditional
//!   write per object).
//!
//! Other event names are acknowledged and ignored.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use shared::domain::completion::Completion;

/// One invocation: the shared handler's answer in the trigger's terms, or its error.
async fn handle(payload: Value, completion: &Completion) -> Result<Value, Error> {
    match completion.handle_events(&payload).await {
        Ok(result) => Ok(result.response),
        Err(err) => {
            tracing::error!(error = %err, code = err.code(), "events invocation failed");
            Err(err.to_string().into())
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    // Clients built once at init; the events function needs no mailer or manifest bucket.
    let completion = shared::wiring::completion_from_env(&[], false, None).await?;
    let completion = &completion;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let _span =
            tracing::info_span!("invocation", request_id = %event.context.request_id).entered();
        handle(event.payload, completion).await
    }))
    .await
}
