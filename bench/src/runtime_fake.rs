//! A minimal loopback Lambda Runtime API for the cold-start section: it notes when a function
//! process first polls `GET /2018-06-01/runtime/invocation/next` (the end of its init) and
//! holds that poll open, so the process stays idle at its post-init footprint until killed.
//! (The integration tests have a fuller fake in `tests/src/lib.rs` that serves events; this
//! one only needs the moment of the first poll, so it stays this small.)

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;

/// A running fake; [`RuntimeFake::first_poll`] yields the instant of each next first poll.
pub struct RuntimeFake {
    pub address: SocketAddr,
    polls: mpsc::UnboundedReceiver<(Instant, String)>,
}

impl RuntimeFake {
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (tx, polls) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let tx = tx.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: http::Request<hyper::body::Incoming>| {
                            let tx = tx.clone();
                            async move {
                                let path = req.uri().path().to_string();
                                if path.ends_with("/runtime/invocation/next") {
                                    let _ = tx.send((Instant::now(), path));
                                    // Never hand out an event: the function idles here until killed.
                                    tokio::time::sleep(Duration::from_secs(3600)).await;
                                } else if path.ends_with("/init/error") {
                                    let _ = tx.send((Instant::now(), path));
                                }
                                Ok::<_, std::convert::Infallible>(
                                    http::Response::builder()
                                        .status(202)
                                        .body(Full::new(Bytes::from_static(b"{}")))
                                        .unwrap(),
                                )
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(RuntimeFake { address, polls })
    }

    /// Environment a function needs to find this fake.
    pub fn env(&self, function_name: &str) -> Vec<(String, String)> {
        [
            ("AWS_LAMBDA_RUNTIME_API", self.address.to_string()),
            ("AWS_LAMBDA_FUNCTION_NAME", function_name.to_string()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_string()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_string()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench".to_string()),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "bench".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The next first poll (or init error, as `Err` with the path), within `timeout`.
    pub async fn next_poll(&mut self, timeout: Duration) -> Result<Instant, String> {
        match tokio::time::timeout(timeout, self.polls.recv()).await {
            Ok(Some((at, path))) if path.ends_with("/invocation/next") => Ok(at),
            Ok(Some((_, path))) => Err(format!("function reported {path}")),
            Ok(None) => Err("runtime fake stopped".into()),
            Err(_) => Err(format!("no poll within {timeout:?}")),
        }
    }
}
