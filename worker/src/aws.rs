//! The S3 client of the worker, configured from the environment like every AWS SDK client
//! (`AWS_*` variables, the pod's role), plus the seed's `AWS_ROLE_ARN`.

use aws_config::sts::AssumeRoleProvider;
use aws_config::BehaviorVersion;
use aws_sdk_s3::config::SharedCredentialsProvider;

/// Builds the S3 client. `AWS_ROLE_ARN` is assumed on top of the base credentials (the seed's
/// behaviour), except under IRSA, where the SDK already uses it with the web identity token.
/// `S3_FORCE_PATH_STYLE=true` is for S3-compatible stores on premises.
pub async fn s3_client_from_env() -> aws_sdk_s3::Client {
    let base = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let config = match (var("AWS_ROLE_ARN"), var("AWS_WEB_IDENTITY_TOKEN_FILE")) {
        (Some(role), None) => {
            let session = var("JOB_ID")
                .map(|job| format!("restore-worker-{job}"))
                .unwrap_or_else(|| "restore-worker".to_string());
            // Session names allow at most 64 of [\w+=,.@-].
            let session: String = session
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "+=,.@-_".contains(c) {
                        c
                    } else {
                        '-'
                    }
                })
                .take(64)
                .collect();
            let provider = AssumeRoleProvider::builder(role)
                .session_name(session)
                .configure(&base)
                .build()
                .await;
            base.into_builder()
                .credentials_provider(SharedCredentialsProvider::new(provider))
                .build()
        }
        _ => base,
    };
    let path_style = var("S3_FORCE_PATH_STYLE").is_some_and(|v| v == "true" || v == "1");
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(path_style)
            .build(),
    )
}
