use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::Result;

/// A plain-text mail to one or more recipients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mail {
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
}

/// Sends mail (SES v2 by default, SMTP when `SMTP_HOST` is set).
#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, mail: &Mail) -> Result<()>;
}
