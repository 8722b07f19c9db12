//! Parsing of restore-completion events (DESIGN §5) into SDK-free values.
//!
//! Three deliveries reach the events function and all end up as [`RestoreCompletion`]s:
//! * S3 event notifications invoking the function directly (`{"Records": [{"eventSource":
//!   "aws:s3", "eventName": "ObjectRestore:Completed", ...}]}`);
//! * the same notification JSON carried in the body of SQS messages (S3 → SQS → Lambda), also
//!   when wrapped in an SNS envelope (S3 → SNS → SQS), or an EventBridge event in the body;
//! * SNS records (S3 → SNS → Lambda), the notification in `Sns.Message`;
//! * EventBridge events with `detail-type` "Object Restore Completed".
//!
//! Parsing is lenient on purpose: real records may lack `userIdentity`, `requestParameters` or
//! `glacierEventData` (the emulator's always do), so only what the tally needs is required —
//! bucket, key and the event name. Each record gets its own [`RecordOutcome`] so one bad record
//! never hides the others; other event names are [`RecordOutcome::Ignored`], not errors.

use percent_encoding::percent_decode_str;
use serde::Deserialize;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// S3 notification event name of a finished restore (without the optional `s3:` prefix).
pub const S3_RESTORE_COMPLETED: &str = "ObjectRestore:Completed";
/// EventBridge `detail-type` of a finished restore.
pub const EVENTBRIDGE_RESTORE_COMPLETED: &str = "Object Restore Completed";

/// Which kind of event reported a completion; kept so logs and metrics can tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompletionSource {
    /// An S3 event notification record (direct, or carried by SQS/SNS).
    S3Notification,
    /// An EventBridge "Object Restore Completed" event.
    EventBridge,
}

/// One object whose restored copy is now readable: the fact the tally records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreCompletion {
    pub bucket: String,
    /// The key as stored in S3 (URL-decoded from the event).
    pub key: String,
    /// The key exactly as the event carried it, for logs and for a store that wants to double
    /// check the decoding (EventBridge's key encoding is not spelled out by AWS).
    pub raw_key: String,
    pub version_id: Option<String>,
    /// When the restored copy expires, when the event says so (moto's events never do).
    pub expiry: Option<OffsetDateTime>,
    /// When S3 emitted the event, if it parsed.
    pub event_time: Option<OffsetDateTime>,
    pub source: CompletionSource,
}

/// What became of one record of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    /// A restore completed: tally it.
    Completed(RestoreCompletion),
    /// A well-formed event of another kind (e.g. `ObjectRestore:Post`, `s3:TestEvent`):
    /// acknowledge and drop.
    Ignored { event_name: String },
    /// The record cannot be understood; log and report it, don't fail its neighbours.
    Malformed(String),
}

/// One SQS message of a batch and the records found in its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsItem {
    /// `messageId`, the identifier a partial batch response names; empty when missing.
    pub message_id: String,
    pub records: Vec<RecordOutcome>,
}

/// A whole Lambda invocation payload, classified by trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// SQS batch: failures are reported per message (partial batch response).
    Sqs(Vec<SqsItem>),
    /// S3 or EventBridge invoking the function directly (asynchronous invocation).
    Direct(Vec<RecordOutcome>),
    /// Not an event this function knows; the reason says why.
    Unrecognised(String),
}

/// Classifies and parses a Lambda payload (DESIGN §5). Never fails: problems are outcomes.
pub fn parse_invocation(payload: &Value) -> Invocation {
    if let Some(records) = payload.get("Records").and_then(Value::as_array) {
        let is_sqs = records
            .iter()
            .any(|r| r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs"));
        if is_sqs {
            return Invocation::Sqs(records.iter().map(parse_sqs_message).collect());
        }
        let is_sns = records
            .iter()
            .any(|r| r.get("EventSource").and_then(Value::as_str) == Some("aws:sns"));
        if is_sns {
            return Invocation::Direct(records.iter().flat_map(parse_sns_record).collect());
        }
        return Invocation::Direct(records.iter().map(parse_s3_record).collect());
    }
    if payload.get("detail-type").is_some() {
        return Invocation::Direct(vec![parse_eventbridge(payload)]);
    }
    Invocation::Unrecognised(describe_unrecognised(payload))
}

/// Parses a message body or any other payload that is one of: an S3 notification
/// (`Records`), an S3 test event, an SNS envelope around either, or an EventBridge event.
pub fn parse_payload(payload: &Value) -> Vec<RecordOutcome> {
    if let Some(records) = payload.get("Records").and_then(Value::as_array) {
        return records.iter().map(parse_s3_record).collect();
    }
    if payload.get("detail-type").is_some() {
        return vec![parse_eventbridge(payload)];
    }
    // S3 sends `{"Service":"Amazon S3","Event":"s3:TestEvent",...}` when a queue is attached.
    if let Some(event) = payload.get("Event").and_then(Value::as_str) {
        return vec![RecordOutcome::Ignored {
            event_name: event.to_string(),
        }];
    }
    // SNS envelope (S3 → SNS → SQS): the notification is a JSON string in `Message`.
    if payload.get("Type").and_then(Value::as_str) == Some("Notification") {
        return match payload.get("Message").and_then(Value::as_str) {
            Some(message) => match serde_json::from_str::<Value>(message) {
                Ok(inner) => parse_payload(&inner),
                Err(e) => vec![RecordOutcome::Malformed(format!(
                    "SNS message is not JSON: {e}"
                ))],
            },
            None => vec![RecordOutcome::Malformed(
                "SNS notification without a Message".to_string(),
            )],
        };
    }
    vec![RecordOutcome::Malformed(describe_unrecognised(payload))]
}

fn describe_unrecognised(payload: &Value) -> String {
    match payload {
        Value::Object(map) => {
            let mut fields: Vec<&str> = map.keys().map(String::as_str).take(8).collect();
            fields.sort_unstable();
            format!(
                "neither an S3 notification nor an EventBridge event (fields: {})",
                fields.join(", ")
            )
        }
        other => format!("expected a JSON object, got {}", json_kind(other)),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An SNS record of S3 → SNS → Lambda: the S3 notification is a JSON string in `Sns.Message`.
fn parse_sns_record(record: &Value) -> Vec<RecordOutcome> {
    match record.pointer("/Sns/Message").and_then(Value::as_str) {
        None => vec![RecordOutcome::Malformed(
            "SNS record without Sns.Message".to_string(),
        )],
        Some(message) => match serde_json::from_str::<Value>(message) {
            Ok(payload) => parse_payload(&payload),
            Err(e) => vec![RecordOutcome::Malformed(format!(
                "SNS message is not JSON: {e}"
            ))],
        },
    }
}

fn parse_sqs_message(message: &Value) -> SqsItem {
    let message_id = message
        .get("messageId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let records = match message.get("body").and_then(Value::as_str) {
        None => vec![RecordOutcome::Malformed(
            "SQS message without a body".to_string(),
        )],
        Some(body) => match serde_json::from_str::<Value>(body) {
            Ok(payload) => parse_payload(&payload),
            Err(e) => vec![RecordOutcome::Malformed(format!(
                "SQS message body is not JSON: {e}"
            ))],
        },
    };
    SqsItem {
        message_id,
        records,
    }
}

// ----- S3 event notification records -------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct S3Record {
    event_name: Option<String>,
    event_time: Option<String>,
    s3: Option<S3Entity>,
    glacier_event_data: Option<GlacierEventData>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct S3Entity {
    bucket: Option<BucketEntity>,
    object: Option<S3ObjectEntity>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct BucketEntity {
    name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct S3ObjectEntity {
    key: Option<String>,
    version_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct GlacierEventData {
    restore_event_data: Option<RestoreEventData>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RestoreEventData {
    lifecycle_restoration_expiry_time: Option<String>,
}

/// Parses one record of an S3 event notification.
pub fn parse_s3_record(record: &Value) -> RecordOutcome {
    let record: S3Record = match serde_json::from_value(record.clone()) {
        Ok(r) => r,
        Err(e) => return RecordOutcome::Malformed(format!("S3 record: {e}")),
    };
    let Some(event_name) = record.event_name.filter(|n| !n.is_empty()) else {
        return RecordOutcome::Malformed("S3 record without eventName".to_string());
    };
    if event_name.strip_prefix("s3:").unwrap_or(&event_name) != S3_RESTORE_COMPLETED {
        return RecordOutcome::Ignored { event_name };
    }
    let s3 = record.s3.unwrap_or_default();
    let object = s3.object.unwrap_or_default();
    let bucket = s3.bucket.and_then(|b| b.name).unwrap_or_default();
    let raw_key = object.key.unwrap_or_default();
    let expiry = record
        .glacier_event_data
        .and_then(|g| g.restore_event_data)
        .and_then(|r| r.lifecycle_restoration_expiry_time)
        .as_deref()
        .and_then(parse_time);
    let event_time = record.event_time.as_deref().and_then(parse_time);
    completion(
        bucket,
        raw_key,
        object.version_id,
        expiry,
        event_time,
        CompletionSource::S3Notification,
    )
}

// ----- EventBridge ---------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EventBridgeEvent {
    #[serde(rename = "detail-type")]
    detail_type: Option<String>,
    source: Option<String>,
    /// RFC 3339 on AWS; moto writes a Unix timestamp number.
    time: Option<Value>,
    detail: Option<EventBridgeDetail>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EventBridgeDetail {
    bucket: Option<BucketEntity>,
    object: Option<EventBridgeObject>,
    #[serde(rename = "restore-expiry-time")]
    restore_expiry_time: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EventBridgeObject {
    key: Option<String>,
    #[serde(rename = "version-id")]
    version_id: Option<String>,
}

/// Parses one EventBridge event. Its `detail.object.key` is decoded like a notification key:
/// S3 URL-encodes keys in the events it emits, and a key without `%` or `+` is unchanged.
pub fn parse_eventbridge(event: &Value) -> RecordOutcome {
    let event: EventBridgeEvent = match serde_json::from_value(event.clone()) {
        Ok(e) => e,
        Err(e) => return RecordOutcome::Malformed(format!("EventBridge event: {e}")),
    };
    let Some(detail_type) = event.detail_type.filter(|d| !d.is_empty()) else {
        return RecordOutcome::Malformed("EventBridge event without detail-type".to_string());
    };
    let from_s3 = event.source.as_deref().is_none_or(|s| s == "aws.s3");
    if detail_type != EVENTBRIDGE_RESTORE_COMPLETED || !from_s3 {
        return RecordOutcome::Ignored {
            event_name: detail_type,
        };
    }
    let detail = event.detail.unwrap_or_default();
    let object = detail.object.unwrap_or_default();
    let bucket = detail.bucket.and_then(|b| b.name).unwrap_or_default();
    let raw_key = object.key.unwrap_or_default();
    let expiry = detail.restore_expiry_time.as_deref().and_then(parse_time);
    let event_time = event.time.as_ref().and_then(|t| match t {
        Value::String(s) => parse_time(s),
        Value::Number(n) => n
            .as_f64()
            .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs as i64).ok()),
        _ => None,
    });
    completion(
        bucket,
        raw_key,
        object.version_id,
        expiry,
        event_time,
        CompletionSource::EventBridge,
    )
}

fn completion(
    bucket: String,
    raw_key: String,
    version_id: Option<String>,
    expiry: Option<OffsetDateTime>,
    event_time: Option<OffsetDateTime>,
    source: CompletionSource,
) -> RecordOutcome {
    if bucket.is_empty() {
        return RecordOutcome::Malformed("restore completion without a bucket name".to_string());
    }
    if raw_key.is_empty() {
        return RecordOutcome::Malformed(format!(
            "restore completion in bucket {bucket} without an object key"
        ));
    }
    let key = match decode_event_key(&raw_key) {
        Ok(key) => key,
        Err(reason) => return RecordOutcome::Malformed(reason),
    };
    RecordOutcome::Completed(RestoreCompletion {
        bucket,
        key,
        raw_key,
        // S3 writes `null` or leaves the field out on unversioned buckets.
        version_id: version_id.filter(|v| !v.is_empty() && v != "null"),
        expiry,
        event_time,
        source,
    })
}

/// Decodes an object key as S3 writes it into events: `application/x-www-form-urlencoded`
/// style, so `+` is a space and `%2B` a plus. Fails when the bytes are not UTF-8.
pub fn decode_event_key(raw: &str) -> Result<String, String> {
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|key| key.into_owned())
        .map_err(|_| format!("object key {raw:?} does not decode to UTF-8"))
}

/// Event times are ISO 8601 / RFC 3339 (`2026-11-25T04:00:00.000Z`). Unparsable times are
/// dropped rather than failing the record: they are informational.
fn parse_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    fn sample(name: &str) -> Value {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../events/");
        let text = std::fs::read_to_string(format!("{path}{name}"))
            .unwrap_or_else(|e| panic!("read events/{name}: {e}"));
        serde_json::from_str(&text).unwrap()
    }

    fn completed(outcome: &RecordOutcome) -> &RestoreCompletion {
        match outcome {
            RecordOutcome::Completed(c) => c,
            other => panic!("expected a completion, got {other:?}"),
        }
    }

    fn s3_record(event_name: &str, key: &str) -> Value {
        json!({
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "eventName": event_name,
            "eventTime": "2026-11-25T04:00:00.000Z",
            "s3": {"bucket": {"name": "media"}, "object": {"key": key, "size": 5}}
        })
    }

    #[test]
    fn decodes_plus_as_space_and_percent_escapes() {
        assert_eq!(decode_event_key("a+b%2Bc").unwrap(), "a b+c");
        assert_eq!(
            decode_event_key("100%25+done%2C+ok").unwrap(),
            "100% done, ok"
        );
        assert_eq!(
            decode_event_key("Assets/Caf%C3%A9+%E6%98%A0%E5%83%8F.mov").unwrap(),
            "Assets/Café 映像.mov"
        );
        assert_eq!(decode_event_key("plain/key.txt").unwrap(), "plain/key.txt");
        assert!(decode_event_key("bad%FF%FE").is_err());
    }

    #[test]
    fn s3_sample_event_yields_decoded_key_expiry_and_time() {
        let Invocation::Direct(records) = parse_invocation(&sample("s3-restore-completed.json"))
        else {
            panic!("a direct S3 invocation")
        };
        assert_eq!(records.len(), 1);
        let c = completed(&records[0]);
        assert_eq!(c.bucket, "pluto-assets");
        assert_eq!(c.key, "Project 42/Assets/Café Rushes/take 1+2, 100%.mov");
        assert_eq!(
            c.raw_key,
            "Project+42/Assets/Caf%C3%A9+Rushes/take+1%2B2%2C+100%25.mov"
        );
        assert_eq!(c.version_id, None);
        assert_eq!(c.expiry, Some(datetime!(2026-12-02 00:00:00 UTC)));
        assert_eq!(c.event_time, Some(datetime!(2026-11-25 03:58:12.345 UTC)));
        assert_eq!(c.source, CompletionSource::S3Notification);
    }

    #[test]
    fn sqs_sample_carries_message_ids_and_ignores_other_events() {
        let Invocation::Sqs(items) = parse_invocation(&sample("sqs-s3-restore-completed.json"))
        else {
            panic!("an SQS invocation")
        };
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].message_id, "3f2c8a47-7e84-4c53-9d3a-7b1f0e0f6a01");
        let c = completed(&items[0].records[0]);
        assert_eq!(c.key, "Project 42/Assets/映像 final.mxf");
        assert_eq!(
            c.version_id.as_deref(),
            Some("3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrH")
        );
        // moto-shaped record: no userIdentity, requestParameters or glacierEventData.
        let c = completed(&items[1].records[0]);
        assert_eq!(c.key, "Project 42/Assets/a b.wav");
        assert_eq!(c.expiry, None);
        assert_eq!(
            items[2].records,
            vec![RecordOutcome::Ignored {
                event_name: "ObjectRestore:Post".into()
            }]
        );
    }

    #[test]
    fn eventbridge_sample_is_a_completion() {
        let Invocation::Direct(records) =
            parse_invocation(&sample("eventbridge-restore-completed.json"))
        else {
            panic!("a direct EventBridge invocation")
        };
        let c = completed(&records[0]);
        assert_eq!(c.bucket, "pluto-assets");
        assert_eq!(c.key, "Project 42/Assets/Café Rushes/take 1+2, 100%.mov");
        assert_eq!(
            c.version_id.as_deref(),
            Some("IYV3p45BT0ac8hjHg1houSdS1a.Mro8e")
        );
        assert_eq!(c.expiry, Some(datetime!(2026-12-02 00:00:00 UTC)));
        assert_eq!(c.event_time, Some(datetime!(2026-11-25 03:58:12 UTC)));
        assert_eq!(c.source, CompletionSource::EventBridge);
    }

    #[test]
    fn eventbridge_other_detail_types_and_sources_are_ignored() {
        let mut event = sample("eventbridge-restore-completed.json");
        event["detail-type"] = json!("Object Restore Initiated");
        assert_eq!(
            parse_eventbridge(&event),
            RecordOutcome::Ignored {
                event_name: "Object Restore Initiated".into()
            }
        );
        let mut event = sample("eventbridge-restore-completed.json");
        event["source"] = json!("custom.app");
        assert!(matches!(
            parse_eventbridge(&event),
            RecordOutcome::Ignored { .. }
        ));
    }

    #[test]
    fn eventbridge_numeric_time_as_moto_writes_it() {
        let event = json!({
            "detail-type": "Object Restore Completed", "source": "aws.s3", "time": 1764043092.5,
            "detail": {"bucket": {"name": "b"}, "object": {"key": "k", "version-id": null}}
        });
        let c = completed(&parse_eventbridge(&event)).clone();
        assert_eq!(c.event_time, Some(datetime!(2025-11-25 03:58:12 UTC)));
        assert_eq!(c.version_id, None);
    }

    #[test]
    fn s3_prefixed_event_name_counts_and_other_names_are_ignored() {
        let c = completed(&parse_s3_record(&s3_record(
            "s3:ObjectRestore:Completed",
            "k",
        )))
        .clone();
        assert_eq!(c.key, "k");
        for name in [
            "ObjectRestore:Post",
            "ObjectCreated:Put",
            "ObjectRestore:Delete",
        ] {
            assert_eq!(
                parse_s3_record(&s3_record(name, "k")),
                RecordOutcome::Ignored {
                    event_name: name.into()
                }
            );
        }
    }

    #[test]
    fn malformed_records_are_reported_without_hiding_good_ones() {
        let payload = json!({"Records": [
            s3_record("ObjectRestore:Completed", "good+one"),
            {"eventSource": "aws:s3", "eventName": "ObjectRestore:Completed",
             "s3": {"bucket": {"name": "media"}, "object": {}}},
            {"eventSource": "aws:s3", "eventName": "ObjectRestore:Completed",
             "s3": {"object": {"key": "k"}}},
            {"eventSource": "aws:s3", "s3": {"bucket": {"name": "media"}, "object": {"key": "k"}}},
            {"eventSource": "aws:s3", "eventName": "ObjectRestore:Completed",
             "s3": {"bucket": {"name": "media"}, "object": {"key": 42}}},
            s3_record("ObjectRestore:Completed", "bad%FF"),
            "not an object",
        ]});
        let Invocation::Direct(records) = parse_invocation(&payload) else {
            panic!("direct")
        };
        assert_eq!(completed(&records[0]).key, "good one");
        for (i, outcome) in records.iter().enumerate().skip(1) {
            assert!(
                matches!(outcome, RecordOutcome::Malformed(_)),
                "record {i}: {outcome:?}"
            );
        }
        let RecordOutcome::Malformed(reason) = &records[1] else {
            unreachable!()
        };
        assert!(reason.contains("without an object key"), "{reason}");
        let RecordOutcome::Malformed(reason) = &records[3] else {
            unreachable!()
        };
        assert!(reason.contains("eventName"), "{reason}");
    }

    #[test]
    fn unparsable_times_are_dropped_not_fatal() {
        let mut record = s3_record("ObjectRestore:Completed", "k");
        record["eventTime"] = json!("yesterday");
        record["glacierEventData"] =
            json!({"restoreEventData": {"lifecycleRestorationExpiryTime": "soon"}});
        let c = completed(&parse_s3_record(&record)).clone();
        assert_eq!((c.event_time, c.expiry), (None, None));
    }

    #[test]
    fn sqs_bodies_test_events_sns_envelopes_and_garbage() {
        let notification = json!({"Records": [s3_record("ObjectRestore:Completed", "a+b")]});
        let sns = json!({"Type": "Notification", "Message": notification.to_string()});
        let eventbridge = sample("eventbridge-restore-completed.json");
        let test_event = json!({"Service": "Amazon S3", "Event": "s3:TestEvent",
                                "Bucket": "media", "Time": "2026-11-25T04:00:00.000Z"});
        let messages: Vec<Value> = [
            sns.to_string(),
            eventbridge.to_string(),
            test_event.to_string(),
            "{not json".to_string(),
            json!({"hello": "world"}).to_string(),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, body)| json!({"messageId": format!("m{i}"), "eventSource": "aws:sqs", "body": body}))
        .chain([json!({"messageId": "m5", "eventSource": "aws:sqs"})])
        .collect();
        let Invocation::Sqs(items) = parse_invocation(&json!({ "Records": messages })) else {
            panic!("sqs")
        };
        assert_eq!(completed(&items[0].records[0]).key, "a b");
        assert_eq!(
            completed(&items[1].records[0]).source,
            CompletionSource::EventBridge
        );
        assert_eq!(
            items[2].records,
            vec![RecordOutcome::Ignored {
                event_name: "s3:TestEvent".into()
            }]
        );
        for item in &items[3..] {
            assert!(
                matches!(item.records.as_slice(), [RecordOutcome::Malformed(_)]),
                "{item:?}"
            );
        }
        assert_eq!(items[5].message_id, "m5");
    }

    #[test]
    fn sns_records_carry_s3_notifications() {
        let notification = json!({"Records": [s3_record("ObjectRestore:Completed", "x+y%2Bz")]});
        let payload = json!({"Records": [
            {"EventSource": "aws:sns", "Sns": {"Type": "Notification",
                                               "Message": notification.to_string()}},
            {"EventSource": "aws:sns", "Sns": {"Message": "{oops"}},
            {"EventSource": "aws:sns", "Sns": {}},
        ]});
        let Invocation::Direct(records) = parse_invocation(&payload) else {
            panic!("direct")
        };
        assert_eq!(records.len(), 3);
        assert_eq!(completed(&records[0]).key, "x y+z");
        assert!(matches!(records[1], RecordOutcome::Malformed(_)));
        assert!(matches!(records[2], RecordOutcome::Malformed(_)));
    }

    #[test]
    fn unknown_payloads_are_unrecognised() {
        assert!(matches!(
            parse_invocation(&json!({"foo": 1})),
            Invocation::Unrecognised(reason) if reason.contains("foo")
        ));
        assert!(matches!(
            parse_invocation(&json!([1, 2])),
            Invocation::Unrecognised(_)
        ));
    }
}
