//! Cold start: each function binary (release build) from process start to its first poll of
//! the Runtime API, and its peak RSS at that point, against a bare `lambda_runtime` hello
//! binary (`bench/src/bin/bench-hello.rs`) built the same way. The binaries get the CA bundle
//! setting template.yaml gives them on Lambda (`SSL_CERT_FILE`); a second column shows them
//! without it.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::report::{median, ratio, write_fragment, Table};
use crate::runtime_fake::RuntimeFake;
use crate::tools::{self, env_number};

const HELLO: &str = "bench-hello";
const FUNCTIONS: &[&str] = &[
    "restore-api",
    "restore-fanout",
    "restore-events",
    "restore-finalizer",
    "restore-sweeper",
];

/// Peak resident set (`VmHWM`) of a live process, in KiB.
fn peak_rss_kib(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no VmHWM in /proc/{pid}/status"))
}

/// The system CA bundle the binaries are pointed at with `SSL_CERT_FILE`, as template.yaml
/// does on Lambda: Amazon Linux's path when this machine has it, else Debian's.
const CA_BUNDLES: &[&str] = &[
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/certs/ca-certificates.crt",
];

fn ca_bundle() -> Option<&'static str> {
    CA_BUNDLES
        .iter()
        .copied()
        .find(|p| std::path::Path::new(p).is_file())
}

/// One cold start of `binary`: (time to first poll, peak RSS KiB). With `ca_bundle` the
/// binary gets `SSL_CERT_FILE` as on Lambda (template.yaml); without it neither variable is
/// set and the SDK probes the system (bundle file and certificate directory).
async fn once(
    fake: &mut RuntimeFake,
    binary: &str,
    moto: &str,
    ca_bundle: Option<&str>,
) -> Result<(Duration, u64), String> {
    let path = tools::release_binary(binary);
    let mut cmd = tools::command(&path);
    // Lambda sets neither; a developer's shell may.
    cmd.env_remove("SSL_CERT_FILE").env_remove("SSL_CERT_DIR");
    if let Some(bundle) = ca_bundle {
        cmd.env("SSL_CERT_FILE", bundle);
    }
    cmd.envs(fake.env(binary))
        // What the functions need to get past init (see README "Configuration").
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", tools::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", tools::SECRET_KEY)
        .env("AWS_ENDPOINT_URL", moto)
        .env("ASSET_BUCKET_LIST", "bench-assets")
        .env("MANIFEST_BUCKET", "bench-manifests")
        .env("JOBS_TABLE", "restore-jobs")
        .env("ALLOWED_USERS", "bench@example.com")
        .env("NOTIFICATION_EMAIL", "ops@example.com")
        .env("SMTP_FROM", "restore@example.com")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("{}: {e} (built by `make bench`?)", path.display()))?;
    let polled = fake.next_poll(Duration::from_secs(30)).await;
    let rss = peak_rss_kib(child.id());
    let _ = child.kill();
    let _ = child.wait();
    let at = polled.map_err(|e| format!("{binary}: {e}"))?;
    Ok((at - start, rss?))
}

pub async fn run() -> Result<(), String> {
    let runs = env_number("BENCH_COLDSTART_RUNS", 15).max(1) as usize;
    let moto = tools::moto_endpoint().unwrap_or_else(|_| "http://127.0.0.1:9".into());
    let bundle = ca_bundle();
    let mut fake = RuntimeFake::start().await.map_err(|e| e.to_string())?;
    let mut figures = Vec::new();
    for binary in std::iter::once(&HELLO).chain(FUNCTIONS) {
        // One start unmeasured, so every binary meets a warm page cache.
        once(&mut fake, binary, &moto, bundle).await?;
        let mut times = Vec::new();
        let mut probed = Vec::new();
        let mut rss = Vec::new();
        // Alternated, so both settings see the same machine load.
        for _ in 0..runs {
            let (t, r) = once(&mut fake, binary, &moto, bundle).await?;
            times.push(t.as_secs_f64() * 1000.0);
            rss.push(r as f64 / 1024.0);
            let (t, _) = once(&mut fake, binary, &moto, None).await?;
            probed.push(t.as_secs_f64() * 1000.0);
        }
        eprintln!(
            "bench coldstart: {binary}: {times:.1?} ms; without SSL_CERT_FILE {probed:.1?} ms"
        );
        let fastest = times.iter().copied().fold(f64::INFINITY, f64::min);
        figures.push((
            binary.to_string(),
            median(&times),
            fastest,
            median(&probed),
            median(&rss),
        ));
    }
    let hello = figures[0].1;
    let hello_fastest = figures[0].2;
    let hello_probed = figures[0].3;
    let mut table = Table::new([
        "Binary",
        "start → first poll, ms (median)",
        "÷ hello (target ≤ 1.5×)",
        "fastest, ms",
        "fastest ÷ hello",
        "without `SSL_CERT_FILE`, ms (median)",
        "÷ hello",
        "peak RSS, MiB (target ≤ 30)",
    ]);
    for (name, ms, fastest, probed, rss) in &figures {
        table.row([
            format!("`{name}`"),
            format!("{ms:.1}"),
            ratio(*ms, hello),
            format!("{fastest:.1}"),
            ratio(*fastest, hello_fastest),
            format!("{probed:.1}"),
            ratio(*probed, hello_probed),
            format!("{rss:.1}"),
        ]);
    }
    let setting = match bundle {
        Some(path) => format!(
            "Every binary runs as template.yaml deploys it: `SSL_CERT_FILE` names the system CA \
             bundle (`{path}` here; `/etc/pki/tls/certs/ca-bundle.crt` on Lambda's \
             provided.al2023) and `SSL_CERT_DIR` is unset, so the SDK reads that one file; the \
             \"without\" column unsets both, and the SDK then also reads every file of the \
             certificate directory (`/etc/ssl/certs` here)."
        ),
        None => "No system CA bundle found here, so `SSL_CERT_FILE` stays unset in both \
                 columns."
            .to_string(),
    };
    let text = format!(
        "Release builds (the workspace's release profile), native x86_64 on this machine, not \
         the arm64 Lambda target; each binary started {runs} times per column (after one \
         unmeasured start, the columns alternating) against a loopback fake Runtime API \
         (`bench/src/runtime_fake.rs`) that notes the first `GET …/invocation/next`. {setting} \
         Peak RSS is the process's `VmHWM` at that moment. `bench-hello` is a bare \
         `lambda_runtime` echo function. The fastest start is shown too: on a loaded machine it \
         is the better estimate of a binary's own cost."
    );
    write_fragment("coldstart", "Cold start", &text, &table).map_err(|e| e.to_string())
}
