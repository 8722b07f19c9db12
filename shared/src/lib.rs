//! Shared library of the Glacier restore service.
//!
//! Hexagonal layout: [`domain`] holds the rules (planning, cost, tally, path mapping) and knows
//! no AWS type; [`ports`] are the traits the domain needs from the outside world; [`adapters`]
//! implement them for AWS (S3, DynamoDB, SES), SMTP, Kubernetes, and in memory for unit tests.

pub mod adapters;
#[cfg(feature = "aws")]
pub mod api;
#[cfg(feature = "aws")]
pub mod config;
pub mod domain;
pub mod error;
pub mod ports;
#[cfg(feature = "aws")]
pub mod sdk_http;
pub mod telemetry;
#[cfg(feature = "aws")]
pub mod wiring;

pub use error::{Error, Result};
