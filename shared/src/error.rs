//! The one error type of the service, carrying a stable machine-readable code so the HTTP
//! layer, logs and mails all name a problem the same way.

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every failure the service can report. Client errors carry the code the API returns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed or a field is invalid (HTTP 400/422).
    #[error("{message}")]
    Validation { code: &'static str, message: String },
    /// The caller may not do this (HTTP 403).
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// The thing asked for does not exist (HTTP 404).
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// A concurrent or conflicting change won (HTTP 409); also used for lost conditional writes.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// Missing or invalid configuration, reported at cold start.
    #[error("configuration error: {0}")]
    Config(String),
    /// An AWS or other upstream call failed after retries.
    #[error("{service} error: {message}")]
    Upstream {
        service: &'static str,
        message: String,
    },
    /// A bug or an invariant broken inside the service.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn validation(code: &'static str, message: impl Into<String>) -> Self {
        Error::Validation {
            code,
            message: message.into(),
        }
    }
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Error::Forbidden {
            code,
            message: message.into(),
        }
    }
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Error::NotFound {
            code,
            message: message.into(),
        }
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Error::Conflict {
            code,
            message: message.into(),
        }
    }
    pub fn upstream(service: &'static str, message: impl std::fmt::Display) -> Self {
        Error::Upstream {
            service,
            message: message.to_string(),
        }
    }

    /// Stable code for the JSON error body (`{"error": {"code": ...}}`).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Validation { code, .. }
            | Error::Forbidden { code, .. }
            | Error::NotFound { code, .. }
            | Error::Conflict { code, .. } => code,
            Error::Config(_) => "configuration_error",
            Error::Upstream { .. } => "upstream_error",
            Error::Internal(_) => "internal_error",
        }
    }

    /// HTTP status that fits the error.
    pub fn http_status(&self) -> u16 {
        match self {
            Error::Validation { .. } => 400,
            Error::Forbidden { .. } => 403,
            Error::NotFound { .. } => 404,
            Error::Conflict { .. } => 409,
            Error::Upstream { .. } => 502,
            Error::Config(_) | Error::Internal(_) => 500,
        }
    }
}
