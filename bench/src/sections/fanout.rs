//! Fan-out: RestoreObject for every GLACIER object under a prefix, by our service (the whole
//! plan + restore + record path: `POST /api/v1/restore`, then the fan-out continuing the job as
//! `restore-fanout` would, job store on moto's DynamoDB), by `rclone backend restore` and by
//! `s3cmd restore --recursive`; against the latency-modelling endpoint and on plain moto.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use shared::adapters::dynamodb::DynamoJobStore;
use shared::adapters::s3::S3ObjectStore;
use shared::api::{fanout_settings, Api, ApiSettings};
use shared::domain::cost::PriceList;
use shared::domain::fanout::{Fanout, RunOutcome};
use shared::domain::storage::RestorePolicy;
use shared::ports::{JobStore, ObjectStore};

use crate::report::{median, ratio, write_fragment, Table};
use crate::s3_endpoint::{self, Catalogue, Op};
use crate::tools::{self, env_number};

const BUCKET: &str = "bench-assets";
const USER: &str = "bench@example.com";

/// Knobs (environment): objects, runs, latency, our rate limit, rclone's checkers.
struct Knobs {
    objects: usize,
    big: usize,
    s3cmd_objects: usize,
    moto_objects: usize,
    runs: usize,
    latency: Duration,
    rate_limit: u32,
    concurrency: usize,
    checkers: Vec<u64>,
}

impl Knobs {
    fn from_env() -> Self {
        Knobs {
            objects: env_number("BENCH_OBJECTS", 10_000) as usize,
            big: env_number("BENCH_BIG_OBJECTS", 100_000) as usize,
            s3cmd_objects: env_number("BENCH_S3CMD_OBJECTS", 1_000) as usize,
            moto_objects: env_number("BENCH_MOTO_OBJECTS", 2_000) as usize,
            runs: env_number("BENCH_RUNS", 3).max(1) as usize,
            latency: Duration::from_millis(env_number("BENCH_LATENCY_MS", 25)),
            rate_limit: env_number("BENCH_RATE_LIMIT", 1_000) as u32,
            concurrency: env_number("BENCH_CONCURRENCY", 64) as usize,
            checkers: std::env::var("BENCH_RCLONE_CHECKERS")
                .unwrap_or_else(|_| "32,64,128".into())
                .split(',')
                .filter_map(|c| c.trim().parse().ok())
                .collect(),
        }
    }
}

/// Our service, wired as the Lambdas wire it, with S3 and DynamoDB at separate endpoints.
/// One per run, with a table of its own: moto's transactions deep-copy the whole table (our
/// `create_job` is one), which DynamoDB does not, so a table holding the earlier runs' objects
/// would charge each run for them.
struct Ours {
    api: Api,
    jobs: Arc<DynamoJobStore>,
    db: aws_sdk_dynamodb::Client,
    table: String,
}

impl Ours {
    async fn new(s3_url: &str, dynamodb_url: &str, knobs: &Knobs) -> Result<Self, String> {
        let table = integration_tests::unique_name("bench-jobs");
        let pairs = [
            ("ASSET_BUCKET_LIST", BUCKET.to_string()),
            ("ALLOWED_USERS", USER.to_string()),
            ("JOBS_TABLE", table),
            ("SMTP_FROM", "restore@example.com".to_string()),
            ("AWS_DEFAULT_REGION", "us-east-1".to_string()),
            ("AWS_ACCESS_KEY_ID", tools::ACCESS_KEY.to_string()),
            ("AWS_SECRET_ACCESS_KEY", tools::SECRET_KEY.to_string()),
            ("RESTORE_RATE_LIMIT", knobs.rate_limit.to_string()),
            ("RESTORE_CONCURRENCY", knobs.concurrency.to_string()),
        ];
        let with_endpoint = |url: &str| {
            let mut p = pairs.to_vec();
            p.push(("AWS_ENDPOINT_URL", url.to_string()));
            p
        };
        let s3_pairs = with_endpoint(s3_url);
        let db_pairs = with_endpoint(dynamodb_url);
        let err = |e: shared::Error| e.to_string();
        let s3_config = tools::config(&s3_pairs).map_err(err)?;
        let db_config = tools::config(&db_pairs).map_err(err)?;
        let s3_sdk = shared::config::aws_sdk_config(&s3_config).await;
        let db_sdk = shared::config::aws_sdk_config(&db_config).await;
        let objects: Arc<dyn ObjectStore> = Arc::new(S3ObjectStore::from_sdk_config(&s3_sdk));
        let db = aws_sdk_dynamodb::Client::new(&db_sdk);
        let table = db_config.jobs_table.clone();
        let jobs = Arc::new(DynamoJobStore::new(db.clone(), table.clone()));
        jobs.ensure_table().await.map_err(err)?;
        let lookup = tools::lookup(&db_pairs);
        let fanout = Arc::new(Fanout::new(
            objects.clone(),
            jobs.clone(),
            fanout_settings(&db_config, &lookup).map_err(err)?,
        ));
        let mailer = shared::adapters::ses::mailer_from_lookup(&db_sdk, &lookup).map_err(err)?;
        let settings = ApiSettings {
            buckets: db_config.asset_buckets.clone(),
            allowed_users: db_config.allowed_users.clone(),
            approvers: vec![],
            project_url: None,
            prices: PriceList::select(None).map_err(err)?,
            policy: RestorePolicy::default(),
            plan_budget: shared::api::DEFAULT_PLAN_BUDGET,
            stats_validity: Duration::from_secs(300),
            background_fanout: false,
        };
        let api = Api::new(jobs.clone(), objects, mailer, fanout, settings);
        Ok(Ours {
            api,
            jobs,
            db,
            table,
        })
    }

    /// A fresh service (new table), one restore of `prefix`, the table dropped: the wall time.
    async fn restore_once(
        s3_url: &str,
        dynamodb_url: &str,
        knobs: &Knobs,
        project: &str,
        prefix: &str,
    ) -> Result<Duration, String> {
        let ours = Ours::new(s3_url, dynamodb_url, knobs).await?;
        let took = ours.restore(project, prefix).await;
        let _ = ours.db.delete_table().table_name(&ours.table).send().await;
        took
    }

    /// POST the restore, then continue the job until its listing is done; the wall time.
    async fn restore(&self, project: &str, prefix: &str) -> Result<Duration, String> {
        let body = serde_json::json!({
            "id": project, "user": USER, "path": prefix, "retrievalType": "Bulk"
        });
        let request = http::Request::builder()
            .method("POST")
            .uri("/api/v1/restore")
            .header("content-type", "application/json")
            .body(body.to_string().into_bytes())
            .map_err(|e| e.to_string())?;
        let start = Instant::now();
        let response = self.api.handle(request).await;
        if response.status() != http::StatusCode::ACCEPTED {
            return Err(format!(
                "POST /api/v1/restore answered {}: {}",
                response.status(),
                response.body()
            ));
        }
        let answer: serde_json::Value =
            serde_json::from_str(response.body()).map_err(|e| e.to_string())?;
        let job_id = answer["id"]
            .as_str()
            .ok_or_else(|| format!("no job id in {answer}"))?
            .to_string();
        loop {
            let deadline = Instant::now() + Duration::from_secs(900);
            match self.api.continue_fanout(&job_id, deadline).await {
                Ok(RunOutcome::ListingDone | RunOutcome::NothingToDo) => break,
                Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(e) => return Err(format!("fan-out of {job_id}: {e}")),
            }
        }
        let took = start.elapsed();
        let view = self
            .jobs
            .get_job(&job_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("job vanished")?;
        tracing_line(&format!(
            "ours: job {job_id} objects={} requested={}",
            view.job.totals.objects, view.job.totals.requested
        ));
        Ok(took)
    }
}

fn tracing_line(line: &str) {
    eprintln!("bench fanout: {line}");
}

/// Every one of `n` objects asked exactly once (the endpoint's per-key counts).
fn check_once(catalogue: &Catalogue, n: usize) -> Result<(), String> {
    let counts = catalogue.counts(Op::Restore);
    let twice = counts.values().filter(|c| **c > 1).count();
    if counts.len() != n || twice > 0 {
        return Err(format!(
            "{} of {n} objects requested, {twice} more than once",
            counts.len()
        ));
    }
    Ok(())
}

fn rate(n: usize, took: Duration) -> f64 {
    n as f64 / took.as_secs_f64()
}

/// One tool on the latency endpoint: `runs` fresh catalogues of `n` objects, the median rate.
async fn on_endpoint<F, Fut>(
    catalogue: &Catalogue,
    n: usize,
    runs: usize,
    name: &str,
    mut run: F,
) -> Result<f64, String>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<Duration, String>>,
{
    let mut rates = Vec::new();
    for i in 0..runs {
        catalogue.clear();
        let prefix = format!("p{i}-{}/", fastrand::u32(..));
        catalogue.fill_glacier(BUCKET, &prefix, n, 1 << 20);
        let took = run(prefix).await?;
        check_once(catalogue, n).map_err(|e| format!("{name}: {e}"))?;
        tracing_line(&format!(
            "{name}: {n} objects in {took:.2?} ({:.0}/s)",
            rate(n, took)
        ));
        rates.push(rate(n, took));
    }
    Ok(median(&rates))
}

async fn rclone_restore(
    endpoint: String,
    prefix: String,
    checkers: u64,
) -> Result<Duration, String> {
    tokio::task::spawn_blocking(move || {
        let mut cmd = tools::rclone(&endpoint);
        cmd.args([
            "backend",
            "restore",
            &format!("bench:{BUCKET}/{prefix}"),
            "-o",
            "priority=Bulk",
            "-o",
            "lifetime=1",
            "--checkers",
            &checkers.to_string(),
        ]);
        tools::timed(cmd, "rclone backend restore")
    })
    .await
    .map_err(|e| e.to_string())?
}

async fn s3cmd_restore(endpoint: String, prefix: String) -> Result<Duration, String> {
    tokio::task::spawn_blocking(move || {
        let dir = std::env::temp_dir().join(format!("bench-s3cmd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let mut cmd = tools::s3cmd(&endpoint, &dir).map_err(|e| e.to_string())?;
        cmd.args([
            "restore",
            "--recursive",
            "--restore-priority=bulk",
            "--restore-days=1",
            &format!("s3://{BUCKET}/{prefix}"),
        ]);
        tools::timed(cmd, "s3cmd restore")
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Creates `n` GLACIER objects under `prefix` in moto's S3.
async fn seed_moto(s3: &aws_sdk_s3::Client, prefix: &str, n: usize) -> Result<(), String> {
    let _ = s3.create_bucket().bucket(BUCKET).send().await;
    let results: Vec<Result<(), String>> = futures::stream::iter(0..n)
        .map(|i| {
            let s3 = s3.clone();
            let key = format!("{prefix}obj-{i:07}.mxf");
            async move {
                s3.put_object()
                    .bucket(BUCKET)
                    .key(&key)
                    .storage_class(aws_sdk_s3::types::StorageClass::Glacier)
                    .body(aws_sdk_s3::primitives::ByteStream::from_static(b"x"))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("seed {key}: {e:?}"))
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    results.into_iter().collect()
}

pub async fn run() -> Result<(), String> {
    let knobs = Knobs::from_env();
    let moto = tools::moto_endpoint()?;
    let endpoint = s3_endpoint::start(knobs.latency)
        .await
        .map_err(|e| e.to_string())?;
    let url = endpoint.url();
    let catalogue = endpoint.catalogue.clone();
    let n = knobs.objects;
    let mut table = Table::new([
        "Fan-out (RestoreObject per object)",
        "endpoint",
        "objects",
        "objects/s (median)",
        "ours ÷ this",
    ]);

    // --- latency endpoint ---
    // DynamoDB through the counting proxy: its per-operation timings profile our path.
    let proxy = crate::proxy::start(&moto)
        .await
        .map_err(|e| e.to_string())?;
    let proxy_url = proxy.url();
    let mut project = 0;
    let ours_rate = on_endpoint(&catalogue, n, knobs.runs, "ours", |prefix| {
        project += 1;
        proxy.counts.reset();
        let (url, proxy_url, knobs) = (&url, &proxy_url, &knobs);
        let project = format!("{}", 1_000_000 + project * 1000 + fastrand::u32(..1000));
        async move { Ours::restore_once(url, proxy_url, knobs, &project, &prefix).await }
    })
    .await?;
    if std::env::var_os("BENCH_OURS_ONLY").is_some() {
        // A developer's quick look at our path alone: nothing written.
        println!("ours: {ours_rate:.0} objects/s over {n} objects");
        for (op, (calls, took)) in proxy.counts.timings() {
            println!("  {op}: {calls} calls, Σ {:.1} s", took.as_secs_f64());
        }
        return Ok(());
    }
    let profile = proxy
        .counts
        .timings()
        .into_iter()
        .map(|(op, (calls, took))| format!("{op} {calls} calls, Σ {:.1} s", took.as_secs_f64()))
        .collect::<Vec<_>>()
        .join("; ");
    let mut best_rclone = (0.0, 0);
    for &checkers in &knobs.checkers {
        let r = on_endpoint(
            &catalogue,
            n,
            knobs.runs,
            &format!("rclone --checkers {checkers}"),
            |prefix| rclone_restore(url.clone(), prefix, checkers),
        )
        .await?;
        if r > best_rclone.0 {
            best_rclone = (r, checkers);
        }
    }
    let s3cmd_rate = on_endpoint(
        &catalogue,
        knobs.s3cmd_objects,
        knobs.runs,
        "s3cmd",
        |prefix| s3cmd_restore(url.clone(), prefix),
    )
    .await?;
    let latency = format!("latency {} ms", knobs.latency.as_millis());
    table.row([
        format!(
            "ours (rate limit {}/s, {} in flight)",
            knobs.rate_limit, knobs.concurrency
        ),
        latency.clone(),
        n.to_string(),
        format!("{ours_rate:.0}"),
        "—".into(),
    ]);
    table.row([
        format!(
            "rclone 1.60 `backend restore --checkers {}` (best of {:?})",
            best_rclone.1, knobs.checkers
        ),
        latency.clone(),
        n.to_string(),
        format!("{:.0}", best_rclone.0),
        ratio(ours_rate, best_rclone.0),
    ]);
    table.row([
        "s3cmd 2.3 `restore --recursive`".to_string(),
        latency.clone(),
        knobs.s3cmd_objects.to_string(),
        format!("{s3cmd_rate:.0}"),
        ratio(ours_rate, s3cmd_rate),
    ]);
    let mut notes = vec![
        format!(
            "ours ÷ rate limit: {} (target ≥ 0.90×); every object was requested exactly once in \
             every run (the endpoint's per-key RestoreObject counts).",
            ratio(ours_rate, knobs.rate_limit as f64)
        ),
        format!(
            "Profile of our last {n}-object run, DynamoDB answer times summed per operation at \
             the counting proxy: {profile}."
        ),
    ];

    if knobs.big > 0 {
        let big = on_endpoint(&catalogue, knobs.big, 1, "ours (big)", |prefix| {
            let (url, proxy_url, knobs) = (&url, &proxy_url, &knobs);
            let project = format!("{}", 2_000_000 + fastrand::u32(..1_000_000));
            async move { Ours::restore_once(url, proxy_url, knobs, &project, &prefix).await }
        })
        .await?;
        table.row([
            "ours (one run)".to_string(),
            latency.clone(),
            knobs.big.to_string(),
            format!("{big:.0}"),
            ratio(big, best_rclone.0),
        ]);
        notes.push(format!(
            "rclone asks for one restore at a time whatever `--checkers` says (its rate is about \
             one per endpoint latency), so a {}-object rclone run would take about {:.0} minutes; \
             the last row's ratio is to its {n}-object rate.",
            knobs.big,
            knobs.big as f64 / best_rclone.0.max(1.0) / 60.0
        ));
    }
    catalogue.clear();

    // --- plain moto: the emulator's own ceiling ---
    let m = knobs.moto_objects;
    if m > 0 {
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&integration_tests::aws_config().await)
                .force_path_style(true)
                .build(),
        );
        let mut rates = [Vec::new(), Vec::new(), Vec::new()];
        for i in 0..knobs.runs {
            for (tool, rates) in rates.iter_mut().enumerate() {
                let prefix = format!("m{i}-{tool}-{}/", fastrand::u32(..));
                let count = if tool == 2 {
                    m.min(knobs.s3cmd_objects)
                } else {
                    m
                };
                seed_moto(&s3, &prefix, count).await?;
                let took = match tool {
                    0 => {
                        let project = format!("{}", 3_000_000 + i * 1000 + fastrand::usize(..1000));
                        Ours::restore_once(&moto, &moto, &knobs, &project, &prefix).await?
                    }
                    1 => rclone_restore(moto.clone(), prefix, best_rclone.1).await?,
                    _ => s3cmd_restore(moto.clone(), prefix).await?,
                };
                tracing_line(&format!("moto tool {tool}: {count} in {took:.2?}"));
                rates.push(rate(count, took));
            }
        }
        let [o, r, s] = rates.map(|r| median(&r));
        table.row([
            "ours".to_string(),
            "plain moto".into(),
            m.to_string(),
            format!("{o:.0}"),
            "—".into(),
        ]);
        table.row([
            format!("rclone `--checkers {}`", best_rclone.1),
            "plain moto".into(),
            m.to_string(),
            format!("{r:.0}"),
            ratio(o, r),
        ]);
        table.row([
            "s3cmd".to_string(),
            "plain moto".into(),
            m.min(knobs.s3cmd_objects).to_string(),
            format!("{s:.0}"),
            ratio(o, s),
        ]);
        notes.push(
            "On plain moto the emulator itself is the ceiling (it serialises requests), so the \
             tools come out close together there; ours also records its objects (one \
             BatchWriteItem per 25) in the same moto, which the other tools don't."
                .into(),
        );
    }

    let text = format!(
        "GLACIER objects restored (Bulk) per second, wall time from the first request to the \
         last answer, median of {} runs (the {}-object row: one run). The latency endpoint \
         (`bench/src/s3_endpoint.rs`, an `s3s` server over an in-memory catalogue) waits {} ms \
         before every answer and has no concurrency cap; our job store is moto's DynamoDB in \
         every row. s3cmd works one object at a time, so it gets {} objects.\n\n{}",
        knobs.runs,
        knobs.big,
        knobs.latency.as_millis(),
        knobs.s3cmd_objects,
        notes.join("\n")
    );
    write_fragment("fanout", "Fan-out: RestoreObject throughput", &text, &table)
        .map_err(|e| e.to_string())
}
