//! Builds the completion side (tally, finalizer, sweeper) from the configuration, once per
//! process: shared by the three Lambdas and `restore-local` so they are wired the same way.

use std::sync::Arc;

use crate::adapters::dynamodb::DynamoJobStore;
use crate::adapters::s3::S3ObjectStore;
use crate::adapters::ses::SesMailer;
use crate::adapters::smtp::SmtpMailer;
use crate::config::Config;
use crate::domain::completion::{Completion, CompletionSettings};
use crate::domain::cost::PriceList;
use crate::ports::{Dispatcher, JobStore, Mailer, ObjectStore};
use crate::{Error, Result};

/// The adapters a completion process talks to.
pub struct CompletionParts {
    pub jobs: Arc<dyn JobStore>,
    pub objects: Arc<dyn ObjectStore>,
    pub mailer: Option<Arc<dyn Mailer>>,
}

/// Settings from the configuration (`MANIFEST_BUCKET`, `NOTIFICATION_EMAIL`,
/// `PLUTO_PROJECT_URL`, `PRICE_LIST`, `BASE_PATH`).
pub fn completion_settings(config: &Config) -> Result<CompletionSettings> {
    let mut settings = CompletionSettings::new(
        config.manifest_bucket.clone().unwrap_or_default(),
        PriceList::select(Some(&config.price_list))?,
    );
    settings.notification_emails = config.notification_emails.clone();
    settings.project_url = config.pluto_project_url.clone().unwrap_or_default();
    settings.base_path = config.base_path.clone();
    Ok(settings)
}

/// DynamoDB job store and S3 object store from the SDK configuration; the mailer (SES v2, or
/// SMTP when `SMTP_HOST` is set) only when `with_mailer`.
pub fn completion_parts(
    config: &Config,
    sdk: &aws_config::SdkConfig,
    with_mailer: bool,
) -> Result<CompletionParts> {
    let jobs: Arc<dyn JobStore> = Arc::new(DynamoJobStore::new(
        aws_sdk_dynamodb::Client::new(sdk),
        config.jobs_table.clone(),
    ));
    let objects: Arc<dyn ObjectStore> = Arc::new(S3ObjectStore::from_sdk_config(sdk));
    let mailer = if with_mailer {
        Some(mailer(config, sdk)?)
    } else {
        None
    };
    Ok(CompletionParts {
        jobs,
        objects,
        mailer,
    })
}

/// The whole completion side from the process environment, with the given dispatcher (set
/// when `KUBE_NAMESPACE` is).
pub async fn completion_from_env(
    required: &[&str],
    with_mailer: bool,
    dispatcher: Option<Arc<dyn Dispatcher>>,
) -> Result<Completion> {
    let config = Config::from_env(required)?;
    let sdk = crate::config::aws_sdk_config(&config).await;
    let parts = completion_parts(&config, &sdk, with_mailer)?;
    Ok(Completion::new(
        parts.jobs,
        parts.objects,
        parts.mailer,
        dispatcher,
        completion_settings(&config)?,
    ))
}

/// SMTP when `SMTP_HOST` is set, SES v2 otherwise; both send from `SMTP_FROM`.
pub fn mailer(config: &Config, sdk: &aws_config::SdkConfig) -> Result<Arc<dyn Mailer>> {
    if let Some(smtp) = &config.smtp {
        tracing::info!(host = %smtp.host, port = smtp.port, "mail via SMTP");
        return Ok(Arc::new(SmtpMailer::new(smtp)?));
    }
    let from = config.mail_from.clone().ok_or_else(|| {
        Error::Config("missing required environment variable SMTP_FROM (the sender address)".into())
    })?;
    tracing::info!("mail via SES");
    Ok(Arc::new(SesMailer::new(
        aws_sdk_sesv2::Client::new(sdk),
        from,
    )?))
}
