//! `scripts/emulator.sh run -- CMD`, which `make local` relies on: the command sees a live
//! emulator in `AWS_ENDPOINT_URL`, its exit status is passed on, and the server is gone after.

use std::net::TcpStream;
use std::process::Command;

use integration_tests::workspace_root;

fn run(command: &str) -> (Option<i32>, String) {
    let output = Command::new(workspace_root().join("scripts/emulator.sh"))
        .args(["run", "--", "sh", "-c", command])
        .env_remove("MOTO_PORT")
        .output()
        .expect("run scripts/emulator.sh");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

fn address(endpoint: &str) -> String {
    endpoint.trim().trim_start_matches("http://").to_owned()
}

#[test]
fn run_serves_the_command_and_stops_the_server_after() {
    // The command checks the server answers, then prints the endpoint.
    let (status, stdout) = run(
        r#"python3 -c "import urllib.request,os; urllib.request.urlopen(os.environ['AWS_ENDPOINT_URL'] + '/moto-api/')" && echo "$AWS_ENDPOINT_URL""#,
    );
    assert_eq!(status, Some(0), "{stdout}");
    let endpoint = stdout.lines().last().expect("endpoint printed").to_owned();
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
    assert!(
        TcpStream::connect(address(&endpoint)).is_err(),
        "moto at {endpoint} must be stopped when the command ends"
    );
}

#[test]
fn run_passes_on_the_command_failure_and_still_stops_the_server() {
    let (status, stdout) = run(r#"echo "$AWS_ENDPOINT_URL"; exit 7"#);
    assert_eq!(status, Some(7));
    let endpoint = stdout.lines().last().expect("endpoint printed").to_owned();
    assert!(TcpStream::connect(address(&endpoint)).is_err());
}

#[test]
fn run_without_a_command_is_a_usage_error() {
    let output = Command::new(workspace_root().join("scripts/emulator.sh"))
        .args(["run", "--"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("usage"));
}
