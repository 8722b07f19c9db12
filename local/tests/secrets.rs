//! Security of a whole run: `restore-local serve` (API, fan-out, completion pipeline,
//! finalizer) runs against the emulator with secret-looking AWS credentials and a session
//! token in its environment and `RUST_LOG=debug`; a restore of `proj/` is submitted next to
//! a neighbouring `proj2/` and followed to the end. Then every captured log line must be JSON,
//! name no credential and no signed or presigned URL part, the mail (real SMTP server on
//! loopback) neither, and the manifest and report list only the job's own prefix.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::StorageClass as SdkClass;
use integration_tests::{moto_endpoint, s3_client, unique_name, SmtpSink};
use serde_json::Value;

const ACCESS_KEY: &str = "AKIAZ7EXAMPLESECRETID";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzSECRETKEY";
const SESSION_TOKEN: &str = "FwoGZXIvYXdzEXAMPLESESSIONTOKENsecret0123456789";

fn http(address: &str, method: &str, path: &str, body: &str) -> (u16, Value) {
    let mut stream = TcpStream::connect(address).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

async fn get_text(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> String {
    let object = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    String::from_utf8(object.body.collect().await.unwrap().into_bytes().to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_run_leaks_no_credentials_and_stays_in_its_prefix() {
    let s3 = s3_client().await;
    let (assets, manifests) = (unique_name("sec-assets"), unique_name("sec-manifests"));
    for bucket in [&assets, &manifests] {
        s3.create_bucket().bucket(bucket).send().await.unwrap();
    }
    for key in [
        "proj/a.mov",
        "proj/sub/b c.mov",
        "proj2/neighbour.mov",
        "proj2/sub/other.mov",
        "pro/short.mov",
    ] {
        s3.put_object()
            .bucket(&assets)
            .key(key)
            .storage_class(SdkClass::Glacier)
            .body(ByteStream::from_static(b"media"))
            .send()
            .await
            .unwrap();
    }
    let sink = SmtpSink::start();
    let address = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let logs = std::env::temp_dir().join(unique_name("secrets-log"));
    let log_file = std::fs::File::create(&logs).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_restore-local"))
        .arg("serve")
        .env("RUST_LOG", "debug")
        .env("LISTEN_ADDR", &address)
        .env("AWS_ENDPOINT_URL", moto_endpoint())
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_SESSION_TOKEN", SESSION_TOKEN)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ROLE_ARN")
        .env("ASSET_BUCKET_LIST", &assets)
        .env("MANIFEST_BUCKET", &manifests)
        .env("JOBS_TABLE", unique_name("sec-jobs"))
        .env("ALLOWED_USERS", "editor@example.com")
        .env("NOTIFICATION_EMAIL", "media-ops@example.com")
        .env("SMTP_HOST", "127.0.0.1")
        .env("SMTP_PORT", sink.port.to_string())
        .env("SMTP_TLS", "none")
        .env("SMTP_FROM", "restore@example.com")
        .env("PLUTO_PROJECT_URL", "https://pluto.example.com/project/")
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    // The JSON logs go to stdout, errors to stderr: both are captured.
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(&address).is_err() {
        assert!(Instant::now() < deadline, "restore-local did not start");
        assert!(child.try_wait().unwrap().is_none(), "restore-local exited");
        std::thread::sleep(Duration::from_millis(100));
    }

    // A user outside ALLOWED_USERS is refused on both restore routes.
    let body = |user: &str| {
        format!(
            r#"{{"id": 8080, "user": "{user}", "path": "/srv/Assets/proj/", "retrievalType": "Bulk"}}"#
        )
    };
    for route in ["/api/v1/restore", "/restore"] {
        let (status, answer) = http(&address, "POST", route, &body("intruder@example.com"));
        assert_eq!(status, 403, "{route}: {answer}");
        assert_eq!(answer["error"]["code"], "user_not_allowed");
    }
    let (status, job) = http(
        &address,
        "POST",
        "/api/v1/restore",
        &body("editor@example.com"),
    );
    assert_eq!(status, 202, "{job}");
    let job_id = job["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(120);
    let finished = loop {
        let (_, view) = http(&address, "GET", &format!("/api/v1/restore/{job_id}"), "");
        if view["status"] == "completed" && !sink.messages().is_empty() {
            break view;
        }
        assert!(Instant::now() < deadline, "job did not finish: {view}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(finished["objects"]["total"], 2, "{finished}");

    // Logs: JSON, with the job id, without secrets or signatures.
    let text = std::fs::read_to_string(&logs).unwrap();
    let _ = std::fs::remove_file(&logs);
    // Besides the JSON logs, `serve` prints console lines of its own ("restore-local: serving
    // …", "restore-local pipeline: …"): left out of the JSON check, not of the secrets scan.
    let all_lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let lines: Vec<&str> = all_lines
        .iter()
        .copied()
        .filter(|l| !l.starts_with("restore-local"))
        .collect();
    assert!(lines.len() > 20, "a run logs: {text}");
    let mut with_job = 0;
    for line in &lines {
        let parsed: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        if line.contains(&job_id) {
            with_job += 1;
        }
        assert!(parsed["level"].is_string(), "{line}");
    }
    assert!(with_job > 5, "log lines name the job");
    let forbidden = [
        SECRET_KEY,
        SESSION_TOKEN,
        ACCESS_KEY,
        "X-Amz-Signature",
        "X-Amz-Credential",
        "X-Amz-Security-Token",
        "AWS4-HMAC-SHA256 Credential",
        "Signature=",
    ];
    for needle in forbidden {
        let hit = all_lines.iter().find(|l| l.contains(needle));
        assert!(hit.is_none(), "{needle:?} in the logs: {}", hit.unwrap());
    }

    // The mail: one, to the requester and the operators, without secrets or signed URLs.
    let mails = sink.messages();
    assert_eq!(mails.len(), 1);
    let mail = mails[0].to_string();
    for needle in forbidden {
        assert!(!mail.contains(needle), "{needle:?} in the mail: {mail}");
    }
    assert!(mail.contains("8080"), "{mail}");

    // Manifest and report: the job's prefix only, never its neighbours `proj2/` or `pro/`.
    let csv = get_text(
        &s3,
        &manifests,
        &shared::domain::manifest::manifest_csv_key(&job_id),
    )
    .await;
    let mut keys: Vec<&str> = csv.lines().map(|l| l.split_once(',').unwrap().1).collect();
    keys.sort();
    assert_eq!(keys, vec!["proj/a.mov", "proj/sub/b%20c.mov"], "{csv}");
    let report: Value = serde_json::from_str(
        &get_text(
            &s3,
            &manifests,
            &shared::domain::manifest::report_json_key(&job_id),
        )
        .await,
    )
    .unwrap();
    let report_text = report.to_string();
    assert!(!report_text.contains("proj2/") && !report_text.contains("pro/short"));
    for needle in forbidden {
        assert!(!report_text.contains(needle), "{needle:?} in the report");
    }
}
