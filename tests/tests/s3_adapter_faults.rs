//! S3 answers moto never gives (409, 503 SlowDown, 503 Expedited capacity, listings with a
//! RestoreStatus, endpoints rejecting OptionalObjectAttributes,
//! ObjectAlreadyInActiveTierError), served by a scripted loopback server to the real SDK client
//! built by `aws_sdk_config`: the answer mapping, the retries, and the request S3 receives.

use std::time::Duration;

use integration_tests::{s3_error_body, ScriptedServer};
use shared::adapters::s3::S3ObjectStore;
use shared::config::{aws_sdk_config, Config};
use shared::domain::object::{ObjectRef, RestoreOutcome, RestoreParams};
use shared::domain::storage::RetrievalTier;
use shared::ports::ObjectStore;
use shared::Error;

/// The store as a Lambda builds it from its environment, pointed at `server`; retries keep
/// `AWS_MAX_ATTEMPTS` but back off in milliseconds so the test stays fast.
async fn store_for(server: &ScriptedServer, max_attempts: u32) -> S3ObjectStore {
    let env = [
        ("AWS_ENDPOINT_URL", server.endpoint.clone()),
        ("AWS_DEFAULT_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_MAX_ATTEMPTS", max_attempts.to_string()),
    ];
    let config = Config::from_lookup(
        |name| env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone()),
        &[],
    )
    .unwrap();
    let sdk = aws_sdk_config(&config).await;
    let retry = sdk
        .retry_config()
        .expect("retry config set")
        .clone()
        .with_initial_backoff(Duration::from_millis(5))
        .with_max_backoff(Duration::from_millis(20));
    assert_eq!(retry.max_attempts(), max_attempts);
    S3ObjectStore::from_sdk_config(&sdk.to_builder().retry_config(retry).build())
}

fn clip() -> ObjectRef {
    ObjectRef {
        bucket: "media".to_owned(),
        key: "project/Assets/clip 1.mov".to_owned(),
        version_id: None,
    }
}

const EXPEDITED: RestoreParams = RestoreParams {
    tier: RetrievalTier::Expedited,
    days: Some(3),
};

#[tokio::test]
async fn restore_already_in_progress_is_pending_not_a_failure() {
    let server = ScriptedServer::start(vec![(
        409,
        s3_error_body(
            "RestoreAlreadyInProgress",
            "Object restore is already in progress",
        ),
    )]);
    let outcome = store_for(&server, 3)
        .await
        .request_restore(&clip(), EXPEDITED)
        .await
        .unwrap();
    assert_eq!(outcome, RestoreOutcome::InProgress);
    assert_eq!(server.requests().len(), 1, "not retried");
}

#[tokio::test]
async fn object_already_in_active_tier_needs_no_restore() {
    let server = ScriptedServer::start(vec![(
        403,
        s3_error_body(
            "ObjectAlreadyInActiveTierError",
            "The restore request is not allowed, the object is already in the active tier",
        ),
    )]);
    let params = RestoreParams {
        tier: RetrievalTier::Standard,
        days: None,
    };
    let outcome = store_for(&server, 3)
        .await
        .request_restore(&clip(), params)
        .await
        .unwrap();
    assert_eq!(outcome, RestoreOutcome::NotNeeded);
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert!(
        !requests[0].body.contains("<Days>"),
        "Intelligent-Tiering restores never send Days: {}",
        requests[0].body
    );
    assert!(requests[0].body.contains("<Tier>Standard</Tier>"));
}

#[tokio::test]
async fn expedited_capacity_error_is_answered_at_once_without_retries() {
    let server = ScriptedServer::start(vec![(
        503,
        s3_error_body(
            "GlacierExpeditedRetrievalNotAvailable",
            "Glacier expedited retrievals are currently not available, please try again later",
        ),
    )]);
    let outcome = store_for(&server, 5)
        .await
        .request_restore(&clip(), EXPEDITED)
        .await
        .unwrap();
    assert_eq!(outcome, RestoreOutcome::ExpeditedUnavailable);
    assert_eq!(
        server.requests().len(),
        1,
        "a 503 the SDK would retry, stopped so the caller falls back to Standard"
    );
}

#[tokio::test]
async fn slow_down_is_retried_then_succeeds() {
    let slow_down = s3_error_body("SlowDown", "Please reduce your request rate.");
    let server = ScriptedServer::start(vec![
        (503, slow_down.clone()),
        (503, slow_down),
        (202, String::new()),
    ]);
    let outcome = store_for(&server, 5)
        .await
        .request_restore(&clip(), EXPEDITED)
        .await
        .unwrap();
    assert_eq!(outcome, RestoreOutcome::Started, "202 after two throttles");
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    for request in &requests {
        assert_eq!(request.method, "POST");
        assert!(
            request
                .target
                .starts_with("/media/project/Assets/clip%201.mov?restore"),
            "path-style, key encoded: {}",
            request.target
        );
        assert!(request.body.contains("<Days>3</Days>"), "{}", request.body);
        assert!(
            request.body.contains("<Tier>Expedited</Tier>"),
            "{}",
            request.body
        );
    }
}

#[tokio::test]
async fn throttling_past_max_attempts_is_an_upstream_error() {
    let server = ScriptedServer::start(vec![(
        503,
        s3_error_body("SlowDown", "Please reduce your request rate."),
    )]);
    let err = store_for(&server, 2)
        .await
        .request_restore(&clip(), EXPEDITED)
        .await
        .unwrap_err();
    assert_eq!(server.requests().len(), 2, "AWS_MAX_ATTEMPTS=2");
    match err {
        Error::Upstream { message, .. } => {
            assert!(message.contains("SlowDown"), "{message}");
            assert!(message.contains("clip 1.mov"), "{message}");
            assert!(message.contains("503"), "{message}");
        }
        other => panic!("expected Upstream, got {other:?}"),
    }
}

#[tokio::test]
async fn access_denied_is_a_failure_naming_the_code() {
    let server = ScriptedServer::start(vec![(403, s3_error_body("AccessDenied", "Access Denied"))]);
    let err = store_for(&server, 3)
        .await
        .request_restore(&clip(), EXPEDITED)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "upstream_error");
    assert!(err.to_string().contains("AccessDenied"), "{err}");
    assert_eq!(server.requests().len(), 1, "client errors are not retried");
}

#[tokio::test]
async fn already_restored_answer_is_200() {
    let server = ScriptedServer::start(vec![(200, String::new())]);
    let outcome = store_for(&server, 3)
        .await
        .request_restore(&clip(), EXPEDITED)
        .await
        .unwrap();
    assert_eq!(outcome, RestoreOutcome::AlreadyRestored);
}

fn listing(contents: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
         <Name>media</Name><Prefix>project/</Prefix><MaxKeys>1000</MaxKeys>\
         <IsTruncated>false</IsTruncated>{contents}</ListBucketResult>"
    )
}

const RESTORED_AND_RESTORING: &str = "\
    <Contents><Key>project/a.mov</Key><Size>5</Size><StorageClass>GLACIER</StorageClass>\
    <RestoreStatus><IsRestoreInProgress>false</IsRestoreInProgress>\
    <RestoreExpiryDate>2030-01-02T03:04:05.000Z</RestoreExpiryDate></RestoreStatus></Contents>\
    <Contents><Key>project/b.mxf</Key><Size>7</Size><StorageClass>DEEP_ARCHIVE</StorageClass>\
    <RestoreStatus><IsRestoreInProgress>true</IsRestoreInProgress></RestoreStatus></Contents>\
    <Contents><Key>project/c.mov</Key><Size>9</Size><StorageClass>GLACIER</StorageClass></Contents>";

#[tokio::test]
async fn listing_asks_for_and_reads_the_restore_status() {
    let server = ScriptedServer::start(vec![(200, listing(RESTORED_AND_RESTORING))]);
    let page = store_for(&server, 3)
        .await
        .list_page("media", "project/", None, 1000)
        .await
        .unwrap();
    let requests = server.requests();
    assert_eq!(
        requests[0].header("x-amz-optional-object-attributes"),
        Some("RestoreStatus")
    );
    assert!(
        requests[0].target.contains("list-type=2"),
        "{}",
        requests[0].target
    );
    assert_eq!(page.next, None);
    let status: Vec<_> = page
        .objects
        .iter()
        .map(|o| (o.key.as_str(), o.restore.clone()))
        .collect();
    assert_eq!(
        status,
        vec![
            (
                "project/a.mov",
                Some(shared::domain::object::RestoreStatus {
                    ongoing: false,
                    expiry: Some(time::macros::datetime!(2030-01-02 03:04:05 UTC)),
                })
            ),
            (
                "project/b.mxf",
                Some(shared::domain::object::RestoreStatus {
                    ongoing: true,
                    expiry: None,
                })
            ),
            ("project/c.mov", None),
        ]
    );
}

#[tokio::test]
async fn listing_falls_back_when_the_endpoint_rejects_optional_attributes() {
    let server = ScriptedServer::start(vec![
        (
            501,
            s3_error_body(
                "NotImplemented",
                "A header you provided implies functionality that is not implemented",
            ),
        ),
        (200, listing(RESTORED_AND_RESTORING)),
    ]);
    let store = store_for(&server, 3).await;
    let page = store
        .list_page("media", "project/", None, 1000)
        .await
        .unwrap();
    assert_eq!(page.objects.len(), 3);
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "one rejected attempt, one plain listing");
    assert!(requests[0]
        .header("x-amz-optional-object-attributes")
        .is_some());
    assert!(requests[1]
        .header("x-amz-optional-object-attributes")
        .is_none());

    // Remembered: the next page is listed plainly at once.
    store
        .list_page("media", "project/", Some("token"), 1000)
        .await
        .unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests[2]
        .header("x-amz-optional-object-attributes")
        .is_none());
    assert!(requests[2].target.contains("continuation-token=token"));
}

#[tokio::test]
async fn listing_errors_other_than_rejections_are_not_masked() {
    let server = ScriptedServer::start(vec![(403, s3_error_body("AccessDenied", "Access Denied"))]);
    let err = store_for(&server, 3)
        .await
        .list_page("media", "project/", None, 1000)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("AccessDenied"), "{err}");
    assert_eq!(
        server.requests().len(),
        1,
        "no fallback listing for a real failure"
    );
}
