//! Completion (DESIGN §5): the exact tally of restore-completion events, the once-only
//! finalizer (manifest → report → mail → dispatch), and the sweeper that settles what no event
//! ever reported.
//!
//! Exactness comes from the store: an object settles with a conditional write on its own item
//! and is counted in one of the job's counter shards in the same transaction
//! ([`JobStore::settle`]), so a duplicate event counts nothing, an object pending in two jobs
//! counts in both, and no single counter item takes every completion of a huge job.
//!
//! An event that finds no pending object is kept as an [`EarlyEvent`] (with a TTL): the fan-out
//! may not have recorded the object yet. The handler writes it, then looks again, so either
//! that second look or whoever records the object later ([`Completion::absorb_early`], called
//! from the table stream and by the sweeper) settles it.
//!
//! A job finishes once: the finalizer moves it `restoring → completed | completed_with_errors |
//! failed` with a conditional write and only the winner goes on; every side effect after that is
//! recorded as a marker on the job, so a retry after a crash redoes only the missing steps and a
//! mail is never sent twice.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::cost::{PriceList, Usage};
use super::event::{parse_invocation, Invocation, RecordOutcome, RestoreCompletion};
use super::job::{ActiveJob, CopyDispatch, DispatchState, JobView, ObjectRecord, Settlement};
use super::manifest::{
    csv_manifest, manifest_csv_key, report_json, report_json_key, Report, ReportObject,
    ReportTotals,
};
use super::notification::{job_finished, recipients, ManifestLocation};
use super::object::ObjectRef;
use super::state::{JobState, ObjectState};
use super::storage::{expected_window, Classification, RestorePolicy};
use crate::ports::{DispatchRequest, Dispatcher, JobStore, Mail, Mailer, ObjectStore};
use crate::{Error, Result};

/// Job markers of the finalizer's once-only steps.
pub const MARKER_MANIFEST: &str = "manifest_written";
pub const MARKER_MAIL: &str = "mail_sent";
pub const MARKER_DISPATCH: &str = "dispatched";

/// A completion event kept because no pending object matched it when it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarlyEvent {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    /// Expiry of the restored copy, when the event said.
    pub expiry: Option<OffsetDateTime>,
    pub received_at: OffsetDateTime,
    /// After this the event is ignored (and the store's TTL deletes it).
    pub expires_at: OffsetDateTime,
}

impl EarlyEvent {
    /// Whether this event may settle `object` at `now`: still fresh, the restored copy not yet
    /// expired, and the same version when both name one.
    pub fn applies_to(&self, object: &ObjectRecord, now: OffsetDateTime) -> bool {
        self.bucket == object.bucket
            && self.key == object.key
            && now < self.expires_at
            && self.expiry.is_none_or(|e| now < e)
            && versions_match(self.version_id.as_deref(), object.version_id.as_deref())
    }
}

fn versions_match(event: Option<&str>, object: Option<&str>) -> bool {
    match (event, object) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

/// Settings of the completion side; built once per process from the configuration.
#[derive(Debug, Clone)]
pub struct CompletionSettings {
    /// Where manifests and reports go (`MANIFEST_BUCKET`).
    pub manifest_bucket: String,
    /// `NOTIFICATION_EMAIL` addresses, mailed with the requesting user.
    pub notification_emails: Vec<String>,
    /// `PLUTO_PROJECT_URL`: the mail links to it + the project id.
    pub project_url: String,
    /// Prices for the cost in the report and mail.
    pub prices: PriceList,
    /// How long an early event is kept for the fan-out to catch up.
    pub early_event_ttl: Duration,
    /// Replaces every tier's expected window for the sweeper (the local runner uses seconds;
    /// production leaves it `None` and uses the AWS windows).
    pub window_override: Option<Duration>,
    /// Extra time past an object's expected window before the sweeper gives it up as failed.
    pub give_up_after: Duration,
    /// A job whose fan-out made no progress for this long is failed by the sweeper.
    pub planning_stall: Duration,
    /// Local assets root for the copy back when the job has none (`BASE_PATH`).
    pub base_path: Option<String>,
    /// How long the tally reuses its listing of the active jobs for the next batches. An
    /// event that no listed job has a record for is looked up again with a fresh listing, so
    /// a job created meanwhile is not missed.
    pub active_jobs_ttl: Duration,
    /// HeadObjects the sweeper has in flight at once (default [`SWEEP_HEADS_IN_FLIGHT`]).
    pub sweep_heads_in_flight: usize,
}

impl CompletionSettings {
    /// Defaults for production: 1 day early-event TTL, give up 24 h past the window, fail a
    /// fan-out stalled for 6 h.
    pub fn new(manifest_bucket: impl Into<String>, prices: PriceList) -> Self {
        CompletionSettings {
            manifest_bucket: manifest_bucket.into(),
            notification_emails: Vec::new(),
            project_url: String::new(),
            prices,
            early_event_ttl: Duration::from_secs(24 * 3600),
            window_override: None,
            give_up_after: Duration::from_secs(24 * 3600),
            planning_stall: Duration::from_secs(6 * 3600),
            base_path: None,
            active_jobs_ttl: Duration::from_secs(5),
            sweep_heads_in_flight: SWEEP_HEADS_IN_FLIGHT,
        }
    }
}

/// What one completion event did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TallyOutcome {
    /// Jobs in which this call settled the object (counted once each).
    pub settled: Vec<String>,
    /// Pending records found already settled by a concurrent duplicate.
    pub duplicates: usize,
    /// No pending object matched: kept as an early event.
    pub kept_early: bool,
}

/// What one events invocation did, and the answer the trigger gets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventsResult {
    /// Completion records tallied (duplicates included).
    pub completed: usize,
    /// Objects those records settled, summed over jobs (a duplicate settles none).
    pub settled: usize,
    pub ignored: usize,
    pub malformed: usize,
    /// Completions the store could not record.
    pub failed: usize,
    /// Jobs whose counts moved (the finalizer checks them).
    pub touched_jobs: BTreeSet<String>,
    /// Lambda answer: `{"batchItemFailures": [...]}` for SQS, a summary otherwise.
    pub response: Value,
}

/// How a finalize call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinalizeOutcome {
    /// No such job.
    Unknown,
    /// The job still waits for objects (or its listing).
    NotDone { pending: u64 },
    /// Another invocation won the transition and does the steps.
    Lost,
    /// This call ran the missing steps of the finished job (possibly none).
    Finalized { state: JobState, steps: Vec<String> },
}

/// What a sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub jobs: usize,
    pub checked: usize,
    pub restored: usize,
    pub not_needed: usize,
    pub failed: usize,
    pub from_early_events: usize,
    /// Objects whose counts a crashed batch settlement left unadded, counted now.
    pub finished_settlements: usize,
    /// Jobs the sweeper failed, with the reason.
    pub failed_jobs: Vec<(String, String)>,
    pub finalized: Vec<String>,
}

/// The completion side over the ports. Build once per process and share.
pub struct Completion {
    jobs: Arc<dyn JobStore>,
    objects: Arc<dyn ObjectStore>,
    mailer: Option<Arc<dyn Mailer>>,
    dispatcher: Option<Arc<dyn Dispatcher>>,
    settings: CompletionSettings,
    /// The active jobs as the tally last listed them, and when.
    active: Mutex<Option<(Instant, Arc<Vec<ActiveJob>>)>>,
}

impl Completion {
    /// `mailer` is needed by the finalizer only; `dispatcher` is set when `KUBE_NAMESPACE` is.
    pub fn new(
        jobs: Arc<dyn JobStore>,
        objects: Arc<dyn ObjectStore>,
        mailer: Option<Arc<dyn Mailer>>,
        dispatcher: Option<Arc<dyn Dispatcher>>,
        settings: CompletionSettings,
    ) -> Self {
        Completion {
            jobs,
            objects,
            mailer,
            dispatcher,
            settings,
            active: Mutex::new(None),
        }
    }

    pub fn settings(&self) -> &CompletionSettings {
        &self.settings
    }

    // ---- tally ---------------------------------------------------------------------------

    /// Tallies one completion: settles the object in every job waiting for it, once each.
    pub async fn record(&self, event: &RestoreCompletion) -> Result<TallyOutcome> {
        let mut outcomes = self.record_batch(std::slice::from_ref(event)).await?;
        outcomes.pop().expect("one outcome per event")
    }

    /// Tallies a batch of completions (an SQS batch) with a few store calls for all of them:
    /// one listing of the active jobs (reused for `active_jobs_ttl`), one read per job of the
    /// records the events can be, and `settle_many` of the pending ones. Each object is settled once per job however
    /// often (or in whatever order) its event comes; a repeat inside the batch is a duplicate.
    /// An event no active job has a record for yet is kept as an early event. Per event, its
    /// outcome, or why it is invalid; a store error fails the whole batch (retrying is safe).
    pub async fn record_batch(
        &self,
        events: &[RestoreCompletion],
    ) -> Result<Vec<Result<TallyOutcome>>> {
        let valid: Vec<usize> = (0..events.len())
            .filter(|&i| !events[i].bucket.is_empty() && !events[i].key.is_empty())
            .collect();
        let mut outcomes = vec![TallyOutcome::default(); events.len()];
        let early = self
            .settle_batch(events, &valid, &mut outcomes, false)
            .await?;
        if !early.is_empty() {
            let now = OffsetDateTime::now_utc();
            for &i in &early {
                let event = &events[i];
                self.jobs
                    .put_early_event(&EarlyEvent {
                        bucket: event.bucket.clone(),
                        key: event.key.clone(),
                        version_id: event.version_id.clone(),
                        expiry: event.expiry,
                        received_at: now,
                        expires_at: now + self.settings.early_event_ttl,
                    })
                    .await?;
                outcomes[i].kept_early = true;
            }
            // The object may have been recorded between the first look and the write above
            // (or its job be newer than the listing reused); whoever records it after the
            // write finds the early event.
            self.settle_batch(events, &early, &mut outcomes, true)
                .await?;
        }
        Ok(outcomes
            .into_iter()
            .enumerate()
            .map(|(i, outcome)| {
                if valid.binary_search(&i).is_ok() {
                    Ok(outcome)
                } else {
                    Err(Error::validation(
                        "invalid_event",
                        "completion event without bucket or key",
                    ))
                }
            })
            .collect())
    }

    /// The active jobs: listed again when `fresh` or when the last listing is older than
    /// `active_jobs_ttl`, else that listing (one Query fewer per batch of a busy tally).
    async fn active_jobs(&self, fresh: bool) -> Result<Arc<Vec<ActiveJob>>> {
        if !fresh {
            if let Some((at, jobs)) = &*self.active.lock().expect("active jobs lock") {
                if at.elapsed() < self.settings.active_jobs_ttl {
                    return Ok(jobs.clone());
                }
            }
        }
        let jobs = Arc::new(self.jobs.active_jobs().await?);
        *self.active.lock().expect("active jobs lock") = Some((Instant::now(), jobs.clone()));
        Ok(jobs)
    }

    /// Looks up the records `events[which]` can be and settles the pending ones; returns the
    /// events for which an active job (or none at all) has no record yet.
    async fn settle_batch(
        &self,
        events: &[RestoreCompletion],
        which: &[usize],
        outcomes: &mut [TallyOutcome],
        fresh: bool,
    ) -> Result<Vec<usize>> {
        let active = self.active_jobs(fresh).await?;
        let mut keys_by_job: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for &i in which {
            for job in active
                .iter()
                .filter(|j| j.covers(&events[i].bucket, &events[i].key))
            {
                keys_by_job
                    .entry(&job.job_id)
                    .or_default()
                    .insert(&events[i].key);
            }
        }
        let mut records: HashMap<(&str, &str), ObjectRecord> = HashMap::new();
        for (job_id, keys) in &keys_by_job {
            let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
            let found = self.jobs.get_objects(job_id, &keys).await?;
            for (key, record) in keys_by_job[job_id].iter().zip(found) {
                if let Some(record) = record {
                    records.insert((job_id, key), record);
                }
            }
        }
        let mut early = Vec::new();
        let mut settle: Vec<(ObjectRecord, Settlement)> = Vec::new();
        let mut owners = Vec::new();
        let mut taken = HashSet::new();
        for &i in which {
            let event = &events[i];
            let covering: Vec<&ActiveJob> = active
                .iter()
                .filter(|j| j.covers(&event.bucket, &event.key))
                .collect();
            let mut lacking = covering.is_empty();
            for job in covering {
                // A record of the same key from another of the job's buckets is not this one.
                let Some(record) = records
                    .get(&(job.job_id.as_str(), event.key.as_str()))
                    .filter(|r| r.bucket == event.bucket)
                else {
                    lacking = true;
                    continue;
                };
                if !versions_match(event.version_id.as_deref(), record.version_id.as_deref()) {
                    continue;
                }
                if !record.is_pending() || !taken.insert((job.job_id.as_str(), event.key.as_str()))
                {
                    outcomes[i].duplicates += 1;
                    continue;
                }
                settle.push((
                    record.clone(),
                    Settlement {
                        state: ObjectState::Restored,
                        expiry: event.expiry,
                        error: None,
                    },
                ));
                owners.push(i);
            }
            if lacking {
                early.push(i);
            }
        }
        let done = self.jobs.settle_many(&settle).await?;
        for (((object, _), settled), i) in settle.iter().zip(done).zip(owners) {
            if settled {
                tracing::info!(
                    job_id = %object.job_id,
                    bucket = %object.bucket,
                    key = %object.key,
                    "object restored"
                );
                outcomes[i].settled.push(object.job_id.clone());
            } else {
                outcomes[i].duplicates += 1;
            }
        }
        Ok(early)
    }

    /// Settles freshly recorded pending objects for which an early completion event is kept.
    /// Called when objects are recorded (table stream) and by the sweeper. Returns how many
    /// this call settled.
    pub async fn absorb_early(&self, objects: &[ObjectRecord]) -> Result<usize> {
        let now = OffsetDateTime::now_utc();
        let pending: Vec<&ObjectRecord> = objects.iter().filter(|o| o.is_pending()).collect();
        if pending.is_empty() {
            return Ok(0);
        }
        let keys: Vec<(&str, &str)> = pending
            .iter()
            .map(|o| (o.bucket.as_str(), o.key.as_str()))
            .collect();
        let early: HashMap<(String, String), _> = self
            .jobs
            .get_early_events(&keys)
            .await?
            .into_iter()
            .map(|event| ((event.bucket.clone(), event.key.clone()), event))
            .collect();
        let batch: Vec<(ObjectRecord, Settlement)> = pending
            .into_iter()
            .filter_map(|object| {
                let event = early.get(&(object.bucket.clone(), object.key.clone()))?;
                event.applies_to(object, now).then(|| {
                    let settlement = Settlement {
                        state: ObjectState::Restored,
                        expiry: event.expiry,
                        error: None,
                    };
                    (object.clone(), settlement)
                })
            })
            .collect();
        let settled = self.jobs.settle_many(&batch).await?;
        let mut count = 0;
        for ((object, _), settled) in batch.iter().zip(settled) {
            if settled {
                tracing::info!(
                    job_id = %object.job_id,
                    bucket = %object.bucket,
                    key = %object.key,
                    "object restored by an early event"
                );
                count += 1;
            }
        }
        Ok(count)
    }

    /// Handles a whole `restore-events` invocation payload (S3 notification, SQS batch of
    /// them, or EventBridge) with the Lambda's rules: for SQS, a partial batch response naming
    /// only the messages with a malformed record or a failed tally (the rest is deleted, the bad
    /// ones end in the DLQ); for a direct invocation every record is processed and then, if any
    /// was malformed or failed, an error (Lambda retries; the tally is idempotent). Other event
    /// names are acknowledged and ignored.
    pub async fn handle_events(&self, payload: &Value) -> Result<EventsResult> {
        let mut result = EventsResult::default();
        match parse_invocation(payload) {
            Invocation::Sqs(items) => {
                let mut failures = Vec::new();
                let mut unnamed = 0;
                let groups: Vec<&[RecordOutcome]> =
                    items.iter().map(|item| item.records.as_slice()).collect();
                let ok = self.handle_records(&groups, &mut result).await;
                for (item, ok) in items.iter().zip(ok) {
                    if ok {
                        continue;
                    }
                    if item.message_id.is_empty() {
                        unnamed += 1;
                    } else {
                        tracing::warn!(message_id = %item.message_id, "message reported as failed");
                        failures.push(json!({ "itemIdentifier": item.message_id }));
                    }
                }
                if unnamed > 0 {
                    // A failure that can't be named can't be retried alone: fail the batch
                    // (safe, the tally is idempotent).
                    return Err(Error::upstream(
                        "events",
                        format!("{unnamed} failed SQS message(s) without a messageId"),
                    ));
                }
                result.response = json!({ "batchItemFailures": failures });
            }
            Invocation::Direct(records) => {
                self.handle_records(&[records.as_slice()], &mut result)
                    .await;
                let failed = result.malformed + result.failed;
                if failed > 0 {
                    return Err(Error::upstream(
                        "events",
                        format!(
                            "{failed} of {} record(s) malformed or not tallied",
                            records.len()
                        ),
                    ));
                }
                result.response = json!({
                    "completed": result.completed,
                    "ignored": result.ignored,
                });
            }
            Invocation::Unrecognised(why) => {
                return Err(Error::validation(
                    "unrecognised_event",
                    format!("unrecognised event: {why}"),
                ));
            }
        }
        tracing::info!(
            completed = result.completed,
            settled = result.settled,
            ignored = result.ignored,
            malformed = result.malformed,
            failed = result.failed,
            "events processed"
        );
        Ok(result)
    }

    /// Tallies the completions of every group (an SQS message's records) as one batch; per
    /// group, false when one of its records must be reported (malformed, or not tallied).
    async fn handle_records(
        &self,
        groups: &[&[RecordOutcome]],
        result: &mut EventsResult,
    ) -> Vec<bool> {
        let mut ok = vec![true; groups.len()];
        let mut completions = Vec::new();
        let mut owners = Vec::new();
        for (group, records) in groups.iter().enumerate() {
            for record in records.iter() {
                match record {
                    RecordOutcome::Completed(event) => {
                        completions.push(event.clone());
                        owners.push(group);
                    }
                    RecordOutcome::Ignored { event_name } => {
                        tracing::info!(event_name = %event_name, "event ignored");
                        result.ignored += 1;
                    }
                    RecordOutcome::Malformed(why) => {
                        tracing::warn!(reason = %why, "malformed event record");
                        result.malformed += 1;
                        ok[group] = false;
                    }
                }
            }
        }
        if completions.is_empty() {
            return ok;
        }
        match self.record_batch(&completions).await {
            Ok(outcomes) => {
                for ((event, outcome), group) in completions.iter().zip(outcomes).zip(owners) {
                    match outcome {
                        Ok(outcome) => {
                            result.completed += 1;
                            result.settled += outcome.settled.len();
                            tracing::info!(
                                bucket = %event.bucket,
                                key = %event.key,
                                settled = outcome.settled.len(),
                                duplicates = outcome.duplicates,
                                early = outcome.kept_early,
                                "restore completion"
                            );
                            result.touched_jobs.extend(outcome.settled);
                        }
                        Err(err) => {
                            tracing::error!(bucket = %event.bucket, key = %event.key, error = %err, "completion not tallied");
                            result.failed += 1;
                            ok[group] = false;
                        }
                    }
                }
            }
            Err(err) => {
                tracing::error!(
                    completions = completions.len(),
                    error = %err,
                    "completions not tallied"
                );
                result.failed += completions.len();
                for group in owners {
                    ok[group] = false;
                }
            }
        }
        ok
    }

    // ---- finalize ------------------------------------------------------------------------

    /// Finishes a job once it is complete: the conditional transition decides the one winner,
    /// then the missing steps run. A job already terminal gets its missing steps (a retry
    /// after a crash). Safe to call as often as wanted.
    pub async fn finalize(&self, job_id: &str) -> Result<FinalizeOutcome> {
        let Some(view) = self.jobs.get_job(job_id).await? else {
            return Ok(FinalizeOutcome::Unknown);
        };
        let view = if view.job.state.is_active() {
            if !view.is_complete() {
                return Ok(FinalizeOutcome::NotDone {
                    pending: view.pending(),
                });
            }
            let total = view.job.totals.objects;
            let to = JobState::finished_with(total, view.settled.failed);
            let reason =
                (to == JobState::Failed).then(|| format!("all {total} objects failed to restore"));
            let won = self
                .jobs
                .transition_job(
                    job_id,
                    &[JobState::Planning, JobState::Restoring],
                    to,
                    reason.as_deref(),
                )
                .await?;
            if !won {
                return Ok(FinalizeOutcome::Lost);
            }
            tracing::info!(job_id, state = %to, "job finished");
            self.jobs
                .get_job(job_id)
                .await?
                .ok_or_else(|| Error::Internal(format!("job {job_id} vanished")))?
        } else {
            view
        };
        self.run_steps(&view).await
    }

    /// Fails an active job with a reason (the sweeper's verdict) and runs its steps (a failed
    /// job is mailed too). False when the job was no longer active.
    pub async fn fail_job(&self, job_id: &str, reason: &str) -> Result<bool> {
        let won = self
            .jobs
            .transition_job(
                job_id,
                &[JobState::Planning, JobState::Restoring],
                JobState::Failed,
                Some(reason),
            )
            .await?;
        if won {
            tracing::warn!(job_id, reason, "job failed");
            self.finalize(job_id).await?;
        }
        Ok(won)
    }

    async fn run_steps(&self, view: &JobView) -> Result<FinalizeOutcome> {
        let job = &view.job;
        let job_id = job.job_id.as_str();
        let has = |m: &str| job.markers.iter().any(|x| x == m);
        let dispatch_wanted = self.dispatcher.is_some() && job.state != JobState::Failed;
        let mut steps = Vec::new();
        if has(MARKER_MANIFEST) && has(MARKER_MAIL) && (!dispatch_wanted || has(MARKER_DISPATCH)) {
            return Ok(FinalizeOutcome::Finalized {
                state: job.state,
                steps,
            });
        }
        let report = self.build_report(view).await?;
        let bucket = &self.settings.manifest_bucket;
        let location = ManifestLocation {
            csv: format!("s3://{bucket}/{}", manifest_csv_key(job_id)),
            report: format!("s3://{bucket}/{}", report_json_key(job_id)),
        };

        if !has(MARKER_MANIFEST) {
            // Same content on every attempt: overwriting after a crash is harmless.
            self.objects
                .put(
                    bucket,
                    &manifest_csv_key(job_id),
                    csv_manifest(&report.objects).into_bytes(),
                    "text/csv",
                )
                .await?;
            self.objects
                .put(
                    bucket,
                    &report_json_key(job_id),
                    report_json(&report)?.into_bytes(),
                    "application/json",
                )
                .await?;
            self.jobs.set_manifest(job_id, &location.report).await?;
            self.jobs.set_marker(job_id, MARKER_MANIFEST).await?;
            tracing::info!(job_id, manifest = %location.csv, report = %location.report, "manifest written");
            steps.push(MARKER_MANIFEST.to_string());
        }

        if !has(MARKER_MAIL) {
            let Some(mailer) = &self.mailer else {
                return Err(Error::Config("the finalizer needs a mailer".into()));
            };
            let text = job_finished(
                &report,
                &self.settings.project_url,
                Some(&location),
                job.error.as_deref(),
            )?;
            let to = recipients(
                self.settings
                    .notification_emails
                    .iter()
                    .map(String::as_str)
                    .chain([job.user.as_str()]),
            );
            // Claim first: of two concurrent finalizers only one sends. A failed send gives
            // the claim back so the retry mails; a crash right after the claim loses the mail
            // rather than sending it twice.
            if self.jobs.set_marker(job_id, MARKER_MAIL).await? {
                let mail = Mail {
                    to,
                    subject: text.subject,
                    body: text.body,
                };
                if let Err(err) = mailer.send(&mail).await {
                    self.jobs.clear_marker(job_id, MARKER_MAIL).await?;
                    return Err(err);
                }
                tracing::info!(job_id, recipients = mail.to.len(), "job mail sent");
                steps.push(MARKER_MAIL.to_string());
            }
        }

        if dispatch_wanted && !has(MARKER_DISPATCH) {
            if let Some(dispatcher) = &self.dispatcher {
                let local_base = job
                    .local_base
                    .clone()
                    .or_else(|| self.settings.base_path.clone())
                    .unwrap_or_default();
                let target = dispatcher.target(job_id);
                let attempted_at = OffsetDateTime::now_utc();
                let result = dispatcher
                    .dispatch(&DispatchRequest {
                        job_id: job_id.to_string(),
                        project_id: job.project_id.clone(),
                        manifest_uri: location.report.clone(),
                        local_base,
                    })
                    .await;
                // Kept on the job either way, so `GET /api/v1/restore/{id}` shows the Job's
                // name, or why the cluster refused it.
                let mut copy = CopyDispatch {
                    job_name: target.name,
                    namespace: target.namespace,
                    state: DispatchState::Failed,
                    created: false,
                    dispatched_at: None,
                    attempted_at,
                    error: None,
                };
                let status = match result {
                    Ok(status) => status,
                    Err(err) => {
                        copy.error = Some(err.to_string());
                        // Every write to the job re-triggers its stream: the same failure again
                        // (a retry) is not rewritten, so retries stay within the stream's limit.
                        let known = job.copy.as_ref().is_some_and(|c| {
                            c.state == DispatchState::Failed && c.error == copy.error
                        });
                        if !known {
                            if let Err(store_err) = self.jobs.set_copy(job_id, &copy).await {
                                tracing::error!(job_id, error = %store_err, "dispatch failure not recorded");
                            }
                        }
                        tracing::error!(job_id, kube_job = %copy.job_name, error = %err, "copy not dispatched");
                        return Err(err);
                    }
                };
                copy.job_name = status.name.clone();
                copy.state = DispatchState::Dispatched;
                copy.created = status.created;
                copy.dispatched_at = Some(attempted_at);
                self.jobs.set_copy(job_id, &copy).await?;
                self.jobs.set_marker(job_id, MARKER_DISPATCH).await?;
                tracing::info!(job_id, kube_job = %status.name, created = status.created, "copy dispatched");
                steps.push(MARKER_DISPATCH.to_string());
            }
        }
        Ok(FinalizeOutcome::Finalized {
            state: job.state,
            steps,
        })
    }

    /// The report of a finished job: every object as it ended, totals from the objects
    /// themselves, and the estimated cost of the chosen tier.
    pub async fn build_report(&self, view: &JobView) -> Result<Report> {
        let job = &view.job;
        let mut objects = Vec::new();
        let mut totals = ReportTotals::default();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .jobs
                .list_objects(&job.job_id, after.as_deref(), 1000)
                .await?;
            for o in page.objects {
                totals.objects += 1;
                totals.bytes += o.size;
                match o.state {
                    ObjectState::Restored => totals.restored += 1,
                    ObjectState::NotNeeded => totals.not_needed += 1,
                    ObjectState::Failed => totals.failed += 1,
                    ObjectState::Planned | ObjectState::Requested => {}
                }
                objects.push(ReportObject {
                    bucket: o.bucket,
                    key: o.key,
                    version_id: o.version_id,
                    size: o.size,
                    storage_class: o.storage_class,
                    state: o.state,
                    expiry: o.expiry,
                    error: o.error,
                });
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let mut usage = Usage::default();
        for (class, t) in &job.totals.by_class {
            usage.add(
                &super::storage::StorageClass::from_s3(class),
                t.objects,
                t.bytes,
            );
        }
        let cost_cents = self.settings.prices.estimate_tier(&usage, job.tier).cents;
        Ok(Report {
            job_id: job.job_id.clone(),
            project_id: job.project_id.clone(),
            prefix: job.prefix.clone(),
            local_base: job.local_base.clone(),
            tier: job.tier,
            state: job.state,
            created_at: job.created_at,
            finished_at: job.updated_at,
            totals,
            cost_cents,
            objects,
        })
    }

    // ---- sweep ---------------------------------------------------------------------------

    /// One sweep over every active job: settles pending objects from kept early events or,
    /// past their tier's expected window, from HeadObject; gives up objects (and fails stalled
    /// jobs) that can't complete, with the reason; finalizes what became complete.
    pub async fn sweep(&self, now: OffsetDateTime) -> Result<SweepReport> {
        let mut report = SweepReport::default();
        for ActiveJob { job_id, .. } in self.jobs.active_jobs().await? {
            report.jobs += 1;
            if let Err(err) = self.sweep_job(&job_id, now, &mut report).await {
                // One broken job must not stop the sweep of the others.
                tracing::error!(job_id = %job_id, error = %err, "sweep of job failed");
            }
        }
        Ok(report)
    }

    async fn sweep_job(
        &self,
        job_id: &str,
        now: OffsetDateTime,
        report: &mut SweepReport,
    ) -> Result<()> {
        let Some(view) = self.jobs.get_job(job_id).await? else {
            return Ok(());
        };
        let job = &view.job;
        if !job.state.is_terminal() {
            report.finished_settlements += self.jobs.finish_settlements(job_id, now).await?;
        }
        match job.state {
            JobState::Planning => {
                if now - job.updated_at > self.settings.planning_stall {
                    let reason = format!(
                        "the fan-out made no progress since {}",
                        job.updated_at.unix_timestamp()
                    );
                    if self.fail_job(job_id, &reason).await? {
                        report.failed_jobs.push((job_id.to_string(), reason));
                    }
                }
                return Ok(());
            }
            JobState::Restoring => {}
            _ => {
                // Terminal but still locked: a finalize that crashed; redo its steps.
                self.finalize(job_id).await?;
                return Ok(());
            }
        }
        // Restoring: `updated_at` is when the listing ended, the latest request time.
        let requested_by = job.updated_at;
        let mut after: Option<String> = None;
        loop {
            let page = self
                .jobs
                .list_objects(job_id, after.as_deref(), 500)
                .await?;
            let pending: Vec<ObjectRecord> = page
                .objects
                .into_iter()
                .filter(|o| o.is_pending())
                .collect();
            let from_early = self.absorb_early(&pending).await?;
            report.from_early_events += from_early;
            self.sweep_page(job, pending, requested_by, now, report)
                .await?;
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        if let FinalizeOutcome::Finalized { .. } = self.finalize(job_id).await? {
            report.finalized.push(job_id.to_string());
        }
        Ok(())
    }

    /// Checks a page of pending objects, up to `sweep_heads_in_flight` HeadObjects at a time,
    /// and settles what it found in one batch.
    async fn sweep_page(
        &self,
        job: &super::job::Job,
        pending: Vec<ObjectRecord>,
        requested_by: OffsetDateTime,
        now: OffsetDateTime,
        report: &mut SweepReport,
    ) -> Result<()> {
        // The futures are made up front (not mapped lazily inside the stream) so the sweep
        // stays `Send` for `tokio::spawn` (a closure in the stream type trips lifetime
        // inference there); none runs before `buffered` polls it.
        let checks: Vec<_> = pending
            .iter()
            .map(|object| self.check_object(job, object, requested_by, now))
            .collect();
        let findings: Vec<Finding> = futures::stream::iter(checks)
            .buffered(self.settings.sweep_heads_in_flight.max(1))
            .collect()
            .await;
        let mut batch = Vec::new();
        for (object, finding) in pending.into_iter().zip(findings) {
            match finding {
                Finding::NotDue => {}
                Finding::StillPending => report.checked += 1,
                Finding::Settle(settlement) => {
                    report.checked += 1;
                    batch.push((object, settlement));
                }
            }
        }
        let settled = self.jobs.settle_many(&batch).await?;
        for ((object, settlement), settled) in batch.iter().zip(settled) {
            if !settled {
                continue; // settled meanwhile, by an event
            }
            tracing::info!(job_id = %job.job_id, bucket = %object.bucket, key = %object.key, state = %settlement.state, reason = settlement.error.as_deref().unwrap_or(""), "sweeper settled object");
            match settlement.state {
                ObjectState::Restored => report.restored += 1,
                ObjectState::NotNeeded => report.not_needed += 1,
                _ => report.failed += 1,
            }
        }
        Ok(())
    }

    /// What HeadObject says of one pending object once its tier's window has passed.
    async fn check_object(
        &self,
        job: &super::job::Job,
        object: &ObjectRecord,
        requested_by: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Finding {
        let tier = object.tier.unwrap_or(job.tier);
        let window = match self.settings.window_override {
            Some(w) => w,
            None => expected_window(&object.storage_class, None, tier)
                .map(|w| w.max())
                .unwrap_or_default(),
        };
        let due = requested_by + window;
        if now < due {
            return Finding::NotDue;
        }
        let give_up = now >= due + self.settings.give_up_after;
        let target = ObjectRef {
            bucket: object.bucket.clone(),
            key: object.key.clone(),
            version_id: object.version_id.clone(),
        };
        let failed = |reason: String| {
            Finding::Settle(Settlement {
                state: ObjectState::Failed,
                expiry: None,
                error: Some(reason),
            })
        };
        match self.objects.head(&target).await {
            Ok(head) => match head.classify(tier, RestorePolicy::default()) {
                Classification::Readable => Finding::Settle(Settlement {
                    state: ObjectState::NotNeeded,
                    expiry: None,
                    error: None,
                }),
                Classification::AlreadyRestored(status) => Finding::Settle(Settlement {
                    state: ObjectState::Restored,
                    expiry: status.expiry,
                    error: None,
                }),
                Classification::Pending if give_up => failed(format!(
                    "restore still in progress {} after its expected window",
                    human(now - due)
                )),
                Classification::Pending => Finding::StillPending,
                // Archived and no restore running: the request was lost or the restored copy
                // already expired; waiting longer will not bring it back.
                Classification::Restore(_) => failed(
                    "no restore in progress or restored copy found (request lost or copy expired)"
                        .into(),
                ),
            },
            Err(err) if err.http_status() == 404 => failed("object no longer exists".into()),
            Err(err) => {
                tracing::warn!(job_id = %job.job_id, bucket = %object.bucket, key = %object.key, error = %err, "sweeper HeadObject failed");
                Finding::StillPending
            }
        }
    }
}

/// HeadObjects the sweeper has in flight at once. A job whose events never came (a lost
/// notification configuration, say) can have hundreds of thousands of due objects; one at a
/// time, at tens of milliseconds each on S3, would not get through them in one 15-minute run.
pub const SWEEP_HEADS_IN_FLIGHT: usize = 32;

/// What the sweeper found for one pending object.
enum Finding {
    /// Its tier's window has not passed yet: not checked.
    NotDue,
    /// Checked, and still restoring (or HeadObject failed): looked at again next sweep.
    StillPending,
    /// Checked, and done one way or another.
    Settle(Settlement),
}

fn human(d: time::Duration) -> String {
    let secs = d.whole_seconds().max(0);
    if secs >= 3600 {
        format!("{}h{:02}m", secs / 3600, secs % 3600 / 60)
    } else {
        format!("{}m{:02}s", secs / 60, secs % 60)
    }
}

/// The job ids a DynamoDB stream batch asks the finalizer to look at, and the object records
/// it inserted (for early events). Read from the stream's JSON (`Records[].dynamodb.Keys` /
/// `NewImage`), so the domain needs no SDK type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamWork {
    /// Jobs whose META or counter shard changed.
    pub jobs: BTreeSet<String>,
    /// Newly inserted pending objects: (job id, bucket, key).
    pub inserted: Vec<(String, String, String)>,
}

/// Reads a DynamoDB stream batch of the jobs table.
pub fn stream_work(payload: &Value) -> StreamWork {
    let mut work = StreamWork::default();
    let records = payload
        .get("Records")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let attr = |v: &Value, image: &str, name: &str| -> Option<String> {
        v.get("dynamodb")?
            .get(image)?
            .get(name)?
            .get("S")?
            .as_str()
            .map(str::to_string)
    };
    for record in &records {
        let (Some(pk), Some(sk)) = (attr(record, "Keys", "pk"), attr(record, "Keys", "sk")) else {
            continue;
        };
        let Some(job_id) = pk.strip_prefix("JOB#") else {
            continue;
        };
        if sk == "META" || sk.starts_with("COUNT#") {
            work.jobs.insert(job_id.to_string());
        } else if sk.starts_with("OBJ#")
            && record.get("eventName").and_then(Value::as_str) == Some("INSERT")
        {
            let state = attr(record, "NewImage", "state");
            if matches!(state.as_deref(), Some("planned") | Some("requested")) {
                if let (Some(bucket), Some(key)) = (
                    attr(record, "NewImage", "bucket"),
                    attr(record, "NewImage", "key"),
                ) {
                    work.inserted.push((job_id.to_string(), bucket, key));
                }
            }
        }
    }
    work
}

impl Completion {
    /// Handles a jobs-table stream batch: settles inserted objects from early events, then
    /// finalizes every job whose counts or state changed (a no-op until it is complete).
    pub async fn handle_stream(&self, payload: &Value) -> Result<Vec<(String, FinalizeOutcome)>> {
        let work = stream_work(payload);
        let mut by_job: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for (job_id, _bucket, key) in &work.inserted {
            by_job.entry(job_id.clone()).or_default().push(key.clone());
        }
        let mut jobs = work.jobs.clone();
        for (job_id, keys) in by_job {
            let records: Vec<ObjectRecord> = self
                .jobs
                .get_objects(&job_id, &keys)
                .await?
                .into_iter()
                .flatten()
                .collect();
            if self.absorb_early(&records).await? > 0 {
                jobs.insert(job_id);
            }
        }
        let mut outcomes = Vec::new();
        for job_id in jobs {
            let outcome = self.finalize(&job_id).await?;
            outcomes.push((job_id, outcome));
        }
        Ok(outcomes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::{
        MemoryDispatcher, MemoryJobStore, MemoryMailer, MemoryObjectStore,
    };
    use crate::domain::event::CompletionSource;
    use crate::domain::job::{shard_of, Job, LeaseOutcome, PageCommit, PlanTotals};
    use crate::domain::object::RestoreStatus;
    use crate::domain::storage::{RetrievalTier, StorageClass};

    const MANIFESTS: &str = "manifests";

    struct World {
        jobs: Arc<MemoryJobStore>,
        s3: Arc<MemoryObjectStore>,
        mailer: Arc<MemoryMailer>,
        dispatcher: Arc<MemoryDispatcher>,
        completion: Completion,
    }

    fn world(dispatch: bool) -> World {
        let jobs = Arc::new(MemoryJobStore::new());
        let s3 = Arc::new(MemoryObjectStore::new());
        s3.create_bucket(MANIFESTS);
        s3.create_bucket("media");
        let mailer = Arc::new(MemoryMailer::new());
        let dispatcher = Arc::new(MemoryDispatcher::new());
        let mut settings = CompletionSettings::new(MANIFESTS, PriceList::seed());
        settings.notification_emails = vec!["ops@example.com".into()];
        settings.project_url = "https://pluto.example.com/project/".into();
        let completion = Completion::new(
            jobs.clone(),
            s3.clone(),
            Some(mailer.clone()),
            dispatch.then(|| dispatcher.clone() as Arc<dyn Dispatcher>),
            settings,
        );
        World {
            jobs,
            s3,
            mailer,
            dispatcher,
            completion,
        }
    }

    fn record(job_id: &str, key: &str, size: u64) -> ObjectRecord {
        ObjectRecord {
            job_id: job_id.into(),
            bucket: "media".into(),
            key: key.into(),
            version_id: None,
            size,
            storage_class: StorageClass::Glacier,
            tier: Some(RetrievalTier::Bulk),
            state: ObjectState::Requested,
            shard: shard_of("media", key, 4),
            expiry: None,
            error: None,
            settled_at_listing: false,
        }
    }

    /// Does what the fan-out does: job, objects recorded as requested, listing done. The
    /// job's prefix is the first key's top folder (the project's name when there is no key).
    async fn restoring_job(store: &dyn JobStore, job_id: &str, project: &str, keys: &[&str]) {
        let folder = keys
            .first()
            .and_then(|k| k.split_once('/'))
            .map_or(project, |(top, _)| top);
        let job = Job::new(
            job_id.into(),
            project.into(),
            "ed@example.com".into(),
            format!("/srv/Assets/{folder}/"),
            format!("{folder}/"),
            Some("/srv/Assets/".into()),
            RetrievalTier::Bulk,
            vec!["media".into()],
            4,
            OffsetDateTime::now_utc(),
        );
        store.create_job(&job).await.unwrap();
        let records: Vec<ObjectRecord> = keys.iter().map(|k| record(job_id, k, 100)).collect();
        store.put_objects(&records).await.unwrap();
        let now = OffsetDateTime::now_utc();
        let LeaseOutcome::Acquired { job, .. } = store
            .acquire_lease(job_id, "t", now, now + time::Duration::minutes(1))
            .await
            .unwrap()
        else {
            panic!("lease")
        };
        let mut add = PlanTotals {
            objects: keys.len() as u64,
            bytes: 100 * keys.len() as u64,
            to_restore: keys.len() as u64,
            bytes_to_restore: 100 * keys.len() as u64,
            requested: keys.len() as u64,
            ..Default::default()
        };
        add.by_class.insert(
            "GLACIER".into(),
            crate::domain::job::ClassTotals {
                objects: keys.len() as u64,
                bytes: 100 * keys.len() as u64,
            },
        );
        let mut to = job.cursor.clone();
        to.page += 1;
        to.bucket_index = 1;
        to.listing_done = true;
        store
            .advance_cursor(
                job_id,
                "t",
                &PageCommit {
                    from: job.cursor.clone(),
                    to,
                    add,
                    notes: vec![],
                    keep_lease: None,
                },
            )
            .await
            .unwrap();
    }

    fn event(key: &str) -> RestoreCompletion {
        RestoreCompletion {
            bucket: "media".into(),
            key: key.into(),
            raw_key: key.into(),
            version_id: None,
            expiry: Some(OffsetDateTime::now_utc() + time::Duration::days(3)),
            event_time: None,
            source: CompletionSource::S3Notification,
        }
    }

    #[tokio::test]
    async fn duplicates_and_reordering_count_once_and_finalize_once() {
        let w = world(true);
        restoring_job(w.jobs.as_ref(), "j1", "p1", &["p1/a", "p1/b", "p1/c"]).await;
        for key in ["p1/c", "p1/a", "p1/c", "p1/a", "p1/b", "p1/b"] {
            w.completion.record(&event(key)).await.unwrap();
            w.completion.finalize("j1").await.unwrap();
        }
        let view = w.jobs.get_job("j1").await.unwrap().unwrap();
        assert_eq!(view.settled.restored, 3);
        assert_eq!(view.settled.restored_bytes, 300);
        assert_eq!(view.job.state, JobState::Completed);
        // More duplicates after the end change nothing and mail nobody again.
        let late = w.completion.record(&event("p1/a")).await.unwrap();
        assert!(late.settled.is_empty());
        assert!(matches!(
            w.completion.finalize("j1").await.unwrap(),
            FinalizeOutcome::Finalized { steps, .. } if steps.is_empty()
        ));
        assert_eq!(w.mailer.sent().len(), 1);
        assert_eq!(w.dispatcher.calls(), 1);
        let mail = &w.mailer.sent()[0];
        assert_eq!(mail.to, vec!["ops@example.com", "ed@example.com"]);
        assert!(mail.body.contains("https://pluto.example.com/project/p1"));
        let csv = w.s3.object(MANIFESTS, "j1/manifest.csv").unwrap().body;
        assert_eq!(
            String::from_utf8(csv).unwrap(),
            "media,p1/a\nmedia,p1/b\nmedia,p1/c\n"
        );
        let view = w.jobs.get_job("j1").await.unwrap().unwrap();
        assert_eq!(
            view.job.manifest.as_deref(),
            Some("s3://manifests/j1/report.json")
        );
    }

    /// The tally reuses its listing of the active jobs for a few seconds. A job started
    /// after that listing still gets its events: what no listed job has a record for is kept
    /// as an early event and looked up again with a fresh listing, which finds the new job.
    #[tokio::test]
    async fn a_job_newer_than_the_reused_listing_still_gets_its_events() {
        let w = world(false);
        restoring_job(w.jobs.as_ref(), "j1", "p1", &["p1/a"]).await;
        let first = w.completion.record(&event("p1/a")).await.unwrap();
        assert_eq!(first.settled, ["j1"]);
        assert!(!first.kept_early);
        restoring_job(w.jobs.as_ref(), "j2", "p2", &["p2/x"]).await;
        let second = w.completion.record(&event("p2/x")).await.unwrap();
        assert!(
            second.kept_early,
            "the reused listing (without j2) was asked first"
        );
        assert_eq!(second.settled, ["j2"], "the fresh listing found j2");
        let view = w.jobs.get_job("j2").await.unwrap().unwrap();
        assert_eq!(view.settled.restored, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_duplicates_count_once() {
        let w = Arc::new(world(false));
        let keys: Vec<String> = (0..20).map(|i| format!("race/{i}")).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        restoring_job(w.jobs.as_ref(), "jr", "pr", &refs).await;
        let mut tasks = Vec::new();
        for _ in 0..4 {
            for key in keys.iter().rev() {
                let (w, key) = (w.clone(), key.clone());
                tasks.push(tokio::spawn(async move {
                    w.completion.record(&event(&key)).await.unwrap();
                    w.completion.finalize("jr").await.unwrap()
                }));
            }
        }
        for task in tasks {
            task.await.unwrap();
        }
        let view = w.jobs.get_job("jr").await.unwrap().unwrap();
        assert_eq!(view.settled.restored, 20);
        assert_eq!(view.job.state, JobState::Completed);
        assert_eq!(w.mailer.sent().len(), 1);
    }

    #[tokio::test]
    async fn an_early_event_settles_the_object_once_it_is_recorded() {
        let w = world(false);
        let outcome = w.completion.record(&event("p2/early")).await.unwrap();
        assert!(outcome.kept_early && outcome.settled.is_empty());
        restoring_job(w.jobs.as_ref(), "j2", "p2", &["p2/early", "p2/late"]).await;
        let records = w.jobs.objects("j2");
        assert_eq!(w.completion.absorb_early(&records).await.unwrap(), 1);
        // Absorbing again is a no-op: the object is settled.
        assert_eq!(
            w.completion
                .absorb_early(&w.jobs.objects("j2"))
                .await
                .unwrap(),
            0
        );
        w.completion.record(&event("p2/late")).await.unwrap();
        assert!(matches!(
            w.completion.finalize("j2").await.unwrap(),
            FinalizeOutcome::Finalized {
                state: JobState::Completed,
                ..
            }
        ));
        assert_eq!(
            w.jobs
                .get_job("j2")
                .await
                .unwrap()
                .unwrap()
                .settled
                .restored,
            2
        );
    }

    #[tokio::test]
    async fn an_expired_early_event_settles_nothing() {
        let w = world(false);
        let now = OffsetDateTime::now_utc();
        w.jobs
            .put_early_event(&EarlyEvent {
                bucket: "media".into(),
                key: "p3/a".into(),
                version_id: None,
                expiry: None,
                received_at: now - time::Duration::days(2),
                expires_at: now - time::Duration::days(1),
            })
            .await
            .unwrap();
        restoring_job(w.jobs.as_ref(), "j3", "p3", &["p3/a"]).await;
        assert_eq!(
            w.completion
                .absorb_early(&w.jobs.objects("j3"))
                .await
                .unwrap(),
            0
        );
    }

    #[tokio::test]
    async fn an_object_in_two_jobs_counts_in_both() {
        let w = world(false);
        restoring_job(w.jobs.as_ref(), "ja", "pa", &["shared/x"]).await;
        restoring_job(w.jobs.as_ref(), "jb", "pb", &["shared/x", "shared/y"]).await;
        let outcome = w.completion.record(&event("shared/x")).await.unwrap();
        assert_eq!(outcome.settled, vec!["ja", "jb"]);
        w.completion.record(&event("shared/x")).await.unwrap();
        assert_eq!(
            w.jobs
                .get_job("ja")
                .await
                .unwrap()
                .unwrap()
                .settled
                .restored,
            1
        );
        assert_eq!(
            w.jobs
                .get_job("jb")
                .await
                .unwrap()
                .unwrap()
                .settled
                .restored,
            1
        );
        assert!(matches!(
            w.completion.finalize("jb").await.unwrap(),
            FinalizeOutcome::NotDone { pending: 1 }
        ));
    }

    #[tokio::test]
    async fn a_job_with_a_failed_object_completes_with_errors() {
        let w = world(false);
        restoring_job(w.jobs.as_ref(), "j4", "p4", &["p4/ok", "p4/bad"]).await;
        let bad = w
            .jobs
            .objects("j4")
            .into_iter()
            .find(|o| o.key == "p4/bad")
            .unwrap();
        w.jobs
            .settle(
                &bad,
                &Settlement {
                    state: ObjectState::Failed,
                    expiry: None,
                    error: Some("AccessDenied".into()),
                },
            )
            .await
            .unwrap();
        w.completion.record(&event("p4/ok")).await.unwrap();
        w.completion.finalize("j4").await.unwrap();
        let view = w.jobs.get_job("j4").await.unwrap().unwrap();
        assert_eq!(view.job.state, JobState::CompletedWithErrors);
        let mail = &w.mailer.sent()[0];
        assert!(mail.subject.contains("1 failed"), "{}", mail.subject);
        assert!(mail.body.contains("p4/bad") && mail.body.contains("AccessDenied"));
        // The CSV lists only what came back.
        let csv =
            String::from_utf8(w.s3.object(MANIFESTS, "j4/manifest.csv").unwrap().body).unwrap();
        assert_eq!(csv, "media,p4/ok\n");
    }

    #[tokio::test]
    async fn a_failed_mail_is_retried_without_rewriting_or_double_mailing() {
        let w = world(false);
        restoring_job(w.jobs.as_ref(), "j5", "p5", &["p5/a"]).await;
        w.completion.record(&event("p5/a")).await.unwrap();
        w.mailer.fail_next("SES throttled");
        let err = w.completion.finalize("j5").await.unwrap_err();
        assert!(err.to_string().contains("SES throttled"));
        assert!(w.mailer.sent().is_empty());
        // The retry (a redelivered stream batch) only mails.
        match w.completion.finalize("j5").await.unwrap() {
            FinalizeOutcome::Finalized { steps, .. } => assert_eq!(steps, vec![MARKER_MAIL]),
            other => panic!("{other:?}"),
        }
        w.completion.finalize("j5").await.unwrap();
        assert_eq!(w.mailer.sent().len(), 1);
    }

    #[tokio::test]
    async fn the_sweeper_settles_objects_whose_event_never_came() {
        let mut w = world(false);
        w.completion.settings.window_override = Some(Duration::ZERO);
        restoring_job(
            w.jobs.as_ref(),
            "j6",
            "p6",
            &["p6/done", "p6/slow", "p6/gone"],
        )
        .await;
        let mut done = crate::adapters::memory::StoredObject::new(100, StorageClass::Glacier);
        done.restore = Some(RestoreStatus {
            ongoing: false,
            expiry: Some(OffsetDateTime::now_utc() + time::Duration::days(2)),
        });
        w.s3.insert("media", "p6/done", done);
        let mut slow = crate::adapters::memory::StoredObject::new(100, StorageClass::Glacier);
        slow.restore = Some(RestoreStatus {
            ongoing: true,
            expiry: None,
        });
        w.s3.insert("media", "p6/slow", slow);
        // p6/gone does not exist any more.
        let report = w.completion.sweep(OffsetDateTime::now_utc()).await.unwrap();
        assert_eq!((report.restored, report.failed), (1, 1));
        let view = w.jobs.get_job("j6").await.unwrap().unwrap();
        assert_eq!(view.pending(), 1);
        let gone = w
            .jobs
            .objects("j6")
            .into_iter()
            .find(|o| o.key == "p6/gone")
            .unwrap();
        assert_eq!(gone.error.as_deref(), Some("object no longer exists"));
        // Past the give-up time the still-running restore fails with its reason and the job
        // ends with errors, mailed once.
        let later = OffsetDateTime::now_utc() + time::Duration::days(2);
        let report = w.completion.sweep(later).await.unwrap();
        assert_eq!(report.failed, 1);
        assert_eq!(report.finalized, vec!["j6"]);
        let view = w.jobs.get_job("j6").await.unwrap().unwrap();
        assert_eq!(view.job.state, JobState::CompletedWithErrors);
        let slow = w
            .jobs
            .objects("j6")
            .into_iter()
            .find(|o| o.key == "p6/slow")
            .unwrap();
        assert!(slow.error.unwrap().contains("still in progress"));
        assert_eq!(w.mailer.sent().len(), 1);
        assert!(w.completion.sweep(later).await.unwrap().jobs == 0);
    }

    #[tokio::test]
    async fn the_sweeper_checks_many_objects_at_once_and_settles_each_once() {
        let mut w = world(false);
        let keys: Vec<String> = (0..100).map(|i| format!("pc/{i:03}.mov")).collect();
        let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        restoring_job(w.jobs.as_ref(), "jc", "pc", &key_refs).await;
        // Every other object restored; the rest gone from the bucket.
        for key in keys.iter().step_by(2) {
            let mut done = crate::adapters::memory::StoredObject::new(100, StorageClass::Glacier);
            done.restore = Some(RestoreStatus {
                ongoing: false,
                expiry: Some(OffsetDateTime::now_utc() + time::Duration::days(2)),
            });
            w.s3.insert("media", key, done);
        }
        // One of them already counted by its event: no longer pending, not checked.
        w.completion.record(&event("pc/000.mov")).await.unwrap();
        w.s3.delay_heads(Duration::from_millis(5));
        w.completion.settings.window_override = Some(Duration::ZERO);
        let report = w.completion.sweep(OffsetDateTime::now_utc()).await.unwrap();
        let (heads, most) = w.s3.head_calls();
        assert_eq!(heads, 99, "one HeadObject per pending object");
        assert!(
            most > 1 && most <= SWEEP_HEADS_IN_FLIGHT,
            "{most} HeadObjects at once"
        );
        assert_eq!(report.checked, 99);
        assert_eq!((report.restored, report.failed), (49, 50));
        let view = w.jobs.get_job("jc").await.unwrap().unwrap();
        assert_eq!((view.settled.restored, view.settled.failed), (50, 50));
        assert_eq!(view.job.state, JobState::CompletedWithErrors);
        assert_eq!(report.finalized, vec!["jc"]);
        assert_eq!(w.mailer.sent().len(), 1);
    }

    #[tokio::test]
    async fn the_sweeper_waits_for_the_tier_window_and_fails_stalled_fanouts() {
        let w = world(false);
        restoring_job(w.jobs.as_ref(), "j7", "p7", &["p7/a"]).await;
        // Bulk Glacier: 12 h window; nothing is checked before.
        let report = w.completion.sweep(OffsetDateTime::now_utc()).await.unwrap();
        assert_eq!(report.checked, 0);
        let stalled = Job::new(
            "j8".into(),
            "p8".into(),
            "ed@example.com".into(),
            "p8/".into(),
            "p8/".into(),
            None,
            RetrievalTier::Bulk,
            vec!["media".into()],
            1,
            OffsetDateTime::now_utc() - time::Duration::days(1),
        );
        w.jobs.create_job(&stalled).await.unwrap();
        let report = w.completion.sweep(OffsetDateTime::now_utc()).await.unwrap();
        assert_eq!(report.failed_jobs.len(), 1);
        let view = w.jobs.get_job("j8").await.unwrap().unwrap();
        assert_eq!(view.job.state, JobState::Failed);
        assert!(view.job.error.unwrap().contains("no progress"));
        let mail = &w.mailer.sent()[0];
        assert!(mail.subject.contains("FAILED") && mail.body.contains("no progress"));
    }

    #[tokio::test]
    async fn sqs_batches_name_only_bad_messages() {
        let w = world(false);
        restoring_job(w.jobs.as_ref(), "j9", "p9", &["p9/a b+c"]).await;
        let body = json!({"Records": [{
            "eventName": "ObjectRestore:Completed",
            "s3": {"bucket": {"name": "media"}, "object": {"key": "p9/a+b%2Bc"}}
        }]});
        let payload = json!({"Records": [
            {"eventSource": "aws:sqs", "messageId": "m1", "body": body.to_string()},
            {"eventSource": "aws:sqs", "messageId": "m2", "body": "not json"},
            {"eventSource": "aws:sqs", "messageId": "m3", "body": json!({"Records": [{"eventName": "ObjectRestore:Post", "s3": {}}]}).to_string()},
        ]});
        let result = w.completion.handle_events(&payload).await.unwrap();
        assert_eq!(
            (result.completed, result.malformed, result.ignored),
            (1, 1, 1)
        );
        assert_eq!(
            result.response,
            json!({"batchItemFailures": [{"itemIdentifier": "m2"}]})
        );
        assert_eq!(
            w.jobs
                .get_job("j9")
                .await
                .unwrap()
                .unwrap()
                .settled
                .restored,
            1
        );
        // A record without a bucket is malformed: logged, acknowledged, nothing written.
        let empty = json!({"Records": [{"eventSource": "aws:sqs", "messageId": "m4",
            "body": json!({"Records": [{"eventName": "ObjectRestore:Completed", "s3": {"bucket": {"name": ""}, "object": {"key": "k"}}}]}).to_string()}]});
        let result = w.completion.handle_events(&empty).await.unwrap();
        assert_eq!(result.malformed, 1);
        assert_eq!(
            result.response,
            json!({"batchItemFailures": [{"itemIdentifier": "m4"}]})
        );
        assert!(w.jobs.get_early_event("", "k").await.unwrap().is_none());
        // A failed message without a messageId can't be named: the whole batch fails.
        let unnamed = json!({"Records": [{"eventSource": "aws:sqs", "body": "nope"}]});
        let err = w.completion.handle_events(&unnamed).await.unwrap_err();
        assert!(err.to_string().contains("without a messageId"), "{err}");
    }

    #[tokio::test]
    async fn stream_batches_finalize_and_absorb_early_events() {
        let w = world(false);
        w.completion.record(&event("p10/a")).await.unwrap();
        restoring_job(w.jobs.as_ref(), "j10", "p10", &["p10/a"]).await;
        let payload = json!({"Records": [
            {"eventName": "INSERT", "dynamodb": {
                "Keys": {"pk": {"S": "JOB#j10"}, "sk": {"S": "OBJ#p10/a"}},
                "NewImage": {"state": {"S": "requested"}, "bucket": {"S": "media"}, "key": {"S": "p10/a"}}}},
            {"eventName": "MODIFY", "dynamodb": {"Keys": {"pk": {"S": "PROJECT#x"}, "sk": {"S": "ACTIVE"}}}}
        ]});
        let work = stream_work(&payload);
        assert!(work.jobs.is_empty());
        assert_eq!(
            work.inserted,
            vec![("j10".into(), "media".into(), "p10/a".into())]
        );
        let outcomes = w.completion.handle_stream(&payload).await.unwrap();
        assert!(matches!(
            outcomes.as_slice(),
            [(id, FinalizeOutcome::Finalized { state: JobState::Completed, .. })] if id == "j10"
        ));
        assert_eq!(w.mailer.sent().len(), 1);
    }

    #[tokio::test]
    async fn a_manifest_write_failure_leaves_the_job_to_retry() {
        let w = world(false);
        restoring_job(w.jobs.as_ref(), "j11", "p11", &["p11/a"]).await;
        w.completion.record(&event("p11/a")).await.unwrap();
        w.s3.fail_next(crate::adapters::memory::ObjectStoreOp::Put, "503");
        assert!(w.completion.finalize("j11").await.is_err());
        assert!(w.mailer.sent().is_empty());
        w.completion.finalize("j11").await.unwrap();
        assert_eq!(w.mailer.sent().len(), 1);
        assert!(w
            .s3
            .head(&ObjectRef {
                bucket: MANIFESTS.into(),
                key: "j11/report.json".into(),
                version_id: None
            })
            .await
            .is_ok());
    }
}
