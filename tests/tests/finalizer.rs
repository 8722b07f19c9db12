//! The finalizer against the emulator: manifest CSV and JSON report in S3, mail through SES v2
//! (read back from moto's recorded messages) and through SMTP (a real aiosmtpd server on
//! loopback), exactly once, for completed, completed-with-errors and failed jobs.

use std::sync::Arc;
use std::time::Duration;

use integration_tests::{
    aws_config, job_store, moto_api_get, restoring_job, s3_client, s3_restore_event, sesv2_client,
    unique_name, verify_sender, SmtpSink,
};
use serde_json::Value;
use shared::adapters::dynamodb::DynamoJobStore;
use shared::adapters::memory::MemoryDispatcher;
use shared::adapters::s3::S3ObjectStore;
use shared::adapters::ses::SesMailer;
use shared::adapters::smtp::{SmtpConfig, SmtpMailer, SmtpTls};
use shared::domain::completion::{Completion, CompletionSettings, FinalizeOutcome};
use shared::domain::cost::PriceList;
use shared::domain::job::Settlement;
use shared::domain::manifest::Report;
use shared::domain::state::{JobState, ObjectState};
use shared::ports::{Dispatcher, JobStore, Mailer};

const ASSETS: &str = "media-assets";
const EXPIRY: &str = "2099-12-01T00:00:00.000Z";

async fn manifest_bucket() -> String {
    let bucket = unique_name("manifests");
    s3_client()
        .await
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    bucket
}

async fn completion(
    store: Arc<DynamoJobStore>,
    bucket: &str,
    mailer: Arc<dyn Mailer>,
    dispatcher: Option<Arc<dyn Dispatcher>>,
) -> Completion {
    let mut settings = CompletionSettings::new(bucket, PriceList::seed());
    settings.notification_emails = vec!["media-ops@example.com".into()];
    settings.project_url = "https://pluto.example.com/project/".into();
    Completion::new(
        store,
        Arc::new(S3ObjectStore::from_sdk_config(&aws_config().await)),
        Some(mailer),
        dispatcher,
        settings,
    )
}

async fn get_text(bucket: &str, key: &str) -> String {
    let out = s3_client()
        .await
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    String::from_utf8(out.body.collect().await.unwrap().into_bytes().to_vec()).unwrap()
}

async fn ses_mailer() -> (Arc<dyn Mailer>, String) {
    let sender = format!("{}@restore.example.com", unique_name("pluto"));
    verify_sender(&sender).await;
    (
        Arc::new(SesMailer::new(sesv2_client().await, &sender).unwrap()),
        sender,
    )
}

fn ses_messages_from(sender: &str) -> Vec<Value> {
    let data: Value = serde_json::from_str(&moto_api_get("/moto-api/data.json")).unwrap();
    data["ses"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m["source"].as_str() == Some(sender))
        .collect()
}

#[tokio::test]
async fn completed_job_writes_manifest_and_report_and_mails_once_via_ses() {
    let store = Arc::new(job_store().await);
    let bucket = manifest_bucket().await;
    let (mailer, sender) = ses_mailer().await;
    let dispatcher = Arc::new(MemoryDispatcher::new());
    let completion = completion(store.clone(), &bucket, mailer, Some(dispatcher.clone())).await;
    let job = unique_name("job");
    let project = unique_name("proj");
    let keys = [
        "Proj/a+b.mov",
        "Proj/100% done.mov",
        "Proj/x,y.wav",
        "Proj/two words.mxf",
        "Proj/Café 映像.mov",
    ];
    let objects: Vec<(&str, u64)> = keys.iter().map(|k| (*k, 1 << 30)).collect();
    restoring_job(
        store.as_ref(),
        &job,
        &project,
        "editor@example.com",
        ASSETS,
        &objects,
    )
    .await;

    for key in keys {
        completion
            .handle_events(&s3_restore_event(ASSETS, key, EXPIRY))
            .await
            .unwrap();
        // The stream would call the finalizer after every count change.
        completion.finalize(&job).await.unwrap();
    }
    // Redelivered events and finalizer calls after the end do nothing more.
    completion
        .handle_events(&s3_restore_event(ASSETS, keys[0], EXPIRY))
        .await
        .unwrap();
    assert!(matches!(
        completion.finalize(&job).await.unwrap(),
        FinalizeOutcome::Finalized { state: JobState::Completed, steps } if steps.is_empty()
    ));

    let view = store.get_job(&job).await.unwrap().unwrap();
    assert_eq!(view.job.state, JobState::Completed);
    assert_eq!(
        view.job.manifest,
        Some(format!("s3://{bucket}/{job}/report.json"))
    );
    // Locked no more: a new restore of the project may start.
    assert_eq!(store.active_job(&project).await.unwrap(), None);

    let csv = get_text(&bucket, &format!("{job}/manifest.csv")).await;
    assert_eq!(
        csv,
        "media-assets,Proj/100%25%20done.mov\n\
         media-assets,Proj/Caf%C3%A9%20%E6%98%A0%E5%83%8F.mov\n\
         media-assets,Proj/a%2Bb.mov\n\
         media-assets,Proj/two%20words.mxf\n\
         media-assets,Proj/x%2Cy.wav\n"
    );
    let report: Report =
        serde_json::from_str(&get_text(&bucket, &format!("{job}/report.json")).await).unwrap();
    assert_eq!(report.totals.objects, 5);
    assert_eq!(report.totals.restored, 5);
    assert_eq!(report.totals.bytes, 5 << 30);
    assert_eq!(report.state, JobState::Completed);
    assert!(report
        .objects
        .iter()
        .any(|o| o.key == "Proj/Café 映像.mov" && o.expiry.is_some()));
    // Seed prices, Bulk: 5 GiB * $0.0025 + 5 * $0.025/1000 = $0.0126 → 1 cent.
    assert_eq!(report.cost_cents, 1);

    let mails = ses_messages_from(&sender);
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = &mails[0];
    assert_eq!(
        mail["destinations"]["ToAddresses"],
        serde_json::json!(["media-ops@example.com", "editor@example.com"])
    );
    let body = mail["body"].as_str().unwrap();
    assert!(
        body.contains(&format!("https://pluto.example.com/project/{project}")),
        "{body}"
    );
    assert!(body.contains(&format!("s3://{bucket}/{job}/manifest.csv")));
    assert!(body.contains("Bulk"));
    assert!(mail["subject"].as_str().unwrap().contains("completed"));

    // The copy was dispatched once, pointing at the report.
    let dispatched = dispatcher.dispatched();
    assert_eq!(dispatched.len(), 1);
    assert_eq!(
        dispatched[0].manifest_uri,
        format!("s3://{bucket}/{job}/report.json")
    );
    assert_eq!(dispatched[0].local_base, "/srv/projects/Assets/");
}

fn smtp_mailer(sink: &SmtpSink) -> Arc<dyn Mailer> {
    Arc::new(
        SmtpMailer::new(&SmtpConfig {
            host: "127.0.0.1".into(),
            port: sink.port,
            from: "pluto-restore@example.com".into(),
            tls: SmtpTls::None,
            timeout: Duration::from_secs(5),
        })
        .unwrap(),
    )
}

#[tokio::test]
async fn job_with_a_failed_object_completes_with_errors_and_is_mailed_via_smtp() {
    let sink = SmtpSink::start();
    let store = Arc::new(job_store().await);
    let bucket = manifest_bucket().await;
    let completion = completion(store.clone(), &bucket, smtp_mailer(&sink), None).await;
    let job = unique_name("job");
    restoring_job(
        store.as_ref(),
        &job,
        "42",
        "editor@example.com",
        ASSETS,
        &[("P/ok.mov", 10), ("P/denied, really.mov", 20)],
    )
    .await;
    let denied = store
        .get_objects(&job, &["P/denied, really.mov".to_string()])
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    assert!(store
        .settle(
            &denied,
            &Settlement {
                state: ObjectState::Failed,
                expiry: None,
                error: Some("AccessDenied: no restore permission".into())
            }
        )
        .await
        .unwrap());
    completion
        .handle_events(&s3_restore_event(ASSETS, "P/ok.mov", EXPIRY))
        .await
        .unwrap();
    completion.finalize(&job).await.unwrap();
    completion.finalize(&job).await.unwrap();

    assert_eq!(
        store.get_job(&job).await.unwrap().unwrap().job.state,
        JobState::CompletedWithErrors
    );
    assert_eq!(
        get_text(&bucket, &format!("{job}/manifest.csv")).await,
        "media-assets,P/ok.mov\n"
    );
    let messages = sink.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let m = &messages[0];
    assert_eq!(
        m["rcpt_tos"],
        serde_json::json!(["media-ops@example.com", "editor@example.com"])
    );
    assert!(m["subject"].as_str().unwrap().contains("1 failed"));
    let body = m["body"].as_str().unwrap();
    assert!(
        body.contains("P/denied, really.mov: AccessDenied: no restore permission"),
        "{body}"
    );
    assert!(body.contains("https://pluto.example.com/project/42"));
}

#[tokio::test]
async fn a_failed_job_is_mailed_with_its_reason() {
    let sink = SmtpSink::start();
    let store = Arc::new(job_store().await);
    let bucket = manifest_bucket().await;
    let completion = completion(store.clone(), &bucket, smtp_mailer(&sink), None).await;
    let job = unique_name("job");
    restoring_job(
        store.as_ref(),
        &job,
        "43",
        "editor@example.com",
        ASSETS,
        &[("Q/a.mov", 1)],
    )
    .await;
    assert!(completion
        .fail_job(&job, "the asset bucket was deleted")
        .await
        .unwrap());
    assert!(!completion.fail_job(&job, "again").await.unwrap());
    let view = store.get_job(&job).await.unwrap().unwrap();
    assert_eq!(view.job.state, JobState::Failed);
    assert_eq!(
        view.job.error.as_deref(),
        Some("the asset bucket was deleted")
    );
    let messages = sink.messages();
    assert_eq!(messages.len(), 1);
    assert!(messages[0]["subject"].as_str().unwrap().contains("FAILED"));
    assert!(messages[0]["body"]
        .as_str()
        .unwrap()
        .contains("the asset bucket was deleted"));
    // The report still lists the object, as pending.
    let report: Report =
        serde_json::from_str(&get_text(&bucket, &format!("{job}/report.json")).await).unwrap();
    assert_eq!(report.objects[0].state, ObjectState::Requested);
}

#[tokio::test]
async fn an_unreachable_mail_server_fails_the_call_and_the_retry_mails_once() {
    // Nothing listens on this port yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = Arc::new(job_store().await);
    let bucket = manifest_bucket().await;
    let down: Arc<dyn Mailer> = Arc::new(
        SmtpMailer::new(&SmtpConfig {
            host: "127.0.0.1".into(),
            port,
            from: "pluto-restore@example.com".into(),
            tls: SmtpTls::None,
            timeout: Duration::from_secs(2),
        })
        .unwrap(),
    );
    let job = unique_name("job");
    restoring_job(
        store.as_ref(),
        &job,
        "44",
        "editor@example.com",
        ASSETS,
        &[("R/a.mov", 1)],
    )
    .await;
    let failing = completion(store.clone(), &bucket, down, None).await;
    failing
        .handle_events(&s3_restore_event(ASSETS, "R/a.mov", EXPIRY))
        .await
        .unwrap();
    assert!(failing.finalize(&job).await.is_err());
    let view = store.get_job(&job).await.unwrap().unwrap();
    assert_eq!(view.job.state, JobState::Completed);
    assert!(!view.job.markers.contains(&"mail_sent".to_string()));

    let sink = SmtpSink::start();
    let retry = completion(store.clone(), &bucket, smtp_mailer(&sink), None).await;
    match retry.finalize(&job).await.unwrap() {
        FinalizeOutcome::Finalized { steps, .. } => assert_eq!(steps, vec!["mail_sent"]),
        other => panic!("{other:?}"),
    }
    retry.finalize(&job).await.unwrap();
    assert_eq!(sink.messages().len(), 1);
}
