//! End to end on the emulator: archived objects with awkward keys are restored, the local
//! pipeline delivers their completions through the events handler, the sweeper settles the one
//! whose restore never started, and the job is finalized once: manifest and report in S3, one
//! mail through SES (read back from moto).

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::StorageClass as SdkClass;
use integration_tests::{
    aws_config, job_store, moto_api_get, restoring_job, s3_client, sesv2_client, unique_name,
};
use restore_local::pipeline::{Pipeline, PipelineSettings};
use serde_json::Value;
use shared::adapters::s3::S3ObjectStore;
use shared::adapters::ses::SesMailer;
use shared::domain::completion::{Completion, CompletionSettings};
use shared::domain::cost::PriceList;
use shared::domain::manifest::Report;
use shared::domain::object::{ObjectRef, RestoreParams};
use shared::domain::state::{JobState, ObjectState};
use shared::domain::storage::RetrievalTier;
use shared::ports::{JobStore, ObjectStore};

const KEYS: [&str; 6] = [
    "Film/rushes/a+b.mov",
    "Film/rushes/100% final.mov",
    "Film/audio/mix, v2.wav",
    "Film/two  spaces/clip .mxf",
    "Film/Café 映像/ü.mov",
    "Film/plain.mov",
];
/// Archived, but its restore was never asked for: no event will ever come.
const ORPHAN: &str = "Film/never requested.mov";

#[tokio::test]
async fn restore_to_manifest_and_mail() {
    let s3 = s3_client().await;
    let (assets, manifests) = (unique_name("assets"), unique_name("manifests"));
    for bucket in [&assets, &manifests] {
        s3.create_bucket().bucket(bucket).send().await.unwrap();
    }
    for key in KEYS.iter().chain([&ORPHAN]) {
        s3.put_object()
            .bucket(&assets)
            .key(*key)
            .storage_class(SdkClass::Glacier)
            .body(ByteStream::from(vec![b'm'; 1024]))
            .send()
            .await
            .unwrap();
    }
    let objects = Arc::new(S3ObjectStore::from_sdk_config(&aws_config().await));
    for key in KEYS {
        let target = ObjectRef {
            bucket: assets.clone(),
            key: key.into(),
            version_id: None,
        };
        let params = RestoreParams {
            tier: RetrievalTier::Bulk,
            days: Some(2),
        };
        objects.request_restore(&target, params).await.unwrap();
    }
    let store = Arc::new(job_store().await);
    let job = unique_name("job");
    let project = unique_name("film");
    let recorded: Vec<(&str, u64)> = KEYS.iter().chain([&ORPHAN]).map(|k| (*k, 1024)).collect();
    restoring_job(
        store.as_ref(),
        &job,
        &project,
        "editor@example.com",
        &assets,
        &recorded,
    )
    .await;

    let sender = format!("{}@restore.example.com", unique_name("pluto"));
    sesv2_client()
        .await
        .create_email_identity()
        .email_identity(&sender)
        .send()
        .await
        .unwrap();
    let mut settings = CompletionSettings::new(&manifests, PriceList::aws());
    settings.notification_emails = vec!["media-ops@example.com".into()];
    settings.project_url = "https://pluto.example.com/project/".into();
    settings.window_override = Some(Duration::ZERO);
    let completion = Arc::new(Completion::new(
        store.clone(),
        objects.clone(),
        Some(Arc::new(
            SesMailer::new(sesv2_client().await, &sender).unwrap(),
        )),
        None,
        settings,
    ));
    let pipeline = Pipeline::new(
        completion,
        store.clone(),
        objects.clone(),
        None,
        PipelineSettings {
            poll_interval: Duration::from_millis(100),
            sweep_interval: Duration::ZERO,
        },
    );
    let mut passes = 0;
    let finalized = pipeline
        .run_until(|tick| {
            passes += 1;
            !tick.active.contains(&job) || passes > 50
        })
        .await
        .unwrap();
    assert_eq!(finalized, vec![job.clone()]);

    let view = store.get_job(&job).await.unwrap().unwrap();
    assert_eq!(view.job.state, JobState::CompletedWithErrors);
    assert_eq!((view.settled.restored, view.settled.failed), (6, 1));
    assert_eq!(view.settled.restored_bytes, 6 * 1024);

    let get = |key: String| {
        let s3 = s3.clone();
        let bucket = manifests.clone();
        async move {
            let out = s3
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .unwrap();
            String::from_utf8(out.body.collect().await.unwrap().into_bytes().to_vec()).unwrap()
        }
    };
    let csv = get(format!("{job}/manifest.csv")).await;
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 6, "{csv}");
    for line in &lines {
        let (bucket, key) = line.split_once(',').unwrap();
        assert_eq!(bucket, assets);
        assert!(!key.contains([',', ' ', '+']), "unencoded key in {line}");
        let decoded = percent_decode(key);
        assert!(KEYS.contains(&decoded.as_str()), "{decoded}");
    }
    let report: Report = serde_json::from_str(&get(format!("{job}/report.json")).await).unwrap();
    assert_eq!(report.totals.restored, 6);
    let orphan = report.objects.iter().find(|o| o.key == ORPHAN).unwrap();
    assert_eq!(orphan.state, ObjectState::Failed);
    assert!(report
        .objects
        .iter()
        .filter(|o| o.state == ObjectState::Restored)
        .all(|o| o.expiry.is_some()));

    let data: Value = serde_json::from_str(&moto_api_get("/moto-api/data.json")).unwrap();
    let mails: Vec<&Value> = data["ses"]["Message"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["source"].as_str() == Some(sender.as_str()))
        .collect();
    assert_eq!(mails.len(), 1);
    let body = mails[0]["body"].as_str().unwrap();
    assert!(body.contains(&format!("https://pluto.example.com/project/{project}")));
    assert!(body.contains(ORPHAN), "the failure is named: {body}");
    assert!(body.contains(&format!("s3://{manifests}/{job}/manifest.csv")));

    // More passes change nothing.
    pipeline.tick().await.unwrap();
    pipeline.sweep().await.unwrap();
    let data: Value = serde_json::from_str(&moto_api_get("/moto-api/data.json")).unwrap();
    let again = data["ses"]["Message"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["source"].as_str() == Some(sender.as_str()))
        .count();
    assert_eq!(again, 1);
    assert_eq!(
        store.get_job(&job).await.unwrap().unwrap().settled.restored,
        6
    );
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}
