//! `restore-events`: consumes restore-completion events (DESIGN §5) and tallies each object.
//!
//! Triggers, told apart by the payload's shape (see `shared::domain::event`):
//! * SQS (S3 → SQS, or S3 → SNS → SQS): answers a partial batch response
//!   (`ReportBatchItemFailures`), naming only the messages with a malformed record or a failed
//!   tally, so the rest of the batch is deleted and the bad ones end in the queue's DLQ.
//! * S3, SNS or EventBridge invoking the function directly (asynchronous invocation): every record is
//!   processed; if any was malformed or failed to tally the invocation returns an error, so
//!   Lambda retries and finally hands the event to the on-failure destination. Retrying the good
//!   records too is safe because the tally is idempotent (one conditional write per object).
//!
//! Other event names are acknowledged and ignored.

use aws_lambda_events::event::sqs::SqsBatchResponse;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};
use shared::domain::completion::Completion;
use shared::domain::event::{parse_invocation, Invocation, RecordOutcome, RestoreCompletion};

/// Records one completion against the jobs waiting for the object.
trait Tally {
    /// Must be idempotent: the same completion may arrive many times.
    async fn record(&self, completion: &RestoreCompletion) -> shared::Result<()>;
}

/// The job store's tally (`shared::domain::completion`): settles the object once in every job
/// waiting for it, or keeps the event for an object not recorded yet.
struct StoreTally(Completion);

impl Tally for StoreTally {
    async fn record(&self, completion: &RestoreCompletion) -> shared::Result<()> {
        let outcome = self.0.record(completion).await?;
        tracing::info!(
            bucket = %completion.bucket,
            key = %completion.key,
            jobs = ?outcome.settled,
            duplicates = outcome.duplicates,
            early = outcome.kept_early,
            "completion tallied"
        );
        Ok(())
    }
}

/// Counts of one invocation, logged at the end.
#[derive(Debug, Default, PartialEq, Eq)]
struct Summary {
    completed: usize,
    ignored: usize,
    malformed: usize,
    tally_failed: usize,
}

impl Summary {
    fn failed(&self) -> usize {
        self.malformed + self.tally_failed
    }
}

/// Handles one record; returns false when it must be reported as failed.
async fn process(outcome: &RecordOutcome, tally: &impl Tally, summary: &mut Summary) -> bool {
    match outcome {
        RecordOutcome::Completed(completion) => {
            tracing::info!(
                bucket = %completion.bucket,
                key = %completion.key,
                version_id = completion.version_id.as_deref(),
                source = ?completion.source,
                expiry = completion.expiry.map(|t| t.to_string()),
                "restore completed"
            );
            match tally.record(completion).await {
                Ok(()) => {
                    summary.completed += 1;
                    true
                }
                Err(e) => {
                    tracing::error!(
                        bucket = %completion.bucket,
                        key = %completion.key,
                        error = %e,
                        code = e.code(),
                        "tally failed"
                    );
                    summary.tally_failed += 1;
                    false
                }
            }
        }
        RecordOutcome::Ignored { event_name } => {
            tracing::debug!(event_name = %event_name, "event ignored");
            summary.ignored += 1;
            true
        }
        RecordOutcome::Malformed(reason) => {
            tracing::warn!(reason = %reason, "malformed record");
            summary.malformed += 1;
            false
        }
    }
}

/// The whole invocation: parse, tally, and answer in the trigger's terms.
async fn handle(payload: Value, tally: &impl Tally) -> Result<Value, Error> {
    let mut summary = Summary::default();
    match parse_invocation(&payload) {
        Invocation::Sqs(items) => {
            let mut response = SqsBatchResponse::default();
            let mut unnamed_failures = 0;
            for item in &items {
                let mut ok = true;
                for outcome in &item.records {
                    ok &= process(outcome, tally, &mut summary).await;
                }
                if !ok {
                    if item.message_id.is_empty() {
                        unnamed_failures += 1;
                    } else {
                        tracing::warn!(message_id = %item.message_id, "message reported as failed");
                        response.add_failure(item.message_id.clone());
                    }
                }
            }
            log_summary(&summary, "sqs");
            if unnamed_failures > 0 {
                // A failed message without an id cannot be named: fail the batch (idempotent).
                return Err(format!(
                    "{unnamed_failures} failed SQS message(s) without a messageId"
                )
                .into());
            }
            Ok(serde_json::to_value(response)?)
        }
        Invocation::Direct(records) => {
            for outcome in &records {
                process(outcome, tally, &mut summary).await;
            }
            log_summary(&summary, "direct");
            if summary.failed() > 0 {
                return Err(format!(
                    "{} malformed record(s), {} failed tally(ies) of {} record(s)",
                    summary.malformed,
                    summary.tally_failed,
                    records.len()
                )
                .into());
            }
            Ok(json!({"completed": summary.completed, "ignored": summary.ignored}))
        }
        Invocation::Unrecognised(reason) => {
            tracing::error!(reason = %reason, "unrecognised event");
            Err(format!("unrecognised event: {reason}").into())
        }
    }
}

fn log_summary(summary: &Summary, trigger: &str) {
    tracing::info!(
        trigger,
        completed = summary.completed,
        ignored = summary.ignored,
        malformed = summary.malformed,
        tally_failed = summary.tally_failed,
        "events processed"
    );
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    // Clients built once at init; the events function needs no mailer or manifest bucket.
    let tally = StoreTally(shared::wiring::completion_from_env(&[], false, None).await?);
    let tally = &tally;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let _span =
            tracing::info_span!("invocation", request_id = %event.context.request_id).entered();
        handle(event.payload, tally).await
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records tallied keys; fails for keys in `fail`.
    #[derive(Default)]
    struct FakeTally {
        seen: Mutex<Vec<String>>,
        fail: Vec<String>,
    }

    impl Tally for FakeTally {
        async fn record(&self, completion: &RestoreCompletion) -> shared::Result<()> {
            if self.fail.contains(&completion.key) {
                return Err(shared::Error::upstream("dynamodb", "throttled"));
            }
            self.seen.lock().unwrap().push(completion.key.clone());
            Ok(())
        }
    }

    fn sample(name: &str) -> Value {
        let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn sqs_message(id: &str, body: &str) -> Value {
        json!({"messageId": id, "eventSource": "aws:sqs", "body": body})
    }

    fn s3_body(key: &str) -> String {
        json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectRestore:Completed",
                            "s3": {"bucket": {"name": "b"}, "object": {"key": key}}}]})
        .to_string()
    }

    #[tokio::test]
    async fn sqs_sample_tallies_completions_and_reports_no_failure() {
        let tally = FakeTally::default();
        let answer = handle(sample("sqs-s3-restore-completed.json"), &tally)
            .await
            .unwrap();
        assert_eq!(answer, json!({"batchItemFailures": []}));
        assert_eq!(
            *tally.seen.lock().unwrap(),
            vec![
                "Project 42/Assets/映像 final.mxf",
                "Project 42/Assets/a b.wav"
            ]
        );
    }

    #[tokio::test]
    async fn sqs_reports_only_the_bad_messages() {
        let tally = FakeTally {
            fail: vec!["throttled key".into()],
            ..Default::default()
        };
        let payload = json!({"Records": [
            sqs_message("good", &s3_body("a+b")),
            sqs_message("garbage", "{not json"),
            sqs_message("throttled", &s3_body("throttled+key")),
            sqs_message("good-too", &s3_body("c%2Cd")),
        ]});
        let answer = handle(payload, &tally).await.unwrap();
        assert_eq!(
            answer,
            json!({"batchItemFailures": [
                {"itemIdentifier": "garbage"},
                {"itemIdentifier": "throttled"}
            ]})
        );
        assert_eq!(*tally.seen.lock().unwrap(), vec!["a b", "c,d"]);
    }

    #[tokio::test]
    async fn sqs_failure_without_message_id_fails_the_batch() {
        let payload = json!({"Records": [{"eventSource": "aws:sqs", "body": "nope"}]});
        assert!(handle(payload, &FakeTally::default()).await.is_err());
    }

    #[tokio::test]
    async fn direct_s3_and_eventbridge_samples_are_tallied() {
        let tally = FakeTally::default();
        let answer = handle(sample("s3-restore-completed.json"), &tally)
            .await
            .unwrap();
        assert_eq!(answer, json!({"completed": 1, "ignored": 0}));
        handle(sample("eventbridge-restore-completed.json"), &tally)
            .await
            .unwrap();
        let key = "Project 42/Assets/Café Rushes/take 1+2, 100%.mov";
        assert_eq!(*tally.seen.lock().unwrap(), vec![key, key]);
    }

    #[tokio::test]
    async fn direct_malformed_record_fails_the_invocation_after_tallying_the_rest() {
        let tally = FakeTally::default();
        let payload = json!({"Records": [
            {"eventSource": "aws:s3", "eventName": "ObjectRestore:Completed",
             "s3": {"bucket": {"name": "b"}, "object": {"key": "ok"}}},
            {"eventSource": "aws:s3", "eventName": "ObjectRestore:Completed", "s3": {}},
            {"eventSource": "aws:s3", "eventName": "ObjectRestore:Post",
             "s3": {"bucket": {"name": "b"}, "object": {"key": "post"}}},
        ]});
        let err = handle(payload, &tally).await.unwrap_err();
        assert!(err.to_string().contains("1 malformed"), "{err}");
        assert_eq!(*tally.seen.lock().unwrap(), vec!["ok"]);
    }

    #[tokio::test]
    async fn unrecognised_payload_is_an_error() {
        assert!(handle(json!({"hello": "world"}), &FakeTally::default())
            .await
            .is_err());
    }
}
