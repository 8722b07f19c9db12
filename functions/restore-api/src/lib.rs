//! `restore-api`: the HTTP Lambda. The routes live in [`shared::api`]; this crate only adapts
//! `lambda_http` requests to it, so the local server and the Lambda answer alike.

use lambda_http::{Body, Request, RequestExt, Response};
use shared::api::Api;

/// Serves one API Gateway request (REST or HTTP API) with the shared handler.
pub async fn handle_lambda(api: &Api, event: Request) -> Response<Body> {
    // API Gateway REST puts the stage in front of the path; route on the resource path.
    let raw = event.raw_http_path().to_string();
    let (mut parts, body) = event.into_parts();
    if !raw.is_empty() && raw != parts.uri.path() {
        let target = match parts.uri.query() {
            Some(query) => format!("{raw}?{query}"),
            None => raw,
        };
        if let Ok(uri) = target.parse() {
            parts.uri = uri;
        }
    }
    let bytes = match body {
        Body::Empty => Vec::new(),
        Body::Text(text) => text.into_bytes(),
        Body::Binary(bytes) => bytes,
        _ => Vec::new(),
    };
    let response = api.handle(http::Request::from_parts(parts, bytes)).await;
    response.map(Body::Text)
}
