use async_trait::async_trait;
use time::OffsetDateTime;

use crate::domain::completion::EarlyEvent;
use crate::domain::job::{
    ActiveJob, CopyDispatch, CreateOutcome, Job, JobView, LeaseOutcome, ObjectPage, ObjectRecord,
    PageCommit, Settlement, StatsRecord,
};
use crate::domain::state::JobState;
use crate::Result;

/// Durable state of restore jobs (DynamoDB in production). Every method that could race with
/// another invocation or a duplicate event is a conditional write, so counts stay exact.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Writes a new job and takes its project's active lock in one transaction. When another
    /// job of the project is active, nothing is written and its id is returned.
    async fn create_job(&self, job: &Job) -> Result<CreateOutcome>;

    /// The job and its counter shards summed (one query), or `None` when unknown.
    async fn get_job(&self, job_id: &str) -> Result<Option<JobView>>;

    /// Id of the project's active job, if any.
    async fn active_job(&self, project_id: &str) -> Result<Option<String>>;

    /// Takes the job's fan-out lease until `until` when it is free, expired or already ours,
    /// so only one invocation lists and requests a job's pages at a time. Also notes the page
    /// at the cursor as started, and reports whether it had been started before (a replay).
    async fn acquire_lease(
        &self,
        job_id: &str,
        owner: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<LeaseOutcome>;

    /// Notes `page` (the one after the cursor's, listed ahead while the cursor's page is still
    /// being requested) as started, under the caller's lease, and the cursor's page as started
    /// too (it may itself have been begun ahead); true when an earlier invocation had started
    /// `page` already (a replay: its records may exist). `Conflict` when the lease is no longer
    /// the caller's or the cursor is not at `page - 1`.
    async fn begin_next_page(&self, job_id: &str, owner: &str, page: u64) -> Result<bool>;

    /// Gives the lease back without moving the cursor (no-op when not ours).
    async fn release_lease(&self, job_id: &str, owner: &str) -> Result<()>;

    /// Records objects with `attribute_not_exists`: an existing item (a replay, or the same key
    /// from an earlier bucket) is left untouched. Returns, per object, whether it was written.
    async fn put_objects(&self, objects: &[ObjectRecord]) -> Result<Vec<bool>>;

    /// Writes records of a page no invocation began before ([`LeaseOutcome::Acquired`] with
    /// `replay: false`), whose keys the caller checked are not recorded: no condition is
    /// needed, so the DynamoDB adapter writes 25 per BatchWriteItem instead of one PutItem each.
    async fn put_new_objects(&self, objects: &[ObjectRecord]) -> Result<()> {
        self.put_objects(objects).await.map(|_| ())
    }

    /// Reads objects of a job by key (same order as `keys`; `None` when absent).
    async fn get_objects(&self, job_id: &str, keys: &[String])
        -> Result<Vec<Option<ObjectRecord>>>;

    /// `planned → requested`, or a new tier for a `requested` object (Expedited fallback);
    /// conditional per object: returns per object whether it was still pending and updated
    /// (false when it had settled meanwhile, e.g. by an event).
    async fn mark_requested(&self, job_id: &str, objects: &[ObjectRecord]) -> Result<Vec<bool>>;

    /// Settles one pending object and counts it in its shard, atomically; true when this call
    /// settled it, false when it was already settled (a duplicate: nothing counted).
    async fn settle(&self, object: &ObjectRecord, settlement: &Settlement) -> Result<bool>;

    /// [`JobStore::settle`] for many objects at once: each object settled and counted once,
    /// with few store calls. The DynamoDB adapter settles a batch without a transaction (one
    /// conditional update per object under a receipt, then one count per 100 objects), so a
    /// crash may leave settled objects whose counts [`JobStore::finish_settlements`] adds
    /// later. Per item, whether this call settled it (a repeated job/key settles once).
    async fn settle_many(&self, items: &[(ObjectRecord, Settlement)]) -> Result<Vec<bool>> {
        let mut done = Vec::with_capacity(items.len());
        for (object, settlement) in items {
            done.push(self.settle(object, settlement).await?);
        }
        Ok(done)
    }

    /// Adds the counts of batch settlements that a crashed call left unfinished (objects
    /// settled, counts not yet added), once their owner cannot be running any more at `now`;
    /// returns how many objects it counted. A store whose batches are atomic has none.
    async fn finish_settlements(&self, _job_id: &str, _now: OffsetDateTime) -> Result<usize> {
        Ok(0)
    }

    /// Commits a page: moves the cursor and adds the page's totals and notes, only if the
    /// caller holds the lease and the cursor is still `commit.from` (else `Conflict`).
    async fn advance_cursor(&self, job_id: &str, owner: &str, commit: &PageCommit) -> Result<()>;

    /// A job's objects in key order, `limit` at a time, starting after `after`.
    async fn list_objects(
        &self,
        job_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ObjectPage>;

    /// Moves the job from one of `from` to `to` (conditional; true when this call did it).
    /// A terminal `to` also releases the project's active lock, so a new job may start.
    async fn transition_job(
        &self,
        job_id: &str,
        from: &[JobState],
        to: JobState,
        error: Option<&str>,
    ) -> Result<bool>;

    /// Records where the manifest/report was written.
    async fn set_manifest(&self, job_id: &str, uri: &str) -> Result<()>;

    /// Records the latest attempt to dispatch the on-premises copy (replaces the previous one).
    async fn set_copy(&self, job_id: &str, copy: &CopyDispatch) -> Result<()>;

    /// Sets a named once-only marker on the job (e.g. `mail_sent`, `dispatched`); true when this
    /// call set it, false when it was already there. Makes side effects exactly-once.
    async fn set_marker(&self, job_id: &str, marker: &str) -> Result<bool>;

    /// Stores a `/stats` answer for `/notify`.
    async fn put_stats(&self, stats: &StatsRecord) -> Result<()>;

    /// The stored `/stats` answer of a project and prefix, even if expired (callers check
    /// `expires_at`: TTL deletion is lazy).
    async fn get_stats(&self, project_id: &str, prefix: &str) -> Result<Option<StatsRecord>>;

    /// Keeps a completion event that matched no pending object (it came before the fan-out
    /// recorded the object), with a TTL, so recording the object later can settle it.
    async fn put_early_event(&self, event: &EarlyEvent) -> Result<()>;

    /// The early completion event kept for `bucket`/`key`, if any (even past its TTL: callers
    /// check `expires_at`, TTL deletion is lazy).
    async fn get_early_event(&self, bucket: &str, key: &str) -> Result<Option<EarlyEvent>>;

    /// [`JobStore::get_early_event`] for many objects (`(bucket, key)`): the events kept for
    /// those that have one, each once, in no particular order. The DynamoDB adapter reads 100
    /// per call; the sweeper and the finalizer look up a whole page of objects at once.
    async fn get_early_events(&self, objects: &[(&str, &str)]) -> Result<Vec<EarlyEvent>> {
        let mut unique = objects.to_vec();
        unique.sort_unstable();
        unique.dedup();
        let mut found = Vec::new();
        for (bucket, key) in unique {
            found.extend(self.get_early_event(bucket, key).await?);
        }
        Ok(found)
    }

    /// Removes a marker set by [`JobStore::set_marker`] (no-op when absent), so a side effect
    /// that failed after claiming its marker can be retried.
    async fn clear_marker(&self, job_id: &str, marker: &str) -> Result<()>;

    /// Every job holding its project's active lock (planning or restoring), by id, for the
    /// sweeper and the tally.
    async fn active_jobs(&self) -> Result<Vec<ActiveJob>>;
}
