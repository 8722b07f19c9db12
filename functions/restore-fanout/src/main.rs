//! `restore-fanout` Lambda: continues big jobs page by page. Triggered by the jobs table's
//! stream (job items still listing: each committed page or released lease emits a record) or
//! invoked directly with `{"jobId": "..."}`. Works until 60 s before its own timeout, then
//! releases the lease; that release is the stream record that triggers the next invocation.
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};
use shared::config::{aws_sdk_config, vars, Config};
use shared::domain::fanout::jobs_to_continue;
use tracing::Instrument;

/// Time kept back from the invocation's deadline to commit the page in progress.
const MARGIN: Duration = Duration::from_secs(60);

/// Deadlines below this (epoch ms, 2001-09-09) can't be absolute: they are a timeout.
const SMALLEST_EPOCH_DEADLINE_MS: u64 = 1_000_000_000_000;

/// Time left in the invocation. Lambda sends the deadline as epoch milliseconds;
/// `cargo lambda watch` sends the timeout itself (600000), read here as time from now so a
/// local run fans out instead of finding itself out of time at once.
fn time_left(deadline_ms: u64) -> Duration {
    if deadline_ms < SMALLEST_EPOCH_DEADLINE_MS {
        return Duration::from_millis(deadline_ms);
    }
    (SystemTime::UNIX_EPOCH + Duration::from_millis(deadline_ms))
        .duration_since(SystemTime::now())
        .unwrap_or_default()
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = Config::from_env(&[vars::ASSET_BUCKET_LIST])?;
    let sdk = aws_sdk_config(&config).await;
    let fanout = shared::api::Wiring::fanout_only(&config, &sdk, &|n| std::env::var(n).ok())?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let fanout = Arc::clone(&fanout);
        async move {
            let deadline =
                Instant::now() + time_left(event.context.deadline).saturating_sub(MARGIN);
            let mut outcomes = Vec::new();
            for job_id in jobs_to_continue(&event.payload) {
                let span = tracing::info_span!("fanout", job_id = %job_id);
                // An error fails the batch: Lambda retries the stream records, and the page
                // replays safely.
                let outcome = fanout.drive(&job_id, deadline).instrument(span).await?;
                tracing::info!(job_id = %job_id, ?outcome, "fan-out invocation done");
                outcomes.push(json!({"jobId": job_id, "outcome": format!("{outcome:?}")}));
            }
            Ok::<Value, Error>(json!({"jobs": outcomes}))
        }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_epoch_deadline_counts_from_now() {
        let now_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let left = time_left(now_ms + 300_000);
        assert!(
            left <= Duration::from_secs(300) && left > Duration::from_secs(290),
            "{left:?}"
        );
        assert_eq!(time_left(now_ms - 1_000), Duration::ZERO);
    }

    #[test]
    fn a_relative_deadline_is_the_time_left() {
        assert_eq!(time_left(600_000), Duration::from_secs(600));
    }
}
