//! One HTTPS client for every AWS SDK client of a process.
//!
//! Without it each service client (S3, DynamoDB, SES, STS) gets its own copy of the SDK's
//! default HTTPS client, and building a service client *validates* that HTTP client by building
//! a TLS connector: the trust anchors are parsed from the system roots and a rustls
//! configuration is made, every time, only to be thrown away (the connector a request uses is
//! built again on first use, per copy). [`shared_https_client`] is the SDK's own default
//! client (same TLS provider, roots, `HTTPS_PROXY`/`NO_PROXY` handling, timeouts and pool),
//! created once and handed to every client through the `SdkConfig`; the wrapper runs that
//! validation for the first service client only, so the connector and roots are still built at
//! init, before the first poll, but once. The clients also share its connector cache and
//! connection pools.
//!
//! The system roots themselves are read once per process by the SDK (`rustls-native-certs`);
//! what that costs depends on `SSL_CERT_FILE`/`SSL_CERT_DIR` (README, "Cold start").

use std::sync::OnceLock;

use aws_config::BehaviorVersion;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_runtime_api::client::runtime_plugin::RuntimePlugin;
use aws_smithy_runtime_api::shared::IntoShared;
use aws_smithy_types::config_bag::ConfigBag;

/// The SDK's default HTTPS client for `version`, to be shared by all clients of the process;
/// `None` only if this build of the SDK has no default client (then each service client falls
/// back to its own default as before).
pub fn shared_https_client(version: BehaviorVersion) -> Option<SharedHttpClient> {
    let plugin = aws_smithy_runtime::client::defaults::default_http_client_plugin_v2(version)?;
    let inner = plugin
        .runtime_components(&RuntimeComponentsBuilder::new("shared_https_client"))
        .http_client()?;
    Some(
        ValidatedOnce {
            inner,
            validated: OnceLock::new(),
        }
        .into_shared(),
    )
}

/// An HTTP client whose base-configuration check (building a throwaway TLS connector) runs for
/// the first service client only; everything else goes to the inner client.
#[derive(Debug)]
struct ValidatedOnce {
    inner: SharedHttpClient,
    validated: OnceLock<()>,
}

impl HttpClient for ValidatedOnce {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.inner.http_connector(settings, components)
    }

    fn validate_base_client_config(
        &self,
        components: &RuntimeComponentsBuilder,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        if self.validated.get().is_none() {
            // Not marked on error: the next client checks again and fails the same way.
            self.inner.validate_base_client_config(components, cfg)?;
            let _ = self.validated.set(());
        }
        Ok(())
    }

    fn validate_final_config(
        &self,
        components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner.validate_final_config(components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.inner.connector_metadata()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    /// Counts validations; never connects.
    #[derive(Debug, Default)]
    struct Counting(Arc<AtomicUsize>);

    impl HttpClient for Counting {
        fn http_connector(
            &self,
            _: &HttpConnectorSettings,
            _: &RuntimeComponents,
        ) -> SharedHttpConnector {
            unreachable!("no request is made")
        }

        fn validate_base_client_config(
            &self,
            _: &RuntimeComponentsBuilder,
            _: &ConfigBag,
        ) -> Result<(), BoxError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    #[test]
    fn validates_the_inner_client_once() {
        let count = Arc::new(AtomicUsize::new(0));
        let client = ValidatedOnce {
            inner: Counting(count.clone()).into_shared(),
            validated: OnceLock::new(),
        };
        let components = RuntimeComponentsBuilder::new("test");
        let cfg = ConfigBag::base();
        for _ in 0..3 {
            client
                .validate_base_client_config(&components, &cfg)
                .unwrap();
        }
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_default_client_is_available() {
        assert!(shared_https_client(BehaviorVersion::latest()).is_some());
    }
}
