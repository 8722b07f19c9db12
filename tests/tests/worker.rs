//! The on-premises copy worker against moto: real GetObject streams into a temporary BASE_PATH.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use integration_tests::{s3_client, unique_name};
use md5::{Digest, Md5};
use restore_worker::{run, S3Location, Summary, WorkerConfig};
use serde_json::json;
use shared::domain::manifest::{Report, ReportObject, ReportTotals};
use shared::domain::state::JobState;
use shared::domain::storage::{RetrievalTier, StorageClass};
use shared::Error;

const MIB: usize = 1024 * 1024;

/// A bucket of restored objects, a manifest bucket and an empty BASE_PATH.
struct Fixture {
    s3: aws_sdk_s3::Client,
    bucket: String,
    manifests: String,
    /// Scratch directory holding `base` (so escapes out of `base` can be checked).
    root: PathBuf,
    base: PathBuf,
    job_id: String,
}

impl Fixture {
    async fn new() -> Self {
        let s3 = s3_client().await;
        let bucket = unique_name("assets");
        let manifests = unique_name("manifests");
        for name in [&bucket, &manifests] {
            s3.create_bucket().bucket(name).send().await.unwrap();
        }
        let root = std::env::temp_dir().join(unique_name("worker"));
        let base = root.join("Assets");
        std::fs::create_dir_all(&base).unwrap();
        Fixture {
            s3,
            bucket,
            manifests,
            root,
            base,
            job_id: unique_name("job"),
        }
    }

    async fn put(&self, key: &str, body: Vec<u8>) {
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body))
            .send()
            .await
            .unwrap();
    }

    /// Uploads `body` in parts of 5 MiB (its ETag is then not an MD5).
    async fn put_multipart(&self, key: &str, body: &[u8]) {
        let upload = self
            .s3
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .unwrap();
        let upload_id = upload.upload_id().unwrap();
        let mut parts = Vec::new();
        for (i, chunk) in body.chunks(5 * MIB).enumerate() {
            let number = i as i32 + 1;
            let part = self
                .s3
                .upload_part()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(chunk.to_vec()))
                .send()
                .await
                .unwrap();
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .e_tag(part.e_tag().unwrap())
                    .build(),
            );
        }
        self.s3
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }

    /// Writes the finalizer's report listing `objects` (key, size, state) and returns its
    /// location.
    async fn report(&self, objects: &[(&str, usize, &str)]) -> S3Location {
        let now = time::OffsetDateTime::now_utc();
        let objects: Vec<ReportObject> = objects
            .iter()
            .map(|(key, size, state)| ReportObject {
                bucket: self.bucket.clone(),
                key: key.to_string(),
                version_id: None,
                size: *size as u64,
                storage_class: StorageClass::Glacier,
                state: serde_json::from_value(json!(state)).unwrap(),
                expiry: Some(now + time::Duration::days(7)),
                error: None,
            })
            .collect();
        let report = Report {
            job_id: self.job_id.clone(),
            project_id: "4711".into(),
            prefix: "Project X/".into(),
            local_base: Some("/srv/media/Assets/".into()),
            tier: RetrievalTier::Bulk,
            state: JobState::Completed,
            created_at: now - time::Duration::hours(3),
            finished_at: now,
            totals: ReportTotals {
                objects: objects.len() as u64,
                ..ReportTotals::default()
            },
            cost_cents: 0,
            objects,
        };
        let report = serde_json::to_string(&report).unwrap();
        let key = format!("{}/report.json", self.job_id);
        self.s3
            .put_object()
            .bucket(&self.manifests)
            .key(&key)
            .body(ByteStream::from(report.into_bytes()))
            .send()
            .await
            .unwrap();
        S3Location {
            bucket: self.manifests.clone(),
            key,
        }
    }

    fn config(&self, manifest: S3Location) -> WorkerConfig {
        let mut config = WorkerConfig::new(manifest, &self.base);
        config.concurrency = 4;
        config
    }

    async fn run(&self, manifest: &S3Location) -> Summary {
        run(&self.s3, &self.config(manifest.clone())).await.unwrap()
    }

    fn path(&self, key: &str) -> PathBuf {
        self.base.join(key)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Deterministic, non-repeating-looking content of `len` bytes.
fn content(len: usize, seed: u8) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(seed);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn md5_of_file(path: &Path) -> [u8; 16] {
    use std::io::Read;
    let mut file = std::fs::File::open(path).unwrap();
    let mut hasher = Md5::new();
    let mut buffer = vec![0u8; MIB];
    loop {
        let n = file.read(&mut buffer).unwrap();
        if n == 0 {
            return hasher.finalize().into();
        }
        hasher.update(&buffer[..n]);
    }
}

/// Every file under `dir`, relative, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() && !path.is_symlink() {
                walk(&path, root, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn set_mtime(path: &Path, time: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(time)
        .unwrap();
}

fn keys(problems: &[restore_worker::Problem]) -> Vec<&str> {
    problems.iter().map(|p| p.key.as_str()).collect()
}

#[tokio::test]
async fn copies_every_restored_object_then_a_rerun_skips_them() {
    let f = Fixture::new().await;
    let big = content(50 * MIB, 1);
    let big_md5: [u8; 16] = Md5::digest(&big).into();
    let unicode = "Project X/Musik/Ångström – café 日本.wav";
    f.put("Project X/empty.txt", Vec::new()).await;
    f.put("Project X/rushes/big clip.mov", big).await;
    f.put(unicode, b"riff".to_vec()).await;
    f.put("Project X/sub/", Vec::new()).await;
    let manifest = f
        .report(&[
            ("Project X/empty.txt", 0, "restored"),
            ("Project X/rushes/big clip.mov", 50 * MIB, "restored"),
            (unicode, 4, "not_needed"),
            ("Project X/sub/", 0, "not_needed"),
            ("Project X/lost.mov", 10, "failed"),
        ])
        .await;

    let summary = f.run(&manifest).await;
    assert!(summary.is_success(), "{summary:#?}");
    assert_eq!(
        summary.copied,
        [
            unicode,
            "Project X/empty.txt",
            "Project X/rushes/big clip.mov"
        ]
    );
    assert_eq!(summary.bytes_copied, 50 * MIB as u64 + 4);
    assert_eq!(summary.not_restored, ["Project X/lost.mov"]);
    assert_eq!(summary.objects, 3);
    assert!(
        summary.skipped.is_empty() && summary.conflicts.is_empty() && summary.failed.is_empty()
    );
    assert_eq!(std::fs::read(f.path("Project X/empty.txt")).unwrap(), b"");
    assert_eq!(std::fs::read(f.path(unicode)).unwrap(), b"riff");
    assert_eq!(
        md5_of_file(&f.path("Project X/rushes/big clip.mov")),
        big_md5
    );
    assert_eq!(
        files_under(&f.base),
        [
            unicode,
            "Project X/empty.txt",
            "Project X/rushes/big clip.mov"
        ],
        "no .part file, no folder object, nothing else"
    );

    let again = f.run(&manifest).await;
    assert!(again.is_success(), "{again:#?}");
    assert!(again.copied.is_empty(), "{again:#?}");
    assert_eq!(again.bytes_copied, 0);
    assert_eq!(again.skipped, summary.copied);
    assert_eq!(
        md5_of_file(&f.path("Project X/rushes/big clip.mov")),
        big_md5
    );
}

#[tokio::test]
async fn existing_files_are_skipped_when_identical_and_reported_when_different() {
    let f = Fixture::new().await;
    let multipart = content(5 * MIB + 1000, 2);
    f.put("same.txt", b"identical".to_vec()).await;
    f.put("other.txt", b"the archive".to_vec()).await;
    f.put("shorter.txt", b"longer in S3".to_vec()).await;
    f.put_multipart("multi same.bin", &multipart).await;
    f.put_multipart("multi other.bin", &multipart).await;
    let manifest = f
        .report(&[
            ("same.txt", 9, "restored"),
            ("other.txt", 11, "restored"),
            ("shorter.txt", 12, "restored"),
            ("multi same.bin", multipart.len(), "restored"),
            ("multi other.bin", multipart.len(), "restored"),
        ])
        .await;
    let mut edited = multipart.clone();
    edited[3 * MIB] ^= 0xff;
    std::fs::write(f.path("same.txt"), b"identical").unwrap();
    std::fs::write(f.path("other.txt"), b"local edits").unwrap();
    std::fs::write(f.path("shorter.txt"), b"short").unwrap();
    std::fs::write(f.path("multi same.bin"), &multipart).unwrap();
    std::fs::write(f.path("multi other.bin"), &edited).unwrap();
    // Old files (an editor's, not the worker's): content decides, never the clock.
    for key in [
        "same.txt",
        "other.txt",
        "shorter.txt",
        "multi same.bin",
        "multi other.bin",
    ] {
        set_mtime(
            &f.path(key),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000),
        );
    }

    let summary = f.run(&manifest).await;
    assert!(!summary.is_success(), "conflicts must fail the run");
    assert!(summary.copied.is_empty(), "{summary:#?}");
    assert_eq!(summary.skipped, ["multi same.bin", "same.txt"]);
    assert_eq!(
        keys(&summary.conflicts),
        ["multi other.bin", "other.txt", "shorter.txt"]
    );
    assert!(summary.failed.is_empty(), "{summary:#?}");
    let reason = |key: &str| {
        summary
            .conflicts
            .iter()
            .find(|p| p.key == key)
            .unwrap()
            .reason
            .clone()
    };
    assert!(
        reason("shorter.txt").contains("5 bytes"),
        "{}",
        reason("shorter.txt")
    );
    assert!(reason("other.txt").contains("different content"));
    // Nothing was overwritten.
    assert_eq!(std::fs::read(f.path("other.txt")).unwrap(), b"local edits");
    assert_eq!(std::fs::read(f.path("shorter.txt")).unwrap(), b"short");
    assert_eq!(std::fs::read(f.path("multi other.bin")).unwrap(), edited);
    assert_eq!(files_under(&f.base).len(), 5, "no .part file left behind");
}

#[tokio::test]
async fn unsafe_keys_and_missing_objects_fail_without_writing_anything_else() {
    let f = Fixture::new().await;
    f.put("fine.txt", b"ok".to_vec()).await;
    f.put("../escape.txt", b"evil".to_vec()).await;
    let outside = f.root.join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, f.base.join("link")).unwrap();
    f.put("link/through.txt", b"evil".to_vec()).await;
    f.put("link/sub/deeper.txt", b"evil".to_vec()).await;
    let manifest = f
        .report(&[
            ("fine.txt", 2, "restored"),
            ("../escape.txt", 4, "restored"),
            ("/etc/evil", 4, "restored"),
            ("a/../../b.txt", 4, "restored"),
            ("link/through.txt", 4, "restored"),
            ("link/sub/deeper.txt", 4, "restored"),
            ("missing/object.bin", 10, "restored"),
        ])
        .await;

    let summary = f.run(&manifest).await;
    assert!(!summary.is_success());
    assert_eq!(summary.copied, ["fine.txt"]);
    assert_eq!(
        keys(&summary.failed),
        [
            "../escape.txt",
            "/etc/evil",
            "a/../../b.txt",
            "link/sub/deeper.txt",
            "link/through.txt",
            "missing/object.bin"
        ]
    );
    let reason = |key: &str| {
        summary
            .failed
            .iter()
            .find(|p| p.key == key)
            .unwrap()
            .reason
            .clone()
    };
    assert!(reason("link/through.txt").contains("outside BASE_PATH"));
    assert!(reason("link/sub/deeper.txt").contains("outside BASE_PATH"));
    assert!(
        reason("missing/object.bin").contains("NoSuchKey"),
        "{}",
        reason("missing/object.bin")
    );
    assert!(!f.root.join("escape.txt").exists());
    assert!(!f.root.join("b.txt").exists());
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    assert_eq!(
        files_under(&f.base),
        ["fine.txt", "link"],
        "no partial file of the missing object"
    );
    assert!(f.path("missing").read_dir().unwrap().next().is_none());
}

#[tokio::test]
async fn an_interrupted_copy_resumes_and_completes() {
    let f = Fixture::new().await;
    let big = content(50 * MIB, 3);
    let big_md5: [u8; 16] = Md5::digest(&big).into();
    f.put("media/big.mov", big).await;
    let mut objects = vec![("media/big.mov".to_string(), 50 * MIB)];
    for i in 0..5 {
        let key = format!("media/small-{i}.txt");
        f.put(&key, format!("small {i}").into_bytes()).await;
        objects.push((key, 7));
    }
    let listed: Vec<_> = objects
        .iter()
        .map(|(k, s)| (k.as_str(), *s, "restored"))
        .collect();
    let manifest = f.report(&listed).await;

    // First run: killed while the big object is half written.
    let mut config = f.config(manifest.clone());
    config.concurrency = 2;
    let s3 = f.s3.clone();
    let crashed = tokio::spawn(async move { run(&s3, &config).await });
    let media = f.path("media");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let partial = loop {
        let part = std::fs::read_dir(&media).ok().and_then(|entries| {
            entries.filter_map(Result::ok).find(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                name.starts_with("big.mov.")
                    && name.ends_with(".part")
                    && e.metadata().is_ok_and(|m| m.len() > 0)
            })
        });
        if let Some(part) = part {
            break part.path();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no partial download seen"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    crashed.abort();
    assert!(crashed.await.unwrap_err().is_cancelled());
    assert!(partial.exists(), "the crash left its partial download");
    assert!(
        !f.path("media/big.mov").exists(),
        "no half file under the final name"
    );
    // A stale part of an earlier crash, and an unrelated file that only looks like one.
    std::fs::write(media.join("small-1.txt.0123456789abcdef.part"), b"garb").unwrap();
    std::fs::write(media.join("notes.part"), b"mine").unwrap();

    let summary = f.run(&manifest).await;
    assert!(summary.is_success(), "{summary:#?}");
    assert!(summary.stale_parts_removed >= 2, "{summary:#?}");
    let mut done: Vec<String> = summary
        .copied
        .iter()
        .chain(&summary.skipped)
        .cloned()
        .collect();
    done.sort();
    let mut expected: Vec<String> = objects.iter().map(|(k, _)| k.clone()).collect();
    expected.sort();
    assert_eq!(done, expected);
    assert!(summary.copied.contains(&"media/big.mov".to_string()));
    assert_eq!(md5_of_file(&f.path("media/big.mov")), big_md5);
    for i in 0..5 {
        assert_eq!(
            std::fs::read_to_string(f.path(&format!("media/small-{i}.txt"))).unwrap(),
            format!("small {i}")
        );
    }
    let mut left = files_under(&f.base);
    left.retain(|p| p.ends_with(".part"));
    assert_eq!(
        left,
        ["media/notes.part"],
        "stale parts removed, others kept"
    );
}

#[tokio::test]
async fn copied_files_and_new_directories_get_the_configured_owner() {
    use std::os::unix::fs::MetadataExt;
    let f = Fixture::new().await;
    f.put("deep/dir/file.bin", b"owned".to_vec()).await;
    let manifest = f.report(&[("deep/dir/file.bin", 5, "restored")]).await;
    // Only root may give files away; otherwise chown to ourselves exercises the same path.
    let me = std::fs::metadata(&f.base).unwrap();
    let is_root = me.uid() == 0 && std::fs::metadata("/proc/self").unwrap().uid() == 0;
    let (uid, gid) = if is_root {
        (4242, 4343)
    } else {
        (me.uid(), me.gid())
    };
    let mut config = f.config(manifest);
    config.owner_uid = Some(uid);
    config.owner_gid = Some(gid);
    let summary = run(&f.s3, &config).await.unwrap();
    assert!(summary.is_success(), "{summary:#?}");
    for path in ["deep", "deep/dir", "deep/dir/file.bin"] {
        let meta = std::fs::metadata(f.path(path)).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (uid, gid), "{path}");
    }
    assert_eq!(
        std::fs::metadata(&f.base).unwrap().uid(),
        me.uid(),
        "base untouched"
    );
}

#[tokio::test]
async fn a_bad_report_or_base_path_is_a_clear_error_and_nothing_is_written() {
    let f = Fixture::new().await;
    f.put("a.txt", b"a".to_vec()).await;

    let missing = S3Location {
        bucket: f.manifests.clone(),
        key: "no-such-job/report.json".into(),
    };
    let err = run(&f.s3, &f.config(missing)).await.unwrap_err();
    assert!(matches!(err, Error::Upstream { .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-job/report.json"), "{err}");

    let garbage = S3Location {
        bucket: f.manifests.clone(),
        key: "garbage/report.json".into(),
    };
    f.s3.put_object()
        .bucket(&garbage.bucket)
        .key(&garbage.key)
        .body(ByteStream::from_static(b"{\"objects\": \"nope\"}"))
        .send()
        .await
        .unwrap();
    let err = run(&f.s3, &f.config(garbage)).await.unwrap_err();
    assert_eq!(err.code(), "invalid_report");
    assert!(
        err.to_string().contains("not a valid restore report"),
        "{err}"
    );

    let manifest = f.report(&[("a.txt", 1, "restored")]).await;
    let mut config = f.config(manifest.clone());
    config.expected_job_id = Some("another-job".into());
    let err = run(&f.s3, &config).await.unwrap_err();
    assert_eq!(err.code(), "report_job_mismatch");

    let mut config = f.config(manifest);
    config.base_path = f.root.join("not-mounted");
    let err = run(&f.s3, &config).await.unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    assert!(err.to_string().contains("not-mounted"), "{err}");
    assert!(
        !f.root.join("not-mounted").exists(),
        "BASE_PATH is never created"
    );

    assert!(files_under(&f.base).is_empty(), "nothing written");
}

#[tokio::test]
async fn a_rerun_trusts_size_and_time_unless_a_checksum_is_asked_for() {
    let f = Fixture::new().await;
    f.put("clip.mov", b"original".to_vec()).await;
    let manifest = f.report(&[("clip.mov", 8, "restored")]).await;
    assert_eq!(f.run(&manifest).await.copied, ["clip.mov"]);
    let head =
        f.s3.head_object()
            .bucket(&f.bucket)
            .key("clip.mov")
            .send()
            .await
            .unwrap();
    let written = std::fs::metadata(f.path("clip.mov"))
        .unwrap()
        .modified()
        .unwrap();
    let object_secs = head.last_modified().unwrap().secs() as u64;
    assert_eq!(
        written
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
        object_secs,
        "the copy carries the object's modification time"
    );

    // Same size and time but other bytes: the quick check (like rsync's) takes it as done...
    std::fs::write(f.path("clip.mov"), b"tampered").unwrap();
    set_mtime(&f.path("clip.mov"), written);
    assert_eq!(f.run(&manifest).await.skipped, ["clip.mov"]);
    // ...WORKER_CHECKSUM=true compares content and reports it, without overwriting.
    let mut config = f.config(manifest.clone());
    config.checksum = true;
    let summary = run(&f.s3, &config).await.unwrap();
    assert_eq!(keys(&summary.conflicts), ["clip.mov"]);
    assert_eq!(std::fs::read(f.path("clip.mov")).unwrap(), b"tampered");
}

/// A loopback stand-in for S3 (path-style GetObject/HeadObject only) that misbehaves the way
/// networks and disks do, for the cases moto can't produce.
mod flaky_s3 {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use futures::stream;
    use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
    use hyper::body::{Bytes, Frame};
    use hyper::{Request, Response};

    /// How the object is served.
    #[derive(Clone, Copy)]
    pub enum Fault {
        /// The first GET announces the full length but the connection drops halfway.
        TruncateFirst,
        /// Every GET carries an ETag that is not the content's MD5 (corruption in transit).
        WrongEtag,
    }

    pub struct Server {
        pub endpoint: String,
        pub object_gets: Arc<AtomicUsize>,
    }

    pub async fn start(report: Vec<u8>, object: Vec<u8>, md5: String, fault: Fault) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let object_gets = Arc::new(AtomicUsize::new(0));
        let gets = object_gets.clone();
        let (report, object) = (Bytes::from(report), Bytes::from(object));
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let (report, object, md5, gets) =
                    (report.clone(), object.clone(), md5.clone(), gets.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<_>| {
                        let response = if req.uri().path().ends_with("/report.json") {
                            full(report.clone(), "\"report\"")
                        } else {
                            let n = gets.fetch_add(1, Ordering::SeqCst);
                            match fault {
                                Fault::TruncateFirst if n == 0 => truncated(object.clone()),
                                Fault::TruncateFirst => full(object.clone(), &format!("\"{md5}\"")),
                                Fault::WrongEtag => {
                                    full(object.clone(), "\"00000000000000000000000000000000\"")
                                }
                            }
                        };
                        async move { Ok::<_, Infallible>(response) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        Server {
            endpoint,
            object_gets,
        }
    }

    type Body = BoxBody<Bytes, std::io::Error>;

    fn full(body: Bytes, etag: &str) -> Response<Body> {
        Response::builder()
            .header("content-length", body.len())
            .header("etag", etag)
            .header("last-modified", "Wed, 25 Nov 2026 03:00:00 GMT")
            .body(Full::new(body).map_err(|never| match never {}).boxed())
            .unwrap()
    }

    fn truncated(body: Bytes) -> Response<Body> {
        let half = body.slice(..body.len() / 2);
        let frames = stream::iter(vec![
            Ok(Frame::data(half)),
            Err(std::io::Error::other("connection reset")),
        ]);
        Response::builder()
            .header("content-length", body.len())
            .header("etag", "\"ignored\"")
            .body(BodyExt::boxed(StreamBody::new(frames)))
            .unwrap()
    }
}

/// The report of one object `clip.mov` in bucket `b`, for the flaky stand-in.
fn single_object_report(size: usize) -> Vec<u8> {
    let now = time::OffsetDateTime::now_utc();
    serde_json::to_vec(&Report {
        job_id: "flaky".into(),
        project_id: "4711".into(),
        prefix: "p/".into(),
        local_base: None,
        tier: RetrievalTier::Bulk,
        state: JobState::Completed,
        created_at: now,
        finished_at: now,
        totals: ReportTotals::default(),
        cost_cents: 0,
        objects: vec![ReportObject {
            bucket: "b".into(),
            key: "clip.mov".into(),
            version_id: None,
            size: size as u64,
            storage_class: StorageClass::Glacier,
            state: serde_json::from_value(json!("restored")).unwrap(),
            expiry: None,
            error: None,
        }],
    })
    .unwrap()
}

async fn flaky_client(endpoint: &str) -> aws_sdk_s3::Client {
    let config = integration_tests::aws_config().await;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .endpoint_url(endpoint)
            .force_path_style(true)
            .build(),
    )
}

#[tokio::test]
async fn a_dropped_connection_mid_body_is_retried_and_leaves_no_partial_file() {
    let f = Fixture::new().await;
    let object = content(3 * MIB, 4);
    let md5: [u8; 16] = Md5::digest(&object).into();
    let md5: String = md5.iter().map(|b| format!("{b:02x}")).collect();
    let server = flaky_s3::start(
        single_object_report(object.len()),
        object.clone(),
        md5,
        flaky_s3::Fault::TruncateFirst,
    )
    .await;
    let s3 = flaky_client(&server.endpoint).await;
    let config = WorkerConfig::new(
        S3Location::parse("s3://m/flaky/report.json").unwrap(),
        &f.base,
    );
    let summary = run(&s3, &config).await.unwrap();
    assert!(summary.is_success(), "{summary:#?}");
    assert_eq!(summary.copied, ["clip.mov"]);
    assert!(
        server.object_gets.load(std::sync::atomic::Ordering::SeqCst) >= 2,
        "the truncated download was retried"
    );
    assert_eq!(std::fs::read(f.path("clip.mov")).unwrap(), object);
    assert_eq!(files_under(&f.base), ["clip.mov"], "no .part left behind");
}

#[tokio::test]
async fn content_not_matching_its_md5_etag_is_never_published() {
    let f = Fixture::new().await;
    let object = content(100_000, 5);
    let server = flaky_s3::start(
        single_object_report(object.len()),
        object,
        String::new(),
        flaky_s3::Fault::WrongEtag,
    )
    .await;
    let s3 = flaky_client(&server.endpoint).await;
    let config = WorkerConfig::new(
        S3Location::parse("s3://m/flaky/report.json").unwrap(),
        &f.base,
    );
    let summary = run(&s3, &config).await.unwrap();
    assert!(!summary.is_success());
    assert_eq!(keys(&summary.failed), ["clip.mov"]);
    assert!(
        summary.failed[0].reason.contains("MD5"),
        "{:?}",
        summary.failed[0]
    );
    assert_eq!(
        server.object_gets.load(std::sync::atomic::Ordering::SeqCst),
        3,
        "3 attempts"
    );
    assert!(
        files_under(&f.base).is_empty(),
        "nothing published, no .part left"
    );
}
