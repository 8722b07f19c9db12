//! Any bytes as a Lambda payload of restore-events (direct S3, SQS, SNS, EventBridge) and as an
//! event's object key: parsing never panics, and a completion's key is the decoding of its raw
//! key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::domain::event::{decode_event_key, parse_invocation, Invocation, RecordOutcome};

fn check(records: &[RecordOutcome]) {
    for record in records {
        if let RecordOutcome::Completed(c) = record {
            assert!(!c.bucket.is_empty());
            if let Ok(decoded) = decode_event_key(&c.raw_key) {
                assert_eq!(decoded, c.key, "{:?}", c.raw_key);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = decode_event_key(text);
    }
    let Ok(payload) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    match parse_invocation(&payload) {
        Invocation::Sqs(items) => items.iter().for_each(|i| check(&i.records)),
        Invocation::Direct(records) => check(&records),
        Invocation::Unrecognised(_) => {}
    }
});
