//! Every route and error class of the HTTP API, in process, against S3, DynamoDB and SES on the
//! emulator through the real SDK clients (the handler the Lambda and `restore-local` serve).

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
use shared::ports::JobStore;

const ALLOWED: &str = "editor@example.com";

struct Fixture {
    api: Api,
    jobs: Arc<DynamoJobStore>,
    s3: aws_sdk_s3::Client,
    buckets: Vec<String>,
    sender: String,
}

/// Three asset buckets; the same keys in several of them (first bucket wins).
async fn fixture() -> Fixture {
    let s3 = s3_client().await;
    let buckets: Vec<String> = (0..3).map(|i| unique_name(&format!("assets{i}"))).collect();
    for bucket in &buckets {
        s3.create_bucket().bucket(bucket).send().await.unwrap();
    }
    let put = |bucket: usize, key: &'static str, class: SdkClass, size: usize| {
        let s3 = s3.clone();
        let bucket = buckets[bucket].clone();
        async move {
            s3.put_object()
                .bucket(bucket)
                .key(key)
                .storage_class(class)
                .body(ByteStream::from(vec![b'x'; size]))
                .send()
                .await
                .unwrap();
        }
    };
    put(0, "proj/a.mov", SdkClass::Glacier, 100).await;
    put(0, "proj/b.txt", SdkClass::Standard, 10).await;
    put(1, "proj/a.mov", SdkClass::DeepArchive, 999).await; // duplicate: bucket 0 wins
    put(1, "proj/c.mxf", SdkClass::DeepArchive, 200).await;
    put(2, "proj/c.mxf", SdkClass::Glacier, 999).await; // duplicate: bucket 1 wins
    put(2, "proj/d.wav", SdkClass::Glacier, 300).await;
    put(2, "proj/folder/", SdkClass::Standard, 0).await;
    put(2, "other/e.mov", SdkClass::Glacier, 5).await;

    let sender = format!("{}@restore.example.com", unique_name("api"));
    verify_sender(&sender).await;
    let jobs = Arc::new(job_store().await);
    let objects = Arc::new(S3ObjectStore::new(s3.clone()));
    let fanout = Arc::new(Fanout::new(
        objects.clone(),
        jobs.clone(),
        FanoutSettings {
            backoff: Duration::from_millis(5),
            ..Default::default()
        },
    ));
    let settings = ApiSettings {
        buckets: buckets.clone(),
        allowed_users: vec![ALLOWED.into()],
        approvers: vec!["approver@example.com".into()],
        project_url: Some("https://pluto.example.com/project/".into()),
        prices: PriceList::seed(),
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
        buckets,
        sender,
    }
}

struct Answer {
    status: u16,
    body: Value,
    headers: http::HeaderMap,
}

impl Fixture {
    async fn call(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Answer {
        let mut request = http::Request::builder().method(method).uri(path);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let response = self.api.handle(request.body(body.to_vec()).unwrap()).await;
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{method} {path}"
        );
        Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: serde_json::from_str(response.body()).expect("JSON body"),
        }
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(
            "POST",
            path,
            Some("application/json"),
            body.to_string().as_bytes(),
        )
        .await
    }

    /// Items in the jobs table (to prove a refused request wrote nothing).
    async fn item_count(&self) -> i32 {
        integration_tests::dynamodb_client()
            .await
            .scan()
            .table_name(self.jobs.table())
            .select(aws_sdk_dynamodb::types::Select::Count)
            .send()
            .await
            .unwrap()
            .count()
    }

    async fn restore_header(&self, bucket: usize, key: &str) -> Option<String> {
        self.s3
            .head_object()
            .bucket(&self.buckets[bucket])
            .key(key)
            .send()
            .await
            .unwrap()
            .restore()
            .map(str::to_string)
    }
}

fn restore_body(id: &str, tier: &str) -> Value {
    json!({"id": id, "user": ALLOWED, "path": "/srv/projects/Assets/proj/", "retrievalType": tier})
}

fn error_code(answer: &Answer) -> &str {
    answer.body["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn health_and_method_checks() {
    let f = fixture().await;
    let ok = f.call("GET", "/health", None, b"").await;
    assert_eq!((ok.status, ok.body.clone()), (200, json!({"status": "ok"})));
    let wrong = f
        .call("POST", "/health", Some("application/json"), b"{}")
        .await;
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.headers["allow"], "GET");
    assert_eq!(error_code(&wrong), "method_not_allowed");
    for (method, path) in [
        ("GET", "/api/v1/restore"),
        ("DELETE", "/api/v1/restore/x"),
        ("GET", "/stats"),
        ("PUT", "/restore"),
    ] {
        let answer = f.call(method, path, None, b"").await;
        assert_eq!(answer.status, 405, "{method} {path}");
    }
    let missing = f.call("GET", "/nope", None, b"").await;
    assert_eq!(
        (missing.status, error_code(&missing)),
        (404, "route_not_found")
    );
    let job = f
        .call("GET", "/api/v1/restore/no-such-job", None, b"")
        .await;
    assert_eq!((job.status, error_code(&job)), (404, "job_not_found"));
}

#[tokio::test]
async fn restore_plans_three_buckets_first_wins_and_is_idempotent() {
    let f = fixture().await;
    let project = "4242";
    let answer = f
        .post("/api/v1/restore", restore_body(project, "expedited"))
        .await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    let body = &answer.body;
    let id = body["id"].as_str().unwrap().to_string();
    assert_eq!(answer.headers["location"], format!("/api/v1/restore/{id}"));
    assert_eq!(body["link"], format!("/api/v1/restore/{id}"));
    assert_eq!(
        body["status"], "restoring",
        "small job: listing done in the request"
    );
    assert_eq!(body["retrievalType"], "Expedited");
    assert_eq!(body["prefix"], "proj/");
    assert_eq!(body["localBase"], "/srv/projects/Assets/");
    // a.mov (bucket 0, GLACIER), b.txt (readable), c.mxf (bucket 1, DEEP_ARCHIVE), d.wav.
    assert_eq!(body["objects"]["total"], 4);
    assert_eq!(body["objects"]["toRestore"], 3);
    assert_eq!(body["objects"]["notNeeded"], 1);
    assert_eq!(body["bytes"]["total"], 100 + 10 + 200 + 300);
    assert_eq!(body["bytes"]["toRestore"], 600);
    assert_eq!(body["estimate"]["tier"], "Expedited");
    assert_eq!(body["estimate"]["tiers"].as_array().unwrap().len(), 3);
    assert!(body["expectedCompletion"]["latest"].is_string());
    let notes = body["notes"].to_string();
    assert!(notes.contains("no Expedited tier"), "{notes}");

    // Restores went to the winning copies only.
    assert!(f.restore_header(0, "proj/a.mov").await.is_some());
    assert!(f.restore_header(1, "proj/a.mov").await.is_none());
    assert!(f.restore_header(1, "proj/c.mxf").await.is_some());
    assert!(f.restore_header(2, "proj/c.mxf").await.is_none());
    assert!(f.restore_header(2, "proj/d.wav").await.is_some());
    let recorded = f.jobs.list_objects(&id, None, 100).await.unwrap().objects;
    let winners: Vec<(String, String)> = recorded
        .iter()
        .map(|o| (o.key.clone(), o.bucket.clone()))
        .collect();
    assert_eq!(
        winners,
        vec![
            ("proj/a.mov".to_string(), f.buckets[0].clone()),
            ("proj/b.txt".to_string(), f.buckets[0].clone()),
            ("proj/c.mxf".to_string(), f.buckets[1].clone()),
            ("proj/d.wav".to_string(), f.buckets[2].clone()),
        ]
    );
    let deep = recorded.iter().find(|o| o.key == "proj/c.mxf").unwrap();
    assert_eq!(
        deep.tier,
        Some(shared::domain::storage::RetrievalTier::Standard)
    );

    // The status route shows the same job.
    let status = f
        .call("GET", &format!("/api/v1/restore/{id}"), None, b"")
        .await;
    assert_eq!(status.status, 200);
    assert_eq!(status.body["id"], id.as_str());
    assert_eq!(status.body["objects"]["pending"], 3);
    assert_eq!(status.body["projectId"], project);

    // A second POST for the active project returns the same job (200), no second fan-out.
    let items = f.item_count().await;
    let again = f
        .post("/api/v1/restore", restore_body(project, "Bulk"))
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["id"], id.as_str());
    let legacy = f.post("/restore", restore_body(project, "Bulk")).await;
    assert_eq!(legacy.status, 200);
    assert_eq!(legacy.body["jobId"], id.as_str());
    assert_eq!(
        f.item_count().await,
        items,
        "nothing written by the repeats"
    );
}

#[tokio::test]
async fn legacy_restore_answers_the_frontend_shape() {
    let f = fixture().await;
    let answer = f.post("/restore", restore_body("77", "Standard")).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    let keys: Vec<&String> = answer.body.as_object().unwrap().keys().collect();
    assert_eq!(keys, vec!["fileCount", "jobId", "message", "totalSize"]);
    assert_eq!(answer.body["fileCount"], 4);
    assert_eq!(answer.body["totalSize"], 610);
    let id = answer.body["jobId"].as_str().unwrap();
    assert!(f.jobs.get_job(id).await.unwrap().is_some());
}

#[tokio::test]
async fn bad_requests_are_4xx_and_write_nothing() {
    let f = fixture().await;
    let before = f.item_count().await;
    let json_ct = Some("application/json");
    type Case = (
        &'static str,
        Option<&'static str>,
        Vec<u8>,
        u16,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        ("/api/v1/restore", json_ct, b"{not json".to_vec(), 400, "invalid_json"),
        ("/api/v1/restore", json_ct, b"[1,2]".to_vec(), 400, "invalid_json"),
        ("/api/v1/restore", json_ct, b"".to_vec(), 400, "invalid_json"),
        (
            "/api/v1/restore",
            json_ct,
            json!({"id": 1, "user": ALLOWED, "path": "/a/Assets/proj/"}).to_string().into_bytes(),
            400,
            "missing_field",
        ),
        (
            "/api/v1/restore",
            json_ct,
            json!({"id": 1, "user": ALLOWED, "path": 5, "retrievalType": "Bulk"}).to_string().into_bytes(),
            400,
            "invalid_field",
        ),
        (
            "/api/v1/restore",
            json_ct,
            json!({"id": "abc", "user": ALLOWED, "path": "/a/Assets/proj/", "retrievalType": "Bulk"}).to_string().into_bytes(),
            400,
            "invalid_field",
        ),
        (
            "/restore",
            json_ct,
            json!({"id": 1, "user": ALLOWED, "path": "/a/Assets/proj/", "retrievalType": "Fast"}).to_string().into_bytes(),
            422,
            "unknown_tier",
        ),
        (
            "/api/v1/restore",
            json_ct,
            json!({"id": 1, "user": ALLOWED, "path": "", "retrievalType": "Bulk"}).to_string().into_bytes(),
            422,
            "invalid_path",
        ),
        (
            "/api/v1/restore",
            json_ct,
            json!({"id": 1, "user": ALLOWED, "path": "/", "retrievalType": "Bulk"}).to_string().into_bytes(),
            422,
            "invalid_path",
        ),
        (
            "/api/v1/restore",
            json_ct,
            json!({"id": 1, "user": ALLOWED, "path": "/a/Assets/proj/../x/", "retrievalType": "Bulk"}).to_string().into_bytes(),
            422,
            "invalid_path",
        ),
        (
            "/api/v1/restore",
            json_ct,
            json!({"id": 1, "user": "intruder@example.com", "path": "/a/Assets/proj/", "retrievalType": "Bulk"}).to_string().into_bytes(),
            403,
            "user_not_allowed",
        ),
        (
            "/api/v1/restore",
            json_ct,
            json!({"id": 1, "user": ALLOWED, "path": "/a/Assets/nothing-here/", "retrievalType": "Bulk"}).to_string().into_bytes(),
            404,
            "no_objects",
        ),
        (
            "/api/v1/restore",
            json_ct,
            {
                let mut big = br#"{"id": 1, "user": "x", "pad": ""#.to_vec();
                big.extend(std::iter::repeat_n(b'a', 70 * 1024));
                big.extend(br#""}"#);
                big
            },
            413,
            "body_too_large",
        ),
        ("/api/v1/restore", Some("text/plain"), restore_body("1", "Bulk").to_string().into_bytes(), 415, "unsupported_media_type"),
        ("/stats", None, json!({"id": 1, "path": "/a/Assets/proj/"}).to_string().into_bytes(), 415, "unsupported_media_type"),
        ("/stats", json_ct, json!({"id": 1}).to_string().into_bytes(), 400, "missing_field"),
        ("/permissions", json_ct, json!({"user": 5}).to_string().into_bytes(), 400, "invalid_field"),
    ];
    for (path, content_type, body, status, code) in cases {
        let answer = f.call("POST", path, content_type, &body).await;
        assert_eq!(
            (answer.status, error_code(&answer)),
            (status, code),
            "{path} {:?}: {}",
            String::from_utf8_lossy(&body[..body.len().min(80)]),
            answer.body
        );
        assert!(
            !answer.body["error"]["message"].as_str().unwrap().is_empty(),
            "a clear message"
        );
    }
    let charset = f
        .call(
            "POST",
            "/permissions",
            Some("Application/JSON; charset=utf-8"),
            br#"{"user": "nobody@example.com"}"#,
        )
        .await;
    assert_eq!(charset.status, 200, "content type parameters are fine");
    assert_eq!(
        f.item_count().await,
        before,
        "no request above wrote anything"
    );
}

#[tokio::test]
async fn stats_then_notify_mails_the_approvers() {
    let f = fixture().await;
    let body =
        json!({"id": 555, "user": "intern@example.com", "path": "/srv/projects/Assets/proj/"});
    // No recent /stats: refused, nothing mailed.
    let early = f.post("/notify", body.clone()).await;
    assert_eq!((early.status, error_code(&early)), (409, "stats_required"));

    let stats = f
        .post(
            "/stats",
            json!({"id": 555, "path": "/srv/projects/Assets/proj/"}),
        )
        .await;
    assert_eq!(stats.status, 200, "{}", stats.body);
    assert_eq!(stats.body["numberOfFiles"], 4);
    let gib = stats.body["totalSize"].as_f64().unwrap();
    assert!((gib - 610.0 / (1u64 << 30) as f64).abs() < 1e-12);
    assert!(stats.body["standardRetrievalCost"].as_f64().unwrap() >= 0.0);
    assert!(stats.body["bulkRetrievalCost"].is_number());
    let kept = f
        .jobs
        .get_stats("555", "proj/")
        .await
        .unwrap()
        .expect("stats stored in DynamoDB");
    assert_eq!(kept.number_of_files, 4);
    assert!(kept.expires_at > time::OffsetDateTime::now_utc() + time::Duration::seconds(240));

    let empty = f
        .post(
            "/stats",
            json!({"id": 555, "path": "/srv/projects/Assets/empty/"}),
        )
        .await;
    assert_eq!(empty.status, 404);
    assert!(empty.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no objects found in any bucket"));

    let notify = f.post("/notify", body).await;
    assert_eq!(notify.status, 200, "{}", notify.body);
    assert_eq!(notify.body["recipients"], 1);
    let data: Value = serde_json::from_str(&moto_api_get("/moto-api/data.json")).unwrap();
    let mails: Vec<&Value> = data["ses"]["Message"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["source"].as_str().is_some_and(|s| s.contains(&f.sender)))
        .collect();
    assert_eq!(mails.len(), 1);
    assert!(mails[0]["subject"].as_str().unwrap().contains("555"));
    let text = mails[0]["body"].as_str().unwrap();
    assert!(
        text.contains("intern@example.com")
            && text.contains("https://pluto.example.com/project/555")
    );
}

#[tokio::test]
async fn permissions_follow_allowed_users() {
    let f = fixture().await;
    let yes = f
        .post("/permissions", json!({"user": "Editor@Example.com"}))
        .await;
    assert_eq!(
        (yes.status, yes.body.clone()),
        (200, json!({"allowed": true}))
    );
    let no = f
        .post("/permissions", json!({"user": "intern@example.com"}))
        .await;
    assert_eq!(
        (no.status, no.body.clone()),
        (200, json!({"allowed": false}))
    );
}

#[tokio::test]
async fn lambda_http_requests_reach_the_same_handler() {
    let f = fixture().await;
    let request = lambda_http::http::Request::builder()
        .method("POST")
        .uri("/api/v1/restore")
        .header("content-type", "application/json")
        .body(lambda_http::Body::Text(
            restore_body("909", "Bulk").to_string(),
        ))
        .unwrap();
    let response = restore_api::handle_lambda(&f.api, request).await;
    assert_eq!(response.status(), 202);
    let lambda_http::Body::Text(text) = response.body() else {
        panic!("text body")
    };
    let body: Value = serde_json::from_str(text).unwrap();
    let id = body["id"].as_str().unwrap();
    let request = lambda_http::http::Request::builder()
        .method("GET")
        .uri(format!("/api/v1/restore/{id}"))
        .body(lambda_http::Body::Empty)
        .unwrap();
    let response = restore_api::handle_lambda(&f.api, request).await;
    assert_eq!(response.status(), 200);
}
