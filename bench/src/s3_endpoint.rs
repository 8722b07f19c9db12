//! A latency-modelling S3 endpoint: ListObjects(V2), HeadObject, RestoreObject, GetObject and
//! PutObject over an in-memory catalogue, served through the `s3s` protocol library.
//!
//! Real S3 answers in tens of milliseconds and has no practical concurrency cap, while moto
//! answers in about 4 ms but serialises requests (~250/s). This endpoint waits a fixed latency
//! (default 25 ms) before every answer and serves any number of requests at once, so a tool's
//! throughput here shows what its concurrency buys against real S3. Every call is counted per
//! operation and key, which proves that each object was asked exactly once.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;

use bytes::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result, S3};
use time::OffsetDateTime;

/// Where an archived object's restore stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restore {
    None,
    InProgress,
    Done,
}

/// One object of the catalogue. Objects of equal content share one `Bytes` buffer.
#[derive(Debug, Clone)]
pub struct Entry {
    pub storage_class: &'static str,
    pub data: Bytes,
    pub restore: Restore,
    pub etag: String,
}

impl Entry {
    fn archived(&self) -> bool {
        matches!(self.storage_class, "GLACIER" | "DEEP_ARCHIVE")
    }

    fn readable(&self) -> bool {
        !self.archived() || self.restore == Restore::Done
    }

    fn restore_header(&self) -> Option<String> {
        match self.restore {
            Restore::None => None,
            Restore::InProgress => Some("ongoing-request=\"true\"".into()),
            Restore::Done => Some(
                "ongoing-request=\"false\", expiry-date=\"Fri, 01 Jan 2100 00:00:00 GMT\"".into(),
            ),
        }
    }
}

/// The operations counted per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    List,
    Head,
    Restore,
    Get,
    Put,
}

#[derive(Default)]
struct State {
    buckets: HashMap<String, BTreeMap<String, Entry>>,
    /// (operation, key) → calls; listings are counted under the bucket name.
    counts: HashMap<(Op, String), u32>,
}

/// The catalogue and counters, shared by the server and the harness.
#[derive(Clone)]
pub struct Catalogue {
    state: Arc<Mutex<State>>,
    latency: Duration,
}

impl Catalogue {
    pub fn new(latency: Duration) -> Self {
        Catalogue {
            state: Arc::default(),
            latency,
        }
    }

    pub fn latency(&self) -> Duration {
        self.latency
    }

    /// Adds (or replaces) an object.
    pub fn put(&self, bucket: &str, key: &str, entry: Entry) {
        self.state
            .lock()
            .unwrap()
            .buckets
            .entry(bucket.to_string())
            .or_default()
            .insert(key.to_string(), entry);
    }

    /// Creates an empty bucket (`put` creates its bucket too; PutObject does not).
    pub fn create_bucket(&self, bucket: &str) {
        self.state
            .lock()
            .unwrap()
            .buckets
            .entry(bucket.to_string())
            .or_default();
    }

    /// `count` GLACIER objects `<prefix>obj-<n>.mxf` of `size` bytes, none restored.
    pub fn fill_glacier(&self, bucket: &str, prefix: &str, count: usize, size: usize) {
        let data = Bytes::from(vec![0u8; size]);
        let mut state = self.state.lock().unwrap();
        let objects = state.buckets.entry(bucket.to_string()).or_default();
        for n in 0..count {
            objects.insert(
                format!("{prefix}obj-{n:07}.mxf"),
                Entry {
                    storage_class: "GLACIER",
                    data: data.clone(),
                    restore: Restore::None,
                    etag: format!("{n:032x}"),
                },
            );
        }
    }

    /// Drops every object and count (between runs).
    pub fn clear(&self) {
        let mut state = self.state.lock().unwrap();
        state.buckets.clear();
        state.counts.clear();
    }

    /// Calls of `op` per key (listings: per bucket).
    pub fn counts(&self, op: Op) -> HashMap<String, u32> {
        self.state
            .lock()
            .unwrap()
            .counts
            .iter()
            .filter(|((o, _), _)| *o == op)
            .map(|((_, k), n)| (k.clone(), *n))
            .collect()
    }

    /// Keys of `bucket` whose restore is in progress or done.
    pub fn restored_or_pending(&self, bucket: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .buckets
            .get(bucket)
            .map(|o| o.values().filter(|e| e.restore != Restore::None).count())
            .unwrap_or(0)
    }

    fn count(&self, op: Op, key: &str) {
        *self
            .state
            .lock()
            .unwrap()
            .counts
            .entry((op, key.to_string()))
            .or_default() += 1;
    }

    async fn wait(&self) {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
    }

    fn entry(&self, bucket: &str, key: &str) -> S3Result<Entry> {
        let state = self.state.lock().unwrap();
        let objects = state
            .buckets
            .get(bucket)
            .ok_or_else(|| s3_error!(NoSuchBucket))?;
        objects
            .get(key)
            .cloned()
            .ok_or_else(|| s3_error!(NoSuchKey))
    }

    /// One listing page after `after` (exclusive): objects and whether more follow.
    fn page(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<&str>,
        max_keys: usize,
        with_status: bool,
    ) -> S3Result<(Vec<Object>, bool)> {
        let state = self.state.lock().unwrap();
        let objects = state
            .buckets
            .get(bucket)
            .ok_or_else(|| s3_error!(NoSuchBucket))?;
        let start = match after {
            Some(after) if after >= prefix => std::ops::Bound::Excluded(after.to_string()),
            _ => std::ops::Bound::Included(prefix.to_string()),
        };
        let mut page = Vec::new();
        let mut more = false;
        for (key, entry) in objects.range((start, std::ops::Bound::Unbounded)) {
            if !key.starts_with(prefix) {
                break;
            }
            if page.len() == max_keys {
                more = true;
                break;
            }
            page.push(Object {
                key: Some(key.clone()),
                size: Some(entry.data.len() as i64),
                storage_class: Some(ObjectStorageClass::from(entry.storage_class.to_string())),
                e_tag: Some(ETag::Strong(entry.etag.clone())),
                last_modified: Some(Timestamp::from(OffsetDateTime::UNIX_EPOCH)),
                restore_status: (with_status && entry.restore != Restore::None).then(|| {
                    RestoreStatus {
                        is_restore_in_progress: Some(entry.restore == Restore::InProgress),
                        restore_expiry_date: None,
                    }
                }),
                ..Default::default()
            });
        }
        Ok((page, more))
    }
}

#[async_trait::async_trait]
impl S3 for Catalogue {
    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let input = req.input;
        self.count(Op::List, &input.bucket);
        self.wait().await;
        let prefix = input.prefix.clone().unwrap_or_default();
        let after = input
            .continuation_token
            .clone()
            .or_else(|| input.start_after.clone());
        let max_keys = input.max_keys.unwrap_or(1000).clamp(1, 1000);
        let with_status = input.optional_object_attributes.as_ref().is_some_and(|a| {
            a.iter()
                .any(|a| a.as_str() == OptionalObjectAttributes::RESTORE_STATUS)
        });
        let (contents, more) = self.page(
            &input.bucket,
            &prefix,
            after.as_deref(),
            max_keys as usize,
            with_status,
        )?;
        let next = more.then(|| {
            contents
                .last()
                .and_then(|o| o.key.clone())
                .unwrap_or_default()
        });
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: Some(prefix),
            max_keys: Some(max_keys),
            key_count: Some(contents.len() as i32),
            continuation_token: input.continuation_token,
            is_truncated: Some(more),
            next_continuation_token: next,
            contents: Some(contents),
            ..Default::default()
        }))
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let input = req.input;
        self.count(Op::List, &input.bucket);
        self.wait().await;
        let prefix = input.prefix.clone().unwrap_or_default();
        let max_keys = input.max_keys.unwrap_or(1000).clamp(1, 1000);
        let (contents, more) = self.page(
            &input.bucket,
            &prefix,
            input.marker.as_deref(),
            max_keys as usize,
            false,
        )?;
        let next = more.then(|| {
            contents
                .last()
                .and_then(|o| o.key.clone())
                .unwrap_or_default()
        });
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(input.bucket),
            prefix: Some(prefix),
            marker: input.marker,
            max_keys: Some(max_keys),
            is_truncated: Some(more),
            next_marker: next,
            contents: Some(contents),
            ..Default::default()
        }))
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.wait().await;
        if !self
            .state
            .lock()
            .unwrap()
            .buckets
            .contains_key(&req.input.bucket)
        {
            return Err(s3_error!(NoSuchBucket));
        }
        Ok(S3Response::new(HeadBucketOutput::default()))
    }

    async fn get_bucket_location(
        &self,
        _req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.wait().await;
        Ok(S3Response::new(GetBucketLocationOutput::default()))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let input = req.input;
        self.count(Op::Head, &input.key);
        self.wait().await;
        let entry = self.entry(&input.bucket, &input.key)?;
        Ok(S3Response::new(HeadObjectOutput {
            content_length: Some(entry.data.len() as i64),
            e_tag: Some(ETag::Strong(entry.etag.clone())),
            last_modified: Some(Timestamp::from(OffsetDateTime::UNIX_EPOCH)),
            storage_class: Some(StorageClass::from(entry.storage_class.to_string())),
            restore: entry.restore_header(),
            ..Default::default()
        }))
    }

    async fn restore_object(
        &self,
        req: S3Request<RestoreObjectInput>,
    ) -> S3Result<S3Response<RestoreObjectOutput>> {
        let input = req.input;
        self.count(Op::Restore, &input.key);
        self.wait().await;
        let mut state = self.state.lock().unwrap();
        let entry = state
            .buckets
            .get_mut(&input.bucket)
            .ok_or_else(|| s3_error!(NoSuchBucket))?
            .get_mut(&input.key)
            .ok_or_else(|| s3_error!(NoSuchKey))?;
        if !entry.archived() {
            return Err(s3_error!(InvalidObjectState, "object is not archived"));
        }
        let status = match entry.restore {
            Restore::InProgress => return Err(s3_error!(RestoreAlreadyInProgress)),
            Restore::Done => http::StatusCode::OK,
            Restore::None => {
                entry.restore = Restore::InProgress;
                http::StatusCode::ACCEPTED
            }
        };
        // s3s 0.14 drops `S3Response::status` for RestoreObject; the server loop below turns
        // this marker into the status S3 answers (202 started, 200 already restored).
        let mut response = S3Response::new(RestoreObjectOutput::default());
        response.extensions.insert(RestoreStatusCode(status));
        Ok(response)
    }

    /// A STANDARD object into an existing bucket (the finalizer's manifests).
    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let input = req.input;
        self.count(Op::Put, &input.key);
        self.wait().await;
        let mut data = Vec::new();
        if let Some(mut body) = input.body {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| s3_error!(IncompleteBody, "{e}"))?;
                data.extend_from_slice(&chunk);
            }
        }
        let etag = format!("{:032x}", data.len());
        let mut state = self.state.lock().unwrap();
        let objects = state
            .buckets
            .get_mut(&input.bucket)
            .ok_or_else(|| s3_error!(NoSuchBucket))?;
        objects.insert(
            input.key,
            Entry {
                storage_class: "STANDARD",
                data: Bytes::from(data),
                restore: Restore::None,
                etag: etag.clone(),
            },
        );
        Ok(S3Response::new(PutObjectOutput {
            e_tag: Some(ETag::Strong(etag)),
            ..Default::default()
        }))
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let input = req.input;
        self.count(Op::Get, &input.key);
        self.wait().await;
        let entry = self.entry(&input.bucket, &input.key)?;
        if !entry.readable() {
            return Err(s3_error!(InvalidObjectState, "object is archived"));
        }
        let full = entry.data.len() as u64;
        let (data, content_range) = match &input.range {
            None => (entry.data.clone(), None),
            Some(range) => {
                let r = range.check(full).map_err(|_| s3_error!(InvalidRange))?;
                (
                    entry.data.slice(r.start as usize..r.end as usize),
                    Some(format!("bytes {}-{}/{full}", r.start, r.end - 1)),
                )
            }
        };
        let length = data.len() as i64;
        let ranged = content_range.is_some();
        let mut response = S3Response::new(GetObjectOutput {
            content_length: Some(length),
            content_range,
            e_tag: Some(ETag::Strong(entry.etag.clone())),
            last_modified: Some(Timestamp::from(OffsetDateTime::UNIX_EPOCH)),
            storage_class: Some(StorageClass::from(entry.storage_class.to_string())),
            restore: entry.restore_header(),
            body: Some(StreamingBlob::from(s3s::Body::from(data))),
            ..Default::default()
        });
        if ranged {
            response.status = Some(http::StatusCode::PARTIAL_CONTENT);
        }
        Ok(response)
    }
}

/// The status a RestoreObject answer must carry, passed from the handler to the server loop.
#[derive(Debug, Clone, Copy)]
struct RestoreStatusCode(http::StatusCode);

/// A running endpoint: its address and catalogue. Serves until the process ends.
pub struct Endpoint {
    pub address: SocketAddr,
    pub catalogue: Catalogue,
}

impl Endpoint {
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }
}

/// Starts the endpoint on a free loopback port (HTTP/1.1 keep-alive, one task per connection),
/// accepting requests signed with [`crate::tools::ACCESS_KEY`].
pub async fn start(latency: Duration) -> std::io::Result<Endpoint> {
    let catalogue = Catalogue::new(latency);
    let mut builder = s3s::service::S3ServiceBuilder::new(catalogue.clone());
    // Every client signs (SigV4 or V2) with the harness's key; s3s checks the signatures.
    builder.set_auth(s3s::auth::SimpleAuth::from_single(
        crate::tools::ACCESS_KEY,
        crate::tools::SECRET_KEY,
    ));
    let service = builder.build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let service = service.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let service = service.clone();
                        async move {
                            let mut response = service.call(req.map(s3s::Body::from)).await?;
                            if let Some(RestoreStatusCode(status)) =
                                response.extensions().get::<RestoreStatusCode>().copied()
                            {
                                *response.status_mut() = status;
                            }
                            Ok::<_, s3s::HttpError>(response)
                        }
                    });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(Endpoint { address, catalogue })
}
