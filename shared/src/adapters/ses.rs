//! [`Mailer`] over Amazon SES v2 (`SendEmail` with simple content): the default mail path in
//! AWS, no SMTP relay or credentials to manage, the function's role grants `ses:SendEmail`.

use async_trait::async_trait;
use aws_sdk_sesv2::error::DisplayErrorContext;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};

use crate::domain::notification::validate_recipients;
use crate::ports::{Mail, Mailer};
use crate::{Error, Result};

/// Sends plain-text mail through SES v2 from a fixed, SES-verified sender (`SMTP_FROM`).
#[derive(Debug, Clone)]
pub struct SesMailer {
    client: aws_sdk_sesv2::Client,
    from: String,
}

impl SesMailer {
    /// `from` must be an identity SES has verified, or SES rejects every mail.
    pub fn new(client: aws_sdk_sesv2::Client, from: impl Into<String>) -> Result<Self> {
        let from = from.into();
        // `Name <address>` is allowed for the sender; the address inside must be bare.
        let address = match (from.rfind('<'), from.ends_with('>')) {
            (Some(open), true) => from[open + 1..from.len() - 1].to_string(),
            _ => from.clone(),
        };
        if from.contains(['\r', '\n']) {
            return Err(Error::Config("SMTP_FROM must be a single line".into()));
        }
        validate_recipients(&[address])
            .map_err(|e| Error::Config(format!("SMTP_FROM (sender address): {e}")))?;
        Ok(Self { client, from })
    }
}

fn utf8(text: &str) -> Result<Content> {
    Content::builder()
        .data(text)
        .charset("UTF-8")
        .build()
        .map_err(|e| Error::Internal(format!("SES content: {e}")))
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, mail: &Mail) -> Result<()> {
        validate_recipients(&mail.to)?;
        let message = Message::builder()
            .subject(utf8(&mail.subject)?)
            .body(Body::builder().text(utf8(&mail.body)?).build())
            .build();
        let output = self
            .client
            .send_email()
            .from_email_address(&self.from)
            .destination(
                Destination::builder()
                    .set_to_addresses(Some(mail.to.clone()))
                    .build(),
            )
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map_err(|e| Error::upstream("ses", DisplayErrorContext(e)))?;
        tracing::info!(
            message_id = output.message_id().unwrap_or_default(),
            recipients = mail.to.len(),
            subject = %mail.subject,
            "mail sent via SES"
        );
        Ok(())
    }
}

/// The mailer the configuration asks for (DESIGN §5/§7): SMTP when `SMTP_HOST` is set, SES v2
/// otherwise. Both send from `SMTP_FROM` (the seed's "email sender address"), which is
/// therefore required either way. `lookup` reads the environment (`|n| std::env::var(n).ok()`).
pub fn mailer_from_lookup(
    sdk: &aws_config::SdkConfig,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<std::sync::Arc<dyn Mailer>> {
    if let Some(smtp) = super::smtp::SmtpConfig::from_lookup(&lookup)? {
        tracing::info!(host = %smtp.host, port = smtp.port, tls = ?smtp.tls, "mail via SMTP");
        return Ok(std::sync::Arc::new(super::smtp::SmtpMailer::new(&smtp)?));
    }
    let from = lookup("SMTP_FROM")
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::Config("SMTP_FROM (the sender address) is required".into()))?;
    tracing::info!("mail via SES");
    Ok(std::sync::Arc::new(SesMailer::new(
        aws_sdk_sesv2::Client::new(sdk),
        from,
    )?))
}
