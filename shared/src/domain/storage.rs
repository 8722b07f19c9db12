//! Storage classes, retrieval tiers and the classification rules of DESIGN §4: which objects
//! need a RestoreObject call, with which tier and whether `Days` is sent, and how long the
//! restore is expected to take (the sweeper and the status API use that window).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::object::{ListedObject, ObjectHead, RestoreParams, RestoreStatus};
use super::state::ObjectState;

/// S3 storage classes the service distinguishes. Unknown ones are kept verbatim so a new class
/// survives a round trip through the job store instead of being mislabelled.
///
/// Serialized as the S3 string (`"GLACIER"`, `"DEEP_ARCHIVE"`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

impl StorageClass {
    /// Maps the S3 string. S3 omits the class for STANDARD objects, so an empty string is
    /// STANDARD; matching ignores ASCII case and surrounding whitespace to be lenient with
    /// emulators and hand-written events.
    pub fn from_s3(value: &str) -> Self {
        let trimmed = value.trim();
        match trimmed.to_ascii_uppercase().as_str() {
            "" | "STANDARD" => StorageClass::Standard,
            "STANDARD_IA" => StorageClass::StandardIa,
            "ONEZONE_IA" => StorageClass::OnezoneIa,
            "REDUCED_REDUNDANCY" => StorageClass::ReducedRedundancy,
            "GLACIER_IR" => StorageClass::GlacierIr,
            "GLACIER" => StorageClass::Glacier,
            "DEEP_ARCHIVE" => StorageClass::DeepArchive,
            "INTELLIGENT_TIERING" => StorageClass::IntelligentTiering,
            _ => StorageClass::Other(trimmed.to_string()),
        }
    }

    /// The S3 string of the class.
    pub fn as_s3(&self) -> &str {
        match self {
            StorageClass::Standard => "STANDARD",
            StorageClass::StandardIa => "STANDARD_IA",
            StorageClass::OnezoneIa => "ONEZONE_IA",
            StorageClass::ReducedRedundancy => "REDUCED_REDUNDANCY",
            StorageClass::GlacierIr => "GLACIER_IR",
            StorageClass::Glacier => "GLACIER",
            StorageClass::DeepArchive => "DEEP_ARCHIVE",
            StorageClass::IntelligentTiering => "INTELLIGENT_TIERING",
            StorageClass::Other(s) => s,
        }
    }

    /// True for classes whose objects can only be read after a restore (Intelligent-Tiering
    /// only when archived, which a listing does not tell, hence "may").
    pub fn may_need_restore(&self) -> bool {
        matches!(
            self,
            StorageClass::Glacier | StorageClass::DeepArchive | StorageClass::IntelligentTiering
        )
    }
}

impl fmt::Display for StorageClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_s3())
    }
}

impl FromStr for StorageClass {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(StorageClass::from_s3(s))
    }
}

impl Serialize for StorageClass {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_s3())
    }
}

impl<'de> Deserialize<'de> for StorageClass {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Ok(StorageClass::from_s3(&s))
    }
}

/// Retrieval tier of a restore request. Ordered from fastest (and dearest) to slowest.
///
/// Serialized and displayed as S3 spells it: `"Expedited"`, `"Standard"`, `"Bulk"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RetrievalTier {
    Expedited,
    Standard,
    Bulk,
}

impl RetrievalTier {
    /// All tiers, fastest first (the order the API lists estimates in).
    pub const ALL: [RetrievalTier; 3] = [
        RetrievalTier::Expedited,
        RetrievalTier::Standard,
        RetrievalTier::Bulk,
    ];

    /// Parses a tier name in any ASCII case (the seed API accepted `"bulk"` as well as `"Bulk"`).
    pub fn parse(value: &str) -> Option<Self> {
        let v = value.trim();
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(v))
    }

    /// The name S3 expects in `GlacierJobParameters.Tier`.
    pub fn as_str(self) -> &'static str {
        match self {
            RetrievalTier::Expedited => "Expedited",
            RetrievalTier::Standard => "Standard",
            RetrievalTier::Bulk => "Bulk",
        }
    }

    /// The tier to retry with when S3 answers 503 GlacierExpeditedRetrievalNotAvailable
    /// (Expedited capacity exhausted): Standard for Expedited, nothing for the others.
    pub fn fallback_for_expedited_unavailable(self) -> Option<RetrievalTier> {
        match self {
            RetrievalTier::Expedited => Some(RetrievalTier::Standard),
            _ => None,
        }
    }
}

impl fmt::Display for RetrievalTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RetrievalTier {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RetrievalTier::parse(s).ok_or_else(|| {
            crate::Error::validation(
                "unknown_tier",
                format!("unknown retrieval tier {s:?}: expected Expedited, Standard or Bulk"),
            )
        })
    }
}

/// Intelligent-Tiering archive access tier, from `x-amz-archive-status`. Serialized as the
/// header value (`"ARCHIVE_ACCESS"`, `"DEEP_ARCHIVE_ACCESS"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ArchiveStatus {
    ArchiveAccess,
    DeepArchiveAccess,
}

impl ArchiveStatus {
    /// Maps the `x-amz-archive-status` header; `None` for anything else (not archived).
    pub fn from_s3(value: &str) -> Option<Self> {
        match value.trim().to_ascii_uppercase().as_str() {
            "ARCHIVE_ACCESS" => Some(ArchiveStatus::ArchiveAccess),
            "DEEP_ARCHIVE_ACCESS" => Some(ArchiveStatus::DeepArchiveAccess),
            _ => None,
        }
    }

    /// The header value.
    pub fn as_s3(self) -> &'static str {
        match self {
            ArchiveStatus::ArchiveAccess => "ARCHIVE_ACCESS",
            ArchiveStatus::DeepArchiveAccess => "DEEP_ARCHIVE_ACCESS",
        }
    }
}

/// What is known about an Intelligent-Tiering object's access tier: a listing does not say
/// (`Unknown`), HeadObject does (`x-amz-archive-status` present or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveState {
    Unknown,
    NotArchived,
    Archived(ArchiveStatus),
}

impl ArchiveState {
    /// From HeadObject's `x-amz-archive-status` (absent = not archived).
    pub fn from_head(status: Option<ArchiveStatus>) -> Self {
        status.map_or(ArchiveState::NotArchived, ArchiveState::Archived)
    }
}

/// Days a restored copy of a GLACIER / DEEP_ARCHIVE object stays readable unless configured.
pub const DEFAULT_RESTORE_DAYS: i32 = 7;

/// Knobs of the classification. `days` is what RestoreObject gets as `Days` for GLACIER and
/// DEEP_ARCHIVE (long enough for the on-premises copy to finish).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestorePolicy {
    pub days: i32,
}

impl Default for RestorePolicy {
    fn default() -> Self {
        RestorePolicy {
            days: DEFAULT_RESTORE_DAYS,
        }
    }
}

/// Why the tier actually used differs from the one asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FallbackReason {
    /// Deep Archive (and the Intelligent-Tiering Deep Archive Access tier) has no Expedited tier.
    ExpeditedNotOffered,
    /// S3 answered 503 GlacierExpeditedRetrievalNotAvailable.
    ExpeditedUnavailable,
}

/// A recorded tier downgrade, so the job can tell the user "asked Expedited, got Standard".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierFallback {
    pub requested: RetrievalTier,
    pub used: RetrievalTier,
    pub reason: FallbackReason,
}

impl TierFallback {
    /// A one-line explanation for the status API and the mail.
    pub fn note(&self) -> String {
        let why = match self.reason {
            FallbackReason::ExpeditedNotOffered => "the storage class has no Expedited tier",
            FallbackReason::ExpeditedUnavailable => "S3 had no Expedited capacity",
        };
        format!(
            "{} retrieval requested, {} used: {why}",
            self.requested, self.used
        )
    }
}

/// A RestoreObject call to make, with any tier downgrade already applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestorePlan {
    pub params: RestoreParams,
    pub fallback: Option<TierFallback>,
}

impl RestorePlan {
    /// The plan to retry with after S3 answered 503 GlacierExpeditedRetrievalNotAvailable:
    /// same `Days`, Standard tier, the fallback recorded (keeping the originally requested
    /// tier). `None` when the plan was not Expedited, so there is nothing to fall back to.
    pub fn fallback_for_expedited_unavailable(&self) -> Option<RestorePlan> {
        let used = self.params.tier.fallback_for_expedited_unavailable()?;
        let requested = self.fallback.map_or(self.params.tier, |f| f.requested);
        Some(RestorePlan {
            params: RestoreParams {
                tier: used,
                days: self.params.days,
            },
            fallback: Some(TierFallback {
                requested,
                used,
                reason: FallbackReason::ExpeditedUnavailable,
            }),
        })
    }
}

/// What to do with one object of a job (DESIGN §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classification {
    /// Readable as stored (STANDARD, *_IA, GLACIER_IR, REDUCED_REDUNDANCY, unknown classes):
    /// no request; the object is `not_needed`.
    Readable,
    /// Archived but a restored copy is present: no request, counted as restored at once
    /// (no completion event will come).
    AlreadyRestored(RestoreStatus),
    /// A restore is already running (asked by someone else or an earlier attempt): pending
    /// without a new request; its completion event or the sweeper settles it.
    Pending,
    /// Issue RestoreObject with these parameters.
    Restore(RestorePlan),
}

impl Classification {
    /// True when a RestoreObject call must be made.
    pub fn needs_request(&self) -> bool {
        matches!(self, Classification::Restore(_))
    }

    /// The object's state when the job records it: readable → `not_needed`, restored copy →
    /// `restored`, running restore → `requested` (its completion will be tallied), to restore →
    /// `planned` (the fan-out moves it on).
    pub fn initial_state(&self) -> ObjectState {
        match self {
            Classification::Readable => ObjectState::NotNeeded,
            Classification::AlreadyRestored(_) => ObjectState::Restored,
            Classification::Pending => ObjectState::Requested,
            Classification::Restore(_) => ObjectState::Planned,
        }
    }
}

/// Classifies one object for the requested tier.
///
/// - readable classes → [`Classification::Readable`];
/// - an archived object whose restore status shows a finished restore →
///   [`Classification::AlreadyRestored`], a running one → [`Classification::Pending`];
/// - GLACIER / DEEP_ARCHIVE → restore with `Days = policy.days`; DEEP_ARCHIVE has no
///   Expedited tier, so Expedited becomes Standard with a recorded fallback;
/// - INTELLIGENT_TIERING → restore attempt without `Days` (S3 rejects `Days` for it and answers
///   403 ObjectAlreadyInActiveTierError when the object is not archived, which the caller maps
///   to not needed). When the archive status is known to be Deep Archive Access, Expedited
///   becomes Standard like DEEP_ARCHIVE; when it is known to be absent (HeadObject without
///   `x-amz-archive-status`), no request is needed.
pub fn classify(
    class: &StorageClass,
    restore: Option<&RestoreStatus>,
    archive: ArchiveState,
    tier: RetrievalTier,
    policy: RestorePolicy,
) -> Classification {
    if !class.may_need_restore() {
        return Classification::Readable;
    }
    match restore {
        Some(status) if status.ongoing => return Classification::Pending,
        Some(status) => return Classification::AlreadyRestored(status.clone()),
        None => {}
    }
    let (days, no_expedited) = match class {
        StorageClass::Glacier => (Some(policy.days), false),
        StorageClass::DeepArchive => (Some(policy.days), true),
        StorageClass::IntelligentTiering => match archive {
            ArchiveState::NotArchived => return Classification::Readable,
            ArchiveState::Unknown => (None, false),
            ArchiveState::Archived(status) => (None, status == ArchiveStatus::DeepArchiveAccess),
        },
        _ => return Classification::Readable,
    };
    let (used, fallback) = if no_expedited && tier == RetrievalTier::Expedited {
        let used = RetrievalTier::Standard;
        (
            used,
            Some(TierFallback {
                requested: tier,
                used,
                reason: FallbackReason::ExpeditedNotOffered,
            }),
        )
    } else {
        (tier, None)
    };
    Classification::Restore(RestorePlan {
        params: RestoreParams { tier: used, days },
        fallback,
    })
}

impl ListedObject {
    /// Classifies a listed object (the listing never tells the Intelligent-Tiering access
    /// tier, so those get a restore attempt; see [`classify`]).
    pub fn classify(&self, tier: RetrievalTier, policy: RestorePolicy) -> Classification {
        classify(
            &self.storage_class,
            self.restore.as_ref(),
            ArchiveState::Unknown,
            tier,
            policy,
        )
    }
}

impl ObjectHead {
    /// Classifies from HeadObject, which does tell the Intelligent-Tiering access tier.
    pub fn classify(&self, tier: RetrievalTier, policy: RestorePolicy) -> Classification {
        classify(
            &self.storage_class,
            self.restore.as_ref(),
            ArchiveState::from_head(self.archive_status),
            tier,
            policy,
        )
    }
}

/// When a restore is expected to be done, counted from the RestoreObject call. AWS states
/// "typically within"; where it gives only an upper bound, `min` is zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletionWindow {
    pub min_secs: u64,
    pub max_secs: u64,
}

impl CompletionWindow {
    const fn minutes(min: u64, max: u64) -> Self {
        CompletionWindow {
            min_secs: min * 60,
            max_secs: max * 60,
        }
    }
    const fn hours(min: u64, max: u64) -> Self {
        CompletionWindow {
            min_secs: min * 3600,
            max_secs: max * 3600,
        }
    }

    pub fn min(&self) -> Duration {
        Duration::from_secs(self.min_secs)
    }

    pub fn max(&self) -> Duration {
        Duration::from_secs(self.max_secs)
    }

    /// The window of a job holding objects of both windows: it is done when the slowest is.
    pub fn union(self, other: CompletionWindow) -> CompletionWindow {
        CompletionWindow {
            min_secs: self.min_secs.max(other.min_secs),
            max_secs: self.max_secs.max(other.max_secs),
        }
    }
}

/// Expected restore time for an object of `class` asked with `tier` (before any fallback;
/// Deep Archive + Expedited is answered with the Standard window it will get). `None` for
/// classes that need no restore.
///
/// Glacier Flexible Retrieval and the Intelligent-Tiering Archive Access tier: Expedited
/// 1–5 min, Standard 3–5 h, Bulk 5–12 h. Deep Archive and the Deep Archive Access tier:
/// Standard within 12 h, Bulk within 48 h. An Intelligent-Tiering object whose access tier is
/// unknown gets the slower (Deep Archive Access) bound for `max` and the faster for `min`.
pub fn expected_window(
    class: &StorageClass,
    archive_status: Option<ArchiveStatus>,
    tier: RetrievalTier,
) -> Option<CompletionWindow> {
    let flexible = |tier| match tier {
        RetrievalTier::Expedited => CompletionWindow::minutes(1, 5),
        RetrievalTier::Standard => CompletionWindow::hours(3, 5),
        RetrievalTier::Bulk => CompletionWindow::hours(5, 12),
    };
    let deep = |tier| match tier {
        RetrievalTier::Expedited | RetrievalTier::Standard => CompletionWindow::hours(0, 12),
        RetrievalTier::Bulk => CompletionWindow::hours(0, 48),
    };
    match class {
        StorageClass::Glacier => Some(flexible(tier)),
        StorageClass::DeepArchive => Some(deep(tier)),
        StorageClass::IntelligentTiering => Some(match archive_status {
            Some(ArchiveStatus::ArchiveAccess) => flexible(tier),
            Some(ArchiveStatus::DeepArchiveAccess) => deep(tier),
            None => CompletionWindow {
                min_secs: flexible(tier).min_secs,
                max_secs: deep(tier).max_secs,
            },
        }),
        _ => None,
    }
}

/// Expected window of a job restoring objects of these classes with `tier`: done when the
/// slowest class is. `None` when no class needs a restore.
pub fn expected_job_window<'a>(
    classes: impl IntoIterator<Item = &'a StorageClass>,
    tier: RetrievalTier,
) -> Option<CompletionWindow> {
    classes
        .into_iter()
        .filter_map(|c| expected_window(c, None, tier))
        .reduce(CompletionWindow::union)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(class: &str, restore: Option<RestoreStatus>) -> ListedObject {
        ListedObject {
            bucket: "b".into(),
            key: "k".into(),
            size: 1,
            storage_class: StorageClass::from_s3(class),
            restore,
        }
    }

    fn policy() -> RestorePolicy {
        RestorePolicy::default()
    }

    #[test]
    fn storage_class_round_trips_through_s3_strings_and_serde() {
        for s in [
            "STANDARD",
            "STANDARD_IA",
            "ONEZONE_IA",
            "REDUCED_REDUNDANCY",
            "GLACIER_IR",
            "GLACIER",
            "DEEP_ARCHIVE",
            "INTELLIGENT_TIERING",
            "EXPRESS_ONEZONE",
        ] {
            let class = StorageClass::from_s3(s);
            assert_eq!(class.as_s3(), s);
            assert_eq!(class.to_string(), s);
            let json = serde_json::to_string(&class).unwrap();
            assert_eq!(json, format!("\"{s}\""));
            assert_eq!(serde_json::from_str::<StorageClass>(&json).unwrap(), class);
        }
        assert_eq!(
            StorageClass::from_s3("EXPRESS_ONEZONE"),
            StorageClass::Other("EXPRESS_ONEZONE".into())
        );
        assert_eq!(StorageClass::from_s3(""), StorageClass::Standard);
        assert_eq!(StorageClass::from_s3(" glacier "), StorageClass::Glacier);
    }

    #[test]
    fn tier_parses_in_any_case_and_serializes_as_s3_spells_it() {
        assert_eq!(RetrievalTier::parse("bulk"), Some(RetrievalTier::Bulk));
        assert_eq!(
            RetrievalTier::parse("EXPEDITED"),
            Some(RetrievalTier::Expedited)
        );
        assert_eq!(
            RetrievalTier::parse("sTaNdArD"),
            Some(RetrievalTier::Standard)
        );
        assert_eq!(RetrievalTier::parse("fast"), None);
        assert_eq!(RetrievalTier::parse(""), None);
        assert_eq!(
            serde_json::to_string(&RetrievalTier::Expedited).unwrap(),
            "\"Expedited\""
        );
        assert_eq!(RetrievalTier::Bulk.to_string(), "Bulk");
        let err = "Glacial".parse::<RetrievalTier>().unwrap_err();
        assert_eq!(err.code(), "unknown_tier");
    }

    #[test]
    fn archive_status_maps_header_values() {
        assert_eq!(
            ArchiveStatus::from_s3("DEEP_ARCHIVE_ACCESS"),
            Some(ArchiveStatus::DeepArchiveAccess)
        );
        assert_eq!(
            ArchiveStatus::from_s3("ARCHIVE_ACCESS"),
            Some(ArchiveStatus::ArchiveAccess)
        );
        assert_eq!(ArchiveStatus::from_s3("FREQUENT"), None);
        assert_eq!(
            serde_json::to_string(&ArchiveStatus::ArchiveAccess).unwrap(),
            "\"ARCHIVE_ACCESS\""
        );
    }

    #[test]
    fn readable_classes_need_no_request() {
        for class in [
            "STANDARD",
            "STANDARD_IA",
            "ONEZONE_IA",
            "GLACIER_IR",
            "REDUCED_REDUNDANCY",
            "EXPRESS_ONEZONE",
        ] {
            for tier in RetrievalTier::ALL {
                assert_eq!(
                    listed(class, None).classify(tier, policy()),
                    Classification::Readable,
                    "{class} {tier}"
                );
            }
        }
    }

    #[test]
    fn glacier_is_restored_with_days_in_the_requested_tier() {
        for tier in RetrievalTier::ALL {
            let c = listed("GLACIER", None).classify(tier, RestorePolicy { days: 3 });
            assert_eq!(
                c,
                Classification::Restore(RestorePlan {
                    params: RestoreParams {
                        tier,
                        days: Some(3)
                    },
                    fallback: None
                })
            );
            assert!(c.needs_request());
        }
        assert_eq!(RestorePolicy::default().days, 7);
    }

    #[test]
    fn deep_archive_expedited_falls_back_to_standard_with_a_note() {
        let c = listed("DEEP_ARCHIVE", None).classify(RetrievalTier::Expedited, policy());
        let Classification::Restore(plan) = c else {
            panic!("expected a restore, got {c:?}");
        };
        assert_eq!(plan.params.tier, RetrievalTier::Standard);
        assert_eq!(plan.params.days, Some(7));
        let fb = plan.fallback.expect("fallback recorded");
        assert_eq!(fb.requested, RetrievalTier::Expedited);
        assert_eq!(fb.used, RetrievalTier::Standard);
        assert_eq!(fb.reason, FallbackReason::ExpeditedNotOffered);
        assert!(fb
            .note()
            .contains("Expedited retrieval requested, Standard used"));

        for tier in [RetrievalTier::Standard, RetrievalTier::Bulk] {
            let c = listed("DEEP_ARCHIVE", None).classify(tier, policy());
            assert_eq!(
                c,
                Classification::Restore(RestorePlan {
                    params: RestoreParams {
                        tier,
                        days: Some(7)
                    },
                    fallback: None
                })
            );
        }
    }

    #[test]
    fn intelligent_tiering_is_attempted_without_days() {
        for tier in RetrievalTier::ALL {
            let c = listed("INTELLIGENT_TIERING", None).classify(tier, policy());
            assert_eq!(
                c,
                Classification::Restore(RestorePlan {
                    params: RestoreParams { tier, days: None },
                    fallback: None
                })
            );
        }
    }

    #[test]
    fn intelligent_tiering_head_uses_the_known_access_tier() {
        let head = |archive_status| ObjectHead {
            size: 1,
            storage_class: StorageClass::IntelligentTiering,
            restore: None,
            archive_status,
        };
        assert_eq!(
            head(None).classify(RetrievalTier::Bulk, policy()),
            Classification::Readable
        );
        let Classification::Restore(plan) = head(Some(ArchiveStatus::DeepArchiveAccess))
            .classify(RetrievalTier::Expedited, policy())
        else {
            panic!("expected a restore");
        };
        assert_eq!(plan.params.tier, RetrievalTier::Standard);
        assert_eq!(plan.params.days, None);
        assert!(plan.fallback.is_some());
        let Classification::Restore(plan) =
            head(Some(ArchiveStatus::ArchiveAccess)).classify(RetrievalTier::Expedited, policy())
        else {
            panic!("expected a restore");
        };
        assert_eq!(plan.params.tier, RetrievalTier::Expedited);
        assert_eq!(plan.fallback, None);
    }

    #[test]
    fn restore_status_decides_before_the_class() {
        let done = RestoreStatus {
            ongoing: false,
            expiry: None,
        };
        let running = RestoreStatus {
            ongoing: true,
            expiry: None,
        };
        for class in ["GLACIER", "DEEP_ARCHIVE", "INTELLIGENT_TIERING"] {
            assert_eq!(
                listed(class, Some(done.clone())).classify(RetrievalTier::Bulk, policy()),
                Classification::AlreadyRestored(done.clone())
            );
            let pending =
                listed(class, Some(running.clone())).classify(RetrievalTier::Bulk, policy());
            assert_eq!(pending, Classification::Pending);
            assert!(!pending.needs_request());
        }
        // A restore status on a readable class changes nothing.
        assert_eq!(
            listed("STANDARD", Some(running)).classify(RetrievalTier::Bulk, policy()),
            Classification::Readable
        );
    }

    #[test]
    fn expedited_unavailable_falls_back_to_standard_once() {
        let Classification::Restore(plan) =
            listed("GLACIER", None).classify(RetrievalTier::Expedited, policy())
        else {
            panic!("expected a restore");
        };
        let retry = plan.fallback_for_expedited_unavailable().unwrap();
        assert_eq!(retry.params.tier, RetrievalTier::Standard);
        assert_eq!(retry.params.days, Some(7));
        assert_eq!(
            retry.fallback,
            Some(TierFallback {
                requested: RetrievalTier::Expedited,
                used: RetrievalTier::Standard,
                reason: FallbackReason::ExpeditedUnavailable
            })
        );
        assert_eq!(retry.fallback_for_expedited_unavailable(), None);
        assert_eq!(
            RetrievalTier::Bulk.fallback_for_expedited_unavailable(),
            None
        );
    }

    #[test]
    fn expected_windows_per_class_and_tier() {
        use RetrievalTier::*;
        let w = |class: &str, archive, tier| {
            expected_window(&StorageClass::from_s3(class), archive, tier)
                .map(|w| (w.min_secs, w.max_secs))
        };
        assert_eq!(w("GLACIER", None, Expedited), Some((60, 300)));
        assert_eq!(w("GLACIER", None, Standard), Some((3 * 3600, 5 * 3600)));
        assert_eq!(w("GLACIER", None, Bulk), Some((5 * 3600, 12 * 3600)));
        assert_eq!(w("DEEP_ARCHIVE", None, Standard), Some((0, 12 * 3600)));
        assert_eq!(w("DEEP_ARCHIVE", None, Expedited), Some((0, 12 * 3600)));
        assert_eq!(w("DEEP_ARCHIVE", None, Bulk), Some((0, 48 * 3600)));
        assert_eq!(
            w(
                "INTELLIGENT_TIERING",
                Some(ArchiveStatus::ArchiveAccess),
                Expedited
            ),
            Some((60, 300))
        );
        assert_eq!(
            w(
                "INTELLIGENT_TIERING",
                Some(ArchiveStatus::DeepArchiveAccess),
                Bulk
            ),
            Some((0, 48 * 3600))
        );
        assert_eq!(
            w("INTELLIGENT_TIERING", None, Standard),
            Some((3 * 3600, 12 * 3600))
        );
        assert_eq!(w("STANDARD", None, Bulk), None);
        let job = expected_window(&StorageClass::Glacier, None, Standard)
            .unwrap()
            .union(expected_window(&StorageClass::DeepArchive, None, Standard).unwrap());
        assert_eq!(job.max(), Duration::from_secs(12 * 3600));
        assert_eq!(job.min(), Duration::from_secs(3 * 3600));
        let classes = [
            StorageClass::Standard,
            StorageClass::Glacier,
            StorageClass::DeepArchive,
        ];
        assert_eq!(expected_job_window(&classes, Standard), Some(job));
        assert_eq!(expected_job_window(&[StorageClass::Standard], Bulk), None);
    }

    #[test]
    fn initial_object_states() {
        let b = RetrievalTier::Bulk;
        let done = RestoreStatus {
            ongoing: false,
            expiry: None,
        };
        let running = RestoreStatus {
            ongoing: true,
            expiry: None,
        };
        assert_eq!(
            listed("STANDARD", None)
                .classify(b, policy())
                .initial_state(),
            ObjectState::NotNeeded
        );
        assert_eq!(
            listed("GLACIER", Some(done))
                .classify(b, policy())
                .initial_state(),
            ObjectState::Restored
        );
        assert_eq!(
            listed("GLACIER", Some(running))
                .classify(b, policy())
                .initial_state(),
            ObjectState::Requested
        );
        assert_eq!(
            listed("GLACIER", None)
                .classify(b, policy())
                .initial_state(),
            ObjectState::Planned
        );
    }
}
