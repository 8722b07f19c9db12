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

/// Hands the on-premises copy to the cluster (a Kubernetes Job in production).
#[async_trait]
pub trait Dispatcher: Send + Sync {
    async fn dispatch(&self, request: &DispatchRequest) -> Result<DispatchStatus>;
}
