//! The bad-input table: malformed requests on every route (types, sizes, encodings, paths,
//! tiers, unknown and huge ids, unicode, injection attempts in path and user, bad JSON, wrong
//! content types, oversized bodies, the legacy routes) each get a 4xx JSON error
//! `{"error": {"code", "message"}}`, and none of them writes anything: the jobs table, the
//! buckets' objects (no restore asked for) and SES (no mail) are checked before and after.
//! `api_routes.rs` covers the happy paths and the first error classes; this extends it.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::StorageClass as SdkClass;
use integration_tests::{
    job_store, moto_api_get, s3_client, sesv2_client, unique_name, verify_sender,
};
use serde_json::{json, Value};
use shared::adapters::dynamodb::DynamoJobStore;
use shared::adapters::s3::S3ObjectStore;
use shared::adapters::ses::SesMailer;
use shared::api::{Api, ApiSettings};
use shared::domain::cost::PriceList;
use shared::domain::fanout::{Fanout, FanoutSettings};
use shared::domain::storage::RestorePolicy;

const ALLOWED: &str = "editor@example.com";
const KEYS: [&str; 4] = [
    "proj/a.mov",
    "proj/b/c.mxf",
    "proj2/neighbour.mov",
    "映像/clip.mov",
];

struct Fixture {
    api: Api,
    jobs: Arc<DynamoJobStore>,
    s3: aws_sdk_s3::Client,
    bucket: String,
    sender: String,
}

async fn fixture() -> Fixture {
    let s3 = s3_client().await;
    let bucket = unique_name("bad-input");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    for key in KEYS {
        s3.put_object()
            .bucket(&bucket)
            .key(key)
            .storage_class(SdkClass::Glacier)
            .body(ByteStream::from_static(b"media"))
            .send()
            .await
            .unwrap();
    }
    let sender = format!("{}@restore.example.com", unique_name("bad"));
    verify_sender(&sender).await;
    let jobs = Arc::new(job_store().await);
    let objects = Arc::new(S3ObjectStore::new(s3.clone()));
    let fanout = Arc::new(Fanout::new(
        objects.clone(),
        jobs.clone(),
        FanoutSettings::default(),
    ));
    let settings = ApiSettings {
        buckets: vec![bucket.clone()],
        allowed_users: vec![ALLOWED.into()],
        approvers: vec!["approver@example.com".into()],
        project_url: None,
        prices: PriceList::aws(),
        policy: RestorePolicy::default(),
        plan_budget: Duration::from_secs(10),
        stats_validity: Duration::from_secs(300),
        background_fanout: false,
    };
    let mailer = Arc::new(SesMailer::new(sesv2_client().await, &sender).unwrap());
    Fixture {
        api: Api::new(jobs.clone(), objects, mailer, fanout, settings),
        jobs,
        s3,
        bucket,
        sender,
    }
}

/// Everything a request could have written: the table's items, each object's restore
/// status and the bucket listing, the mails sent from this fixture's sender.
#[derive(Debug, PartialEq)]
struct Written {
    items: Vec<String>,
    objects: Vec<(String, Option<String>)>,
    mails: usize,
}

impl Fixture {
    async fn written(&self) -> Written {
        let scan = integration_tests::dynamodb_client()
            .await
            .scan()
            .table_name(self.jobs.table())
            .send()
            .await
            .unwrap();
        let mut items: Vec<String> = scan
            .items()
            .iter()
            .map(|item| format!("{:?}/{:?}", item.get("pk"), item.get("sk")))
            .collect();
        items.sort();
        let listing = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .send()
            .await
            .unwrap();
        let mut objects = Vec::new();
        for object in listing.contents() {
            let key = object.key().unwrap().to_string();
            let head = self
                .s3
                .head_object()
                .bucket(&self.bucket)
                .key(&key)
                .send()
                .await
                .unwrap();
            objects.push((key, head.restore().map(str::to_string)));
        }
        let data: Value = serde_json::from_str(&moto_api_get("/moto-api/data.json")).unwrap();
        let mails = data["ses"]["Message"].as_array().map_or(0, |all| {
            all.iter()
                .filter(|m| {
                    m["source"]
                        .as_str()
                        .is_some_and(|s| s.contains(&self.sender))
                })
                .count()
        });
        Written {
            items,
            objects,
            mails,
        }
    }

    async fn call(&self, method: &str, path: &str, ct: Option<&str>, body: &[u8]) -> (u16, Value) {
        let mut request = http::Request::builder().method(method).uri(path);
        if let Some(ct) = ct {
            request = request.header("content-type", ct);
        }
        let response = self.api.handle(request.body(body.to_vec()).unwrap()).await;
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{method} {path}"
        );
        let body = serde_json::from_str(response.body())
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {}", response.body()));
        (response.status().as_u16(), body)
    }
}

/// A restore body with one field replaced.
fn restore(field: &str, value: Value) -> Vec<u8> {
    let mut body = json!({"id": 4242, "user": ALLOWED, "path": "/srv/projects/Assets/proj/",
                          "retrievalType": "Bulk"});
    body[field] = value;
    body.to_string().into_bytes()
}

fn restore_without(field: &str) -> Vec<u8> {
    let mut body = json!({"id": 4242, "user": ALLOWED, "path": "/srv/projects/Assets/proj/",
                          "retrievalType": "Bulk"});
    body.as_object_mut().unwrap().remove(field);
    body.to_string().into_bytes()
}

const JSON: Option<&str> = Some("application/json");
const V1: &str = "/api/v1/restore";

struct Case {
    what: &'static str,
    method: &'static str,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
}

fn post(what: &'static str, path: &str, body: Vec<u8>, status: u16, code: &'static str) -> Case {
    Case {
        what,
        method: "POST",
        path: path.to_string(),
        content_type: JSON,
        body,
        status,
        code,
    }
}

fn get(what: &'static str, path: String, status: u16, code: &'static str) -> Case {
    Case {
        what,
        method: "GET",
        path,
        content_type: None,
        body: Vec::new(),
        status,
        code,
    }
}

fn cases() -> Vec<Case> {
    let long_path = format!("/srv/Assets/{}/", "d".repeat(1100));
    let mut oversized = restore("pad", json!("x".repeat(64 * 1024)));
    oversized.truncate(64 * 1024 + 1);
    vec![
        // Types and values of the id.
        post("id as boolean", V1, restore("id", json!(true)), 400, "invalid_field"),
        post("negative id", V1, restore("id", json!(-5)), 400, "invalid_field"),
        post("fractional id", V1, restore("id", json!(1.5)), 400, "invalid_field"),
        post("zero id", V1, restore("id", json!(0)), 400, "invalid_field"),
        post("huge numeric id", V1, restore("id", json!(1e30)), 400, "invalid_field"),
        post("30-digit id string", V1, restore("id", json!("1".repeat(30))), 400, "invalid_field"),
        post("id with letters", V1, restore("id", json!("12a")), 400, "invalid_field"),
        post("id with injection", V1, restore("id", json!("1; DROP TABLE jobs")), 400, "invalid_field"),
        post("id as array", V1, restore("id", json!([1])), 400, "invalid_field"),
        post("id missing", V1, restore_without("id"), 400, "missing_field"),
        // The user.
        post("user as number", V1, restore("user", json!(5)), 400, "invalid_field"),
        post("user without @", V1, restore("user", json!("editor")), 400, "invalid_field"),
        post("user with two @", V1, restore("user", json!("a@b@example.com")), 400, "invalid_field"),
        post("user with header injection", V1, restore("user", json!("editor@example.com\r\nBcc: all@example.com")), 400, "invalid_field"),
        post("user with inner space", V1, restore("user", json!("editor @example.com")), 400, "invalid_field"),
        post("user of 300 bytes", V1, restore("user", json!(format!("{}@example.com", "u".repeat(290)))), 400, "invalid_field"),
        post("user not allowed", V1, restore("user", json!("intruder@example.com")), 403, "user_not_allowed"),
        post("unicode lookalike user", V1, restore("user", json!("editor@exаmple.com")), 403, "user_not_allowed"),
        post("user not allowed, legacy", "/restore", restore("user", json!("intruder@example.com")), 403, "user_not_allowed"),
        post("user injection, legacy", "/restore", restore("user", json!("editor@example.com'--")), 403, "user_not_allowed"),
        // Tiers.
        post("tier missing", V1, restore_without("retrievalType"), 400, "missing_field"),
        post("tier as number", V1, restore("retrievalType", json!(3)), 400, "invalid_field"),
        post("unknown tier", V1, restore("retrievalType", json!("Glacier")), 422, "unknown_tier"),
        post("tier with injection", "/restore", restore("retrievalType", json!("Bulk; rm -rf /")), 422, "unknown_tier"),
        post("tier with padding unicode", V1, restore("retrievalType", json!("Bulk\u{200b}")), 422, "unknown_tier"),
        // Paths.
        post("path ends at Assets", V1, restore("path", json!("/srv/projects/Assets/")), 422, "invalid_path"),
        post("path climbs out", V1, restore("path", json!("/srv/Assets/proj/../../etc/")), 422, "invalid_path"),
        post("path with a dot segment", V1, restore("path", json!("proj/./b")), 422, "invalid_path"),
        post("path with NUL", V1, restore("path", json!("/srv/Assets/proj\u{0}/")), 422, "invalid_path"),
        post("blank path", V1, restore("path", json!("   ")), 422, "invalid_path"),
        post("slashes only", V1, restore("path", json!("//")), 422, "invalid_path"),
        post("blank folders", V1, restore("path", json!("/srv/Assets/ / /")), 422, "invalid_path"),
        post("path over 1024 bytes", V1, restore("path", json!(long_path)), 422, "invalid_path"),
        post("path as array", V1, restore("path", json!(["proj"])), 400, "invalid_field"),
        post("percent-encoded climb is literal", V1, restore("path", json!("/srv/Assets/%2e%2e/%2e%2e/")), 404, "no_objects"),
        post("unicode path with nothing under it", V1, restore("path", json!("/srv/Assets/映像2/")), 404, "no_objects"),
        post("path with quote injection", V1, restore("path", json!("/srv/Assets/proj' OR '1'='1/")), 404, "no_objects"),
        post("a prefix of a neighbour", V1, restore("path", json!("/srv/Assets/pro/")), 404, "no_objects"),
        // Bodies and content types.
        post("truncated JSON", V1, b"{\"id\": 4242, \"user\"".to_vec(), 400, "invalid_json"),
        post("JSON string", V1, b"\"restore everything\"".to_vec(), 400, "invalid_json"),
        post("JSON null", "/restore", b"null".to_vec(), 400, "invalid_json"),
        post("not UTF-8", V1, b"\xff\xfe{\"id\": 1}".to_vec(), 400, "invalid_json"),
        post("whitespace body", "/stats", b" \n\t ".to_vec(), 400, "invalid_json"),
        post("oversized body", V1, oversized, 413, "body_too_large"),
        Case {
            content_type: Some("application/x-www-form-urlencoded"),
            ..post("form body", V1, b"id=4242&user=editor%40example.com".to_vec(), 415, "unsupported_media_type")
        },
        Case {
            content_type: None,
            ..post("no content type, legacy", "/restore", restore("id", json!(4242)), 415, "unsupported_media_type")
        },
        Case {
            content_type: Some("application/jsonp"),
            ..post("near-miss content type", "/permissions", br#"{"user": "x"}"#.to_vec(), 415, "unsupported_media_type")
        },
        // The other legacy routes.
        post("stats with the root", "/stats", br#"{"id": 4242, "path": "/"}"#.to_vec(), 422, "invalid_path"),
        post("stats with a bad id", "/stats", br#"{"id": "x", "path": "/srv/Assets/proj/"}"#.to_vec(), 400, "invalid_field"),
        post("notify without stats", "/notify", br#"{"id": 4242, "user": "intern@example.com", "path": "/srv/Assets/proj/"}"#.to_vec(), 409, "stats_required"),
        post("notify with header injection", "/notify", br#"{"id": 4242, "user": "x@example.com\nBcc: y@example.com", "path": "/srv/Assets/proj/"}"#.to_vec(), 400, "invalid_field"),
        post("permissions with empty user", "/permissions", br#"{"user": "  "}"#.to_vec(), 400, "invalid_field"),
        post("permissions with control characters", "/permissions", br#"{"user": "a\u0007b"}"#.to_vec(), 400, "invalid_field"),
        // Status route: unknown, huge, unicode and encoded ids; wrong methods and routes.
        get("unknown job id", format!("{V1}/01900000-0000-7000-8000-000000000000"), 404, "job_not_found"),
        get("huge job id", format!("{V1}/{}", "9".repeat(4096)), 404, "job_not_found"),
        get("unicode job id", format!("{V1}/%E6%98%A0%E5%83%8F"), 404, "job_not_found"),
        get("encoded traversal id", format!("{V1}/..%2F..%2Fetc%2Fpasswd"), 404, "job_not_found"),
        get("id with quote injection", format!("{V1}/x'%20OR%20'1'='1"), 404, "job_not_found"),
        get("nested id", format!("{V1}/a/b"), 404, "route_not_found"),
        get("unknown route", "/api/v2/restore".into(), 404, "route_not_found"),
        Case {
            method: "PUT",
            ..post("PUT on the restore route", V1, restore("id", json!(1)), 405, "method_not_allowed")
        },
        Case {
            method: "DELETE",
            ..get("DELETE a job", format!("{V1}/x"), 405, "method_not_allowed")
        },
    ]
}

#[tokio::test]
async fn every_malformed_request_is_a_4xx_json_error_and_writes_nothing() {
    let f = fixture().await;
    let before = f.written().await;
    assert_eq!(before.objects.len(), KEYS.len());
    assert!(before.objects.iter().all(|(_, restore)| restore.is_none()));
    let cases = cases();
    assert!(cases.len() >= 30);
    let mut wrong = Vec::new();
    for case in &cases {
        let (status, body) = f
            .call(case.method, &case.path, case.content_type, &case.body)
            .await;
        let code = body["error"]["code"].as_str().unwrap_or_default();
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            (400..500).contains(&status),
            "{}: {status} {body}",
            case.what
        );
        if (status, code) != (case.status, case.code) || message.is_empty() {
            wrong.push(format!(
                "{}: want {} {}, got {status} {body}",
                case.what, case.status, case.code
            ));
        }
        // Echoed input stays short: no 4 KiB id or 1 KiB path copied into the answer.
        if message.len() >= 400 {
            wrong.push(format!("{}: message of {} bytes", case.what, message.len()));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(
        f.written().await,
        before,
        "a refused request wrote something"
    );
    eprintln!(
        "bad input: {} malformed requests refused, nothing written",
        cases.len()
    );
}

/// A `MakeWriter` that keeps everything written in memory, to read the JSON log lines back.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Malformed records in a batch are skipped with a warning naming why, and the rest of the
/// batch is tallied: for SQS only the bad messages are reported back (they go to the DLQ);
/// a direct invocation tallies the good records, then fails so Lambda retries it (harmless:
/// the tally is idempotent).
#[tokio::test]
async fn malformed_events_are_skipped_with_a_log_line_and_the_rest_is_tallied() {
    use integration_tests::{restoring_job, s3_restore_event};
    use shared::domain::completion::{Completion, CompletionSettings};
    use shared::ports::JobStore;

    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(logs.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let store = Arc::new(job_store().await);
    let bucket = "media-assets";
    let job = unique_name("job");
    restoring_job(
        store.as_ref(),
        &job,
        &unique_name("p"),
        "ed@example.com",
        bucket,
        &[
            ("m/a.mov", 1),
            ("m/b.mov", 2),
            ("m/c.mov", 4),
            ("m/d.mov", 8),
        ],
    )
    .await;
    let completion = Completion::new(
        store.clone(),
        Arc::new(S3ObjectStore::new(s3_client().await)),
        None,
        None,
        CompletionSettings::new("unused", PriceList::aws()),
    );
    let event = |key: &str| s3_restore_event(bucket, key, "2026-12-01T00:00:00.000Z");
    let record = |key: &str| event(key)["Records"][0].clone();
    let no_key = json!({"eventName": "ObjectRestore:Completed", "s3": {"bucket": {"name": bucket}, "object": {}}});
    let bad_encoding = json!({"eventName": "ObjectRestore:Completed",
        "s3": {"bucket": {"name": bucket}, "object": {"key": "m/%FF%FE.mov"}}});
    let wrong_types = json!({"eventName": "ObjectRestore:Completed",
        "s3": {"bucket": {"name": 5}, "object": {"key": ["m/d.mov"]}}});
    let sqs = json!({"Records": [
        {"eventSource": "aws:sqs", "messageId": "good-a", "body": event("m/a.mov").to_string()},
        {"eventSource": "aws:sqs", "messageId": "not-json", "body": "{]"},
        {"eventSource": "aws:sqs", "messageId": "good-b-and-no-key",
         "body": json!({"Records": [record("m/b.mov"), no_key]}).to_string()},
        {"eventSource": "aws:sqs", "messageId": "bad-encoding",
         "body": json!({"Records": [bad_encoding]}).to_string()},
    ]});
    let result = completion.handle_events(&sqs).await.unwrap();
    assert_eq!(
        result.response,
        json!({"batchItemFailures": [
            {"itemIdentifier": "not-json"},
            {"itemIdentifier": "good-b-and-no-key"},
            {"itemIdentifier": "bad-encoding"}
        ]})
    );
    assert_eq!((result.completed, result.malformed), (2, 3));

    let direct = json!({"Records": [wrong_types, record("m/c.mov")]});
    let err = completion.handle_events(&direct).await.unwrap_err();
    assert!(err.to_string().contains("1 of 2"), "{err}");
    let garbage = json!({"hello": "world"});
    assert!(completion.handle_events(&garbage).await.is_err());

    let view = store.get_job(&job).await.unwrap().unwrap();
    assert_eq!(view.settled.restored, 3, "a, b and c tallied");
    assert_eq!(view.settled.restored_bytes, 1 + 2 + 4);
    assert_eq!(view.pending(), 1, "d only named by a malformed record");

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON log line"))
        .collect();
    let malformed: Vec<&Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "malformed event record")
        .collect();
    assert_eq!(
        malformed.len(),
        4,
        "one warning per malformed record: {text}"
    );
    assert!(malformed
        .iter()
        .all(|l| l["level"] == "WARN" && !l["fields"]["reason"].as_str().unwrap().is_empty()));
}
