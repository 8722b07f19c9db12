//! A loopback HTTP proxy in front of the emulator that makes a chosen share of S3 and DynamoDB
//! calls fail the way AWS does under load: 503 SlowDown (S3) / ThrottlingException (DynamoDB),
//! 500 InternalError, or no answer at all: the request is held, then the socket closed (past
//! the client's attempt timeout, for S3; for DynamoDB after [`FaultPlan::hold_dynamodb`]).
//!
//! The choice is deterministic: a hash of the seed, the request's identity (method and target,
//! plus `X-Amz-Target` and body for DynamoDB) and how often that same request was seen before.
//! So which calls fail does not depend on the interleaving of concurrent requests (requests that
//! carry run-unique names or timestamps differ between runs, so a rerun draws a fresh set of
//! failing calls of the same share; `seed` varies it). A faulted request never reaches the emulator (no side effect), which keeps
//! the count of calls that reached S3 meaningful: every object must be asked for exactly once.
//!
//! Every connection is answered with `Connection: close`, so the SDK never reuses a socket the
//! proxy is about to close (which would be an extra, unplanned retry).
//!
//! The proxy also gives the emulator the isolation DynamoDB has: a `TransactWriteItems` is
//! forwarded alone, with no other DynamoDB call at the emulator meanwhile. moto runs a
//! transaction on a deep copy of the whole table and restores that copy when a condition
//! fails, which silently drops what concurrent calls wrote in between (seen in CI as a counter
//! item that lost half of one `ADD`). Other calls still run concurrently with each other.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// What the proxy does to a request it chose to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// S3: 503 `SlowDown`; DynamoDB: 400 `ThrottlingException`.
    Throttle,
    /// 500 `InternalError` / `InternalServerError`.
    Internal,
    /// Reads the request, never answers, closes after the service's hold.
    Timeout,
}

/// Which calls fail, and how.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    pub seed: u64,
    /// Share of the eligible S3 calls that fail, in per mille (50 = 5 %).
    pub per_mille: u64,
    /// The same for DynamoDB: the fan-out writes records 25 per batch and the tally counts
    /// 100 settled objects per write, so DynamoDB sees few calls and needs a higher share to
    /// see every kind of fault.
    pub dynamodb_per_mille: u64,
    /// Fail S3 calls.
    pub s3: bool,
    /// Fail DynamoDB calls.
    pub dynamodb: bool,
    /// How long an S3 call that gets no answer is held before the socket is closed; longer
    /// than the client's attempt timeout, so the client times out.
    pub hold_s3: Duration,
    /// The same for DynamoDB. Keep it below the client's attempt timeout and that timeout far
    /// above the emulator's slowest answer: moto does not isolate a transaction from a
    /// concurrent one (its rollback restores a snapshot taken before the other committed), so
    /// a retry sent while a timed-out attempt is still running there can undo that attempt's
    /// writes, something DynamoDB never does. The client then sees the connection close
    /// without an answer, which it retries like a timeout.
    pub hold_dynamodb: Duration,
}

impl FaultPlan {
    /// No fault at all: the proxy only counts calls and isolates transactions.
    pub fn none() -> Self {
        FaultPlan {
            seed: 0,
            per_mille: 0,
            dynamodb_per_mille: 0,
            s3: false,
            dynamodb: false,
            hold_s3: Duration::ZERO,
            hold_dynamodb: Duration::ZERO,
        }
    }
}

/// One call seen by the proxy.
#[derive(Debug, Clone)]
pub struct ProxiedCall {
    /// `S3` or `DynamoDB`.
    pub service: &'static str,
    /// `RestoreObject`, `HeadObject`, `ListObjectsV2`, `PutObject`, … (S3) or the
    /// `X-Amz-Target` operation (DynamoDB).
    pub operation: String,
    pub method: String,
    /// Path and query as sent, e.g. `/bucket/proj/a.mov?restore`.
    pub target: String,
    /// `None` when it was forwarded to the emulator.
    pub fault: Option<Fault>,
    /// How long the proxy took to answer (for a forwarded call: the emulator's time).
    pub elapsed: Duration,
}

/// The running proxy; it lives as long as the test process.
pub struct FaultProxy {
    pub endpoint: String,
    calls: Arc<Mutex<Vec<ProxiedCall>>>,
    refusals: Arc<Mutex<Vec<Refusal>>>,
    /// Connections accepted and not yet done with (their call still at the emulator).
    open: Arc<AtomicUsize>,
}

/// DynamoDB calls of one operation whose body contains a needle: each one fails (500
/// `InternalServerError`, never forwarded) while the refusal stands, e.g. to stop a call at
/// one chosen write the way a crash there would (refusing its clean-up writes too).
#[derive(Debug, Clone)]
struct Refusal {
    operation: String,
    needle: String,
}

struct Shared {
    upstream: String,
    plan: Mutex<FaultPlan>,
    refusals: Arc<Mutex<Vec<Refusal>>>,
    seen: Mutex<HashMap<u64, u64>>,
    calls: Arc<Mutex<Vec<ProxiedCall>>>,
    /// Held exclusively while a transaction is at the emulator, shared by other DynamoDB calls.
    dynamodb_isolation: RwLock<()>,
}

impl FaultProxy {
    /// Starts the proxy on a free loopback port in front of `upstream` (`http://host:port`).
    pub fn start(upstream: &str, plan: FaultPlan) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let calls = Arc::new(Mutex::new(Vec::new()));
        let open = Arc::new(AtomicUsize::new(0));
        let counter = open.clone();
        let refusals = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::new(Shared {
            upstream: upstream.trim_start_matches("http://").to_string(),
            plan: Mutex::new(plan),
            refusals: refusals.clone(),
            seen: Mutex::new(HashMap::new()),
            calls: calls.clone(),
            dynamodb_isolation: RwLock::new(()),
        });
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = shared.clone();
                let counter = counter.clone();
                counter.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let _ = serve(stream, &shared);
                    counter.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        FaultProxy {
            endpoint,
            calls,
            refusals,
            open,
        }
    }

    /// From now on, also fails every DynamoDB `operation` call whose JSON body contains
    /// `needle` (with 500 `InternalServerError`, never forwarded), until
    /// [`Self::stop_refusing`].
    pub fn refuse_dynamodb(&self, operation: &str, needle: &str) {
        self.refusals.lock().unwrap().push(Refusal {
            operation: operation.to_string(),
            needle: needle.to_string(),
        });
    }

    /// Ends every refusal.
    pub fn stop_refusing(&self) {
        self.refusals.lock().unwrap().clear();
    }

    /// Waits until every call that reached the proxy has been answered by the emulator (or
    /// failed), e.g. the calls a killed invocation left in flight; panics after `timeout`.
    pub async fn wait_idle(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        // A request written just before its sender died may still be on its way in.
        tokio::time::sleep(Duration::from_millis(50)).await;
        while self.open.load(Ordering::SeqCst) > 0 {
            assert!(
                Instant::now() < deadline,
                "calls still in flight at the proxy after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Every call seen so far, in arrival order.
    pub fn calls(&self) -> Vec<ProxiedCall> {
        self.calls.lock().unwrap().clone()
    }
}

struct Request {
    method: String,
    target: String,
    amz_target: Option<String>,
    /// The request as received (head and body), forwarded byte for byte.
    raw: Vec<u8>,
    body: Vec<u8>,
}

fn serve(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let Some(request) = read_request(&mut reader)? else {
        return Ok(());
    };
    let (service, operation) = classify(&request);
    let plan = shared.plan.lock().unwrap().clone();
    let (eligible, per_mille) = match service {
        "S3" => (plan.s3, plan.per_mille),
        _ => (plan.dynamodb, plan.dynamodb_per_mille),
    };
    let refused = shared.refusals.lock().unwrap().iter().any(|r| {
        service == "DynamoDB"
            && operation == r.operation
            && String::from_utf8_lossy(&request.body).contains(&r.needle)
    });
    let fault = if refused {
        Some(Fault::Internal)
    } else if eligible && per_mille > 0 {
        let identity = fnv(&[
            request.method.as_bytes(),
            request.target.as_bytes(),
            request.amz_target.as_deref().unwrap_or("").as_bytes(),
            &request.body,
        ]);
        let nth = {
            let mut seen = shared.seen.lock().unwrap();
            let n = seen.entry(identity).or_default();
            *n += 1;
            *n
        };
        let roll = mix(plan.seed ^ identity ^ nth.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        // 45 % throttling, 45 % internal errors, 10 % no answer (each costs a client timeout).
        (roll % 1000 < per_mille).then_some(match (roll / 1000) % 20 {
            0..=8 => Fault::Throttle,
            9..=17 => Fault::Internal,
            _ => Fault::Timeout,
        })
    } else {
        None
    };
    let started = std::time::Instant::now();
    let mut client = stream;
    let result = match fault {
        None if service == "DynamoDB" && operation == "TransactWriteItems" => {
            let _alone = shared.dynamodb_isolation.write().unwrap();
            forward(&request, &shared.upstream, &mut client)
        }
        None if service == "DynamoDB" => {
            let _shared = shared.dynamodb_isolation.read().unwrap();
            forward(&request, &shared.upstream, &mut client)
        }
        None => forward(&request, &shared.upstream, &mut client),
        Some(Fault::Timeout) => {
            std::thread::sleep(match service {
                "S3" => plan.hold_s3,
                _ => plan.hold_dynamodb,
            });
            Ok(())
        }
        Some(fault) => {
            let (status, content_type, body) = fault_answer(service, fault);
            write!(
                client,
                "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
                 x-amz-request-id: injected\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .and_then(|()| client.flush())
        }
    };
    shared.calls.lock().unwrap().push(ProxiedCall {
        service,
        operation,
        method: request.method.clone(),
        target: request.target.clone(),
        fault,
        elapsed: started.elapsed(),
    });
    result
}

fn fault_answer(service: &str, fault: Fault) -> (&'static str, &'static str, String) {
    match (service, fault) {
        ("S3", Fault::Throttle) => (
            "503 Slow Down",
            "application/xml",
            crate::s3_error_body("SlowDown", "Please reduce your request rate."),
        ),
        ("S3", _) => (
            "500 Internal Server Error",
            "application/xml",
            crate::s3_error_body("InternalError", "We encountered an internal error."),
        ),
        (_, Fault::Throttle) => (
            "400 Bad Request",
            "application/x-amz-json-1.0",
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}"#.into(),
        ),
        (_, _) => (
            "500 Internal Server Error",
            "application/x-amz-json-1.0",
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"Internal server error"}"#.into(),
        ),
    }
}

/// Service and operation of a request, from `X-Amz-Target` (DynamoDB) or the S3 REST shape.
fn classify(request: &Request) -> (&'static str, String) {
    if let Some(target) = &request.amz_target {
        let op = target.rsplit('.').next().unwrap_or(target).to_string();
        return ("DynamoDB", op);
    }
    let (path, query) = request
        .target
        .split_once('?')
        .unwrap_or((&request.target, ""));
    let has = |name: &str| query.split('&').any(|p| p.split('=').next() == Some(name));
    let with_key = path.trim_start_matches('/').contains('/');
    let op = match request.method.as_str() {
        "POST" if has("restore") => "RestoreObject",
        "HEAD" => "HeadObject",
        "GET" if !with_key => "ListObjectsV2",
        "GET" => "GetObject",
        "PUT" if !with_key => "CreateBucket",
        "PUT" => "PutObject",
        other => other,
    };
    ("S3", op.to_string())
}

fn read_request(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<Request>> {
    let mut raw = Vec::new();
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    raw.extend_from_slice(line.as_bytes());
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let mut length = 0usize;
    let mut chunked = false;
    let mut amz_target = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 {
            return Ok(None);
        }
        let trimmed = header.trim_end();
        if trimmed.is_empty() {
            break;
        }
        let Some((name, value)) = trimmed.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        match name.as_str() {
            // Each connection carries one request: the upstream closes after its answer.
            "connection" => continue,
            "content-length" => length = value.parse().unwrap_or(0),
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "x-amz-target" => amz_target = Some(value.to_string()),
            _ => {}
        }
        raw.extend_from_slice(header.as_bytes());
    }
    raw.extend_from_slice(b"Connection: close\r\n\r\n");
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line)?;
            raw.extend_from_slice(size_line.as_bytes());
            let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or(""), 16)
                .unwrap_or(0);
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            raw.extend_from_slice(&chunk);
            body.extend_from_slice(&chunk[..size]);
            if size == 0 {
                break;
            }
        }
    } else {
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
        raw.extend_from_slice(&body);
    }
    Ok(Some(Request {
        method,
        target,
        amz_target,
        raw,
        body,
    }))
}

/// Sends the request to the emulator and relays its answer, with `Connection: close`.
fn forward(request: &Request, upstream: &str, client: &mut TcpStream) -> std::io::Result<()> {
    let mut server = TcpStream::connect(upstream)?;
    server.write_all(&request.raw)?;
    server.flush()?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer)?;
    let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return client.write_all(&answer);
    };
    let head = String::from_utf8_lossy(&answer[..end]).into_owned();
    let mut out = String::new();
    for (i, line) in head.split("\r\n").enumerate() {
        if i > 0 && line.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    client.write_all(out.as_bytes())?;
    client.write_all(&answer[end + 4..])?;
    client.flush()
}

/// FNV-1a over the parts (with a separator), stable across Rust versions unlike `DefaultHasher`.
fn fnv(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.iter().chain(&[0xff]) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// SplitMix64's finaliser: spreads the bits so `% 1000` is uniform.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
