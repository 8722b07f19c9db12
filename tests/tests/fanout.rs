//! Fan-out against DynamoDB on the emulator: every RestoreObject answer class (real S3 where the
//! emulator produces it, the in-memory S3 for 409 and 503), and a 20,000-object prefix completed
//! through several invocations, one killed mid-page, with every object requested exactly once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::StorageClass as SdkClass;
use integration_tests::{job_store, s3_client, unique_name};
use shared::adapters::dynamodb::DynamoJobStore;
use shared::adapters::memory::{MemoryObjectStore, ScriptedRestore};
use shared::adapters::s3::S3ObjectStore;
use shared::domain::fanout::{Fanout, FanoutSettings, RunOutcome};
use shared::domain::job::{Job, ObjectRecord};
use shared::domain::object::{ListPage, ObjectHead, ObjectRef, RestoreOutcome, RestoreParams};
use shared::domain::state::{JobState, ObjectState};
use shared::domain::storage::{RetrievalTier, StorageClass};
use shared::ports::{JobStore, ObjectStore};
use time::OffsetDateTime;
use tokio::sync::Notify;

fn settings() -> FanoutSettings {
    FanoutSettings {
        backoff: Duration::from_millis(5),
        poll: Duration::from_millis(100),
        rate_limit: 100_000,
        ..Default::default()
    }
}

async fn new_job(jobs: &DynamoJobStore, buckets: &[String], tier: RetrievalTier) -> Job {
    let job = Job::new(
        uuid_like(),
        unique_name("project"),
        "editor@example.com".into(),
        "/srv/Assets/proj/".into(),
        "proj/".into(),
        Some("/srv/Assets/".into()),
        tier,
        buckets.to_vec(),
        8,
        OffsetDateTime::now_utc(),
    );
    jobs.create_job(&job).await.unwrap();
    job
}

fn uuid_like() -> String {
    unique_name("job")
}

async fn all_objects(jobs: &DynamoJobStore, job_id: &str) -> Vec<ObjectRecord> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = jobs
            .list_objects(job_id, after.as_deref(), 1000)
            .await
            .unwrap();
        out.extend(page.objects);
        match page.next {
            Some(next) => after = Some(next),
            None => return out,
        }
    }
}

fn by_key(objects: &[ObjectRecord]) -> HashMap<String, ObjectRecord> {
    objects.iter().map(|o| (o.key.clone(), o.clone())).collect()
}

#[tokio::test]
async fn s3_answers_202_200_403_map_to_requested_restored_not_needed() {
    let s3 = s3_client().await;
    let bucket = unique_name("fanout-s3");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    for (key, class) in [
        ("proj/glacier.mov", SdkClass::Glacier),
        ("proj/deep.mxf", SdkClass::DeepArchive),
        ("proj/tiered.wav", SdkClass::IntelligentTiering),
        ("proj/proxy.mp4", SdkClass::Standard),
    ] {
        s3.put_object()
            .bucket(&bucket)
            .key(key)
            .storage_class(class)
            .body(ByteStream::from_static(b"media"))
            .send()
            .await
            .unwrap();
    }
    let jobs = Arc::new(job_store().await);
    let fanout = Fanout::new(
        Arc::new(S3ObjectStore::new(s3.clone())),
        jobs.clone(),
        settings(),
    );
    let buckets = vec![bucket.clone()];
    let deadline = Instant::now() + Duration::from_secs(60);

    // First job: 202 for the archived objects, 403 for the Intelligent-Tiering one (not
    // archived), nothing asked for the Standard one.
    let first = new_job(&jobs, &buckets, RetrievalTier::Bulk).await;
    assert_eq!(
        fanout.run(&first.job_id, deadline).await.unwrap(),
        RunOutcome::ListingDone
    );
    let objects = by_key(&all_objects(&jobs, &first.job_id).await);
    assert_eq!(objects["proj/glacier.mov"].state, ObjectState::Requested);
    assert_eq!(objects["proj/deep.mxf"].state, ObjectState::Requested);
    assert_eq!(objects["proj/tiered.wav"].state, ObjectState::NotNeeded);
    assert_eq!(objects["proj/proxy.mp4"].state, ObjectState::NotNeeded);
    assert!(objects["proj/proxy.mp4"].settled_at_listing);
    for key in ["proj/glacier.mov", "proj/deep.mxf"] {
        let head = s3
            .head_object()
            .bucket(&bucket)
            .key(key)
            .send()
            .await
            .unwrap();
        assert!(head.restore().is_some(), "{key} was asked for");
    }
    // Second job over the same objects (moto restores at once): 200 → restored now.
    let second = new_job(&jobs, &buckets, RetrievalTier::Standard).await;
    assert_eq!(
        fanout.run(&second.job_id, deadline).await.unwrap(),
        RunOutcome::ListingDone
    );
    let objects = by_key(&all_objects(&jobs, &second.job_id).await);
    assert_eq!(objects["proj/glacier.mov"].state, ObjectState::Restored);
    assert_eq!(objects["proj/deep.mxf"].state, ObjectState::Restored);
    let view = jobs.get_job(&second.job_id).await.unwrap().unwrap();
    assert_eq!(view.settled.restored, 2);
    assert_eq!(view.settled.not_needed, 1);
    assert_eq!(view.not_needed(), 2);
    assert!(view.is_complete(), "all settled: ready to finalize");
    assert_eq!(view.job.state, JobState::Restoring);
    let view = jobs.get_job(&first.job_id).await.unwrap().unwrap();
    assert_eq!(view.pending(), 2);
}

#[tokio::test]
async fn in_progress_409_and_expedited_503_with_dynamodb() {
    let s3 = Arc::new(MemoryObjectStore::new());
    s3.add_object("m", "proj/busy.mov", 10, StorageClass::Glacier);
    s3.script_restore(
        "m",
        "proj/busy.mov",
        ScriptedRestore::Outcome(RestoreOutcome::InProgress),
    );
    s3.add_object("m", "proj/full.mov", 20, StorageClass::Glacier);
    s3.script_restore(
        "m",
        "proj/full.mov",
        ScriptedRestore::Outcome(RestoreOutcome::ExpeditedUnavailable),
    );
    s3.add_object("m", "proj/slow.mov", 30, StorageClass::Glacier);
    s3.script_restore(
        "m",
        "proj/slow.mov",
        ScriptedRestore::Error("SlowDown: please reduce your request rate".into()),
    );
    s3.add_object("m", "proj/gone.mov", 40, StorageClass::Glacier);
    for _ in 0..10 {
        s3.script_restore(
            "m",
            "proj/gone.mov",
            ScriptedRestore::Error("AccessDenied: no".into()),
        );
    }
    let jobs = Arc::new(job_store().await);
    let fanout = Fanout::new(s3.clone(), jobs.clone(), settings());
    let job = new_job(&jobs, &["m".to_string()], RetrievalTier::Expedited).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    assert_eq!(
        fanout.run(&job.job_id, deadline).await.unwrap(),
        RunOutcome::ListingDone
    );
    let objects = by_key(&all_objects(&jobs, &job.job_id).await);
    assert_eq!(
        objects["proj/busy.mov"].state,
        ObjectState::Requested,
        "409 is pending"
    );
    assert_eq!(objects["proj/full.mov"].state, ObjectState::Requested);
    assert_eq!(
        objects["proj/full.mov"].tier,
        Some(RetrievalTier::Standard),
        "503 → Standard"
    );
    assert_eq!(
        objects["proj/slow.mov"].state,
        ObjectState::Requested,
        "throttling retried"
    );
    assert_eq!(objects["proj/gone.mov"].state, ObjectState::Failed);
    assert!(objects["proj/gone.mov"]
        .error
        .as_deref()
        .unwrap()
        .contains("AccessDenied"));
    assert_eq!(s3.restore_requests("m", "proj/slow.mov"), 2);
    assert_eq!(s3.restore_requests("m", "proj/gone.mov"), 1, "not retried");
    let view = jobs.get_job(&job.job_id).await.unwrap().unwrap();
    assert_eq!(view.settled.failed, 1);
    assert!(
        view.job
            .notes
            .iter()
            .any(|n| n.contains("no Expedited capacity")),
        "{:?}",
        view.job.notes
    );
}

/// Passes calls through; at the `kill_at`-th RestoreObject it lets the call reach S3, then
/// hangs like an invocation that dies before recording the answer.
struct Killable {
    inner: Arc<MemoryObjectStore>,
    restores: AtomicUsize,
    kill_at: usize,
    killed: Notify,
}

#[async_trait]
impl ObjectStore for Killable {
    async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        continuation: Option<&str>,
        max_keys: i32,
    ) -> shared::Result<ListPage> {
        self.inner
            .list_page(bucket, prefix, continuation, max_keys)
            .await
    }

    async fn request_restore(
        &self,
        object: &ObjectRef,
        params: RestoreParams,
    ) -> shared::Result<RestoreOutcome> {
        let n = self.restores.fetch_add(1, Ordering::SeqCst) + 1;
        let outcome = self.inner.request_restore(object, params).await;
        if n >= self.kill_at {
            self.killed.notify_one();
            std::future::pending::<()>().await;
        }
        outcome
    }

    async fn head(&self, object: &ObjectRef) -> shared::Result<ObjectHead> {
        self.inner.head(object).await
    }

    async fn put(&self, bucket: &str, key: &str, body: Vec<u8>, ct: &str) -> shared::Result<()> {
        self.inner.put(bucket, key, body, ct).await
    }
}

#[tokio::test]
async fn twenty_thousand_objects_survive_a_killed_invocation() {
    const N: usize = 20_000;
    let s3 = Arc::new(MemoryObjectStore::new());
    for i in 0..N {
        // Two buckets, with 500 keys in both (the first bucket's copy wins).
        let bucket = if i < 12_000 { "big-a" } else { "big-b" };
        s3.add_object(
            bucket,
            &format!("proj/{i:05}.mov"),
            1 + i as u64,
            StorageClass::Glacier,
        );
    }
    for i in 11_500..12_000 {
        s3.add_object(
            "big-b",
            &format!("proj/{i:05}.mov"),
            7,
            StorageClass::DeepArchive,
        );
    }
    let jobs = Arc::new(job_store().await);
    let buckets = vec!["big-a".to_string(), "big-b".to_string()];
    let job = new_job(&jobs, &buckets, RetrievalTier::Bulk).await;
    let lease = Duration::from_secs(4);
    let tuned = FanoutSettings {
        lease,
        ..settings()
    };

    // Invocation 1 dies in its second page, after 1,500 requests reached S3.
    let killable = Arc::new(Killable {
        inner: s3.clone(),
        restores: AtomicUsize::new(0),
        kill_at: 1_500,
        killed: Notify::new(),
    });
    let doomed = Arc::new(Fanout::new(killable.clone(), jobs.clone(), tuned.clone()));
    let id = job.job_id.clone();
    let task = tokio::spawn(async move {
        doomed
            .drive(&id, Instant::now() + Duration::from_secs(600))
            .await
    });
    tokio::time::timeout(Duration::from_secs(120), killable.killed.notified())
        .await
        .expect("invocation 1 reached its kill point");
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    let view = jobs.get_job(&job.job_id).await.unwrap().unwrap();
    assert_eq!(
        view.job.cursor.page, 1,
        "killed mid-page: the second page never committed"
    );
    assert!(s3.restore_calls().len() >= 1_500);

    // Invocation 2 waits out the dead lease, then works for a few seconds only.
    let fanout = Fanout::new(s3.clone(), jobs.clone(), tuned.clone());
    let started = Instant::now();
    let outcome = fanout
        .drive(&job.job_id, Instant::now() + lease + Duration::from_secs(4))
        .await
        .unwrap();
    assert_eq!(outcome, RunOutcome::OutOfTime);
    assert!(
        started.elapsed() >= lease / 2,
        "had to wait for the dead holder's lease"
    );
    let view = jobs.get_job(&job.job_id).await.unwrap().unwrap();
    assert!(view.job.cursor.page >= 2, "invocation 2 committed pages");
    assert!(!view.job.cursor.listing_done);

    // Invocation 3 (and more if needed) completes the listing.
    let mut invocations = 2;
    loop {
        invocations += 1;
        let fanout = Fanout::new(s3.clone(), jobs.clone(), tuned.clone());
        match fanout
            .drive(&job.job_id, Instant::now() + Duration::from_secs(60))
            .await
            .unwrap()
        {
            RunOutcome::ListingDone => break,
            RunOutcome::OutOfTime => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(invocations >= 3);

    // Every object asked for exactly once, the later bucket's duplicates never.
    let mut calls: HashMap<(String, String), usize> = HashMap::new();
    for (object, _) in s3.restore_calls() {
        *calls.entry((object.bucket, object.key)).or_default() += 1;
    }
    assert_eq!(calls.len(), N, "every object requested");
    assert!(calls.values().all(|&n| n == 1), "none requested twice");
    assert!(calls
        .keys()
        .all(|(b, k)| b == "big-a" || k.as_str() >= "proj/12000"));

    let view = jobs.get_job(&job.job_id).await.unwrap().unwrap();
    assert!(view.job.cursor.listing_done);
    assert_eq!(view.job.state, JobState::Restoring);
    assert_eq!(view.job.totals.objects, N as u64);
    assert_eq!(view.job.totals.requested, N as u64);
    assert_eq!(view.job.totals.by_class["GLACIER"].objects, N as u64);
    assert_eq!(view.pending(), N as u64);
    let objects = all_objects(&jobs, &job.job_id).await;
    assert_eq!(objects.len(), N);
    assert!(objects.iter().all(|o| o.state == ObjectState::Requested));

    // Leave the emulator light for the tests that share it.
    integration_tests::dynamodb_client()
        .await
        .delete_table()
        .table_name(jobs.table())
        .send()
        .await
        .unwrap();
}
