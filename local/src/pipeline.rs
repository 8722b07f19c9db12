//! The event-driven half of the service on one machine: what AWS does between our Lambdas
//! (S3 → SQS → restore-events, DynamoDB stream → fan-out continuation and finalizer,
//! EventBridge schedule → sweeper), done by loops over the same shared code.
//!
//! Event delivery: the asset buckets send `ObjectRestore:Completed` (and `Post`) to an SQS
//! queue on the emulator; each pass drains it into the events handler
//! ([`Completion::handle_events`], the Lambda's code path) — see [`crate::events`]. Only those
//! messages count objects. moto fires the notification lazily, when something reads the
//! object's restore status after its transition time, so each pass also reads the pending
//! objects of active jobs with HeadObject; that read only moves moto's clock, its answer is not
//! counted. What never gets a notification is settled by the sweeper, which runs on a short
//! interval, and a finished job is finalized exactly as the stream-driven finalizer does.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::events::{EventQueue, QueueSettings};
use shared::domain::completion::{Completion, FinalizeOutcome, SweepReport};
use shared::domain::job::ActiveJob;
use shared::domain::object::ObjectRef;
use shared::domain::state::JobState;
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
    /// SQS messages received by this pass.
    pub messages: usize,
    /// Restore completions those messages delivered to the events handler (duplicates
    /// included).
    pub events: usize,
    /// Objects those completions settled.
    pub settled: usize,
    /// Messages the handler reported failed (left on the queue for a retry).
    pub failed_messages: usize,
    /// Jobs finalized by this pass.
    pub finalized: Vec<String>,
    /// The sweep run after this pass, when one was due.
    pub sweep: Option<SweepReport>,
}

/// The local stand-in for S3 notifications, the table stream and the schedule.
pub struct Pipeline {
    completion: Arc<Completion>,
    jobs: Arc<dyn JobStore>,
    objects: Arc<dyn ObjectStore>,
    events: Arc<EventQueue>,
    fanout: Option<Arc<dyn FanoutStep>>,
    settings: PipelineSettings,
}

impl Pipeline {
    pub fn new(
        completion: Arc<Completion>,
        jobs: Arc<dyn JobStore>,
        objects: Arc<dyn ObjectStore>,
        events: Arc<EventQueue>,
        fanout: Option<Arc<dyn FanoutStep>>,
        settings: PipelineSettings,
    ) -> Self {
        Pipeline {
            completion,
            jobs,
            objects,
            events,
            fanout,
            settings,
        }
    }

    /// The events queue this pipeline drains.
    pub fn events(&self) -> &EventQueue {
        &self.events
    }

    /// One pass: continue the fan-out of planning jobs, read the pending objects of active
    /// jobs (moto's clock), drain the events queue into the handler, finalize what is complete.
    pub async fn tick(&self) -> Result<Tick> {
        let mut tick = Tick::default();
        let mut active = Vec::new();
        for ActiveJob { job_id, .. } in self.jobs.active_jobs().await? {
            let Some(view) = self.jobs.get_job(&job_id).await? else {
                continue;
            };
            if view.job.state == JobState::Planning {
                if let Some(fanout) = &self.fanout {
                    fanout.continue_job(&job_id).await?;
                }
            }
            self.read_pending(&job_id).await?;
            active.push(job_id);
        }
        // Drained even with no active job: an event for an object not recorded yet is kept.
        let delivery = self.events.drain(&self.completion).await?;
        if delivery.messages > 0 {
            tracing::info!(
                messages = delivery.messages,
                completions = delivery.completions,
                settled = delivery.settled,
                ignored = delivery.ignored,
                failed = delivery.failed,
                "events delivered from SQS"
            );
        }
        tick.messages = delivery.messages;
        tick.events = delivery.completions;
        tick.settled = delivery.settled;
        tick.failed_messages = delivery.failed;
        for job_id in active {
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

    /// Settles pending objects from kept early events, makes sure their buckets notify the
    /// queue, and reads each one with HeadObject: the read after which moto sends the
    /// completion notification. The answer is not counted.
    async fn read_pending(&self, job_id: &str) -> Result<()> {
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
                if let Err(err) = self.events.watch_bucket(&object.bucket).await {
                    // Its objects are left to the sweeper.
                    tracing::warn!(job_id, bucket = %object.bucket, error = %err, "bucket not watched");
                }
                let target = ObjectRef {
                    bucket: object.bucket.clone(),
                    key: object.key.clone(),
                    version_id: object.version_id.clone(),
                };
                if let Err(err) = self.objects.head(&target).await {
                    // The sweeper decides about objects that can't be read.
                    tracing::debug!(job_id, key = %object.key, error = %err, "read failed");
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(()),
            }
        }
    }

    /// Runs passes for good (beside `restore-local serve`), printing a line for each pass
    /// that received events or swept something; an error is logged and the next pass tries
    /// again.
    pub async fn run_forever(&self) {
        loop {
            let result = self
                .run_until(|tick| {
                    if let Some(line) = describe(tick) {
                        println!("restore-local pipeline: {line}");
                    }
                    false
                })
                .await;
            if let Err(err) = result {
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
    /// jobs finalized on the way. `done` sees each pass, with the sweep that followed it.
    pub async fn run_until(&self, mut done: impl FnMut(&Tick) -> bool) -> Result<Vec<String>> {
        let mut finalized = Vec::new();
        let mut last_sweep = std::time::Instant::now();
        loop {
            let mut tick = self.tick().await?;
            finalized.extend(tick.finalized.iter().cloned());
            if last_sweep.elapsed() >= self.settings.sweep_interval {
                let report = self.sweep().await?;
                finalized.extend(report.finalized.iter().cloned());
                for job_id in &report.finalized {
                    tick.active.remove(job_id);
                }
                tick.sweep = Some(report);
                last_sweep = std::time::Instant::now();
            }
            if done(&tick) {
                return Ok(finalized);
            }
            tokio::time::sleep(self.settings.poll_interval).await;
        }
    }
}

/// A one-line account of a pass for the console, `None` when nothing happened.
pub fn describe(tick: &Tick) -> Option<String> {
    let mut parts = Vec::new();
    if tick.messages > 0 {
        parts.push(format!(
            "{} SQS message(s): {} restore completion(s), {} object(s) settled, {} failed",
            tick.messages, tick.events, tick.settled, tick.failed_messages
        ));
    }
    if let Some(sweep) = &tick.sweep {
        let settled = sweep.restored + sweep.not_needed + sweep.failed + sweep.from_early_events;
        if settled > 0 || !sweep.failed_jobs.is_empty() {
            parts.push(format!(
                "sweeper settled {settled} object(s) ({} restored, {} failed, {} from early events)",
                sweep.restored, sweep.failed, sweep.from_early_events
            ));
        }
        if sweep.finished_settlements > 0 {
            parts.push(format!(
                "sweeper counted {} object(s) a crashed settlement left uncounted",
                sweep.finished_settlements
            ));
        }
    }
    for job_id in tick
        .finalized
        .iter()
        .chain(tick.sweep.iter().flat_map(|s| s.finalized.iter()))
    {
        parts.push(format!("job {job_id} finalized"));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Names the local events queue (default [`crate::events::DEFAULT_QUEUE`]).
pub const EVENTS_QUEUE: &str = "EVENTS_QUEUE";

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
        .run_until(|tick| {
            if let Some(line) = describe(tick) {
                println!("{line}");
            }
            until_idle && tick.active.is_empty()
        })
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

/// Builds the local pipeline on the emulator: creates the jobs table, manifest bucket and
/// events queue (`EVENTS_QUEUE`) when missing, points the asset buckets' restore
/// notifications at the queue, verifies the SES sender there, and wires the completion side with `window` as
/// every tier's expected window. `restore-local serve` passes its fan-out as `fanout` and runs
/// `pipeline.run_forever()` in a task beside the HTTP server.
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
    let s3 = objects.client().clone();
    let jobs: Arc<dyn JobStore> = Arc::new(store);
    let objects: Arc<dyn ObjectStore> = Arc::new(objects);
    let queue = std::env::var(EVENTS_QUEUE)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| crate::events::DEFAULT_QUEUE.to_string());
    let events = EventQueue::ensure(&sdk, s3, objects.clone(), &QueueSettings::new(&queue)).await?;
    for bucket in &config.asset_buckets {
        // Before any restore is asked for; buckets of jobs are also watched as they come.
        if let Err(err) = events.watch_bucket(bucket).await {
            tracing::warn!(bucket, error = %err, "asset bucket not watched yet");
        }
    }
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
        Arc::new(events),
        fanout,
        PipelineSettings::default(),
    ))
}

fn aws_sdk_dynamodb_client(sdk: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(sdk)
}
