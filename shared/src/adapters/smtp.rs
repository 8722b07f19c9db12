//! [`Mailer`] over SMTP with `lettre` (async, tokio): used when `SMTP_HOST` is set, typically
//! an on-premises relay as in the seed. Plain SMTP by default; STARTTLS or implicit TLS by
//! `SMTP_TLS`, always with rustls (no OpenSSL).

use std::time::Duration;

use async_trait::async_trait;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::domain::notification::validate_recipients;
use crate::ports::{Mail, Mailer};
use crate::{Error, Result};

/// How the SMTP connection is protected (`SMTP_TLS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SmtpTls {
    /// `none` (default): plain SMTP, for a trusted relay on the local network.
    #[default]
    None,
    /// `opportunistic`: STARTTLS when the server offers it, plain otherwise.
    Opportunistic,
    /// `starttls`: STARTTLS required; the mail is not sent without it.
    StartTls,
    /// `tls`: implicit TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

/// SMTP settings from the environment (DESIGN §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    /// Sender address (`SMTP_FROM`).
    pub from: String,
    pub tls: SmtpTls,
    /// Per-command timeout, so a dead relay cannot eat the Lambda's whole time budget.
    pub timeout: Duration,
}

impl SmtpConfig {
    /// Default SMTP port when `SMTP_PORT` is unset (the seed's relays listen on 25).
    pub const DEFAULT_PORT: u16 = 25;

    /// Reads `SMTP_HOST`, `SMTP_PORT`, `SMTP_FROM` and `SMTP_TLS` through `lookup` (the
    /// environment in production, a map in tests). `Ok(None)` when `SMTP_HOST` is unset or
    /// empty, i.e. mail goes through SES; an error names the variable that is wrong.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let Some(host) = get("SMTP_HOST") else {
            return Ok(None);
        };
        let port = match get("SMTP_PORT") {
            None => Self::DEFAULT_PORT,
            Some(text) => text
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| {
                    Error::Config(format!("SMTP_PORT must be a port number, got {text:?}"))
                })?,
        };
        let from = get("SMTP_FROM")
            .ok_or_else(|| Error::Config("SMTP_FROM is required when SMTP_HOST is set".into()))?;
        let tls = match get("SMTP_TLS").map(|t| t.to_ascii_lowercase()).as_deref() {
            None | Some("none") => SmtpTls::None,
            Some("opportunistic") => SmtpTls::Opportunistic,
            Some("starttls") => SmtpTls::StartTls,
            Some("tls") => SmtpTls::Tls,
            Some(other) => {
                return Err(Error::Config(format!(
                    "SMTP_TLS must be none, opportunistic, starttls or tls, got {other:?}"
                )))
            }
        };
        Ok(Some(Self {
            host,
            port,
            from,
            tls,
            timeout: Duration::from_secs(30),
        }))
    }
}

/// Sends plain-text mail to an SMTP server. The connection is opened per mail: the service
/// sends a handful per job, and a pooled connection would not survive Lambda's freezes.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// Builds the transport; fails on an unusable sender address or TLS setup.
    pub fn new(config: &SmtpConfig) -> Result<Self> {
        let from: Mailbox = config.from.parse().map_err(|e| {
            Error::Config(format!(
                "SMTP_FROM {:?} is not a mail address: {e}",
                config.from
            ))
        })?;
        let tls_parameters = || {
            TlsParameters::new(config.host.clone())
                .map_err(|e| Error::Config(format!("SMTP TLS setup for {}: {e}", config.host)))
        };
        let tls = match config.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Opportunistic => Tls::Opportunistic(tls_parameters()?),
            SmtpTls::StartTls => Tls::Required(tls_parameters()?),
            SmtpTls::Tls => Tls::Wrapper(tls_parameters()?),
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .tls(tls)
            .timeout(Some(config.timeout))
            .build();
        Ok(Self { transport, from })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: &Mail) -> Result<()> {
        validate_recipients(&mail.to)?;
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(mail.subject.as_str())
            .header(ContentType::TEXT_PLAIN);
        for to in &mail.to {
            let mailbox: Mailbox = to.parse().map_err(|e| {
                Error::validation(
                    "invalid_recipient",
                    format!("{to:?} is not a mail address: {e}"),
                )
            })?;
            builder = builder.to(mailbox);
        }
        let message = builder
            .body(mail.body.clone())
            .map_err(|e| Error::Internal(format!("building the mail: {e}")))?;
        let response = self
            .transport
            .send(message)
            .await
            .map_err(|e| Error::upstream("smtp", e))?;
        tracing::info!(
            code = %response.code(),
            recipients = mail.to.len(),
            subject = %mail.subject,
            "mail sent via SMTP"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Option<SmtpConfig>> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        SmtpConfig::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn no_host_means_ses() {
        assert_eq!(config(&[]).unwrap(), None);
        assert_eq!(
            config(&[("SMTP_HOST", " "), ("SMTP_FROM", "a@b.c")]).unwrap(),
            None
        );
    }

    #[test]
    fn defaults_and_explicit_values() {
        let c = config(&[
            ("SMTP_HOST", "relay.local"),
            ("SMTP_FROM", "pluto@example.com"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.tls),
            ("relay.local", 25, SmtpTls::None)
        );
        let c = config(&[
            ("SMTP_HOST", "relay.local"),
            ("SMTP_PORT", "587"),
            ("SMTP_FROM", "pluto@example.com"),
            ("SMTP_TLS", "STARTTLS"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!((c.port, c.tls), (587, SmtpTls::StartTls));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = |vars: &[(&str, &str)]| config(vars).unwrap_err().to_string();
        assert!(err(&[("SMTP_HOST", "h")]).contains("SMTP_FROM"));
        assert!(err(&[
            ("SMTP_HOST", "h"),
            ("SMTP_FROM", "a@b.c"),
            ("SMTP_PORT", "x")
        ])
        .contains("SMTP_PORT"));
        assert!(err(&[
            ("SMTP_HOST", "h"),
            ("SMTP_FROM", "a@b.c"),
            ("SMTP_PORT", "70000")
        ])
        .contains("SMTP_PORT"));
        assert!(err(&[
            ("SMTP_HOST", "h"),
            ("SMTP_FROM", "a@b.c"),
            ("SMTP_TLS", "ssl3")
        ])
        .contains("SMTP_TLS"));
    }

    #[test]
    fn tls_modes_build_with_rustls() {
        for tls in [
            SmtpTls::None,
            SmtpTls::Opportunistic,
            SmtpTls::StartTls,
            SmtpTls::Tls,
        ] {
            let c = SmtpConfig {
                host: "relay.example.com".into(),
                port: 25,
                from: "Pluto <pluto@example.com>".into(),
                tls,
                timeout: Duration::from_secs(1),
            };
            SmtpMailer::new(&c).unwrap();
        }
        let c = SmtpConfig {
            host: "h".into(),
            port: 25,
            from: "not an address".into(),
            tls: SmtpTls::None,
            timeout: Duration::from_secs(1),
        };
        assert!(SmtpMailer::new(&c)
            .unwrap_err()
            .to_string()
            .contains("SMTP_FROM"));
    }
}
