//! The JSON report of a finished job: written to `MANIFEST_BUCKET` by the finalizer and read by
//! the on-premises copy worker. Its shape is a contract between the two; extend, don't rename.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::state::{JobState, ObjectState};
use super::storage::{RetrievalTier, StorageClass};

/// One object of a job as it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportObject {
    pub bucket: String,
    /// The key as stored in S3 (not URL-encoded).
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    pub size: u64,
    pub storage_class: StorageClass,
    pub state: ObjectState,
    /// When the restored copy expires, if known.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expiry: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Counts of a finished job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportTotals {
    pub objects: u64,
    pub bytes: u64,
    pub restored: u64,
    pub not_needed: u64,
    pub failed: u64,
}

/// The whole report (`s3://MANIFEST_BUCKET/<job_id>/report.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub job_id: String,
    pub project_id: String,
    /// S3 prefix restored (DESIGN §3 path mapping).
    pub prefix: String,
    /// Local assets root the files belong under on premises, when the path had `/Assets/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_base: Option<String>,
    pub tier: RetrievalTier,
    pub state: JobState,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
    pub totals: ReportTotals,
    /// Estimated cost of the chosen tier in cents (USD).
    pub cost_cents: u64,
    pub objects: Vec<ReportObject>,
}
