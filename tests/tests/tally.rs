//! The completion tally against DynamoDB on the emulator: exact counts under duplicate,
//! reordered, concurrent and early events, objects shared by two jobs, keys that need URL
//! decoding, and SQS partial batch answers when the store fails.

use std::sync::Arc;

use integration_tests::{aws_config, job_store, restoring_job, s3_restore_event, unique_name};
use serde_json::json;
use shared::adapters::dynamodb::DynamoJobStore;
use shared::adapters::s3::S3ObjectStore;
use shared::domain::completion::{Completion, CompletionSettings, FinalizeOutcome};
use shared::domain::cost::PriceList;
use shared::domain::state::{JobState, ObjectState};
use shared::ports::JobStore;

const BUCKET: &str = "media-assets";
const EXPIRY: &str = "2099-12-01T00:00:00.000Z";

async fn completion(store: Arc<DynamoJobStore>) -> Completion {
    let objects = Arc::new(S3ObjectStore::from_sdk_config(&aws_config().await));
    Completion::new(
        store,
        objects,
        None,
        None,
        CompletionSettings::new("unused", PriceList::aws()),
    )
}

/// Events are sent one after the other here: moto's server applies a transaction's condition
/// checks and writes without isolation from concurrent requests, so racing duplicates against
/// it tests moto, not us (DynamoDB itself makes `settle` atomic). The racing version runs
/// against the in-memory store in `shared::domain::completion` unit tests.
#[tokio::test]
async fn duplicate_and_reordered_events_count_each_object_once() {
    let store = Arc::new(job_store().await);
    let job = unique_name("job");
    let keys: Vec<String> = (0..12).map(|i| format!("p1/clip-{i:02}.mov")).collect();
    let objects: Vec<(&str, u64)> = keys.iter().map(|k| (k.as_str(), 1000)).collect();
    restoring_job(
        store.as_ref(),
        &job,
        &unique_name("p"),
        "ed@example.com",
        BUCKET,
        &objects,
    )
    .await;
    let completion = completion(store.clone()).await;
    // Every event three times: reversed, then interleaved odd/even, then in order.
    let mut order: Vec<&String> = keys.iter().rev().collect();
    order.extend(keys.iter().skip(1).step_by(2).chain(keys.iter().step_by(2)));
    order.extend(keys.iter());
    let mut settled = 0;
    for key in order {
        let result = completion
            .handle_events(&s3_restore_event(BUCKET, key, EXPIRY))
            .await
            .unwrap();
        settled += result.touched_jobs.len();
    }
    let view = store.get_job(&job).await.unwrap().unwrap();
    assert_eq!(settled, 12, "each object settled by exactly one event");
    assert_eq!(view.settled.restored, 12);
    assert_eq!(view.settled.restored_bytes, 12_000);
    assert_eq!(view.pending(), 0);
    let objects = store.list_objects(&job, None, 100).await.unwrap().objects;
    assert!(objects.iter().all(|o| o.state == ObjectState::Restored
        && o.expiry
            .is_some_and(|e| e.year() == 2099 && e.month() == time::Month::December)));
}

#[tokio::test]
async fn an_event_before_the_object_is_recorded_is_not_lost() {
    let store = Arc::new(job_store().await);
    let completion = completion(store.clone()).await;
    let job = unique_name("job");
    let result = completion
        .handle_events(&s3_restore_event(BUCKET, "p2/early.mov", EXPIRY))
        .await
        .unwrap();
    assert_eq!(result.completed, 1);
    assert!(result.touched_jobs.is_empty());
    let early = store
        .get_early_event(BUCKET, "p2/early.mov")
        .await
        .unwrap()
        .unwrap();
    assert!(early.expiry.is_some());

    // The fan-out records the objects afterwards; the table stream then delivers the INSERTs.
    restoring_job(
        store.as_ref(),
        &job,
        &unique_name("p"),
        "ed@example.com",
        BUCKET,
        &[("p2/early.mov", 5), ("p2/other.mov", 7)],
    )
    .await;
    let stream = json!({"Records": [{"eventName": "INSERT", "dynamodb": {
        "Keys": {"pk": {"S": format!("JOB#{job}")}, "sk": {"S": "OBJ#p2/early.mov"}},
        "NewImage": {"state": {"S": "requested"}, "bucket": {"S": BUCKET}, "key": {"S": "p2/early.mov"}}
    }}]});
    let outcomes = completion.handle_stream(&stream).await.unwrap();
    assert_eq!(
        outcomes,
        vec![(job.clone(), FinalizeOutcome::NotDone { pending: 1 })]
    );
    // Replaying the stream batch counts nothing more.
    completion.handle_stream(&stream).await.unwrap();
    let view = store.get_job(&job).await.unwrap().unwrap();
    assert_eq!((view.settled.restored, view.settled.restored_bytes), (1, 5));
}

#[tokio::test]
async fn an_object_pending_in_two_active_jobs_counts_in_both() {
    let store = Arc::new(job_store().await);
    let completion = completion(store.clone()).await;
    let (a, b) = (unique_name("job-a"), unique_name("job-b"));
    restoring_job(
        store.as_ref(),
        &a,
        &unique_name("p"),
        "a@example.com",
        BUCKET,
        &[("shared/x.mov", 10)],
    )
    .await;
    restoring_job(
        store.as_ref(),
        &b,
        &unique_name("p"),
        "b@example.com",
        BUCKET,
        &[("shared/x.mov", 10), ("shared/y.mov", 20)],
    )
    .await;
    for _ in 0..2 {
        completion
            .handle_events(&s3_restore_event(BUCKET, "shared/x.mov", EXPIRY))
            .await
            .unwrap();
    }
    assert_eq!(
        store.get_job(&a).await.unwrap().unwrap().settled.restored,
        1
    );
    assert_eq!(
        store.get_job(&b).await.unwrap().unwrap().settled.restored,
        1
    );
    // a is done, b still waits for y.
    assert!(matches!(
        completion.finalize(&b).await.unwrap(),
        FinalizeOutcome::NotDone { pending: 1 }
    ));
    let view = store.get_job(&a).await.unwrap().unwrap();
    assert!(view.is_complete());
    assert_eq!(view.job.state, JobState::Restoring);
}

#[tokio::test]
async fn keys_with_plus_percent_comma_space_and_non_ascii_are_decoded() {
    let store = Arc::new(job_store().await);
    let completion = completion(store.clone()).await;
    let job = unique_name("job");
    let keys = [
        "p3/a+b.mov",
        "p3/100% done.mov",
        "p3/x,y.wav",
        "p3/two  spaces .mxf",
        "p3/Café 映像/ü.mov",
    ];
    let objects: Vec<(&str, u64)> = keys.iter().map(|k| (*k, 1)).collect();
    restoring_job(
        store.as_ref(),
        &job,
        &unique_name("p"),
        "ed@example.com",
        BUCKET,
        &objects,
    )
    .await;
    for key in keys {
        let result = completion
            .handle_events(&s3_restore_event(BUCKET, key, EXPIRY))
            .await
            .unwrap();
        assert_eq!(result.touched_jobs.len(), 1, "{key} was not matched");
    }
    assert_eq!(
        store.get_job(&job).await.unwrap().unwrap().settled.restored,
        5
    );
    // The undecoded form of a key matches nothing.
    let raw = json!({"Records": [{"eventName": "ObjectRestore:Completed",
        "s3": {"bucket": {"name": BUCKET}, "object": {"key": "p3/a%2Bb.mov"}}}]});
    assert!(completion
        .handle_events(&raw)
        .await
        .unwrap()
        .touched_jobs
        .is_empty());
}

#[tokio::test]
async fn eventbridge_and_ignored_events_in_one_batch() {
    let store = Arc::new(job_store().await);
    let completion = completion(store.clone()).await;
    let job = unique_name("job");
    restoring_job(
        store.as_ref(),
        &job,
        &unique_name("p"),
        "ed@example.com",
        BUCKET,
        &[("p4/a b.mov", 3)],
    )
    .await;
    let eventbridge = json!({
        "version": "0", "id": "1", "detail-type": "Object Restore Completed", "source": "aws.s3",
        "time": "2026-11-25T04:00:00Z", "region": "us-east-1", "resources": [],
        "detail": {"version": "0", "bucket": {"name": BUCKET}, "object": {"key": "p4/a+b.mov", "size": 3},
                   "restore-expiry-time": "2099-12-01T00:00:00Z", "source-storage-class": "GLACIER"}
    });
    let result = completion.handle_events(&eventbridge).await.unwrap();
    assert_eq!(result.touched_jobs.len(), 1);
    let post = json!({"Records": [{"eventName": "ObjectRestore:Post", "s3": {"bucket": {"name": BUCKET}, "object": {"key": "p4/a+b.mov"}}}]});
    let result = completion.handle_events(&post).await.unwrap();
    assert_eq!((result.ignored, result.completed), (1, 0));
    assert_eq!(
        store.get_job(&job).await.unwrap().unwrap().settled.restored,
        1
    );
}

#[tokio::test]
async fn a_store_failure_names_only_the_failed_sqs_message() {
    // A table that does not exist: every store call fails.
    let broken = Arc::new(DynamoJobStore::new(
        integration_tests::dynamodb_client().await,
        unique_name("missing"),
    ));
    let completion = completion(broken).await;
    let payload = json!({"Records": [
        {"eventSource": "aws:sqs", "messageId": "good-but-unstorable",
         "body": s3_restore_event(BUCKET, "p5/a.mov", EXPIRY).to_string()},
        {"eventSource": "aws:sqs", "messageId": "malformed", "body": "{]"},
    ]});
    let result = completion.handle_events(&payload).await.unwrap();
    assert_eq!(
        result.response,
        json!({"batchItemFailures": [
            {"itemIdentifier": "good-but-unstorable"},
            {"itemIdentifier": "malformed"}
        ]})
    );
    assert_eq!((result.malformed, result.failed), (1, 1));
    // A direct invocation fails as a whole, so Lambda retries it.
    assert!(completion
        .handle_events(&s3_restore_event(BUCKET, "p5/a.mov", EXPIRY))
        .await
        .is_err());
}

/// An SQS batch is tallied as a whole, without a transaction: one listing of the active jobs,
/// one BatchGetItem of the records, then a receipt, one conditional update per object and one
/// count for them all (receipt deleted, its id dropped from the shard), counted at a proxy.
/// An SQS batch of one S3 completion notification per key (repeats allowed).
fn sqs_batch(keys: &[&String]) -> serde_json::Value {
    let records: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            json!({"eventSource": "aws:sqs", "messageId": format!("m{i}"),
                   "body": s3_restore_event(BUCKET, key, EXPIRY).to_string()})
        })
        .collect();
    json!({ "Records": records })
}

/// A restoring job of 8 objects `<stem> <n>.mov` of 10 bytes in `store`'s (new) table: its id
/// and keys.
async fn eight_object_job(store: &DynamoJobStore, stem: &str) -> (String, Vec<String>) {
    store.ensure_table().await.unwrap();
    let job = unique_name("job");
    let keys: Vec<String> = (0..8).map(|i| format!("{stem} {i}.mov")).collect();
    let objects: Vec<(&str, u64)> = keys.iter().map(|k| (k.as_str(), 10)).collect();
    restoring_job(
        store,
        &job,
        &unique_name("p"),
        "ed@example.com",
        BUCKET,
        &objects,
    )
    .await;
    (job, keys)
}

/// Repeats inside the batch and across batches count once.
#[tokio::test]
async fn an_sqs_batch_costs_one_write_per_object_and_counts_repeats_once() {
    use integration_tests::fault_proxy::{FaultPlan, FaultProxy};
    let proxy = FaultProxy::start(integration_tests::moto_endpoint(), FaultPlan::none());
    let store = Arc::new(DynamoJobStore::new(
        aws_sdk_dynamodb::Client::new(
            &integration_tests::aws_config_at(
                &proxy.endpoint,
                1,
                std::time::Duration::from_secs(30),
            )
            .await,
        ),
        unique_name("jobs"),
    ));
    let (job, keys) = eight_object_job(&store, "p6/reel").await;
    let completion = completion(store.clone()).await;
    // 8 objects, two of them twice in the same batch.
    let mut first: Vec<&String> = keys.iter().collect();
    first.extend([&keys[3], &keys[0]]);
    let calls_before = proxy.calls().len();
    let result = completion.handle_events(&sqs_batch(&first)).await.unwrap();
    // The proxy notes a call just after answering it.
    proxy.wait_idle(std::time::Duration::from_secs(10)).await;
    let calls: Vec<String> = proxy.calls()[calls_before..]
        .iter()
        .map(|c| c.operation.clone())
        .collect();
    assert_eq!(result.response, json!({"batchItemFailures": []}));
    assert_eq!((result.completed, result.settled), (10, 8));
    let mut expected = vec!["Query", "BatchGetItem", "PutItem"];
    expected.extend(["UpdateItem"; 8]);
    expected.extend(["UpdateItem", "DeleteItem", "UpdateItem"]);
    assert_eq!(
        calls, expected,
        "one listing, one read, the receipt, a write per object, the count, the receipt's end"
    );
    // The same objects again (a redelivered batch): read, nothing to write.
    let again = completion
        .handle_events(&sqs_batch(&first[..4]))
        .await
        .unwrap();
    assert_eq!((again.completed, again.settled), (4, 0));
    let view = store.get_job(&job).await.unwrap().unwrap();
    assert_eq!(view.settled.restored, 8);
    assert_eq!(view.settled.restored_bytes, 80);
    assert_eq!(view.pending(), 0);
}

/// A batch settlement stopped at one chosen write: after the objects' writes and before their
/// count, or after the count and before the receipt is deleted; by an error (the call ends the
/// receipt's lease) or by a crash (its clean-up refused too, so the lease stands). Nothing is
/// lost or counted twice: the objects stay settled, a redelivered batch finds them so (and
/// counts nothing), a crashed call's receipt waits out its lease (the call might still run),
/// and then the sweeper (or two finishers at once) adds exactly what the count is missing (all
/// 8, or none) and the job finalizes.
#[tokio::test]
async fn a_batch_settlement_stopped_midway_loses_no_count_and_adds_none_twice() {
    use integration_tests::fault_proxy::{FaultPlan, FaultProxy};
    use shared::adapters::memory::MemoryMailer;
    let proxy = FaultProxy::start(integration_tests::moto_endpoint(), FaultPlan::none());
    // One attempt per call: a refused write fails the call at once, as a crash there would.
    let sdk =
        integration_tests::aws_config_at(&proxy.endpoint, 1, std::time::Duration::from_secs(30))
            .await;
    let manifests = unique_name("manifests");
    integration_tests::s3_client()
        .await
        .create_bucket()
        .bucket(&manifests)
        .send()
        .await
        .unwrap();
    // (refused writes, counted before the stop, lease ended by the call, finished by the sweeper)
    let count = ("UpdateItem", "COUNT#");
    let receipt_delete = ("DeleteItem", "SETTLE#");
    let lease_release = ("UpdateItem", "lease_until");
    for (refused, counted_by_the_crashed_call, released, by_sweeper) in [
        (vec![count], 0, true, true),
        (vec![count, lease_release], 0, false, true),
        (vec![count, lease_release], 0, false, false),
        (vec![receipt_delete, lease_release], 8, false, false),
    ] {
        let store = Arc::new(DynamoJobStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            unique_name("jobs"),
        ));
        let (job, keys) = eight_object_job(&store, "p7/clip").await;
        let completion = Completion::new(
            store.clone(),
            Arc::new(S3ObjectStore::from_sdk_config(&aws_config().await)),
            Some(Arc::new(MemoryMailer::new())),
            None,
            CompletionSettings::new(manifests.clone(), PriceList::aws()),
        );
        let batch = sqs_batch(&keys.iter().collect::<Vec<_>>());

        for (operation, needle) in &refused {
            proxy.refuse_dynamodb(operation, needle);
        }
        let crashed = completion.handle_events(&batch).await.unwrap();
        proxy.stop_refusing();
        let failures = crashed.response["batchItemFailures"].as_array().unwrap();
        assert_eq!(
            failures.len(),
            8,
            "{refused:?} refused: the whole batch is retried"
        );
        let page = store.list_objects(&job, None, 100).await.unwrap();
        assert!(
            page.objects
                .iter()
                .all(|o| o.state == ObjectState::Restored),
            "the objects were settled before the crash"
        );
        let counted = |view: shared::domain::job::JobView| view.settled.restored;
        assert_eq!(
            counted(store.get_job(&job).await.unwrap().unwrap()),
            counted_by_the_crashed_call
        );

        // SQS redelivers the batch: every object is found settled, nothing is counted.
        let again = completion.handle_events(&batch).await.unwrap();
        assert_eq!((again.completed, again.settled), (8, 0));
        let now = time::OffsetDateTime::now_utc();
        let later = if released {
            // The call ended the lease when it gave up: the next sweep finishes the receipt.
            now
        } else {
            assert_eq!(
                store.finish_settlements(&job, now).await.unwrap(),
                0,
                "a receipt inside its lease belongs to its call"
            );
            assert_eq!(
                counted(store.get_job(&job).await.unwrap().unwrap()),
                counted_by_the_crashed_call
            );
            now + time::Duration::minutes(31)
        };
        let expected = 8 - counted_by_the_crashed_call as usize;
        if by_sweeper {
            let sweep = completion.sweep(later).await.unwrap();
            assert_eq!(sweep.finished_settlements, expected);
            assert_eq!(sweep.finalized, std::slice::from_ref(&job));
        } else {
            let (a, b) = tokio::join!(
                store.finish_settlements(&job, later),
                store.finish_settlements(&job, later)
            );
            assert_eq!(
                a.unwrap() + b.unwrap(),
                expected,
                "two finishers add the missing counts once"
            );
        }
        let view = store.get_job(&job).await.unwrap().unwrap();
        assert_eq!(
            (view.settled.restored, view.settled.restored_bytes),
            (8, 80)
        );
        assert_eq!(view.pending(), 0);
        // The receipt is gone: nothing is left to add, however late.
        let much_later = later + time::Duration::hours(2);
        assert_eq!(store.finish_settlements(&job, much_later).await.unwrap(), 0);
        assert_eq!(
            store.get_job(&job).await.unwrap().unwrap().settled.restored,
            8
        );
        if by_sweeper {
            let view = store.get_job(&job).await.unwrap().unwrap();
            assert_eq!(view.job.state, JobState::Completed);
        }
    }
}
