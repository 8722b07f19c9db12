//! The pipeline against moto's timed restores (its own emulator: the transition is global):
//! restores really are in progress for a while, the pipeline's HeadObject reads move moto's
//! restore state on, moto's S3 → SQS notifications arrive only then, and they finish the job
//! once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::StorageClass as SdkClass;
use integration_tests::{
    aws_config, job_store, moto_api_post, moto_endpoint, restoring_job, s3_client, unique_name,
};
use restore_local::events::{EventQueue, QueueSettings};
use restore_local::pipeline::{Pipeline, PipelineSettings};
use shared::adapters::memory::MemoryMailer;
use shared::adapters::s3::S3ObjectStore;
use shared::domain::completion::{Completion, CompletionSettings};
use shared::domain::cost::PriceList;
use shared::domain::object::{ObjectRef, RestoreParams};
use shared::domain::state::JobState;
use shared::domain::storage::RetrievalTier;
use shared::ports::{JobStore, ObjectStore};

const SECONDS: u64 = 2;

#[tokio::test]
async fn completions_arrive_when_moto_finishes_the_restores() {
    if std::env::var("MOTO_ENDPOINT").is_ok_and(|v| !v.is_empty()) {
        // A shared emulator: changing its global restore transition would disturb other tests.
        eprintln!("skipped: needs its own emulator (unset MOTO_ENDPOINT)");
        return;
    }
    let status = moto_api_post(
        moto_endpoint(),
        "/moto-api/state-manager/set-transition",
        &format!(
            r#"{{"model_name": "s3::keyrestore", "transition": {{"progression": "time", "seconds": {SECONDS}}}}}"#
        ),
    );
    assert_eq!(status, 201, "set-transition");
    let s3 = s3_client().await;
    let (assets, manifests) = (unique_name("assets"), unique_name("manifests"));
    for bucket in [&assets, &manifests] {
        s3.create_bucket().bucket(bucket).send().await.unwrap();
    }
    let keys = ["T/one.mov", "T/two words.mov"];
    for key in keys {
        s3.put_object()
            .bucket(&assets)
            .key(key)
            .storage_class(SdkClass::Glacier)
            .body(ByteStream::from_static(b"media"))
            .send()
            .await
            .unwrap();
    }
    // moto's restore clock starts at object creation (DESIGN §8).
    tokio::time::sleep(Duration::from_secs(SECONDS) + Duration::from_millis(200)).await;
    let sdk = aws_config().await;
    let objects = Arc::new(S3ObjectStore::from_sdk_config(&sdk));
    let events = EventQueue::ensure(
        &sdk,
        s3.clone(),
        objects.clone(),
        &QueueSettings::new(unique_name("events")),
    )
    .await
    .unwrap();
    events.watch_bucket(&assets).await.unwrap();
    for key in keys {
        let target = ObjectRef {
            bucket: assets.clone(),
            key: key.into(),
            version_id: None,
        };
        let params = RestoreParams {
            tier: RetrievalTier::Expedited,
            days: Some(1),
        };
        objects.request_restore(&target, params).await.unwrap();
    }
    let store = Arc::new(job_store().await);
    let job = unique_name("job");
    let recorded: Vec<(&str, u64)> = keys.iter().map(|k| (*k, 5)).collect();
    restoring_job(
        store.as_ref(),
        &job,
        &unique_name("p"),
        "ed@example.com",
        &assets,
        &recorded,
    )
    .await;
    let mailer = Arc::new(MemoryMailer::new());
    let completion = Arc::new(Completion::new(
        store.clone(),
        objects.clone(),
        Some(mailer.clone()),
        None,
        CompletionSettings::new(&manifests, PriceList::aws()),
    ));
    let pipeline = Pipeline::new(
        completion,
        store.clone(),
        objects.clone(),
        Arc::new(events),
        None,
        PipelineSettings {
            poll_interval: Duration::from_millis(250),
            sweep_interval: Duration::from_secs(3600),
        },
    );

    let started = Instant::now();
    let mut saw_in_progress = false;
    let mut settled = 0;
    let finalized = pipeline
        .run_until(|tick| {
            if tick.active.contains(&job) && tick.events == 0 {
                saw_in_progress = true;
            }
            settled += tick.settled;
            !tick.active.contains(&job) || started.elapsed() > Duration::from_secs(30)
        })
        .await
        .unwrap();
    assert_eq!(finalized, vec![job.clone()], "not finished in 30 s");
    assert!(saw_in_progress, "the restores were never seen in progress");
    assert_eq!(settled, 2, "both counted from SQS events");
    let view = store.get_job(&job).await.unwrap().unwrap();
    assert_eq!(view.job.state, JobState::Completed);
    assert_eq!(view.settled.restored, 2);
    assert_eq!(mailer.sent().len(), 1);
}
