//! The restore job as the store keeps it: the job record with its fan-out cursor and planned
//! totals, the per-object records, the settled counters, and the `/stats` snapshot.
//!
//! These are plain data; the rules that move them live in `plan`/`fanout` (and, for
//! completion, in the events/finalizer code) and the persistence in a [`crate::ports::JobStore`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::state::{JobState, ObjectState};
use super::storage::{RetrievalTier, StorageClass};

/// Where the page-by-page listing of a job stands. Advanced only by a conditional write on the
/// old `page`, so a replayed page is never counted twice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Index into the job's bucket list of the bucket being listed.
    pub bucket_index: u32,
    /// Continuation token within that bucket; `None` at the bucket's first page.
    pub token: Option<String>,
    /// Number of pages committed so far (strictly increasing; the optimistic-lock version).
    pub page: u64,
    /// Every bucket has been listed to its end.
    pub listing_done: bool,
}

/// Objects and bytes of one storage class, for the cost estimate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassTotals {
    pub objects: u64,
    pub bytes: u64,
}

/// What the listing found, summed page by page in the checkpoint (exact: added once per page).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanTotals {
    /// Objects of the job (duplicates and folder keys excluded).
    pub objects: u64,
    pub bytes: u64,
    /// Objects that need a RestoreObject (archived, no restored copy).
    pub to_restore: u64,
    pub bytes_to_restore: u64,
    /// Objects already readable at listing: recorded settled and counted here, not in shards.
    pub not_needed_at_listing: u64,
    /// Archived objects whose restored copy was already there at listing (settled `restored`,
    /// counted here, not in shards).
    pub restored_at_listing: u64,
    /// Objects of committed pages whose restore was asked for (or found running): after a
    /// page commits, each of its objects to restore has been requested or settled.
    pub requested: u64,
    /// Objects to restore per storage class (S3 name, e.g. `GLACIER`), for the estimate.
    pub by_class: BTreeMap<String, ClassTotals>,
}

impl PlanTotals {
    /// Adds another page's totals.
    pub fn add(&mut self, other: &PlanTotals) {
        self.objects += other.objects;
        self.bytes += other.bytes;
        self.to_restore += other.to_restore;
        self.bytes_to_restore += other.bytes_to_restore;
        self.not_needed_at_listing += other.not_needed_at_listing;
        self.restored_at_listing += other.restored_at_listing;
        self.requested += other.requested;
        for (class, totals) in &other.by_class {
            let entry = self.by_class.entry(class.clone()).or_default();
            entry.objects += totals.objects;
            entry.bytes += totals.bytes;
        }
    }
}

/// Counts of objects settled after listing (by the fan-out or by completion events), summed over
/// the job's counter shards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettledCounts {
    pub restored: u64,
    pub restored_bytes: u64,
    pub not_needed: u64,
    pub failed: u64,
}

impl SettledCounts {
    /// Counts one object settled to `state` (`Restored` counts its bytes too; any other final
    /// state but `NotNeeded` is a failure).
    pub fn count(&mut self, state: ObjectState, size: u64) {
        match state {
            ObjectState::Restored => {
                self.restored += 1;
                self.restored_bytes += size;
            }
            ObjectState::NotNeeded => self.not_needed += 1,
            _ => self.failed += 1,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.restored + self.not_needed + self.failed == 0
    }

    pub fn add(&mut self, other: &SettledCounts) {
        self.restored += other.restored;
        self.restored_bytes += other.restored_bytes;
        self.not_needed += other.not_needed;
        self.failed += other.failed;
    }
}

/// The job record (`JOB#<id>` / `META`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub job_id: String,
    pub project_id: String,
    pub user: String,
    /// The path as the user sent it.
    pub path: String,
    /// S3 prefix listed in every bucket (ends with `/`).
    pub prefix: String,
    /// Local assets root for the copy back, when the path had `/Assets/`.
    pub local_base: Option<String>,
    /// Tier asked for; objects may use another one (see `notes`).
    pub tier: RetrievalTier,
    /// Buckets listed, in priority order (snapshot of `ASSET_BUCKET_LIST` at creation).
    pub buckets: Vec<String>,
    pub state: JobState,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Number of counter shards (chosen at creation from the job's expected size).
    pub shards: u32,
    pub cursor: Cursor,
    pub totals: PlanTotals,
    /// Things the user should know, e.g. `deep_archive_expedited_fallback` (sorted, unique).
    pub notes: Vec<String>,
    /// `s3://bucket/key` of the JSON report once written.
    pub manifest: Option<String>,
    /// Why the job failed, when it did.
    pub error: Option<String>,
    /// Once-only side effects already done (`mail_sent`, `dispatched`...), sorted.
    pub markers: Vec<String>,
    /// The on-premises copy as the finalizer handed it to the cluster, once it tried.
    #[serde(default)]
    pub copy: Option<CopyDispatch>,
}

/// Outcome of the finalizer's latest attempt to hand the copy to the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DispatchState {
    /// The Kubernetes Job exists (created now, or found from an earlier attempt).
    Dispatched,
    /// The API server refused or could not be reached; `error` says why. The finalizer fails
    /// too, so the table stream retries it; a later success replaces this.
    Failed,
}

/// The dispatch record kept on the job (`copy`) and shown by `GET /api/v1/restore/{id}`. The
/// finalizer writes it, so the API needs no cluster access: it is the state at dispatch time;
/// the Job's live progress is in the cluster under `job_name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CopyDispatch {
    /// Name of the Kubernetes Job: deterministic per restore job, so it is known (and the
    /// same) whether the attempt succeeded, failed or found the Job already there.
    pub job_name: String,
    /// Namespace of the Job (`KUBE_NAMESPACE`), when the dispatcher has one.
    #[serde(default)]
    pub namespace: Option<String>,
    pub state: DispatchState,
    /// Whether the successful attempt created the Job (false: it was already there, HTTP 409).
    #[serde(default)]
    pub created: bool,
    /// When the Job was dispatched (unset while it never was).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub dispatched_at: Option<OffsetDateTime>,
    /// When the latest attempt ran.
    #[serde(with = "time::serde::rfc3339")]
    pub attempted_at: OffsetDateTime,
    /// Why the latest attempt failed (the API server's answer).
    #[serde(default)]
    pub error: Option<String>,
}

impl Job {
    /// A fresh job in `planning`, listing from the first bucket.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        job_id: String,
        project_id: String,
        user: String,
        path: String,
        prefix: String,
        local_base: Option<String>,
        tier: RetrievalTier,
        buckets: Vec<String>,
        shards: u32,
        now: OffsetDateTime,
    ) -> Self {
        Job {
            job_id,
            project_id,
            user,
            path,
            prefix,
            local_base,
            tier,
            buckets,
            state: JobState::Planning,
            created_at: now,
            updated_at: now,
            shards: shards.max(1),
            cursor: Cursor::default(),
            totals: PlanTotals::default(),
            notes: Vec::new(),
            manifest: None,
            error: None,
            markers: Vec::new(),
            copy: None,
        }
    }
}

/// A job with its counters summed: everything a status answer or the finalizer needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobView {
    pub job: Job,
    pub settled: SettledCounts,
}

impl JobView {
    /// Objects settled as not needed, at listing or later.
    pub fn not_needed(&self) -> u64 {
        self.job.totals.not_needed_at_listing + self.settled.not_needed
    }

    /// Objects restored, at listing or later.
    pub fn restored(&self) -> u64 {
        self.job.totals.restored_at_listing + self.settled.restored
    }

    /// Objects not yet settled.
    pub fn pending(&self) -> u64 {
        self.job
            .totals
            .objects
            .saturating_sub(self.not_needed() + self.restored() + self.settled.failed)
    }

    /// The listing is over and every object is settled: the job may be finalized.
    pub fn is_complete(&self) -> bool {
        self.job.cursor.listing_done && self.pending() == 0
    }

    /// Percent of the job's objects settled (100 for an empty finished listing).
    pub fn percent(&self) -> f64 {
        let total = self.job.totals.objects;
        if total == 0 {
            return if self.job.cursor.listing_done {
                100.0
            } else {
                0.0
            };
        }
        let done = total - self.pending();
        (done as f64 * 1000.0 / total as f64).round() / 10.0
    }
}

/// One object of one job (`JOB#<id>` / `OBJ#<key>`). The key alone is the sort key so that
/// "first bucket wins" on duplicate keys is a conditional put (`attribute_not_exists`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRecord {
    pub job_id: String,
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    pub size: u64,
    pub storage_class: StorageClass,
    /// Tier used for this object's request (Deep Archive never gets Expedited).
    pub tier: Option<RetrievalTier>,
    pub state: ObjectState,
    /// Counter shard this object is counted in when it settles.
    pub shard: u32,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expiry: Option<OffsetDateTime>,
    pub error: Option<String>,
    /// Settled when listed (readable, or a restored copy present): counted in the job's page
    /// totals, never in the counter shards.
    #[serde(default)]
    pub settled_at_listing: bool,
}

impl ObjectRecord {
    /// Pending objects are the ones a completion event may still settle.
    pub fn is_pending(&self) -> bool {
        matches!(self.state, ObjectState::Planned | ObjectState::Requested)
    }
}

/// How an object settles (exactly once per job, counted in its shard in the same write).
/// A job holding its project's active lock, with what the tally needs to tell whether a
/// completed object can be one of its objects (so a batch of events is looked up with one
/// read per job instead of an index query per event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveJob {
    pub job_id: String,
    pub prefix: String,
    pub buckets: Vec<String>,
}

impl ActiveJob {
    /// Whether `bucket`/`key` lies in the job's scope (its record may exist).
    pub fn covers(&self, bucket: &str, key: &str) -> bool {
        key.starts_with(&self.prefix) && self.buckets.iter().any(|b| b == bucket)
    }
}

impl From<&Job> for ActiveJob {
    fn from(job: &Job) -> Self {
        ActiveJob {
            job_id: job.job_id.clone(),
            prefix: job.prefix.clone(),
            buckets: job.buckets.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// `Restored`, `NotNeeded` or `Failed`.
    pub state: ObjectState,
    pub expiry: Option<OffsetDateTime>,
    pub error: Option<String>,
}

/// One page of a job's objects, in key order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectPage {
    pub objects: Vec<ObjectRecord>,
    /// Pass as `after` to get the next page; `None` at the end.
    pub next: Option<String>,
}

/// One page's commit: the cursor move and what the page added. Applied only if the committer
/// holds the lease and the cursor is still `from`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageCommit {
    pub from: Cursor,
    pub to: Cursor,
    pub add: PlanTotals,
    /// Notes to add to the job (set union).
    pub notes: Vec<String>,
    /// Renew the lease until then; `None` releases it.
    pub keep_lease: Option<OffsetDateTime>,
}

/// Result of trying to create a job for a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// The job was written and holds the project's active lock.
    Created,
    /// Another job of the project is still active; its id.
    Existing(String),
}

/// Result of asking for a job's fan-out lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// The caller holds the lease; the job as it is now, and whether the page at its cursor was
    /// started before by an invocation that never committed it (a replay: requests may have
    /// reached S3 without being recorded, so recorded objects are checked with HeadObject).
    Acquired { job: Box<Job>, replay: bool },
    /// Someone else holds it until then.
    Busy(OffsetDateTime),
    /// Nothing left to fan out (listing done) or the job is no longer active.
    Done,
}

/// A `/stats` answer kept for `/notify` (valid 5 minutes, DESIGN §3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsRecord {
    pub project_id: String,
    pub prefix: String,
    pub number_of_files: u64,
    pub total_bytes: u64,
    pub standard_cost_cents: u64,
    pub bulk_cost_cents: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// Stable 32-bit FNV-1a hash, used to spread an object's count over the job's shards.
pub fn shard_of(bucket: &str, key: &str, shards: u32) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in bucket.bytes().chain([b'/']).chain(key.bytes()) {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % shards.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(objects: u64, listing_done: bool, settled: SettledCounts, nn: u64) -> JobView {
        let mut job = Job::new(
            "j".into(),
            "1".into(),
            "u@x".into(),
            "p".into(),
            "p/".into(),
            None,
            RetrievalTier::Bulk,
            vec!["b".into()],
            1,
            OffsetDateTime::UNIX_EPOCH,
        );
        job.totals.objects = objects;
        job.totals.not_needed_at_listing = nn;
        job.cursor.listing_done = listing_done;
        JobView { job, settled }
    }

    #[test]
    fn completion_needs_listing_done_and_every_object_settled() {
        let settled = SettledCounts {
            restored: 5,
            restored_bytes: 50,
            not_needed: 1,
            failed: 1,
        };
        assert!(view(10, true, settled, 3).is_complete());
        assert!(!view(10, false, settled, 3).is_complete());
        assert!(!view(11, true, settled, 3).is_complete());
        assert_eq!(view(11, true, settled, 3).pending(), 1);
        assert_eq!(view(11, true, settled, 3).percent(), 90.9);
        assert_eq!(view(0, true, SettledCounts::default(), 0).percent(), 100.0);
    }

    #[test]
    fn shards_are_stable_and_in_range() {
        assert_eq!(shard_of("b", "k", 1), 0);
        let a = shard_of("bucket", "some/key.mov", 16);
        assert_eq!(a, shard_of("bucket", "some/key.mov", 16));
        assert!(a < 16);
        let spread: std::collections::HashSet<u32> = (0..200)
            .map(|i| shard_of("b", &format!("k{i}"), 8))
            .collect();
        assert_eq!(spread.len(), 8);
    }

    #[test]
    fn totals_add_by_class() {
        let mut a = PlanTotals::default();
        let mut b = PlanTotals {
            objects: 2,
            bytes: 30,
            to_restore: 1,
            bytes_to_restore: 20,
            ..Default::default()
        };
        b.by_class.insert(
            "GLACIER".into(),
            ClassTotals {
                objects: 1,
                bytes: 20,
            },
        );
        a.add(&b);
        a.add(&b);
        assert_eq!(a.objects, 4);
        assert_eq!(a.by_class["GLACIER"].bytes, 40);
    }
}
