//! Event storm: 10,000 completion events for one job, 20 % of them duplicates, in a seeded
//! random order, handled by 16 concurrent tally writers that also call finalize after each
//! event; a tenth of the objects is recorded by a concurrent "fan-out" only midway, so their
//! events arrive before the objects exist. Counts must be exact and the job finalized once:
//! one transition, one manifest, one mail.
//!
//! On the in-memory job store: the racing writers need a store that isolates concurrent
//! conditional writes as DynamoDB does, which moto does not (see `faults.rs` and `tally.rs`
//! for the same rules through DynamoDB on moto, one writer at a time). `STORM_SEED` picks
//! another order.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use integration_tests::{restoring_job_deferred, s3_restore_event, SeededRng};
use shared::adapters::memory::{MemoryJobStore, MemoryMailer, MemoryObjectStore};
use shared::domain::completion::{Completion, CompletionSettings, FinalizeOutcome, MARKER_MAIL};
use shared::domain::cost::PriceList;
use shared::domain::object::{ListPage, ObjectHead, ObjectRef, RestoreOutcome, RestoreParams};
use shared::domain::state::{JobState, ObjectState};
use shared::ports::{JobStore, ObjectStore};

const BUCKET: &str = "media-assets";
const EXPIRY: &str = "2026-12-20T00:00:00.000Z";
const EVENTS: usize = 10_000;
const OBJECTS: usize = EVENTS * 5 / 6; // + 20 % duplicates = 10,000 events
const WRITERS: usize = 16;

/// Counts the writes of each key (manifest and report), delegating to the memory store.
struct CountingPuts {
    inner: MemoryObjectStore,
    puts: Mutex<HashMap<String, usize>>,
}

#[async_trait]
impl ObjectStore for CountingPuts {
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
        self.inner.request_restore(object, params).await
    }
    async fn head(&self, object: &ObjectRef) -> shared::Result<ObjectHead> {
        self.inner.head(object).await
    }
    async fn put(&self, bucket: &str, key: &str, body: Vec<u8>, ct: &str) -> shared::Result<()> {
        *self
            .puts
            .lock()
            .unwrap()
            .entry(key.to_string())
            .or_default() += 1;
        self.inner.put(bucket, key, body, ct).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_events_with_duplicates_reordering_and_early_arrivals() {
    let seed: u64 = std::env::var("STORM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2026);
    let mut rng = SeededRng::new(seed);
    let store = Arc::new(MemoryJobStore::new());
    let objects = Arc::new(CountingPuts {
        inner: MemoryObjectStore::new(),
        puts: Mutex::new(HashMap::new()),
    });
    objects.inner.create_bucket("manifests");
    let mailer = Arc::new(MemoryMailer::new());
    let job = "storm-job";
    let keys: Vec<String> = (0..OBJECTS)
        .map(|i| format!("storm/{:03}/clip {i:05}.mov", i % 97))
        .collect();
    let sized: Vec<(&str, u64)> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.as_str(), 1 + i as u64))
        .collect();
    // Every tenth object is recorded late.
    let late: std::collections::HashSet<String> = keys.iter().step_by(10).cloned().collect();
    let deferred = restoring_job_deferred(
        store.as_ref(),
        job,
        "4711",
        "ed@example.com",
        BUCKET,
        &sized,
        |k| late.contains(k),
    )
    .await;
    assert_eq!(deferred.len(), late.len());

    // 10,000 events: every object once, 20 % of the events duplicates, shuffled.
    let mut events: Vec<&String> = keys.iter().collect();
    while events.len() < EVENTS {
        events.push(&keys[rng.below(OBJECTS)]);
    }
    for i in (1..events.len()).rev() {
        events.swap(i, rng.below(i + 1));
    }
    let events: Arc<Vec<serde_json::Value>> = Arc::new(
        events
            .iter()
            .map(|k| s3_restore_event(BUCKET, k, EXPIRY))
            .collect(),
    );

    let completion = Arc::new(Completion::new(
        store.clone(),
        objects.clone(),
        Some(mailer.clone()),
        None,
        CompletionSettings::new("manifests", PriceList::aws()),
    ));
    let next = Arc::new(AtomicUsize::new(0));
    let settled_reports = Arc::new(AtomicUsize::new(0));
    let finalized_with_steps = Arc::new(AtomicUsize::new(0));
    let halfway = Arc::new(tokio::sync::Notify::new());
    // The second half of the events waits until the late objects are recorded (their
    // absorption of early events then races the rest of the storm).
    let (recorded_tx, recorded_rx) = tokio::sync::watch::channel(false);

    // The late fan-out: records the deferred objects once half the events are in, then
    // absorbs the early events kept for them (what the table stream's INSERTs trigger).
    let recorder = {
        let (store, completion, halfway) = (store.clone(), completion.clone(), halfway.clone());
        tokio::spawn(async move {
            halfway.notified().await;
            let written = store.put_objects(&deferred).await.unwrap();
            assert!(written.iter().all(|w| *w));
            recorded_tx.send(true).unwrap();
            let absorbed = completion.absorb_early(&deferred).await.unwrap();
            let done = completion.finalize(job).await.unwrap();
            (absorbed, done)
        })
    };
    let mut writers = Vec::new();
    for _ in 0..WRITERS {
        let (completion, events, next) = (completion.clone(), events.clone(), next.clone());
        let (reports, finals, halfway) = (
            settled_reports.clone(),
            finalized_with_steps.clone(),
            halfway.clone(),
        );
        let mut recorded = recorded_rx.clone();
        writers.push(tokio::spawn(async move {
            let mut early = 0;
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= events.len() {
                    return early;
                }
                if i == events.len() / 2 {
                    halfway.notify_one();
                }
                if i >= events.len() / 2 {
                    recorded.wait_for(|done| *done).await.unwrap();
                }
                let result = completion.handle_events(&events[i]).await.unwrap();
                assert_eq!((result.completed, result.malformed), (1, 0));
                reports.fetch_add(result.touched_jobs.len(), Ordering::SeqCst);
                if result.touched_jobs.is_empty() {
                    early += 1;
                }
                if let FinalizeOutcome::Finalized { steps, .. } =
                    completion.finalize(job).await.unwrap()
                {
                    if steps.iter().any(|s| s == MARKER_MAIL) {
                        finals.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        }));
    }
    let mut unsettling = 0;
    for writer in writers {
        unsettling += writer.await.unwrap();
    }
    let (absorbed, recorder_outcome) = recorder.await.unwrap();
    if let FinalizeOutcome::Finalized { steps, .. } = &recorder_outcome {
        if steps.iter().any(|s| s == MARKER_MAIL) {
            finalized_with_steps.fetch_add(1, Ordering::SeqCst);
        }
    }
    // One more finalize, as the stream would deliver after the last settle.
    if let FinalizeOutcome::Finalized { steps, .. } = completion.finalize(job).await.unwrap() {
        assert!(steps.is_empty(), "a finished job has nothing left to do");
    }

    let view = store.get_job(job).await.unwrap().unwrap();
    let total_bytes: u64 = sized.iter().map(|(_, s)| s).sum();
    assert_eq!(view.settled.restored, OBJECTS as u64, "every object once");
    assert_eq!(view.settled.restored_bytes, total_bytes);
    assert_eq!(view.pending(), 0);
    assert_eq!(view.job.state, JobState::Completed);
    assert_eq!(
        settled_reports.load(Ordering::SeqCst) + absorbed,
        OBJECTS,
        "each object settled by exactly one event (or its early copy)"
    );
    assert!(absorbed > 0, "some events came before their objects");
    assert!(
        absorbed < late.len(),
        "some late objects were settled by their own event"
    );
    assert!(
        store
            .objects(job)
            .iter()
            .all(|o| o.state == ObjectState::Restored),
        "no object left behind"
    );
    assert_eq!(
        finalized_with_steps.load(Ordering::SeqCst),
        1,
        "one finalization sent the mail"
    );
    assert_eq!(mailer.sent().len(), 1, "one mail");
    // One manifest and one report (a finalizer racing the winner may rewrite the same bytes:
    // the steps before the mail are idempotent, see `Completion::finalize`).
    let puts = objects.puts.lock().unwrap().clone();
    assert_eq!(puts.len(), 2, "manifest and report only: {puts:?}");
    let manifest = objects
        .inner
        .object(
            "manifests",
            &shared::domain::manifest::manifest_csv_key(job),
        )
        .expect("manifest written");
    let lines = String::from_utf8(manifest.body.clone()).unwrap();
    assert_eq!(
        lines.lines().count(),
        OBJECTS,
        "every object in the manifest"
    );
    eprintln!(
        "storm: seed {seed}, {EVENTS} events for {OBJECTS} objects ({} duplicates), {WRITERS} \
         writers, {} late objects ({absorbed} settled by their early event), {unsettling} \
         events settled nothing (duplicates and early ones), manifest writes {puts:?}",
        EVENTS - OBJECTS,
        late.len(),
    );
}
