//! What the service knows about one S3 object, independent of the SDK.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::storage::{ArchiveStatus, RetrievalTier, StorageClass};

/// Address of one object version in one bucket.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectRef {
    pub bucket: String,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
}

/// The restore state S3 reports for an object (`x-amz-restore` / `RestoreStatus`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreStatus {
    /// A restore request is running.
    pub ongoing: bool,
    /// When the restored copy expires (only when not ongoing).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expiry: Option<OffsetDateTime>,
}

/// One object as seen in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedObject {
    pub bucket: String,
    pub key: String,
    pub size: u64,
    pub storage_class: StorageClass,
    /// Restore status when the listing reported it (OptionalObjectAttributes=RestoreStatus).
    pub restore: Option<RestoreStatus>,
}

impl ListedObject {
    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef {
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            version_id: None,
        }
    }
}

/// One page of a listing, with the token to continue from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    pub objects: Vec<ListedObject>,
    /// Continuation token of the next page; `None` when the listing is complete.
    pub next: Option<String>,
}

/// What HeadObject tells about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHead {
    pub size: u64,
    pub storage_class: StorageClass,
    /// `x-amz-restore`; `None` when no restore was ever asked for.
    pub restore: Option<RestoreStatus>,
    /// `x-amz-archive-status` for Intelligent-Tiering objects.
    pub archive_status: Option<ArchiveStatus>,
}

/// Parameters of one RestoreObject call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestoreParams {
    pub tier: RetrievalTier,
    /// Days the restored copy stays; `None` for Intelligent-Tiering, which rejects `Days`.
    pub days: Option<i32>,
}

/// How S3 answered a RestoreObject call, mapped per DESIGN §4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestoreOutcome {
    /// 202: restore started; a completion event will follow.
    Started,
    /// 200: a restored copy is already there; no event will come.
    AlreadyRestored,
    /// 409 RestoreAlreadyInProgress: pending, not a failure.
    InProgress,
    /// 403 InvalidObjectState / ObjectAlreadyInActiveTierError: no restore needed.
    NotNeeded,
    /// 503 GlacierExpeditedRetrievalNotAvailable: retry with the Standard tier.
    ExpeditedUnavailable,
}
