//! `openapi.yaml` against the code: schemathesis (PyPI, in `./.venv-schemathesis`, installed by
//! `scripts/tools.sh schemathesis`) runs its examples, coverage, fuzzing and stateful phases
//! against `restore-local serve` (the Lambda's very handler on loopback) with moto behind it,
//! and every check must pass: no 5xx, only documented status codes, bodies and headers matching
//! the schemas, schema-invalid input rejected, wrong methods answered 405.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::StorageClass;
use integration_tests::{moto_endpoint, s3_client, unique_name, verify_sender};

/// This checkout's root (see `sample_events.rs` on why not the library's).
fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Kills the server when the test ends, whatever happens.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn api_matches_openapi_document() {
    let root = workspace_root();
    let schemathesis = root.join(".venv-schemathesis/bin/schemathesis");
    assert!(
        schemathesis.exists(),
        "{} is missing: run `scripts/tools.sh schemathesis` (or `make test`)",
        schemathesis.display()
    );

    // Objects under the documented example path, in the archive classes the API plans for.
    let s3 = s3_client().await;
    let (first, second) = (unique_name("oas-a"), unique_name("oas-b"));
    for bucket in [&first, &second] {
        s3.create_bucket().bucket(bucket).send().await.unwrap();
    }
    for (bucket, key, class) in [
        (&first, "project-4242/reel1.mov", StorageClass::Glacier),
        (&first, "project-4242/still.tif", StorageClass::Standard),
        (&second, "project-4242/mix.wav", StorageClass::DeepArchive),
    ] {
        s3.put_object()
            .bucket(bucket)
            .key(key)
            .storage_class(class)
            .body(ByteStream::from_static(b"media"))
            .send()
            .await
            .unwrap();
    }
    let sender = "restore@example.com";
    verify_sender(sender).await;

    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "-p", "restore-local"])
        .current_dir(&root)
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build -p restore-local failed");
    let exe = std::env::current_exe().unwrap();
    let binary = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("restore-local");

    let mut child = Command::new(binary)
        .arg("serve")
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("AWS_ENDPOINT_URL", moto_endpoint())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("JOBS_TABLE", unique_name("oas-jobs"))
        .env("ASSET_BUCKET_LIST", format!("{first},{second}"))
        .env("ALLOWED_USERS", "editor@example.com")
        .env("NOTIFICATION_EMAIL", "approver@example.com")
        .env("SMTP_FROM", sender)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start restore-local serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _server = Server(child);
    let url = line
        .trim()
        .strip_prefix("restore-local: serving ")
        .unwrap_or_else(|| panic!("unexpected first line from serve: {line:?}"))
        .to_string();

    let output = Command::new(&schemathesis)
        .arg("run")
        .arg(root.join("openapi.yaml"))
        .args(["--url", &url])
        .args(["--checks", "all"])
        // Not "every schema-valid body is accepted": a path's meaning (no `..`, not a whole
        // bucket, no control characters) and a mail address's shape are rules JSON Schema
        // can't state; the document lists those answers (400 / 422) instead.
        .args(["--exclude-checks", "positive_data_acceptance"])
        .args(["--max-examples", "30"])
        .args(["--seed", "20261125"])
        .args(["--request-timeout", "20"])
        .arg("--no-color")
        .env("SCHEMATHESIS_HOOKS", "")
        .current_dir(std::env::temp_dir())
        .output()
        .expect("run schemathesis");
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "schemathesis found disagreements:\n{report}"
    );
    // Every operation was exercised (a typo in a path would make schemathesis skip it).
    for expected in ["Selected: 7/7", "Tested: 7", "No issues found"] {
        assert!(report.contains(expected), "{expected:?} missing:\n{report}");
    }
}
