//! Storage classes, retrieval tiers and the classification rules of DESIGN §4.

use serde::{Deserialize, Serialize};

/// S3 storage classes the service distinguishes. Unknown ones are kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StorageClass {
    Standard,
    StandardIa,
    OnezoneIa,
    ReducedRedundancy,
    GlacierIr,
    Glacier,
    DeepArchive,
    IntelligentTiering,
    Other(String),
}

/// Retrieval tier of a restore request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RetrievalTier {
    Expedited,
    Standard,
    Bulk,
}

/// Intelligent-Tiering archive access tier, from `x-amz-archive-status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ArchiveStatus {
    ArchiveAccess,
    DeepArchiveAccess,
}
