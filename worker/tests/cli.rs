//! The `restore-worker` binary end to end against moto: exit codes, the JSON summary on
//! stdout, and a real crash (SIGKILL) in the middle of a copy followed by a resumed run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use integration_tests::{moto_endpoint, s3_client, unique_name};
use serde_json::{json, Value};
use shared::domain::state::{JobState, ObjectState};
use shared::domain::storage::{RetrievalTier, StorageClass};

const BIN: &str = env!("CARGO_BIN_EXE_restore-worker");

struct Setup {
    s3: aws_sdk_s3::Client,
    bucket: String,
    manifest: String,
    base: PathBuf,
}

impl Setup {
    async fn new(objects: &[(&str, Vec<u8>)], listed: &[&str]) -> Self {
        let s3 = s3_client().await;
        let bucket = unique_name("cli-assets");
        s3.create_bucket().bucket(&bucket).send().await.unwrap();
        for (key, body) in objects {
            s3.put_object()
                .bucket(&bucket)
                .key(*key)
                .body(ByteStream::from(body.clone()))
                .send()
                .await
                .unwrap();
        }
        let report = json!({
            "job_id": "cli-job", "project_id": "4711", "prefix": "p/",
            "tier": RetrievalTier::Bulk, "state": JobState::Completed,
            "created_at": "2026-11-25T01:00:00Z", "finished_at": "2026-11-25T03:00:00Z",
            "totals": {"objects": listed.len(), "bytes": 0, "restored": listed.len(),
                       "not_needed": 0, "failed": 0},
            "cost_cents": 0,
            "objects": listed.iter().map(|key| json!({
                "bucket": bucket, "key": key, "size": 0,
                "storage_class": StorageClass::Glacier, "state": ObjectState::Restored})).collect::<Vec<_>>()
        });
        s3.put_object()
            .bucket(&bucket)
            .key("cli-job/report.json")
            .body(ByteStream::from(report.to_string().into_bytes()))
            .send()
            .await
            .unwrap();
        let base = std::env::temp_dir().join(unique_name("cli-base"));
        std::fs::create_dir_all(&base).unwrap();
        let manifest = format!("s3://{bucket}/cli-job/report.json");
        Setup {
            s3,
            bucket,
            manifest,
            base,
        }
    }

    fn command(&self) -> Command {
        let mut command = Command::new(BIN);
        command
            .env_clear()
            .env("AWS_ENDPOINT_URL", moto_endpoint())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("S3_FORCE_PATH_STYLE", "true")
            .env("RUST_LOG", "warn")
            .env("BASE_PATH", &self.base)
            .env("JOB_ID", "cli-job")
            .args(["--manifest", &self.manifest])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    fn run(&self) -> (i32, Value) {
        let output = self.command().output().unwrap();
        (output.status.code().unwrap(), summary(&output))
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// The last stdout line: the JSON summary (log lines before it are JSON too).
fn summary(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn parts_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().ends_with(".part"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn misconfiguration_exits_2_with_a_json_error() {
    let output = Command::new(BIN)
        .env_clear()
        .env("BASE_PATH", "/tmp")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let error = summary(&output);
    assert_eq!(error["error"]["code"], "configuration_error");
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .contains("MANIFEST_URI"));
}

#[tokio::test]
async fn failures_exit_1_listing_each_object_and_a_fixed_rerun_exits_0() {
    let setup = Setup::new(
        &[("p/a.txt", b"alpha".to_vec())],
        &["p/a.txt", "p/missing.txt"],
    )
    .await;
    let (code, summary) = setup.run();
    assert_eq!(code, 1, "{summary}");
    assert_eq!(summary["copied"], json!(["p/a.txt"]));
    assert_eq!(summary["failed"][0]["key"], "p/missing.txt");
    assert!(summary["failed"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("NoSuchKey"));

    setup
        .s3
        .put_object()
        .bucket(&setup.bucket)
        .key("p/missing.txt")
        .body(ByteStream::from_static(b"found"))
        .send()
        .await
        .unwrap();
    let (code, summary) = setup.run();
    assert_eq!(code, 0, "{summary}");
    assert_eq!(summary["copied"], json!(["p/missing.txt"]));
    assert_eq!(summary["skipped"], json!(["p/a.txt"]));
    assert_eq!(
        std::fs::read(setup.base.join("p/missing.txt")).unwrap(),
        b"found"
    );
}

#[tokio::test]
async fn killed_mid_copy_then_rerun_completes() {
    let big: Vec<u8> = (0..64 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let setup = Setup::new(&[("p/big.bin", big.clone())], &["p/big.bin"]).await;
    let mut child: Child = setup
        .command()
        .env("WORKER_CONCURRENCY", "1")
        .spawn()
        .unwrap();
    let dir = setup.base.join("p");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let growing = parts_in(&dir)
            .iter()
            .any(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0));
        if growing {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "worker finished before it could be killed"
        );
        assert!(Instant::now() < deadline, "no partial download seen");
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap(); // SIGKILL: no cleanup code runs
    child.wait().unwrap();
    assert_eq!(parts_in(&dir).len(), 1, "the crash left its partial file");
    assert!(
        !dir.join("big.bin").exists(),
        "nothing under the final name"
    );

    // The resumed run, watching its peak memory while it copies.
    let mut child = setup.command().spawn().unwrap();
    let mut peak_kib = 0;
    while child.try_wait().unwrap().is_none() {
        peak_kib = peak_kib.max(peak_rss_kib(child.id()).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(2));
    }
    let output = child.wait_with_output().unwrap();
    let summary = summary(&output);
    assert_eq!(output.status.code(), Some(0), "{summary}");
    assert_eq!(summary["copied"], json!(["p/big.bin"]));
    assert_eq!(summary["stale_parts_removed"], 1);
    assert!(parts_in(&dir).is_empty());
    assert!(std::fs::read(dir.join("big.bin")).unwrap() == big);
    // Streaming: the 64 MiB object never sat in the worker's memory.
    assert!(peak_kib > 0, "peak memory not observed");
    assert!(
        peak_kib < 40 * 1024,
        "the worker peaked at {} MiB copying a 64 MiB object",
        peak_kib / 1024
    );
}

/// Peak resident set (`VmHWM`) of a running process, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test]
async fn aws_role_arn_is_assumed_before_copying() {
    let setup = Setup::new(&[("p/a.txt", b"alpha".to_vec())], &["p/a.txt"]).await;
    let output = setup
        .command()
        .env(
            "AWS_ROLE_ARN",
            "arn:aws:iam::123456789012:role/restore-worker",
        )
        .env("RUST_LOG", "aws_config=debug,warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert_eq!(summary(&output)["copied"], json!(["p/a.txt"]));
    assert!(
        stdout.contains("obtained assumed credentials"),
        "no sign of the role being assumed: {stdout}"
    );
}
