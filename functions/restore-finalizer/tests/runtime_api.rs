//! The real `restore-finalizer` binary driven through a loopback Lambda Runtime API against the
//! emulator: a table-stream batch finalizes a complete job (manifest in S3, mail over SMTP to
//! aiosmtpd) once however often it comes, and a missing required variable stops it at init
//! with the variable's name.

use std::process::{Command, Stdio};
use std::time::Duration;

use integration_tests::{
    job_store, moto_endpoint, restoring_job, s3_client, unique_name, workspace_root,
    InvocationResult, LambdaRuntimeFake, SmtpSink,
};
use serde_json::json;
use shared::domain::job::Settlement;
use shared::domain::state::{JobState, ObjectState};
use shared::ports::JobStore;

struct Function(std::process::Child);

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(name: &str, runtime: &LambdaRuntimeFake, env: &[(&str, String)]) -> Function {
    let mut command = Command::new(env!("CARGO_BIN_EXE_restore-finalizer"));
    command
        .envs(runtime.env(name))
        .env("AWS_ENDPOINT_URL", moto_endpoint())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("RUST_LOG", "warn")
        .current_dir(workspace_root())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    Function(command.spawn().expect("start function"))
}

#[test]
fn finalizer_binary_finalizes_from_a_stream_batch_and_mails_over_smtp() {
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let store = tokio.block_on(job_store());
    let manifests = unique_name("manifests");
    tokio.block_on(async {
        s3_client()
            .await
            .create_bucket()
            .bucket(&manifests)
            .send()
            .await
            .unwrap();
    });
    let job = unique_name("job");
    tokio.block_on(async {
        restoring_job(
            &store,
            &job,
            "77",
            "editor@example.com",
            "media",
            &[("F/a b.mov", 9)],
        )
        .await;
        let object = store
            .get_objects(&job, &["F/a b.mov".into()])
            .await
            .unwrap()
            .remove(0)
            .unwrap();
        store
            .settle(
                &object,
                &Settlement {
                    state: ObjectState::Restored,
                    expiry: None,
                    error: None,
                },
            )
            .await
            .unwrap();
    });
    let sink = SmtpSink::start();
    let runtime = LambdaRuntimeFake::start();
    let _function = start(
        "restore-finalizer",
        &runtime,
        &[
            ("JOBS_TABLE", store.table().to_string()),
            ("MANIFEST_BUCKET", manifests.clone()),
            ("SMTP_HOST", "127.0.0.1".into()),
            ("SMTP_PORT", sink.port.to_string()),
            ("SMTP_FROM", "restore@example.com".into()),
            ("NOTIFICATION_EMAIL", "media-ops@example.com".into()),
            (
                "PLUTO_PROJECT_URL",
                "https://pluto.example.com/project/".into(),
            ),
        ],
    );
    let batch = json!({"Records": [{
        "eventID": "1", "eventName": "MODIFY", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
        "dynamodb": {"Keys": {"pk": {"S": format!("JOB#{job}")}, "sk": {"S": "COUNT#0001"}},
                     "SequenceNumber": "1", "SizeBytes": 10, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    }]});
    for _ in 0..2 {
        let id = runtime.push(&batch);
        assert_eq!(
            runtime.wait_result(&id, Duration::from_secs(30)),
            InvocationResult::Response(serde_json::Value::Null)
        );
    }
    let view = tokio.block_on(store.get_job(&job)).unwrap().unwrap();
    assert_eq!(view.job.state, JobState::Completed);
    assert_eq!(
        view.job.manifest,
        Some(format!("s3://{manifests}/{job}/report.json"))
    );
    let messages = sink.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(
        messages[0]["rcpt_tos"],
        json!(["media-ops@example.com", "editor@example.com"])
    );
}

#[test]
fn finalizer_binary_names_a_missing_variable_at_init() {
    let runtime = LambdaRuntimeFake::start();
    let mut function = start(
        "restore-finalizer",
        &runtime,
        &[("SMTP_FROM", "restore@example.com".into())],
    );
    let child = &mut function.0;
    let status = child.wait().unwrap();
    assert!(!status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("MANIFEST_BUCKET"), "{stderr}");
}
