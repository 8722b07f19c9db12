//! The JSON report of a finished job: written to `MANIFEST_BUCKET` by the finalizer and read by
//! the on-premises copy worker. Its shape is a contract between the two; extend, don't rename.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::state::{JobState, ObjectState};
use super::storage::{RetrievalTier, StorageClass};

/// One object of a job as it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportObject {
    pub bucket: String,
    /// The key as stored in S3 (not URL-encoded).
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    pub size: u64,
    pub storage_class: StorageClass,
    pub state: ObjectState,
    /// When the restored copy expires, if known.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expiry: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Counts of a finished job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportTotals {
    pub objects: u64,
    pub bytes: u64,
    pub restored: u64,
    pub not_needed: u64,
    pub failed: u64,
}

/// The whole report (`s3://MANIFEST_BUCKET/<job_id>/report.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub job_id: String,
    pub project_id: String,
    /// S3 prefix restored (DESIGN §3 path mapping).
    pub prefix: String,
    /// Local assets root the files belong under on premises, when the path had `/Assets/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_base: Option<String>,
    pub tier: RetrievalTier,
    pub state: JobState,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
    pub totals: ReportTotals,
    /// Estimated cost of the chosen tier in cents (USD).
    pub cost_cents: u64,
    pub objects: Vec<ReportObject>,
}

/// Object key of the CSV manifest of a job in `MANIFEST_BUCKET`.
pub fn manifest_csv_key(job_id: &str) -> String {
    format!("{job_id}/manifest.csv")
}

/// Object key of the JSON report of a job in `MANIFEST_BUCKET`.
pub fn report_json_key(job_id: &str) -> String {
    format!("{job_id}/report.json")
}

/// Characters left as they are in manifest keys: RFC 3986 unreserved ones and `/`. Everything
/// else is `%XX` (UTF-8 bytes), so a space is `%20` and a plus `%2B`: both a plain percent
/// decoder and a form decoder (`+` = space) read the key back the same, and a `,` or `"` can
/// never break the CSV.
const MANIFEST_KEY_SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// URL-encodes an object key for an S3 Batch Operations CSV manifest, which requires encoded
/// keys.
pub fn encode_manifest_key(key: &str) -> String {
    percent_encoding::utf8_percent_encode(key, MANIFEST_KEY_SET).to_string()
}

/// Whether an object ended readable and so belongs in the copy manifest.
fn is_readable(object: &ReportObject) -> bool {
    matches!(object.state, ObjectState::Restored | ObjectState::NotNeeded)
}

/// Whether the manifest gets a version id column: Batch Operations wants version ids on every
/// line or on none, so only when every readable object has one.
pub fn manifest_uses_version_ids<'a>(objects: impl IntoIterator<Item = &'a ReportObject>) -> bool {
    let mut any = false;
    for object in objects.into_iter().filter(|o| is_readable(o)) {
        if object.version_id.is_none() {
            return false;
        }
        any = true;
    }
    any
}

/// One manifest line (with its `\n`), or `None` for an object that is not listed. For jobs
/// too big to hold in memory: decide [`manifest_uses_version_ids`] first, then write page by
/// page (e.g. a multipart upload).
pub fn csv_manifest_line(object: &ReportObject, with_version_ids: bool) -> Option<String> {
    if !is_readable(object) {
        return None;
    }
    let mut line = format!("{},{}", object.bucket, encode_manifest_key(&object.key));
    if with_version_ids {
        line.push(',');
        line.push_str(object.version_id.as_deref().unwrap_or_default());
    }
    line.push('\n');
    Some(line)
}

/// The CSV manifest of the objects that came back (restored, or readable without a restore):
/// `bucket,key` per line, keys URL-encoded, no header — the `S3BatchOperations_CSV_20180820`
/// format. The third column (version id) is written only when every listed object has one.
/// Failed objects are left out: they are in the JSON report with their error.
pub fn csv_manifest(objects: &[ReportObject]) -> String {
    let with_versions = manifest_uses_version_ids(objects);
    objects
        .iter()
        .filter_map(|o| csv_manifest_line(o, with_versions))
        .collect()
}

/// The JSON report as written to `MANIFEST_BUCKET` (pretty-printed: people read it too).
pub fn report_json(report: &Report) -> crate::Result<String> {
    serde_json::to_string_pretty(report)
        .map_err(|e| crate::Error::Internal(format!("report {} to JSON: {e}", report.job_id)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn object(key: &str, state: ObjectState) -> ReportObject {
        ReportObject {
            bucket: "pluto-assets".into(),
            key: key.into(),
            version_id: None,
            size: 1024,
            storage_class: StorageClass::Glacier,
            state,
            expiry: Some(datetime!(2026-12-02 00:00 UTC)),
            error: None,
        }
    }

    const AWKWARD_KEYS: [&str; 7] = [
        "Project 42/Assets/take 1+2.mov",
        "Project 42/Assets/100% done.wav",
        "Project 42/Assets/a,b,c \"quoted\".txt",
        "Project 42/Assets/Café Rushes/映像 final.mxf",
        "Project 42/Assets/tab\there & ?query=#frag",
        "Project 42/Assets/already%20encoded+plus",
        "plain/key-1_2.~x",
    ];

    /// Plain RFC 3986 percent decoding, as a Batch Operations reader would do.
    fn percent_decode(s: &str) -> String {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .unwrap()
            .into_owned()
    }

    #[test]
    fn manifest_key_encoding_examples() {
        assert_eq!(
            encode_manifest_key("Project 42/Assets/take 1+2, 100%.mov"),
            "Project%2042/Assets/take%201%2B2%2C%20100%25.mov"
        );
        assert_eq!(encode_manifest_key("Café/映"), "Caf%C3%A9/%E6%98%A0");
        assert_eq!(encode_manifest_key("plain/key-1_2.~x"), "plain/key-1_2.~x");
    }

    #[test]
    fn csv_has_no_header_two_fields_per_line_and_keys_round_trip() {
        let objects: Vec<ReportObject> = AWKWARD_KEYS
            .iter()
            .map(|k| object(k, ObjectState::Restored))
            .collect();
        let csv = csv_manifest(&objects);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines.len(),
            AWKWARD_KEYS.len(),
            "one line per object, no header"
        );
        assert!(csv.ends_with('\n'));
        for (line, original) in lines.iter().zip(AWKWARD_KEYS) {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), 2, "{line}");
            assert_eq!(fields[0], "pluto-assets");
            assert!(!fields[1].contains([' ', '"', '+', '\t']), "{line}");
            // Both decoders Batch Operations might use give the original key back.
            assert_eq!(percent_decode(fields[1]), original);
            assert_eq!(
                crate::domain::event::decode_event_key(fields[1]).unwrap(),
                original
            );
        }
    }

    #[test]
    fn csv_lists_only_readable_objects() {
        let objects = vec![
            object("restored.mov", ObjectState::Restored),
            object("standard.mov", ObjectState::NotNeeded),
            object("failed.mov", ObjectState::Failed),
            object("pending.mov", ObjectState::Requested),
        ];
        assert_eq!(
            csv_manifest(&objects),
            "pluto-assets,restored.mov\npluto-assets,standard.mov\n"
        );
        assert_eq!(csv_manifest(&[]), "");
        assert_eq!(csv_manifest(&objects[2..]), "");
    }

    #[test]
    fn version_ids_only_when_every_line_has_one() {
        let mut a = object("a b", ObjectState::Restored);
        let mut b = object("c", ObjectState::Restored);
        a.version_id = Some("v1".into());
        assert_eq!(
            csv_manifest(&[a.clone(), b.clone()]),
            "pluto-assets,a%20b\npluto-assets,c\n"
        );
        b.version_id = Some("v2.x_y".into());
        assert_eq!(
            csv_manifest(&[a.clone(), b.clone()]),
            "pluto-assets,a%20b,v1\npluto-assets,c,v2.x_y\n"
        );
        // A failed object without a version id does not take the column away.
        let failed = object("gone", ObjectState::Failed);
        assert!(manifest_uses_version_ids(&[a.clone(), failed.clone(), b]));
        assert_eq!(csv_manifest_line(&failed, true), None);
        assert_eq!(
            csv_manifest_line(&a, false).as_deref(),
            Some("pluto-assets,a%20b\n")
        );
    }

    #[test]
    fn report_json_keeps_keys_verbatim_and_round_trips() {
        let mut failed = object(AWKWARD_KEYS[2], ObjectState::Failed);
        failed.error = Some("AccessDenied".into());
        failed.expiry = None;
        let report = Report {
            job_id: "job-1".into(),
            project_id: "42".into(),
            prefix: "Project 42/".into(),
            local_base: Some("/srv/media/Project 42/Assets/".into()),
            tier: RetrievalTier::Bulk,
            state: JobState::CompletedWithErrors,
            created_at: datetime!(2026-11-25 01:00 UTC),
            finished_at: datetime!(2026-11-25 04:00 UTC),
            totals: ReportTotals {
                objects: 2,
                bytes: 2048,
                restored: 1,
                not_needed: 0,
                failed: 1,
            },
            cost_cents: 259,
            objects: vec![object(AWKWARD_KEYS[3], ObjectState::Restored), failed],
        };
        let json = report_json(&report).unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["objects"][0]["key"], AWKWARD_KEYS[3]);
        assert_eq!(value["objects"][0]["state"], "restored");
        assert_eq!(value["objects"][0]["expiry"], "2026-12-02T00:00:00Z");
        assert_eq!(value["objects"][0]["size"], 1024);
        assert_eq!(value["objects"][1]["error"], "AccessDenied");
        assert_eq!(value["objects"][1]["expiry"], serde_json::Value::Null);
        assert_eq!(value["totals"]["failed"], 1);
        assert_eq!(value["cost_cents"], 259);
        assert_eq!(value["state"], "completed_with_errors");
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn object_keys_of_the_manifest_files() {
        assert_eq!(manifest_csv_key("job-1"), "job-1/manifest.csv");
        assert_eq!(report_json_key("job-1"), "job-1/report.json");
    }
}
