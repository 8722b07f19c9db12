//! The sweeper against the emulator: objects whose completion event never came are settled
//! from HeadObject (S3 on moto), what can't complete is failed with a reason, and the job is
//! finalized once.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::StorageClass as SdkClass;
use integration_tests::{aws_config, job_store, restoring_job, s3_client, unique_name};
use shared::adapters::memory::MemoryMailer;
use shared::adapters::s3::S3ObjectStore;
use shared::domain::completion::{Completion, CompletionSettings};
use shared::domain::cost::PriceList;
use shared::domain::object::{ObjectRef, RestoreParams};
use shared::domain::state::{JobState, ObjectState};
use shared::domain::storage::RetrievalTier;
use shared::ports::{JobStore, ObjectStore};

#[tokio::test]
async fn the_sweeper_settles_an_object_whose_event_never_came() {
    let s3 = s3_client().await;
    let assets = unique_name("assets");
    let manifests = unique_name("manifests");
    for bucket in [&assets, &manifests] {
        s3.create_bucket().bucket(bucket).send().await.unwrap();
    }
    for key in ["S/restored.mov", "S/never asked.mov"] {
        s3.put_object()
            .bucket(&assets)
            .key(key)
            .storage_class(SdkClass::Glacier)
            .body(ByteStream::from(vec![b'x'; 64]))
            .send()
            .await
            .unwrap();
    }
    let objects = Arc::new(S3ObjectStore::from_sdk_config(&aws_config().await));
    // Restore one of them (moto completes it at once) but never send its event.
    objects
        .request_restore(
            &ObjectRef {
                bucket: assets.clone(),
                key: "S/restored.mov".into(),
                version_id: None,
            },
            RestoreParams {
                tier: RetrievalTier::Bulk,
                days: Some(3),
            },
        )
        .await
        .unwrap();

    let store = Arc::new(job_store().await);
    let job = unique_name("job");
    restoring_job(
        store.as_ref(),
        &job,
        &unique_name("p"),
        "ed@example.com",
        &assets,
        &[
            ("S/restored.mov", 64),
            ("S/never asked.mov", 64),
            ("S/deleted.mov", 64),
            // Enough objects that one sweep settles them as a batch (a receipt on DynamoDB).
            ("S/deleted 2.mov", 64),
            ("S/deleted 3.mov", 64),
            ("S/deleted 4.mov", 64),
        ],
    )
    .await;
    let mailer = Arc::new(MemoryMailer::new());
    let mut settings = CompletionSettings::new(&manifests, PriceList::aws());
    let completion_with = |settings: CompletionSettings| {
        Completion::new(
            store.clone(),
            objects.clone(),
            Some(mailer.clone()),
            None,
            settings,
        )
    };

    // Inside the tier's window (Bulk: hours) nothing is checked.
    let report = completion_with(settings.clone())
        .sweep(time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!((report.jobs, report.checked), (1, 0));

    // Past it (a zero window here), every pending object is checked once.
    settings.window_override = Some(Duration::ZERO);
    let completion = completion_with(settings);
    let report = completion
        .sweep(time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(report.checked, 6);
    assert_eq!((report.restored, report.failed), (1, 5));
    assert_eq!(report.finalized, vec![job.clone()]);

    let all = store.list_objects(&job, None, 10).await.unwrap().objects;
    let by_key = |k: &str| all.iter().find(|o| o.key == k).unwrap().clone();
    let restored = by_key("S/restored.mov");
    assert_eq!(restored.state, ObjectState::Restored);
    assert!(restored.expiry.is_some(), "expiry from x-amz-restore");
    let never = by_key("S/never asked.mov");
    assert_eq!(never.state, ObjectState::Failed);
    assert!(never.error.unwrap().contains("no restore in progress"));
    for key in [
        "S/deleted.mov",
        "S/deleted 2.mov",
        "S/deleted 3.mov",
        "S/deleted 4.mov",
    ] {
        let deleted = by_key(key);
        assert_eq!(deleted.state, ObjectState::Failed);
        assert_eq!(deleted.error.as_deref(), Some("object no longer exists"));
    }

    let view = store.get_job(&job).await.unwrap().unwrap();
    assert_eq!(view.job.state, JobState::CompletedWithErrors);
    assert_eq!((view.settled.restored, view.settled.failed), (1, 5));
    assert_eq!(mailer.sent().len(), 1);

    // The next sweep finds nothing to do: the job is no longer active.
    let report = completion
        .sweep(time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(report.jobs, 0);
    assert_eq!(mailer.sent().len(), 1);
}
