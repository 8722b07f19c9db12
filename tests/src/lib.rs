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
