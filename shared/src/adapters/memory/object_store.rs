//! In-memory [`ObjectStore`]: a catalogue of objects that answers RestoreObject the way S3
//! does (DESIGN §4), plus scripted answers for what S3 does only sometimes (409 InProgress,
//! 503 Expedited unavailable, errors) and counters so tests can prove "never asked twice".

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::domain::object::{
    ListPage, ListedObject, ObjectHead, ObjectRef, RestoreOutcome, RestoreParams, RestoreStatus,
};
use crate::domain::storage::{ArchiveStatus, RetrievalTier, StorageClass};
use crate::ports::ObjectStore;
use crate::{Error, Result};

/// S3's cap on one listing page.
const MAX_KEYS: i32 = 1000;

/// One stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub size: u64,
    pub storage_class: StorageClass,
    /// What `x-amz-restore` would say; `None` when no restore was ever asked for.
    pub restore: Option<RestoreStatus>,
    /// Intelligent-Tiering archive tier; `None` when in an access tier readable at once.
    pub archive_status: Option<ArchiveStatus>,
    pub body: Vec<u8>,
    pub content_type: Option<String>,
}

impl StoredObject {
    /// An object of `size` bytes in `class`, never restored, no body.
    pub fn new(size: u64, storage_class: StorageClass) -> Self {
        StoredObject {
            size,
            storage_class,
            restore: None,
            archive_status: None,
            body: Vec::new(),
            content_type: None,
        }
    }
}

/// A scripted answer to the next RestoreObject call on one key, overriding the natural one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptedRestore {
    /// Answer with this outcome (e.g. `InProgress` for a 409, `ExpeditedUnavailable` for a 503).
    Outcome(RestoreOutcome),
    /// Fail with an upstream error carrying this message.
    Error(String),
}

/// Operations whose next call can be made to fail with [`MemoryObjectStore::fail_next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectStoreOp {
    List,
    Head,
    Put,
}

type Key = (String, String);

#[derive(Default)]
struct Inner {
    buckets: BTreeSet<String>,
    objects: BTreeMap<Key, StoredObject>,
    scripts: HashMap<Key, VecDeque<ScriptedRestore>>,
    failures: HashMap<ObjectStoreOp, VecDeque<String>>,
    restore_calls: Vec<(ObjectRef, RestoreParams)>,
    /// `Days` of the last accepted restore per object, applied by `complete_restore`.
    days: HashMap<Key, Option<i32>>,
    heads: HeadCalls,
}

/// HeadObject calls: how long each takes and how many ran at once, for callers that must not
/// check objects one at a time.
#[derive(Default)]
struct HeadCalls {
    delay: std::time::Duration,
    calls: usize,
    in_flight: usize,
    most_in_flight: usize,
}

/// The in-memory object store. Cheap to share behind an `Arc`.
#[derive(Default)]
pub struct MemoryObjectStore {
    inner: Mutex<Inner>,
}

fn key_of(object: &ObjectRef) -> Key {
    (object.bucket.clone(), object.key.clone())
}

fn invalid_argument(message: String) -> Error {
    Error::upstream("s3", format!("InvalidArgument: {message}"))
}

impl MemoryObjectStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking test thread must not hide the state from the assertions that follow.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes every HeadObject take `delay` (a stand-in for S3's latency), so that calls
    /// made concurrently overlap.
    pub fn delay_heads(&self, delay: std::time::Duration) {
        self.lock().heads.delay = delay;
    }

    /// HeadObject calls so far, and the most that were in flight at once.
    pub fn head_calls(&self) -> (usize, usize) {
        let heads = &self.lock().heads;
        (heads.calls, heads.most_in_flight)
    }

    /// Creates an empty bucket (adding an object creates its bucket too).
    pub fn create_bucket(&self, bucket: &str) {
        self.lock().buckets.insert(bucket.to_string());
    }

    /// Adds (or replaces) an object of `size` bytes in `class`, never restored.
    pub fn add_object(&self, bucket: &str, key: &str, size: u64, class: StorageClass) {
        self.insert(bucket, key, StoredObject::new(size, class));
    }

    /// Adds (or replaces) an object with full control over its state.
    pub fn insert(&self, bucket: &str, key: &str, object: StoredObject) {
        let mut inner = self.lock();
        inner.buckets.insert(bucket.to_string());
        inner
            .objects
            .insert((bucket.to_string(), key.to_string()), object);
    }

    /// The stored object, to assert on its state or body.
    pub fn object(&self, bucket: &str, key: &str) -> Option<StoredObject> {
        self.lock()
            .objects
            .get(&(bucket.to_string(), key.to_string()))
            .cloned()
    }

    /// Queues a scripted answer for the next RestoreObject call on this key; answers are used
    /// in order, then the object's natural answer resumes.
    pub fn script_restore(&self, bucket: &str, key: &str, answer: ScriptedRestore) {
        self.lock()
            .scripts
            .entry((bucket.to_string(), key.to_string()))
            .or_default()
            .push_back(answer);
    }

    /// Makes the next call of `op` fail with an upstream error.
    pub fn fail_next(&self, op: ObjectStoreOp, message: &str) {
        self.lock()
            .failures
            .entry(op)
            .or_default()
            .push_back(message.to_string());
    }

    /// Finishes a running restore as S3 would: the restored copy is readable until now + the
    /// requested `Days` (Intelligent-Tiering objects move back to an access tier instead and
    /// carry no expiry). Returns false when the object has no running restore.
    pub fn complete_restore(&self, bucket: &str, key: &str) -> bool {
        let mut inner = self.lock();
        let k = (bucket.to_string(), key.to_string());
        let days = inner.days.get(&k).copied().flatten();
        let Some(object) = inner.objects.get_mut(&k) else {
            return false;
        };
        if !object.restore.as_ref().is_some_and(|r| r.ongoing) {
            return false;
        }
        let expiry = days.map(|d| OffsetDateTime::now_utc() + time::Duration::days(d.into()));
        object.restore = Some(RestoreStatus {
            ongoing: false,
            expiry,
        });
        if object.storage_class == StorageClass::IntelligentTiering {
            object.archive_status = None;
        }
        true
    }

    /// How many RestoreObject calls this key received (scripted and failed ones included).
    pub fn restore_requests(&self, bucket: &str, key: &str) -> usize {
        self.lock()
            .restore_calls
            .iter()
            .filter(|(o, _)| o.bucket == bucket && o.key == key)
            .count()
    }

    /// Every RestoreObject call, in order, with its parameters.
    pub fn restore_calls(&self) -> Vec<(ObjectRef, RestoreParams)> {
        self.lock().restore_calls.clone()
    }

    fn take_failure(&self, op: ObjectStoreOp) -> Result<()> {
        match self
            .lock()
            .failures
            .get_mut(&op)
            .and_then(VecDeque::pop_front)
        {
            Some(message) => Err(Error::upstream("s3", message)),
            None => Ok(()),
        }
    }
}

/// How S3 answers RestoreObject for an object in this state.
fn natural_answer(
    object: &mut StoredObject,
    params: RestoreParams,
    label: &str,
) -> Result<RestoreOutcome> {
    let ongoing = object.restore.as_ref().map(|r| r.ongoing);
    match object.storage_class {
        StorageClass::Glacier | StorageClass::DeepArchive => {
            let Some(days) = params.days else {
                return Err(invalid_argument(format!(
                    "Days is required to restore {label} from {}",
                    object.storage_class
                )));
            };
            if object.storage_class == StorageClass::DeepArchive
                && params.tier == RetrievalTier::Expedited
            {
                return Err(invalid_argument(format!(
                    "the Expedited tier is not available for DEEP_ARCHIVE ({label})"
                )));
            }
            Ok(match ongoing {
                Some(true) => RestoreOutcome::InProgress,
                Some(false) => {
                    // S3 extends the restored copy's life and answers 200.
                    let expiry = OffsetDateTime::now_utc() + time::Duration::days(days.into());
                    object.restore = Some(RestoreStatus {
                        ongoing: false,
                        expiry: Some(expiry),
                    });
                    RestoreOutcome::AlreadyRestored
                }
                None => {
                    object.restore = Some(RestoreStatus {
                        ongoing: true,
                        expiry: None,
                    });
                    RestoreOutcome::Started
                }
            })
        }
        StorageClass::IntelligentTiering => {
            if params.days.is_some() {
                return Err(invalid_argument(format!(
                    "Days must not be given for INTELLIGENT_TIERING ({label})"
                )));
            }
            if ongoing == Some(true) {
                return Ok(RestoreOutcome::InProgress);
            }
            match object.archive_status {
                // 403 ObjectAlreadyInActiveTierError
                None => Ok(RestoreOutcome::NotNeeded),
                Some(ArchiveStatus::DeepArchiveAccess)
                    if params.tier == RetrievalTier::Expedited =>
                {
                    Err(invalid_argument(format!(
                        "the Expedited tier is not available for the Deep Archive Access tier ({label})"
                    )))
                }
                Some(_) => {
                    object.restore = Some(RestoreStatus {
                        ongoing: true,
                        expiry: None,
                    });
                    Ok(RestoreOutcome::Started)
                }
            }
        }
        // 403 InvalidObjectState: readable as stored.
        _ => Ok(RestoreOutcome::NotNeeded),
    }
}

#[async_trait]
impl ObjectStore for MemoryObjectStore {
    async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        continuation: Option<&str>,
        max_keys: i32,
    ) -> Result<ListPage> {
        self.take_failure(ObjectStoreOp::List)?;
        let inner = self.lock();
        if !inner.buckets.contains(bucket) {
            return Err(Error::not_found(
                "no_such_bucket",
                format!("bucket {bucket:?} does not exist"),
            ));
        }
        let limit = if max_keys <= 0 || max_keys > MAX_KEYS {
            MAX_KEYS
        } else {
            max_keys
        } as usize;
        let mut matching = inner
            .objects
            .iter()
            .filter(|((b, k), _)| b == bucket && k.starts_with(prefix))
            .filter(|((_, k), _)| continuation.is_none_or(|after| k.as_str() > after));
        let objects: Vec<ListedObject> = matching
            .by_ref()
            .take(limit)
            .map(|((b, k), o)| ListedObject {
                bucket: b.clone(),
                key: k.clone(),
                size: o.size,
                storage_class: o.storage_class.clone(),
                restore: o.restore.clone(),
            })
            .collect();
        let next = match matching.next() {
            Some(_) => objects.last().map(|o| o.key.clone()),
            None => None,
        };
        Ok(ListPage { objects, next })
    }

    async fn request_restore(
        &self,
        object: &ObjectRef,
        params: RestoreParams,
    ) -> Result<RestoreOutcome> {
        let mut inner = self.lock();
        let k = key_of(object);
        inner.restore_calls.push((object.clone(), params));
        if let Some(answer) = inner.scripts.get_mut(&k).and_then(VecDeque::pop_front) {
            return match answer {
                ScriptedRestore::Outcome(outcome) => Ok(outcome),
                ScriptedRestore::Error(message) => Err(Error::upstream("s3", message)),
            };
        }
        let label = format!("s3://{}/{}", object.bucket, object.key);
        let stored = inner
            .objects
            .get_mut(&k)
            .ok_or_else(|| Error::not_found("no_such_key", format!("{label} does not exist")))?;
        let outcome = natural_answer(stored, params, &label)?;
        if outcome == RestoreOutcome::Started {
            inner.days.insert(k, params.days);
        }
        Ok(outcome)
    }

    async fn head(&self, object: &ObjectRef) -> Result<ObjectHead> {
        self.take_failure(ObjectStoreOp::Head)?;
        let delay = {
            let heads = &mut self.lock().heads;
            heads.calls += 1;
            heads.in_flight += 1;
            heads.most_in_flight = heads.most_in_flight.max(heads.in_flight);
            heads.delay
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let mut inner = self.lock();
        inner.heads.in_flight -= 1;
        let stored = inner.objects.get(&key_of(object)).ok_or_else(|| {
            Error::not_found(
                "no_such_key",
                format!("s3://{}/{} does not exist", object.bucket, object.key),
            )
        })?;
        Ok(ObjectHead {
            size: stored.size,
            storage_class: stored.storage_class.clone(),
            restore: stored.restore.clone(),
            archive_status: stored.archive_status,
        })
    }

    async fn put(&self, bucket: &str, key: &str, body: Vec<u8>, content_type: &str) -> Result<()> {
        self.take_failure(ObjectStoreOp::Put)?;
        let mut inner = self.lock();
        if !inner.buckets.contains(bucket) {
            return Err(Error::not_found(
                "no_such_bucket",
                format!("bucket {bucket:?} does not exist"),
            ));
        }
        let mut object = StoredObject::new(body.len() as u64, StorageClass::Standard);
        object.body = body;
        object.content_type = Some(content_type.to_string());
        inner
            .objects
            .insert((bucket.to_string(), key.to_string()), object);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(key: &str) -> ObjectRef {
        ObjectRef {
            bucket: "b".into(),
            key: key.into(),
            version_id: None,
        }
    }

    fn params(tier: RetrievalTier, days: Option<i32>) -> RestoreParams {
        RestoreParams { tier, days }
    }

    #[tokio::test]
    async fn glacier_restore_lifecycle_like_s3() {
        let store = MemoryObjectStore::new();
        store.add_object("b", "p/a.mov", 10, StorageClass::Glacier);
        let p = params(RetrievalTier::Bulk, Some(3));

        assert_eq!(store.head(&obj("p/a.mov")).await.unwrap().restore, None);
        assert_eq!(
            store.request_restore(&obj("p/a.mov"), p).await.unwrap(),
            RestoreOutcome::Started
        );
        let head = store.head(&obj("p/a.mov")).await.unwrap();
        assert_eq!(head.restore.as_ref().map(|r| r.ongoing), Some(true));
        // A second request while running: 409.
        assert_eq!(
            store.request_restore(&obj("p/a.mov"), p).await.unwrap(),
            RestoreOutcome::InProgress
        );
        assert!(store.complete_restore("b", "p/a.mov"));
        assert!(!store.complete_restore("b", "p/a.mov"), "only once");
        let head = store.head(&obj("p/a.mov")).await.unwrap();
        let restore = head.restore.unwrap();
        assert!(!restore.ongoing);
        let expiry = restore.expiry.expect("expiry set from Days");
        let days = (expiry - OffsetDateTime::now_utc()).whole_hours();
        assert!((71..=72).contains(&days), "{days}");
        // Already restored: 200.
        assert_eq!(
            store.request_restore(&obj("p/a.mov"), p).await.unwrap(),
            RestoreOutcome::AlreadyRestored
        );
        assert_eq!(store.restore_requests("b", "p/a.mov"), 3);
        assert_eq!(store.restore_requests("b", "other"), 0);
    }

    #[tokio::test]
    async fn readable_and_intelligent_tiering_answers() {
        let store = MemoryObjectStore::new();
        store.add_object("b", "std", 1, StorageClass::Standard);
        store.add_object("b", "it-hot", 1, StorageClass::IntelligentTiering);
        let mut archived = StoredObject::new(1, StorageClass::IntelligentTiering);
        archived.archive_status = Some(ArchiveStatus::DeepArchiveAccess);
        store.insert("b", "it-cold", archived);

        let bulk = params(RetrievalTier::Bulk, None);
        assert_eq!(
            store.request_restore(&obj("std"), bulk).await.unwrap(),
            RestoreOutcome::NotNeeded
        );
        assert_eq!(
            store.request_restore(&obj("it-hot"), bulk).await.unwrap(),
            RestoreOutcome::NotNeeded
        );
        // Days on Intelligent-Tiering and Expedited from Deep Archive Access are refused.
        let err = store
            .request_restore(&obj("it-cold"), params(RetrievalTier::Bulk, Some(7)))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("Days must not be given"), "{err}");
        assert!(store
            .request_restore(&obj("it-cold"), params(RetrievalTier::Expedited, None))
            .await
            .is_err());
        assert_eq!(
            store.request_restore(&obj("it-cold"), bulk).await.unwrap(),
            RestoreOutcome::Started
        );
        assert!(store.complete_restore("b", "it-cold"));
        let head = store.head(&obj("it-cold")).await.unwrap();
        assert_eq!(head.archive_status, None);
        assert_eq!(
            head.restore,
            Some(RestoreStatus {
                ongoing: false,
                expiry: None
            })
        );
    }

    #[tokio::test]
    async fn glacier_needs_days_and_deep_archive_has_no_expedited() {
        let store = MemoryObjectStore::new();
        store.add_object("b", "g", 1, StorageClass::Glacier);
        store.add_object("b", "d", 1, StorageClass::DeepArchive);
        assert!(store
            .request_restore(&obj("g"), params(RetrievalTier::Standard, None))
            .await
            .unwrap_err()
            .to_string()
            .contains("Days is required"));
        assert!(store
            .request_restore(&obj("d"), params(RetrievalTier::Expedited, Some(1)))
            .await
            .is_err());
        // Failed calls leave the object untouched.
        assert_eq!(store.object("b", "g").unwrap().restore, None);
        assert_eq!(store.object("b", "d").unwrap().restore, None);
        let missing = store
            .request_restore(&obj("nope"), params(RetrievalTier::Bulk, Some(1)))
            .await
            .unwrap_err();
        assert_eq!(missing.code(), "no_such_key");
    }

    #[tokio::test]
    async fn scripted_answers_come_first_in_order() {
        let store = MemoryObjectStore::new();
        store.add_object("b", "g", 1, StorageClass::Glacier);
        store.script_restore(
            "b",
            "g",
            ScriptedRestore::Outcome(RestoreOutcome::ExpeditedUnavailable),
        );
        store.script_restore("b", "g", ScriptedRestore::Error("SlowDown".into()));
        let p = params(RetrievalTier::Expedited, Some(1));
        assert_eq!(
            store.request_restore(&obj("g"), p).await.unwrap(),
            RestoreOutcome::ExpeditedUnavailable
        );
        let err = store.request_restore(&obj("g"), p).await.unwrap_err();
        assert_eq!(err.code(), "upstream_error");
        assert!(err.to_string().contains("SlowDown"));
        assert_eq!(store.object("b", "g").unwrap().restore, None);
        assert_eq!(
            store.request_restore(&obj("g"), p).await.unwrap(),
            RestoreOutcome::Started
        );
        assert_eq!(store.restore_requests("b", "g"), 3);
        let calls = store.restore_calls();
        assert_eq!(calls.len(), 3);
        assert_eq!(calls[0].1, p);
    }

    #[tokio::test]
    async fn listing_pages_through_a_prefix_in_key_order() {
        let store = MemoryObjectStore::new();
        for i in 0..5 {
            store.add_object("b", &format!("p/{i}"), i, StorageClass::Glacier);
        }
        store.add_object("b", "p/", 0, StorageClass::Standard);
        store.add_object("b", "q/0", 0, StorageClass::Glacier);
        store.add_object("other", "p/9", 0, StorageClass::Glacier);

        let first = store.list_page("b", "p/", None, 4).await.unwrap();
        let keys: Vec<_> = first.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["p/", "p/0", "p/1", "p/2"]);
        let next = first.next.expect("more to come");
        let second = store.list_page("b", "p/", Some(&next), 4).await.unwrap();
        let keys: Vec<_> = second.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["p/3", "p/4"]);
        assert_eq!(second.next, None);
        assert_eq!(second.objects[1].size, 4);

        let empty = store.list_page("b", "zzz/", None, 10).await.unwrap();
        assert!(empty.objects.is_empty() && empty.next.is_none());
        let err = store
            .list_page("missing", "p/", None, 10)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "no_such_bucket");
    }

    #[tokio::test]
    async fn put_stores_bodies_and_injected_failures_write_nothing() {
        let store = MemoryObjectStore::new();
        store.create_bucket("m");
        store
            .put("m", "j/manifest.csv", b"b,k\n".to_vec(), "text/csv")
            .await
            .unwrap();
        let o = store.object("m", "j/manifest.csv").unwrap();
        assert_eq!(o.body, b"b,k\n");
        assert_eq!(o.content_type.as_deref(), Some("text/csv"));
        assert_eq!(o.size, 4);

        store.fail_next(ObjectStoreOp::Put, "AccessDenied");
        let err = store
            .put("m", "j/report.json", b"{}".to_vec(), "application/json")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("AccessDenied"));
        assert_eq!(store.object("m", "j/report.json"), None);
        store
            .put("m", "j/report.json", b"{}".to_vec(), "application/json")
            .await
            .unwrap();
        assert_eq!(
            store
                .put("nope", "k", vec![], "text/plain")
                .await
                .unwrap_err()
                .code(),
            "no_such_bucket"
        );

        store.fail_next(ObjectStoreOp::Head, "boom");
        assert!(store.head(&obj("x")).await.is_err());
        store.fail_next(ObjectStoreOp::List, "boom");
        assert!(store.list_page("m", "", None, 1).await.is_err());
        assert_eq!(
            store
                .list_page("m", "", None, 1)
                .await
                .unwrap()
                .objects
                .len(),
            1
        );
    }
}
