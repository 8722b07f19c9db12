//! The on-premises copy worker (DESIGN §6): reads the report of a finished restore and copies
//! every restored object to `BASE_PATH/<key>`, in parallel, streaming, never overwriting, and
//! resumable after a crash. Runs as the entrypoint of the Job the kube shim creates.

pub mod aws;
pub mod config;
pub mod copy;
pub mod plan;

use futures::StreamExt;
use serde::Serialize;
use shared::domain::manifest::Report;
use shared::{Error, Result};

pub use config::{S3Location, WorkerConfig};
pub use copy::{Copier, Outcome};

/// How often a long run logs its progress.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// One object the worker could not copy, or would not overwrite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub bucket: String,
    pub key: String,
    pub reason: String,
}

/// What a run did; printed as JSON at the end of the run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub job_id: String,
    pub base_path: String,
    /// Objects the report asked to copy.
    pub objects: usize,
    pub bytes_copied: u64,
    /// Keys downloaded by this run.
    pub copied: Vec<String>,
    /// Keys whose destination already held the same content.
    pub skipped: Vec<String>,
    /// Destinations holding other content: left untouched.
    pub conflicts: Vec<Problem>,
    /// Objects that could not be copied (including keys refused as unsafe).
    pub failed: Vec<Problem>,
    /// Objects the restore did not bring back; not copied, not counted as failures here.
    pub not_restored: Vec<String>,
    /// `.part` files of an interrupted earlier run that were removed.
    pub stale_parts_removed: usize,
}

impl Summary {
    /// True when every object is in place: the process exits 0 only then.
    pub fn is_success(&self) -> bool {
        self.conflicts.is_empty() && self.failed.is_empty()
    }
}

/// Reads and parses the report at `location`.
pub async fn read_report(s3: &aws_sdk_s3::Client, location: &S3Location) -> Result<Report> {
    let response = s3
        .get_object()
        .bucket(&location.bucket)
        .key(&location.key)
        .send()
        .await
        .map_err(|e| {
            Error::upstream(
                "s3",
                format!(
                    "reading the report {location}: {}",
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                ),
            )
        })?;
    let bytes = response
        .body
        .collect()
        .await
        .map_err(|e| Error::upstream("s3", format!("reading the report {location}: {e}")))?
        .into_bytes();
    serde_json::from_slice(&bytes).map_err(|e| {
        Error::validation(
            "invalid_report",
            format!("the report {location} is not a valid restore report: {e}"),
        )
    })
}

/// One full run: read the report, remove stale partial downloads, copy everything in parallel.
/// An `Err` means nothing was attempted (bad manifest or base path); per-object problems are in
/// the summary.
pub async fn run(s3: &aws_sdk_s3::Client, config: &WorkerConfig) -> Result<Summary> {
    let report = read_report(s3, &config.manifest).await?;
    if let Some(expected) = &config.expected_job_id {
        if &report.job_id != expected {
            return Err(Error::validation(
                "report_job_mismatch",
                format!(
                    "the report {} belongs to job {}, not to JOB_ID {expected}",
                    config.manifest, report.job_id
                ),
            ));
        }
    }
    // BASE_PATH is a mount: if it is missing, copying into a fresh directory would hide the
    // files from the storage, so it must exist already.
    let base = tokio::fs::canonicalize(&config.base_path)
        .await
        .ok()
        .filter(|p| p.is_dir())
        .ok_or_else(|| {
            Error::Config(format!(
                "BASE_PATH {} does not exist or is not a directory",
                config.base_path.display()
            ))
        })?;
    let job_id = report.job_id.clone();
    let plan = plan::plan(&report);
    let copier = Copier::new(s3.clone(), base, config.owner_uid, config.owner_gid)
        .with_checksum(config.checksum);
    let mut summary = Summary {
        job_id: job_id.clone(),
        base_path: config.base_path.display().to_string(),
        objects: plan.items.len() + plan.rejected.len(),
        not_restored: plan.not_restored.clone(),
        ..Summary::default()
    };
    for rejected in &plan.rejected {
        tracing::error!(job_id = %job_id, bucket = %rejected.bucket, key = %rejected.key, reason = %rejected.reason, "unsafe key refused");
        summary.failed.push(Problem {
            bucket: rejected.bucket.clone(),
            key: rejected.key.clone(),
            reason: rejected.reason.clone(),
        });
    }
    summary.stale_parts_removed = copier.remove_stale_parts(&plan.items).await;
    tracing::info!(job_id = %job_id, objects = plan.items.len(), concurrency = config.concurrency, "copy started");

    let copier = &copier;
    let total = plan.items.len();
    let mut outcomes = futures::stream::iter(plan.items)
        .map(|item| async move {
            let outcome = copier.copy(&item).await;
            (item, outcome)
        })
        .buffer_unordered(config.concurrency);
    let mut done = 0usize;
    let mut last_progress = std::time::Instant::now();
    while let Some((item, outcome)) = outcomes.next().await {
        done += 1;
        let problem = |reason: String| Problem {
            bucket: item.bucket.clone(),
            key: item.key.clone(),
            reason,
        };
        match outcome {
            Outcome::Copied { bytes } => {
                tracing::debug!(job_id = %job_id, key = %item.key, bytes, "copied");
                summary.bytes_copied += bytes;
                summary.copied.push(item.key);
            }
            Outcome::Skipped => {
                tracing::debug!(job_id = %job_id, key = %item.key, "already present");
                summary.skipped.push(item.key);
            }
            Outcome::Conflict(reason) => {
                tracing::warn!(job_id = %job_id, bucket = %item.bucket, key = %item.key, reason = %reason, "not overwritten");
                summary.conflicts.push(problem(reason));
            }
            Outcome::Failed(reason) => {
                tracing::error!(job_id = %job_id, bucket = %item.bucket, key = %item.key, reason = %reason, "copy failed");
                summary.failed.push(problem(reason));
            }
        }
        // Long copies say how far they are, at most every 30 s.
        if last_progress.elapsed() >= PROGRESS_EVERY {
            last_progress = std::time::Instant::now();
            tracing::info!(job_id = %job_id, done, total, bytes_copied = summary.bytes_copied, "copy progress");
        }
    }
    summary.copied.sort();
    summary.skipped.sort();
    summary.conflicts.sort_by(|a, b| a.key.cmp(&b.key));
    summary.failed.sort_by(|a, b| a.key.cmp(&b.key));
    tracing::info!(
        job_id = %job_id,
        copied = summary.copied.len(),
        skipped = summary.skipped.len(),
        conflicts = summary.conflicts.len(),
        failed = summary.failed.len(),
        bytes_copied = summary.bytes_copied,
        "copy finished"
    );
    Ok(summary)
}
