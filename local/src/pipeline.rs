//! The event-driven half of the service on one machine: what AWS does between our Lambdas
//! (S3 → restore-events, DynamoDB stream → fan-out continuation and finalizer, EventBridge
//! schedule → sweeper), done by loops over the same shared code.
//!
//! Event delivery: moto sends `ObjectRestore:Completed` only lazily (on a read after its
//! transition time) and without `glacierEventData`, so this runner does not wait for moto's
//! notifications. It polls the pending objects of active jobs with HeadObject (which is also
//! the read that moves moto's restore state on) and, for each one whose restored copy is
//! readable, builds the S3 notification S3 would send (key URL-encoded with `+` for a space,
//! expiry in `glacierEventData`) and hands it to the events handler
//! ([`Completion::handle_events`]), the same code path as the Lambda. A finished job is then
//! finalized exactly as the stream-driven finalizer does, and the sweeper runs on a short
//! interval.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use shared::domain::completion::{Completion, FinalizeOutcome, SweepReport};
use shared::domain::object::ObjectRef;
use shared::domain::state::JobState;
use shared::domain::storage::{Classification, RestorePolicy};
use shared::ports::{JobStore, ObjectStore};
use shared::Result;

/// Continues a job's fan-out (lists and requests its next pages). Implemented over the
/// fan-out of `shared::domain::fanout` by `restore-local serve`; `None` when jobs are
/// fanned out elsewhere.
#[async_trait]
pub trait FanoutStep: Send + Sync {
    async fn continue_job(&self, job_id: &str) -> Result<()>;
}

/// How often the loops run.
#[derive(Debug, Clone)]
pub struct PipelineSettings {
    /// Between two polls of pending objects (and fan-out continuations).
    pub poll_interval: Duration,
    /// Between two sweeps.
    pub sweep_interval: Duration,
}

impl Default for PipelineSettings {
    fn default() -> Self {
        PipelineSettings {
            poll_interval: Duration::from_secs(1),
            sweep_interval: Duration::from_secs(10),
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tick {
    /// Jobs still active after the pass.
    pub active: BTreeSet<String>,
    /// Completion events delivered to the events handler.
    pub events: usize,
    /// Jobs finalized by this pass.
    pub finalized: Vec<String>,
}

/// The local stand-in for S3 notifications, the table stream and the schedule.
pub struct Pipeline {
    completion: Arc<Completion>,
    jobs: Arc<dyn JobStore>,
    objects: Arc<dyn ObjectStore>,
    fanout: Option<Arc<dyn FanoutStep>>,
    settings: PipelineSettings,
}

impl Pipeline {
    pub fn new(
        completion: Arc<Completion>,
        jobs: Arc<dyn JobStore>,
        objects: Arc<dyn ObjectStore>,
        fanout: Option<Arc<dyn FanoutStep>>,
        settings: PipelineSettings,
    ) -> Self {
        Pipeline {
            completion,
            jobs,
            objects,
            fanout,
            settings,
        }
    }

    /// One pass over every active job: continue its fan-out, deliver completions of its
    /// pending objects, settle early events, finalize it when complete.
    pub async fn tick(&self) -> Result<Tick> {
        let mut tick = Tick::default();
        for job_id in self.jobs.active_jobs().await? {
            let Some(view) = self.jobs.get_job(&job_id).await? else {
                continue;
            };
            if view.job.state == JobState::Planning {
                if let Some(fanout) = &self.fanout {
                    fanout.continue_job(&job_id).await?;
                }
            }
            tick.events += self.deliver_completions(&job_id).await?;
            match self.completion.finalize(&job_id).await? {
                FinalizeOutcome::Finalized { state, .. } => {
                    tracing::info!(job_id = %job_id, state = %state, "job finalized");
                    tick.finalized.push(job_id);
                }
                _ => {
                    tick.active.insert(job_id);
                }
            }
        }
        Ok(tick)
    }

    /// HeadObject on the job's pending objects; every readable restored copy becomes an
    /// `ObjectRestore:Completed` notification for the events handler. Returns how many.
    async fn deliver_completions(&self, job_id: &str) -> Result<usize> {
        let mut delivered = 0;
        let mut after: Option<String> = None;
        loop {
            let page = self
                .jobs
                .list_objects(job_id, after.as_deref(), 500)
                .await?;
            let pending: Vec<_> = page
                .objects
                .into_iter()
                .filter(|o| o.is_pending())
                .collect();
            self.completion.absorb_early(&pending).await?;
            for object in pending {
                let target = ObjectRef {
                    bucket: object.bucket.clone(),
                    key: object.key.clone(),
                    version_id: object.version_id.clone(),
                };
                let head = match self.objects.head(&target).await {
                    Ok(head) => head,
                    Err(err) => {
                        // The sweeper decides about objects that can't be read.
                        tracing::debug!(job_id, key = %object.key, error = %err, "poll failed");
                        continue;
                    }
                };
                let tier = object
                    .tier
                    .unwrap_or(shared::domain::storage::RetrievalTier::Standard);
                if let Classification::AlreadyRestored(status) =
                    head.classify(tier, RestorePolicy::default())
                {
                    let expiry = status.expiry.and_then(|e| {
                        e.format(&time::format_description::well_known::Rfc3339)
                            .ok()
                    });
                    let payload =
                        restore_notification(&object.bucket, &object.key, expiry.as_deref());
                    let result = self.completion.handle_events(&payload).await?;
                    delivered += result.completed;
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        Ok(delivered)
    }

    /// Runs passes for good (beside `restore-local serve`); an error is logged and the next
    /// pass tries again.
    pub async fn run_forever(&self) {
        loop {
            if let Err(err) = self.run_until(|_| false).await {
                tracing::error!(error = %err, code = err.code(), "pipeline pass failed");
                tokio::time::sleep(self.settings.poll_interval).await;
            }
        }
    }

    /// One sweep (the scheduled `restore-sweeper`).
    pub async fn sweep(&self) -> Result<SweepReport> {
        self.completion.sweep(time::OffsetDateTime::now_utc()).await
    }

    /// Runs passes (and a sweep every `sweep_interval`) until `done` says stop, returning the
    /// jobs finalized on the way. `done` sees the last pass.
    pub async fn run_until(&self, mut done: impl FnMut(&Tick) -> bool) -> Result<Vec<String>> {
        let mut finalized = Vec::new();
        let mut last_sweep = std::time::Instant::now();
        loop {
            let tick = self.tick().await?;
            finalized.extend(tick.finalized.iter().cloned());
            if last_sweep.elapsed() >= self.settings.sweep_interval {
                let report = self.sweep().await?;
                finalized.extend(report.finalized);
                last_sweep = std::time::Instant::now();
            }
            if done(&tick) {
                return Ok(finalized);
            }
            tokio::time::sleep(self.settings.poll_interval).await;
        }
    }
}

/// The S3 event notification S3 sends when a restore completes: key URL-encoded as S3 does
/// (form encoding, `+` for a space), `glacierEventData` with the expiry when known.
pub fn restore_notification(bucket: &str, key: &str, expiry: Option<&str>) -> Value {
    const KEY_SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b'/')
        .remove(b' ');
    let encoded = percent_encoding::utf8_percent_encode(key, KEY_SET)
        .to_string()
        .replace(' ', "+");
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut record = json!({
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": now,
        "eventName": "ObjectRestore:Completed",
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
            "object": {"key": encoded}
        }
    });
    if let Some(expiry) = expiry {
        record["glacierEventData"] = json!({"restoreEventData": {
            "lifecycleRestorationExpiryTime": expiry,
            "lifecycleRestoreStorageClass": "GLACIER"
        }});
    }
    json!({ "Records": [record] })
}

/// Expected restore window the local sweeper assumes for every tier.
pub const LOCAL_WINDOW: Duration = Duration::from_secs(30);

/// Settings of `restore-local pipeline` that have local defaults.
fn local_default(name: &str) -> Option<String> {
    use shared::config::vars;
    match name {
        vars::AWS_DEFAULT_REGION => Some("us-east-1".into()),
        vars::AWS_ACCESS_KEY_ID | vars::AWS_SECRET_ACCESS_KEY => Some("testing".into()),
        vars::MANIFEST_BUCKET => Some("restore-manifests-local".into()),
        vars::SMTP_FROM => Some("restore@example.com".into()),
        vars::NOTIFICATION_EMAIL => Some("media-ops@example.com".into()),
        vars::PLUTO_PROJECT_URL => Some("http://localhost/pluto/project/".into()),
        vars::JOBS_TABLE => Some("restore-jobs-local".into()),
        _ => None,
    }
}

/// `restore-local pipeline [--until-idle] [--window SECONDS]`: runs the completion loops
/// against the emulator (`AWS_ENDPOINT_URL` is required, so it never touches a real account).
/// Creates the jobs table and manifest bucket when missing and, for SES, verifies the sender
/// identity on the emulator. `--until-idle` stops once no job is active; `--window` replaces
/// every tier's expected window for the sweeper (default 30 s).
pub async fn run_cli(args: &[String]) -> Result<()> {
    use shared::Error;
    let mut until_idle = false;
    let mut window = LOCAL_WINDOW;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--until-idle" => until_idle = true,
            "--window" => {
                let value = args.next().map(String::as_str).unwrap_or_default();
                window = Duration::from_secs(value.parse().map_err(|_| {
                    Error::validation("invalid_argument", format!("--window {value:?}: seconds expected"))
                })?);
            }
            other => {
                return Err(Error::validation(
                    "invalid_argument",
                    format!("pipeline: unknown argument {other:?} (usage: pipeline [--until-idle] [--window SECONDS])"),
                ))
            }
        }
    }
    let config = local_config()?;
    let bucket = config.manifest_bucket.clone().unwrap_or_default();
    let pipeline = local_pipeline(&config, None, window).await?;
    tracing::info!(table = %config.jobs_table, manifest_bucket = %bucket, "pipeline running");
    let finalized = pipeline
        .run_until(|tick| until_idle && tick.active.is_empty())
        .await?;
    for job_id in finalized {
        println!("finalized {job_id}: manifest s3://{bucket}/{job_id}/manifest.csv");
    }
    Ok(())
}

/// The configuration of the local runner: the environment, with local defaults for what it
/// lacks (`MANIFEST_BUCKET`, `SMTP_FROM`, `NOTIFICATION_EMAIL`, `PLUTO_PROJECT_URL`,
/// `JOBS_TABLE`, test credentials); `AWS_ENDPOINT_URL` is required.
pub fn local_config() -> Result<shared::config::Config> {
    use shared::config::{vars, Config};
    Config::from_lookup(
        |name| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .or_else(|| local_default(name))
        },
        &[vars::AWS_ENDPOINT_URL],
    )
}

/// Builds the local pipeline on the emulator: creates the jobs table and manifest bucket when
/// missing, verifies the SES sender there, and wires the completion side with `window` as
/// every tier's expected window. `restore-local serve` passes its fan-out as `fanout` and runs
/// `pipeline.run_until(|_| false)` in a task beside the HTTP server.
pub async fn local_pipeline(
    config: &shared::config::Config,
    fanout: Option<Arc<dyn FanoutStep>>,
    window: Duration,
) -> Result<Pipeline> {
    use shared::Error;
    let sdk = shared::config::aws_sdk_config(config).await;
    let store = shared::adapters::dynamodb::DynamoJobStore::new(
        aws_sdk_dynamodb_client(&sdk),
        config.jobs_table.clone(),
    );
    store.ensure_table().await?;
    let objects = shared::adapters::s3::S3ObjectStore::from_sdk_config(&sdk);
    let bucket = config.manifest_bucket.clone().unwrap_or_default();
    if objects
        .client()
        .head_bucket()
        .bucket(&bucket)
        .send()
        .await
        .is_err()
    {
        objects
            .client()
            .create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .map_err(|e| Error::upstream("s3", aws_sdk_s3::error::DisplayErrorContext(e)))?;
    }
    if config.smtp.is_none() {
        if let Some(from) = &config.mail_from {
            // moto refuses mail from an unverified sender, like SES in its sandbox.
            let _ = aws_sdk_sesv2::Client::new(&sdk)
                .create_email_identity()
                .email_identity(from)
                .send()
                .await;
        }
    }
    let jobs: Arc<dyn JobStore> = Arc::new(store);
    let objects: Arc<dyn ObjectStore> = Arc::new(objects);
    let mut settings = shared::wiring::completion_settings(config)?;
    settings.window_override = Some(window);
    settings.give_up_after = window;
    let completion = Arc::new(Completion::new(
        jobs.clone(),
        objects.clone(),
        Some(shared::wiring::mailer(config, &sdk)?),
        None,
        settings,
    ));
    Ok(Pipeline::new(
        completion,
        jobs,
        objects,
        fanout,
        PipelineSettings::default(),
    ))
}

fn aws_sdk_dynamodb_client(sdk: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(sdk)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::event::{parse_payload, RecordOutcome};

    #[test]
    fn notifications_round_trip_through_the_event_parser() {
        for key in ["a b+c/100%,x.mov", "Café 映像/ü.wav", "plain/key.mxf"] {
            let payload = restore_notification("media", key, Some("2026-12-01T00:00:00Z"));
            let encoded = payload["Records"][0]["s3"]["object"]["key"]
                .as_str()
                .unwrap();
            assert!(
                !encoded.contains(' ') && !encoded.contains(','),
                "{encoded}"
            );
            match parse_payload(&payload).as_slice() {
                [RecordOutcome::Completed(c)] => {
                    assert_eq!(c.key, key);
                    assert_eq!(c.bucket, "media");
                    assert!(c.expiry.is_some());
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
