//! In-memory [`Dispatcher`]: records on-premises copy dispatches, idempotent per job id like
//! the Kubernetes shim (a re-dispatch of the same job creates nothing new).

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::ports::{job_name, DispatchRequest, DispatchStatus, Dispatcher};
use crate::{Error, Result};

#[derive(Default)]
struct Inner {
    dispatched: Vec<DispatchRequest>,
    calls: usize,
    failures: VecDeque<String>,
}

/// Records dispatches; the first per job id is `created`, repeats are not.
#[derive(Default)]
pub struct MemoryDispatcher {
    inner: Mutex<Inner>,
}

impl MemoryDispatcher {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Distinct dispatches (one per job id), in order.
    pub fn dispatched(&self) -> Vec<DispatchRequest> {
        self.lock().dispatched.clone()
    }

    /// Every call to `dispatch`, repeats and failures included.
    pub fn calls(&self) -> usize {
        self.lock().calls
    }

    /// Makes the next dispatch fail with an upstream error.
    pub fn fail_next(&self, message: &str) {
        self.lock().failures.push_back(message.to_string());
    }
}

#[async_trait]
impl Dispatcher for MemoryDispatcher {
    async fn dispatch(&self, request: &DispatchRequest) -> Result<DispatchStatus> {
        let mut inner = self.lock();
        inner.calls += 1;
        if let Some(message) = inner.failures.pop_front() {
            return Err(Error::upstream("kubernetes", message));
        }
        let name = job_name(&request.job_id);
        let created = !inner.dispatched.iter().any(|d| d.job_id == request.job_id);
        if created {
            inner.dispatched.push(request.clone());
        }
        Ok(DispatchStatus { name, created })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(job_id: &str) -> DispatchRequest {
        DispatchRequest {
            job_id: job_id.into(),
            project_id: "42".into(),
            manifest_uri: format!("s3://manifests/{job_id}/report.json"),
            local_base: "/srv/Assets/".into(),
        }
    }

    #[tokio::test]
    async fn dispatch_is_idempotent_per_job() {
        let d = MemoryDispatcher::new();
        let first = d.dispatch(&request("Job_1")).await.unwrap();
        assert!(first.created);
        assert_eq!(first.name, job_name("Job_1"));
        let again = d.dispatch(&request("Job_1")).await.unwrap();
        assert!(!again.created);
        assert_eq!(again.name, first.name);
        assert!(d.dispatch(&request("job-2")).await.unwrap().created);
        assert_eq!(d.dispatched().len(), 2);
        assert_eq!(d.calls(), 3);
    }

    #[tokio::test]
    async fn a_failed_dispatch_records_nothing_and_can_be_retried() {
        let d = MemoryDispatcher::new();
        d.fail_next("apiserver unavailable");
        let err = d.dispatch(&request("j")).await.unwrap_err();
        assert!(err.to_string().contains("apiserver unavailable"));
        assert!(d.dispatched().is_empty());
        assert!(d.dispatch(&request("j")).await.unwrap().created);
    }
}
