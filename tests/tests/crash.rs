//! Crash safety: the fan-out, the tally and the finalizer are killed at seeded random points
//! (the task is aborted while it waits on a DynamoDB, S3 or mail call, before or after that
//! call took effect) and resumed by a fresh invocation, against DynamoDB, S3 and SES on the
//! emulator. Afterwards: every object requested at S3 exactly once (counted at a loopback
//! proxy), none lost, none counted twice, one manifest, one mail.
//!
//! `CRASH_SEED` picks other kill points (default 11).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::StorageClass as SdkClass;
use futures::stream::{self, StreamExt};
use integration_tests::fault_proxy::{FaultPlan, FaultProxy};
use integration_tests::{
    aws_config_at, moto_api_get, moto_endpoint, s3_client, s3_restore_event, sesv2_client,
    unique_name, SeededRng,
};
use serde_json::Value;
use shared::adapters::dynamodb::DynamoJobStore;
use shared::adapters::s3::S3ObjectStore;
use shared::adapters::ses::SesMailer;
use shared::domain::completion::{
    Completion, CompletionSettings, EarlyEvent, FinalizeOutcome, MARKER_MAIL,
};
use shared::domain::cost::PriceList;
use shared::domain::fanout::{Fanout, FanoutSettings, RunOutcome};
use shared::domain::job::{
    ActiveJob, CopyDispatch, CreateOutcome, Job, JobView, LeaseOutcome, ObjectPage, ObjectRecord,
    PageCommit, Settlement, StatsRecord,
};
use shared::domain::object::{ListPage, ObjectHead, ObjectRef, RestoreOutcome, RestoreParams};
use shared::domain::state::{JobState, ObjectState};
use shared::domain::storage::RetrievalTier;
use shared::ports::{JobStore, Mail, Mailer, ObjectStore};
use time::OffsetDateTime;

const OBJECTS: usize = 200;

/// One invocation's death: at its `kill_at`-th port call (counted over the job store, the
/// object store and the mailer together) it hangs, before or after making the call, and the
/// test aborts its task.
struct Killer {
    calls: AtomicUsize,
    kill_at: usize,
    after: bool,
    killed: tokio::sync::Notify,
    at: Mutex<Option<(&'static str, bool)>>,
}

impl Killer {
    fn new(kill_at: usize, after: bool) -> Arc<Self> {
        Arc::new(Killer {
            calls: AtomicUsize::new(0),
            kill_at,
            after,
            killed: tokio::sync::Notify::new(),
            at: Mutex::new(None),
        })
    }

    async fn point<T>(&self, name: &'static str, call: impl Future<Output = T>) -> T {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let dies = n == self.kill_at;
        if dies && !self.after {
            self.die(name).await;
        }
        let out = call.await;
        if dies {
            self.die(name).await;
        }
        out
    }

    async fn die(&self, name: &'static str) {
        *self.at.lock().unwrap() = Some((name, self.after));
        self.killed.notify_one();
        std::future::pending::<()>().await;
    }

    /// Runs `task` as one invocation; `None` when it was killed (its task aborted).
    async fn invoke<T: Send + 'static>(
        self: &Arc<Self>,
        task: impl Future<Output = T> + Send + 'static,
    ) -> Option<T> {
        let mut handle = tokio::spawn(task);
        tokio::select! {
            done = &mut handle => Some(done.unwrap()),
            _ = self.killed.notified() => {
                handle.abort();
                assert!(handle.await.is_err_and(|e| e.is_cancelled()));
                None
            }
        }
    }
}

struct KillJobs(Arc<dyn JobStore>, Arc<Killer>);
struct KillObjects(Arc<dyn ObjectStore>, Arc<Killer>);
struct KillMailer(Arc<dyn Mailer>, Arc<Killer>);

#[async_trait]
impl JobStore for KillJobs {
    async fn create_job(&self, job: &Job) -> shared::Result<CreateOutcome> {
        self.1.point("create_job", self.0.create_job(job)).await
    }
    async fn get_job(&self, job_id: &str) -> shared::Result<Option<JobView>> {
        self.1.point("get_job", self.0.get_job(job_id)).await
    }
    async fn active_job(&self, project_id: &str) -> shared::Result<Option<String>> {
        self.1
            .point("active_job", self.0.active_job(project_id))
            .await
    }
    async fn acquire_lease(
        &self,
        job_id: &str,
        owner: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> shared::Result<LeaseOutcome> {
        let call = self.0.acquire_lease(job_id, owner, now, until);
        self.1.point("acquire_lease", call).await
    }
    async fn begin_next_page(&self, job_id: &str, owner: &str, page: u64) -> shared::Result<bool> {
        let call = self.0.begin_next_page(job_id, owner, page);
        self.1.point("begin_next_page", call).await
    }
    async fn release_lease(&self, job_id: &str, owner: &str) -> shared::Result<()> {
        let call = self.0.release_lease(job_id, owner);
        self.1.point("release_lease", call).await
    }
    async fn put_objects(&self, objects: &[ObjectRecord]) -> shared::Result<Vec<bool>> {
        self.1
            .point("put_objects", self.0.put_objects(objects))
            .await
    }
    async fn put_new_objects(&self, objects: &[ObjectRecord]) -> shared::Result<()> {
        self.1
            .point("put_new_objects", self.0.put_new_objects(objects))
            .await
    }
    async fn get_objects(
        &self,
        job_id: &str,
        keys: &[String],
    ) -> shared::Result<Vec<Option<ObjectRecord>>> {
        self.1
            .point("get_objects", self.0.get_objects(job_id, keys))
            .await
    }
    async fn mark_requested(
        &self,
        job_id: &str,
        objects: &[ObjectRecord],
    ) -> shared::Result<Vec<bool>> {
        let call = self.0.mark_requested(job_id, objects);
        self.1.point("mark_requested", call).await
    }
    async fn settle(&self, object: &ObjectRecord, settlement: &Settlement) -> shared::Result<bool> {
        self.1
            .point("settle", self.0.settle(object, settlement))
            .await
    }
    async fn settle_many(&self, items: &[(ObjectRecord, Settlement)]) -> shared::Result<Vec<bool>> {
        self.1.point("settle_many", self.0.settle_many(items)).await
    }
    async fn advance_cursor(
        &self,
        job_id: &str,
        owner: &str,
        commit: &PageCommit,
    ) -> shared::Result<()> {
        let call = self.0.advance_cursor(job_id, owner, commit);
        self.1.point("advance_cursor", call).await
    }
    async fn list_objects(
        &self,
        job_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> shared::Result<ObjectPage> {
        let call = self.0.list_objects(job_id, after, limit);
        self.1.point("list_objects", call).await
    }
    async fn transition_job(
        &self,
        job_id: &str,
        from: &[JobState],
        to: JobState,
        error: Option<&str>,
    ) -> shared::Result<bool> {
        let call = self.0.transition_job(job_id, from, to, error);
        self.1.point("transition_job", call).await
    }
    async fn set_manifest(&self, job_id: &str, uri: &str) -> shared::Result<()> {
        self.1
            .point("set_manifest", self.0.set_manifest(job_id, uri))
            .await
    }
    async fn set_copy(&self, job_id: &str, copy: &CopyDispatch) -> shared::Result<()> {
        self.1
            .point("set_copy", self.0.set_copy(job_id, copy))
            .await
    }
    async fn set_marker(&self, job_id: &str, marker: &str) -> shared::Result<bool> {
        let name = if marker == MARKER_MAIL {
            "set_marker(mail_sent)"
        } else {
            "set_marker"
        };
        self.1.point(name, self.0.set_marker(job_id, marker)).await
    }
    async fn put_stats(&self, stats: &StatsRecord) -> shared::Result<()> {
        self.1.point("put_stats", self.0.put_stats(stats)).await
    }
    async fn get_stats(
        &self,
        project_id: &str,
        prefix: &str,
    ) -> shared::Result<Option<StatsRecord>> {
        self.1
            .point("get_stats", self.0.get_stats(project_id, prefix))
            .await
    }
    async fn put_early_event(&self, event: &EarlyEvent) -> shared::Result<()> {
        self.1
            .point("put_early_event", self.0.put_early_event(event))
            .await
    }
    async fn get_early_event(&self, bucket: &str, key: &str) -> shared::Result<Option<EarlyEvent>> {
        let call = self.0.get_early_event(bucket, key);
        self.1.point("get_early_event", call).await
    }
    async fn clear_marker(&self, job_id: &str, marker: &str) -> shared::Result<()> {
        self.1
            .point("clear_marker", self.0.clear_marker(job_id, marker))
            .await
    }
    async fn active_jobs(&self) -> shared::Result<Vec<ActiveJob>> {
        self.1.point("active_jobs", self.0.active_jobs()).await
    }
}

#[async_trait]
impl ObjectStore for KillObjects {
    async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        continuation: Option<&str>,
        max_keys: i32,
    ) -> shared::Result<ListPage> {
        let call = self.0.list_page(bucket, prefix, continuation, max_keys);
        self.1.point("list_page", call).await
    }
    async fn request_restore(
        &self,
        object: &ObjectRef,
        params: RestoreParams,
    ) -> shared::Result<RestoreOutcome> {
        let call = self.0.request_restore(object, params);
        self.1.point("request_restore", call).await
    }
    async fn head(&self, object: &ObjectRef) -> shared::Result<ObjectHead> {
        self.1.point("head", self.0.head(object)).await
    }
    async fn put(&self, bucket: &str, key: &str, body: Vec<u8>, ct: &str) -> shared::Result<()> {
        self.1.point("put", self.0.put(bucket, key, body, ct)).await
    }
}

#[async_trait]
impl Mailer for KillMailer {
    async fn send(&self, mail: &Mail) -> shared::Result<()> {
        self.1.point("send_mail", self.0.send(mail)).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_fanout_tally_and_finalizer_resume_without_loss_or_double_counting() {
    let started = Instant::now();
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(11);
    let mut rng = SeededRng::new(seed);

    // Real S3 (behind a counting proxy that injects no fault), DynamoDB and SES on moto.
    let s3 = s3_client().await;
    let bucket = unique_name("crash");
    let manifests = unique_name("crash-manifests");
    for b in [&bucket, &manifests] {
        s3.create_bucket().bucket(b).send().await.unwrap();
    }
    let keys: Vec<String> = (0..OBJECTS)
        .map(|i| format!("proj/{:02}/take {i:03}.mov", i % 7))
        .chain((0..10).map(|i| format!("proj2/{i}.mov")))
        .collect();
    stream::iter(keys)
        .for_each_concurrent(16, |key| {
            let (s3, bucket) = (s3.clone(), bucket.clone());
            async move {
                s3.put_object()
                    .bucket(bucket)
                    .key(key)
                    .storage_class(SdkClass::Glacier)
                    .body(ByteStream::from_static(b"clip"))
                    .send()
                    .await
                    .unwrap();
            }
        })
        .await;
    let proxy = FaultProxy::start(
        moto_endpoint(),
        FaultPlan {
            seed,
            per_mille: 0,
            dynamodb_per_mille: 0,
            s3: false,
            dynamodb: false,
            hold_s3: Duration::ZERO,
            hold_dynamodb: Duration::ZERO,
        },
    );
    let objects: Arc<dyn ObjectStore> = Arc::new(S3ObjectStore::from_sdk_config(
        &aws_config_at(&proxy.endpoint, 3, Duration::from_secs(30)).await,
    ));
    // The table behind the proxy too: after a kill the test waits for the calls the dead
    // invocation left in flight (the emulator does not isolate a transaction from a concurrent
    // one as DynamoDB does, so a retry racing a dead call's transaction could undo it).
    let store = DynamoJobStore::new(
        aws_sdk_dynamodb::Client::new(
            &aws_config_at(&proxy.endpoint, 3, Duration::from_secs(30)).await,
        ),
        unique_name("jobs"),
    );
    store.ensure_table().await.unwrap();
    let jobs: Arc<dyn JobStore> = Arc::new(store);
    let settle = || proxy.wait_idle(Duration::from_secs(120));
    let sender = format!("{}@restore.example.com", unique_name("crash"));
    let ses = sesv2_client().await;
    ses.create_email_identity()
        .email_identity(&sender)
        .send()
        .await
        .unwrap();
    let mailer: Arc<dyn Mailer> = Arc::new(SesMailer::new(ses, &sender).unwrap());

    let job = Job::new(
        unique_name("job"),
        "5150".into(),
        "editor@example.com".into(),
        "/srv/Assets/proj/".into(),
        "proj/".into(),
        Some("/srv/Assets/".into()),
        RetrievalTier::Bulk,
        vec![bucket.clone()],
        4,
        OffsetDateTime::now_utc(),
    );
    jobs.create_job(&job).await.unwrap();
    let job_id = job.job_id.clone();
    let settings = FanoutSettings {
        page_size: 40,
        concurrency: 8,
        lease: Duration::from_secs(1),
        poll: Duration::from_millis(100),
        backoff: Duration::from_millis(5),
        rate_limit: 100_000,
        ..Default::default()
    };

    // Fan-out: each invocation dies at a seeded call (one of ~50 per page) until one finishes.
    let mut fanout_kills: Vec<(&str, bool)> = Vec::new();
    for round in 0.. {
        assert!(round < 100, "the fan-out never finished");
        let killer = Killer::new(1 + rng.below(120), rng.below(2) == 1);
        let fanout = Fanout::new(
            Arc::new(KillObjects(objects.clone(), killer.clone())),
            Arc::new(KillJobs(jobs.clone(), killer.clone())),
            settings.clone(),
        );
        let id = job_id.clone();
        let run = killer
            .invoke(async move {
                fanout
                    .drive(&id, Instant::now() + Duration::from_secs(60))
                    .await
            })
            .await;
        match run {
            None => {
                fanout_kills.push(killer.at.lock().unwrap().unwrap());
                settle().await;
            }
            Some(Ok(RunOutcome::ListingDone | RunOutcome::NothingToDo)) => break,
            Some(other) => panic!("fan-out round {round}: {other:?}"),
        }
    }
    let mut per_key: HashMap<String, usize> = HashMap::new();
    for call in proxy.calls() {
        if call.operation == "RestoreObject" {
            *per_key.entry(call.target).or_default() += 1;
        }
    }
    assert_eq!(
        per_key.len(),
        OBJECTS,
        "every object requested: {per_key:?}"
    );
    assert!(per_key.values().all(|n| *n == 1), "none twice: {per_key:?}");
    assert!(per_key.keys().all(|k| k.contains("/proj/")));
    let view = jobs.get_job(&job_id).await.unwrap().unwrap();
    assert_eq!(view.job.totals.objects, OBJECTS as u64, "counted once");
    assert_eq!(view.job.totals.requested, OBJECTS as u64);
    let mut records = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = jobs
            .list_objects(&job_id, after.as_deref(), 1000)
            .await
            .unwrap();
        records.extend(page.objects);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(records.len(), OBJECTS, "no object lost");
    // A replayed page checks objects its dead predecessor may have asked for with HeadObject;
    // moto restores at once, so those read as restored and are settled there.
    let settled_by_replay = records
        .iter()
        .filter(|o| o.state == ObjectState::Restored)
        .count();
    assert!(records
        .iter()
        .all(|o| matches!(o.state, ObjectState::Requested | ObjectState::Restored)));
    assert_eq!(
        view.settled.restored + view.pending(),
        OBJECTS as u64,
        "each object pending or counted once"
    );

    // Tally: batches of 30 completions (one invocation each, every second one killed at a
    // seeded call); a killed batch is delivered again, whole.
    let settings = CompletionSettings::new(manifests.clone(), PriceList::aws());
    let mut tally_kills: Vec<(&str, bool)> = Vec::new();
    for batch in records.chunks(30) {
        loop {
            let killer = if rng.below(2) == 0 {
                Killer::new(1 + rng.below(70), rng.below(2) == 1)
            } else {
                Killer::new(0, false)
            };
            let completion = Completion::new(
                Arc::new(KillJobs(jobs.clone(), killer.clone())),
                Arc::new(KillObjects(objects.clone(), killer.clone())),
                None,
                None,
                settings.clone(),
            );
            let events: Vec<Value> = batch
                .iter()
                .map(|o| s3_restore_event(&o.bucket, &o.key, "2026-12-24T00:00:00.000Z"))
                .collect();
            let run = killer
                .invoke(async move {
                    for event in &events {
                        completion.handle_events(event).await.unwrap();
                    }
                })
                .await;
            match run {
                Some(()) => break,
                None => {
                    tally_kills.push(killer.at.lock().unwrap().unwrap());
                    settle().await;
                }
            }
        }
    }
    let view = jobs.get_job(&job_id).await.unwrap().unwrap();
    if view.settled.restored != OBJECTS as u64 {
        let page = jobs.list_objects(&job_id, None, 1000).await.unwrap();
        let pending: Vec<_> = page.objects.iter().filter(|o| o.is_pending()).collect();
        eprintln!("pending after the tally: {pending:?}; kills {tally_kills:?}");
    }
    assert_eq!(
        view.settled.restored, OBJECTS as u64,
        "each object counted once"
    );
    assert_eq!(view.settled.restored_bytes, 4 * OBJECTS as u64);
    assert_eq!(view.pending(), 0);

    // Finalizer: six invocations each killed at a seeded call of its ~10 (or finishing when
    // the call is past its last), then one left to finish; then the stream
    // delivers the record twice more.
    let mut finalize_kills: Vec<(&str, bool)> = Vec::new();
    let mut outcome = None;
    for round in 0..20 {
        let killer = if round < 6 {
            Killer::new(1 + rng.below(10), rng.below(2) == 1)
        } else {
            Killer::new(0, false)
        };
        let completion = Completion::new(
            Arc::new(KillJobs(jobs.clone(), killer.clone())),
            Arc::new(KillObjects(objects.clone(), killer.clone())),
            Some(Arc::new(KillMailer(mailer.clone(), killer.clone()))),
            None,
            settings.clone(),
        );
        let id = job_id.clone();
        match killer
            .invoke(async move { completion.finalize(&id).await.unwrap() })
            .await
        {
            None => {
                finalize_kills.push(killer.at.lock().unwrap().unwrap());
                settle().await;
            }
            Some(done) if round >= 6 => {
                outcome = Some(done);
                break;
            }
            Some(_) => {}
        }
    }
    let plain = Completion::new(
        jobs.clone(),
        objects.clone(),
        Some(mailer.clone()),
        None,
        settings.clone(),
    );
    for _ in 0..2 {
        assert!(matches!(
            plain.finalize(&job_id).await.unwrap(),
            FinalizeOutcome::Finalized { state: JobState::Completed, ref steps } if steps.is_empty()
        ));
    }
    assert!(outcome.is_some());
    let view = jobs.get_job(&job_id).await.unwrap().unwrap();
    assert_eq!(view.job.state, JobState::Completed);

    let listing = s3
        .list_objects_v2()
        .bucket(&manifests)
        .send()
        .await
        .unwrap();
    let written: Vec<&str> = listing.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(
        written,
        vec![
            shared::domain::manifest::manifest_csv_key(&job_id),
            shared::domain::manifest::report_json_key(&job_id)
        ],
        "one manifest and one report"
    );
    let csv = s3
        .get_object()
        .bucket(&manifests)
        .key(shared::domain::manifest::manifest_csv_key(&job_id))
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    let lines: Vec<&str> = std::str::from_utf8(&csv).unwrap().lines().collect();
    assert_eq!(lines.len(), OBJECTS, "every object once in the manifest");
    let unique: std::collections::HashSet<&&str> = lines.iter().collect();
    assert_eq!(unique.len(), OBJECTS);

    let data: Value = serde_json::from_str(&moto_api_get("/moto-api/data.json")).unwrap();
    let mails = data["ses"]["Message"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["source"].as_str().is_some_and(|s| s.contains(&sender)))
        .count();
    // The mail is claimed (marker) before it is sent, so a death between the claim and the
    // send loses it rather than sending it twice (see `Completion::run_steps`).
    let lost_window = finalize_kills
        .iter()
        .any(|k| *k == ("set_marker(mail_sent)", true) || *k == ("send_mail", false));
    if lost_window {
        assert_eq!(
            mails, 0,
            "killed between claim and send: no mail, never two"
        );
    } else {
        assert_eq!(mails, 1, "one mail");
    }
    eprintln!(
        "crash: seed {seed}, {OBJECTS} objects; fan-out killed {} times {fanout_kills:?}; tally \
         killed {} times {tally_kills:?}; finalizer killed {} times {finalize_kills:?}; {mails} \
         mail; {settled_by_replay} objects settled by a replay's HeadObject; {:.1} s",
        fanout_kills.len(),
        tally_kills.len(),
        finalize_kills.len(),
        started.elapsed().as_secs_f64()
    );
}
