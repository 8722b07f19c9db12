//! Sweep: a job whose completion events never came, every object past its window, swept by
//! `Completion::sweep` (what `restore-sweeper` runs): HeadObject against the latency endpoint,
//! the job store on moto's DynamoDB. Our configured HeadObjects in flight against one at a
//! time (how the sweeper worked before), on the same catalogue and emulator.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use shared::adapters::dynamodb::DynamoJobStore;
use shared::adapters::memory::MemoryMailer;
use shared::adapters::s3::S3ObjectStore;
use shared::domain::completion::{Completion, CompletionSettings, SWEEP_HEADS_IN_FLIGHT};
use shared::domain::cost::PriceList;
use shared::ports::JobStore;

use crate::proxy;
use crate::report::{median, ratio, write_fragment, Table};
use crate::s3_endpoint::{self, Catalogue, Entry, Op, Restore};
use crate::tools::{self, env_number};

const BUCKET: &str = "bench-sweep";
const MANIFESTS: &str = "bench-manifests";

struct Knobs {
    objects: usize,
    runs: usize,
    latency: Duration,
}

/// One sweep of a fresh job of `n` restored objects (a fresh table too) at `in_flight`
/// HeadObjects: objects settled per second, after checking that each was settled once and
/// asked for once.
async fn one_run(
    catalogue: &Catalogue,
    s3_url: &str,
    dynamodb: &proxy::Proxy,
    n: usize,
    in_flight: usize,
) -> Result<RunResult, String> {
    let table = integration_tests::unique_name("bench-sweep");
    let prefix = format!("{}/", integration_tests::unique_name("sweep"));
    let keys: Vec<String> = (0..n)
        .map(|i| format!("{prefix}Assets/clip {i:06}.mxf"))
        .collect();
    catalogue.clear();
    catalogue.create_bucket(MANIFESTS);
    for key in &keys {
        catalogue.put(
            BUCKET,
            key,
            Entry {
                storage_class: "GLACIER",
                data: Bytes::from_static(b"x"),
                restore: Restore::Done,
                etag: format!("{:032x}", 1),
            },
        );
    }
    let pairs = |url: &str| tools::store_pairs(&table, url);
    let err = |e: shared::Error| e.to_string();
    let s3_sdk = shared::config::aws_sdk_config(&tools::config(&pairs(s3_url)).map_err(err)?).await;
    let db_sdk =
        shared::config::aws_sdk_config(&tools::config(&pairs(&dynamodb.url())).map_err(err)?).await;
    let store = Arc::new(DynamoJobStore::new(
        aws_sdk_dynamodb::Client::new(&db_sdk),
        table.clone(),
    ));
    store.ensure_table().await.map_err(err)?;
    let objects: Vec<(&str, u64)> = keys.iter().map(|k| (k.as_str(), 1)).collect();
    let job_id = integration_tests::unique_name("sweep-job");
    integration_tests::restoring_job(
        store.as_ref(),
        &job_id,
        "sweep",
        "bench@example.com",
        BUCKET,
        &objects,
    )
    .await;

    let mut settings = CompletionSettings::new(MANIFESTS, PriceList::aws());
    settings.window_override = Some(Duration::ZERO);
    settings.sweep_heads_in_flight = in_flight;
    // The job is finalized at the end of the sweep, as in a real one (manifest written to the
    // endpoint, the mail kept in memory).
    let mailer = Arc::new(MemoryMailer::new());
    let completion = Completion::new(
        store.clone(),
        Arc::new(S3ObjectStore::from_sdk_config(&s3_sdk)),
        Some(mailer.clone()),
        None,
        settings,
    );
    dynamodb.counts.reset();
    let start = Instant::now();
    let report = completion
        .sweep(time::OffsetDateTime::now_utc())
        .await
        .map_err(err)?;
    let took = start.elapsed();
    let by_operation = dynamodb
        .counts
        .timings()
        .into_iter()
        .map(|(op, (calls, spent))| {
            format!(
                "{op} {:.2} (Σ {:.1} s at moto)",
                calls as f64 / n as f64,
                spent.as_secs_f64()
            )
        })
        .collect::<Vec<_>>()
        .join(", ");

    let heads = catalogue.counts(Op::Head);
    let asked_once = keys
        .iter()
        .filter(|k| heads.get(k.as_str()) == Some(&1))
        .count();
    let view = store
        .get_job(&job_id)
        .await
        .map_err(err)?
        .ok_or("the job is gone")?;
    if report.restored != n
        || view.settled.restored as usize != n
        || asked_once != n
        || report.finalized != [job_id.clone()]
        || mailer.sent().len() != 1
    {
        return Err(format!(
            "{in_flight} in flight: {} settled by the sweep, {} counted, {asked_once} of {n} \
             objects asked exactly once, finalized {:?}, {} mails",
            report.restored,
            view.settled.restored,
            report.finalized,
            mailer.sent().len()
        ));
    }
    Ok(RunResult {
        objects_per_s: n as f64 / took.as_secs_f64(),
        seconds: took.as_secs_f64(),
        by_operation,
    })
}

struct RunResult {
    objects_per_s: f64,
    seconds: f64,
    /// DynamoDB calls per object by operation, with the time moto spent answering them.
    by_operation: String,
}

pub async fn run() -> Result<(), String> {
    let knobs = Knobs {
        objects: env_number("BENCH_SWEEP_OBJECTS", 5000) as usize,
        runs: env_number("BENCH_RUNS", 3).max(1) as usize,
        latency: Duration::from_millis(env_number("BENCH_LATENCY_MS", 25)),
    };
    let moto = tools::moto_endpoint()?;
    let dynamodb = proxy::start(&moto).await.map_err(|e| e.to_string())?;
    let endpoint = s3_endpoint::start(knobs.latency)
        .await
        .map_err(|e| format!("latency endpoint: {e}"))?;
    let url = endpoint.url();
    let catalogue = endpoint.catalogue.clone();
    // One at a time gets a tenth of the objects: it would take minutes otherwise.
    let serial_n = (knobs.objects / 10).max(100);

    let mut ours_runs = Vec::new();
    let mut serial_runs = Vec::new();
    for run in 0..knobs.runs {
        eprintln!("sweep: run {} of {}", run + 1, knobs.runs);
        let n = knobs.objects;
        ours_runs.push(one_run(&catalogue, &url, &dynamodb, n, SWEEP_HEADS_IN_FLIGHT).await?);
        serial_runs.push(one_run(&catalogue, &url, &dynamodb, serial_n, 1).await?);
    }
    let rate =
        |runs: &[RunResult]| median(&runs.iter().map(|r| r.objects_per_s).collect::<Vec<_>>());
    let (ours, serial) = (rate(&ours_runs), rate(&serial_runs));
    // The breakdown of the run closest to our median.
    let mid = ours_runs
        .iter()
        .min_by(|a, b| {
            let off = |r: &RunResult| (r.objects_per_s - ours).abs();
            off(a).total_cmp(&off(b))
        })
        .ok_or("no runs")?;

    let mut table = Table::new(["Sweep", "objects", "objects/s", "÷ one at a time"]);
    table.row(vec![
        format!("{SWEEP_HEADS_IN_FLIGHT} HeadObjects in flight (as deployed)"),
        knobs.objects.to_string(),
        format!("{ours:.0}"),
        ratio(ours, serial),
    ]);
    table.row(vec![
        "one HeadObject at a time (the sweeper before 2026-12-06)".into(),
        serial_n.to_string(),
        format!("{serial:.0}"),
        "1.00×".into(),
    ]);
    let text = format!(
        "A job whose completion events never came: every object restored, its window passed \
         (`window_override` zero), swept by `Completion::sweep`, the code `restore-sweeper` \
         runs. HeadObject against the latency endpoint ({} ms per request), the job store on \
         moto's DynamoDB (each page of 500 objects settled as one batch: a receipt, one \
         conditional update per object, one count). Objects settled per second of the sweep, \
         median of {} runs, each on a fresh job and table; every object was asked for once \
         and counted once (the endpoint's per-key counts, the job's counters). No other tool \
         does this; the comparison is the sweeper's own serial path. On S3 (tens of ms per \
         HeadObject) the serial sweeper checks ~40 objects/s, ~35,000 in a 15-minute run. \
         DynamoDB requests per object in our median run ({:.1} s), counted at a loopback proxy \
         in front of moto: {}.",
        knobs.latency.as_millis(),
        knobs.runs,
        mid.seconds,
        mid.by_operation
    );
    write_fragment(
        "sweep",
        "Sweep: objects whose event never came",
        &text,
        &table,
    )
    .map_err(|e| format!("writing the fragment: {e}"))
}
