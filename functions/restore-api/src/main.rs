//! `restore-api` Lambda: builds its clients once at init, then serves every request with the
//! shared handler. A missing required variable stops the cold start with its name.
use std::sync::Arc;

use lambda_http::{service_fn, Error, Request};
use shared::config::{aws_sdk_config, vars, Config};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = Config::from_env(&[vars::ASSET_BUCKET_LIST])?;
    let sdk = aws_sdk_config(&config).await;
    let wiring = shared::api::Wiring::new(&config, &sdk, &|n| std::env::var(n).ok(), false)?;
    let api = Arc::new(wiring.api);
    lambda_http::run(service_fn(move |event: Request| {
        let api = api.clone();
        async move { Ok::<_, Error>(restore_api::handle_lambda(&api, event).await) }
    }))
    .await
}
