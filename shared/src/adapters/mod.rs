//! Adapters: the ports implemented for real backends, and in memory for unit tests.

pub mod dynamodb;
#[cfg(feature = "kube")]
pub mod kube;
pub mod memory;
pub mod s3;
pub mod ses;
pub mod smtp;
