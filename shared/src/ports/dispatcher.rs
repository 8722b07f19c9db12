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

/// The Kubernetes Job name of a restore job: `restore-<id>`, a valid DNS label (at most 63
/// lowercase alphanumerics and `-`), the same for the same id every time, so a re-dispatch
/// finds the first Job. Ids that are not already clean labels get a hash suffix, so two ids
/// never share a name after sanitising or truncation. Every dispatcher names Jobs this way.
pub fn job_name(job_id: &str) -> String {
    const MAX_NAME: usize = 63;
    let mut clean = String::with_capacity(job_id.len());
    for c in job_id.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            clean.push(c);
        } else if !clean.ends_with('-') {
            clean.push('-');
        }
    }
    let clean = clean.trim_matches('-');
    let plain = format!("restore-{clean}");
    if clean == job_id && plain.len() <= MAX_NAME {
        return plain;
    }
    let suffix = format!("{:016x}", fnv1a64(job_id.as_bytes()));
    let room = MAX_NAME - "restore-".len() - 1 - suffix.len();
    let head = clean[..clean.len().min(room)].trim_end_matches('-');
    if head.is_empty() {
        format!("restore-{suffix}")
    } else {
        format!("restore-{head}-{suffix}")
    }
}

/// FNV-1a: a stable (across builds and platforms) hash for name suffixes; not for security.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
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

/// Where a dispatch of a restore job goes: known before any API call, so a failed attempt can
/// still name the Job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchTarget {
    /// [`job_name`] of the restore job.
    pub name: String,
    /// Namespace, when the dispatcher has one.
    pub namespace: Option<String>,
}

/// Hands the on-premises copy to the cluster (a Kubernetes Job in production).
#[async_trait]
pub trait Dispatcher: Send + Sync {
    /// The Job name (and namespace) a dispatch of `job_id` uses.
    fn target(&self, job_id: &str) -> DispatchTarget {
        DispatchTarget {
            name: job_name(job_id),
            namespace: None,
        }
    }

    /// Starts the copy; idempotent per `job_id` (a second call reports `created: false`).
    async fn dispatch(&self, request: &DispatchRequest) -> Result<DispatchStatus>;

    /// Where the copy of `job_id` stands; `None` when it was never dispatched or has been
    /// cleaned up (the Job's TTL expired). Dispatchers that can't tell answer `None`.
    async fn status(&self, _job_id: &str) -> Result<Option<CopyStatus>> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_dns_label(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= 63
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-')
            && !name.ends_with('-')
    }

    #[test]
    fn job_name_is_plain_for_clean_ids() {
        assert_eq!(job_name("01hx3k9z"), "restore-01hx3k9z");
        assert_eq!(
            job_name("3f2a8c1e-0d4b-4a59-9a55-0c9d2e7f1b6a"),
            "restore-3f2a8c1e-0d4b-4a59-9a55-0c9d2e7f1b6a"
        );
    }

    #[test]
    fn job_name_is_a_deterministic_dns_label_for_any_id() {
        let ids = [
            "01HX3K9Z",
            "Project_42/Job 7",
            "--",
            "ü",
            &"x".repeat(200),
            "a.b",
            "a-b",
        ];
        for id in ids {
            let name = job_name(id);
            assert!(is_dns_label(&name), "{id:?} gave {name:?}");
            assert_eq!(name, job_name(id), "not deterministic for {id:?}");
        }
        // Ids that sanitise alike still get distinct names.
        assert_ne!(job_name("A_b"), job_name("a-b"));
        assert_ne!(job_name("a.b"), job_name("a-b"));
        assert_ne!(
            job_name(&format!("{}1", "x".repeat(100))),
            job_name(&format!("{}2", "x".repeat(100)))
        );
    }
}
