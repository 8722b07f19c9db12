//! Running the other tools (rclone, s3cmd, our own binaries) as child processes, and the SDK
//! configurations the harness builds for the emulator and the latency endpoint.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Credentials every endpoint of the harness accepts (moto takes any; ours checks none).
pub const ACCESS_KEY: &str = "bench";
pub const SECRET_KEY: &str = "bench-secret";

/// Variables that would point a child at other credentials or CAs. rclone 1.60's S3 backend
/// refuses to start while `AWS_CA_BUNDLE` is set, so every tool runs without it.
const SCRUBBED: &[&str] = &[
    "AWS_CA_BUNDLE",
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ENDPOINT_URL",
];

/// A command with a scrubbed environment.
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    for var in SCRUBBED {
        cmd.env_remove(var);
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// Runs `cmd` to completion; the wall time, or an error with the tail of its output.
pub fn timed(mut cmd: Command, what: &str) -> Result<Duration, String> {
    let start = Instant::now();
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    let took = start.elapsed();
    if !out.status.success() {
        let tail = |b: &[u8]| {
            let s = String::from_utf8_lossy(b);
            s.lines().rev().take(8).collect::<Vec<_>>().join(" | ")
        };
        return Err(format!(
            "{what} failed ({}): {} {}",
            out.status,
            tail(&out.stderr),
            tail(&out.stdout)
        ));
    }
    Ok(took)
}

/// `rclone` with an S3 remote named `bench` at `endpoint`, configured through its environment.
pub fn rclone(endpoint: &str) -> Command {
    let mut cmd = command("rclone");
    for (k, v) in [
        ("TYPE", "s3"),
        ("PROVIDER", "Other"),
        ("ENDPOINT", endpoint),
        ("ACCESS_KEY_ID", ACCESS_KEY),
        ("SECRET_ACCESS_KEY", SECRET_KEY),
        ("REGION", "us-east-1"),
        ("FORCE_PATH_STYLE", "true"),
        ("LIST_VERSION", "2"),
    ] {
        cmd.env(format!("RCLONE_CONFIG_BENCH_{k}"), v);
    }
    cmd.env("RCLONE_CONFIG", "/dev/null");
    cmd
}

/// `s3cmd` with a config file (in `dir`) for `endpoint`, path-style, plain HTTP.
pub fn s3cmd(endpoint: &str, dir: &Path) -> std::io::Result<Command> {
    let host = endpoint.trim_start_matches("http://");
    let config = dir.join("s3cmd.cfg");
    std::fs::write(
        &config,
        format!(
            "[default]\naccess_key = {ACCESS_KEY}\nsecret_key = {SECRET_KEY}\nhost_base = {host}\n\
             host_bucket = {host}\nuse_https = False\nbucket_location = us-east-1\n\
             signature_v2 = False\nprogress_meter = False\n"
        ),
    )?;
    let mut cmd = command("s3cmd");
    cmd.arg("-c").arg(config);
    Ok(cmd)
}

/// Where cargo puts release binaries (`CARGO_TARGET_DIR` or `target/`).
pub fn release_binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("release").join(name)
}

/// A configuration of ours (`shared::config::Config`) from `pairs`, as a Lambda would read it.
pub fn config(pairs: &[(&str, String)]) -> shared::Result<shared::config::Config> {
    let lookup = lookup(pairs);
    shared::config::Config::from_lookup(lookup, &[])
}

/// The settings a job store and the completion side need: `table`, with every AWS call
/// going to `endpoint` under the harness's credentials.
pub fn store_pairs(table: &str, endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("JOBS_TABLE", table.to_string()),
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ("AWS_DEFAULT_REGION", "us-east-1".to_string()),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_string()),
    ]
}

/// An environment lookup over `pairs`.
pub fn lookup<'a>(pairs: &'a [(&'a str, String)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    }
}

/// The emulator's endpoint (`MOTO_ENDPOINT`, set by `scripts/emulator.sh run`).
pub fn moto_endpoint() -> Result<String, String> {
    std::env::var("MOTO_ENDPOINT")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .map_err(|_| "MOTO_ENDPOINT is not set: run under `scripts/emulator.sh run --`".into())
}

/// A number from the environment, or `default`.
pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}
