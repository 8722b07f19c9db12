//! Property tests (proptest) of the parsers that take outside input: the API request bodies,
//! the path mapping and the completion event parsers. They never panic on any input, and
//! hold their invariants: a mapped prefix is never empty and never holds `//`, `.` or `..`;
//! an event key decodes to exactly the key S3 encoded; an accepted restore body has a
//! canonical id. The same properties run unbounded in the cargo-fuzz targets under `fuzz/`.

use integration_tests::s3_restore_event;
use proptest::prelude::*;
use serde_json::{json, Value};
use shared::domain::event::{decode_event_key, parse_invocation, Invocation, RecordOutcome};
use shared::domain::path::PathMapping;
use shared::domain::request::{PermissionsRequest, RestoreRequest, StatsRequest, MAX_ID_DIGITS};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Path-like strings: segments of awkward characters (dots, spaces, unicode, `Assets`,
/// percent signs, control characters) joined by one or more slashes.
fn path_like() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        Just("Assets".to_string()),
        Just("..".to_string()),
        Just(".".to_string()),
        Just(String::new()),
        Just(" ".to_string()),
        "[a-zA-Z0-9 ._%+-]{1,12}",
        "\\PC{1,6}",
        "[\\x00-\\x1f]{1,2}",
    ];
    (
        any::<bool>(),
        prop::collection::vec((segment, 1..3usize), 0..8),
    )
        .prop_map(|(lead, parts)| {
            let mut out = if lead { "/".to_string() } else { String::new() };
            for (segment, slashes) in parts {
                out.push_str(&segment);
                out.push_str(&"/".repeat(slashes));
            }
            out
        })
}

fn check_mapping(path: &str, mapping: &PathMapping) {
    let prefix = &mapping.prefix;
    assert!(prefix.len() > 1, "{path:?} → {prefix:?}");
    assert!(
        !prefix.starts_with('/') && prefix.ends_with('/'),
        "{prefix:?}"
    );
    assert!(!prefix.contains("//"), "{path:?} → {prefix:?}");
    assert!(!prefix.chars().any(char::is_control), "{prefix:?}");
    for segment in prefix.trim_end_matches('/').split('/') {
        assert!(
            !segment.is_empty() && segment != "." && segment != "..",
            "{path:?} → {prefix:?}"
        );
    }
    assert!(!prefix.trim_end_matches('/').trim().is_empty());
    if let Some(base) = &mapping.local_base {
        assert!(base.ends_with("/Assets/") || base == "Assets/", "{base:?}");
        let key = format!("{prefix}clip.mov");
        assert_eq!(mapping.local_path(&key), Some(format!("{base}{key}")));
        // A key of a neighbouring prefix (`proj/` vs `proj2/`) never maps under this one.
        let neighbour = format!("{}2/clip.mov", prefix.trim_end_matches('/'));
        assert_eq!(mapping.local_path(&neighbour), None, "{neighbour:?}");
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn path_mapping_never_panics_and_accepted_prefixes_are_safe(path in path_like()) {
        if let Ok(mapping) = PathMapping::from_request_path(&path) {
            check_mapping(&path, &mapping);
            // Mapping is stable: the prefix, taken as a path, maps to itself when it holds no
            // Assets segment.
            if !mapping.prefix.split('/').any(|s| s == "Assets") {
                let again = PathMapping::from_request_path(&mapping.prefix).unwrap();
                prop_assert_eq!(&again.prefix, &mapping.prefix);
            }
        } else {
            let err = PathMapping::from_request_path(&path).unwrap_err();
            prop_assert_eq!(err.code(), "invalid_path");
        }
    }

    #[test]
    fn path_mapping_takes_any_string(path in "\\PC{0,40}|.{0,40}") {
        if let Ok(mapping) = PathMapping::from_request_path(&path) {
            check_mapping(&path, &mapping);
        }
    }

    #[test]
    fn a_project_path_maps_to_its_rest_below_assets(
        base in prop::collection::vec("[a-z]{1,6}", 0..3),
        rest in prop::collection::vec("[a-zA-Z0-9 ]{0,5}[a-zA-Z0-9]", 1..4),
    ) {
        let path = format!("/{}/Assets/{}", base.join("/"), rest.join("/"));
        let mapping = PathMapping::from_request_path(&path).unwrap();
        prop_assert_eq!(mapping.prefix, format!("{}/", rest.join("/")));
        let want_base = if base.is_empty() {
            "/Assets/".to_string()
        } else {
            format!("/{}/Assets/", base.join("/"))
        };
        prop_assert_eq!(mapping.local_base, Some(want_base));
    }

    #[test]
    fn request_parsers_never_panic_on_bytes(body in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = RestoreRequest::from_json(&body);
        let _ = StatsRequest::from_json(&body);
        let _ = PermissionsRequest::from_json(&body);
    }

    #[test]
    fn restore_bodies_of_any_shape_parse_or_fail_with_a_code(
        id in prop_oneof![
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|f| json!(f)),
            "[0-9 ]{0,25}".prop_map(Value::from),
            "\\PC{0,8}".prop_map(Value::from),
            Just(Value::Null),
            Just(json!([1])),
            Just(json!("18446744073709551616")),
        ],
        user in prop_oneof![
            "[a-z]{1,8}@[a-z]{1,8}\\.com".prop_map(Value::from),
            "\\PC{0,20}".prop_map(Value::from),
            Just(json!(5)),
            Just(json!("a@b@c")),
            Just(json!("ed@example.com\r\nBcc: x@y.z")),
        ],
        path in path_like(),
        tier in prop_oneof![
            Just("Bulk".to_string()),
            Just("expedited".to_string()),
            Just("STANDARD".to_string()),
            "\\PC{0,10}",
        ],
    ) {
        let body = json!({"id": id, "user": user, "path": path, "retrievalType": tier});
        match RestoreRequest::from_json(body.to_string().as_bytes()) {
            Ok(request) => {
                let id = &request.project_id;
                prop_assert!(!id.is_empty() && id.len() <= MAX_ID_DIGITS);
                prop_assert!(id.bytes().all(|b| b.is_ascii_digit()) && !id.starts_with('0'));
                prop_assert!(!request.user.chars().any(char::is_whitespace));
                prop_assert_eq!(request.user.matches('@').count(), 1);
                check_mapping(&request.path, &request.path_mapping().unwrap());
            }
            Err(err) => {
                prop_assert!(
                    ["missing_field", "invalid_field", "invalid_json", "unknown_tier", "invalid_path"]
                        .contains(&err.code()),
                    "{}", err
                );
                prop_assert!((400..500).contains(&err.http_status()));
            }
        }
    }

    #[test]
    fn an_event_key_decodes_to_the_key_s3_encoded(key in "\\PC{1,40}") {
        // S3 writes keys form-encoded (space as `+`); the test helper encodes the same way.
        let event = s3_restore_event("media", &key, "2026-12-01T00:00:00.000Z");
        let raw = event["Records"][0]["s3"]["object"]["key"].as_str().unwrap().to_string();
        prop_assert_eq!(decode_event_key(&raw).unwrap(), key.clone());
        match parse_invocation(&event) {
            Invocation::Direct(records) => match &records[..] {
                [RecordOutcome::Completed(c)] => {
                    prop_assert_eq!(&c.key, &key);
                    prop_assert_eq!(&c.raw_key, &raw);
                    prop_assert!(c.expiry.is_some());
                }
                other => prop_assert!(false, "{:?}", other),
            },
            other => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn decoding_any_raw_key_never_panics(raw in "\\PC{0,40}|[%+0-9a-fA-F]{0,20}") {
        if let Ok(key) = decode_event_key(&raw) {
            // Without `%` and `+` decoding is the identity.
            if !raw.contains(['%', '+']) {
                prop_assert_eq!(key, raw);
            }
        }
    }

    #[test]
    fn event_parsers_never_panic_on_json(
        payload in prop_oneof![
            Just(json!({})),
            Just(json!({"Records": "x"})),
            Just(json!({"detail-type": 5})),
        ].prop_recursive(3, 24, 4, |inner| prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|r| json!({"Records": r})),
            (inner.clone(), "\\PC{0,12}").prop_map(|(d, k)| json!({
                "detail-type": "Object Restore Completed",
                "detail": {"bucket": {"name": d}, "object": {"key": k}}})),
            (inner.clone(), "\\PC{0,12}").prop_map(|(b, k)| json!({
                "eventSource": "aws:sqs", "messageId": k, "body": b.to_string()})),
            (inner.clone(), "\\PC{0,12}").prop_map(|(b, k)| json!({
                "eventName": "ObjectRestore:Completed",
                "s3": {"bucket": {"name": b}, "object": {"key": k}}})),
            (inner, "\\PC{0,12}").prop_map(|(m, k)| json!({
                "EventSource": "aws:sns", "Sns": {"Message": m.to_string(), "Subject": k}})),
        ]),
    ) {
        let records: Vec<RecordOutcome> = match parse_invocation(&payload) {
            Invocation::Sqs(items) => items.into_iter().flat_map(|i| i.records).collect(),
            Invocation::Direct(records) => records,
            Invocation::Unrecognised(why) => {
                prop_assert!(!why.is_empty());
                vec![]
            }
        };
        for record in records {
            if let RecordOutcome::Completed(c) = record {
                prop_assert!(!c.bucket.is_empty() && !c.key.is_empty());
            }
        }
    }
}
