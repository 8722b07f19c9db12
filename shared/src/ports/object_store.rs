use async_trait::async_trait;

use crate::domain::object::{ListPage, ObjectHead, ObjectRef, RestoreOutcome, RestoreParams};
use crate::Result;

/// Object storage holding the archived assets and the manifests (S3 in production).
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// One page (at most `max_keys`) of the objects under `prefix`, folder keys included;
    /// `continuation` is the `next` of the previous page.
    async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        continuation: Option<&str>,
        max_keys: i32,
    ) -> Result<ListPage>;

    /// Asks for a restore and reports how S3 answered. Throttling is retried by the adapter;
    /// an error here is a real failure for this object.
    async fn request_restore(
        &self,
        object: &ObjectRef,
        params: RestoreParams,
    ) -> Result<RestoreOutcome>;

    /// Reads an object's metadata, including its restore status.
    async fn head(&self, object: &ObjectRef) -> Result<ObjectHead>;

    /// Writes a small object (manifests, reports).
    async fn put(&self, bucket: &str, key: &str, body: Vec<u8>, content_type: &str) -> Result<()>;
}
