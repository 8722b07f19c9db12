//! Test support for the integration tests: one moto server per test process and SDK clients
//! pointed at it.
//!
//! When `MOTO_ENDPOINT` is set (as `make test` does), that server is used. Otherwise the
//! process starts its own `moto_server` from `./.venv` (run `scripts/emulator.sh install` once)
//! on a free loopback port; it is stopped when the test process exits (its stdin closes).

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
    let deadline = Instant::now() + Duration::from_secs(30);
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
    panic!("moto_server at {endpoint} did not become ready in 30 s");
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
    pub body: String,
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
        }
    }
    let mut request_body = vec![0u8; length];
    reader.read_exact(&mut request_body).ok()?;
    Some(RecordedRequest {
        method,
        target,
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

/// DynamoDB client for the emulator.
pub async fn dynamodb_client() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&aws_config().await)
}

/// A job store on a fresh, uniquely named table (keys, `by-object` GSI, stream, TTL).
pub async fn job_store() -> shared::adapters::dynamodb::DynamoJobStore {
    let store = shared::adapters::dynamodb::DynamoJobStore::new(
        dynamodb_client().await,
        unique_name("jobs"),
    );
    store.ensure_table().await.expect("create jobs table");
    store
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
    use shared::domain::job::{
        shard_of, ClassTotals, Job, LeaseOutcome, ObjectRecord, PageCommit, PlanTotals,
    };
    use shared::domain::state::ObjectState;
    use shared::domain::storage::{RetrievalTier, StorageClass};
    let shards = 4;
    let now = time::OffsetDateTime::now_utc();
    let job = Job::new(
        job_id.into(),
        project.into(),
        user.into(),
        format!("/srv/projects/Assets/{project}/"),
        format!("{project}/"),
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
        })
        .collect();
    store.put_objects(&records).await.expect("put objects");
    let LeaseOutcome::Acquired(job) = store
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
