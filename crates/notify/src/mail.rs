//! The mailer: one rendered message over SMTP, marked as automatic, with a
//! `Message-ID` the caller derives from what it sends (so a repeat after a
//! crash is recognisable) and `References` that thread it under its case.
//! The notify-publisher and the task worker's `casewire.email` share it.

use lettre::message::header::ContentType;
use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::render::Rendered;

/// Why a message was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// Never going to work: a bad address, a refused recipient.
    #[error("{0}")]
    Permanent(String),
    /// Try again later: the server is down or busy.
    #[error("{0}")]
    Transient(String),
}

/// `Auto-Submitted: auto-generated` (RFC 3834): auto-responders and
/// ticket systems must not answer it.
#[derive(Debug, Clone)]
struct AutoSubmitted(Auto);

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(value: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted(if value.trim() == "auto-replied" {
            Auto::Replied
        } else {
            Auto::Generated
        }))
    }

    fn display(&self) -> HeaderValue {
        let value = match self.0 {
            Auto::Generated => "auto-generated",
            Auto::Replied => "auto-replied",
        };
        HeaderValue::new(Self::name(), value.to_owned())
    }
}

/// What made a machine send a message (RFC 3834's `Auto-Submitted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auto {
    /// On its own: a notification, a task's mail.
    Generated,
    /// In answer to a message: the acknowledgement of a new case.
    Replied,
}

/// One message to send.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub message: &'a Rendered,
    /// `<id@domain>`.
    pub message_id: String,
    /// `<root@domain>` and more: the thread it belongs to.
    pub references: String,
    /// `<id>` of the message it answers.
    pub in_reply_to: Option<String>,
    pub cc: Vec<String>,
    /// Sent by a machine, not written by a person: `Auto-Submitted`, so
    /// other systems do not answer it. A person's reply is not marked.
    pub automatic: Option<Auto>,
    /// Files attached: name, content type, bytes.
    pub files: Vec<(String, String, Vec<u8>)>,
}

/// An SMTP connection pool.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").finish_non_exhaustive()
    }
}

impl Mailer {
    /// `smtp://host:port` (plain), `smtp+starttls://` or `smtps://`, with
    /// `user:password@` for a login (lettre's URLs).
    pub fn from_url(url: &str) -> Result<Mailer, MailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| MailError::Permanent(e.to_string()))?
            .build();
        Ok(Mailer { transport })
    }

    /// Sends one message, plain text and HTML.
    pub async fn send(&self, out: Outgoing<'_>) -> Result<(), MailError> {
        let to: Mailbox = out
            .to
            .parse()
            .map_err(|e| MailError::Permanent(format!("bad address '{}': {e}", out.to)))?;
        let from: Mailbox = out
            .from
            .parse()
            .map_err(|e| MailError::Permanent(format!("bad sender '{}': {e}", out.from)))?;
        let mut builder = Message::builder()
            .from(from)
            .to(to)
            .subject(out.message.subject.clone())
            .message_id(Some(out.message_id))
            .references(out.references);
        for cc in &out.cc {
            match cc.parse::<Mailbox>() {
                Ok(m) => builder = builder.cc(m),
                // One bad copy address must not stop the reply.
                Err(_) => continue,
            }
        }
        if let Some(id) = out.in_reply_to {
            builder = builder.in_reply_to(id);
        }
        if let Some(auto) = out.automatic {
            builder = builder.header(AutoSubmitted(auto));
        }
        let body = MultiPart::alternative_plain_html(out.message.text.clone(), out.message.html.clone());
        let body = if out.files.is_empty() {
            body
        } else {
            let mut mixed = MultiPart::mixed().multipart(body);
            for (name, content_type, bytes) in out.files {
                // A type lettre can not write goes as plain bytes.
                let Ok(content_type) =
                    ContentType::parse(&content_type).or_else(|_| ContentType::parse("application/octet-stream"))
                else {
                    continue;
                };
                mixed = mixed.singlepart(Attachment::new(name).body(bytes, content_type));
            }
            mixed
        };
        let email = builder
            .multipart(body)
            .map_err(|e| MailError::Permanent(e.to_string()))?;
        self.transport.send(email).await.map(|_| ()).map_err(|e| {
            if e.is_permanent() {
                MailError::Permanent(e.to_string())
            } else {
                MailError::Transient(e.to_string())
            }
        })
    }
}
