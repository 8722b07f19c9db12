//! Tally: `ObjectRestore:Completed` events (a share of them duplicates, shuffled) through the
//! events handler (`Completion::handle_events`, the record path `restore-events` runs) in SQS
//! batches (100 messages, as template.yaml configures the trigger), against DynamoDB on moto behind a counting proxy; compared with bare
//! conditional UpdateItem calls on the same emulator at the same concurrency.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use shared::domain::completion::Completion;
use shared::ports::JobStore;

use crate::proxy;
use crate::report::{median, ratio, write_fragment, Table};
use crate::tools::{self, env_number};

const BUCKET: &str = "bench-tally";

struct Knobs {
    events: usize,
    duplicate_percent: usize,
    batch: usize,
    concurrency: usize,
    runs: usize,
}

/// The events of one run: `unique` keys once each plus duplicates of random ones, shuffled,
/// as SQS batches of `size` messages (one S3 notification each).
fn batches(keys: &[String], duplicates: usize, size: usize) -> Vec<serde_json::Value> {
    let mut events: Vec<&String> = keys.iter().collect();
    for _ in 0..duplicates {
        events.push(&keys[fastrand::usize(..keys.len())]);
    }
    fastrand::shuffle(&mut events);
    events
        .chunks(size)
        .enumerate()
        .map(|(b, chunk)| {
            let records: Vec<serde_json::Value> = chunk
                .iter()
                .enumerate()
                .map(|(i, key)| {
                    let body = integration_tests::s3_restore_event(
                        BUCKET,
                        key,
                        "2100-01-01T00:00:00.000Z",
                    );
                    serde_json::json!({
                        "messageId": format!("m-{b}-{i}"),
                        "eventSource": "aws:sqs",
                        "body": body.to_string(),
                    })
                })
                .collect();
            serde_json::json!({ "Records": records })
        })
        .collect()
}

struct RunResult {
    events_per_s: f64,
    /// Wall time of the tally.
    seconds: f64,
    requests_per_event: f64,
    by_operation: String,
    updates_per_s: f64,
}

async fn one_run(knobs: &Knobs, proxy: &proxy::Proxy, run: usize) -> Result<RunResult, String> {
    let table = integration_tests::unique_name("bench-tally");
    let pairs = tools::store_pairs(&table, &proxy.url());
    let err = |e: shared::Error| e.to_string();
    let config = tools::config(&pairs).map_err(err)?;
    let sdk = shared::config::aws_sdk_config(&config).await;
    let store = shared::adapters::dynamodb::DynamoJobStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        table.clone(),
    );
    // The table as deployed, stream included: the tally writes no transaction any more, so
    // moto's deep copy of the table (stream records included) happens once, at job creation.
    store.ensure_table().await.map_err(err)?;

    let duplicates = knobs.events * knobs.duplicate_percent / 100;
    let unique = knobs.events - duplicates;
    let keys: Vec<String> = (0..unique)
        .map(|i| format!("tally/Assets/clip {i:06}.mxf"))
        .collect();
    let objects: Vec<(&str, u64)> = keys.iter().map(|k| (k.as_str(), 1024)).collect();
    let job_id = format!("tally-job-{run}-{}", fastrand::u32(..));
    integration_tests::restoring_job(
        &store,
        &job_id,
        "tally",
        "bench@example.com",
        BUCKET,
        &objects,
    )
    .await;

    let parts = shared::wiring::completion_parts(&config, &sdk, false).map_err(err)?;
    let completion = Arc::new(Completion::new(
        parts.jobs,
        parts.objects,
        None,
        None,
        shared::wiring::completion_settings(&config).map_err(err)?,
    ));
    let batches = batches(&keys, duplicates, knobs.batch);

    // The tally.
    proxy.counts.reset();
    let start = Instant::now();
    let failures: Vec<String> = futures::stream::iter(batches)
        .map(|batch| {
            let completion = completion.clone();
            async move {
                match completion.handle_events(&batch).await {
                    Ok(result)
                        if result.response["batchItemFailures"]
                            .as_array()
                            .is_some_and(|f| f.is_empty()) =>
                    {
                        None
                    }
                    Ok(result) => Some(format!("failures: {}", result.response)),
                    Err(e) => Some(e.to_string()),
                }
            }
        })
        .buffer_unordered(knobs.concurrency)
        .filter_map(|f| async move { f })
        .collect()
        .await;
    let took = start.elapsed();
    let requests = proxy.counts.total();
    let by_operation = proxy
        .counts
        .timings()
        .into_iter()
        .map(|(op, (n, spent))| {
            format!(
                "{op} {:.2} (Σ {:.2} s at moto)",
                n as f64 / knobs.events as f64,
                spent.as_secs_f64()
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    if let Some(first) = failures.first() {
        return Err(format!("{} batches failed, first: {first}", failures.len()));
    }
    let view = store
        .get_job(&job_id)
        .await
        .map_err(err)?
        .ok_or("tally job vanished")?;
    let restored_objects = restored_objects(&store, &job_id).await.map_err(err)?;
    if view.restored() != unique as u64 || restored_objects != unique {
        let mut after: Option<String> = None;
        loop {
            let page = store
                .list_objects(&job_id, after.as_deref(), 1000)
                .await
                .map_err(err)?;
            for o in page
                .objects
                .iter()
                .filter(|o| o.state != shared::domain::state::ObjectState::Restored)
            {
                eprintln!("bench tally: not restored: {o:?}");
            }
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        return Err(format!(
            "final count wrong: the job counts {} restored, {restored_objects} object items are \
             restored, {unique} objects completed",
            view.restored()
        ));
    }
    eprintln!(
        "bench tally: {} events ({duplicates} duplicates) in {took:.2?}, {requests} DynamoDB requests; restored {} of {unique}; state {:?}",
        knobs.events,
        view.restored(),
        view.job.state
    );

    // The baseline: bare conditional UpdateItem, one per event, one at a time per batch the
    // tally runs at once, and again with as many in flight as the tally keeps (its object
    // writes go 16 at a time); the ratio is to the faster of the two.
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let mut updates_per_s: f64 = 0.0;
    for (round, in_flight) in [knobs.concurrency, knobs.concurrency * 16]
        .into_iter()
        .enumerate()
    {
        let start = Instant::now();
        let errors: Vec<String> = futures::stream::iter(0..knobs.events)
            .map(|i| {
                let (client, table) = (client.clone(), table.clone());
                async move {
                    use aws_sdk_dynamodb::types::AttributeValue;
                    client
                        .update_item()
                        .table_name(table)
                        .key("pk", AttributeValue::S(format!("BASELINE#{round}#{i}")))
                        .key("sk", AttributeValue::S("X".into()))
                        .update_expression("SET #s = :done")
                        .condition_expression("attribute_not_exists(#s)")
                        .expression_attribute_names("#s", "state")
                        .expression_attribute_values(":done", AttributeValue::S("restored".into()))
                        .send()
                        .await
                        .err()
                        .map(|e| format!("{e:?}"))
                }
            })
            .buffer_unordered(in_flight)
            .filter_map(|e| async move { e })
            .collect()
            .await;
        let baseline = start.elapsed();
        if let Some(first) = errors.first() {
            return Err(format!(
                "{} baseline updates failed, first: {first}",
                errors.len()
            ));
        }
        let rate = knobs.events as f64 / baseline.as_secs_f64();
        eprintln!("bench tally: baseline, {in_flight} in flight: {rate:.0} UpdateItem/s");
        updates_per_s = updates_per_s.max(rate);
    }
    let _ = client.delete_table().table_name(&table).send().await;
    Ok(RunResult {
        events_per_s: knobs.events as f64 / took.as_secs_f64(),
        seconds: took.as_secs_f64(),
        requests_per_event: requests as f64 / knobs.events as f64,
        by_operation,
        updates_per_s,
    })
}

/// Object items of the job in state `restored` (read back one by one, not from the counters).
async fn restored_objects(store: &dyn JobStore, job_id: &str) -> shared::Result<usize> {
    let mut restored = 0;
    let mut after: Option<String> = None;
    loop {
        let page = store.list_objects(job_id, after.as_deref(), 1000).await?;
        restored += page
            .objects
            .iter()
            .filter(|o| o.state == shared::domain::state::ObjectState::Restored)
            .count();
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(restored),
        }
    }
}

pub async fn run() -> Result<(), String> {
    let knobs = Knobs {
        events: env_number("BENCH_TALLY_EVENTS", 10_000) as usize,
        duplicate_percent: env_number("BENCH_TALLY_DUPLICATES", 20) as usize,
        batch: env_number("BENCH_TALLY_BATCH", 100).clamp(1, 10_000) as usize,
        concurrency: env_number("BENCH_TALLY_CONCURRENCY", 1).max(1) as usize,
        runs: env_number("BENCH_RUNS", 3).max(1) as usize,
    };
    let moto = tools::moto_endpoint()?;
    let proxy = proxy::start(&moto).await.map_err(|e| e.to_string())?;
    let mut results = Vec::new();
    for run in 0..knobs.runs {
        results.push(one_run(&knobs, &proxy, run).await?);
    }
    let events = median(&results.iter().map(|r| r.events_per_s).collect::<Vec<_>>());
    let updates = median(&results.iter().map(|r| r.updates_per_s).collect::<Vec<_>>());
    let per_event = median(
        &results
            .iter()
            .map(|r| r.requests_per_event)
            .collect::<Vec<_>>(),
    );
    let mut table = Table::new(["Tally", "figure (median)", "target"]);
    table.row([
        "events/s through the events handler".to_string(),
        format!("{events:.0}"),
        "—".into(),
    ]);
    table.row([
        "bare conditional UpdateItem/s (same emulator; the faster of 1 and 16 in flight)"
            .to_string(),
        format!("{updates:.0}"),
        "—".into(),
    ]);
    table.row([
        "events/s ÷ UpdateItem/s".to_string(),
        ratio(events, updates),
        "≥ 0.80×".into(),
    ]);
    table.row([
        "DynamoDB requests per event".to_string(),
        format!("{per_event:.2}"),
        "≤ 1.2".into(),
    ]);
    table.row([
        "final restored count".to_string(),
        "exact in every run".into(),
        "exact".into(),
    ]);
    let text = format!(
        "{} `ObjectRestore:Completed` events ({}% duplicates, shuffled) for one job, in SQS batches \
         of {} messages (the trigger's `BatchSize` in template.yaml), {} batches at a time, through `Completion::handle_events` (the tally that \
         `restore-events` runs) against moto's DynamoDB (the jobs table as deployed, stream \
         included). Requests counted at a loopback proxy \
         in front of moto (`bench/src/proxy.rs`); per event, by operation, with the time moto took \
         to answer them summed (last run, wall time {:.1} s): {}. \
         Median of {} runs.",
        knobs.events,
        knobs.duplicate_percent,
        knobs.batch,
        knobs.concurrency,
        results.last().map(|r| r.seconds).unwrap_or_default(),
        results.last().map(|r| r.by_operation.as_str()).unwrap_or(""),
        knobs.runs
    );
    write_fragment(
        "tally",
        "Tally: completion events into DynamoDB",
        &text,
        &table,
    )
    .map_err(|e| e.to_string())
}
