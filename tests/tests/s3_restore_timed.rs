//! A restore that takes time, read back through HeadObject (DESIGN §8 "Seen here").
//!
//! moto's restore clock starts when the object is created and advances one step per read once
//! a timed transition is set: so create, wait the transition time, restore, and keep reading.
//! The state manager is global to a moto server, so this file (its own test process) uses a
//! private server and holds a single test.

use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::StorageClass as SdkClass;
use integration_tests::{moto_api_post, private_moto_endpoint, unique_name};
use shared::adapters::s3::S3ObjectStore;
use shared::config::{aws_sdk_config, Config};
use shared::domain::object::{ObjectRef, RestoreOutcome, RestoreParams};
use shared::domain::storage::RetrievalTier;
use shared::ports::ObjectStore;

const TRANSITION_SECONDS: u64 = 2;

/// Resets the transition even when the test fails half-way.
struct TransitionGuard(&'static str);

impl Drop for TransitionGuard {
    fn drop(&mut self) {
        moto_api_post(
            self.0,
            "/moto-api/state-manager/unset-transition",
            r#"{"model_name": "s3::keyrestore"}"#,
        );
    }
}

#[tokio::test]
async fn restore_goes_from_in_progress_to_restored_through_head_object() {
    let endpoint = private_moto_endpoint();
    let status = moto_api_post(
        endpoint,
        "/moto-api/state-manager/set-transition",
        &format!(
            r#"{{"model_name": "s3::keyrestore", "transition": {{"progression": "time", "seconds": {TRANSITION_SECONDS}}}}}"#
        ),
    );
    assert_eq!(status, 201, "transition set");
    let _reset = TransitionGuard(endpoint);

    let env = [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ];
    let config = Config::from_lookup(
        |name| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        },
        &[],
    )
    .unwrap();
    let sdk = aws_sdk_config(&config).await;
    let store = S3ObjectStore::from_sdk_config(&sdk);
    let s3 = store.client();

    let bucket = unique_name("timed");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let keys = ["project/Assets/a.mov", "project/Assets/b.mxf"];
    for (key, class) in keys.iter().zip([SdkClass::Glacier, SdkClass::DeepArchive]) {
        s3.put_object()
            .bucket(&bucket)
            .key(*key)
            .storage_class(class)
            .body(ByteStream::from_static(b"archived"))
            .send()
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(TRANSITION_SECONDS) + Duration::from_millis(200)).await;

    for key in keys {
        let object = ObjectRef {
            bucket: bucket.clone(),
            key: key.to_owned(),
            version_id: None,
        };
        let params = RestoreParams {
            tier: RetrievalTier::Bulk,
            days: Some(2),
        };
        assert_eq!(
            store.request_restore(&object, params).await.unwrap(),
            RestoreOutcome::Started
        );

        let started = Instant::now();
        let mut saw_in_progress = false;
        let restored = loop {
            assert!(
                started.elapsed() < Duration::from_secs(6 * TRANSITION_SECONDS),
                "{key}: not restored in time (in progress seen: {saw_in_progress})"
            );
            let head = store.head(&object).await.unwrap();
            let status = head.restore.expect("x-amz-restore once restore was asked");
            if status.ongoing {
                assert_eq!(status.expiry, None, "no expiry while ongoing");
                saw_in_progress = true;
            } else if saw_in_progress {
                break status;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        assert!(saw_in_progress, "{key}: read as ongoing first");
        let expiry = restored.expiry.expect("expiry once restored");
        let hours = (expiry - time::OffsetDateTime::now_utc()).whole_hours();
        assert!(
            (24..=49).contains(&hours),
            "{key}: expiry ~2 days, got {hours} h"
        );
        // A repeated request on the restored copy is answered 200.
        assert_eq!(
            store.request_restore(&object, params).await.unwrap(),
            RestoreOutcome::AlreadyRestored
        );
    }
}
