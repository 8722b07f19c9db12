//! Test support for the integration tests: one moto server per test process and SDK clients
//! pointed at it.
//!
//! When `MOTO_ENDPOINT` is set (e.g. to a server from `scripts/emulator.sh start`), that server
//! is used. Otherwise the process starts its own `moto_server` from `./.venv` (run
//! `scripts/emulator.sh install` once) on a free loopback port; it is stopped when the test
//! process exits (its stdin closes). `make test` leaves it unset: one server per test file.

pub mod fault_proxy;

use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Root of the workspace (parent of this crate).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Endpoint of the emulator for this test process, starting it on first use.
pub fn moto_endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| match std::env::var("MOTO_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => endpoint,
        _ => start_moto(),
    })
}

fn start_moto() -> String {
    let server = workspace_root().join(".venv/bin/moto_server");
    assert!(
        server.exists(),
        "{} is missing: run `scripts/emulator.sh install` (or `make test`)",
        server.display()
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The shell keeps moto alive while our stdin pipe is open and kills it when we exit.
    let script = format!(
        "'{}' -H 127.0.0.1 -p {port} >/dev/null 2>&1 & pid=$!; cat >/dev/null; kill $pid",
        server.display()
    );
    let child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .spawn()
        .expect("start moto_server");
    // Leak the child's stdin on purpose: it closes only when this process ends.
    std::mem::forget(child);
    let endpoint = format!("http://127.0.0.1:{port}");
    wait_ready(&endpoint);
    endpoint
}

fn wait_ready(endpoint: &str) {
    let address = endpoint.trim_start_matches("http://").to_string();
    // Generous: on a loaded 2-core machine a test file starting two servers at once has
    // seen moto take over 30 s to listen.
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        if let Ok(mut stream) = std::net::TcpStream::connect(&address) {
            use std::io::Write;
            let _ = write!(stream, "GET /moto-api/ HTTP/1.0\r\nHost: {address}\r\n\r\n");
            let mut head = [0u8; 12];
            if stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("moto_server at {endpoint} did not become ready in 90 s");
}

/// SDK configuration for the emulator: fixed test credentials, us-east-1.
pub async fn aws_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(moto_endpoint())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "integration-tests",
        ))
        .load()
        .await
}

/// SDK configuration for an endpoint in front of the emulator (e.g. a [`fault_proxy`]):
/// standard retries with `max_attempts` and millisecond backoff, and an attempt timeout so a
/// call that gets no answer is retried.
pub async fn aws_config_at(
    endpoint: &str,
    max_attempts: u32,
    attempt_timeout: Duration,
) -> aws_config::SdkConfig {
    let retry = aws_config::retry::RetryConfig::standard()
        .with_max_attempts(max_attempts)
        .with_initial_backoff(Duration::from_millis(5))
        .with_max_backoff(Duration::from_millis(50));
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .operation_attempt_timeout(attempt_timeout)
        .build();
    aws_config()
        .await
        .into_builder()
        .endpoint_url(endpoint)
        .retry_config(retry)
        .timeout_config(timeouts)
        .build()
}

/// S3 client for the emulator (path-style addressing, as moto on loopback needs).
pub async fn s3_client() -> aws_sdk_s3::Client {
    let config = aws_config().await;
    let s3 = aws_sdk_s3::config::Builder::from(&config)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(s3)
}

/// A name unique within this test process run, for buckets and tables.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{n}-{nanos:x}", std::process::id())
}

/// Starts a moto server for this caller alone, even when `MOTO_ENDPOINT` is set: for tests that
/// change moto's global state (e.g. the state manager's restore transition).
pub fn private_moto_endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(start_moto)
}

/// POSTs a JSON body to a moto control route (e.g. `/moto-api/state-manager/set-transition`)
/// and returns the HTTP status.
pub fn moto_api_post(endpoint: &str, path: &str, json: &str) -> u16 {
    use std::io::Write;
    let address = endpoint.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).expect("connect to moto");
    write!(
        stream,
        "POST {path} HTTP/1.0\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{json}",
        json.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in moto's answer: {answer:?}"))
}

/// One request seen by a [`ScriptedServer`].
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// Path and query, e.g. `/bucket/key?restore`.
    pub target: String,
    /// Header names lowercased, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RecordedRequest {
    /// The value of a header (name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A loopback HTTP server answering with scripted responses, in order (the last one repeats):
/// for the S3 answers moto never gives (409, 503 SlowDown, Expedited capacity errors), so the
/// real SDK client and its retry behaviour are tested against them.
pub struct ScriptedServer {
    pub endpoint: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<RecordedRequest>>>,
}

impl ScriptedServer {
    /// `responses`: (HTTP status, body). A non-empty body is sent as `application/xml`.
    pub fn start(responses: Vec<(u16, String)>) -> Self {
        assert!(!responses.is_empty());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let Ok(stream) = stream else { continue };
                let (status, body) = responses[n.min(responses.len() - 1)].clone();
                // Record before answering, so a caller that got the answer sees the request.
                if let Some(request) = read_request(&stream) {
                    seen.lock().unwrap().push(request);
                    write_response(stream, status, &body);
                }
            }
        });
        Self { endpoint, requests }
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().unwrap().clone()
    }
}

fn read_request(stream: &std::net::TcpStream) -> Option<RecordedRequest> {
    use std::io::{BufRead, BufReader};
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut length = 0usize;
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let mut request_body = vec![0u8; length];
    reader.read_exact(&mut request_body).ok()?;
    Some(RecordedRequest {
        method,
        target,
        headers,
        body: String::from_utf8_lossy(&request_body).into_owned(),
    })
}

fn write_response(mut stream: std::net::TcpStream, status: u16, body: &str) {
    use std::io::Write;
    let reason = match status {
        200 => "OK",
        202 => "Accepted",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let content_type = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/xml\r\n".to_owned()
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\n{content_type}Content-Length: {}\r\n\
         x-amz-request-id: scripted\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
}

/// The XML body of an S3 error answer.
pub fn s3_error_body(code: &str, message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
         <Message>{message}</Message><RequestId>scripted</RequestId></Error>"
    )
}

/// DynamoDB client for the emulator, through a loopback proxy that injects no fault but gives
/// moto DynamoDB's isolation of transactions (see [`fault_proxy`]).
pub async fn dynamodb_client() -> aws_sdk_dynamodb::Client {
    static PROXY: OnceLock<fault_proxy::FaultProxy> = OnceLock::new();
    let proxy = PROXY.get_or_init(|| {
        fault_proxy::FaultProxy::start(moto_endpoint(), fault_proxy::FaultPlan::none())
    });
    let config = aws_config()
        .await
        .into_builder()
        .endpoint_url(&proxy.endpoint)
        .build();
    aws_sdk_dynamodb::Client::new(&config)
}

/// A job store on a fresh, uniquely named table (keys, `active-jobs` GSI, stream, TTL).
pub async fn job_store() -> shared::adapters::dynamodb::DynamoJobStore {
    let store = shared::adapters::dynamodb::DynamoJobStore::new(
        dynamodb_client().await,
        unique_name("jobs"),
    );
    store.ensure_table().await.expect("create jobs table");
    store
}

/// Verifies `address` as an SES identity on the emulator (SES, and moto, refuse to send from
/// an unverified sender).
pub async fn verify_sender(address: &str) {
    sesv2_client()
        .await
        .create_email_identity()
        .email_identity(address)
        .send()
        .await
        .expect("verify the sender identity");
}

/// SES v2 client for the emulator.
pub async fn sesv2_client() -> aws_sdk_sesv2::Client {
    aws_sdk_sesv2::Client::new(&aws_config().await)
}

/// GETs a path of the emulator's own API (e.g. `/moto-api/data.json`) and returns the body.
/// Plain HTTP/1.0 over a socket keeps the test crate free of an HTTP client dependency.
pub fn moto_api_get(path: &str) -> String {
    use std::io::Write;
    let address = moto_endpoint().trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&address).expect("connect to moto");
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read moto response");
    let (head, body) = response
        .split_once("\r\n\r\n")
        .expect("HTTP response with headers");
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "GET {path}: {head}"
    );
    body.to_string()
}

/// A real SMTP server on loopback (`scripts/smtp-sink.py`, aiosmtpd from `./.venv`) that
/// stores every message it receives as decoded JSON. Stopped when dropped.
pub struct SmtpSink {
    pub port: u16,
    dir: PathBuf,
    child: std::process::Child,
}

impl SmtpSink {
    /// Starts the sink on a free port and waits until it accepts connections.
    pub fn start() -> Self {
        use std::io::BufRead;
        let python = workspace_root().join(".venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run `scripts/emulator.sh install` (or `make test`)",
            python.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(unique_name("smtp-sink"));
        let mut child = Command::new(python)
            .arg(workspace_root().join("scripts/smtp-sink.py"))
            .arg(port.to_string())
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start scripts/smtp-sink.py");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("smtp sink output");
        assert_eq!(line.trim(), "ready", "smtp sink did not start");
        SmtpSink { port, dir, child }
    }

    /// Messages received so far, oldest first.
    pub fn messages(&self) -> Vec<serde_json::Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "json"));
        files.sort();
        files
            .iter()
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Records a job the way the fan-out leaves it once its listing is done: the job in
/// `restoring`, every object `requested` (GLACIER, Bulk) with its size, totals and per-class
/// counts added in one page commit. For completion tests that don't run the fan-out.
pub async fn restoring_job(
    store: &dyn shared::ports::JobStore,
    job_id: &str,
    project: &str,
    user: &str,
    bucket: &str,
    objects: &[(&str, u64)],
) {
    let later =
        restoring_job_deferred(store, job_id, project, user, bucket, objects, |_| false).await;
    assert!(later.is_empty());
}

/// Like [`restoring_job`], but the objects whose key `defer` selects are counted in the totals
/// and NOT recorded: they are returned for the caller to record later (`put_objects`), as a
/// fan-out that is slower than the restore-completed events would.
pub async fn restoring_job_deferred(
    store: &dyn shared::ports::JobStore,
    job_id: &str,
    project: &str,
    user: &str,
    bucket: &str,
    objects: &[(&str, u64)],
    defer: impl Fn(&str) -> bool,
) -> Vec<shared::domain::job::ObjectRecord> {
    use shared::domain::job::{
        shard_of, ClassTotals, Job, LeaseOutcome, ObjectRecord, PageCommit, PlanTotals,
    };
    use shared::domain::state::ObjectState;
    use shared::domain::storage::{RetrievalTier, StorageClass};
    let shards = 4;
    let now = time::OffsetDateTime::now_utc();
    // The job's prefix is the first key's top folder (the project's name without keys), and
    // every key must lie under it, as the fan-out's listing guarantees.
    let folder = objects
        .first()
        .and_then(|(k, _)| k.split_once('/'))
        .map_or(project, |(top, _)| top);
    let prefix = format!("{folder}/");
    assert!(
        objects.iter().all(|(k, _)| k.starts_with(&prefix)),
        "every key under {prefix}"
    );
    let job = Job::new(
        job_id.into(),
        project.into(),
        user.into(),
        format!("/srv/projects/Assets/{folder}/"),
        prefix,
        Some("/srv/projects/Assets/".into()),
        RetrievalTier::Bulk,
        vec![bucket.into()],
        shards,
        now,
    );
    store.create_job(&job).await.expect("create job");
    let records: Vec<ObjectRecord> = objects
        .iter()
        .map(|(key, size)| ObjectRecord {
            job_id: job_id.into(),
            bucket: bucket.into(),
            key: (*key).into(),
            version_id: None,
            size: *size,
            storage_class: StorageClass::Glacier,
            tier: Some(RetrievalTier::Bulk),
            state: ObjectState::Requested,
            shard: shard_of(bucket, key, shards),
            expiry: None,
            error: None,
            settled_at_listing: false,
        })
        .collect();
    let (later, now_records): (Vec<ObjectRecord>, Vec<ObjectRecord>) =
        records.into_iter().partition(|r| defer(&r.key));
    for chunk in now_records.chunks(1000) {
        store.put_objects(chunk).await.expect("put objects");
    }
    let LeaseOutcome::Acquired { job, .. } = store
        .acquire_lease(job_id, "test", now, now + time::Duration::minutes(5))
        .await
        .expect("lease")
    else {
        panic!("lease not acquired")
    };
    let count = objects.len() as u64;
    let bytes: u64 = objects.iter().map(|(_, s)| s).sum();
    let mut add = PlanTotals {
        objects: count,
        bytes,
        to_restore: count,
        bytes_to_restore: bytes,
        requested: count,
        ..Default::default()
    };
    add.by_class.insert(
        "GLACIER".into(),
        ClassTotals {
            objects: count,
            bytes,
        },
    );
    let mut to = job.cursor.clone();
    to.page += 1;
    to.bucket_index = 1;
    to.listing_done = true;
    store
        .advance_cursor(
            job_id,
            "test",
            &PageCommit {
                from: job.cursor.clone(),
                to,
                add,
                notes: vec![],
                keep_lease: None,
            },
        )
        .await
        .expect("commit listing");
    later
}

/// An S3 `ObjectRestore:Completed` notification as S3 sends it: key URL-encoded with `+` for
/// a space, expiry in `glacierEventData`.
pub fn s3_restore_event(bucket: &str, key: &str, expiry: &str) -> serde_json::Value {
    let mut encoded = String::new();
    for byte in key.bytes() {
        match byte {
            b' ' => encoded.push('+'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                encoded.push(byte as char)
            }
            other => encoded.push_str(&format!("%{other:02X}")),
        }
    }
    serde_json::json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-11-25T04:00:00.000Z",
        "eventName": "ObjectRestore:Completed",
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
            "object": {"key": encoded, "size": 1}
        },
        "glacierEventData": {"restoreEventData": {
            "lifecycleRestorationExpiryTime": expiry,
            "lifecycleRestoreStorageClass": "GLACIER"
        }}
    }]})
}

/// A fake of the Lambda Runtime API on loopback, enough to drive a function binary as Lambda
/// would: it hands out queued events on `GET …/invocation/next` and records what the function
/// answers (`…/response` or `…/error`) and any `…/init/error`.
///
/// Start the binary with [`LambdaRuntimeFake::env`] as its environment, [`push`] events and
/// [`wait_result`] for each answer.
///
/// [`push`]: LambdaRuntimeFake::push
/// [`wait_result`]: LambdaRuntimeFake::wait_result
pub struct LambdaRuntimeFake {
    pub address: String,
    state: std::sync::Arc<(std::sync::Mutex<RuntimeState>, std::sync::Condvar)>,
}

/// What a function answered to one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum InvocationResult {
    Response(serde_json::Value),
    Error(serde_json::Value),
}

#[derive(Default)]
struct RuntimeState {
    pending: std::collections::VecDeque<(String, String)>,
    results: std::collections::HashMap<String, InvocationResult>,
    init_error: Option<String>,
    /// Time until each invocation's deadline (default 60 s), see [`LambdaRuntimeFake::set_timeout`].
    timeout: Option<Duration>,
}

impl LambdaRuntimeFake {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let state = std::sync::Arc::new((
            std::sync::Mutex::new(RuntimeState::default()),
            std::sync::Condvar::new(),
        ));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = shared.clone();
                std::thread::spawn(move || serve_runtime_connection(stream, &shared));
            }
        });
        LambdaRuntimeFake { address, state }
    }

    /// Environment a function binary needs to talk to this fake.
    pub fn env(&self, function_name: &str) -> Vec<(String, String)> {
        [
            ("AWS_LAMBDA_RUNTIME_API", self.address.as_str()),
            ("AWS_LAMBDA_FUNCTION_NAME", function_name),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/test"),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "test-stream"),
            ("AWS_REGION", "us-east-1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Sets the function timeout the fake announces (the deadline of later invocations), e.g.
    /// the 900 s of a fan-out function that keeps a margin before its deadline.
    pub fn set_timeout(&self, timeout: Duration) {
        self.state.0.lock().unwrap().timeout = Some(timeout);
    }

    /// Queues an event; returns its request id.
    pub fn push(&self, event: &serde_json::Value) -> String {
        let id = unique_name("request");
        let (lock, ready) = &*self.state;
        lock.lock()
            .unwrap()
            .pending
            .push_back((id.clone(), event.to_string()));
        ready.notify_all();
        id
    }

    /// Waits for the function's answer to `request_id`; panics after `timeout`, or at once if
    /// the function reported an init error.
    pub fn wait_result(&self, request_id: &str, timeout: Duration) -> InvocationResult {
        let (lock, ready) = &*self.state;
        let deadline = Instant::now() + timeout;
        let mut state = lock.lock().unwrap();
        loop {
            if let Some(result) = state.results.get(request_id) {
                return result.clone();
            }
            if let Some(error) = &state.init_error {
                panic!("function failed to initialise: {error}");
            }
            let now = Instant::now();
            assert!(
                now < deadline,
                "no answer to {request_id} within {timeout:?}"
            );
            state = ready.wait_timeout(state, deadline - now).unwrap().0;
        }
    }
}

fn serve_runtime_connection(
    stream: std::net::TcpStream,
    state: &(std::sync::Mutex<RuntimeState>, std::sync::Condvar),
) {
    use std::io::{BufRead, Write};
    let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("").to_string(),
        );
        let mut content_length = 0usize;
        let mut chunked = false;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                let value = value.trim();
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => content_length = value.parse().unwrap_or(0),
                    "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                    _ => {}
                }
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                let mut size_line = String::new();
                reader.read_line(&mut size_line).unwrap();
                let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap(), 16)
                    .unwrap_or(0);
                let mut chunk = vec![0; size + 2];
                reader.read_exact(&mut chunk).unwrap();
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else {
            body.resize(content_length, 0);
            reader.read_exact(&mut body).unwrap();
        }
        let (lock, ready) = state;
        let reply = |writer: &mut std::net::TcpStream, status: &str, headers: &str, body: &str| {
            let _ = write!(
                writer,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{headers}content-length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = writer.flush();
        };
        if method == "GET" && path.ends_with("/runtime/invocation/next") {
            let (id, event, timeout) = {
                let mut guard = lock.lock().unwrap();
                loop {
                    if let Some((id, event)) = guard.pending.pop_front() {
                        break (id, event, guard.timeout);
                    }
                    guard = ready.wait(guard).unwrap();
                }
            };
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
                + timeout.unwrap_or(Duration::from_secs(60)).as_millis();
            let headers = format!(
                "lambda-runtime-aws-request-id: {id}\r\nlambda-runtime-deadline-ms: {deadline}\r\n\
                 lambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:123456789012:function:test\r\n\
                 lambda-runtime-trace-id: Root=1-00000000-000000000000000000000000\r\n"
            );
            reply(&mut writer, "200 OK", &headers, &event);
            continue;
        }
        let text = String::from_utf8_lossy(&body).to_string();
        let json =
            || serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text.clone()));
        let mut guard = lock.lock().unwrap();
        if path.ends_with("/runtime/init/error") {
            guard.init_error = Some(text.clone());
        } else if let Some(rest) = path.strip_suffix("/response") {
            let id = rest.rsplit('/').next().unwrap_or_default().to_string();
            guard.results.insert(id, InvocationResult::Response(json()));
        } else if let Some(rest) = path.strip_suffix("/error") {
            let id = rest.rsplit('/').next().unwrap_or_default().to_string();
            guard.results.insert(id, InvocationResult::Error(json()));
        }
        drop(guard);
        ready.notify_all();
        reply(&mut writer, "202 Accepted", "", "{}");
    }
}

/// SplitMix64 from a seed, so a test's random choices (kill points, event order) replay from
/// its seed variable.
pub struct SeededRng(u64);

impl SeededRng {
    pub fn new(seed: u64) -> Self {
        SeededRng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}
