//! `SmtpMailer` against a real SMTP server on loopback (aiosmtpd via `scripts/smtp-sink.py`).

use std::time::Duration;

use integration_tests::SmtpSink;
use shared::adapters::smtp::{SmtpConfig, SmtpMailer, SmtpTls};
use shared::domain::manifest::{Report, ReportObject, ReportTotals};
use shared::domain::notification::{job_finished, recipients};
use shared::domain::state::{JobState, ObjectState};
use shared::domain::storage::{RetrievalTier, StorageClass};
use shared::ports::{Mail, Mailer};

fn config(port: u16, tls: SmtpTls) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        from: "pluto-restore@example.com".into(),
        tls,
        timeout: Duration::from_secs(5),
    }
}

/// The text as SMTP carries it: CRLF line ends, and the transfer encoding may add a final
/// line break; everything else must arrive unchanged.
fn wire_text(text: &str) -> String {
    text.replace("\r\n", "\n")
        .trim_end_matches('\n')
        .to_string()
}

fn finished_report() -> Report {
    let now = time::OffsetDateTime::now_utc();
    let object = |key: &str, state, error: Option<&str>| ReportObject {
        bucket: "pluto-assets".into(),
        key: key.into(),
        version_id: None,
        size: 1024,
        storage_class: StorageClass::DeepArchive,
        state,
        expiry: None,
        error: error.map(Into::into),
    };
    Report {
        job_id: "job-smtp".into(),
        project_id: "42".into(),
        prefix: "Project 42/".into(),
        local_base: None,
        tier: RetrievalTier::Standard,
        state: JobState::CompletedWithErrors,
        created_at: now,
        finished_at: now,
        totals: ReportTotals {
            objects: 2,
            bytes: 2048,
            restored: 1,
            not_needed: 0,
            failed: 1,
        },
        cost_cents: 12,
        objects: vec![
            object("Project 42/Café 映像.mov", ObjectState::Restored, None),
            object(
                "Project 42/a, b+c 100%.wav",
                ObjectState::Failed,
                Some("AccessDenied"),
            ),
        ],
    }
}

#[tokio::test]
async fn finished_job_mail_arrives_with_recipients_subject_and_body() {
    let sink = SmtpSink::start();
    let mailer = SmtpMailer::new(&config(sink.port, SmtpTls::None)).unwrap();
    let text = job_finished(
        &finished_report(),
        "https://pluto.example.com/project/",
        None,
        None,
    )
    .unwrap();
    let mail = Mail {
        to: recipients(["ops@example.com", "editor@example.com", "OPS@example.com"]),
        subject: text.subject.clone(),
        body: text.body.clone(),
    };
    mailer.send(&mail).await.expect("send via SMTP");

    let messages = sink.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let m = &messages[0];
    assert_eq!(m["mail_from"], "pluto-restore@example.com");
    assert_eq!(
        m["rcpt_tos"],
        serde_json::json!(["ops@example.com", "editor@example.com"])
    );
    assert_eq!(m["from"], "pluto-restore@example.com");
    assert_eq!(m["subject"], text.subject.as_str());
    assert_eq!(m["content_type"], "text/plain");
    assert_eq!(m["charset"], "utf-8");
    let body = m["body"].as_str().unwrap();
    assert_eq!(wire_text(body), wire_text(&text.body));
    assert!(body.contains("Link:           https://pluto.example.com/project/42"));
    assert!(body.contains("s3://pluto-assets/Project 42/a, b+c 100%.wav: AccessDenied"));
}

#[tokio::test]
async fn non_ascii_subject_and_body_survive_the_wire() {
    let sink = SmtpSink::start();
    let mailer = SmtpMailer::new(&config(sink.port, SmtpTls::None)).unwrap();
    let mail = Mail {
        to: vec!["ops@example.com".into()],
        subject: "Projet « Café » — 映像 restauré".into(),
        body: "Fichier : Café 映像.mov\n".into(),
    };
    mailer.send(&mail).await.unwrap();
    let messages = sink.messages();
    assert_eq!(messages[0]["subject"], mail.subject.as_str());
    assert_eq!(
        wire_text(messages[0]["body"].as_str().unwrap()),
        wire_text(&mail.body)
    );
}

#[tokio::test]
async fn bad_recipient_is_rejected_and_nothing_is_delivered() {
    let sink = SmtpSink::start();
    let mailer = SmtpMailer::new(&config(sink.port, SmtpTls::None)).unwrap();
    for to in [
        vec![],
        vec![
            "ops@example.com".to_string(),
            "ops@example.com\r\nRCPT TO:<x@y.z>".into(),
        ],
    ] {
        let err = mailer
            .send(&Mail {
                to,
                subject: "s".into(),
                body: "b".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_recipient", "{err}");
    }
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn required_starttls_without_server_support_sends_nothing() {
    let sink = SmtpSink::start();
    let mailer = SmtpMailer::new(&config(sink.port, SmtpTls::StartTls)).unwrap();
    let err = mailer
        .send(&Mail {
            to: vec!["ops@example.com".into()],
            subject: "s".into(),
            body: "b".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), "upstream_error", "{err}");
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn unreachable_server_is_an_upstream_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port(); // listener dropped: nothing listens there any more
    let mailer = SmtpMailer::new(&config(port, SmtpTls::None)).unwrap();
    let err = mailer
        .send(&Mail {
            to: vec!["ops@example.com".into()],
            subject: "s".into(),
            body: "b".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), "upstream_error");
    assert!(err.to_string().starts_with("smtp error"), "{err}");
}

#[tokio::test]
async fn configuration_with_smtp_host_sends_through_smtp() {
    let sink = SmtpSink::start();
    let port = sink.port.to_string();
    let sdk = aws_config::SdkConfig::builder().build();
    let mailer = shared::adapters::ses::mailer_from_lookup(&sdk, |name| match name {
        "SMTP_HOST" => Some("127.0.0.1".into()),
        "SMTP_PORT" => Some(port.clone()),
        "SMTP_FROM" => Some("Pluto Restore <pluto-restore@example.com>".into()),
        _ => None,
    })
    .unwrap();
    mailer
        .send(&Mail {
            to: vec!["ops@example.com".into()],
            subject: "configured".into(),
            body: "b".into(),
        })
        .await
        .unwrap();
    let messages = sink.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["mail_from"], "pluto-restore@example.com");
    assert_eq!(
        messages[0]["from"],
        "Pluto Restore <pluto-restore@example.com>"
    );
    assert_eq!(messages[0]["subject"], "configured");
}
