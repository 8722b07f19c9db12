//! `Config` + `aws_sdk_config` as the binaries use them at init, against moto: the endpoint
//! override, region, static credentials, path-style S3 and an assumed `AWS_ROLE_ARN`.

use aws_sdk_s3::config::ProvideCredentials;
use integration_tests::{moto_endpoint, unique_name};
use shared::adapters::s3::S3ObjectStore;
use shared::config::{aws_sdk_config, vars, Config};
use shared::ports::ObjectStore;

fn config(extra: &[(&str, &str)]) -> Config {
    let mut env: Vec<(String, String)> = vec![
        ("AWS_ENDPOINT_URL".into(), moto_endpoint().into()),
        ("AWS_DEFAULT_REGION".into(), "eu-west-1".into()),
        ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
    ];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Config::from_lookup(
        |name| {
            env.iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        },
        &[vars::ASSET_BUCKET_LIST],
    )
    .expect("valid configuration")
}

#[tokio::test]
async fn sdk_config_reaches_the_emulator_with_region_and_path_style() {
    let bucket = unique_name("config");
    let config = config(&[("ASSET_BUCKET_LIST", &bucket)]);
    let sdk = aws_sdk_config(&config).await;
    assert_eq!(sdk.region().map(|r| r.as_ref()), Some("eu-west-1"));
    assert_eq!(sdk.endpoint_url(), Some(moto_endpoint()));

    let store = S3ObjectStore::from_sdk_config(&sdk);
    let s3 = store.client();
    s3.create_bucket()
        .bucket(&bucket)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .expect("create bucket (path-style: loopback has no bucket DNS names)");
    store
        .put(&bucket, "p/a.txt", b"a".to_vec(), "text/plain")
        .await
        .unwrap();
    let page = store
        .list_page(&config.asset_buckets[0], "p/", None, 10)
        .await
        .unwrap();
    assert_eq!(page.objects.len(), 1);
    assert_eq!(page.objects[0].key, "p/a.txt");
}

#[tokio::test]
async fn role_arn_is_assumed_through_sts() {
    let bucket = unique_name("assumed");
    let config = config(&[
        ("ASSET_BUCKET_LIST", &bucket),
        (
            "AWS_ROLE_ARN",
            "arn:aws:iam::123456789012:role/glacier-restore",
        ),
    ]);
    let sdk = aws_sdk_config(&config).await;
    let credentials = sdk
        .credentials_provider()
        .expect("credentials provider")
        .provide_credentials()
        .await
        .expect("AssumeRole against the emulator's STS");
    assert_ne!(
        credentials.access_key_id(),
        "testing",
        "calls use the role's temporary keys, not the static ones"
    );
    assert!(
        credentials.session_token().is_some(),
        "temporary credentials"
    );

    let store = S3ObjectStore::from_sdk_config(&sdk);
    store
        .client()
        .create_bucket()
        .bucket(&bucket)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .expect("S3 call with the assumed role");
}

#[tokio::test]
async fn unreachable_endpoint_is_an_upstream_error_after_the_configured_attempts() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let config = config(&[
        ("ASSET_BUCKET_LIST", "media"),
        ("AWS_ENDPOINT_URL", &endpoint),
        ("AWS_MAX_ATTEMPTS", "1"),
    ]);
    let sdk = aws_sdk_config(&config).await;
    let err = S3ObjectStore::from_sdk_config(&sdk)
        .list_page("media", "p/", None, 10)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "upstream_error");
    let text = err.to_string();
    assert!(
        text.contains("ListObjectsV2") && text.contains("s3://media/p/"),
        "{text}"
    );
}
