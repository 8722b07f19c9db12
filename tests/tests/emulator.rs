//! The harness itself: the emulator starts and the SDK reaches it.

#[tokio::test]
async fn emulator_answers_sdk_calls() {
    let s3 = integration_tests::s3_client().await;
    let bucket = integration_tests::unique_name("harness");
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create bucket");
    let buckets = s3.list_buckets().send().await.expect("list buckets");
    assert!(buckets
        .buckets()
        .iter()
        .any(|b| b.name() == Some(bucket.as_str())));
}
