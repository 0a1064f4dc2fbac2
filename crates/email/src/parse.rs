//! Raw MIME (RFC 5322) to an [`Inbound`], with `mail-parser`.

use chrono::{DateTime, Utc};
use mail_parser::{Address, HeaderValue, Message, MessageParser, MimeHeaders, PartType};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::trim;

/// An address with its display name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mailbox {
    pub name: Option<String>,
    /// Lower-cased.
    pub email: String,
}

/// A file in the message: an attachment or an inline image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
    /// The `Content-ID` (without `<>`), which `cid:` URLs of the HTML name.
    pub content_id: Option<String>,
    pub inline: bool,
}

/// A delivery status notification (RFC 3464) that reports a failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bounce {
    /// The recipients whose delivery failed, lower-cased.
    pub recipients: Vec<String>,
    /// `Status` (`5.1.1`) of the first failed recipient.
    pub status: Option<String>,
    /// `Diagnostic-Code` of the first failed recipient.
    pub diagnostic: Option<String>,
    /// The `Message-ID` of the message that bounced, when the report
    /// carries its headers.
    pub original_message_id: Option<String>,
}

/// A parsed message.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    /// Without the angle brackets.
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub subject: String,
    pub from: Option<Mailbox>,
    pub reply_to: Option<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub date: Option<DateTime<Utc>>,
    /// The whole text: the plain part, or the HTML converted to text.
    pub text: String,
    /// The text without quoted history and signature: the comment.
    pub comment: String,
    pub parts: Vec<Part>,
    /// Headers a person may want to see, in order: `(name, value)`.
    pub headers: Vec<(String, String)>,
    /// Raw header values, lower-cased names, for the loop guards.
    pub raw_headers: Vec<(String, String)>,
    pub bounce: Option<Bounce>,
    /// sha256 (hex) of what makes this message this message: its
    /// Message-ID, sender, date, subject, text and parts. Not of the raw
    /// bytes: the same mail fetched from two mailboxes differs in its
    /// `Received` and `Delivered-To` lines.
    pub fingerprint: String,
    /// Size of the raw message in bytes.
    pub size: usize,
}

/// What a message may be before it is quarantined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// The raw message, in bytes.
    pub max_bytes: usize,
    /// MIME parts.
    pub max_parts: usize,
    /// Nesting of multiparts and attached messages.
    pub max_depth: usize,
    /// All decoded parts together, in bytes (a small message can decode
    /// to much more: base64 of repeated data is still bounded by this).
    pub max_decoded_bytes: usize,
    /// File name extensions that are refused (lower case, no dot).
    pub blocked_extensions: Vec<String>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 40 * 1024 * 1024,
            max_parts: 250,
            max_depth: 12,
            max_decoded_bytes: 60 * 1024 * 1024,
            blocked_extensions: [
                "exe",
                "com",
                "bat",
                "cmd",
                "scr",
                "pif",
                "cpl",
                "msi",
                "msp",
                "jar",
                "js",
                "jse",
                "vbs",
                "vbe",
                "wsf",
                "wsh",
                "ps1",
                "hta",
                "lnk",
                "reg",
                "iso",
                "img",
                "vhd",
                "application",
                "gadget",
                "dll",
            ]
            .into_iter()
            .map(str::to_owned)
            .collect(),
        }
    }
}

impl Limits {
    /// What an admin's release of a held mail is read with: its
    /// attachments and size are vouched for, so the type and size limits
    /// are lifted; the nesting limit stays, since it guards the parser.
    pub fn waived(&self) -> Limits {
        Limits {
            max_bytes: usize::MAX,
            max_parts: usize::MAX,
            max_depth: self.max_depth,
            max_decoded_bytes: usize::MAX,
            blocked_extensions: Vec::new(),
        }
    }
}

/// `From` and `Subject` of a message, as far as its first 64 KiB of
/// headers can be read: what a held mail is listed with.
pub fn headline(raw: &[u8]) -> (Option<String>, Option<String>) {
    let head = &raw[..raw.len().min(64 * 1024)];
    let Some(message) = MessageParser::default().parse_headers(head) else {
        return (None, None);
    };
    let from = first(message.from()).map(|m| m.email);
    let subject = message.subject().map(|s| s.chars().take(300).collect());
    (from, subject)
}

/// Why a message is quarantined rather than ingested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Quarantine {
    #[error("the message is {size} bytes, more than the limit of {max}")]
    TooBig { size: usize, max: usize },
    #[error("the message is not MIME: no header could be read")]
    Unparsable,
    #[error("the message has no From address")]
    NoSender,
    #[error("the message has {parts} parts, more than the limit of {max}")]
    TooManyParts { parts: usize, max: usize },
    #[error("the message nests {depth} levels deep, more than the limit of {max}")]
    TooDeep { depth: usize, max: usize },
    #[error("the message decodes to {size} bytes, more than the limit of {max}")]
    DecodesTooBig { size: usize, max: usize },
    #[error("the attachment '{name}' has a blocked type")]
    BlockedAttachment { name: String },
}

impl Quarantine {
    /// A stable short code of the reason.
    pub fn code(&self) -> &'static str {
        match self {
            Quarantine::TooBig { .. } => "too-big",
            Quarantine::Unparsable => "unparsable",
            Quarantine::NoSender => "no-sender",
            Quarantine::TooManyParts { .. } => "too-many-parts",
            Quarantine::TooDeep { .. } => "too-deep",
            Quarantine::DecodesTooBig { .. } => "decodes-too-big",
            Quarantine::BlockedAttachment { .. } => "blocked-attachment",
        }
    }
}

/// Parses `raw`, or says why it must be quarantined.
pub fn parse(raw: &[u8], limits: &Limits) -> Result<Inbound, Quarantine> {
    if raw.len() > limits.max_bytes {
        return Err(Quarantine::TooBig {
            size: raw.len(),
            max: limits.max_bytes,
        });
    }
    let message = MessageParser::default().parse(raw).ok_or(Quarantine::Unparsable)?;
    if message.headers().is_empty() {
        return Err(Quarantine::Unparsable);
    }
    check_shape(&message, limits, 1)?;
    let from = first(message.from()).ok_or(Quarantine::NoSender)?;
    let parts = files(&message, limits)?;
    let text = body_text(&message);
    let inbound = Inbound {
        message_id: message.message_id().map(strip_brackets),
        in_reply_to: ids(message.in_reply_to()),
        references: ids(message.references()),
        subject: message.subject().unwrap_or_default().trim().to_owned(),
        from: Some(from),
        reply_to: first(message.reply_to()),
        to: all(message.to()),
        cc: all(message.cc()),
        date: message
            .date()
            .and_then(|d| DateTime::parse_from_rfc3339(&d.to_rfc3339()).ok())
            .map(|d| d.with_timezone(&Utc)),
        comment: trim::comment(&text),
        text,
        headers: shown_headers(&message),
        raw_headers: message
            .headers_raw()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_owned()))
            .collect(),
        bounce: bounce(&message),
        fingerprint: String::new(),
        size: raw.len(),
        parts,
    };
    Ok(Inbound {
        fingerprint: fingerprint(&inbound),
        ..inbound
    })
}

/// Part count, nesting and decoded size, including attached messages.
fn check_shape(message: &Message<'_>, limits: &Limits, depth: usize) -> Result<(), Quarantine> {
    if message.parts.len() > limits.max_parts {
        return Err(Quarantine::TooManyParts {
            parts: message.parts.len(),
            max: limits.max_parts,
        });
    }
    let decoded: usize = message.parts.iter().map(|p| p.len()).sum();
    if decoded > limits.max_decoded_bytes {
        return Err(Quarantine::DecodesTooBig {
            size: decoded,
            max: limits.max_decoded_bytes,
        });
    }
    let deepest = nesting(message, limits, 0, depth)?;
    if deepest > limits.max_depth {
        return Err(Quarantine::TooDeep {
            depth: deepest,
            max: limits.max_depth,
        });
    }
    Ok(())
}

/// The depth of the part tree under part `id`; stops counting past the
/// limit, so a hostile tree costs no more than the limit.
fn nesting(message: &Message<'_>, limits: &Limits, id: usize, depth: usize) -> Result<usize, Quarantine> {
    if depth > limits.max_depth {
        return Ok(depth);
    }
    let Some(part) = message.parts.get(id) else {
        return Ok(depth);
    };
    match &part.body {
        PartType::Multipart(children) => {
            let mut deepest = depth;
            for child in children {
                // A part never contains itself or an earlier part.
                let child = *child as usize;
                if child > id {
                    deepest = deepest.max(nesting(message, limits, child, depth + 1)?);
                }
            }
            Ok(deepest)
        }
        PartType::Message(inner) => {
            check_shape(inner, limits, depth + 1)?;
            nesting(inner, limits, 0, depth + 1)
        }
        _ => Ok(depth),
    }
}

fn strip_brackets(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_owned()
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(t) => vec![strip_brackets(t)],
        HeaderValue::TextList(list) => list.iter().map(|t| strip_brackets(t)).collect(),
        _ => Vec::new(),
    }
    .into_iter()
    .filter(|id| !id.is_empty())
    .collect()
}

fn mailbox(addr: &mail_parser::Addr<'_>) -> Option<Mailbox> {
    let email = addr.address()?.trim().to_ascii_lowercase();
    email.contains('@').then(|| Mailbox {
        name: addr.name().map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()),
        email,
    })
}

fn first(address: Option<&Address<'_>>) -> Option<Mailbox> {
    address?.iter().find_map(mailbox)
}

fn all(address: Option<&Address<'_>>) -> Vec<Mailbox> {
    address
        .map(|a| a.iter().filter_map(mailbox).collect())
        .unwrap_or_default()
}

/// The plain text, or the HTML as text when there is no plain part.
fn body_text(message: &Message<'_>) -> String {
    let text = message.body_text(0).map(|t| t.into_owned()).unwrap_or_default();
    text.replace("\r\n", "\n").trim().to_owned()
}

fn shown_headers(message: &Message<'_>) -> Vec<(String, String)> {
    const SHOWN: [&str; 9] = [
        "From",
        "To",
        "Cc",
        "Reply-To",
        "Subject",
        "Date",
        "Message-ID",
        "In-Reply-To",
        "References",
    ];
    message
        .headers_raw()
        .filter(|(name, _)| SHOWN.iter().any(|s| s.eq_ignore_ascii_case(name)))
        .map(|(name, value)| (name.to_owned(), value.split_whitespace().collect::<Vec<_>>().join(" ")))
        .collect()
}

/// Attachments and inline images; a blocked type stops the message.
fn files(message: &Message<'_>, limits: &Limits) -> Result<Vec<Part>, Quarantine> {
    let mut out = Vec::new();
    for part in message.attachments() {
        let content_type = part
            .content_type()
            .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("octet-stream")).to_ascii_lowercase())
            .unwrap_or_else(|| "application/octet-stream".into());
        let name = part
            .attachment_name()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("part-{}.{}", out.len() + 1, extension_of(&content_type)));
        let extension = name
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        if limits.blocked_extensions.contains(&extension) {
            return Err(Quarantine::BlockedAttachment { name });
        }
        let bytes = match &part.body {
            PartType::Message(inner) => inner.raw_message().to_vec(),
            _ => part.contents().to_vec(),
        };
        out.push(Part {
            name,
            content_type,
            bytes,
            content_id: part.content_id().map(strip_brackets),
            inline: part.content_disposition().is_some_and(|d| d.is_inline()),
        });
    }
    Ok(out)
}

fn extension_of(content_type: &str) -> &'static str {
    match content_type {
        "message/rfc822" => "eml",
        "message/delivery-status" => "txt",
        "text/plain" => "txt",
        "text/html" => "html",
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        "application/pdf" => "pdf",
        _ => "bin",
    }
}

/// A `multipart/report; report-type=delivery-status` with failed recipients.
fn bounce(message: &Message<'_>) -> Option<Bounce> {
    let root = message.content_type()?;
    let is_report = root.ctype().eq_ignore_ascii_case("multipart")
        && root.subtype().is_some_and(|s| s.eq_ignore_ascii_case("report"))
        && root
            .attribute("report-type")
            .is_some_and(|r| r.eq_ignore_ascii_case("delivery-status"));
    if !is_report {
        return None;
    }
    let status_part = message.parts.iter().find(|p| {
        p.content_type().is_some_and(|c| {
            c.ctype().eq_ignore_ascii_case("message")
                && c.subtype().is_some_and(|s| s.eq_ignore_ascii_case("delivery-status"))
        })
    })?;
    let text = String::from_utf8_lossy(status_part.contents()).into_owned();
    let mut report = dsn_fields(&text);
    // The bounced mail comes back whole (message/rfc822) or as its
    // headers only (text/rfc822-headers).
    report.original_message_id = message.parts.iter().find_map(|p| match &p.body {
        PartType::Message(inner) => inner.message_id().map(strip_brackets),
        _ if p
            .content_type()
            .is_some_and(|c| c.subtype().is_some_and(|s| s.eq_ignore_ascii_case("rfc822-headers"))) =>
        {
            String::from_utf8_lossy(p.contents()).lines().find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.trim()
                    .eq_ignore_ascii_case("message-id")
                    .then(|| strip_brackets(value))
            })
        }
        _ => None,
    });
    (!report.recipients.is_empty()).then_some(report)
}

/// The per-recipient fields of a delivery-status body: blocks separated by
/// blank lines, `Action: failed` marks a failed recipient.
fn dsn_fields(text: &str) -> Bounce {
    let mut bounce = Bounce {
        recipients: Vec::new(),
        status: None,
        diagnostic: None,
        original_message_id: None,
    };
    let normal = text.replace("\r\n", "\n");
    for block in normal.split("\n\n") {
        let field = |name: &str| {
            block.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
        };
        let failed = field("Action").is_some_and(|a| a.eq_ignore_ascii_case("failed"));
        let Some(recipient) = field("Final-Recipient").or_else(|| field("Original-Recipient")) else {
            continue;
        };
        if !failed {
            continue;
        }
        // `rfc822; someone@example.com`
        let address = recipient
            .rsplit(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if bounce.recipients.is_empty() {
            bounce.status = field("Status");
            bounce.diagnostic = field("Diagnostic-Code");
        }
        bounce.recipients.push(address);
    }
    bounce
}

fn fingerprint(m: &Inbound) -> String {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    };
    field(m.message_id.as_deref().unwrap_or_default().as_bytes());
    field(m.from.as_ref().map(|f| f.email.as_str()).unwrap_or_default().as_bytes());
    field(m.date.map(|d| d.timestamp().to_string()).unwrap_or_default().as_bytes());
    field(m.subject.as_bytes());
    field(m.text.as_bytes());
    for part in &m.parts {
        field(part.name.as_bytes());
        field(&Sha256::digest(&part.bytes));
    }
    hex::encode(h.finalize())
}

/// sha256 (hex) of bytes, for files.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
