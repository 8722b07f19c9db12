//! Which objects of the report are copied, and where: `BASE_PATH/<key>`, refusing any key that
//! would land outside `BASE_PATH`.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use shared::domain::manifest::{Report, ReportObject};
use shared::domain::state::ObjectState;

/// One object to copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyItem {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    /// Size the report recorded (the object's HEAD is authoritative).
    pub size: u64,
    /// Destination relative to `BASE_PATH`.
    pub relative: PathBuf,
}

/// An object left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub bucket: String,
    pub key: String,
    pub reason: String,
}

/// The copy plan of a report.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    pub items: Vec<CopyItem>,
    /// Keys that can't be copied safely (they count as failures).
    pub rejected: Vec<Rejected>,
    /// Objects the restore did not bring back (failed or never finished): not the copy's fault.
    pub not_restored: Vec<String>,
}

/// Builds the plan: objects `restored` or `not_needed`, folder keys skipped, one item per
/// destination (the first listed wins, as in planning).
pub fn plan(report: &Report) -> Plan {
    let mut plan = Plan::default();
    let mut seen = HashSet::new();
    for object in &report.objects {
        if object.key.ends_with('/') {
            continue;
        }
        if !matches!(object.state, ObjectState::Restored | ObjectState::NotNeeded) {
            plan.not_restored.push(object.key.clone());
            continue;
        }
        match relative_path(&object.key) {
            Ok(relative) => {
                if seen.insert(relative.clone()) {
                    plan.items.push(item(object, relative));
                } else {
                    tracing::warn!(job_id = %report.job_id, bucket = %object.bucket, key = %object.key,
                        "key listed twice in the report; the first entry is copied");
                }
            }
            Err(reason) => plan.rejected.push(Rejected {
                bucket: object.bucket.clone(),
                key: object.key.clone(),
                reason,
            }),
        }
    }
    plan
}

fn item(object: &ReportObject, relative: PathBuf) -> CopyItem {
    CopyItem {
        bucket: object.bucket.clone(),
        key: object.key.clone(),
        version_id: object.version_id.clone(),
        size: object.size,
        relative,
    }
}

/// The relative path of a key under `BASE_PATH`: plain segments only. Absolute keys, `..` and
/// `.` segments, empty segments (`a//b`) and NUL bytes are refused rather than normalised, so a
/// key can never name a file outside `BASE_PATH` or a different file than it says.
pub fn relative_path(key: &str) -> Result<PathBuf, String> {
    if key.is_empty() {
        return Err("empty key".into());
    }
    if key.contains('\0') {
        return Err("key contains a NUL byte".into());
    }
    if key.starts_with('/') {
        return Err("absolute key would escape BASE_PATH".into());
    }
    let mut path = PathBuf::new();
    for segment in key.split('/') {
        match segment {
            "" => return Err("key has an empty path segment (//)".into()),
            "." | ".." => return Err(format!("key has a {segment:?} segment")),
            _ => {}
        }
        let mut components = Path::new(segment).components();
        match (components.next(), components.next()) {
            (Some(Component::Normal(_)), None) => path.push(segment),
            _ => return Err(format!("key segment {segment:?} is not a plain name")),
        }
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_keys_map_under_base() {
        assert_eq!(
            relative_path("Project X/Final cut/ÅÄÖ 日本.mov").unwrap(),
            PathBuf::from("Project X/Final cut/ÅÄÖ 日本.mov")
        );
        assert_eq!(relative_path("a..b/c").unwrap(), PathBuf::from("a..b/c"));
    }

    #[test]
    fn escaping_keys_are_refused() {
        for key in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/./b",
            "a//b",
            "a/..",
            "a\0b",
        ] {
            assert!(relative_path(key).is_err(), "{key:?} accepted");
        }
    }
}
