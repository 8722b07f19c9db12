//! `SesMailer` against the emulator's SES v2: the mail moto records is the mail we built.

use integration_tests::{aws_config, moto_api_get, sesv2_client, unique_name, verify_sender};
use serde_json::Value;
use shared::adapters::ses::{mailer_from_lookup, SesMailer};
use shared::ports::{Mail, Mailer};

/// Messages moto recorded (`/moto-api/data.json` → `ses` → `Message`) from `sender` (bare or
/// with a display name).
fn recorded_from(sender: &str) -> Vec<Value> {
    let data: Value = serde_json::from_str(&moto_api_get("/moto-api/data.json")).unwrap();
    data["ses"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m["source"].as_str().is_some_and(|s| s.contains(sender)))
        .collect()
}

async fn verified_sender() -> String {
    let sender = format!("{}@restore.example.com", unique_name("pluto"));
    verify_sender(&sender).await;
    sender
}

#[tokio::test]
async fn ses_mail_reaches_moto_with_recipients_subject_and_body() {
    let sender = verified_sender().await;
    let mailer = SesMailer::new(sesv2_client().await, &sender).unwrap();
    let mail = Mail {
        to: vec!["ops@example.com".into(), "editor@example.com".into()],
        subject: "Restore of project 42 completed — Café 映像".into(),
        body: "Hello,\n\nLink: https://pluto.example.com/project/42\nSize: 1.00 TiB\n".into(),
    };
    mailer.send(&mail).await.expect("send via SES");

    let recorded = recorded_from(&sender);
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    let message = &recorded[0];
    assert_eq!(message["subject"], mail.subject.as_str());
    assert_eq!(message["body"], mail.body.as_str());
    assert_eq!(
        message["destinations"]["ToAddresses"],
        serde_json::json!(["ops@example.com", "editor@example.com"])
    );
}

#[tokio::test]
async fn unverified_sender_is_an_upstream_error_and_nothing_is_recorded() {
    let sender = format!("{}@unverified.example.org", unique_name("nobody"));
    let mailer = SesMailer::new(sesv2_client().await, &sender).unwrap();
    let err = mailer
        .send(&Mail {
            to: vec!["ops@example.com".into()],
            subject: "s".into(),
            body: "b".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), "upstream_error");
    assert!(err.to_string().contains("not verified"), "{err}");
    assert!(recorded_from(&sender).is_empty());
}

#[tokio::test]
async fn bad_recipients_are_rejected_before_calling_ses() {
    let sender = verified_sender().await;
    let mailer = SesMailer::new(sesv2_client().await, &sender).unwrap();
    for to in [
        vec![],
        vec!["ops@example.com".to_string(), "not-an-address".into()],
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
    assert!(recorded_from(&sender).is_empty());
}

#[tokio::test]
async fn configuration_picks_ses_without_smtp_host_and_needs_a_sender() {
    let sender = verified_sender().await;
    let sdk = aws_config().await;
    let env = |vars: Vec<(&'static str, String)>| {
        move |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        }
    };
    let err = mailer_from_lookup(&sdk, env(vec![]))
        .err()
        .expect("no sender");
    assert!(err.to_string().contains("SMTP_FROM"), "{err}");

    let err = mailer_from_lookup(&sdk, env(vec![("SMTP_FROM", "Pluto <nope>".into())]))
        .err()
        .expect("bad sender");
    assert!(err.to_string().contains("SMTP_FROM"), "{err}");

    let named = format!("Pluto Restore <{sender}>");
    let mailer = mailer_from_lookup(&sdk, env(vec![("SMTP_FROM", named.clone())])).unwrap();
    mailer
        .send(&Mail {
            to: vec!["ops@example.com".into()],
            subject: "via configuration".into(),
            body: "b".into(),
        })
        .await
        .unwrap();
    let recorded = recorded_from(&sender);
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["subject"], "via configuration");
    assert_eq!(recorded[0]["source"], named.as_str());
}
