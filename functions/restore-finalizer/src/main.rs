//! `restore-finalizer`: driven by the jobs table's stream. For every job whose META or counter
//! shard changed it checks completion and, once, writes the manifest and report to
//! `MANIFEST_BUCKET`, mails `NOTIFICATION_EMAIL` and the user, and (when `KUBE_NAMESPACE` is
//! set) dispatches the on-premises copy. Newly recorded objects are matched against early
//! completion events. A failure fails the batch: the stream retries it and only missing steps
//! are redone (markers on the job).
use std::sync::Arc;

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use shared::config::vars::{MANIFEST_BUCKET, SMTP_FROM};
use shared::domain::completion::Completion;
use shared::ports::Dispatcher;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let dispatcher = dispatcher().await?;
    let completion = Arc::new(
        shared::wiring::completion_from_env(&[MANIFEST_BUCKET, SMTP_FROM], true, dispatcher)
            .await?,
    );
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let completion = completion.clone();
        async move { handle(&completion, event).await }
    }))
    .await
}

async fn handle(completion: &Completion, event: LambdaEvent<Value>) -> Result<Value, Error> {
    // Typed check of the stream envelope; the work itself reads keys from the JSON.
    let records = serde_json::from_value::<StreamEvent>(event.payload.clone())
        .map(|e| e.records.len())
        .unwrap_or(0);
    let outcomes = completion.handle_stream(&event.payload).await?;
    tracing::info!(
        request_id = %event.context.request_id,
        records,
        jobs = outcomes.len(),
        "stream batch handled"
    );
    Ok(Value::Null)
}

/// The Kubernetes dispatcher when `KUBE_NAMESPACE` is set (feature `kube`).
#[cfg(feature = "kube")]
async fn dispatcher() -> Result<Option<Arc<dyn Dispatcher>>, Error> {
    Ok(shared::adapters::kube::KubeDispatcher::from_env()
        .await?
        .map(|d| Arc::new(d) as Arc<dyn Dispatcher>))
}

#[cfg(not(feature = "kube"))]
async fn dispatcher() -> Result<Option<Arc<dyn Dispatcher>>, Error> {
    if std::env::var_os("KUBE_NAMESPACE").is_some() {
        tracing::warn!("KUBE_NAMESPACE is set but this build has no `kube` feature: no copy");
    }
    Ok(None)
}
