//! Whether a message may get an automatic answer (RFC 3834 and what real
//! auto-responders and lists send), so that Casewire and an
//! auto-responder never answer each other forever.

use crate::Inbound;

/// Why nothing automatic may answer `mail`; `None` when something may.
/// `own` are Casewire's own addresses (mailboxes, the `From` of its mail).
pub fn no_auto_reply(mail: &Inbound, own: &[String]) -> Option<&'static str> {
    let header = |name: &str| {
        mail.raw_headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim().to_ascii_lowercase())
    };
    if header("auto-submitted").is_some_and(|v| !v.starts_with("no")) {
        return Some("Auto-Submitted");
    }
    if header("precedence").is_some_and(|v| matches!(v.as_str(), "bulk" | "list" | "junk")) {
        return Some("Precedence");
    }
    if header("x-auto-response-suppress").is_some() {
        return Some("X-Auto-Response-Suppress");
    }
    if header("list-id").is_some() || header("list-unsubscribe").is_some() {
        return Some("List-Id");
    }
    if header("return-path").is_some_and(|v| v == "<>" || v.is_empty()) {
        return Some("empty Return-Path");
    }
    if mail.bounce.is_some() {
        return Some("a bounce");
    }
    let from = mail.from.as_ref().map(|f| f.email.as_str()).unwrap_or_default();
    if own.iter().any(|o| o.eq_ignore_ascii_case(from)) {
        return Some("mail from our own address");
    }
    if from.starts_with("mailer-daemon@")
        || from.starts_with("postmaster@")
        || from.contains("noreply")
        || from.contains("no-reply")
    {
        return Some("a no-reply sender");
    }
    None
}
