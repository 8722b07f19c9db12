//! What the service knows about one S3 object, independent of the SDK.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::state::ObjectState;
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

impl RestoreStatus {
    /// Parses the `x-amz-restore` header, e.g.
    /// `ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"`.
    ///
    /// Lenient, because emulators and proxies vary: keys in any case and order, values quoted
    /// or not, unknown keys ignored, an unreadable expiry date dropped (RFC 1123 / 2822 dates,
    /// and RFC 3339 as a fallback). Returns `None` only when there is no `ongoing-request`
    /// key with a `true`/`false` value, since then nothing is known about the restore.
    pub fn parse_header(value: &str) -> Option<RestoreStatus> {
        let mut ongoing = None;
        let mut expiry = None;
        for (key, val) in header_pairs(value) {
            if key.eq_ignore_ascii_case("ongoing-request") {
                if val.eq_ignore_ascii_case("true") {
                    ongoing = Some(true);
                } else if val.eq_ignore_ascii_case("false") {
                    ongoing = Some(false);
                }
            } else if key.eq_ignore_ascii_case("expiry-date") {
                expiry = parse_http_date(val);
            }
        }
        Some(RestoreStatus {
            ongoing: ongoing?,
            expiry,
        })
    }

    /// True when a restored copy is readable now.
    pub fn is_restored(&self) -> bool {
        !self.ongoing
    }
}

/// Splits `k1="v, 1", k2=v2` into `(k, v)` pairs; commas inside quotes stay in the value.
fn header_pairs(input: &str) -> Vec<(&str, &str)> {
    let mut pairs = Vec::new();
    let mut rest = input;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        if rest.is_empty() {
            break;
        }
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq].trim();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => {
                    value = &quoted[..end];
                    rest = &quoted[end + 1..];
                }
                None => {
                    value = quoted;
                    rest = "";
                }
            }
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim();
            rest = &rest[end..];
        }
        pairs.push((key, value));
    }
    pairs
}

/// Parses an HTTP date (`Fri, 21 Dec 2012 00:00:00 GMT`), or RFC 3339 as a fallback.
fn parse_http_date(value: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::{Rfc2822, Rfc3339};
    let value = value.trim();
    OffsetDateTime::parse(value, &Rfc2822)
        .or_else(|_| OffsetDateTime::parse(value, &Rfc3339))
        .ok()
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

impl RestoreOutcome {
    /// The object's state after this answer: started or already running → `requested` (an
    /// event or the sweeper settles it), already restored → `restored` (no event will come),
    /// not needed → `not_needed`. `None` for Expedited-unavailable: retry with Standard first
    /// (see `RestorePlan::fallback_for_expedited_unavailable`).
    pub fn object_state(self) -> Option<ObjectState> {
        match self {
            RestoreOutcome::Started | RestoreOutcome::InProgress => Some(ObjectState::Requested),
            RestoreOutcome::AlreadyRestored => Some(ObjectState::Restored),
            RestoreOutcome::NotNeeded => Some(ObjectState::NotNeeded),
            RestoreOutcome::ExpeditedUnavailable => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn parses_a_finished_restore_with_expiry() {
        let s = RestoreStatus::parse_header(
            r#"ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT""#,
        )
        .unwrap();
        assert!(!s.ongoing);
        assert!(s.is_restored());
        assert_eq!(s.expiry, Some(datetime!(2012-12-21 0:00 UTC)));
    }

    #[test]
    fn parses_an_ongoing_restore() {
        let s = RestoreStatus::parse_header(r#"ongoing-request="true""#).unwrap();
        assert!(s.ongoing);
        assert_eq!(s.expiry, None);
    }

    #[test]
    fn is_lenient_about_case_order_quotes_and_extra_keys() {
        let s = RestoreStatus::parse_header(
            r#" Expiry-Date="Mon, 02 Jan 2023 10:30:00 GMT" ,ONGOING-REQUEST=FALSE, x-extra="a,b""#,
        )
        .unwrap();
        assert!(!s.ongoing);
        assert_eq!(s.expiry, Some(datetime!(2023-01-02 10:30 UTC)));

        let s = RestoreStatus::parse_header(
            r#"ongoing-request="false", expiry-date="2024-05-01T12:00:00Z""#,
        )
        .unwrap();
        assert_eq!(s.expiry, Some(datetime!(2024-05-01 12:00 UTC)));
    }

    #[test]
    fn an_unreadable_expiry_is_dropped_not_fatal() {
        let s =
            RestoreStatus::parse_header(r#"ongoing-request="false", expiry-date="sometime soon""#)
                .unwrap();
        assert!(!s.ongoing);
        assert_eq!(s.expiry, None);
    }

    #[test]
    fn restore_outcomes_map_to_object_states() {
        assert_eq!(
            RestoreOutcome::Started.object_state(),
            Some(ObjectState::Requested)
        );
        assert_eq!(
            RestoreOutcome::InProgress.object_state(),
            Some(ObjectState::Requested)
        );
        assert_eq!(
            RestoreOutcome::AlreadyRestored.object_state(),
            Some(ObjectState::Restored)
        );
        assert_eq!(
            RestoreOutcome::NotNeeded.object_state(),
            Some(ObjectState::NotNeeded)
        );
        assert_eq!(RestoreOutcome::ExpeditedUnavailable.object_state(), None);
    }

    #[test]
    fn without_ongoing_request_nothing_is_known() {
        assert_eq!(RestoreStatus::parse_header(""), None);
        assert_eq!(RestoreStatus::parse_header("garbage"), None);
        assert_eq!(
            RestoreStatus::parse_header(r#"ongoing-request="maybe""#),
            None
        );
        assert_eq!(
            RestoreStatus::parse_header(r#"expiry-date="Fri, 21 Dec 2012 00:00:00 GMT""#),
            None
        );
        // An unterminated quote does not panic.
        assert_eq!(RestoreStatus::parse_header(r#"ongoing-request="tru"#), None);
    }
}
