//! End to end on the emulator, events from moto's own S3 → SQS notifications: archived objects
//! with awkward keys are restored, moto's `ObjectRestore:Completed` messages (each delivered
//! twice) are the only thing that counts them, an object whose notification was dropped and
//! one whose restore never started are settled by the sweeper, and the job is finalized once:
//! manifest and report in S3, one mail through SES (read back from moto).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::StorageClass as SdkClass;
use integration_tests::{
    aws_config, job_store, moto_api_get, restoring_job, s3_client, sesv2_client, unique_name,
    verify_sender,
};
use restore_local::events::{EventQueue, QueueSettings};
use restore_local::pipeline::{Pipeline, PipelineSettings};
use serde_json::Value;
use shared::adapters::s3::S3ObjectStore;
use shared::adapters::ses::SesMailer;
use shared::domain::completion::{Completion, CompletionSettings};
use shared::domain::cost::PriceList;
use shared::domain::event::{parse_payload, RecordOutcome};
use shared::domain::manifest::Report;
use shared::domain::object::{ObjectRef, RestoreParams};
use shared::domain::state::{JobState, ObjectState};
use shared::domain::storage::RetrievalTier;
use shared::ports::{JobStore, ObjectStore};

const KEYS: [&str; 6] = [
    "Film/rushes/a+b.mov",
    "Film/rushes/100% final.mov",
    "Film/audio/mix, v2.wav",
    "Film/two  spaces/clip .mxf",
    "Film/Café 映像/ü.mov",
    "Film/plain.mov",
];
/// Restored, but moto moved it to restored before the bucket notified the queue: its
/// notification never comes.
const DROPPED: &str = "Film/dropped notice.mov";
/// Archived, but its restore was never asked for: no event will ever come.
const ORPHAN: &str = "Film/never requested.mov";

fn bulk() -> RestoreParams {
    RestoreParams {
        tier: RetrievalTier::Bulk,
        days: Some(2),
    }
}

fn target(bucket: &str, key: &str) -> ObjectRef {
    ObjectRef {
        bucket: bucket.into(),
        key: key.into(),
        version_id: None,
    }
}

#[tokio::test]
async fn counts_come_from_sqs_deliveries_and_the_sweeper_settles_the_rest() {
    let s3 = s3_client().await;
    let sdk = aws_config().await;
    let (assets, manifests) = (unique_name("assets"), unique_name("manifests"));
    for bucket in [&assets, &manifests] {
        s3.create_bucket().bucket(bucket).send().await.unwrap();
    }
    for key in KEYS.iter().chain([&DROPPED, &ORPHAN]) {
        s3.put_object()
            .bucket(&assets)
            .key(*key)
            .storage_class(SdkClass::Glacier)
            .body(ByteStream::from(vec![b'm'; 1024]))
            .send()
            .await
            .unwrap();
    }
    let objects = Arc::new(S3ObjectStore::from_sdk_config(&sdk));
    // DROPPED finishes (moto moves it on at this read) before anyone listens.
    objects
        .request_restore(&target(&assets, DROPPED), bulk())
        .await
        .unwrap();
    let head = objects.head(&target(&assets, DROPPED)).await.unwrap();
    assert!(!head.restore.unwrap().ongoing, "moto restores at once");

    let events = Arc::new(
        EventQueue::ensure(
            &sdk,
            s3.clone(),
            objects.clone(),
            &QueueSettings::new(unique_name("events")),
        )
        .await
        .unwrap(),
    );
    events.watch_bucket(&assets).await.unwrap();
    events.watch_bucket(&assets).await.unwrap(); // idempotent
    let config = s3
        .get_bucket_notification_configuration()
        .bucket(&assets)
        .send()
        .await
        .unwrap();
    assert_eq!(config.queue_configurations().len(), 1);
    for key in KEYS {
        objects
            .request_restore(&target(&assets, key), bulk())
            .await
            .unwrap();
    }
    let store = Arc::new(job_store().await);
    let job = unique_name("job");
    let project = unique_name("film");
    let recorded: Vec<(&str, u64)> = KEYS
        .iter()
        .chain([&DROPPED, &ORPHAN])
        .map(|k| (*k, 1024))
        .collect();
    restoring_job(
        store.as_ref(),
        &job,
        &project,
        "editor@example.com",
        &assets,
        &recorded,
    )
    .await;

    // Read every restore status (what makes moto notify), then take moto's messages off the
    // queue and put each body back twice: a duplicated delivery, as SQS may do.
    for key in KEYS {
        objects.head(&target(&assets, key)).await.unwrap();
    }
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let mut bodies = Vec::new();
    loop {
        let received = sqs
            .receive_message()
            .queue_url(events.url())
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        if received.messages().is_empty() {
            break;
        }
        for message in received.messages() {
            bodies.push(message.body().unwrap().to_string());
            sqs.delete_message()
                .queue_url(events.url())
                .receipt_handle(message.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for body in &bodies {
        for outcome in parse_payload(&serde_json::from_str(body).unwrap()) {
            let kind = match outcome {
                RecordOutcome::Completed(c) => {
                    assert!(KEYS.contains(&c.key.as_str()), "{c:?}");
                    "completed".to_string()
                }
                RecordOutcome::Ignored { event_name } => event_name,
                RecordOutcome::Malformed(why) => panic!("{why}: {body}"),
            };
            *kinds.entry(kind).or_default() += 1;
        }
    }
    assert_eq!(kinds.get("completed"), Some(&KEYS.len()), "{kinds:?}");
    assert_eq!(
        kinds.get("ObjectRestore:Post"),
        Some(&KEYS.len()),
        "{kinds:?}"
    );
    assert_eq!(kinds.get("s3:TestEvent"), Some(&1), "{kinds:?}");
    for body in bodies.iter().chain(&bodies) {
        sqs.send_message()
            .queue_url(events.url())
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    let sender = format!("{}@restore.example.com", unique_name("pluto"));
    verify_sender(&sender).await;
    let mut settings = CompletionSettings::new(&manifests, PriceList::aws());
    settings.notification_emails = vec!["media-ops@example.com".into()];
    settings.project_url = "https://pluto.example.com/project/".into();
    settings.window_override = Some(Duration::ZERO);
    let completion = Arc::new(Completion::new(
        store.clone(),
        objects.clone(),
        Some(Arc::new(
            SesMailer::new(sesv2_client().await, &sender).unwrap(),
        )),
        None,
        settings,
    ));
    let pipeline = Pipeline::new(
        completion,
        store.clone(),
        objects.clone(),
        events.clone(),
        None,
        PipelineSettings {
            poll_interval: Duration::from_millis(100),
            sweep_interval: Duration::from_secs(3600),
        },
    );
    let (mut messages, mut completions, mut settled) = (0, 0, 0);
    for _ in 0..3 {
        let tick = pipeline.tick().await.unwrap();
        messages += tick.messages;
        completions += tick.events;
        settled += tick.settled;
        assert_eq!(tick.failed_messages, 0);
        assert!(tick.active.contains(&job));
    }
    assert_eq!(messages, 2 * bodies.len());
    assert_eq!(
        completions,
        2 * KEYS.len(),
        "every delivery reached the handler"
    );
    assert_eq!(settled, KEYS.len(), "each object counted once");
    let view = store.get_job(&job).await.unwrap().unwrap();
    assert_eq!(view.job.state, JobState::Restoring);
    assert_eq!((view.settled.restored, view.pending()), (6, 2));
    // The pipeline read DROPPED too (restored, says HeadObject), but only events count.
    let page = store.list_objects(&job, None, 100).await.unwrap();
    let dropped = page.objects.iter().find(|o| o.key == DROPPED).unwrap();
    assert!(dropped.is_pending());

    // The sweeper is the safety net for the event that never came.
    let sweep = pipeline.sweep().await.unwrap();
    assert_eq!((sweep.restored, sweep.failed), (1, 1), "{sweep:?}");
    assert_eq!(sweep.finalized, vec![job.clone()]);

    let view = store.get_job(&job).await.unwrap().unwrap();
    assert_eq!(view.job.state, JobState::CompletedWithErrors);
    assert_eq!((view.settled.restored, view.settled.failed), (7, 1));
    assert_eq!(view.settled.restored_bytes, 7 * 1024);

    let get = |key: String| {
        let s3 = s3.clone();
        let bucket = manifests.clone();
        async move {
            let out = s3
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .unwrap();
            String::from_utf8(out.body.collect().await.unwrap().into_bytes().to_vec()).unwrap()
        }
    };
    let csv = get(format!("{job}/manifest.csv")).await;
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 7, "{csv}");
    for line in &lines {
        let (bucket, key) = line.split_once(',').unwrap();
        assert_eq!(bucket, assets);
        assert!(!key.contains([',', ' ', '+']), "unencoded key in {line}");
        let decoded = percent_decode(key);
        assert!(
            KEYS.contains(&decoded.as_str()) || decoded == DROPPED,
            "{decoded}"
        );
    }
    let report: Report = serde_json::from_str(&get(format!("{job}/report.json")).await).unwrap();
    assert_eq!(report.totals.restored, 7);
    let orphan = report.objects.iter().find(|o| o.key == ORPHAN).unwrap();
    assert_eq!(orphan.state, ObjectState::Failed);
    assert!(report
        .objects
        .iter()
        .filter(|o| o.state == ObjectState::Restored)
        .all(|o| o.expiry.is_some()));

    let data: Value = serde_json::from_str(&moto_api_get("/moto-api/data.json")).unwrap();
    let mails: Vec<&Value> = data["ses"]["Message"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["source"].as_str() == Some(sender.as_str()))
        .collect();
    assert_eq!(mails.len(), 1);
    let body = mails[0]["body"].as_str().unwrap();
    assert!(body.contains(&format!("https://pluto.example.com/project/{project}")));
    assert!(body.contains(ORPHAN), "the failure is named: {body}");
    assert!(body.contains(&format!("s3://{manifests}/{job}/manifest.csv")));

    // More passes change nothing.
    pipeline.tick().await.unwrap();
    pipeline.sweep().await.unwrap();
    let data: Value = serde_json::from_str(&moto_api_get("/moto-api/data.json")).unwrap();
    let again = data["ses"]["Message"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["source"].as_str() == Some(sender.as_str()))
        .count();
    assert_eq!(again, 1);
    assert_eq!(
        store.get_job(&job).await.unwrap().unwrap().settled.restored,
        7
    );
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}
