//! The emulator's own restore notifications (S3 → SQS), consumed the way Lambda's SQS trigger
//! does for `restore-events`: long-poll `ReceiveMessage`, hand the batch to the events handler
//! ([`Completion::handle_events`], the Lambda's code path), delete the messages it accepted,
//! and leave the ones it reports failed for a retry (after the visibility timeout; the queue's
//! redrive policy moves a message that keeps failing to the dead-letter queue).
//!
//! moto specifics, handled here rather than in the shared parser:
//! * it sends `ObjectRestore:Completed` lazily, when something reads the object's restore
//!   status after moto's transition time, so the pipeline still reads pending objects with
//!   HeadObject; the count comes from the messages only;
//! * its records lack `glacierEventData`, so the expiry of the restored copy, which S3 would
//!   send, is read from HeadObject and added to the record before the handler sees it;
//! * it sends `s3:TestEvent` when a bucket's notification configuration is set and
//!   `ObjectRestore:Post` on each RestoreObject; the handler acknowledges and ignores both.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, QueueAttributeName};
use serde_json::{json, Value};
use shared::domain::completion::Completion;
use shared::domain::event::{parse_payload, RecordOutcome, S3_RESTORE_COMPLETED};
use shared::domain::object::ObjectRef;
use shared::ports::ObjectStore;
use shared::{Error, Result};
use time::format_description::well_known::Rfc3339;

/// Name of the local events queue when `EVENTS_QUEUE` is unset.
pub const DEFAULT_QUEUE: &str = "restore-events-local";
/// The S3 events the asset buckets send to the queue. `Post` is acknowledged and ignored, as
/// in AWS where a bucket may be configured for both.
pub const EVENTS: [&str; 2] = ["s3:ObjectRestore:Completed", "s3:ObjectRestore:Post"];
/// Id of our entry in a bucket's notification configuration.
const CONFIGURATION_ID: &str = "restore-local-events";

/// Queue settings.
#[derive(Debug, Clone)]
pub struct QueueSettings {
    /// Queue name; the dead-letter queue is `<name>-dlq`.
    pub name: String,
    /// How long a received message stays invisible: the delay before a failed one is retried.
    pub visibility_timeout: Duration,
    /// Receives after which a message that keeps failing moves to the dead-letter queue.
    pub max_receive_count: u32,
    /// Long-poll wait of the first `ReceiveMessage` of a drain (the rest don't wait).
    pub wait: Duration,
}

impl QueueSettings {
    pub fn new(name: impl Into<String>) -> Self {
        QueueSettings {
            name: name.into(),
            visibility_timeout: Duration::from_secs(5),
            max_receive_count: 5,
            wait: Duration::from_secs(1),
        }
    }
}

/// What one drain of the queue did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    /// SQS messages received.
    pub messages: usize,
    /// Restore completions in them handed to the handler (duplicates included).
    pub completions: usize,
    /// Objects the handler settled from them (a duplicate settles none).
    pub settled: usize,
    /// Records acknowledged and ignored (`ObjectRestore:Post`, `s3:TestEvent`).
    pub ignored: usize,
    /// Messages the handler reported failed, left on the queue for a retry.
    pub failed: usize,
}

impl Delivery {
    fn add(&mut self, other: &Delivery) {
        self.messages += other.messages;
        self.completions += other.completions;
        self.settled += other.settled;
        self.ignored += other.ignored;
        self.failed += other.failed;
    }
}

/// The local events queue and the buckets whose restore notifications go to it.
pub struct EventQueue {
    sqs: aws_sdk_sqs::Client,
    s3: aws_sdk_s3::Client,
    objects: Arc<dyn ObjectStore>,
    url: String,
    arn: String,
    dead_letter_url: String,
    wait: Duration,
    watched: Mutex<BTreeSet<String>>,
}

fn sqs_error(op: &str, err: impl std::error::Error + 'static) -> Error {
    Error::upstream(
        "sqs",
        format!("{op}: {}", aws_sdk_sqs::error::DisplayErrorContext(err)),
    )
}

fn s3_error(op: &str, bucket: &str, err: impl std::error::Error + 'static) -> Error {
    Error::upstream(
        "s3",
        format!(
            "{op} {bucket}: {}",
            aws_sdk_s3::error::DisplayErrorContext(err)
        ),
    )
}

impl EventQueue {
    /// Creates the queue and its dead-letter queue when missing (same attributes every time,
    /// so a second start finds them as they are).
    pub async fn ensure(
        sdk: &aws_config::SdkConfig,
        s3: aws_sdk_s3::Client,
        objects: Arc<dyn ObjectStore>,
        settings: &QueueSettings,
    ) -> Result<Self> {
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let dead_letter_url = create_queue(&sqs, &format!("{}-dlq", settings.name), None).await?;
        let dead_letter_arn = queue_arn(&sqs, &dead_letter_url).await?;
        let redrive = json!({
            "deadLetterTargetArn": dead_letter_arn,
            "maxReceiveCount": settings.max_receive_count.to_string(),
        })
        .to_string();
        let url = create_queue(
            &sqs,
            &settings.name,
            Some((settings.visibility_timeout, redrive)),
        )
        .await?;
        let arn = queue_arn(&sqs, &url).await?;
        Ok(EventQueue {
            sqs,
            s3,
            objects,
            url,
            arn,
            dead_letter_url,
            wait: settings.wait,
            watched: Mutex::default(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn dead_letter_url(&self) -> &str {
        &self.dead_letter_url
    }

    /// Makes `bucket` send its restore notifications to the queue, keeping the bucket's other
    /// notification entries. Idempotent; remembered, so the pipeline may call it per object.
    pub async fn watch_bucket(&self, bucket: &str) -> Result<()> {
        if self.watched.lock().expect("lock").contains(bucket) {
            return Ok(());
        }
        let current = match self
            .s3
            .get_bucket_notification_configuration()
            .bucket(bucket)
            .send()
            .await
        {
            Ok(current) => current,
            // moto answers a bucket without configuration with a 200 whose XML root
            // (`GetBucketNotificationResponse`) the SDK rejects: nothing to keep.
            Err(err) if err.raw_response().is_some_and(|r| r.status().as_u16() == 200) => {
                aws_sdk_s3::operation::get_bucket_notification_configuration::GetBucketNotificationConfigurationOutput::builder().build()
            }
            Err(err) => return Err(s3_error("GetBucketNotificationConfiguration", bucket, err)),
        };
        let ours = current
            .queue_configurations()
            .iter()
            .any(|q| q.queue_arn() == self.arn);
        if !ours {
            let mut queues = current.queue_configurations().to_vec();
            queues.push(
                QueueConfiguration::builder()
                    .id(CONFIGURATION_ID)
                    .queue_arn(&self.arn)
                    .set_events(Some(EVENTS.iter().map(|e| Event::from(*e)).collect()))
                    .build()
                    .map_err(|e| Error::Internal(format!("queue configuration: {e}")))?,
            );
            let config = NotificationConfiguration::builder()
                .set_queue_configurations(Some(queues))
                .set_topic_configurations(Some(current.topic_configurations().to_vec()))
                .set_lambda_function_configurations(Some(
                    current.lambda_function_configurations().to_vec(),
                ))
                .set_event_bridge_configuration(current.event_bridge_configuration().cloned())
                .build();
            self.s3
                .put_bucket_notification_configuration()
                .bucket(bucket)
                .notification_configuration(config)
                .send()
                .await
                .map_err(|e| s3_error("PutBucketNotificationConfiguration", bucket, e))?;
            tracing::info!(bucket, queue = %self.arn, "restore notifications go to the queue");
        }
        self.watched
            .lock()
            .expect("lock")
            .insert(bucket.to_string());
        Ok(())
    }

    /// Receives until the queue is empty (the first call long-polls for `wait`), hands each
    /// batch to the events handler and deletes what it accepted.
    pub async fn drain(&self, completion: &Completion) -> Result<Delivery> {
        let mut total = Delivery::default();
        // Bounded, so a flood of messages can't starve the rest of the pass.
        for round in 0..100 {
            let wait = if round == 0 {
                self.wait
            } else {
                Duration::ZERO
            };
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(10)
                .wait_time_seconds(wait.as_secs().min(20) as i32)
                .send()
                .await
                .map_err(|e| sqs_error("ReceiveMessage", e))?;
            let messages = received.messages();
            if messages.is_empty() {
                break;
            }
            total.add(&self.deliver(completion, messages).await?);
        }
        Ok(total)
    }

    /// One received batch, in the shape Lambda's SQS trigger delivers it.
    async fn deliver(&self, completion: &Completion, messages: &[Message]) -> Result<Delivery> {
        let mut records = Vec::with_capacity(messages.len());
        for message in messages {
            let body = self.with_expiry(message.body().unwrap_or_default()).await;
            records.push(json!({
                "messageId": message.message_id().unwrap_or_default(),
                "receiptHandle": message.receipt_handle().unwrap_or_default(),
                "body": body,
                "eventSource": "aws:sqs",
                "eventSourceARN": self.arn,
                "awsRegion": "us-east-1",
            }));
        }
        let result = completion
            .handle_events(&json!({ "Records": records }))
            .await?;
        let failed: BTreeSet<&str> = result.response["batchItemFailures"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["itemIdentifier"].as_str())
            .collect();
        let accepted: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .enumerate()
            .filter(|(_, m)| !failed.contains(m.message_id().unwrap_or_default()))
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle()?)
                    .build()
                    .ok()
            })
            .collect();
        if !accepted.is_empty() {
            let deleted = self
                .sqs
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(accepted))
                .send()
                .await
                .map_err(|e| sqs_error("DeleteMessageBatch", e))?;
            for failure in deleted.failed() {
                // Redelivered later; the tally is idempotent.
                tracing::warn!(
                    entry = failure.id(),
                    reason = failure.message(),
                    "message not deleted"
                );
            }
        }
        for id in &failed {
            tracing::warn!(message_id = id, "message kept on the queue for a retry");
        }
        Ok(Delivery {
            messages: messages.len(),
            completions: result.completed,
            settled: result.settled,
            ignored: result.ignored,
            failed: failed.len(),
        })
    }

    /// Adds `glacierEventData` with the restored copy's expiry (from HeadObject) to moto's
    /// completion records, which lack it. Anything else is passed on untouched.
    async fn with_expiry(&self, body: &str) -> String {
        let Ok(mut payload) = serde_json::from_str::<Value>(body) else {
            return body.to_string();
        };
        let Some(records) = payload.get_mut("Records").and_then(Value::as_array_mut) else {
            return body.to_string();
        };
        for record in records.iter_mut() {
            let completed = record["eventName"]
                .as_str()
                .is_some_and(|n| n.trim_start_matches("s3:") == S3_RESTORE_COMPLETED);
            if !completed || record.get("glacierEventData").is_some() {
                continue;
            }
            let outcome = parse_payload(&json!({ "Records": [record.clone()] }));
            let [RecordOutcome::Completed(event)] = outcome.as_slice() else {
                continue;
            };
            let target = ObjectRef {
                bucket: event.bucket.clone(),
                key: event.key.clone(),
                version_id: event.version_id.clone(),
            };
            let expiry = match self.objects.head(&target).await {
                Ok(head) => head.restore.and_then(|r| r.expiry),
                Err(err) => {
                    tracing::debug!(key = %event.key, error = %err, "no expiry for the event");
                    None
                }
            };
            if let Some(expiry) = expiry.and_then(|e| e.format(&Rfc3339).ok()) {
                record["glacierEventData"] = json!({"restoreEventData": {
                    "lifecycleRestorationExpiryTime": expiry,
                }});
            }
        }
        payload.to_string()
    }
}

async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    main: Option<(Duration, String)>,
) -> Result<String> {
    let mut request = sqs.create_queue().queue_name(name);
    if let Some((visibility, redrive)) = main {
        request = request
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                visibility.as_secs().to_string(),
            )
            .attributes(QueueAttributeName::RedrivePolicy, redrive);
    }
    request
        .send()
        .await
        .map_err(|e| sqs_error(&format!("CreateQueue {name}"), e))?
        .queue_url
        .ok_or_else(|| Error::upstream("sqs", format!("CreateQueue {name}: no queue URL")))
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<String> {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| sqs_error("GetQueueAttributes", e))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| Error::upstream("sqs", format!("no QueueArn for {url}")))
}
