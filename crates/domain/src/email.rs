//! E-mail on a case. A mail that joins a case is `case.receiveEmail`, whose
//! event `email-received` is a public comment by its sender and says why
//! the mail joined this case; a delivery failure is `case.recordBounce`
//! (`email-bounced`), which marks the address undeliverable and is no
//! comment. The case's [`MailThread`] (its participants, the Message-IDs it
//! has seen, its undeliverable addresses) is what threads later mail and
//! guards replies. Parsing, threading keys and loop guards are not here:
//! they need the raw mail (crate `casewire-email`); the domain decides what
//! a parsed mail does to a case.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::case::{Case, Comment, EventMeta};
use crate::command::Visibility;
use crate::error::DomainError;
use crate::event::CaseEvent;

/// Message-IDs a case remembers (the newest); older ones thread by the
/// subject tag or plus address instead.
pub const MAX_MESSAGE_IDS: usize = 500;
/// Addresses a case remembers as participants.
pub const MAX_PARTICIPANTS: usize = 50;
const MAX_ADDRESS: usize = 320;
const MAX_MESSAGE_ID: usize = 998;
const MAX_SUBJECT: usize = 998;
const MAX_BODY: usize = 20_000;
const MAX_HEADERS: usize = 50;
const MAX_FILES: usize = 100;

/// An address on a mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MailAddress {
    pub name: Option<String>,
    /// Lower case.
    pub email: String,
}

/// A header of a mail, as it was sent (unfolded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MailHeader {
    pub name: String,
    pub value: String,
}

/// Why a mail joined the case it joined, in the order they are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ThreadedBy {
    /// `In-Reply-To` names a Message-ID the case has seen or sent.
    InReplyTo,
    /// `References` does.
    References,
    /// The subject carries the case key (`[CMP-000123]`).
    SubjectTag,
    /// It was sent to `mailbox+CMP-000123@...`.
    PlusAddress,
    /// It opened the case.
    New,
}

/// `case.receiveEmail`: a mail joins the case as a public comment by its
/// sender.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReceiveEmail {
    /// The comment's id.
    pub comment_id: Uuid,
    /// The mailbox it came in through.
    pub mailbox: String,
    /// Without angle brackets.
    pub message_id: String,
    /// sha256 of what makes the mail this mail (not its transport headers).
    pub fingerprint: String,
    pub from: MailAddress,
    #[serde(default)]
    pub to: Vec<MailAddress>,
    #[serde(default)]
    pub cc: Vec<MailAddress>,
    pub subject: String,
    /// What the sender wrote, without quoted history and signature.
    pub body: String,
    pub threaded_by: ThreadedBy,
    /// Files of the mail (attachments, inline images), attached to the case.
    #[serde(default)]
    pub files: Vec<Uuid>,
    /// The whole original message (`.eml`), a file of the case.
    pub original_file_id: Option<Uuid>,
    #[serde(default)]
    pub headers: Vec<MailHeader>,
    /// Why nothing automatic may answer it (`Auto-Submitted`, a list, ...).
    pub no_auto_reply: Option<String>,
}

/// `email-received`: the payload is the command's.
pub type EmailReceived = ReceiveEmail;

/// `case.recordBounce`: a delivery to these recipients failed for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordBounce {
    /// The bounce's own Message-ID.
    pub message_id: String,
    pub recipients: Vec<String>,
    /// The DSN status, e.g. `5.1.1`.
    pub status: Option<String>,
    pub diagnostic: Option<String>,
    /// The Message-ID of the mail that bounced, if the report names it.
    pub original_message_id: Option<String>,
}

/// `email-bounced`: the payload is the command's.
pub type EmailBounced = RecordBounce;

/// `case.recordEmailSent`: a mail about the case went out (a reply to a
/// comment, an acknowledgement), with the headers it was sent with, so
/// the timeline shows it and its Message-ID threads like any other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordEmailSent {
    /// The comment it carried; none for an acknowledgement.
    #[serde(default)]
    pub comment_id: Option<Uuid>,
    /// Without the angle brackets.
    pub message_id: String,
    #[serde(default)]
    pub in_reply_to: Option<String>,
    pub from: String,
    pub to: Vec<String>,
    #[serde(default)]
    pub cc: Vec<String>,
    pub subject: String,
    /// Sent by a machine (`Auto-Submitted`), not written by a person.
    #[serde(default)]
    pub automatic: bool,
    /// Names of the files it carried.
    #[serde(default)]
    pub files: Vec<String>,
}

/// `email-sent`: the payload is the command's.
pub type EmailSent = RecordEmailSent;

/// What a case knows of its mail.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MailThread {
    /// The mailbox the case's mail came in through first.
    pub mailbox: Option<String>,
    /// Addresses that wrote to the case or were copied (lower case).
    pub participants: Vec<String>,
    /// Message-IDs seen on the case (received and sent), newest last.
    pub message_ids: Vec<String>,
    /// The newest Message-ID received: what a reply answers.
    #[serde(default)]
    pub last_received: Option<String>,
    /// Addresses mail to which bounced.
    pub undeliverable: Vec<String>,
}

impl MailThread {
    /// Whether `email` wrote to the case, was copied, or is its requester.
    pub fn is_participant(&self, email: &str) -> bool {
        self.participants.iter().any(|p| p.eq_ignore_ascii_case(email))
    }

    fn add_participant(&mut self, email: &str) {
        if !self.is_participant(email) && self.participants.len() < MAX_PARTICIPANTS {
            self.participants.push(email.to_ascii_lowercase());
        }
    }

    fn add_message_id(&mut self, id: &str) {
        if self.message_ids.iter().any(|m| m == id) {
            return;
        }
        if self.message_ids.len() >= MAX_MESSAGE_IDS {
            self.message_ids.remove(0);
        }
        self.message_ids.push(id.to_owned());
    }
}

fn address(field: &str, a: &MailAddress) -> Result<(), DomainError> {
    let ok = a.email.len() <= MAX_ADDRESS && a.email.contains('@') && a.email == a.email.to_ascii_lowercase();
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid(field, "must be a lower-case e-mail address"))
    }
}

fn bounded(field: &str, value: &str, max: usize, required: bool) -> Result<(), DomainError> {
    if required && value.trim().is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(DomainError::invalid(field, format!("must be at most {max} characters")));
    }
    Ok(())
}

impl Case {
    /// `case.receiveEmail`.
    pub(crate) fn receive_email(&self, c: &ReceiveEmail) -> Result<CaseEvent, DomainError> {
        bounded("messageId", &c.message_id, MAX_MESSAGE_ID, true)?;
        bounded("mailbox", &c.mailbox, 200, true)?;
        bounded("subject", &c.subject, MAX_SUBJECT, false)?;
        bounded("body", &c.body, MAX_BODY, false)?;
        address("from", &c.from)?;
        for a in c.to.iter().chain(&c.cc) {
            address("to", a)?;
        }
        if c.headers.len() > MAX_HEADERS || c.files.len() > MAX_FILES || c.to.len() + c.cc.len() > MAX_PARTICIPANTS {
            return Err(DomainError::invalid("headers", "too many headers, files or recipients"));
        }
        if self.comments.iter().any(|x| x.id == c.comment_id) {
            return Err(DomainError::NoChange(format!(
                "comment {} already exists",
                c.comment_id
            )));
        }
        if self.comments.len() >= crate::case::MAX_COMMENTS {
            return Err(DomainError::limit("comments", crate::case::MAX_COMMENTS));
        }
        Ok(CaseEvent::EmailReceived(c.clone()))
    }

    /// `case.recordBounce`.
    pub(crate) fn record_bounce(&self, c: &RecordBounce) -> Result<CaseEvent, DomainError> {
        bounded("messageId", &c.message_id, MAX_MESSAGE_ID, true)?;
        if c.recipients.is_empty() || c.recipients.len() > MAX_PARTICIPANTS {
            return Err(DomainError::invalid("recipients", "must name 1 to 50 addresses"));
        }
        if c.recipients.iter().all(|r| self.mail.undeliverable.contains(r)) {
            return Err(DomainError::NoChange(
                "these recipients are already undeliverable".into(),
            ));
        }
        Ok(CaseEvent::EmailBounced(c.clone()))
    }

    /// `case.recordEmailSent`.
    pub(crate) fn record_email_sent(&self, c: &RecordEmailSent) -> Result<CaseEvent, DomainError> {
        bounded("messageId", &c.message_id, MAX_MESSAGE_ID, true)?;
        bounded("subject", &c.subject, MAX_SUBJECT, false)?;
        bounded("from", &c.from, MAX_ADDRESS, true)?;
        if c.to.is_empty() || c.to.len() + c.cc.len() > MAX_PARTICIPANTS || c.files.len() > MAX_FILES {
            return Err(DomainError::invalid(
                "to",
                "must name 1 to 50 recipients and at most 100 files",
            ));
        }
        if self.mail.message_ids.iter().any(|m| m == &c.message_id) {
            return Err(DomainError::NoChange(format!("{} is recorded already", c.message_id)));
        }
        Ok(CaseEvent::EmailSent(c.clone()))
    }

    /// Folds a mail event; `false` for any other event.
    pub(crate) fn apply_email(&mut self, meta: &EventMeta<'_>, event: &CaseEvent) -> bool {
        match event {
            CaseEvent::EmailReceived(e) => {
                self.comments.push(Comment {
                    id: e.comment_id,
                    parent_id: None,
                    body: e.body.clone(),
                    visibility: Visibility::Public,
                    author: e.from.email.clone(),
                    at: meta.time,
                    attachments: e.files.clone(),
                });
                let mail = &mut self.mail;
                mail.mailbox.get_or_insert_with(|| e.mailbox.clone());
                mail.add_participant(&e.from.email);
                for cc in &e.cc {
                    mail.add_participant(&cc.email);
                }
                mail.add_message_id(&e.message_id);
                mail.last_received = Some(e.message_id.clone());
                // Whoever writes is reachable again.
                mail.undeliverable.retain(|u| u != &e.from.email);
                true
            }
            CaseEvent::EmailSent(e) => {
                self.mail.add_message_id(&e.message_id);
                true
            }
            CaseEvent::EmailBounced(e) => {
                for r in &e.recipients {
                    if !self.mail.undeliverable.contains(r) {
                        self.mail.undeliverable.push(r.clone());
                    }
                }
                true
            }
            _ => false,
        }
    }
}
