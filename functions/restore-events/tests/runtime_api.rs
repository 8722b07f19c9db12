//! The real `restore-events` binary driven through a loopback Lambda Runtime API: what Lambda
//! would hand it and what it answers.

use std::process::{Command, Stdio};
use std::time::Duration;

use integration_tests::{workspace_root, InvocationResult, LambdaRuntimeFake};
use serde_json::{json, Value};

fn sample(name: &str) -> Value {
    let text = std::fs::read_to_string(workspace_root().join("events").join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Kills the function process when the test ends, whatever happens.
struct Function(std::process::Child);

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn binary_answers_sqs_direct_and_bad_events() {
    let runtime = LambdaRuntimeFake::start();
    // The function tallies into a jobs table on the emulator.
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let store = tokio.block_on(integration_tests::job_store());
    let table = store.table().to_string();
    let _function = Function(
        Command::new(env!("CARGO_BIN_EXE_restore-events"))
            .envs(runtime.env("restore-events"))
            .env("AWS_ENDPOINT_URL", integration_tests::moto_endpoint())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("JOBS_TABLE", &table)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start restore-events"),
    );
    let wait = |id: &str| runtime.wait_result(id, Duration::from_secs(30));

    // SQS batch: all good → empty partial batch response.
    let id = runtime.push(&sample("sqs-s3-restore-completed.json"));
    assert_eq!(
        wait(&id),
        InvocationResult::Response(json!({"batchItemFailures": []}))
    );

    // SQS batch with a broken message: only that one is named.
    let mut batch = sample("sqs-s3-restore-completed.json");
    batch["Records"][1]["body"] = json!("{truncated");
    let id = runtime.push(&batch);
    assert_eq!(
        wait(&id),
        InvocationResult::Response(json!({"batchItemFailures": [
            {"itemIdentifier": "3f2c8a47-7e84-4c53-9d3a-7b1f0e0f6a02"}
        ]}))
    );

    // Direct S3 and EventBridge invocations.
    for name in [
        "s3-restore-completed.json",
        "eventbridge-restore-completed.json",
    ] {
        let id = runtime.push(&sample(name));
        assert_eq!(
            wait(&id),
            InvocationResult::Response(json!({"completed": 1, "ignored": 0})),
            "{name}"
        );
    }

    // Not an event of ours: an error the runtime reports (and the process keeps serving).
    let id = runtime.push(&json!({"hello": "world"}));
    let InvocationResult::Error(error) = wait(&id) else {
        panic!("expected an error")
    };
    assert!(error.to_string().contains("unrecognised event"), "{error}");
    let id = runtime.push(&sample("s3-restore-completed.json"));
    assert!(matches!(wait(&id), InvocationResult::Response(_)));

    // No job waits for these objects: the tally kept the completion as an early event, in
    // the table, with the key decoded.
    use shared::ports::JobStore;
    let early = tokio
        .block_on(store.get_early_event(
            "pluto-assets",
            "Project 42/Assets/Café Rushes/take 1+2, 100%.mov",
        ))
        .unwrap();
    assert!(early.is_some(), "completion not recorded in {table}");
}
