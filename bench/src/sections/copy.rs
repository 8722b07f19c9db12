//! On-prem copy: `restore-worker` (release build) downloading a job's restored objects into a
//! local directory vs `rclone copy` of the same objects, both from the latency endpoint at the
//! same concurrency; objects of 1 KiB and of 64 MiB.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use md5::{Digest, Md5};
use shared::domain::manifest::{Report, ReportObject, ReportTotals};
use shared::domain::state::{JobState, ObjectState};
use shared::domain::storage::{RetrievalTier, StorageClass};

use crate::report::{median, ratio, write_fragment, Table};
use crate::s3_endpoint::{self, Catalogue, Entry, Restore};
use crate::tools::{self, env_number};

const BUCKET: &str = "bench-copy";
const MANIFESTS: &str = "bench-manifests";

fn md5_hex(data: &[u8]) -> String {
    Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `count` restored GLACIER objects of `size` bytes under `prefix`, and the job report naming
/// them (at `s3://bench-manifests/<prefix>report.json`). One shared random buffer; its MD5 is
/// the ETag, so the worker's same-bytes check runs as against S3.
fn fill(catalogue: &Catalogue, prefix: &str, count: usize, size: usize) -> String {
    let data: Vec<u8> = std::iter::repeat_with(|| fastrand::u8(..))
        .take(size)
        .collect();
    let etag = md5_hex(&data);
    let data = Bytes::from(data);
    let now = time::OffsetDateTime::now_utc();
    let mut objects = Vec::new();
    for n in 0..count {
        let key = format!("{prefix}file-{n:06}.bin");
        catalogue.put(
            BUCKET,
            &key,
            Entry {
                storage_class: "GLACIER",
                data: data.clone(),
                restore: Restore::Done,
                etag: etag.clone(),
            },
        );
        objects.push(ReportObject {
            bucket: BUCKET.into(),
            key,
            version_id: None,
            size: size as u64,
            storage_class: StorageClass::Glacier,
            state: ObjectState::Restored,
            expiry: None,
            error: None,
        });
    }
    let report = Report {
        job_id: format!("copy-{}", fastrand::u32(..)),
        project_id: "copy".into(),
        prefix: prefix.into(),
        local_base: None,
        tier: RetrievalTier::Bulk,
        state: JobState::Completed,
        created_at: now,
        finished_at: now,
        totals: ReportTotals {
            objects: count as u64,
            bytes: (count * size) as u64,
            restored: count as u64,
            ..Default::default()
        },
        cost_cents: 0,
        objects,
    };
    let key = format!("{prefix}report.json");
    let json = serde_json::to_vec(&report).expect("report serialises");
    catalogue.put(
        MANIFESTS,
        &key,
        Entry {
            storage_class: "STANDARD",
            etag: md5_hex(&json),
            data: Bytes::from(json),
            restore: Restore::None,
        },
    );
    format!("s3://{MANIFESTS}/{key}")
}

/// Files under `dir` and their total size.
fn tally_dir(dir: &Path) -> (usize, u64) {
    let mut files = 0;
    let mut bytes = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let meta = entry.metadata().expect("metadata");
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                files += 1;
                bytes += meta.len();
            }
        }
    }
    (files, bytes)
}

fn fresh_dir(name: &str) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("bench-copy-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    Ok(dir)
}

fn worker(
    endpoint: &str,
    manifest: &str,
    dir: &Path,
    concurrency: usize,
) -> Result<Duration, String> {
    let mut cmd = tools::command(tools::release_binary("restore-worker"));
    cmd.env("AWS_ENDPOINT_URL", endpoint)
        .env("S3_FORCE_PATH_STYLE", "true")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", tools::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", tools::SECRET_KEY)
        .env("MANIFEST_URI", manifest)
        .env("BASE_PATH", dir)
        .env("WORKER_CONCURRENCY", concurrency.to_string())
        .env("RUST_LOG", "warn");
    tools::timed(cmd, "restore-worker")
}

fn rclone_copy(
    endpoint: &str,
    prefix: &str,
    dir: &Path,
    concurrency: usize,
) -> Result<Duration, String> {
    let mut cmd = tools::rclone(endpoint);
    cmd.arg("copy")
        .arg(format!("bench:{BUCKET}/{prefix}"))
        .arg(dir.join(prefix))
        .args([
            "--transfers",
            &concurrency.to_string(),
            "--checkers",
            &concurrency.to_string(),
        ]);
    tools::timed(cmd, "rclone copy")
}

pub async fn run() -> Result<(), String> {
    let runs = env_number("BENCH_RUNS", 3).max(1) as usize;
    let concurrency = env_number("BENCH_COPY_CONCURRENCY", 16) as usize;
    let latency = Duration::from_millis(env_number("BENCH_LATENCY_MS", 25));
    let endpoint = s3_endpoint::start(latency)
        .await
        .map_err(|e| e.to_string())?;
    let url = endpoint.url();
    let catalogue = endpoint.catalogue.clone();
    let cases = [
        (
            "1 KiB",
            env_number("BENCH_COPY_SMALL", 1_000) as usize,
            1024usize,
        ),
        (
            "64 MiB",
            env_number("BENCH_COPY_LARGE", 8) as usize,
            64 << 20,
        ),
    ];
    let mut table = Table::new([
        "On-prem copy",
        "objects",
        "restore-worker",
        "rclone copy",
        "worker ÷ rclone",
    ]);
    for (label, count, size) in cases {
        if count == 0 {
            continue;
        }
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for i in 0..runs {
            catalogue.clear();
            let prefix = format!("c{i}-{}/", fastrand::u32(..));
            let manifest = fill(&catalogue, &prefix, count, size);
            for tool in ["worker", "rclone"] {
                let dir = fresh_dir(tool)?;
                let url = url.clone();
                let (m, p, d) = (manifest.clone(), prefix.clone(), dir.clone());
                let took = tokio::task::spawn_blocking(move || match tool {
                    "worker" => worker(&url, &m, &d, concurrency),
                    _ => rclone_copy(&url, &p, &d, concurrency),
                })
                .await
                .map_err(|e| e.to_string())??;
                let (files, bytes) = tally_dir(&dir);
                let _ = std::fs::remove_dir_all(&dir);
                if files != count || bytes != (count * size) as u64 {
                    return Err(format!("{tool} copied {files} files / {bytes} bytes, expected {count} of {size} bytes"));
                }
                eprintln!("bench copy: {tool} {count} × {label} in {took:.2?}");
                let figure = if size >= 1 << 20 {
                    (count * size) as f64 / (1 << 20) as f64 / took.as_secs_f64()
                } else {
                    count as f64 / took.as_secs_f64()
                };
                if tool == "worker" {
                    ours.push(figure)
                } else {
                    theirs.push(figure)
                }
            }
        }
        let unit = if size >= 1 << 20 {
            "MiB/s"
        } else {
            "objects/s"
        };
        let (o, t) = (median(&ours), median(&theirs));
        table.row([
            format!("{label} objects"),
            count.to_string(),
            format!("{o:.0} {unit}"),
            format!("{t:.0} {unit}"),
            ratio(o, t),
        ]);
    }
    let text = format!(
        "Download of a job's restored objects into an empty local directory, wall time of the \
         whole process (start, report read, listing, downloads, fsync/rename as each tool does \
         it), median of {runs} runs; both tools at {concurrency} transfers, against the latency \
         endpoint ({} ms per request). Every file's count and size is checked afterwards.",
        latency.as_millis()
    );
    write_fragment("copy", "On-prem copy", &text, &table).map_err(|e| e.to_string())
}
