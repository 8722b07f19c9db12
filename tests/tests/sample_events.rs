//! Every sample in `events/` driven through the real function binary it is meant for, with moto
//! behind the functions, in two ways: as Lambda would deliver it (a loopback Lambda Runtime
//! API, [`LambdaRuntimeFake`]) and as a developer would by hand (`cargo lambda watch` +
//! `cargo lambda invoke --data-file events/<file>`). The same files serve
//! `sam local invoke -e events/<file>` (needs Docker, not run here). Both ways run one scenario
//! ([`samples_scenario`]) with the same expected answers.
//!
//! The function binaries are built by the test (`cargo build -p <function>` or `cargo run`
//! under `cargo lambda watch`, debug profile, same target directory) on first use.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::StorageClass;
use integration_tests::{
    job_store, moto_endpoint, s3_client, unique_name, verify_sender, InvocationResult,
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
/// The deployed fan-out's timeout (it keeps 60 s back, so it needs more than that).
const FANOUT_TIMEOUT: Duration = Duration::from_secs(900);

/// This checkout's root, from this file's own crate path (the shared target directory may hold
/// a `integration_tests` library compiled in another checkout).
fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// One file of `events/`, possibly with the sample job id replaced by a real one.
struct Sample {
    name: &'static str,
    event: Value,
    /// Whether `event` still equals the file on disk.
    as_on_disk: bool,
}

fn sample(name: &'static str) -> Sample {
    let path = workspace_root().join("events").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let event = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
    Sample {
        name,
        event,
        as_on_disk: true,
    }
}

impl Sample {
    /// The sample with its job id replaced everywhere.
    fn with_job(self, job_id: &str) -> Sample {
        let text = self.event.to_string().replace(SAMPLE_JOB, job_id);
        Sample {
            event: serde_json::from_str(&text).unwrap(),
            as_on_disk: false,
            ..self
        }
    }
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
        if name == "restore-fanout" {
            runtime.set_timeout(FANOUT_TIMEOUT);
        }
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

    fn answer(&self, event: &Value) -> Value {
        let id = self.runtime.push(event);
        match self.runtime.wait_result(&id, Duration::from_secs(60)) {
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

/// Hands a sample to a function and returns its answer.
trait Invoker {
    fn answer(&self, function: &str, sample: &Sample) -> Value;
}

/// The functions as Lambda runs them: each binary against its own loopback Runtime API,
/// started on first use.
struct RuntimeApi {
    env: Vec<(String, String)>,
    running: Mutex<HashMap<String, Function>>,
}

impl Invoker for RuntimeApi {
    fn answer(&self, function: &str, sample: &Sample) -> Value {
        let mut running = self.running.lock().unwrap();
        running
            .entry(function.to_string())
            .or_insert_with(|| Function::start(function, &self.env))
            .answer(&sample.event)
    }
}

/// `cargo lambda watch` (cargo-lambda from `./.venv`, `scripts/tools.sh cargo-lambda`) serving
/// every function of the workspace; each sample goes in with `cargo lambda invoke --data-file`.
struct CargoLambda {
    cargo_lambda: PathBuf,
    port: u16,
    watch: Child,
    scratch: PathBuf,
}

impl CargoLambda {
    fn start(env: &[(String, String)]) -> Self {
        let cargo_lambda = workspace_root().join(".venv/bin/cargo-lambda");
        assert!(
            cargo_lambda.exists(),
            "{} is missing: run `scripts/tools.sh cargo-lambda` (make test does)",
            cargo_lambda.display()
        );
        let scratch = std::env::temp_dir().join(unique_name("cargo-lambda-samples"));
        std::fs::create_dir_all(&scratch).unwrap();
        let env_file = scratch.join("function.env");
        let lines: Vec<String> = env
            .iter()
            .chain(&[("RUST_LOG".to_string(), "warn".to_string())])
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        std::fs::write(&env_file, lines.join("\n") + "\n").unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = scratch.join("watch.log");
        let watch = Command::new(&cargo_lambda)
            .args(["lambda", "watch", "--ignore-changes", "--quiet"])
            .args(["--invoke-address", "127.0.0.1", "--invoke-port"])
            .arg(port.to_string())
            .arg("--env-file")
            .arg(&env_file)
            .args(["--timeout", &FANOUT_TIMEOUT.as_secs().to_string()])
            .current_dir(workspace_root())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(scratch.join("watch.err")).unwrap())
            .spawn()
            .expect("start cargo lambda watch");
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "cargo lambda watch did not listen on {port} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        CargoLambda {
            cargo_lambda,
            port,
            watch,
            scratch,
        }
    }

    fn watch_output(&self) -> String {
        let mut text = String::new();
        for name in ["watch.log", "watch.err"] {
            if let Ok(mut file) = std::fs::File::open(self.scratch.join(name)) {
                let _ = file.read_to_string(&mut text);
            }
        }
        text
    }
}

impl Invoker for CargoLambda {
    fn answer(&self, function: &str, sample: &Sample) -> Value {
        let file = if sample.as_on_disk {
            workspace_root().join("events").join(sample.name)
        } else {
            let file = self.scratch.join(sample.name);
            std::fs::write(&file, sample.event.to_string()).unwrap();
            file
        };
        let mut invoke = Command::new(&self.cargo_lambda)
            .args(["lambda", "invoke", function, "--output-format", "json"])
            .args(["--invoke-address", "127.0.0.1", "--invoke-port"])
            .arg(self.port.to_string())
            .arg("--data-file")
            .arg(&file)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run cargo lambda invoke");
        // The first invocation of each function compiles it (`cargo run`).
        let deadline = Instant::now() + Duration::from_secs(600);
        let status = loop {
            if let Some(status) = invoke.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = invoke.kill();
                panic!(
                    "cargo lambda invoke {function} {} gave no answer in 600 s; watch said:\n{}",
                    sample.name,
                    self.watch_output()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let (mut stdout, mut stderr) = (String::new(), String::new());
        invoke
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        invoke
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert!(
            status.success(),
            "cargo lambda invoke {function} --data-file {} failed ({status}): {stderr}\nwatch said:\n{}",
            file.display(),
            self.watch_output()
        );
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{function} answered no JSON ({e}): {stdout}"))
    }
}

impl Drop for CargoLambda {
    fn drop(&mut self) {
        let _ = self.watch.kill();
        let _ = self.watch.wait();
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// An API Gateway answer: status and parsed JSON body.
fn http(answer: &Value) -> (u64, Value) {
    let status = answer["statusCode"].as_u64().expect("statusCode");
    let body = answer["body"].as_str().expect("body");
    (status, serde_json::from_str(body).expect("JSON body"))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_sample_through_the_lambda_runtime_api() {
    samples_scenario(|env| {
        Box::new(RuntimeApi {
            env,
            running: Mutex::new(HashMap::new()),
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_sample_through_cargo_lambda_invoke_data_file() {
    samples_scenario(|env| Box::new(CargoLambda::start(&env))).await;
}

/// Sets up the world the samples expect (two asset buckets, a manifest bucket, the table, an
/// SES identity), then hands every sample to its function and checks each answer.
async fn samples_scenario(invoker: impl FnOnce(Vec<(String, String)>) -> Box<dyn Invoker>) {
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
    verify_sender(SENDER).await;
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
    let lambdas = invoker(env);

    let (status, body) = http(&lambdas.answer("restore-api", &sample("apigw-health.json")));
    assert_eq!((status, body), (200, json!({"status": "ok"})));

    let (status, body) = http(&lambdas.answer("restore-api", &sample("apigw-permissions.json")));
    assert_eq!((status, body), (200, json!({"allowed": true})));

    let (status, body) = http(&lambdas.answer("restore-api", &sample("apigw-stats.json")));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["numberOfFiles"], 3);
    let gib = body["totalSize"].as_f64().unwrap();
    assert!((gib - 3500.0 / 1024f64.powi(3)).abs() < 1e-12, "{gib}");

    // /notify needs the /stats just made (stored in DynamoDB) and mails the approver via SES.
    let (status, body) = http(&lambdas.answer("restore-api", &sample("apigw-notify.json")));
    assert_eq!(
        (status, body),
        (
            200,
            json!({"message": "approval request sent", "recipients": 1})
        )
    );

    // The status sample names a job that does not exist yet.
    let (status, body) = http(&lambdas.answer("restore-api", &sample("apigw-restore-status.json")));
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "job_not_found");

    let (status, job) = http(&lambdas.answer("restore-api", &sample("apigw-restore-v1.json")));
    assert_eq!(status, 202, "{job}");
    let job_id = job["id"].as_str().unwrap().to_string();
    assert_eq!(job["projectId"], "4242");
    assert_eq!(job["prefix"], PREFIX);
    assert_eq!(job["retrievalType"], "Bulk");
    assert_eq!(job["objects"]["total"], 3);
    assert_eq!(job["bytes"]["total"], 3500);
    assert_eq!(job["link"], format!("/api/v1/restore/{job_id}"));

    let (status, body) = http(&lambdas.answer(
        "restore-api",
        &sample("apigw-restore-status.json").with_job(&job_id),
    ));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], job_id.as_str());
    assert_eq!(body["objects"]["total"], 3);

    // The legacy route for the same project answers the active job instead of restoring again.
    let (status, body) = http(&lambdas.answer("restore-api", &sample("apigw-legacy-restore.json")));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["jobId"], job_id.as_str());
    assert_eq!(body["fileCount"], 3);
    assert_eq!(body["totalSize"], 3500);

    // ---- restore-fanout: stream records; only the job's META record still listing counts.
    let answer = lambdas.answer(
        "restore-fanout",
        &sample("dynamodb-stream-fanout.json").with_job(&job_id),
    );
    // The API finished this small listing itself: the fan-out has nothing left to do.
    assert_eq!(
        answer,
        json!({"jobs": [{"jobId": job_id, "outcome": "NothingToDo"}]})
    );

    // ---- restore-events: S3 direct, SQS (S3 → SQS) and EventBridge forms.
    assert_eq!(
        lambdas.answer("restore-events", &sample("s3-restore-completed.json")),
        json!({"completed": 1, "ignored": 0})
    );
    assert_eq!(
        lambdas.answer(
            "restore-events",
            &sample("eventbridge-restore-completed.json")
        ),
        json!({"completed": 1, "ignored": 0})
    );
    assert_eq!(
        lambdas.answer("restore-events", &sample("sqs-s3-restore-completed.json")),
        json!({"batchItemFailures": []})
    );

    // ---- restore-finalizer: stream records of a counter shard and META (job not in the table:
    // nothing to finalize, the batch succeeds).
    assert_eq!(
        lambdas.answer(
            "restore-finalizer",
            &sample("dynamodb-stream-finalizer.json")
        ),
        Value::Null
    );

    // ---- restore-sweeper: the scheduled event.
    let answer = lambdas.answer("restore-sweeper", &sample("schedule-sweeper.json"));
    // It looked at the one active job; its objects are pending well within the Bulk window,
    // so nothing was checked, settled or finalized.
    assert_eq!(answer["jobs"], 1, "{answer}");
    assert_eq!(answer["checked"], 0, "{answer}");
    assert_eq!(answer["finalized"], json!([]), "{answer}");
}
