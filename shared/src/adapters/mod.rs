//! Adapters: the ports implemented for real backends, and in memory for unit tests.

#[cfg(feature = "aws")]
pub mod dynamodb;
#[cfg(feature = "kube")]
pub mod kube;
pub mod memory;
#[cfg(feature = "aws")]
pub mod s3;
#[cfg(feature = "aws")]
pub mod ses;
#[cfg(feature = "aws")]
pub mod smtp;
