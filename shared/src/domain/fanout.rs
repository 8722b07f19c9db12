//! Fan-out: lists a job's prefix page by page and issues RestoreObject for what needs it,
//! crash-safe and resumable (DESIGN §4 "Big prefixes").
//!
//! One page is processed under the job's lease (only one invocation works on a job):
//! 1. list one page from the cursor (bucket index + continuation token);
//! 2. record its objects, those to restore already as `requested` (the record is the "about to
//!    ask" marker). A page nobody began before (the lease says so) is written without
//!    conditions, 25 records per batch, skipping keys recorded from an earlier bucket (first
//!    bucket wins); a replayed page is written with `attribute_not_exists`, so it never resets
//!    a later state;
//! 3. objects this call did not write are read back (only a replay of a page an invocation died
//!    in finds its own records); the still pending ones are first checked with HeadObject, since
//!    the dead attempt may have reached S3 (an `x-amz-restore` header means it did);
//! 4. RestoreObject for the candidates, bounded in concurrency, under a client-side rate limit,
//!    retried with backoff and full jitter on upstream errors; a 200/403/failure settles the
//!    object (counted in its shard in the same transaction), a 202/409 leaves it `requested`
//!    (only a tier change after an Expedited capacity error is written back). One write per
//!    object in the common case;
//! 5. the cursor advances with a condition on its old value and on the lease, adding the page's
//!    totals: counted once, however often the page was replayed.
//!
//! While one page's requests (step 4) go out, the page before it gets its last answers and is
//! committed (step 5), and the next page goes through steps 1–3, begun ahead under the lease so
//! that a crash replays it like any page with records.
//!
//! So a killed invocation loses no object (the cursor did not move, the page is replayed) and
//! requests none twice (recorded states and HeadObject tell what was already asked).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::{self, BoxFuture, FutureExt};
use futures::stream::{self, StreamExt};
use time::OffsetDateTime;
use tokio::sync::{oneshot, Mutex};
use tracing::Instrument;

use super::job::{
    shard_of, Cursor, Job, LeaseOutcome, ObjectRecord, PageCommit, PlanTotals, Settlement,
};
use super::object::{ListedObject, ObjectRef, RestoreOutcome};
use super::state::ObjectState;
use super::storage::{classify, ArchiveState, Classification, RestorePlan, RestorePolicy};
use crate::ports::{JobStore, ObjectStore};
use crate::{Error, Result};

/// Knobs of the fan-out; defaults suit one Lambda invocation.
#[derive(Debug, Clone)]
pub struct FanoutSettings {
    /// Keys per listing page (S3's maximum is 1,000).
    pub page_size: i32,
    /// RestoreObject calls in flight.
    pub concurrency: usize,
    /// RestoreObject calls per second, client side (S3 allows ~1,000/s per account and region).
    pub rate_limit: u32,
    /// How long a lease protects a page in progress; a holder that dies is replaced after it.
    pub lease: Duration,
    /// Attempts per RestoreObject/HeadObject on upstream errors (throttling, 5xx).
    pub max_attempts: u32,
    /// First backoff; doubled per attempt, capped at 5 s, with full jitter.
    pub backoff: Duration,
    /// How often [`Fanout::drive`] retries a lease held elsewhere.
    pub poll: Duration,
    pub policy: RestorePolicy,
}

impl Default for FanoutSettings {
    fn default() -> Self {
        FanoutSettings {
            page_size: 1000,
            concurrency: 64,
            rate_limit: 500,
            lease: Duration::from_secs(120),
            max_attempts: 4,
            backoff: Duration::from_millis(100),
            poll: Duration::from_secs(1),
            policy: RestorePolicy::default(),
        }
    }
}

/// How a [`Fanout::run`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// Every bucket is listed and every object requested or settled.
    ListingDone,
    /// The time budget ran out; the cursor is committed and the lease released (its stream
    /// record triggers the next invocation).
    OutOfTime,
    /// Another invocation holds the lease until then.
    Busy(OffsetDateTime),
    /// Nothing to do (listing already done, or the job ended).
    NothingToDo,
}

/// Spaces calls evenly: at most `rate` per second across all tasks of this process.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    next: Mutex<Instant>,
}

impl RateLimiter {
    pub fn new(per_second: u32) -> Self {
        RateLimiter {
            interval: Duration::from_secs(1) / per_second.max(1),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Waits for the next free slot.
    pub async fn acquire(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot.into()).await;
    }
}

/// The fan-out over the two ports. Build once per process and share.
pub struct Fanout {
    objects: Arc<dyn ObjectStore>,
    jobs: Arc<dyn JobStore>,
    settings: FanoutSettings,
    limiter: RateLimiter,
}

/// Fresh records written per step when a page's requests wait for them, and such steps in
/// flight (the DynamoDB adapter writes 25 per BatchWriteItem, so 100 is four of them).
const RECORD_CHUNK: usize = 100;
const RECORD_CHUNKS_IN_FLIGHT: usize = 4;

/// A page listed and recorded, waiting for its RestoreObject calls and its commit.
struct PreparedPage {
    /// The commit once requested (fallback notes of the requests are added then).
    commit: PageCommit,
    candidates: Vec<Candidate>,
    /// Fresh records not written yet: [`Fanout::request`] writes them in chunks and asks for a
    /// chunk's candidates as soon as the chunk is recorded (a run's first page has no earlier
    /// page to hide its writes behind).
    unrecorded: Vec<ObjectRecord>,
}

/// What one object of a page needs after recording.
struct Candidate {
    record: ObjectRecord,
    plan: RestorePlan,
    /// An earlier attempt may have asked S3 already: check with HeadObject first.
    check_first: bool,
}

impl Fanout {
    pub fn new(
        objects: Arc<dyn ObjectStore>,
        jobs: Arc<dyn JobStore>,
        settings: FanoutSettings,
    ) -> Self {
        let limiter = RateLimiter::new(settings.rate_limit);
        Fanout {
            objects,
            jobs,
            settings,
            limiter,
        }
    }

    pub fn settings(&self) -> &FanoutSettings {
        &self.settings
    }

    /// Processes pages of the job until the listing is done or `deadline` is near, holding the
    /// lease; returns without work when another invocation holds it.
    ///
    /// Pages overlap: while one page's RestoreObject calls run, the page before it finishes
    /// (its last answers) and is committed, and the page after it is listed and recorded (begun
    /// ahead under the lease, [`JobStore::begin_next_page`], so a crash replays it as a page
    /// with records). A page is begun ahead only when a page's time still fits before the
    /// deadline, and every page begun is requested and committed before returning.
    pub async fn run(&self, job_id: &str, deadline: Instant) -> Result<RunOutcome> {
        let owner = uuid::Uuid::now_v7().to_string();
        let mut holding = false;
        // The page listed and recorded ahead, and the page whose requests are out (its last
        // answers may still be coming), not yet committed.
        let mut ahead: Option<(Job, PreparedPage)> = None;
        let mut in_flight: Option<BoxFuture<'_, Result<PageCommit>>> = None;
        let mut last_page = Duration::ZERO;
        loop {
            let began = Instant::now();
            let (job, prepared) = match ahead.take() {
                Some(ready) => ready,
                None => {
                    if let Some(requests) = in_flight.take() {
                        if self.commit(job_id, &owner, requests.await?).await? {
                            return Ok(RunOutcome::ListingDone);
                        }
                    }
                    if began >= deadline {
                        if holding {
                            self.jobs.release_lease(job_id, &owner).await?;
                        }
                        return Ok(RunOutcome::OutOfTime);
                    }
                    let now = OffsetDateTime::now_utc();
                    let (job, replay) = match self
                        .jobs
                        .acquire_lease(job_id, &owner, now, now + self.settings.lease)
                        .await?
                    {
                        LeaseOutcome::Acquired { job, replay } => {
                            if replay {
                                tracing::warn!(
                                    job_id,
                                    page = job.cursor.page,
                                    "replaying a page an earlier invocation did not commit"
                                );
                            }
                            (*job, replay)
                        }
                        LeaseOutcome::Busy(until) => return Ok(RunOutcome::Busy(until)),
                        LeaseOutcome::Done if holding => return Ok(RunOutcome::ListingDone),
                        LeaseOutcome::Done => return Ok(RunOutcome::NothingToDo),
                    };
                    holding = true;
                    let prepared = self.prepare(&job, replay, false).await?;
                    (job, prepared)
                }
            };
            let to = prepared.commit.to.clone();
            let look_ahead = !to.listing_done && Instant::now() + last_page < deadline;
            let (issued, mut handed_out) = oneshot::channel();
            let span = tracing::info_span!("fanout_page", job_id, page = job.cursor.page);
            let mut this = self
                .request(job.clone(), prepared, issued)
                .instrument(span)
                .boxed();
            let previous = in_flight.take();
            let next = async {
                // The page before this one: its last answers, then its commit, which moves
                // the cursor to this page; then the next page is begun.
                if let Some(requests) = previous {
                    self.commit(job_id, &owner, requests.await?).await?;
                }
                if look_ahead {
                    self.prepare_next(&job, &owner, &to).await.map(Some)
                } else {
                    Ok(None)
                }
            };
            tokio::pin!(next);
            // Go on once the next page is ready and this page's requests are all handed out
            // (or done): its last answers are awaited while the next page's requests go out.
            let mut prepared_next = None;
            let mut finished = None;
            let mut all_out = false;
            while prepared_next.is_none() || !(all_out || finished.is_some()) {
                tokio::select! {
                    r = &mut next, if prepared_next.is_none() => prepared_next = Some(r),
                    r = &mut this, if finished.is_none() => finished = Some(r),
                    _ = &mut handed_out, if !all_out => all_out = true,
                }
            }
            in_flight = Some(match finished {
                Some(done) => future::ready(done).boxed(),
                None => this,
            });
            ahead = prepared_next.expect("loop ends once it is set")?;
            last_page = began.elapsed();
        }
    }

    /// Commits a page whose requests were all answered (step 5), keeping the lease while the
    /// listing goes on; true when this was the last page.
    async fn commit(&self, job_id: &str, owner: &str, commit: PageCommit) -> Result<bool> {
        let done = commit.to.listing_done;
        let commit = PageCommit {
            keep_lease: (!done).then(|| OffsetDateTime::now_utc() + self.settings.lease),
            ..commit
        };
        self.jobs.advance_cursor(job_id, owner, &commit).await?;
        tracing::info!(
            job_id,
            page = commit.to.page,
            objects = commit.add.objects,
            to_restore = commit.add.to_restore,
            listing_done = done,
            "page committed"
        );
        Ok(done)
    }

    /// Like [`Self::run`], but waits out another holder's lease (polling every `poll`), so a
    /// holder that died is replaced as soon as its lease expires. What `restore-fanout` runs.
    pub async fn drive(&self, job_id: &str, deadline: Instant) -> Result<RunOutcome> {
        loop {
            match self.run(job_id, deadline).await? {
                RunOutcome::Busy(until) => {
                    let poll = self.settings.poll;
                    if Instant::now() + poll >= deadline {
                        return Ok(RunOutcome::Busy(until));
                    }
                    tracing::debug!(job_id, %until, "lease held elsewhere; waiting");
                    tokio::time::sleep(poll).await;
                }
                other => return Ok(other),
            }
        }
    }

    /// Lists and records the page at `job.cursor` (steps 1–3): what is left is to request its
    /// candidates and commit. `replay`: an earlier invocation began this page, so its records
    /// may exist.
    async fn prepare(&self, job: &Job, replay: bool, record_now: bool) -> Result<PreparedPage> {
        let cursor = &job.cursor;
        let Some(bucket) = job.buckets.get(cursor.bucket_index as usize) else {
            return Ok(PreparedPage {
                commit: PageCommit {
                    from: cursor.clone(),
                    to: Cursor {
                        bucket_index: cursor.bucket_index,
                        token: None,
                        page: cursor.page + 1,
                        listing_done: true,
                    },
                    ..Default::default()
                },
                candidates: Vec::new(),
                unrecorded: Vec::new(),
            });
        };
        let listing = self
            .objects
            .list_page(
                bucket,
                &job.prefix,
                cursor.token.as_deref(),
                self.settings.page_size,
            )
            .await?;
        let next = match listing.next {
            Some(token) => Cursor {
                bucket_index: cursor.bucket_index,
                token: Some(token),
                page: cursor.page + 1,
                listing_done: false,
            },
            None => {
                let index = cursor.bucket_index + 1;
                Cursor {
                    bucket_index: index,
                    token: None,
                    page: cursor.page + 1,
                    listing_done: index as usize >= job.buckets.len(),
                }
            }
        };

        // Classify and record.
        let listed: Vec<(ListedObject, Classification)> = listing
            .objects
            .into_iter()
            .filter(|o| !o.key.ends_with('/'))
            .map(|o| {
                let class = o.classify(job.tier, self.settings.policy);
                (o, class)
            })
            .collect();
        let records: Vec<ObjectRecord> = listed
            .iter()
            .map(|(o, class)| record_for(job, o, class))
            .collect();
        let mut unrecorded = Vec::new();
        let written = if replay {
            self.jobs.put_objects(&records).await?
        } else {
            // Nobody began this page: none of its records exists, except a key recorded from
            // an earlier bucket of the job (first bucket wins), which only a later bucket's
            // page has to look for. So the records are written without a condition, batched.
            let earlier: BTreeSet<String> = if cursor.bucket_index == 0 {
                BTreeSet::new()
            } else {
                let keys: Vec<String> = records.iter().map(|r| r.key.clone()).collect();
                self.jobs
                    .get_objects(&job.job_id, &keys)
                    .await?
                    .into_iter()
                    .flatten()
                    .map(|r| r.key)
                    .collect()
            };
            let new: Vec<ObjectRecord> = records
                .iter()
                .filter(|r| !earlier.contains(&r.key))
                .cloned()
                .collect();
            if record_now {
                self.jobs.put_new_objects(&new).await?;
            } else {
                unrecorded = new;
            }
            records.iter().map(|r| !earlier.contains(&r.key)).collect()
        };
        let unwritten: Vec<String> = records
            .iter()
            .zip(&written)
            .filter(|(_, w)| !**w)
            .map(|(r, _)| r.key.clone())
            .collect();
        let stored: HashMap<String, ObjectRecord> = if unwritten.is_empty() {
            HashMap::new()
        } else {
            self.jobs
                .get_objects(&job.job_id, &unwritten)
                .await?
                .into_iter()
                .flatten()
                .map(|r| (r.key.clone(), r))
                .collect()
        };

        // The page's totals come from the recorded states, not from this listing: a replay
        // may list differently (our own dead attempt asked S3 already), while the records say
        // how each object was first classified and where it is (or will be) counted.
        let mut add = PlanTotals::default();
        let mut notes = BTreeSet::new();
        let mut candidates = Vec::new();
        for ((_, class), (record, was_written)) in
            listed.iter().zip(records.into_iter().zip(written))
        {
            let current = if was_written {
                Some(record.clone())
            } else {
                stored.get(&record.key).cloned()
            };
            let Some(current) = current else {
                return Err(Error::Internal(format!(
                    "object {} neither written nor found",
                    record.key
                )));
            };
            if current.bucket != record.bucket {
                continue; // same key from an earlier bucket: the first bucket wins
            }
            add.objects += 1;
            add.bytes += current.size;
            if current.settled_at_listing {
                if current.state == ObjectState::Restored {
                    add.restored_at_listing += 1;
                } else {
                    add.not_needed_at_listing += 1;
                }
                continue;
            }
            add.to_restore += 1;
            add.bytes_to_restore += current.size;
            add.requested += 1;
            let by_class = add
                .by_class
                .entry(current.storage_class.as_s3().to_string())
                .or_default();
            by_class.objects += 1;
            by_class.bytes += current.size;
            let plan = match class {
                Classification::Restore(plan) => Some(*plan),
                // Listed as running or restored now, recorded as planned: replan as archived.
                _ => match classify(
                    &current.storage_class,
                    None,
                    ArchiveState::Unknown,
                    job.tier,
                    self.settings.policy,
                ) {
                    Classification::Restore(plan) => Some(plan),
                    _ => None,
                },
            };
            if let Some(fallback) = plan.and_then(|p| p.fallback) {
                notes.insert(fallback.note());
            }
            // Fresh records: ask for those to restore (not those found running). Records found
            // (a replay) and still pending: check S3 first, then ask if needed.
            let ask = if was_written {
                matches!(class, Classification::Restore(_))
            } else {
                current.is_pending()
            };
            if ask {
                if let Some(plan) = plan {
                    candidates.push(Candidate {
                        record: current,
                        plan,
                        check_first: !was_written,
                    });
                }
            }
        }

        Ok(PreparedPage {
            commit: PageCommit {
                from: cursor.clone(),
                to: next,
                add,
                notes: notes.into_iter().collect(),
                keep_lease: None,
            },
            candidates,
            unrecorded,
        })
    }

    /// Requests a prepared page's candidates (step 4); returns the commit to apply (without
    /// lease), with the fallback notes the requests added.
    ///
    /// `issued` is signalled once every candidate has been handed to a request slot, so the
    /// next page's requests can follow while this page's last answers are still coming.
    async fn request(
        &self,
        job: Job,
        page: PreparedPage,
        issued: oneshot::Sender<()>,
    ) -> Result<PageCommit> {
        let job = &job;
        let PreparedPage {
            commit,
            candidates,
            unrecorded,
        } = page;
        // A candidate is asked for only once its record is written: the record is the "about
        // to ask" marker a replay relies on. (Keys are unique within a page.)
        let mut waiting: HashMap<String, Candidate> = candidates
            .into_iter()
            .map(|c| (c.record.key.clone(), c))
            .collect();
        let chunks: Vec<_> = unrecorded
            .chunks(RECORD_CHUNK)
            .map(|chunk| {
                let asks = chunk
                    .iter()
                    .filter_map(|r| waiting.remove(&r.key))
                    .collect();
                self.record_then(chunk, asks)
            })
            .collect();
        let recorded_already = waiting.into_values().map(Ok);
        let recorded = stream::iter(chunks)
            .buffered(RECORD_CHUNKS_IN_FLIGHT)
            .flat_map(stream::iter);
        let all_handed_out = stream::once(async move {
            let _ = issued.send(());
            None
        });
        let results: Vec<Result<(Option<String>, Option<ObjectRecord>)>> =
            stream::iter(recorded_already)
                .chain(recorded)
                .map(Some)
                .chain(all_handed_out)
                .map(|candidate| async move {
                    match candidate {
                        Some(Ok(candidate)) => Some(self.request_one(job, candidate).await),
                        Some(Err(unrecorded)) => Some(Err(unrecorded)),
                        None => None,
                    }
                })
                .buffer_unordered(self.settings.concurrency.max(1))
                .filter_map(std::future::ready)
                .collect()
                .await;
        let mut notes: BTreeSet<String> = commit.notes.iter().cloned().collect();
        let mut to_mark = Vec::new();
        for result in results {
            let (note, mark) = result?;
            notes.extend(note);
            to_mark.extend(mark);
        }
        if !to_mark.is_empty() {
            self.jobs.mark_requested(&job.job_id, &to_mark).await?;
        }
        Ok(PageCommit {
            notes: notes.into_iter().collect(),
            ..commit
        })
    }

    /// Writes fresh records, then hands over the candidates they are the markers of.
    async fn record_then(
        &self,
        records: &[ObjectRecord],
        asks: Vec<Candidate>,
    ) -> Vec<Result<Candidate>> {
        match self.jobs.put_new_objects(records).await {
            Ok(()) => asks.into_iter().map(Ok).collect(),
            Err(err) => vec![Err(err)],
        }
    }

    /// Begins the page after `job`'s cursor ahead of time (under `owner`'s lease) and prepares
    /// it; returns the job as it will be once the cursor's page is committed.
    async fn prepare_next(
        &self,
        job: &Job,
        owner: &str,
        to: &Cursor,
    ) -> Result<(Job, PreparedPage)> {
        let replay = self
            .jobs
            .begin_next_page(&job.job_id, owner, to.page)
            .await?;
        let next = Job {
            cursor: to.clone(),
            ..job.clone()
        };
        let prepared = self.prepare(&next, replay, true).await?;
        Ok((next, prepared))
    }

    /// Issues (or, on a replay, first checks) one object's restore and settles what is final.
    /// Returns a fallback note and the record to mark `requested`.
    async fn request_one(
        &self,
        job: &Job,
        candidate: Candidate,
    ) -> Result<(Option<String>, Option<ObjectRecord>)> {
        let Candidate {
            mut record,
            mut plan,
            check_first,
        } = candidate;
        // A record needs an update only if it is still `planned` or the tier changed.
        let recorded_tier = record.tier;
        let needs_mark = move |record: &ObjectRecord| {
            record.state == ObjectState::Planned || record.tier != recorded_tier
        };
        let target = ObjectRef {
            bucket: record.bucket.clone(),
            key: record.key.clone(),
            version_id: record.version_id.clone(),
        };
        if check_first {
            match self.retrying(|| self.objects.head(&target)).await {
                Ok(head) => match head.classify(job.tier, self.settings.policy) {
                    Classification::Readable => {
                        return self
                            .settle(&record, ObjectState::NotNeeded, None, None)
                            .await
                    }
                    Classification::AlreadyRestored(status) => {
                        return self
                            .settle(&record, ObjectState::Restored, status.expiry, None)
                            .await
                    }
                    Classification::Pending => {
                        return Ok((None, needs_mark(&record).then_some(record)));
                    }
                    Classification::Restore(_) => {}
                },
                Err(err) if err.http_status() == 404 => {
                    return self
                        .settle(&record, ObjectState::Failed, None, Some(err.to_string()))
                        .await
                }
                Err(err) => return Err(err),
            }
        }
        let mut note = plan.fallback.map(|f| f.note());
        loop {
            let outcome = self
                .retrying(|| async {
                    self.limiter.acquire().await;
                    self.objects.request_restore(&target, plan.params).await
                })
                .await;
            record.tier = Some(plan.params.tier);
            return match outcome {
                Ok(RestoreOutcome::Started) | Ok(RestoreOutcome::InProgress) => {
                    Ok((note, needs_mark(&record).then_some(record)))
                }
                Ok(RestoreOutcome::AlreadyRestored) => {
                    let (_, none) = self
                        .settle(&record, ObjectState::Restored, None, None)
                        .await?;
                    Ok((note, none))
                }
                Ok(RestoreOutcome::NotNeeded) => {
                    let (_, none) = self
                        .settle(&record, ObjectState::NotNeeded, None, None)
                        .await?;
                    Ok((note, none))
                }
                Ok(RestoreOutcome::ExpeditedUnavailable) => {
                    match plan.fallback_for_expedited_unavailable() {
                        Some(fallback) => {
                            note = fallback.fallback.map(|f| f.note());
                            plan = fallback;
                            continue;
                        }
                        None => {
                            let (_, none) = self
                                .settle(
                                    &record,
                                    ObjectState::Failed,
                                    None,
                                    Some("expedited capacity unavailable".into()),
                                )
                                .await?;
                            Ok((note, none))
                        }
                    }
                }
                Err(err) => {
                    tracing::warn!(
                        job_id = %job.job_id,
                        bucket = %record.bucket,
                        key = %record.key,
                        error = %err,
                        "restore request failed"
                    );
                    let (_, none) = self
                        .settle(&record, ObjectState::Failed, None, Some(err.to_string()))
                        .await?;
                    Ok((note, none))
                }
            };
        }
    }

    async fn settle(
        &self,
        record: &ObjectRecord,
        state: ObjectState,
        expiry: Option<OffsetDateTime>,
        error: Option<String>,
    ) -> Result<(Option<String>, Option<ObjectRecord>)> {
        self.jobs
            .settle(
                record,
                &Settlement {
                    state,
                    expiry,
                    error,
                },
            )
            .await?;
        Ok((None, None))
    }

    /// Retries upstream failures (throttling, 5xx, network) with exponential backoff and full
    /// jitter; client errors (4xx mapped to other variants) are returned at once.
    async fn retrying<T, F, Fut>(&self, mut call: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match call().await {
                Err(err @ Error::Upstream { .. }) if attempt < self.settings.max_attempts => {
                    if !is_retryable(&err) {
                        return Err(err);
                    }
                    let cap = self
                        .settings
                        .backoff
                        .saturating_mul(1 << attempt.min(16))
                        .min(Duration::from_secs(5));
                    let wait = cap.mul_f64(fastrand::f64());
                    tracing::debug!(attempt, ?wait, error = %err, "retrying");
                    tokio::time::sleep(wait).await;
                }
                other => return other,
            }
        }
    }
}

/// Jobs whose fan-out a `restore-fanout` invocation should continue: from DynamoDB stream
/// records of job items (`sk = META`) still listing (`listing_done = false`, state `planning`),
/// or from a direct invocation `{"jobId": "..."}` (operators, the sweeper). Other records are
/// ignored. Parsed from JSON so no SDK or event type leaks into the domain.
pub fn jobs_to_continue(event: &serde_json::Value) -> Vec<String> {
    let mut jobs = BTreeSet::new();
    if let Some(id) = event.get("jobId").and_then(|v| v.as_str()) {
        jobs.insert(id.to_string());
    }
    for record in event
        .get("Records")
        .and_then(|r| r.as_array())
        .into_iter()
        .flatten()
    {
        if record.get("eventName").and_then(|v| v.as_str()) == Some("REMOVE") {
            continue;
        }
        let Some(image) = record.pointer("/dynamodb/NewImage") else {
            continue;
        };
        let text = |name: &str| {
            image
                .pointer(&format!("/{name}/S"))
                .and_then(|v| v.as_str())
        };
        let listing_done = image
            .pointer("/listing_done/BOOL")
            .and_then(|v| v.as_bool())
            .unwrap_or(true);
        if text("sk") == Some("META") && text("state") == Some("planning") && !listing_done {
            if let Some(id) = text("job_id") {
                jobs.insert(id.to_string());
            }
        }
    }
    jobs.into_iter().collect()
}

/// Upstream errors worth retrying: throttling, 5xx and transport trouble; not S3's client
/// errors (InvalidArgument, AccessDenied...), which fail the object at once.
fn is_retryable(err: &Error) -> bool {
    let text = err.to_string();
    const PERMANENT: [&str; 5] = [
        "InvalidArgument",
        "AccessDenied",
        "InvalidObjectState",
        "NoSuchKey",
        "MalformedXML",
    ];
    !PERMANENT.iter().any(|p| text.contains(p))
}

fn record_for(job: &Job, object: &ListedObject, class: &Classification) -> ObjectRecord {
    let (expiry, tier) = match class {
        Classification::AlreadyRestored(status) => (status.expiry, None),
        Classification::Restore(plan) => (None, Some(plan.params.tier)),
        _ => (None, None),
    };
    ObjectRecord {
        settled_at_listing: !matches!(class, Classification::Restore(_) | Classification::Pending),
        job_id: job.job_id.clone(),
        bucket: object.bucket.clone(),
        key: object.key.clone(),
        version_id: None,
        size: object.size,
        storage_class: object.storage_class.clone(),
        tier,
        // Recorded as requested before the request goes out: the conditional put is the
        // "about to ask" marker. A replay finds the record and checks S3 before asking again.
        state: match class {
            Classification::Restore(_) => ObjectState::Requested,
            other => other.initial_state(),
        },
        shard: shard_of(&object.bucket, &object.key, job.shards),
        expiry,
        error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::StoredObject;
    use crate::adapters::memory::{MemoryJobStore, MemoryObjectStore, ScriptedRestore};
    use crate::domain::job::JobView;
    use crate::domain::object::RestoreStatus;
    use crate::domain::storage::{RetrievalTier, StorageClass};

    fn settings() -> FanoutSettings {
        FanoutSettings {
            page_size: 3,
            rate_limit: 100_000,
            backoff: Duration::from_millis(1),
            ..Default::default()
        }
    }

    async fn start(jobs: &Arc<MemoryJobStore>, buckets: &[&str], tier: RetrievalTier) -> Job {
        let job = Job::new(
            uuid::Uuid::now_v7().to_string(),
            "42".into(),
            "ed@example.com".into(),
            "p/".into(),
            "p/".into(),
            None,
            tier,
            buckets.iter().map(|b| b.to_string()).collect(),
            4,
            OffsetDateTime::now_utc(),
        );
        jobs.create_job(&job).await.unwrap();
        job
    }

    async fn view(jobs: &MemoryJobStore, id: &str) -> JobView {
        jobs.get_job(id).await.unwrap().unwrap()
    }

    fn state_of(jobs: &MemoryJobStore, id: &str, key: &str) -> ObjectRecord {
        jobs.objects(id).into_iter().find(|o| o.key == key).unwrap()
    }

    /// A Bulk job over bucket `a` holding GLACIER objects of 1 byte under these keys.
    async fn glacier_job(
        keys: impl IntoIterator<Item = String>,
    ) -> (Arc<MemoryObjectStore>, Arc<MemoryJobStore>, Job) {
        let s3 = Arc::new(MemoryObjectStore::new());
        let jobs = Arc::new(MemoryJobStore::new());
        for key in keys {
            s3.add_object("a", &key, 1, StorageClass::Glacier);
        }
        let job = start(&jobs, &["a"], RetrievalTier::Bulk).await;
        (s3, jobs, job)
    }

    /// The records a Bulk fan-out makes of a listing.
    fn records_of(job: &Job, listed: &[ListedObject]) -> Vec<ObjectRecord> {
        listed
            .iter()
            .map(|o| {
                record_for(
                    job,
                    o,
                    &o.classify(RetrievalTier::Bulk, RestorePolicy::default()),
                )
            })
            .collect()
    }

    /// Asks S3 for a Bulk restore of each object, as a dead invocation did.
    async fn ask(s3: &MemoryObjectStore, listed: &[ListedObject]) {
        for o in listed {
            let params = match o.classify(RetrievalTier::Bulk, RestorePolicy::default()) {
                Classification::Restore(plan) => plan.params,
                other => panic!("{other:?}"),
            };
            s3.request_restore(&o.object_ref(), params).await.unwrap();
        }
    }

    #[tokio::test]
    async fn every_answer_class_is_mapped() {
        let s3 = Arc::new(MemoryObjectStore::new());
        let jobs = Arc::new(MemoryJobStore::new());
        s3.add_object("a", "p/started", 10, StorageClass::Glacier);
        s3.add_object("a", "p/readable", 5, StorageClass::Standard);
        s3.add_object("a", "p/deep", 20, StorageClass::DeepArchive);
        s3.add_object("a", "p/it-active", 7, StorageClass::IntelligentTiering);
        s3.add_object("a", "p/in-progress", 11, StorageClass::Glacier);
        s3.script_restore(
            "a",
            "p/in-progress",
            ScriptedRestore::Outcome(RestoreOutcome::InProgress),
        );
        s3.add_object("a", "p/capacity", 12, StorageClass::Glacier);
        s3.script_restore(
            "a",
            "p/capacity",
            ScriptedRestore::Outcome(RestoreOutcome::ExpeditedUnavailable),
        );
        s3.add_object("a", "p/throttled", 13, StorageClass::Glacier);
        s3.script_restore(
            "a",
            "p/throttled",
            ScriptedRestore::Error("SlowDown: 503".into()),
        );
        s3.script_restore(
            "a",
            "p/throttled",
            ScriptedRestore::Error("SlowDown: 503".into()),
        );
        s3.add_object("a", "p/denied", 14, StorageClass::Glacier);
        for _ in 0..5 {
            s3.script_restore(
                "a",
                "p/denied",
                ScriptedRestore::Error("AccessDenied".into()),
            );
        }
        s3.add_object("a", "p/restored-200", 15, StorageClass::Glacier);
        s3.script_restore(
            "a",
            "p/restored-200",
            ScriptedRestore::Outcome(RestoreOutcome::AlreadyRestored),
        );
        let mut copy = StoredObject::new(16, StorageClass::Glacier);
        copy.restore = Some(RestoreStatus {
            ongoing: false,
            expiry: None,
        });
        s3.insert("a", "p/has-copy", copy);
        let mut running = StoredObject::new(17, StorageClass::DeepArchive);
        running.restore = Some(RestoreStatus {
            ongoing: true,
            expiry: None,
        });
        s3.insert("a", "p/running", running);

        let job = start(&jobs, &["a"], RetrievalTier::Expedited).await;
        let fanout = Fanout::new(s3.clone(), jobs.clone(), settings());
        let deadline = Instant::now() + Duration::from_secs(30);
        assert_eq!(
            fanout.run(&job.job_id, deadline).await.unwrap(),
            RunOutcome::ListingDone
        );

        let id = &job.job_id;
        use ObjectState::*;
        for (key, state) in [
            ("p/started", Requested),
            ("p/readable", NotNeeded),
            ("p/deep", Requested),
            ("p/it-active", NotNeeded),
            ("p/in-progress", Requested),
            ("p/capacity", Requested),
            ("p/throttled", Requested),
            ("p/denied", Failed),
            ("p/restored-200", Restored),
            ("p/has-copy", Restored),
            ("p/running", Requested),
        ] {
            assert_eq!(state_of(&jobs, id, key).state, state, "{key}");
        }
        // Deep Archive never gets Expedited; the capacity error fell back to Standard.
        assert_eq!(
            state_of(&jobs, id, "p/deep").tier,
            Some(RetrievalTier::Standard)
        );
        assert_eq!(
            state_of(&jobs, id, "p/capacity").tier,
            Some(RetrievalTier::Standard)
        );
        assert_eq!(
            state_of(&jobs, id, "p/started").tier,
            Some(RetrievalTier::Expedited)
        );
        assert!(state_of(&jobs, id, "p/denied")
            .error
            .unwrap()
            .contains("AccessDenied"));
        // Throttling was retried; a permanent error was not.
        assert_eq!(s3.restore_requests("a", "p/throttled"), 3);
        assert_eq!(s3.restore_requests("a", "p/denied"), 1);
        assert_eq!(s3.restore_requests("a", "p/capacity"), 2);
        // Objects found restored or running at listing were not asked for.
        assert_eq!(s3.restore_requests("a", "p/has-copy"), 0);
        assert_eq!(s3.restore_requests("a", "p/running"), 0);
        assert_eq!(s3.restore_requests("a", "p/readable"), 0);

        let v = view(&jobs, id).await;
        assert_eq!(v.job.totals.objects, 11);
        assert_eq!(v.job.totals.not_needed_at_listing, 1);
        assert_eq!(v.job.totals.restored_at_listing, 1);
        assert_eq!(v.settled.not_needed, 1); // IT object answered 403
        assert_eq!(v.settled.restored, 1); // answered 200
        assert_eq!(v.settled.failed, 1);
        assert_eq!(v.pending(), 6);
        assert_eq!(v.job.state, crate::domain::state::JobState::Restoring);
        assert_eq!(v.job.notes.len(), 2, "{:?}", v.job.notes);
    }

    #[test]
    fn stream_records_select_jobs_still_listing() {
        let event = serde_json::json!({"Records": [
            {"eventName": "MODIFY", "dynamodb": {"NewImage": {
                "sk": {"S": "META"}, "job_id": {"S": "j1"}, "state": {"S": "planning"},
                "listing_done": {"BOOL": false}}}},
            {"eventName": "MODIFY", "dynamodb": {"NewImage": {
                "sk": {"S": "META"}, "job_id": {"S": "j2"}, "state": {"S": "restoring"},
                "listing_done": {"BOOL": true}}}},
            {"eventName": "INSERT", "dynamodb": {"NewImage": {
                "sk": {"S": "OBJ#k"}, "job_id": {"S": "j3"}, "state": {"S": "planned"}}}},
            {"eventName": "INSERT", "dynamodb": {"NewImage": {
                "sk": {"S": "META"}, "job_id": {"S": "j1"}, "state": {"S": "planning"},
                "listing_done": {"BOOL": false}}}},
            {"eventName": "REMOVE", "dynamodb": {"OldImage": {}}}
        ]});
        assert_eq!(jobs_to_continue(&event), vec!["j1".to_string()]);
        assert_eq!(
            jobs_to_continue(&serde_json::json!({"jobId": "j9"})),
            vec!["j9".to_string()]
        );
        assert!(jobs_to_continue(&serde_json::json!({"x": 1})).is_empty());
    }

    #[tokio::test]
    async fn a_replayed_page_requests_nothing_twice() {
        let (s3, jobs, job) = glacier_job((0..5).map(|i| format!("p/{i}"))).await;
        // Simulate a dead invocation: it recorded the first page and asked S3 for two of its
        // objects, then died before marking them or moving the cursor.
        let listed = s3.list_page("a", "p/", None, 3).await.unwrap();
        jobs.put_objects(&records_of(&job, &listed.objects))
            .await
            .unwrap();
        ask(&s3, &listed.objects[..2]).await;
        let now = OffsetDateTime::now_utc();
        // Its lease is still live: a new invocation must wait.
        jobs.acquire_lease(&job.job_id, "dead", now, now + time::Duration::seconds(60))
            .await
            .unwrap();
        let fanout = Fanout::new(s3.clone(), jobs.clone(), settings());
        let deadline = Instant::now() + Duration::from_secs(30);
        assert!(matches!(
            fanout.run(&job.job_id, deadline).await.unwrap(),
            RunOutcome::Busy(_)
        ));
        // Once it expires the page is replayed: the two asked ones are found via HeadObject.
        jobs.acquire_lease(&job.job_id, "dead", now, now)
            .await
            .unwrap();
        assert_eq!(
            fanout.run(&job.job_id, deadline).await.unwrap(),
            RunOutcome::ListingDone
        );
        for i in 0..5 {
            assert_eq!(s3.restore_requests("a", &format!("p/{i}")), 1, "p/{i}");
        }
        let v = view(&jobs, &job.job_id).await;
        assert_eq!(v.job.totals.objects, 5);
        assert_eq!(v.job.totals.requested, 5);
        for o in jobs.objects(&job.job_id) {
            assert_eq!(o.state, ObjectState::Requested, "{o:?}");
        }
    }

    #[tokio::test]
    async fn a_page_begun_ahead_is_replayed_after_a_crash() {
        let (s3, jobs, job) = glacier_job((0..6).map(|i| format!("p/{i}"))).await;
        // A dead invocation: it recorded page 0 and asked S3 for one of its objects, while it
        // began page 1 ahead and recorded it; then it died before committing page 0.
        let now = OffsetDateTime::now_utc();
        jobs.acquire_lease(&job.job_id, "dead", now, now)
            .await
            .unwrap();
        let first = s3.list_page("a", "p/", None, 3).await.unwrap();
        jobs.put_objects(&records_of(&job, &first.objects))
            .await
            .unwrap();
        ask(&s3, &first.objects[..1]).await;
        assert!(!jobs.begin_next_page(&job.job_id, "dead", 1).await.unwrap());
        let second = s3
            .list_page("a", "p/", first.next.as_deref(), 3)
            .await
            .unwrap();
        let ahead = records_of(&job, &second.objects);
        jobs.put_new_objects(&ahead).await.unwrap();
        // An event settled one of page 1's objects meanwhile (restored by someone else).
        let settlement = Settlement {
            state: ObjectState::Restored,
            expiry: None,
            error: None,
        };
        assert!(jobs.settle(&ahead[0], &settlement).await.unwrap());

        let fanout = Fanout::new(s3.clone(), jobs.clone(), settings());
        let deadline = Instant::now() + Duration::from_secs(30);
        assert_eq!(
            fanout.run(&job.job_id, deadline).await.unwrap(),
            RunOutcome::ListingDone
        );
        // Page 1 was known as begun: its settled record was neither reset nor asked again.
        assert_eq!(
            state_of(&jobs, &job.job_id, &ahead[0].key).state,
            ObjectState::Restored
        );
        assert_eq!(s3.restore_requests("a", &ahead[0].key), 0);
        for i in 1..6 {
            assert_eq!(
                s3.restore_requests("a", &format!("p/{i}")),
                (i != 3) as usize,
                "p/{i}"
            );
        }
        assert_eq!(s3.restore_requests("a", "p/0"), 1);
        let v = view(&jobs, &job.job_id).await;
        assert_eq!(v.job.totals.objects, 6);
        assert_eq!(v.restored(), 1);
    }

    /// S3 that refuses a RestoreObject for an object the job store has no record of: the
    /// record is the marker a replay relies on, so it must be written first.
    struct RecordedFirst {
        s3: Arc<MemoryObjectStore>,
        jobs: Arc<MemoryJobStore>,
        job_id: String,
    }

    #[async_trait::async_trait]
    impl ObjectStore for RecordedFirst {
        async fn list_page(
            &self,
            bucket: &str,
            prefix: &str,
            continuation: Option<&str>,
            max_keys: i32,
        ) -> Result<crate::domain::object::ListPage> {
            self.s3
                .list_page(bucket, prefix, continuation, max_keys)
                .await
        }
        async fn request_restore(
            &self,
            object: &ObjectRef,
            params: crate::domain::object::RestoreParams,
        ) -> Result<RestoreOutcome> {
            let recorded = self
                .jobs
                .objects(&self.job_id)
                .iter()
                .any(|o| o.key == object.key && o.state == ObjectState::Requested);
            assert!(recorded, "{} asked before it was recorded", object.key);
            self.s3.request_restore(object, params).await
        }
        async fn head(&self, object: &ObjectRef) -> Result<crate::domain::object::ObjectHead> {
            self.s3.head(object).await
        }
        async fn put(&self, bucket: &str, key: &str, body: Vec<u8>, ct: &str) -> Result<()> {
            self.s3.put(bucket, key, body, ct).await
        }
    }

    #[tokio::test]
    async fn every_object_is_recorded_before_it_is_asked_for() {
        let (s3, jobs, job) = glacier_job((0..2500).map(|i| format!("p/{i:05}"))).await;
        let checked = Arc::new(RecordedFirst {
            s3: s3.clone(),
            jobs: jobs.clone(),
            job_id: job.job_id.clone(),
        });
        // Pages of 1000: the first is recorded in chunks while its requests go out, the next
        // ones ahead of their requests.
        let settings = FanoutSettings {
            page_size: 1000,
            ..settings()
        };
        let fanout = Fanout::new(checked, jobs.clone(), settings);
        let deadline = Instant::now() + Duration::from_secs(30);
        assert_eq!(
            fanout.run(&job.job_id, deadline).await.unwrap(),
            RunOutcome::ListingDone
        );
        for i in 0..2500 {
            assert_eq!(s3.restore_requests("a", &format!("p/{i:05}")), 1);
        }
        assert_eq!(view(&jobs, &job.job_id).await.job.totals.requested, 2500);
    }

    #[tokio::test]
    async fn duplicates_across_buckets_count_once_and_time_budget_is_kept() {
        let s3 = Arc::new(MemoryObjectStore::new());
        let jobs = Arc::new(MemoryJobStore::new());
        for i in 0..4 {
            s3.add_object("a", &format!("p/{i}"), 1, StorageClass::Glacier);
            s3.add_object("b", &format!("p/{i}"), 100, StorageClass::Glacier);
            s3.add_object("c", &format!("p/{}", i + 2), 1000, StorageClass::Standard);
        }
        let job = start(&jobs, &["a", "b", "c"], RetrievalTier::Bulk).await;
        let fanout = Fanout::new(s3.clone(), jobs.clone(), settings());
        // A spent budget commits nothing and releases the lease.
        assert_eq!(
            fanout.run(&job.job_id, Instant::now()).await.unwrap(),
            RunOutcome::OutOfTime
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        assert_eq!(
            fanout.run(&job.job_id, deadline).await.unwrap(),
            RunOutcome::ListingDone
        );
        let v = view(&jobs, &job.job_id).await;
        assert_eq!(v.job.totals.objects, 6);
        assert_eq!(v.job.totals.bytes, 4 + 2000);
        assert_eq!(v.job.totals.not_needed_at_listing, 2);
        for i in 0..4 {
            assert_eq!(s3.restore_requests("a", &format!("p/{i}")), 1);
            assert_eq!(s3.restore_requests("b", &format!("p/{i}")), 0);
        }
        assert_eq!(
            fanout.run(&job.job_id, deadline).await.unwrap(),
            RunOutcome::NothingToDo
        );
    }
}
