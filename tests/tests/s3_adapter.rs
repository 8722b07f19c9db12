//! The S3 adapter against moto through the real SDK client: listing and classification,
//! RestoreObject answers (202, 200, 403), HeadObject restore state, PutObject, and errors.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::StorageClass as SdkClass;
use integration_tests::{aws_config, s3_client, unique_name};
use shared::adapters::s3::S3ObjectStore;
use shared::domain::object::{ObjectRef, RestoreOutcome, RestoreParams};
use shared::domain::storage::{Classification, RestorePolicy, RetrievalTier, StorageClass};
use shared::ports::ObjectStore;
use shared::Error;

async fn store() -> S3ObjectStore {
    S3ObjectStore::from_sdk_config(&aws_config().await)
}

/// A bucket with one object per storage class under `project/`, plus a folder key and an
/// object outside the prefix.
async fn seeded_bucket() -> String {
    let s3 = s3_client().await;
    let bucket = unique_name("s3adapter");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let objects: &[(&str, SdkClass, usize)] = &[
        ("project/Assets/clip 1.mov", SdkClass::Glacier, 1000),
        (
            "project/Assets/deep/clip-2.mxf",
            SdkClass::DeepArchive,
            2000,
        ),
        ("project/Assets/proxy.mp4", SdkClass::Standard, 300),
        ("project/Assets/poster.png", SdkClass::GlacierIr, 40),
        (
            "project/Assets/tiered.wav",
            SdkClass::IntelligentTiering,
            50,
        ),
        ("project/Assets/folder/", SdkClass::Standard, 0),
        ("other/unrelated.mov", SdkClass::Glacier, 10),
    ];
    for (key, class, size) in objects {
        s3.put_object()
            .bucket(&bucket)
            .key(*key)
            .storage_class(class.clone())
            .body(ByteStream::from(vec![b'x'; *size]))
            .send()
            .await
            .unwrap();
    }
    bucket
}

fn object(bucket: &str, key: &str) -> ObjectRef {
    ObjectRef {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        version_id: None,
    }
}

const STANDARD_7_DAYS: RestoreParams = RestoreParams {
    tier: RetrievalTier::Standard,
    days: Some(7),
};

#[tokio::test]
async fn listing_pages_through_the_prefix_with_classes_and_sizes() {
    let bucket = seeded_bucket().await;
    let store = store().await;

    let mut listed = Vec::new();
    let mut continuation: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store
            .list_page(&bucket, "project/", continuation.as_deref(), 2)
            .await
            .expect("list page");
        assert!(page.objects.len() <= 2, "max_keys respected");
        pages += 1;
        listed.extend(page.objects);
        match page.next {
            Some(next) => continuation = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3, "6 keys in pages of 2");

    let mut seen: Vec<(String, StorageClass, u64)> = listed
        .iter()
        .map(|o| (o.key.clone(), o.storage_class.clone(), o.size))
        .collect();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        seen,
        vec![
            (
                "project/Assets/clip 1.mov".into(),
                StorageClass::Glacier,
                1000
            ),
            (
                "project/Assets/deep/clip-2.mxf".into(),
                StorageClass::DeepArchive,
                2000
            ),
            ("project/Assets/folder/".into(), StorageClass::Standard, 0),
            (
                "project/Assets/poster.png".into(),
                StorageClass::GlacierIr,
                40
            ),
            (
                "project/Assets/proxy.mp4".into(),
                StorageClass::Standard,
                300
            ),
            (
                "project/Assets/tiered.wav".into(),
                StorageClass::IntelligentTiering,
                50
            ),
        ],
        "every object under the prefix, folder key included, nothing outside it"
    );
    assert!(listed.iter().all(|o| o.bucket == bucket));
    // moto 5.2 ignores OptionalObjectAttributes: no restore status, not an error.
    assert!(listed.iter().all(|o| o.restore.is_none()));

    // Classification of what was listed, for an Expedited request.
    let policy = RestorePolicy { days: 7 };
    let plan = |key: &str| {
        let object = listed.iter().find(|o| o.key == key).unwrap();
        object.classify(RetrievalTier::Expedited, policy)
    };
    for key in ["project/Assets/proxy.mp4", "project/Assets/poster.png"] {
        assert_eq!(plan(key), Classification::Readable, "{key}");
    }
    let Classification::Restore(glacier) = plan("project/Assets/clip 1.mov") else {
        panic!("GLACIER needs a restore")
    };
    assert_eq!(glacier.params.tier, RetrievalTier::Expedited);
    assert_eq!(glacier.params.days, Some(7));
    let Classification::Restore(deep) = plan("project/Assets/deep/clip-2.mxf") else {
        panic!("DEEP_ARCHIVE needs a restore")
    };
    assert_eq!(
        deep.params.tier,
        RetrievalTier::Standard,
        "no Expedited for Deep Archive"
    );
    assert!(deep.fallback.is_some());
    let Classification::Restore(tiered) = plan("project/Assets/tiered.wav") else {
        panic!("INTELLIGENT_TIERING gets a restore attempt")
    };
    assert_eq!(
        tiered.params.days, None,
        "never Days for Intelligent-Tiering"
    );
}

#[tokio::test]
async fn empty_prefix_lists_nothing() {
    let bucket = seeded_bucket().await;
    let page = store()
        .await
        .list_page(&bucket, "no-such-project/", None, 1000)
        .await
        .unwrap();
    assert!(page.objects.is_empty());
    assert_eq!(page.next, None);
}

#[tokio::test]
async fn restore_answers_202_then_200_and_head_shows_the_restored_copy() {
    let bucket = seeded_bucket().await;
    let store = store().await;
    for key in [
        "project/Assets/clip 1.mov",
        "project/Assets/deep/clip-2.mxf",
    ] {
        let target = object(&bucket, key);
        let before = store.head(&target).await.unwrap();
        assert_eq!(before.restore, None, "never asked: no x-amz-restore");

        let first = store
            .request_restore(&target, STANDARD_7_DAYS)
            .await
            .unwrap();
        assert_eq!(first, RestoreOutcome::Started, "{key}: 202 Accepted");
        let second = store
            .request_restore(&target, STANDARD_7_DAYS)
            .await
            .unwrap();
        assert_eq!(second, RestoreOutcome::AlreadyRestored, "{key}: 200 OK");

        let head = store.head(&target).await.unwrap();
        let restore = head.restore.expect("x-amz-restore after a restore");
        assert!(
            !restore.ongoing,
            "moto without a transition restores at once"
        );
        let expiry = restore.expiry.expect("expiry date of the restored copy");
        let days = (expiry - time::OffsetDateTime::now_utc()).whole_hours();
        assert!(
            (6 * 24..=7 * 24 + 1).contains(&days),
            "expiry about 7 days out, got {days} h"
        );
    }
}

#[tokio::test]
async fn head_reports_size_and_class() {
    let bucket = seeded_bucket().await;
    let store = store().await;
    let head = store
        .head(&object(&bucket, "project/Assets/deep/clip-2.mxf"))
        .await
        .unwrap();
    assert_eq!(head.size, 2000);
    assert_eq!(head.storage_class, StorageClass::DeepArchive);
    assert_eq!(head.archive_status, None);
    let head = store
        .head(&object(&bucket, "project/Assets/proxy.mp4"))
        .await
        .unwrap();
    assert_eq!(
        head.storage_class,
        StorageClass::Standard,
        "no header means STANDARD"
    );
}

#[tokio::test]
async fn restore_of_a_readable_object_is_not_needed() {
    let bucket = seeded_bucket().await;
    let store = store().await;
    for key in [
        "project/Assets/proxy.mp4",
        "project/Assets/poster.png",
        "project/Assets/tiered.wav",
    ] {
        let target = object(&bucket, key);
        let params = if key.ends_with(".wav") {
            RestoreParams {
                tier: RetrievalTier::Standard,
                days: None,
            }
        } else {
            STANDARD_7_DAYS
        };
        let outcome = store.request_restore(&target, params).await.unwrap();
        assert_eq!(
            outcome,
            RestoreOutcome::NotNeeded,
            "{key}: 403 InvalidObjectState"
        );
        let head = store.head(&target).await.unwrap();
        assert_eq!(head.restore, None, "{key}: nothing was restored");
    }
}

#[tokio::test]
async fn restore_of_a_missing_key_is_an_upstream_error_naming_code_and_key() {
    let bucket = seeded_bucket().await;
    let err = store()
        .await
        .request_restore(&object(&bucket, "project/Assets/gone.mov"), STANDARD_7_DAYS)
        .await
        .unwrap_err();
    match &err {
        Error::Upstream { service, message } => {
            assert_eq!(*service, "s3");
            assert!(message.contains("NoSuchKey"), "{message}");
            assert!(message.contains("project/Assets/gone.mov"), "{message}");
            assert!(message.contains("RestoreObject"), "{message}");
        }
        other => panic!("expected Upstream, got {other:?}"),
    }
}

#[tokio::test]
async fn head_of_a_missing_key_is_not_found() {
    let bucket = seeded_bucket().await;
    let err = store()
        .await
        .head(&object(&bucket, "project/Assets/gone.mov"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "object_not_found");
    assert!(err.to_string().contains("project/Assets/gone.mov"));
}

#[tokio::test]
async fn listing_a_missing_bucket_is_an_upstream_error() {
    let bucket = unique_name("missing");
    let err = store()
        .await
        .list_page(&bucket, "project/", None, 10)
        .await
        .unwrap_err();
    match &err {
        Error::Upstream { message, .. } => {
            assert!(message.contains("NoSuchBucket"), "{message}");
            assert!(message.contains(&bucket), "{message}");
        }
        other => panic!("expected Upstream, got {other:?}"),
    }
}

#[tokio::test]
async fn put_writes_the_body_and_content_type() {
    let s3 = s3_client().await;
    let bucket = unique_name("manifests");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let body = br#"{"job_id":"j-1"}"#.to_vec();
    store()
        .await
        .put(&bucket, "j-1/report.json", body.clone(), "application/json")
        .await
        .unwrap();
    let got = s3
        .get_object()
        .bucket(&bucket)
        .key("j-1/report.json")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_type(), Some("application/json"));
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().to_vec(),
        body
    );
}

#[tokio::test]
async fn put_into_a_missing_bucket_fails_and_writes_nothing() {
    let bucket = unique_name("missing");
    let err = store()
        .await
        .put(
            &bucket,
            "j-1/report.json",
            b"{}".to_vec(),
            "application/json",
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "upstream_error");
    assert!(err.to_string().contains("NoSuchBucket"), "{err}");
    let buckets = s3_client().await.list_buckets().send().await.unwrap();
    assert!(!buckets
        .buckets()
        .iter()
        .any(|b| b.name() == Some(bucket.as_str())));
}
