//! `restore-local demo` end to end against its own moto server: what `make local` shows.

use std::process::Command;

use integration_tests::private_moto_endpoint;

fn demo(args: &[&str], endpoint: Option<&str>) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_restore-local"));
    command
        .arg("demo")
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE");
    if let Some(endpoint) = endpoint {
        command.env("AWS_ENDPOINT_URL", endpoint);
    }
    command.output().expect("run restore-local")
}

#[test]
fn demo_estimates_restores_and_waits_for_every_archived_object() {
    let endpoint = private_moto_endpoint();
    let output = demo(&["--tier", "Expedited"], Some(endpoint));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        output.status
    );
    // Classification: Deep Archive has no Expedited tier.
    assert!(
        stdout.contains("Expedited retrieval requested, Standard used"),
        "{stdout}"
    );
    assert!(stdout.contains("skipped (folder key)"), "{stdout}");
    // The seed's golden table for scale.
    for figure in ["40.72", "10.29", "2.59"] {
        assert!(
            stdout.contains(figure),
            "seed figure {figure} missing:\n{stdout}"
        );
    }
    // Every RestoreObject answered 202, was seen in progress, and every copy came back.
    assert!(stdout.contains("4 restore(s) in progress"), "{stdout}");
    assert_eq!(stdout.matches("  Started").count(), 4, "{stdout}");
    assert_eq!(
        stdout.matches("restored, readable until").count(),
        4,
        "{stdout}"
    );
    assert!(
        stdout.contains("6 objects under")
            && stdout.contains("4 restored, 2 readable without restore"),
        "{stdout}"
    );
}

#[test]
fn demo_refuses_to_run_without_an_emulator_endpoint() {
    let output = demo(&[], None);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("AWS_ENDPOINT_URL"), "{stderr}");
    assert!(
        output.stdout.is_empty() || !String::from_utf8_lossy(&output.stdout).contains("Seeded")
    );
}

#[test]
fn demo_rejects_an_unknown_tier_before_touching_anything() {
    let output = demo(&["--tier", "Fastest"], Some("http://127.0.0.1:9"));
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Fastest"), "{stderr}");
}
