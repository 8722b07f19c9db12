//! A loopback HTTP proxy that counts requests per `X-Amz-Target` (the DynamoDB operation) on
//! their way to the emulator: what the tally costs in DynamoDB requests, measured on the wire.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};

/// Requests seen, per operation (`Query`, `TransactWriteItems`, ...), and the time spent
/// waiting for their answers (summed over concurrent requests).
#[derive(Clone, Default)]
pub struct Counts(Arc<Mutex<BTreeMap<String, (u64, Duration)>>>);

impl Counts {
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(op, (n, _))| (op.clone(), *n))
            .collect()
    }

    /// Per operation: requests and summed answer time.
    pub fn timings(&self) -> BTreeMap<String, (u64, Duration)> {
        self.0.lock().unwrap().clone()
    }

    pub fn total(&self) -> u64 {
        self.0.lock().unwrap().values().map(|(n, _)| n).sum()
    }

    pub fn reset(&self) {
        self.0.lock().unwrap().clear();
    }

    fn add(&self, op: String, took: Duration) {
        let mut map = self.0.lock().unwrap();
        let entry = map.entry(op).or_default();
        entry.0 += 1;
        entry.1 += took;
    }
}

/// A running proxy: point SDK clients at [`Proxy::url`].
pub struct Proxy {
    pub address: SocketAddr,
    pub counts: Counts,
}

impl Proxy {
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }
}

/// Forwards every request to `upstream` (`http://host:port`) and counts it.
pub async fn start(upstream: &str) -> std::io::Result<Proxy> {
    let upstream: http::Uri = upstream
        .parse()
        .map_err(|e| std::io::Error::other(format!("upstream {upstream}: {e}")))?;
    let authority = upstream
        .authority()
        .ok_or_else(|| std::io::Error::other("upstream without host"))?
        .clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let counts = Counts::default();
    // No pooled connections: moto drops idle keep-alive connections, and a request sent on one
    // it just dropped fails (not retried by the client, the SDK sees a closed connection).
    let client: Client<HttpConnector, Incoming> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build_http();
    let seen = counts.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (client, seen, authority) = (client.clone(), seen.clone(), authority.clone());
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
                        let (client, seen, authority) =
                            (client.clone(), seen.clone(), authority.clone());
                        async move {
                            let op = req
                                .headers()
                                .get("x-amz-target")
                                .and_then(|v| v.to_str().ok())
                                .map(|t| t.rsplit('.').next().unwrap_or(t).to_string())
                                .unwrap_or_else(|| {
                                    format!("{} {}", req.method(), req.uri().path())
                                });
                            let path = req
                                .uri()
                                .path_and_query()
                                .map(|p| p.as_str().to_string())
                                .unwrap_or_else(|| "/".into());
                            *req.uri_mut() = http::Uri::builder()
                                .scheme("http")
                                .authority(authority)
                                .path_and_query(path)
                                .build()
                                .expect("upstream uri");
                            let start = Instant::now();
                            let answer = client.request(req).await;
                            seen.add(op, start.elapsed());
                            answer
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(Proxy { address, counts })
}
