//! The job store's contract, run against DynamoDB on the emulator and against the in-memory
//! adapter (so the unit tests that use the memory store test the same semantics).

use shared::adapters::memory::MemoryJobStore;
use shared::domain::completion::EarlyEvent;
use shared::domain::job::{
    shard_of, CreateOutcome, Cursor, Job, LeaseOutcome, ObjectRecord, PageCommit, PlanTotals,
    Settlement, StatsRecord,
};
use shared::domain::state::{JobState, ObjectState};
use shared::domain::storage::{RetrievalTier, StorageClass};
use shared::ports::JobStore;
use time::{Duration, OffsetDateTime};

fn job(id: &str, project: &str) -> Job {
    Job::new(
        id.into(),
        project.into(),
        "ed@example.com".into(),
        "/srv/p/Assets/proj/".into(),
        "proj/".into(),
        Some("/srv/p/Assets/".into()),
        RetrievalTier::Bulk,
        vec!["b1".into(), "b2".into()],
        4,
        OffsetDateTime::now_utc(),
    )
}

fn object(job_id: &str, bucket: &str, key: &str, size: u64) -> ObjectRecord {
    ObjectRecord {
        job_id: job_id.into(),
        bucket: bucket.into(),
        key: key.into(),
        version_id: None,
        size,
        storage_class: StorageClass::Glacier,
        tier: None,
        state: ObjectState::Planned,
        shard: shard_of(bucket, key, 4),
        expiry: None,
        error: None,
        settled_at_listing: false,
    }
}

fn settled(state: ObjectState) -> Settlement {
    Settlement {
        state,
        expiry: None,
        error: None,
    }
}

async fn lifecycle_and_project_lock(store: &dyn JobStore, tag: &str) {
    let project = format!("p-{tag}");
    let a = job(&format!("a-{tag}"), &project);
    assert_eq!(store.create_job(&a).await.unwrap(), CreateOutcome::Created);
    // A second job for the same project finds the first (idempotent POST) and writes nothing.
    let b = job(&format!("b-{tag}"), &project);
    assert_eq!(
        store.create_job(&b).await.unwrap(),
        CreateOutcome::Existing(a.job_id.clone())
    );
    assert!(store.get_job(&b.job_id).await.unwrap().is_none());
    assert_eq!(
        store.active_job(&project).await.unwrap(),
        Some(a.job_id.clone())
    );

    let view = store.get_job(&a.job_id).await.unwrap().unwrap();
    assert_eq!(view.job, a_roundtrip(&a, &view.job));
    assert_eq!(view.job.state, JobState::Planning);

    // Exactly-once finalize: only the first transition from `restoring` wins.
    assert!(!store
        .transition_job(&a.job_id, &[JobState::Restoring], JobState::Completed, None)
        .await
        .unwrap());
    assert!(store
        .transition_job(&a.job_id, &[JobState::Planning], JobState::Restoring, None)
        .await
        .unwrap());
    assert!(store
        .transition_job(&a.job_id, &[JobState::Restoring], JobState::Completed, None)
        .await
        .unwrap());
    assert!(!store
        .transition_job(&a.job_id, &[JobState::Restoring], JobState::Completed, None)
        .await
        .unwrap());
    // The finished job released the project: a new one may start.
    assert_eq!(store.active_job(&project).await.unwrap(), None);
    assert_eq!(store.create_job(&b).await.unwrap(), CreateOutcome::Created);

    // Markers are once-only; manifest location is kept.
    assert!(store.set_marker(&a.job_id, "mail_sent").await.unwrap());
    assert!(!store.set_marker(&a.job_id, "mail_sent").await.unwrap());
    store
        .set_manifest(&a.job_id, "s3://m/a/report.json")
        .await
        .unwrap();
    let view = store.get_job(&a.job_id).await.unwrap().unwrap();
    assert_eq!(view.job.markers, vec!["mail_sent".to_string()]);
    assert_eq!(view.job.manifest.as_deref(), Some("s3://m/a/report.json"));
    assert_eq!(view.job.state, JobState::Completed);
    assert!(store.set_marker("missing", "x").await.is_err());
    assert!(store.get_job("missing").await.unwrap().is_none());
}

/// Times are stored with second precision at least; compare the rest exactly.
fn a_roundtrip(expected: &Job, got: &Job) -> Job {
    let mut e = expected.clone();
    e.created_at = got.created_at;
    e.updated_at = got.updated_at;
    assert!((got.created_at - expected.created_at).abs() < Duration::seconds(1));
    e
}

async fn objects_settle_once(store: &dyn JobStore, tag: &str) {
    let j1 = job(&format!("o1-{tag}"), &format!("po1-{tag}"));
    let j2 = job(&format!("o2-{tag}"), &format!("po2-{tag}"));
    store.create_job(&j1).await.unwrap();
    store.create_job(&j2).await.unwrap();
    let first = vec![
        object(&j1.job_id, "b1", "proj/a.mov", 10),
        object(&j1.job_id, "b1", "proj/b.mov", 20),
    ];
    assert_eq!(store.put_objects(&first).await.unwrap(), vec![true, true]);
    // Replay of the page, plus the same key from a later bucket: nothing overwritten.
    let replay = vec![
        object(&j1.job_id, "b1", "proj/a.mov", 10),
        object(&j1.job_id, "b2", "proj/b.mov", 99),
        object(&j1.job_id, "b2", "proj/c.mov", 30),
    ];
    assert_eq!(
        store.put_objects(&replay).await.unwrap(),
        vec![false, false, true]
    );
    let keys: Vec<String> = ["proj/b.mov", "proj/nope", "proj/a.mov"]
        .iter()
        .map(|k| k.to_string())
        .collect();
    let read = store.get_objects(&j1.job_id, &keys).await.unwrap();
    assert_eq!(read[0].as_ref().unwrap().bucket, "b1");
    assert_eq!(read[0].as_ref().unwrap().size, 20);
    assert!(read[1].is_none());
    assert_eq!(read[2].as_ref().unwrap().state, ObjectState::Planned);

    // The same object waits in two jobs.
    store
        .put_objects(&[object(&j2.job_id, "b1", "proj/a.mov", 10)])
        .await
        .unwrap();
    let key = vec!["proj/a.mov".to_string()];
    for id in [&j1.job_id, &j2.job_id] {
        let record = store.get_objects(id, &key).await.unwrap().remove(0);
        assert!(record.is_some_and(|r| r.is_pending()), "pending in {id}");
    }

    // planned → requested; a requested object may still get a new tier (Expedited fallback).
    let mut req = object(&j1.job_id, "b1", "proj/a.mov", 10);
    req.tier = Some(RetrievalTier::Standard);
    assert_eq!(
        store
            .mark_requested(&j1.job_id, &[req.clone()])
            .await
            .unwrap(),
        vec![true]
    );
    assert_eq!(
        store
            .mark_requested(&j1.job_id, &[req.clone()])
            .await
            .unwrap(),
        vec![true]
    );

    // Settling counts once, whatever the number of duplicate events.
    let restored = Settlement {
        state: ObjectState::Restored,
        expiry: Some(OffsetDateTime::now_utc() + Duration::days(7)),
        error: None,
    };
    assert!(store.settle(&req, &restored).await.unwrap());
    assert!(!store.settle(&req, &restored).await.unwrap());
    // Settled: no longer updated as requested.
    assert_eq!(
        store
            .mark_requested(&j1.job_id, &[req.clone()])
            .await
            .unwrap(),
        vec![false]
    );
    assert!(!store
        .settle(&req, &settled(ObjectState::Failed))
        .await
        .unwrap());
    // A settle naming the wrong bucket (duplicate key from a later bucket) counts nothing.
    let wrong = object(&j1.job_id, "b2", "proj/b.mov", 99);
    assert!(!store.settle(&wrong, &restored).await.unwrap());
    let mut failed = Settlement {
        state: ObjectState::Failed,
        expiry: None,
        error: Some("AccessDenied".into()),
    };
    assert!(store
        .settle(&object(&j1.job_id, "b1", "proj/b.mov", 20), &failed)
        .await
        .unwrap());
    failed.state = ObjectState::NotNeeded;
    failed.error = None;
    assert!(store
        .settle(&object(&j1.job_id, "b2", "proj/c.mov", 30), &failed)
        .await
        .unwrap());

    // Settled in one job; the other job's copy is still pending.
    let in_j2 = store.get_objects(&j2.job_id, &key).await.unwrap().remove(0);
    assert!(in_j2.is_some_and(|r| r.is_pending()));

    let view = store.get_job(&j1.job_id).await.unwrap().unwrap();
    assert_eq!(view.settled.restored, 1);
    assert_eq!(view.settled.restored_bytes, 10);
    assert_eq!(view.settled.failed, 1);
    assert_eq!(view.settled.not_needed, 1);

    let a = store
        .get_objects(&j1.job_id, &["proj/a.mov".to_string()])
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    assert_eq!(a.state, ObjectState::Restored);
    assert_eq!(a.tier, Some(RetrievalTier::Standard));
    assert!(a.expiry.is_some());
    let b = store
        .get_objects(&j1.job_id, &["proj/b.mov".to_string()])
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    assert_eq!(b.error.as_deref(), Some("AccessDenied"));

    // Many at once (the tally's batches), over two jobs: the already settled one and a repeat
    // inside the call count nothing, the rest is settled and counted once.
    let j3 = job(&format!("o3-{tag}"), &format!("po3-{tag}"));
    store.create_job(&j3).await.unwrap();
    let batch: Vec<ObjectRecord> = (0..3)
        .map(|i| object(&j3.job_id, "b1", &format!("proj/m{i}.mov"), 7))
        .collect();
    store.put_objects(&batch).await.unwrap();
    assert!(store.settle(&batch[1], &restored).await.unwrap());
    let items = vec![
        (batch[0].clone(), restored.clone()),
        (batch[1].clone(), restored.clone()),
        (batch[0].clone(), restored.clone()),
        (batch[2].clone(), settled(ObjectState::Failed)),
        (object(&j2.job_id, "b1", "proj/a.mov", 10), restored.clone()),
    ];
    assert_eq!(
        store.settle_many(&items).await.unwrap(),
        vec![true, false, false, true, true]
    );
    assert_eq!(
        store.settle_many(&items).await.unwrap(),
        vec![false; 5],
        "a redelivered batch counts nothing"
    );
    let v3 = store.get_job(&j3.job_id).await.unwrap().unwrap();
    assert_eq!(
        (
            v3.settled.restored,
            v3.settled.restored_bytes,
            v3.settled.failed
        ),
        (2, 14, 1)
    );
    let v2 = store.get_job(&j2.job_id).await.unwrap().unwrap();
    assert_eq!((v2.settled.restored, v2.settled.restored_bytes), (1, 10));
    // The active jobs, with the scope the tally matches events against.
    let active = store.active_jobs().await.unwrap();
    for id in [&j1.job_id, &j2.job_id, &j3.job_id] {
        let found = active.iter().find(|a| &a.job_id == id).expect("active");
        assert_eq!(found.prefix, "proj/");
        assert_eq!(found.buckets, vec!["b1", "b2"]);
        assert!(found.covers("b2", "proj/x.mov") && !found.covers("b3", "proj/x.mov"));
        assert!(!found.covers("b1", "other/x.mov"));
    }

    // Paged listing of a job's objects, in key order.
    let page1 = store.list_objects(&j1.job_id, None, 2).await.unwrap();
    let keys: Vec<&str> = page1.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, vec!["proj/a.mov", "proj/b.mov"]);
    let after = page1.next.expect("more");
    let page2 = store
        .list_objects(&j1.job_id, Some(&after), 2)
        .await
        .unwrap();
    let keys: Vec<&str> = page2.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, vec!["proj/c.mov"]);
    if let Some(after) = page2.next {
        let page3 = store
            .list_objects(&j1.job_id, Some(&after), 2)
            .await
            .unwrap();
        assert!(page3.objects.is_empty() && page3.next.is_none());
    }
}

async fn lease_and_cursor(store: &dyn JobStore, tag: &str) {
    let j = job(&format!("l-{tag}"), &format!("pl-{tag}"));
    store.create_job(&j).await.unwrap();
    let now = OffsetDateTime::now_utc();
    let LeaseOutcome::Acquired { job: got, replay } = store
        .acquire_lease(&j.job_id, "w1", now, now + Duration::seconds(30))
        .await
        .unwrap()
    else {
        panic!("lease should be free");
    };
    assert_eq!(got.cursor, Cursor::default());
    assert!(!replay, "first start of page 0");
    // Someone else is kept out while the lease is live...
    match store
        .acquire_lease(&j.job_id, "w2", now, now + Duration::seconds(30))
        .await
        .unwrap()
    {
        LeaseOutcome::Busy(until) => assert!(until > now),
        other => panic!("expected busy, got {other:?}"),
    }
    // ...and can't commit a page.
    let to = Cursor {
        bucket_index: 0,
        token: Some("tok-1".into()),
        page: 1,
        listing_done: false,
    };
    let mut add = PlanTotals {
        objects: 3,
        bytes: 60,
        to_restore: 2,
        bytes_to_restore: 50,
        not_needed_at_listing: 1,
        requested: 2,
        ..Default::default()
    };
    add.by_class.insert(
        "GLACIER".into(),
        shared::domain::job::ClassTotals {
            objects: 2,
            bytes: 50,
        },
    );
    let err = store
        .advance_cursor(
            &j.job_id,
            "w2",
            &PageCommit {
                from: Cursor::default(),
                to: to.clone(),
                add: add.clone(),
                notes: vec![],
                keep_lease: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.http_status(), 409);
    let notes = vec!["deep_archive_expedited_fallback".to_string()];
    store
        .advance_cursor(
            &j.job_id,
            "w1",
            &PageCommit {
                from: Cursor::default(),
                to: to.clone(),
                add: add.clone(),
                notes: notes.clone(),
                keep_lease: Some(now + Duration::seconds(30)),
            },
        )
        .await
        .unwrap();
    // A replay of the same page (stale `from`) is refused: totals are not added twice.
    let err = store
        .advance_cursor(
            &j.job_id,
            "w1",
            &PageCommit {
                from: Cursor::default(),
                to: to.clone(),
                add: add.clone(),
                notes: vec![],
                keep_lease: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "cursor_moved");

    // An expired lease can be taken over.
    let later = now + Duration::seconds(31);
    let LeaseOutcome::Acquired { job: got, replay } = store
        .acquire_lease(&j.job_id, "w2", later, later + Duration::seconds(30))
        .await
        .unwrap()
    else {
        panic!("expired lease should be taken over");
    };
    assert_eq!(got.cursor, to);
    assert!(!replay, "page 1 was never started");
    assert_eq!(got.totals, add);
    assert_eq!(got.notes, notes);
    // w2 dies in page 1: whoever takes over next is told it replays a started page.
    let much_later = later + Duration::seconds(31);
    let LeaseOutcome::Acquired { replay, .. } = store
        .acquire_lease(
            &j.job_id,
            "w2b",
            much_later,
            much_later + Duration::seconds(30),
        )
        .await
        .unwrap()
    else {
        panic!("expired lease should be taken over");
    };
    assert!(replay, "page 1 was started by w2 and never committed");
    let done = Cursor {
        bucket_index: 2,
        token: None,
        page: 2,
        listing_done: true,
    };
    store
        .advance_cursor(
            &j.job_id,
            "w2b",
            &PageCommit {
                from: to.clone(),
                to: done.clone(),
                add: add.clone(),
                notes: notes.clone(),
                keep_lease: None,
            },
        )
        .await
        .unwrap();
    let view = store.get_job(&j.job_id).await.unwrap().unwrap();
    assert_eq!(view.job.cursor, done);
    assert_eq!(view.job.state, JobState::Restoring);
    assert_eq!(view.job.totals.objects, 6);
    assert_eq!(view.job.totals.by_class["GLACIER"].bytes, 100);
    assert_eq!(view.job.notes, notes);
    // Nothing left to fan out.
    assert_eq!(
        store
            .acquire_lease(&j.job_id, "w3", later, later + Duration::seconds(30))
            .await
            .unwrap(),
        LeaseOutcome::Done
    );
}

/// A page begun ahead of the cursor (listed and recorded while the cursor's page is still being
/// requested) is reported as a replay to whoever reaches it after the invocation that began
/// it died, before or after committing the cursor's page.
async fn pages_begun_ahead(store: &dyn JobStore, tag: &str) {
    let j = job(&format!("a-{tag}"), &format!("pa-{tag}"));
    store.create_job(&j).await.unwrap();
    let now = OffsetDateTime::now_utc();
    let acquire = |owner: &'static str, at: OffsetDateTime| {
        let id = j.job_id.clone();
        async move {
            match store
                .acquire_lease(&id, owner, at, at + Duration::seconds(30))
                .await
                .unwrap()
            {
                LeaseOutcome::Acquired { replay, .. } => replay,
                other => panic!("{owner} should get the lease, got {other:?}"),
            }
        }
    };
    assert!(
        !acquire("w1", now).await,
        "page 0 starts for the first time"
    );
    // Only the lease holder, and only the page right after the cursor's.
    let refused = store.begin_next_page(&j.job_id, "w9", 1).await.unwrap_err();
    assert_eq!(refused.code(), "cursor_moved");
    let refused = store.begin_next_page(&j.job_id, "w1", 2).await.unwrap_err();
    assert_eq!(refused.code(), "cursor_moved");
    assert!(!store.begin_next_page(&j.job_id, "w1", 1).await.unwrap());
    assert!(
        store.begin_next_page(&j.job_id, "w1", 1).await.unwrap(),
        "begun twice: its records may exist"
    );
    // w1 dies before committing page 0: page 0 is replayed, and page 1 too once reached.
    let later = now + Duration::seconds(31);
    assert!(acquire("w2", later).await, "page 0 was started by w1");
    assert!(
        store.begin_next_page(&j.job_id, "w2", 1).await.unwrap(),
        "page 1 was begun ahead by w1"
    );
    let to = Cursor {
        bucket_index: 0,
        token: Some("tok-1".into()),
        page: 1,
        listing_done: false,
    };
    store
        .advance_cursor(
            &j.job_id,
            "w2",
            &PageCommit {
                from: Cursor::default(),
                to: to.clone(),
                add: PlanTotals::default(),
                notes: Vec::new(),
                keep_lease: Some(later + Duration::seconds(30)),
            },
        )
        .await
        .unwrap();
    assert!(!store.begin_next_page(&j.job_id, "w2", 2).await.unwrap());
    // w2 dies after committing page 0, with page 2 begun ahead of page 1: both are replays.
    let much_later = later + Duration::seconds(31);
    assert!(acquire("w3", much_later).await, "page 1 was begun ahead");
    assert!(store.begin_next_page(&j.job_id, "w3", 2).await.unwrap());
    let view = store.get_job(&j.job_id).await.unwrap().unwrap();
    assert_eq!(view.job.cursor, to);
}

async fn stats_roundtrip(store: &dyn JobStore, tag: &str) {
    let stats = StatsRecord {
        project_id: format!("s-{tag}"),
        prefix: "proj/".into(),
        number_of_files: 3,
        total_bytes: 1 << 30,
        standard_cost_cents: 12,
        bulk_cost_cents: 3,
        expires_at: OffsetDateTime::from_unix_timestamp(2_000_000_000).unwrap(),
    };
    store.put_stats(&stats).await.unwrap();
    assert_eq!(
        store.get_stats(&stats.project_id, "proj/").await.unwrap(),
        Some(stats.clone())
    );
    assert_eq!(
        store.get_stats(&stats.project_id, "other/").await.unwrap(),
        None
    );
}

/// Early events by object, one at a time and many at once (more than one BatchGetItem's 100
/// keys, with keys that have no event and a key asked twice).
async fn early_events_by_object(store: &dyn JobStore, tag: &str) {
    let bucket = format!("early-{tag}-{}", integration_tests::unique_name("b"));
    let at = |s: i64| OffsetDateTime::from_unix_timestamp(1_900_000_000 + s).unwrap();
    let event = |key: String| EarlyEvent {
        bucket: bucket.clone(),
        key,
        version_id: None,
        expiry: Some(at(3600)),
        received_at: at(0),
        expires_at: at(86_400),
    };
    // Every third of 150 objects has an event.
    let keys: Vec<String> = (0..150)
        .map(|i| format!("Assets/clip {i:03}.mov"))
        .collect();
    let mut kept: Vec<EarlyEvent> = keys.iter().step_by(3).cloned().map(event).collect();
    kept[0].version_id = Some("v1".into());
    for e in &kept {
        store.put_early_event(e).await.unwrap();
    }
    assert_eq!(
        store.get_early_event(&bucket, &keys[0]).await.unwrap(),
        Some(kept[0].clone())
    );
    assert_eq!(
        store.get_early_event(&bucket, &keys[1]).await.unwrap(),
        None
    );

    let mut asked: Vec<(&str, &str)> = keys.iter().map(|k| (bucket.as_str(), k.as_str())).collect();
    asked.push((bucket.as_str(), keys[3].as_str()));
    asked.push(("another-bucket", keys[0].as_str()));
    let mut got = store.get_early_events(&asked).await.unwrap();
    got.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(got, kept, "each kept event once, nothing else");
    assert!(store.get_early_events(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn dynamodb_job_lifecycle_and_project_lock() {
    lifecycle_and_project_lock(&integration_tests::job_store().await, "d").await;
}

#[tokio::test]
async fn memory_job_lifecycle_and_project_lock() {
    lifecycle_and_project_lock(&MemoryJobStore::new(), "m").await;
}

#[tokio::test]
async fn dynamodb_objects_settle_exactly_once() {
    objects_settle_once(&integration_tests::job_store().await, "d").await;
}

#[tokio::test]
async fn memory_objects_settle_exactly_once() {
    objects_settle_once(&MemoryJobStore::new(), "m").await;
}

#[tokio::test]
async fn dynamodb_lease_and_cursor_are_conditional() {
    lease_and_cursor(&integration_tests::job_store().await, "d").await;
}

#[tokio::test]
async fn memory_lease_and_cursor_are_conditional() {
    lease_and_cursor(&MemoryJobStore::new(), "m").await;
}

#[tokio::test]
async fn dynamodb_pages_begun_ahead_are_replays() {
    pages_begun_ahead(&integration_tests::job_store().await, "d").await;
}

#[tokio::test]
async fn memory_pages_begun_ahead_are_replays() {
    pages_begun_ahead(&MemoryJobStore::new(), "m").await;
}

#[tokio::test]
async fn dynamodb_stats_roundtrip() {
    stats_roundtrip(&integration_tests::job_store().await, "d").await;
}

#[tokio::test]
async fn memory_stats_roundtrip() {
    stats_roundtrip(&MemoryJobStore::new(), "m").await;
}

#[tokio::test]
async fn dynamodb_early_events_by_object() {
    early_events_by_object(&integration_tests::job_store().await, "d").await;
}

#[tokio::test]
async fn memory_early_events_by_object() {
    early_events_by_object(&MemoryJobStore::new(), "m").await;
}

#[tokio::test]
async fn ensure_table_is_idempotent() {
    let store = integration_tests::job_store().await;
    store.ensure_table().await.unwrap();
}
