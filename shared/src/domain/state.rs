//! Job and object states and the transitions allowed between them.

use serde::{Deserialize, Serialize};

/// Lifecycle of a restore job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Planning,
    Restoring,
    Completed,
    CompletedWithErrors,
    Failed,
}

/// Lifecycle of one object within one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectState {
    Planned,
    Requested,
    Restored,
    NotNeeded,
    Failed,
}
