//! `restore-local serve` as a process on a loopback port, spoken to over real HTTP: the same
//! handler as the Lambda, the table created at start, big jobs continued in the background.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use integration_tests::{moto_endpoint, s3_client, unique_name};
use serde_json::{json, Value};

struct Server {
    child: Child,
    address: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(bucket: &str, table: &str) -> Server {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_restore-local"))
        .arg("serve")
        .env("RUST_LOG", "warn")
        .env("LISTEN_ADDR", &address)
        .env("AWS_ENDPOINT_URL", moto_endpoint())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ROLE_ARN")
        .env_remove("SMTP_HOST")
        .env("ASSET_BUCKET_LIST", bucket)
        .env("JOBS_TABLE", table)
        .env("ALLOWED_USERS", "editor@example.com")
        .env("SMTP_FROM", "restore@example.com")
        // Answer at once and leave every page to the background fan-out, two keys a page.
        .env("API_PLAN_BUDGET_MS", "1")
        .env("FANOUT_PAGE_SIZE", "2")
        .stdout(Stdio::null())
        .spawn()
        .expect("start restore-local serve");
    let server = Server { child, address };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(&server.address).is_err() {
        assert!(
            Instant::now() < deadline,
            "restore-local serve did not listen"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

/// One HTTP/1.1 exchange; returns status and JSON body.
fn exchange(address: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let mut stream = TcpStream::connect(address).unwrap();
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let content_type = if body.is_some() {
        "Content-Type: application/json\r\n"
    } else {
        ""
    };
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\n{content_type}Content-Length: {}\r\n\
         Connection: close\r\n\r\n{payload}",
        payload.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").expect("HTTP answer");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).expect("JSON body"))
}

#[tokio::test]
async fn serves_the_api_over_http_and_finishes_the_fan_out_in_the_background() {
    let bucket = unique_name("serve");
    let s3 = s3_client().await;
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    for i in 0..5 {
        s3.put_object()
            .bucket(&bucket)
            .key(format!("proj/clip-{i}.mov"))
            .storage_class(aws_sdk_s3::types::StorageClass::Glacier)
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b"media"))
            .send()
            .await
            .unwrap();
    }
    let server = start(&bucket, &unique_name("serve-jobs"));
    let address = server.address.clone();

    let (status, body) = exchange(&address, "GET", "/health", None);
    assert_eq!((status, body), (200, json!({"status": "ok"})));
    let (status, body) = exchange(&address, "DELETE", "/health", None);
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (405, json!("method_not_allowed"))
    );

    let request = json!({"id": 12, "user": "editor@example.com", "path": "/mnt/Assets/proj/", "retrievalType": "Bulk"});
    let (status, body) = exchange(&address, "POST", "/api/v1/restore", Some(&request));
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        body["status"], "planning",
        "answered before the listing ended"
    );
    let link = body["link"].as_str().unwrap().to_string();

    // Three pages of two keys, continued by the server's background fan-out.
    let deadline = Instant::now() + Duration::from_secs(60);
    let done = loop {
        let (status, body) = exchange(&address, "GET", &link, None);
        assert_eq!(status, 200);
        if body["status"] == "restoring" {
            break body;
        }
        assert!(Instant::now() < deadline, "fan-out never finished: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(done["objects"]["total"], 5);
    assert_eq!(done["objects"]["requested"], 5);
    assert_eq!(done["listingDone"], true);
    for i in 0..5 {
        let head = s3
            .head_object()
            .bucket(&bucket)
            .key(format!("proj/clip-{i}.mov"))
            .send()
            .await
            .unwrap();
        assert!(head.restore().is_some(), "clip-{i} restore requested");
    }
    // Idempotent: the active job comes back.
    let (status, again) = exchange(&address, "POST", "/api/v1/restore", Some(&request));
    assert_eq!((status, again["id"].clone()), (200, done["id"].clone()));
}
