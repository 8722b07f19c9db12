//! [`JobStore`] in process memory, with the same conditional semantics as the DynamoDB adapter,
//! for fast unit tests of planning, fan-out and tally rules.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::domain::completion::EarlyEvent;
use crate::domain::job::{
    ActiveJob, CopyDispatch, CreateOutcome, Job, JobView, LeaseOutcome, ObjectPage, ObjectRecord,
    PageCommit, SettledCounts, Settlement, StatsRecord,
};
use crate::domain::state::{JobState, ObjectState};
use crate::ports::JobStore;
use crate::{Error, Result};

#[derive(Default)]
struct Inner {
    jobs: HashMap<String, Job>,
    leases: HashMap<String, (String, OffsetDateTime)>,
    /// job id → page last started under a lease.
    started: HashMap<String, u64>,
    /// job id → page last started ahead of the cursor ([`JobStore::begin_next_page`]).
    started_ahead: HashMap<String, u64>,
    active: HashMap<String, String>,
    /// job id → key → object.
    objects: HashMap<String, BTreeMap<String, ObjectRecord>>,
    /// (job id, shard) → counts.
    shards: HashMap<(String, u32), SettledCounts>,
    stats: HashMap<(String, String), StatsRecord>,
}

/// In-memory job store. Cheap to clone the data out of for assertions via [`Self::objects`].
#[derive(Default)]
pub struct MemoryJobStore {
    inner: Mutex<Inner>,
    /// (bucket, key) → early completion event (see `JobStore::put_early_event`).
    early: Mutex<HashMap<(String, String), EarlyEvent>>,
}

impl MemoryJobStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every object record of a job (test helper).
    pub fn objects(&self, job_id: &str) -> Vec<ObjectRecord> {
        let inner = self.inner.lock().unwrap();
        inner
            .objects
            .get(job_id)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap()
    }
}

fn is_terminal(state: JobState) -> bool {
    matches!(
        state,
        JobState::Completed | JobState::CompletedWithErrors | JobState::Failed
    )
}

#[async_trait]
impl JobStore for MemoryJobStore {
    async fn create_job(&self, job: &Job) -> Result<CreateOutcome> {
        let mut inner = self.lock();
        if let Some(existing) = inner.active.get(&job.project_id) {
            return Ok(CreateOutcome::Existing(existing.clone()));
        }
        if inner.jobs.contains_key(&job.job_id) {
            return Err(Error::conflict("job_exists", "job id already used"));
        }
        inner
            .active
            .insert(job.project_id.clone(), job.job_id.clone());
        inner.jobs.insert(job.job_id.clone(), job.clone());
        Ok(CreateOutcome::Created)
    }

    async fn get_job(&self, job_id: &str) -> Result<Option<JobView>> {
        let inner = self.lock();
        let Some(job) = inner.jobs.get(job_id) else {
            return Ok(None);
        };
        let mut settled = SettledCounts::default();
        for ((id, _), counts) in &inner.shards {
            if id == job_id {
                settled.add(counts);
            }
        }
        Ok(Some(JobView {
            job: job.clone(),
            settled,
        }))
    }

    async fn active_job(&self, project_id: &str) -> Result<Option<String>> {
        Ok(self.lock().active.get(project_id).cloned())
    }

    async fn acquire_lease(
        &self,
        job_id: &str,
        owner: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<LeaseOutcome> {
        let mut inner = self.lock();
        let Some(job) = inner.jobs.get(job_id).cloned() else {
            return Err(Error::not_found(
                "job_not_found",
                format!("no job {job_id}"),
            ));
        };
        if job.cursor.listing_done || job.state != JobState::Planning {
            return Ok(LeaseOutcome::Done);
        }
        if let Some((holder, expires)) = inner.leases.get(job_id) {
            if holder != owner && *expires >= now {
                return Ok(LeaseOutcome::Busy(*expires));
            }
        }
        inner
            .leases
            .insert(job_id.to_string(), (owner.to_string(), until));
        let page = job.cursor.page;
        let replay = inner.started.insert(job_id.to_string(), page) == Some(page)
            || inner.started_ahead.get(job_id) == Some(&page);
        Ok(LeaseOutcome::Acquired {
            job: Box::new(job),
            replay,
        })
    }

    async fn begin_next_page(&self, job_id: &str, owner: &str, page: u64) -> Result<bool> {
        let mut inner = self.lock();
        let holds = inner.leases.get(job_id).is_some_and(|(h, _)| h == owner);
        let at = inner.jobs.get(job_id).map(|j| j.cursor.page);
        let Some(at) = at.filter(|at| holds && at + 1 == page) else {
            return Err(Error::conflict(
                "cursor_moved",
                "fan-out lease lost or cursor moved",
            ));
        };
        inner.started.insert(job_id.to_string(), at);
        Ok(inner.started_ahead.insert(job_id.to_string(), page) == Some(page))
    }

    async fn release_lease(&self, job_id: &str, owner: &str) -> Result<()> {
        let mut inner = self.lock();
        if inner.leases.get(job_id).is_some_and(|(h, _)| h == owner) {
            inner.leases.remove(job_id);
        }
        Ok(())
    }

    async fn put_objects(&self, objects: &[ObjectRecord]) -> Result<Vec<bool>> {
        let mut inner = self.lock();
        Ok(objects
            .iter()
            .map(|object| {
                let map = inner.objects.entry(object.job_id.clone()).or_default();
                if map.contains_key(&object.key) {
                    false
                } else {
                    map.insert(object.key.clone(), object.clone());
                    true
                }
            })
            .collect())
    }

    /// Overwrites, as DynamoDB's unconditional batch does, but first checks the caller's
    /// promise that none exists, so the unit tests catch a fan-out that breaks it.
    async fn put_new_objects(&self, objects: &[ObjectRecord]) -> Result<()> {
        let mut inner = self.lock();
        for object in objects {
            let map = inner.objects.entry(object.job_id.clone()).or_default();
            if map.insert(object.key.clone(), object.clone()).is_some() {
                return Err(Error::Internal(format!(
                    "put_new_objects overwrote {} of job {}",
                    object.key, object.job_id
                )));
            }
        }
        Ok(())
    }

    async fn get_objects(
        &self,
        job_id: &str,
        keys: &[String],
    ) -> Result<Vec<Option<ObjectRecord>>> {
        let inner = self.lock();
        let map = inner.objects.get(job_id);
        Ok(keys
            .iter()
            .map(|k| map.and_then(|m| m.get(k)).cloned())
            .collect())
    }

    async fn mark_requested(&self, job_id: &str, objects: &[ObjectRecord]) -> Result<Vec<bool>> {
        let mut inner = self.lock();
        let map = inner.objects.entry(job_id.to_string()).or_default();
        Ok(objects
            .iter()
            .map(|o| match map.get_mut(&o.key) {
                Some(stored)
                    if matches!(stored.state, ObjectState::Planned | ObjectState::Requested) =>
                {
                    stored.state = ObjectState::Requested;
                    stored.tier = o.tier;
                    true
                }
                _ => false,
            })
            .collect())
    }

    async fn settle(&self, object: &ObjectRecord, settlement: &Settlement) -> Result<bool> {
        let mut inner = self.lock();
        let Some(stored) = inner
            .objects
            .get_mut(&object.job_id)
            .and_then(|m| m.get_mut(&object.key))
        else {
            return Ok(false);
        };
        if !stored.is_pending() || stored.bucket != object.bucket {
            return Ok(false);
        }
        stored.state = settlement.state;
        stored.expiry = settlement.expiry;
        stored.error = settlement.error.clone();
        let (size, shard) = (stored.size, stored.shard);
        let counts = inner
            .shards
            .entry((object.job_id.clone(), shard))
            .or_default();
        match settlement.state {
            ObjectState::Restored => {
                counts.restored += 1;
                counts.restored_bytes += size;
            }
            ObjectState::NotNeeded => counts.not_needed += 1,
            ObjectState::Failed => counts.failed += 1,
            other => {
                return Err(Error::Internal(format!(
                    "settle to non-final state {other:?}"
                )))
            }
        }
        Ok(true)
    }

    async fn advance_cursor(&self, job_id: &str, owner: &str, commit: &PageCommit) -> Result<()> {
        let PageCommit {
            from,
            to,
            add,
            notes,
            keep_lease,
        } = commit;
        let keep_lease = *keep_lease;
        let mut inner = self.lock();
        let holds = inner.leases.get(job_id).is_some_and(|(h, _)| h == owner);
        let Some(job) = inner.jobs.get_mut(job_id) else {
            return Err(Error::not_found(
                "job_not_found",
                format!("no job {job_id}"),
            ));
        };
        if !holds || job.cursor.page != from.page {
            return Err(Error::conflict(
                "cursor_moved",
                "fan-out lease lost or cursor moved",
            ));
        }
        job.cursor = to.clone();
        job.totals.add(add);
        for note in notes {
            if !job.notes.contains(note) {
                job.notes.push(note.clone());
            }
        }
        job.notes.sort();
        if to.listing_done && job.state == JobState::Planning {
            job.state = JobState::Restoring;
        }
        job.updated_at = OffsetDateTime::now_utc();
        match keep_lease {
            Some(until) => {
                inner
                    .leases
                    .insert(job_id.to_string(), (owner.to_string(), until));
            }
            None => {
                inner.leases.remove(job_id);
            }
        }
        Ok(())
    }

    async fn list_objects(
        &self,
        job_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ObjectPage> {
        let inner = self.lock();
        let Some(map) = inner.objects.get(job_id) else {
            return Ok(ObjectPage::default());
        };
        let range = match after {
            Some(after) => {
                map.range::<str, _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
            }
            None => map.range::<str, _>(..),
        };
        let limit = limit.max(1);
        let mut objects: Vec<ObjectRecord> =
            range.take(limit + 1).map(|(_, o)| o.clone()).collect();
        let next = if objects.len() > limit {
            objects.truncate(limit);
            objects.last().map(|o| o.key.clone())
        } else {
            None
        };
        Ok(ObjectPage { objects, next })
    }

    async fn transition_job(
        &self,
        job_id: &str,
        from: &[JobState],
        to: JobState,
        error: Option<&str>,
    ) -> Result<bool> {
        let mut inner = self.lock();
        let Some(job) = inner.jobs.get_mut(job_id) else {
            return Err(Error::not_found(
                "job_not_found",
                format!("no job {job_id}"),
            ));
        };
        if !from.contains(&job.state) {
            return Ok(false);
        }
        job.state = to;
        job.updated_at = OffsetDateTime::now_utc();
        if let Some(error) = error {
            job.error = Some(error.to_string());
        }
        let project = job.project_id.clone();
        if is_terminal(to) && inner.active.get(&project).is_some_and(|id| id == job_id) {
            inner.active.remove(&project);
        }
        Ok(true)
    }

    async fn set_manifest(&self, job_id: &str, uri: &str) -> Result<()> {
        let mut inner = self.lock();
        let Some(job) = inner.jobs.get_mut(job_id) else {
            return Err(Error::not_found(
                "job_not_found",
                format!("no job {job_id}"),
            ));
        };
        job.manifest = Some(uri.to_string());
        Ok(())
    }

    async fn set_copy(&self, job_id: &str, copy: &CopyDispatch) -> Result<()> {
        let mut inner = self.lock();
        let Some(job) = inner.jobs.get_mut(job_id) else {
            return Err(Error::not_found(
                "job_not_found",
                format!("no job {job_id}"),
            ));
        };
        job.copy = Some(copy.clone());
        Ok(())
    }

    async fn set_marker(&self, job_id: &str, marker: &str) -> Result<bool> {
        let mut inner = self.lock();
        let Some(job) = inner.jobs.get_mut(job_id) else {
            return Err(Error::not_found(
                "job_not_found",
                format!("no job {job_id}"),
            ));
        };
        if job.markers.iter().any(|m| m == marker) {
            return Ok(false);
        }
        job.markers.push(marker.to_string());
        job.markers.sort();
        Ok(true)
    }

    async fn put_stats(&self, stats: &StatsRecord) -> Result<()> {
        self.lock().stats.insert(
            (stats.project_id.clone(), stats.prefix.clone()),
            stats.clone(),
        );
        Ok(())
    }

    async fn get_stats(&self, project_id: &str, prefix: &str) -> Result<Option<StatsRecord>> {
        Ok(self
            .lock()
            .stats
            .get(&(project_id.to_string(), prefix.to_string()))
            .cloned())
    }

    async fn put_early_event(&self, event: &EarlyEvent) -> Result<()> {
        self.early
            .lock()
            .unwrap()
            .insert((event.bucket.clone(), event.key.clone()), event.clone());
        Ok(())
    }

    async fn get_early_event(&self, bucket: &str, key: &str) -> Result<Option<EarlyEvent>> {
        Ok(self
            .early
            .lock()
            .unwrap()
            .get(&(bucket.to_string(), key.to_string()))
            .cloned())
    }

    async fn clear_marker(&self, job_id: &str, marker: &str) -> Result<()> {
        if let Some(job) = self.lock().jobs.get_mut(job_id) {
            job.markers.retain(|m| m != marker);
        }
        Ok(())
    }

    async fn active_jobs(&self) -> Result<Vec<ActiveJob>> {
        let inner = self.lock();
        let mut active: Vec<ActiveJob> = inner
            .active
            .values()
            .filter_map(|id| inner.jobs.get(id))
            .map(ActiveJob::from)
            .collect();
        active.sort_by(|a, b| a.job_id.cmp(&b.job_id));
        Ok(active)
    }
}
