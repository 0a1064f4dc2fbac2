//! The corpus under `tests/email/corpus`: mail shaped like what Gmail,
//! Outlook and Apple Mail send, other charsets, a bounce, an
//! out-of-office reply, list mail, a dangerous attachment and a message
//! that is not mail. Each is parsed, quarantined or guarded as it must be.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use casewire_email::guard::no_auto_reply;
use casewire_email::{Limits, Quarantine, parse, thread};

fn corpus(name: &str) -> Vec<u8> {
    let path = format!("{}/../../tests/email/corpus/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

const OWN: &[&str] = &["support@casewire.example"];

fn own() -> Vec<String> {
    OWN.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn gmail_plain_and_html_alternative_reads_the_plain_part() {
    let m = parse(&corpus("gmail-new.eml"), &Limits::default()).unwrap();
    assert_eq!(
        m.message_id.as_deref(),
        Some("CAF4x8s1m+Qa9w7aGmail0001@mail.gmail.example")
    );
    assert_eq!(m.from.as_ref().unwrap().email, "dave.miller@gmail.example");
    assert_eq!(m.from.as_ref().unwrap().name.as_deref(), Some("Dave Miller"));
    assert_eq!(m.subject, "My kettle leaks");
    assert!(
        m.text
            .contains("leaks from the base since Sunday. Could you replace it? — Dave"),
        "{}",
        m.text
    );
    assert!(m.parts.is_empty());
    assert_eq!(no_auto_reply(&m, &own()), None);
    assert_eq!(thread::subject_key(&m.subject), None);
}

#[test]
fn outlook_reply_in_latin_1_keeps_its_receipt_and_loses_the_quoted_history() {
    let m = parse(&corpus("outlook-reply-with-receipt.eml"), &Limits::default()).unwrap();
    assert_eq!(m.from.as_ref().unwrap().email, "dave.miller@contoso.example");
    assert_eq!(thread::subject_key(&m.subject).as_deref(), Some("CMP-000001"));
    assert!(m.text.contains("49 €, bought in München"), "{}", m.text);
    assert_eq!(
        m.comment,
        "Here is the receipt. The kettle cost 49 €, bought in München.\n\nKind regards,\nDave"
    );
    let names: Vec<&str> = m.parts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["receipt.pdf", "winmail.dat"]);
    assert!(m.parts[0].bytes.starts_with(b"%PDF-1.4"));
    assert_eq!(m.parts[1].content_type, "application/ms-tnef");
}

#[test]
fn apple_html_only_mail_becomes_text_without_script_and_keeps_its_inline_image() {
    let m = parse(&corpus("apple-html-inline-image.eml"), &Limits::default()).unwrap();
    assert!(m.text.contains("Here is a photo:"), "{}", m.text);
    assert!(
        !m.text.contains("alert(1)") && !m.text.contains("color:red"),
        "{}",
        m.text
    );
    assert_eq!(
        m.in_reply_to,
        ["case-01a23847-9f22-705b-bd9a-bbc5c5ef6a9a.c1@casewire.local"]
    );
    let case = thread::case_of_message_id(&m.in_reply_to[0], "casewire.local");
    assert_eq!(
        case.map(|c| c.to_string()).as_deref(),
        Some("01a23847-9f22-705b-bd9a-bbc5c5ef6a9a")
    );
    assert_eq!(m.parts.len(), 1);
    assert_eq!(m.parts[0].content_id.as_deref(), Some("photo1@example.com"));
    assert!(m.parts[0].inline);
    assert!(m.parts[0].bytes.starts_with(b"\x89PNG"));
}

#[test]
fn shift_jis_and_iso_2022_jp_are_decoded() {
    let m = parse(&corpus("shift-jis.eml"), &Limits::default()).unwrap();
    assert_eq!(m.subject, "ケトルの故障について");
    assert_eq!(m.from.as_ref().unwrap().name.as_deref(), Some("山田太郎"));
    assert!(m.text.starts_with("ケトルが故障しています。"), "{}", m.text);
}

#[test]
fn a_dsn_names_the_failed_recipient_and_is_never_answered() {
    let m = parse(&corpus("dsn-bounce.eml"), &Limits::default()).unwrap();
    let bounce = m.bounce.clone().unwrap();
    assert_eq!(bounce.recipients, ["gone@example.com"]);
    assert_eq!(bounce.status.as_deref(), Some("5.1.1"));
    assert!(bounce.diagnostic.unwrap().contains("User unknown"));
    assert_eq!(
        bounce.original_message_id.as_deref(),
        Some("case-01a23847-9f22-705b-bd9a-bbc5c5ef6a9a.c2@casewire.local")
    );
    assert!(no_auto_reply(&m, &own()).is_some());
}

#[test]
fn out_of_office_and_list_mail_get_no_automatic_answer() {
    let ooo = parse(&corpus("out-of-office.eml"), &Limits::default()).unwrap();
    assert_eq!(no_auto_reply(&ooo, &own()), Some("Auto-Submitted"));
    let list = parse(&corpus("mailing-list.eml"), &Limits::default()).unwrap();
    assert_eq!(no_auto_reply(&list, &own()), Some("Precedence"));
}

#[test]
fn a_dangerous_attachment_and_a_non_mail_are_quarantined_with_a_reason() {
    let bad = parse(&corpus("dangerous-attachment.eml"), &Limits::default()).unwrap_err();
    assert_eq!(
        bad,
        Quarantine::BlockedAttachment {
            name: "invoice.pdf.exe".into()
        }
    );
    let junk = parse(&corpus("malformed.eml"), &Limits::default()).unwrap_err();
    assert!(
        matches!(junk, Quarantine::Unparsable | Quarantine::NoSender),
        "{junk:?}"
    );
}

#[test]
fn a_20_mb_attachment_is_read_and_a_bigger_message_than_the_limit_is_not() {
    let payload: Vec<u8> = (0..20 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let mut raw = b"From: Dave <dave@example.com>\r\nTo: support@casewire.example\r\nSubject: Video\r\n\
        Message-ID: <big@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
        --b\r\nContent-Type: text/plain\r\n\r\nThe video.\r\n--b\r\nContent-Type: video/mp4\r\n\
        Content-Disposition: attachment; filename=clip.mp4\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        .to_vec();
    let encoded = base64_lines(&payload);
    raw.extend_from_slice(encoded.as_bytes());
    raw.extend_from_slice(b"\r\n--b--\r\n");
    let m = parse(&raw, &Limits::default()).unwrap();
    assert_eq!(m.parts[0].bytes.len(), payload.len());
    assert_eq!(
        casewire_email::sha256_hex(&m.parts[0].bytes),
        casewire_email::sha256_hex(&payload)
    );
    let small = Limits {
        max_bytes: 10 * 1024 * 1024,
        ..Limits::default()
    };
    assert!(matches!(parse(&raw, &small), Err(Quarantine::TooBig { .. })));
}

#[test]
fn the_same_mail_from_two_mailboxes_has_one_fingerprint_and_a_reused_id_another() {
    let raw = corpus("gmail-new.eml");
    let mut other_box = b"Delivered-To: sales@casewire.example\r\nReceived: from elsewhere\r\n".to_vec();
    other_box.extend_from_slice(&raw);
    let a = parse(&raw, &Limits::default()).unwrap();
    let b = parse(&other_box, &Limits::default()).unwrap();
    assert_eq!(a.fingerprint, b.fingerprint);
    let text = String::from_utf8(raw)
        .unwrap()
        .replace("Could you replace it?", "Could you refund it?");
    let c = parse(text.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(a.message_id, c.message_id);
    assert_ne!(a.fingerprint, c.fingerprint);
}

#[test]
fn deep_nesting_is_quarantined() {
    let mut raw = String::from("From: x@example.com\r\nSubject: deep\r\nMIME-Version: 1.0\r\n");
    for i in 0..20 {
        raw.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n"
        ));
    }
    raw.push_str("Content-Type: text/plain\r\n\r\nhi\r\n");
    for i in (0..20).rev() {
        raw.push_str(&format!("--b{i}--\r\n"));
    }
    assert!(matches!(
        parse(raw.as_bytes(), &Limits::default()),
        Err(Quarantine::TooDeep { .. })
    ));
}

/// Base64 in 76-character lines, as mail has it.
fn base64_lines(bytes: &[u8]) -> String {
    use base64::Engine;
    let flat = base64::engine::general_purpose::STANDARD.encode(bytes);
    flat.as_bytes()
        .chunks(76)
        .map(|l| std::str::from_utf8(l).unwrap())
        .collect::<Vec<_>>()
        .join("\r\n")
}
