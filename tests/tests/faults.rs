//! Fault injection: every S3 and DynamoDB call of a restore passes a loopback proxy that fails
//! 5 % of them (503 SlowDown / ThrottlingException, 500, no answer); see
//! `integration_tests::fault_proxy`.
//!
//! - 5,000 objects: the plan (POST /api/v1/restore) and the fan-out, through the real S3
//!   adapter and DynamoDB job store, request every object exactly once at S3 and none more
//!   often than its retries allow.
//! - The tally with conditional-write conflicts: two writers get every completion (every
//!   second settle of an object fails its condition) under the same faults; the counts are
//!   exact and the job finalizes once. Smaller (120 objects) and on a moto of its own: moto
//!   snapshots all its tables for every TransactWriteItems, so a settle costs more the more
//!   items the server holds.
//!
//! `FAULT_SEED` picks another deterministic set of failing calls (default 7), `FAULT_PER_MILLE`
//! another share, `FAULT_OBJECTS` another size of the fan-out test.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::StorageClass as SdkClass;
use futures::stream::{self, StreamExt};
use integration_tests::fault_proxy::{Fault, FaultPlan, FaultProxy, ProxiedCall};
use integration_tests::{
    aws_config, aws_config_at, moto_endpoint, private_moto_endpoint, s3_restore_event, unique_name,
};
use serde_json::{json, Value};
use shared::adapters::dynamodb::DynamoJobStore;
use shared::adapters::memory::MemoryMailer;
use shared::adapters::s3::S3ObjectStore;
use shared::api::{Api, ApiSettings};
use shared::domain::completion::{Completion, CompletionSettings, FinalizeOutcome};
use shared::domain::cost::PriceList;
use shared::domain::fanout::{Fanout, FanoutSettings, RunOutcome};
use shared::domain::state::{JobState, ObjectState};
use shared::domain::storage::RestorePolicy;
use shared::ports::JobStore;

/// Objects in the project (`FAULT_OBJECTS` overrides, to try a seed quickly).
fn object_count() -> usize {
    std::env::var("FAULT_OBJECTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5_000)
}
/// SDK attempts per call (standard retry mode).
const SDK_ATTEMPTS: u32 = 5;
const EXPIRY: &str = "2026-12-20T00:00:00.000Z";

/// The SDK configuration for the emulator at `endpoint` itself (seeding and checks).
async fn direct(endpoint: &str) -> aws_config::SdkConfig {
    aws_config()
        .await
        .into_builder()
        .endpoint_url(endpoint)
        .build()
}

async fn s3_at(endpoint: &str) -> aws_sdk_s3::Client {
    shared::adapters::s3::s3_client(&direct(endpoint).await)
}

fn seed() -> u64 {
    std::env::var("FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7)
}

/// Seeds the bucket directly on the emulator (not through the proxy): the objects of the
/// project and a neighbouring prefix that must never be touched.
async fn seed_bucket(endpoint: &str, bucket: &str, count: usize) {
    let s3 = s3_at(endpoint).await;
    s3.create_bucket().bucket(bucket).send().await.unwrap();
    let keys: Vec<String> = (0..count)
        .map(|i| format!("proj/{:02}/{i:05}.mov", i % 50))
        .chain((0..20).map(|i| format!("proj2/{i:02}.mov")))
        .collect();
    stream::iter(keys)
        .for_each_concurrent(16, |key| {
            let s3 = s3.clone();
            async move {
                s3.put_object()
                    .bucket(bucket)
                    .key(&key)
                    .storage_class(SdkClass::Glacier)
                    .body(ByteStream::from(vec![b'm'; 3]))
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("seed {key}: {e:?}"));
            }
        })
        .await;
}

fn restore_calls_per_key(calls: &[ProxiedCall]) -> HashMap<String, (u32, u32)> {
    let mut per_key: HashMap<String, (u32, u32)> = HashMap::new();
    for call in calls.iter().filter(|c| c.operation == "RestoreObject") {
        let path = call.target.split('?').next().unwrap();
        let entry = per_key.entry(path.to_string()).or_default();
        entry.0 += 1;
        if call.fault.is_none() {
            entry.1 += 1;
        }
    }
    per_key
}

/// A restore planned and fanned out through the faulty proxy.
struct Restore {
    proxy: FaultProxy,
    endpoint: String,
    bucket: String,
    job_id: String,
    jobs: Arc<DynamoJobStore>,
    objects: Arc<S3ObjectStore>,
    fanout_settings: FanoutSettings,
    api_errors: u32,
    invocations: u32,
    failed_invocations: u32,
    seeded: Duration,
}

/// `per_mille` of the S3 calls and `dynamodb_per_mille` of the DynamoDB calls fail
/// (`FAULT_PER_MILLE` / `FAULT_DYNAMODB_PER_MILLE` override them).
fn plan(per_mille: u64, dynamodb_per_mille: u64) -> FaultPlan {
    let share = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    FaultPlan {
        seed: seed(),
        per_mille: share("FAULT_PER_MILLE", per_mille),
        dynamodb_per_mille: share("FAULT_DYNAMODB_PER_MILLE", dynamodb_per_mille),
        s3: true,
        dynamodb: true,
        hold_s3: Duration::from_millis(2500),
        hold_dynamodb: Duration::from_millis(300),
    }
}

/// Seeds `count` GLACIER objects under `proj/` (and some under the neighbour `proj2/`), then
/// plans the job through the API and drives the fan-out to the end, all through the proxy.
async fn restore(
    endpoint: &str,
    count: usize,
    dynamodb_per_mille: u64,
    started: Instant,
) -> Restore {
    let bucket = unique_name("faults");
    seed_bucket(endpoint, &bucket, count).await;
    let table = unique_name("jobs");
    DynamoJobStore::new(
        aws_sdk_dynamodb::Client::new(&direct(endpoint).await),
        &table,
    )
    .ensure_table()
    .await
    .unwrap();
    let seeded = started.elapsed();

    let proxy = FaultProxy::start(endpoint, plan(50, dynamodb_per_mille));
    // S3 calls time out after 2 s (the proxy holds a "no answer" for 2.5 s); DynamoDB calls
    // only after 30 s, far above moto's slowest answer (see `FaultPlan::hold_dynamodb`).
    let s3_sdk = aws_config_at(&proxy.endpoint, SDK_ATTEMPTS, Duration::from_secs(2)).await;
    let dynamodb_sdk = aws_config_at(&proxy.endpoint, SDK_ATTEMPTS, Duration::from_secs(30)).await;
    let jobs = Arc::new(DynamoJobStore::new(
        aws_sdk_dynamodb::Client::new(&dynamodb_sdk),
        &table,
    ));
    let objects = Arc::new(S3ObjectStore::from_sdk_config(&s3_sdk));
    let fanout_settings = FanoutSettings {
        backoff: Duration::from_millis(5),
        poll: Duration::from_millis(100),
        lease: Duration::from_secs(3),
        rate_limit: 100_000,
        concurrency: 32,
        ..Default::default()
    };
    let fanout = Arc::new(Fanout::new(
        objects.clone(),
        jobs.clone(),
        fanout_settings.clone(),
    ));
    let api = Api::new(
        jobs.clone(),
        objects.clone(),
        Arc::new(MemoryMailer::new()),
        fanout.clone(),
        ApiSettings {
            buckets: vec![bucket.clone()],
            allowed_users: vec!["editor@example.com".into()],
            approvers: vec![],
            project_url: None,
            prices: PriceList::aws(),
            policy: RestorePolicy::default(),
            plan_budget: Duration::from_secs(2),
            stats_validity: Duration::from_secs(300),
            background_fanout: false,
        },
    );

    // The plan: a client retries a 5xx answer (the job store's idempotency makes it safe).
    let body = json!({"id": 31337, "user": "editor@example.com",
                      "path": "/srv/Assets/proj/", "retrievalType": "Bulk"});
    let mut api_errors = 0;
    let job_id = loop {
        let request = http::Request::builder()
            .method("POST")
            .uri("/api/v1/restore")
            .header("content-type", "application/json")
            .body(body.to_string().into_bytes())
            .unwrap();
        let response = api.handle(request).await;
        let answer: Value = serde_json::from_str(response.body()).unwrap();
        match response.status().as_u16() {
            200 | 202 => break answer["id"].as_str().unwrap().to_string(),
            500..=599 => api_errors += 1,
            other => panic!("POST answered {other}: {answer}"),
        }
        assert!(api_errors < 10, "the API kept failing: {answer}");
    };

    // The fan-out, invocation after invocation (a failed one is retried, as Lambda does).
    let mut invocations = 0;
    let mut failed_invocations = 0;
    loop {
        invocations += 1;
        assert!(invocations < 200, "fan-out did not finish");
        match fanout
            .drive(&job_id, Instant::now() + Duration::from_secs(120))
            .await
        {
            Ok(RunOutcome::ListingDone | RunOutcome::NothingToDo) => break,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(_) => failed_invocations += 1,
        }
    }
    Restore {
        proxy,
        endpoint: endpoint.to_string(),
        bucket,
        job_id,
        jobs,
        objects,
        fanout_settings,
        api_errors,
        invocations,
        failed_invocations,
        seeded,
    }
}

impl Restore {
    /// Every object requested once at S3, within its retries, none outside the prefix, and
    /// the job's records say so. Returns (most attempts of one object, bound, retries).
    async fn check_fanout(&self, count: usize) -> (u32, u32, u32) {
        let calls = self.proxy.calls();
        let per_key = restore_calls_per_key(&calls);
        let bound = self.fanout_settings.max_attempts * SDK_ATTEMPTS;
        assert_eq!(per_key.len(), count, "every object requested");
        assert!(
            per_key.keys().all(|k| k.contains("/proj/")),
            "nothing outside proj/"
        );
        let wrong: Vec<_> = per_key.iter().filter(|(_, (_, ok))| *ok != 1).collect();
        assert!(
            wrong.is_empty(),
            "objects not reaching S3 exactly once: {wrong:?}"
        );
        let most = per_key.values().map(|(n, _)| *n).max().unwrap();
        assert!(most <= bound, "an object was requested {most} times");
        let retries = per_key.values().map(|(n, _)| n - 1).sum::<u32>();

        let view = self.jobs.get_job(&self.job_id).await.unwrap().unwrap();
        assert!(view.job.cursor.listing_done);
        assert_eq!(view.job.state, JobState::Restoring);
        assert_eq!(view.job.totals.objects, count as u64);
        assert_eq!(view.job.totals.requested, count as u64);
        assert_eq!(view.pending(), count as u64);
        let records = self.records().await;
        assert_eq!(records.len(), count, "no object lost");
        assert!(records.iter().all(|o| o.state == ObjectState::Requested));
        (most, bound, retries)
    }

    async fn records(&self) -> Vec<shared::domain::job::ObjectRecord> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .jobs
                .list_objects(&self.job_id, after.as_deref(), 1000)
                .await
                .unwrap();
            all.extend(page.objects);
            match page.next {
                Some(next) => after = Some(next),
                None => return all,
            }
        }
    }

    /// Calls per fault kind and service, the number of calls, and the faulted share of the
    /// S3 and of the DynamoDB calls.
    #[allow(clippy::type_complexity)]
    fn fault_counts(&self) -> (HashMap<(&'static str, Fault), usize>, usize, (f64, f64)) {
        let calls = self.proxy.calls();
        let mut kinds = HashMap::new();
        for call in &calls {
            if let Some(fault) = call.fault {
                *kinds.entry((call.service, fault)).or_default() += 1;
            }
        }
        let share = |service: &str| {
            let of: Vec<_> = calls.iter().filter(|c| c.service == service).collect();
            let faulted = of.iter().filter(|c| c.fault.is_some()).count();
            faulted as f64 / of.len().max(1) as f64
        };
        (kinds, calls.len(), (share("S3"), share("DynamoDB")))
    }

    async fn drop_table(&self) {
        let _ = aws_sdk_dynamodb::Client::new(&direct(&self.endpoint).await)
            .delete_table()
            .table_name(self.jobs.table())
            .send()
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_thousand_objects_are_requested_exactly_once_under_five_percent_faults() {
    let started = Instant::now();
    let count = object_count();
    // 5 % of the S3 calls; 20 % of the far fewer DynamoDB calls (the fan-out writes 25
    // records per batch), so that every kind of fault reaches DynamoDB too.
    let restore = restore(moto_endpoint(), count, 200, started).await;
    let (most, bound, retries) = restore.check_fanout(count).await;
    let (kinds, calls, share) = restore.fault_counts();
    if count >= 5_000 {
        for service in ["S3", "DynamoDB"] {
            for fault in [Fault::Throttle, Fault::Internal, Fault::Timeout] {
                assert!(
                    kinds.get(&(service, fault)).is_some_and(|n| *n > 0),
                    "no {fault:?} injected in {service}: {kinds:?}"
                );
            }
        }
        let (s3_share, dynamodb_share) = share;
        assert!(
            (0.035..0.065).contains(&s3_share),
            "S3 fault share {s3_share}"
        );
        assert!(
            (0.12..0.28).contains(&dynamodb_share),
            "DynamoDB fault share {dynamodb_share}"
        );
    }
    eprintln!(
        "faults: seed {}, {count} objects, {calls} calls, {:.1} % of S3 and {:.1} % of \
         DynamoDB calls faulted {kinds:?}; \
         {retries} RestoreObject retries, most attempts of one object {most} (bound {bound}); \
         API 5xx {}, fan-out invocations {} ({} failed); seeded in {:.1} s, done at {:.1} s",
        seed(),
        share.0 * 100.0,
        share.1 * 100.0,
        restore.api_errors,
        restore.invocations,
        restore.failed_invocations,
        restore.seeded.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
    restore.drop_table().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_tally_writers_count_exactly_under_faults_and_finalize_once() {
    const COUNT: usize = 120;
    let started = Instant::now();
    // One event per call here, so 5 % of the DynamoDB calls is plenty.
    let restore = restore(private_moto_endpoint(), COUNT, 50, started).await;
    restore.check_fanout(COUNT).await;
    let mailer = Arc::new(MemoryMailer::new());
    let writers: Vec<Completion> = (0..2)
        .map(|_| {
            Completion::new(
                restore.jobs.clone(),
                restore.objects.clone(),
                Some(mailer.clone()),
                None,
                CompletionSettings::new(restore.bucket.clone(), PriceList::aws()),
            )
        })
        .collect();
    let keys: Vec<String> = restore.records().await.into_iter().map(|o| o.key).collect();
    // Each completion goes to both writers, alternating who is first: the second settle of
    // every object is a conditional-write conflict. One at a time: moto does not isolate
    // concurrent transactions (the racing version runs on the memory store in storm.rs).
    let (mut reported, mut redeliveries) = (0, 0);
    for (i, key) in keys.iter().enumerate() {
        let event = s3_restore_event(&restore.bucket, key, EXPIRY);
        for w in [i % 2, (i + 1) % 2] {
            // A failed delivery is redelivered until acknowledged (at-least-once).
            loop {
                match writers[w].handle_events(&event).await {
                    Ok(result) => {
                        reported += result.touched_jobs.len();
                        break;
                    }
                    Err(_) => redeliveries += 1,
                }
                assert!(redeliveries < 1_000, "the tally keeps failing");
            }
        }
    }
    assert_eq!(
        reported, COUNT,
        "each object settled by exactly one delivery"
    );
    let view = restore
        .jobs
        .get_job(&restore.job_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.settled.restored, COUNT as u64);
    assert_eq!(view.settled.restored_bytes, 3 * COUNT as u64);
    assert_eq!(view.pending(), 0);
    assert!(restore
        .records()
        .await
        .iter()
        .all(|o| o.state == ObjectState::Restored && o.expiry.is_some()));

    // Both writers finalize, retried until they answer: one transition, one manifest, one mail.
    let mut outcomes = Vec::new();
    let mut finalize_errors = 0;
    for writer in &writers {
        loop {
            match writer.finalize(&restore.job_id).await {
                Ok(outcome) => break outcomes.push(outcome),
                Err(_) => finalize_errors += 1,
            }
            assert!(finalize_errors < 20, "finalize keeps failing");
        }
    }
    assert!(
        matches!(
            &outcomes[0],
            FinalizeOutcome::Finalized {
                state: JobState::Completed,
                ..
            }
        ),
        "{outcomes:?}"
    );
    assert!(
        matches!(&outcomes[1], FinalizeOutcome::Finalized { steps, .. } if steps.is_empty()),
        "{outcomes:?}"
    );
    assert_eq!(mailer.sent().len(), 1, "one mail");
    let manifest = s3_at(&restore.endpoint)
        .await
        .get_object()
        .bucket(&restore.bucket)
        .key(shared::domain::manifest::manifest_csv_key(&restore.job_id))
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    let lines: Vec<&str> = std::str::from_utf8(&manifest).unwrap().lines().collect();
    assert_eq!(lines.len(), COUNT);
    let prefix = format!("{},proj/", restore.bucket);
    assert!(lines.iter().all(|l| l.starts_with(&prefix)));
    let (kinds, calls, share) = restore.fault_counts();
    eprintln!(
        "tally under faults: {COUNT} objects × 2 writers, {calls} calls, {:.1} % of S3 and \
         {:.1} % of DynamoDB calls faulted {kinds:?}; {redeliveries} redeliveries, \
         {finalize_errors} finalize retries; {:.1} s",
        share.0 * 100.0,
        share.1 * 100.0,
        started.elapsed().as_secs_f64()
    );
}
