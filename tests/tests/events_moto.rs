//! The event parser against what the emulator really emits: S3 → SQS notifications for a
//! restore of an object with an awkward key, read back through the SQS SDK and handed to
//! `parse_invocation` in the shape Lambda's SQS trigger delivers.

use std::time::{Duration, Instant};

use aws_sdk_s3::types::{
    Event, GlacierJobParameters, NotificationConfiguration, QueueConfiguration, RestoreRequest,
    StorageClass, Tier,
};
use aws_sdk_sqs::types::QueueAttributeName;
use integration_tests::{aws_config, s3_client, unique_name};
use serde_json::{json, Value};
use shared::domain::event::{parse_invocation, CompletionSource, Invocation, RecordOutcome};

const KEY: &str = "Project 42/Assets/Café 映像 take 1+2, 100%.mov";

#[tokio::test]
async fn moto_restore_notifications_parse_to_a_decoded_completion() {
    let s3 = s3_client().await;
    let sqs = aws_sdk_sqs::Client::new(&aws_config().await);
    let bucket = unique_name("events");
    let queue_url = sqs
        .create_queue()
        .queue_name(unique_name("restore-events"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone();
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    s3.put_bucket_notification_configuration()
        .bucket(&bucket)
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(
                    QueueConfiguration::builder()
                        .queue_arn(queue_arn)
                        .events(Event::from("s3:ObjectRestore:*"))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    s3.put_object()
        .bucket(&bucket)
        .key(KEY)
        .storage_class(StorageClass::Glacier)
        .body(b"frames".to_vec().into())
        .send()
        .await
        .unwrap();
    s3.restore_object()
        .bucket(&bucket)
        .key(KEY)
        .restore_request(
            RestoreRequest::builder()
                .days(1)
                .glacier_job_parameters(
                    GlacierJobParameters::builder()
                        .tier(Tier::Bulk)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();

    // moto fires ObjectRestore:Completed lazily, on a read of the restore status.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut messages: Vec<Value> = Vec::new();
    let mut completions = Vec::new();
    let mut ignored = Vec::new();
    while completions.is_empty() && Instant::now() < deadline {
        s3.head_object()
            .bucket(&bucket)
            .key(KEY)
            .send()
            .await
            .unwrap();
        let received = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let batch: Vec<Value> = received
            .messages()
            .iter()
            .map(|m| {
                json!({
                    "messageId": m.message_id(),
                    "receiptHandle": m.receipt_handle(),
                    "body": m.body(),
                    "eventSource": "aws:sqs",
                    "awsRegion": "us-east-1",
                })
            })
            .collect();
        messages.extend(batch.iter().cloned());
        let Invocation::Sqs(items) = parse_invocation(&json!({ "Records": batch })) else {
            panic!("an SQS invocation")
        };
        for item in items {
            assert!(!item.message_id.is_empty());
            for outcome in item.records {
                match outcome {
                    RecordOutcome::Completed(c) => completions.push(c),
                    RecordOutcome::Ignored { event_name } => ignored.push(event_name),
                    RecordOutcome::Malformed(reason) => {
                        panic!("moto message judged malformed: {reason}\n{messages:?}")
                    }
                }
            }
        }
    }
    assert_eq!(completions.len(), 1, "messages: {messages:#?}");
    let c = &completions[0];
    assert_eq!(c.bucket, bucket);
    assert_eq!(c.key, KEY, "decoded key equals the stored one");
    assert_ne!(c.raw_key, KEY, "moto URL-encodes the key in the event");
    assert_eq!(c.source, CompletionSource::S3Notification);
    assert!(c.event_time.is_some());
    assert!(
        ignored.iter().any(|n| n == "ObjectRestore:Post"),
        "ignored: {ignored:?}"
    );
}
