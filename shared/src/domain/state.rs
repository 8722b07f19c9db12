//! Job and object states and the transitions allowed between them.
//!
//! Object (within one job):
//! ```text
//! planned ──► requested ──► restored
//!    │            │  └────► not_needed   (sweeper finds it readable without a restore)
//!    │            └───────► failed
//!    ├──► restored     (completion event before the fan-out recorded the request; 200 answer)
//!    ├──► not_needed   (403 InvalidObjectState / ObjectAlreadyInActiveTierError)
//!    └──► failed
//! ```
//! `restored`, `not_needed` and `failed` are settled: nothing leaves them, so a duplicate or
//! late event can never count an object twice.
//!
//! Job:
//! ```text
//! planning ──► restoring ──► completed | completed_with_errors | failed
//!     └──────────────────► completed | completed_with_errors | failed   (nothing to wait for)
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

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

impl JobState {
    pub const ALL: [JobState; 5] = [
        JobState::Planning,
        JobState::Restoring,
        JobState::Completed,
        JobState::CompletedWithErrors,
        JobState::Failed,
    ];

    /// The snake_case name used in JSON, DynamoDB and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Planning => "planning",
            JobState::Restoring => "restoring",
            JobState::Completed => "completed",
            JobState::CompletedWithErrors => "completed_with_errors",
            JobState::Failed => "failed",
        }
    }

    /// True once the job is finished; a terminal job is never reopened (a new POST makes a
    /// new job).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Completed | JobState::CompletedWithErrors | JobState::Failed
        )
    }

    /// True while the job may still change (the idempotency rule of DESIGN §3 returns an
    /// active job instead of starting another).
    pub fn is_active(self) -> bool {
        !self.is_terminal()
    }

    /// Whether a job may move from `self` to `next`. Staying in the same state is not a
    /// transition (writers use conditional updates to make repeats no-ops).
    pub fn can_transition_to(self, next: JobState) -> bool {
        use JobState::*;
        matches!(
            (self, next),
            (Planning, Restoring)
                | (
                    Planning | Restoring,
                    Completed | CompletedWithErrors | Failed
                )
        )
    }

    /// The terminal state of a job whose objects are all settled: `completed` without
    /// failures, `failed` when every object failed, `completed_with_errors` otherwise.
    pub fn finished_with(total: u64, failed: u64) -> JobState {
        if failed == 0 {
            JobState::Completed
        } else if failed >= total {
            JobState::Failed
        } else {
            JobState::CompletedWithErrors
        }
    }
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

impl ObjectState {
    pub const ALL: [ObjectState; 5] = [
        ObjectState::Planned,
        ObjectState::Requested,
        ObjectState::Restored,
        ObjectState::NotNeeded,
        ObjectState::Failed,
    ];

    /// The snake_case name used in JSON, DynamoDB and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectState::Planned => "planned",
            ObjectState::Requested => "requested",
            ObjectState::Restored => "restored",
            ObjectState::NotNeeded => "not_needed",
            ObjectState::Failed => "failed",
        }
    }

    /// True when the object counts toward the job's total of finished objects.
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            ObjectState::Restored | ObjectState::NotNeeded | ObjectState::Failed
        )
    }

    /// True when the object is readable at the end (restored, or never needed a restore):
    /// what the manifest hands to the copy back.
    pub fn is_readable(self) -> bool {
        matches!(self, ObjectState::Restored | ObjectState::NotNeeded)
    }

    /// Whether an object may move from `self` to `next`; settled states are final.
    pub fn can_transition_to(self, next: ObjectState) -> bool {
        use ObjectState::*;
        matches!(
            (self, next),
            (Planned, Requested | Restored | NotNeeded | Failed)
                | (Requested, Restored | NotNeeded | Failed)
        )
    }
}

macro_rules! display_and_parse {
    ($ty:ident, $what:literal) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $ty::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| Error::Internal(format!("unknown {} {s:?}", $what)))
            }
        }
    };
}

display_and_parse!(JobState, "job state");
display_and_parse!(ObjectState, "object state");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_snake_case_everywhere() {
        for s in JobState::ALL {
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
            assert_eq!(s.to_string().parse::<JobState>().unwrap(), s);
        }
        for s in ObjectState::ALL {
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
            assert_eq!(s.to_string().parse::<ObjectState>().unwrap(), s);
        }
        assert_eq!(
            JobState::CompletedWithErrors.to_string(),
            "completed_with_errors"
        );
        assert_eq!(ObjectState::NotNeeded.to_string(), "not_needed");
        assert!("Completed".parse::<JobState>().is_err());
        assert!("done".parse::<ObjectState>().is_err());
    }

    #[test]
    fn object_transitions() {
        use ObjectState::*;
        let allowed = [
            (Planned, Requested),
            (Planned, Restored),
            (Planned, NotNeeded),
            (Planned, Failed),
            (Requested, Restored),
            (Requested, NotNeeded),
            (Requested, Failed),
        ];
        for from in ObjectState::ALL {
            for to in ObjectState::ALL {
                assert_eq!(
                    from.can_transition_to(to),
                    allowed.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
        // Settled states are final: a duplicate event can't count twice.
        for s in [Restored, NotNeeded, Failed] {
            assert!(s.is_settled());
            assert!(ObjectState::ALL.iter().all(|&to| !s.can_transition_to(to)));
        }
        assert!(!Planned.is_settled() && !Requested.is_settled());
        assert!(Restored.is_readable() && NotNeeded.is_readable() && !Failed.is_readable());
    }

    #[test]
    fn job_transitions() {
        use JobState::*;
        let allowed = [
            (Planning, Restoring),
            (Planning, Completed),
            (Planning, CompletedWithErrors),
            (Planning, Failed),
            (Restoring, Completed),
            (Restoring, CompletedWithErrors),
            (Restoring, Failed),
        ];
        for from in JobState::ALL {
            for to in JobState::ALL {
                assert_eq!(
                    from.can_transition_to(to),
                    allowed.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
        for s in [Completed, CompletedWithErrors, Failed] {
            assert!(s.is_terminal() && !s.is_active());
        }
        assert!(Planning.is_active() && Restoring.is_active());
        assert!(!Restoring.can_transition_to(Planning));
    }

    #[test]
    fn finished_state_from_failures() {
        assert_eq!(JobState::finished_with(10, 0), JobState::Completed);
        assert_eq!(JobState::finished_with(0, 0), JobState::Completed);
        assert_eq!(
            JobState::finished_with(10, 3),
            JobState::CompletedWithErrors
        );
        assert_eq!(JobState::finished_with(10, 10), JobState::Failed);
    }
}
