use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::Result;

/// What the on-premises copy needs to know about a finished restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchRequest {
    pub job_id: String,
    pub project_id: String,
    /// `s3://bucket/key` of the JSON report listing the restored objects.
    pub manifest_uri: String,
    /// Local assets root the files are copied under (DESIGN §3 path mapping).
    pub local_base: String,
}

/// Where a dispatched copy stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchStatus {
    /// Name of the Kubernetes Job (deterministic per restore job).
    pub name: String,
    /// True when this call created it, false when it already existed.
    pub created: bool,
}

/// Phase of a dispatched copy, as the status API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CopyPhase {
    /// Created, no pod running yet.
    Pending,
    /// A worker pod is copying.
    Running,
    /// Every object was copied or already present.
    Succeeded,
    /// The worker gave up (conflicts, failed objects, or retries exhausted).
    Failed,
}

/// Where the on-premises copy of a job stands (for `GET /api/v1/restore/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyStatus {
    /// Name of the Kubernetes Job.
    pub name: String,
    pub phase: CopyPhase,
    /// Pods running now.
    pub active: u32,
    /// Pods that finished successfully.
    pub succeeded: u32,
    /// Pods that failed (each retry up to `backoffLimit` counts).
    pub failed: u32,
    /// Why the Job failed, from its `Failed` condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Hands the on-premises copy to the cluster (a Kubernetes Job in production).
#[async_trait]
pub trait Dispatcher: Send + Sync {
    /// Starts the copy; idempotent per `job_id` (a second call reports `created: false`).
    async fn dispatch(&self, request: &DispatchRequest) -> Result<DispatchStatus>;

    /// Where the copy of `job_id` stands; `None` when it was never dispatched or has been
    /// cleaned up (the Job's TTL expired). Dispatchers that can't tell answer `None`.
    async fn status(&self, _job_id: &str) -> Result<Option<CopyStatus>> {
        Ok(None)
    }
}
