//! Every sample in `events/` driven through the real function binary it is meant for, as
//! Lambda would deliver it (a loopback Lambda Runtime API, [`LambdaRuntimeFake`]), with moto
//! behind the functions. The same files serve `sam local invoke -e events/<file>` and
//! `cargo lambda invoke --data-file events/<file>`; this test keeps them accepted and checks
//! each answer is the expected one.
//!
//! The function binaries are built by this test (`cargo build -p <function>`, debug profile,
//! same target directory) on first use.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::StorageClass;
use integration_tests::{
    job_store, moto_endpoint, s3_client, sesv2_client, unique_name, InvocationResult,
    LambdaRuntimeFake,
};
use serde_json::{json, Value};

const FUNCTIONS: [&str; 5] = [
    "restore-api",
    "restore-fanout",
    "restore-events",
    "restore-finalizer",
    "restore-sweeper",
];
/// The path the API samples restore: `<base>/Assets/project-4242` → prefix `project-4242/`.
const PREFIX: &str = "project-4242/";
const SENDER: &str = "restore@example.com";
/// The job id the status and stream samples carry.
const SAMPLE_JOB: &str = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

/// This checkout's root, from this file's own crate path (the shared target directory may hold
/// a `integration_tests` library compiled in another checkout).
fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn sample(name: &str) -> Value {
    let path = workspace_root().join("events").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"))
}

/// Directory of the function binaries: `<target>/debug`, built once per test process.
fn binaries() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let mut build = Command::new(env!("CARGO"));
        build.arg("build").arg("--quiet");
        for f in FUNCTIONS {
            build.args(["-p", f]);
        }
        let status = build
            .current_dir(workspace_root())
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build of the functions failed");
        // This test runs as <target>/debug/deps/sample_events-<hash>.
        let exe = std::env::current_exe().unwrap();
        exe.parent().unwrap().parent().unwrap().to_path_buf()
    })
}

/// One function process serving one fake runtime; killed when dropped.
struct Function {
    runtime: LambdaRuntimeFake,
    child: Child,
}

impl Function {
    fn start(name: &str, env: &[(String, String)]) -> Self {
        let runtime = LambdaRuntimeFake::start();
        let child = Command::new(binaries().join(name))
            .env_clear()
            .envs(runtime.env(name))
            .envs(env.iter().cloned())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Function { runtime, child }
    }

    fn invoke(&self, event: &Value) -> InvocationResult {
        let id = self.runtime.push(event);
        self.runtime.wait_result(&id, Duration::from_secs(60))
    }

    fn answer(&self, event: &Value) -> Value {
        match self.invoke(event) {
            InvocationResult::Response(answer) => answer,
            InvocationResult::Error(error) => panic!("function error: {error}"),
        }
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An API Gateway answer: status and parsed JSON body.
fn http(answer: &Value) -> (u64, Value) {
    let status = answer["statusCode"].as_u64().expect("statusCode");
    let body = answer["body"].as_str().expect("body");
    (status, serde_json::from_str(body).expect("JSON body"))
}

/// Replaces the sample's job id everywhere in an event.
fn with_job(event: &Value, job_id: &str) -> Value {
    serde_json::from_str(&event.to_string().replace(SAMPLE_JOB, job_id)).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_sample_event_is_accepted_by_its_function() {
    // Samples on disk and samples tested must match: a new file needs a case here.
    let on_disk: BTreeSet<String> = std::fs::read_dir(workspace_root().join("events"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    let tested: BTreeSet<String> = [
        "apigw-health.json",
        "apigw-restore-v1.json",
        "apigw-restore-status.json",
        "apigw-legacy-restore.json",
        "apigw-stats.json",
        "apigw-notify.json",
        "apigw-permissions.json",
        "dynamodb-stream-fanout.json",
        "dynamodb-stream-finalizer.json",
        "s3-restore-completed.json",
        "sqs-s3-restore-completed.json",
        "eventbridge-restore-completed.json",
        "schedule-sweeper.json",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(on_disk, tested, "events/ and this test list differ");

    // The world the functions see: two asset buckets, a manifest bucket, the table, SES.
    let s3 = s3_client().await;
    let (first, second, manifests) = (
        unique_name("assets-a"),
        unique_name("assets-b"),
        unique_name("manifests"),
    );
    for bucket in [&first, &second, &manifests] {
        s3.create_bucket().bucket(bucket).send().await.unwrap();
    }
    let objects = [
        (&first, "reel1.mov", 1000),
        (&first, "reel2.mov", 2000),
        (&second, "audio/mix.wav", 500),
    ];
    for (bucket, name, size) in objects {
        s3.put_object()
            .bucket(bucket)
            .key(format!("{PREFIX}{name}"))
            .storage_class(StorageClass::Glacier)
            .body(ByteStream::from(vec![7u8; size]))
            .send()
            .await
            .unwrap();
    }
    let store = job_store().await;
    sesv2_client()
        .await
        .create_email_identity()
        .email_identity(SENDER)
        .send()
        .await
        .unwrap();
    let env: Vec<(String, String)> = [
        ("AWS_ENDPOINT_URL", moto_endpoint()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("JOBS_TABLE", store.table()),
        ("ASSET_BUCKET_LIST", &format!("{first},{second}")),
        ("MANIFEST_BUCKET", &manifests),
        ("ALLOWED_USERS", "editor@example.com"),
        ("NOTIFICATION_EMAIL", "approver@example.com"),
        ("SMTP_FROM", SENDER),
        ("PLUTO_PROJECT_URL", "https://pluto.example.com/project/"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();

    // ---- restore-api: one API Gateway HTTP API (v2) request per route.
    let api = Function::start("restore-api", &env);
    let (status, body) = http(&api.answer(&sample("apigw-health.json")));
    assert_eq!((status, body), (200, json!({"status": "ok"})));

    let (status, body) = http(&api.answer(&sample("apigw-permissions.json")));
    assert_eq!((status, body), (200, json!({"allowed": true})));

    let (status, body) = http(&api.answer(&sample("apigw-stats.json")));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["numberOfFiles"], 3);
    let gib = body["totalSize"].as_f64().unwrap();
    assert!((gib - 3500.0 / 1024f64.powi(3)).abs() < 1e-12, "{gib}");

    // /notify needs the /stats just made (stored in DynamoDB) and mails the approver via SES.
    let (status, body) = http(&api.answer(&sample("apigw-notify.json")));
    assert_eq!(
        (status, body),
        (
            200,
            json!({"message": "approval request sent", "recipients": 1})
        )
    );

    // The status sample names a job that does not exist yet.
    let (status, body) = http(&api.answer(&sample("apigw-restore-status.json")));
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "job_not_found");

    let (status, job) = http(&api.answer(&sample("apigw-restore-v1.json")));
    assert_eq!(status, 202, "{job}");
    let job_id = job["id"].as_str().unwrap().to_string();
    assert_eq!(job["projectId"], "4242");
    assert_eq!(job["prefix"], PREFIX);
    assert_eq!(job["retrievalType"], "Bulk");
    assert_eq!(job["objects"]["total"], 3);
    assert_eq!(job["bytes"]["total"], 3500);
    assert_eq!(job["link"], format!("/api/v1/restore/{job_id}"));

    let (status, body) =
        http(&api.answer(&with_job(&sample("apigw-restore-status.json"), &job_id)));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], job_id.as_str());
    assert_eq!(body["objects"]["total"], 3);

    // The legacy route for the same project answers the active job instead of restoring again.
    let (status, body) = http(&api.answer(&sample("apigw-legacy-restore.json")));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["jobId"], job_id.as_str());
    assert_eq!(body["fileCount"], 3);
    assert_eq!(body["totalSize"], 3500);
    drop(api);

    // ---- restore-fanout: stream records; only the job's META record still listing counts.
    let fanout = Function::start("restore-fanout", &env);
    // As deployed (Timeout: 900): the function keeps 60 s back, so it needs more than that.
    fanout.runtime.set_timeout(Duration::from_secs(900));
    let answer = fanout.answer(&with_job(&sample("dynamodb-stream-fanout.json"), &job_id));
    // The API finished this small listing itself: the fan-out has nothing left to do.
    assert_eq!(
        answer,
        json!({"jobs": [{"jobId": job_id, "outcome": "NothingToDo"}]})
    );
    drop(fanout);

    // ---- restore-events: S3 direct, SQS (S3 → SQS) and EventBridge forms.
    let events = Function::start("restore-events", &env);
    assert_eq!(
        events.answer(&sample("s3-restore-completed.json")),
        json!({"completed": 1, "ignored": 0})
    );
    assert_eq!(
        events.answer(&sample("eventbridge-restore-completed.json")),
        json!({"completed": 1, "ignored": 0})
    );
    assert_eq!(
        events.answer(&sample("sqs-s3-restore-completed.json")),
        json!({"batchItemFailures": []})
    );
    drop(events);

    // ---- restore-finalizer: stream records of a counter shard and META (job not in the table:
    // nothing to finalize, the batch succeeds).
    let finalizer = Function::start("restore-finalizer", &env);
    assert_eq!(
        finalizer.answer(&sample("dynamodb-stream-finalizer.json")),
        Value::Null
    );
    drop(finalizer);

    // ---- restore-sweeper: the scheduled event.
    let sweeper = Function::start("restore-sweeper", &env);
    let answer = sweeper.answer(&sample("schedule-sweeper.json"));
    // Until the completion work is merged the sweeper is a placeholder answering null; the
    // real one answers its report, which must have looked at the one active job.
    if !answer.is_null() {
        assert_eq!(answer["jobs"], 1, "{answer}");
    }
    drop(sweeper);
}
