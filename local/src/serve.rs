//! `restore-local serve`: the API on a loopback HTTP server, with the very handler the Lambda
//! uses ([`shared::api::Api`]), against the emulator (`AWS_ENDPOINT_URL`). There is no table
//! stream locally, so the server keeps fanning out big jobs in background tasks itself.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use shared::api::{Api, Wiring};
use shared::config::{aws_sdk_config, vars, Config};
use shared::domain::request::MAX_BODY_BYTES;
use shared::{Error, Result};
use tokio::net::TcpListener;

/// Address served when `LISTEN_ADDR` is unset (the seed's port).
pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:9000";

/// Reads the Lambdas' environment (plus `LISTEN_ADDR`), creates the jobs table if missing and
/// serves until killed.
pub async fn run(_args: &[String]) -> Result<()> {
    let lookup = |name: &str| std::env::var(name).ok();
    let listen = lookup("LISTEN_ADDR")
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_LISTEN_ADDR.to_string());
    let config = Config::from_env(&[vars::ASSET_BUCKET_LIST])?;
    let sdk = aws_sdk_config(&config).await;
    let wiring = Wiring::new(&config, &sdk, &lookup, true)?;
    wiring.jobs.ensure_table().await?;
    // What the table stream, S3 notifications and the schedule drive in AWS: completion
    // events, finalizer, sweeper (restore_local::pipeline). They need MANIFEST_BUCKET and
    // SMTP_FROM; without them the API still serves.
    if config.manifest_bucket.is_some() && config.mail_from.is_some() {
        let pipeline = restore_local::pipeline::local_pipeline(
            &config,
            None,
            restore_local::pipeline::LOCAL_WINDOW,
        )
        .await?;
        tokio::spawn(async move { pipeline.run_forever().await });
    } else {
        tracing::warn!("MANIFEST_BUCKET or SMTP_FROM unset: no completion pipeline");
    }
    let listener = TcpListener::bind(&listen)
        .await
        .map_err(|e| Error::Config(format!("LISTEN_ADDR {listen}: {e}")))?;
    let address = listener
        .local_addr()
        .map_err(|e| Error::Internal(e.to_string()))?;
    tracing::info!(%address, table = %config.jobs_table, buckets = ?config.asset_buckets, "serving");
    println!("restore-local: serving http://{address}");
    serve(listener, Arc::new(wiring.api)).await
}

/// Serves HTTP/1.1 on `listener` with `api` until the process ends.
pub async fn serve(listener: TcpListener, api: Arc<Api>) -> Result<()> {
    loop {
        let (stream, _) = listener
            .accept()
            .await
            .map_err(|e| Error::Internal(format!("accept: {e}")))?;
        let api = api.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let api = api.clone();
                async move { Ok::<_, Infallible>(answer(&api, request).await) }
            });
            if let Err(err) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %err, "connection ended with an error");
            }
        });
    }
}

async fn answer(api: &Api, request: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    // Read at most one byte past the limit: enough for the handler to answer 413.
    let bytes = match Limited::new(body, MAX_BODY_BYTES + 1).collect().await {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(_) => vec![b' '; MAX_BODY_BYTES + 1],
    };
    let response = api.handle(http::Request::from_parts(parts, bytes)).await;
    response.map(|text| Full::new(Bytes::from(text)))
}
