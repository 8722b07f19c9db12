//! The local events queue on the emulator's SQS: a message the handler reports failed stays on
//! the queue and is retried after the visibility timeout, its good neighbours are deleted, and
//! one that keeps failing ends in the dead-letter queue; an SNS-wrapped notification (what
//! S3 → SNS → SQS delivers) is tallied like a plain one.

use std::sync::Arc;
use std::time::Duration;

use integration_tests::{aws_config, job_store, s3_client, s3_restore_event, unique_name};
use restore_local::events::{EventQueue, QueueSettings};
use serde_json::json;
use shared::adapters::s3::S3ObjectStore;
use shared::domain::completion::{Completion, CompletionSettings};
use shared::domain::cost::PriceList;
use shared::ports::JobStore;

const VISIBILITY: Duration = Duration::from_secs(2);

#[tokio::test]
async fn failed_messages_are_retried_then_dead_lettered_and_good_ones_deleted() {
    let sdk = aws_config().await;
    let objects = Arc::new(S3ObjectStore::from_sdk_config(&sdk));
    let mut settings = QueueSettings::new(unique_name("events"));
    settings.visibility_timeout = VISIBILITY;
    settings.max_receive_count = 2;
    settings.wait = Duration::ZERO;
    let events = EventQueue::ensure(&sdk, s3_client().await, objects.clone(), &settings)
        .await
        .unwrap();
    let store = Arc::new(job_store().await);
    let completion = Completion::new(
        store.clone(),
        objects,
        None,
        None,
        CompletionSettings::new("unused", PriceList::aws()),
    );
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let bucket = unique_name("media");
    let plain = s3_restore_event(&bucket, "a b/plain.mov", "2030-01-01T00:00:00Z");
    let wrapped = json!({
        "Type": "Notification",
        "MessageId": "1",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:restores",
        "Message": s3_restore_event(&bucket, "a b/wrapped.mov", "2030-01-01T00:00:00Z").to_string(),
    });
    for body in [
        plain.to_string(),
        wrapped.to_string(),
        "{not json".to_string(),
    ] {
        sqs.send_message()
            .queue_url(events.url())
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    let first = events.drain(&completion).await.unwrap();
    assert_eq!(
        (first.messages, first.completions, first.failed),
        (3, 2, 1),
        "{first:?}"
    );
    // No job waits for them yet: both kept as early events, keys decoded.
    for key in ["a b/plain.mov", "a b/wrapped.mov"] {
        let early = store.get_early_event(&bucket, key).await.unwrap();
        assert!(early.is_some_and(|e| e.expiry.is_some()), "{key}");
    }
    // The failed one is invisible, not deleted; the good ones are gone for good.
    let again = events.drain(&completion).await.unwrap();
    assert_eq!(again.messages, 0, "{again:?}");
    tokio::time::sleep(VISIBILITY + Duration::from_millis(300)).await;
    let retry = events.drain(&completion).await.unwrap();
    assert_eq!(
        (retry.messages, retry.completions, retry.failed),
        (1, 0, 1),
        "{retry:?}"
    );
    // Received twice (maxReceiveCount): the next receive moves it to the dead-letter queue.
    tokio::time::sleep(VISIBILITY + Duration::from_millis(300)).await;
    let last = events.drain(&completion).await.unwrap();
    assert_eq!(last.messages, 0, "{last:?}");
    let dead = sqs
        .receive_message()
        .queue_url(events.dead_letter_url())
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    let bodies: Vec<&str> = dead.messages().iter().filter_map(|m| m.body()).collect();
    assert_eq!(bodies, vec!["{not json"]);
}

#[tokio::test]
async fn a_missing_bucket_is_a_clear_error() {
    let sdk = aws_config().await;
    let objects = Arc::new(S3ObjectStore::from_sdk_config(&sdk));
    let events = EventQueue::ensure(
        &sdk,
        s3_client().await,
        objects,
        &QueueSettings::new(unique_name("events")),
    )
    .await
    .unwrap();
    let bucket = unique_name("absent");
    let err = events.watch_bucket(&bucket).await.unwrap_err();
    assert!(err.to_string().contains(&bucket), "{err}");
}

#[tokio::test]
async fn watching_keeps_other_entries_and_survives_a_restart() {
    use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration};
    let sdk = aws_config().await;
    let s3 = s3_client().await;
    let objects = Arc::new(S3ObjectStore::from_sdk_config(&sdk));
    let bucket = unique_name("watched");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    // Someone else's entry on the bucket, to another queue.
    let other = EventQueue::ensure(
        &sdk,
        s3.clone(),
        objects.clone(),
        &QueueSettings::new(unique_name("other")),
    )
    .await
    .unwrap();
    let other_arn = format!(
        "arn:aws:sqs:us-east-1:123456789012:{}",
        other.url().rsplit('/').next().unwrap()
    );
    s3.put_bucket_notification_configuration()
        .bucket(&bucket)
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(
                    QueueConfiguration::builder()
                        .id("theirs")
                        .queue_arn(&other_arn)
                        .events(Event::from("s3:ObjectCreated:*"))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let settings = QueueSettings::new(unique_name("events"));
    for _restart in 0..2 {
        let events = EventQueue::ensure(&sdk, s3.clone(), objects.clone(), &settings)
            .await
            .unwrap();
        events.watch_bucket(&bucket).await.unwrap();
    }
    let config = s3
        .get_bucket_notification_configuration()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let mut ids: Vec<&str> = config
        .queue_configurations()
        .iter()
        .filter_map(|q| q.id())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, vec!["restore-local-events", "theirs"]);
}
