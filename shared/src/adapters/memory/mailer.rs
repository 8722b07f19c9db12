//! In-memory [`Mailer`]: records every mail so tests can read what people would receive.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::ports::{Mail, Mailer};
use crate::{Error, Result};

#[derive(Default)]
struct Inner {
    sent: Vec<Mail>,
    failures: VecDeque<String>,
}

/// Records mails instead of sending them; can be told to fail the next sends.
#[derive(Default)]
pub struct MemoryMailer {
    inner: Mutex<Inner>,
}

impl MemoryMailer {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Mails sent so far, in order.
    pub fn sent(&self) -> Vec<Mail> {
        self.lock().sent.clone()
    }

    /// Makes the next send fail with an upstream error (queued: call twice to fail twice).
    pub fn fail_next(&self, message: &str) {
        self.lock().failures.push_back(message.to_string());
    }
}

#[async_trait]
impl Mailer for MemoryMailer {
    /// Like SES, refuses a mail without recipients; a failed send records nothing.
    async fn send(&self, mail: &Mail) -> Result<()> {
        let mut inner = self.lock();
        if let Some(message) = inner.failures.pop_front() {
            return Err(Error::upstream("mail", message));
        }
        if mail.to.is_empty() || mail.to.iter().any(|to| to.trim().is_empty()) {
            return Err(Error::upstream("mail", "a mail needs non-empty recipients"));
        }
        inner.sent.push(mail.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(to: &[&str]) -> Mail {
        Mail {
            to: to.iter().map(|s| s.to_string()).collect(),
            subject: "Restore 42 completed".into(),
            body: "All 3 objects restored.".into(),
        }
    }

    #[tokio::test]
    async fn records_mails_in_order() {
        let mailer = MemoryMailer::new();
        mailer.send(&mail(&["a@example.com"])).await.unwrap();
        mailer
            .send(&mail(&["b@example.com", "c@example.com"]))
            .await
            .unwrap();
        let sent = mailer.sent();
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[1].to, ["b@example.com", "c@example.com"]);
        assert_eq!(sent[0].subject, "Restore 42 completed");
    }

    #[tokio::test]
    async fn failures_record_nothing() {
        let mailer = MemoryMailer::new();
        mailer.fail_next("SES throttled");
        let err = mailer.send(&mail(&["a@example.com"])).await.unwrap_err();
        assert_eq!(err.code(), "upstream_error");
        assert!(err.to_string().contains("SES throttled"));
        assert!(mailer.send(&mail(&[])).await.is_err());
        assert!(mailer.send(&mail(&[" "])).await.is_err());
        assert!(mailer.sent().is_empty());
        mailer.send(&mail(&["a@example.com"])).await.unwrap();
        assert_eq!(mailer.sent().len(), 1);
    }
}
