//! The [`ObjectStore`] port on Amazon S3 (aws-sdk-s3).
//!
//! Everything S3-specific lives here: the SDK's storage-class enums, the `x-amz-restore` header,
//! and the RestoreObject answer mapping of DESIGN §4. Throttling (503 SlowDown) and 5xx answers
//! are retried by the SDK's standard retry mode (exponential backoff with jitter; attempts from
//! `AWS_MAX_ATTEMPTS`, see [`crate::config`]), except the Expedited capacity error, which is
//! answered at once so the caller can fall back to the Standard tier.

use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_s3::config::interceptors::{
    AfterDeserializationInterceptorContextRef, InterceptorContext,
};
use aws_sdk_s3::config::retry::{ClassifyRetry, RetryAction};
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::{BoxError, DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::restore_object::RestoreObjectError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    GlacierJobParameters, OptionalObjectAttributes, RestoreRequest, Tier as SdkTier,
};
use time::OffsetDateTime;

use crate::domain::object::{
    ListPage, ListedObject, ObjectHead, ObjectRef, RestoreOutcome, RestoreParams, RestoreStatus,
};
use crate::domain::storage::{ArchiveStatus, RetrievalTier, StorageClass};
use crate::ports::ObjectStore;
use crate::{Error, Result};

/// S3 error code of the Expedited capacity error; never retried by the SDK (see module doc).
const EXPEDITED_UNAVAILABLE: &str = "GlacierExpeditedRetrievalNotAvailable";

/// Builds the S3 client from the shared SDK configuration. Path-style addressing is forced when
/// an endpoint override is set: emulators on loopback have no per-bucket DNS names.
pub fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(sdk.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// [`ObjectStore`] backed by S3. Cheap to clone; build it once at init and share it.
#[derive(Debug, Clone)]
pub struct S3ObjectStore {
    client: aws_sdk_s3::Client,
    /// Cleared when the endpoint rejects `OptionalObjectAttributes` so listing falls back to
    /// plain ListObjectsV2 (restore status then comes from HeadObject) instead of failing.
    optional_attributes: Arc<AtomicBool>,
}

impl S3ObjectStore {
    /// Wraps an existing client (its retry settings are used as they are).
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        Self {
            client,
            optional_attributes: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Builds the client from the shared SDK configuration (see [`s3_client`]).
    pub fn from_sdk_config(sdk: &aws_config::SdkConfig) -> Self {
        Self::new(s3_client(sdk))
    }

    /// The underlying client, for callers that need an S3 call the port does not offer.
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    async fn list_once(
        &self,
        bucket: &str,
        prefix: &str,
        continuation: Option<&str>,
        max_keys: i32,
        with_restore_status: bool,
    ) -> std::result::Result<
        aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output,
        SdkError<aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Error>,
    > {
        let mut request = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .max_keys(max_keys)
            .set_continuation_token(continuation.map(str::to_owned));
        if with_restore_status {
            request = request.optional_object_attributes(OptionalObjectAttributes::RestoreStatus);
        }
        request.send().await
    }
}

#[async_trait]
impl ObjectStore for S3ObjectStore {
    async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        continuation: Option<&str>,
        max_keys: i32,
    ) -> Result<ListPage> {
        let with_status = self.optional_attributes.load(Ordering::Relaxed);
        let output = match self
            .list_once(bucket, prefix, continuation, max_keys, with_status)
            .await
        {
            Ok(output) => output,
            Err(err) if with_status && rejects_optional_attributes(err.code()) => {
                tracing::warn!(
                    bucket,
                    code = err.code(),
                    "endpoint rejects OptionalObjectAttributes; listing without restore status"
                );
                self.optional_attributes.store(false, Ordering::Relaxed);
                self.list_once(bucket, prefix, continuation, max_keys, false)
                    .await
                    .map_err(|e| {
                        upstream("ListObjectsV2", &format!("s3://{bucket}/{prefix}"), &e)
                    })?
            }
            Err(err) => {
                return Err(upstream(
                    "ListObjectsV2",
                    &format!("s3://{bucket}/{prefix}"),
                    &err,
                ))
            }
        };
        let objects = output
            .contents()
            .iter()
            .filter_map(|object| {
                let key = object.key()?.to_owned();
                Some(ListedObject {
                    bucket: bucket.to_owned(),
                    key,
                    size: object.size().unwrap_or(0).max(0) as u64,
                    storage_class: storage_class(object.storage_class().map(|c| c.as_str())),
                    restore: object.restore_status().and_then(|status| {
                        restore_status_from_listing(
                            status.is_restore_in_progress(),
                            status.restore_expiry_date().and_then(to_offset),
                        )
                    }),
                })
            })
            .collect();
        // S3 sets IsTruncated with a token; an emulator may omit the flag, so trust the token.
        let next = match output.is_truncated() {
            Some(false) => None,
            _ => output.next_continuation_token().map(str::to_owned),
        };
        Ok(ListPage { objects, next })
    }

    async fn request_restore(
        &self,
        object: &ObjectRef,
        params: RestoreParams,
    ) -> Result<RestoreOutcome> {
        let status = Arc::new(AtomicU16::new(0));
        let job = GlacierJobParameters::builder()
            .tier(sdk_tier(params.tier))
            .build()
            .map_err(|e| Error::Internal(format!("GlacierJobParameters: {e}")))?;
        let request = RestoreRequest::builder()
            .set_days(params.days)
            .glacier_job_parameters(job)
            .build();
        let result = self
            .client
            .restore_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .set_version_id(object.version_id.clone())
            .restore_request(request)
            .customize()
            .interceptor(StatusRecorder(status.clone()))
            .config_override(
                aws_sdk_s3::config::Builder::default()
                    .retry_classifier(NoRetryOnExpeditedUnavailable),
            )
            .send()
            .await;
        let target = format!("s3://{}/{}", object.bucket, object.key);
        let outcome = match result {
            Ok(_) => restore_outcome_for_status(status.load(Ordering::Relaxed)),
            Err(err) => restore_outcome_for_error(err.code())
                .ok_or_else(|| upstream("RestoreObject", &target, &err))?,
        };
        tracing::debug!(bucket = %object.bucket, key = %object.key, ?outcome, tier = ?params.tier, "restore requested");
        Ok(outcome)
    }

    async fn head(&self, object: &ObjectRef) -> Result<ObjectHead> {
        let target = format!("s3://{}/{}", object.bucket, object.key);
        let output = self
            .client
            .head_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .set_version_id(object.version_id.clone())
            .send()
            .await
            .map_err(|err| {
                if err.as_service_error().is_some_and(|e| e.is_not_found()) {
                    Error::not_found("object_not_found", format!("{target} does not exist"))
                } else {
                    upstream("HeadObject", &target, &err)
                }
            })?;
        let restore = match output.restore() {
            Some(header) => Some(RestoreStatus::parse_header(header).ok_or_else(|| {
                Error::upstream(
                    "s3",
                    format!("HeadObject {target}: unreadable x-amz-restore header {header:?}"),
                )
            })?),
            None => None,
        };
        Ok(ObjectHead {
            size: output.content_length().unwrap_or(0).max(0) as u64,
            // S3 omits x-amz-storage-class for STANDARD objects.
            storage_class: storage_class(output.storage_class().map(|c| c.as_str())),
            restore,
            archive_status: output
                .archive_status()
                .and_then(|s| ArchiveStatus::from_s3(s.as_str())),
        })
    }

    async fn put(&self, bucket: &str, key: &str, body: Vec<u8>, content_type: &str) -> Result<()> {
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|err| upstream("PutObject", &format!("s3://{bucket}/{key}"), &err))?;
        Ok(())
    }
}

/// Records the HTTP status of the last attempt: the SDK's RestoreObject output does not say
/// whether S3 answered 202 (started) or 200 (already restored), and DESIGN §4 needs both.
#[derive(Debug)]
struct StatusRecorder(Arc<AtomicU16>);

impl Intercept for StatusRecorder {
    fn name(&self) -> &'static str {
        "RestoreStatusRecorder"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> std::result::Result<(), BoxError> {
        self.0
            .store(context.response().status().as_u16(), Ordering::Relaxed);
        Ok(())
    }
}

/// Stops the SDK from retrying the Expedited capacity error (a 503 it would otherwise treat as
/// transient): retrying only delays the fall-back to Standard.
#[derive(Debug)]
struct NoRetryOnExpeditedUnavailable;

impl ClassifyRetry for NoRetryOnExpeditedUnavailable {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let code = match ctx.output_or_error() {
            Some(Err(err)) => err
                .as_operation_error()
                .and_then(|e| e.downcast_ref::<RestoreObjectError>())
                .and_then(|e| e.code()),
            _ => None,
        };
        if code == Some(EXPEDITED_UNAVAILABLE) {
            RetryAction::RetryForbidden
        } else {
            RetryAction::NoActionIndicated
        }
    }

    fn name(&self) -> &'static str {
        "NoRetryOnExpeditedUnavailable"
    }
}

/// A successful RestoreObject: 200 means a restored copy is already there, anything else
/// (202 Accepted) that the restore started.
fn restore_outcome_for_status(status: u16) -> RestoreOutcome {
    if status == 200 {
        RestoreOutcome::AlreadyRestored
    } else {
        RestoreOutcome::Started
    }
}

/// The RestoreObject error codes that are answers rather than failures (DESIGN §4).
fn restore_outcome_for_error(code: Option<&str>) -> Option<RestoreOutcome> {
    match code? {
        "RestoreAlreadyInProgress" => Some(RestoreOutcome::InProgress),
        "InvalidObjectState" | "ObjectAlreadyInActiveTierError" => Some(RestoreOutcome::NotNeeded),
        EXPEDITED_UNAVAILABLE => Some(RestoreOutcome::ExpeditedUnavailable),
        _ => None,
    }
}

/// Error codes with which an S3-compatible endpoint refuses the `x-amz-optional-object-attributes`
/// header; anything else is a real listing failure.
fn rejects_optional_attributes(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("NotImplemented" | "InvalidArgument" | "InvalidRequest")
    )
}

/// Maps an S3 error to [`Error::Upstream`] naming the operation, the object and the S3 code.
fn upstream<E>(operation: &str, target: &str, err: &SdkError<E>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = err
        .raw_response()
        .map(|r| format!(" (HTTP {})", r.status().as_u16()))
        .unwrap_or_default();
    let message = match err.code() {
        Some(code) => format!(
            "{operation} {target}: {code}: {}{status}",
            err.message().unwrap_or("no message")
        ),
        None => format!("{operation} {target}: {}{status}", DisplayErrorContext(err)),
    };
    tracing::warn!(
        operation,
        object = target,
        code = err.code(),
        "S3 call failed"
    );
    Error::upstream("s3", message)
}

fn sdk_tier(tier: RetrievalTier) -> SdkTier {
    match tier {
        RetrievalTier::Expedited => SdkTier::Expedited,
        RetrievalTier::Standard => SdkTier::Standard,
        RetrievalTier::Bulk => SdkTier::Bulk,
    }
}

/// S3 omits the storage class for STANDARD objects.
fn storage_class(class: Option<&str>) -> StorageClass {
    StorageClass::from_s3(class.unwrap_or("STANDARD"))
}

/// The listing's `RestoreStatus` element; absent (never restored) when S3 sent no flag.
fn restore_status_from_listing(
    in_progress: Option<bool>,
    expiry: Option<OffsetDateTime>,
) -> Option<RestoreStatus> {
    let ongoing = in_progress?;
    Some(RestoreStatus {
        ongoing,
        expiry: if ongoing { None } else { expiry },
    })
}

fn to_offset(date: &aws_smithy_types::DateTime) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(date.secs())
        .ok()?
        .replace_nanosecond(date.subsec_nanos())
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn success_status_tells_started_from_already_restored() {
        assert_eq!(restore_outcome_for_status(202), RestoreOutcome::Started);
        assert_eq!(
            restore_outcome_for_status(200),
            RestoreOutcome::AlreadyRestored
        );
    }

    #[test]
    fn error_codes_that_are_answers_map_per_design() {
        assert_eq!(
            restore_outcome_for_error(Some("RestoreAlreadyInProgress")),
            Some(RestoreOutcome::InProgress)
        );
        assert_eq!(
            restore_outcome_for_error(Some("InvalidObjectState")),
            Some(RestoreOutcome::NotNeeded)
        );
        assert_eq!(
            restore_outcome_for_error(Some("ObjectAlreadyInActiveTierError")),
            Some(RestoreOutcome::NotNeeded)
        );
        assert_eq!(
            restore_outcome_for_error(Some("GlacierExpeditedRetrievalNotAvailable")),
            Some(RestoreOutcome::ExpeditedUnavailable)
        );
    }

    #[test]
    fn other_error_codes_are_failures() {
        for code in ["AccessDenied", "NoSuchKey", "SlowDown", "InternalError"] {
            assert_eq!(restore_outcome_for_error(Some(code)), None, "{code}");
        }
        assert_eq!(restore_outcome_for_error(None), None);
    }

    #[test]
    fn absent_storage_class_is_standard() {
        assert_eq!(storage_class(None), StorageClass::Standard);
        assert_eq!(storage_class(Some("GLACIER")), StorageClass::Glacier);
        assert_eq!(
            storage_class(Some("DEEP_ARCHIVE")),
            StorageClass::DeepArchive
        );
        assert_eq!(storage_class(Some("GLACIER_IR")), StorageClass::GlacierIr);
        assert_eq!(
            storage_class(Some("INTELLIGENT_TIERING")),
            StorageClass::IntelligentTiering
        );
        assert_eq!(
            storage_class(Some("EXPRESS_ONEZONE")),
            StorageClass::Other("EXPRESS_ONEZONE".into())
        );
    }

    #[test]
    fn listing_restore_status_needs_the_flag() {
        assert_eq!(restore_status_from_listing(None, None), None);
        let expiry = datetime!(2030-01-01 00:00:00 UTC);
        assert_eq!(
            restore_status_from_listing(Some(false), Some(expiry)),
            Some(RestoreStatus {
                ongoing: false,
                expiry: Some(expiry)
            })
        );
        assert_eq!(
            restore_status_from_listing(Some(true), Some(expiry)),
            Some(RestoreStatus {
                ongoing: true,
                expiry: None
            })
        );
    }

    #[test]
    fn only_attribute_rejections_trigger_the_listing_fallback() {
        assert!(rejects_optional_attributes(Some("NotImplemented")));
        assert!(rejects_optional_attributes(Some("InvalidArgument")));
        assert!(!rejects_optional_attributes(Some("AccessDenied")));
        assert!(!rejects_optional_attributes(Some("NoSuchBucket")));
        assert!(!rejects_optional_attributes(None));
    }
}
