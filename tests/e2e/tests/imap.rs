//! Mail read from a real IMAP server (Dovecot), delivered into it with IMAP
//! APPEND: a mail becomes a case (the reader waits with IDLE), is flagged
//! as taken only after, and a restart reads nothing twice; a mail that can
//! not be taken is moved whole to the quarantine folder and opens nothing.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use casewire::embedded::Services;
use casewire_e2e::imap::{Dovecot, dovecot};
use casewire_e2e::{TestApp, eventually};
use casewire_runtime::config::{MailboxConfig, SecretUrl};
use serde_json::{Value, json};

fn corpus(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/../email/corpus/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn config(c: &mut casewire_runtime::Config, url: &str) {
    c.email.mailboxes = vec![MailboxConfig {
        data: json!({"channel": "email", "product": "unknown"}),
        imap_url: Some(SecretUrl::new(url)),
        ..MailboxConfig::new("support", "casewire", "support@casewire.example", "customer-complaint")
    }];
    // A wake-up without IDLE would take this long; IDLE answers sooner.
    c.email.poll_secs = 60;
}

async fn cases(app: &TestApp) -> Vec<Value> {
    let list = app.client("carol").get("/api/v1/cases").await.unwrap().body;
    list["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_mail_in_the_mailbox_becomes_a_case_once_and_a_bad_one_goes_to_quarantine() {
    let Some(bin) = dovecot() else { return };
    let server = Dovecot::start(&bin).await;
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = casewire_e2e::test_config(dir.path());
    config(&mut cfg, &url);
    let app = TestApp::start_with(dir, cfg, Services::default(), true).await;
    // Let the reader log in and start waiting.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let delivered = Instant::now();
    server.append("INBOX", &corpus("gmail-new.eml")).await;
    let opened = eventually(Duration::from_secs(30), || async {
        let all = cases(&app).await;
        (!all.is_empty()).then_some(all)
    })
    .await
    .unwrap_or_else(|| panic!("no case from the mailbox; dovecot log:\n{}", server.log()));
    eprintln!(
        "IMAP APPEND -> case visible in {} ms (IDLE)",
        delivered.elapsed().as_millis()
    );
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0]["title"], "My kettle leaks");
    let flagged = eventually(Duration::from_secs(10), || async {
        let flags = server.flags("INBOX").await;
        flags
            .first()
            .is_some_and(|f| f.iter().any(|x| x.contains("CasewireIngested")))
            .then_some(flags)
    })
    .await
    .expect("the message is flagged once its case event is stored");
    assert!(flagged[0].iter().any(|x| x.contains("Seen")), "{flagged:?}");

    server.append("INBOX", &corpus("dangerous-attachment.eml")).await;
    let quarantined = eventually(Duration::from_secs(30), || async {
        let q = server.flags("Casewire-Quarantine").await;
        (q.len() == 1).then_some(q)
    })
    .await;
    assert!(
        quarantined.is_some(),
        "the refused mail is kept whole in the quarantine folder"
    );
    assert_eq!(server.flags("INBOX").await.len(), 1, "moved, not copied");
    assert_eq!(cases(&app).await.len(), 1, "it opened nothing");

    // A restart reads on from where it was: nothing twice.
    let id = opened[0]["id"].as_str().unwrap().to_owned();
    let history = |app: &TestApp| {
        let c = app.client("carol");
        let id = id.clone();
        async move {
            c.get(&format!("/api/v1/cases/{id}/history")).await.unwrap().body["items"]
                .as_array()
                .unwrap()
                .len()
        }
    };
    let before = history(&app).await;
    let dir = app.stop().await;
    let mut cfg = casewire_e2e::test_config(dir.path());
    config(&mut cfg, &url);
    let app = TestApp::start_with(dir, cfg, Services::default(), false).await;
    server.append("INBOX", &corpus("shift-jis.eml")).await;
    eventually(Duration::from_secs(30), || async {
        (cases(&app).await.len() == 2).then_some(())
    })
    .await
    .expect("the next mail after the restart");
    assert_eq!(history(&app).await, before, "the first mail was not taken again");
    app.stop().await;
    server.stop().await;
}

/// A mail from `from` as an auto-responder writes it: `polite` ones say
/// they are automatic and answer in the thread; rude ones do neither, so
/// every answer looks like a new conversation.
fn responder_mail(from: &str, n: usize, answering: Option<&str>, polite: bool) -> Vec<u8> {
    let headers = match (polite, answering) {
        (true, Some(id)) => format!("Auto-Submitted: auto-replied\r\nIn-Reply-To: {id}\r\n"),
        _ => String::new(),
    };
    format!(
        "From: Robot <{from}>\r\nTo: support@casewire.example\r\nSubject: Thank you for your e-mail ({n})\r\n\
         Message-ID: <bot-{n}-{}@robots.example>\r\nDate: Thu, 3 Dec 2026 09:00:00 +0000\r\n{headers}\
         Content-Type: text/plain; charset=utf-8\r\n\r\nWe got your mail and will answer it soon.\r\n",
        from.replace('@', ".")
    )
    .into_bytes()
}

/// The Message-ID of a raw message.
fn message_id_of(data: &str) -> String {
    data.lines()
        .find_map(|l| l.strip_prefix("Message-ID: "))
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn auto_responders_that_answer_every_mail_do_not_keep_a_loop_going() {
    let Some(bin) = dovecot() else { return };
    let Some(python) = casewire_e2e::ws::python() else {
        return;
    };
    let server = Dovecot::start(&bin).await;
    let smtp = casewire_e2e::notify::SmtpSink::start(&python).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = casewire_e2e::test_config(dir.path());
    config(&mut cfg, &server.url());
    cfg.notify.smtp_url = Some(SecretUrl::new(smtp.url()));
    let limit = cfg.email.auto_reply_limit as usize;
    let app = TestApp::start_with(dir, cfg, Services::default(), true).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Two robots write once; from then on each answers every mail it gets
    // (through the real SMTP server, back into the real IMAP mailbox).
    let (rude, polite) = ("rude@robots.example", "polite@robots.example");
    server.append("INBOX", &responder_mail(rude, 0, None, false)).await;
    server.append("INBOX", &responder_mail(polite, 0, None, true)).await;
    let mut answered = [0usize; 2];
    let mut quiet_since = Instant::now();
    let started = Instant::now();
    while quiet_since.elapsed() < Duration::from_secs(10) {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the exchange never stopped"
        );
        for (i, robot) in [rude, polite].into_iter().enumerate() {
            let got = smtp.to(robot);
            for mail in &got[answered[i]..] {
                let id = message_id_of(mail["data"].as_str().unwrap());
                let n = answered[i] + 1;
                server
                    .append("INBOX", &responder_mail(robot, n, Some(&id), i == 1))
                    .await;
                answered[i] = n;
                quiet_since = Instant::now();
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    eprintln!("robots answered {answered:?} mails; the limit is {limit}");
    assert_eq!(
        answered[0], limit,
        "the rude robot got email.auto_reply_limit acknowledgements, then none"
    );
    assert_eq!(answered[1], 1, "the polite robot's automatic answer got none");
    let all = cases(&app).await;
    assert_eq!(
        all.len(),
        limit + 1 + 1,
        "one case per rude mail, one for the polite robot"
    );
    let mut details = Vec::new();
    for c in &all {
        let id = c["id"].as_str().unwrap();
        details.push(
            app.client("carol")
                .get(&format!("/api/v1/cases/{id}"))
                .await
                .unwrap()
                .body,
        );
    }
    let polite_case = details.iter().find(|d| d["requester"]["email"] == polite).unwrap();
    assert_eq!(
        polite_case["comments"].as_array().unwrap().len(),
        2,
        "the polite robot's answer joined its case: {polite_case}"
    );
    app.stop().await;
    server.stop().await;
}

/// A mail with a 20 MB attachment, made here rather than kept in the repo.
fn twenty_megabytes() -> Vec<u8> {
    use base64::Engine;
    let bytes: Vec<u8> = (0..20 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let body = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "From: Big Sender <big@example.org>\r\nTo: support@casewire.example\r\nSubject: The scans\r\n\
         Message-ID: <scans-1@example.org>\r\nDate: Thu, 3 Dec 2026 08:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Here are the scans.\r\n--b1\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"scans.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b1--\r\n",
        lines.join("\r\n")
    )
    .into_bytes()
}

#[tokio::test]
async fn every_mail_of_the_corpus_becomes_a_case_a_comment_or_a_held_mail_and_none_is_lost() {
    let Some(bin) = dovecot() else { return };
    let server = Dovecot::start(&bin).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = casewire_e2e::test_config(dir.path());
    config(&mut cfg, &server.url());
    let app = TestApp::start_with(dir, cfg, Services::default(), true).await;
    let path = format!("{}/../email/corpus", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(&path)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".eml"))
        .collect();
    names.sort();
    let mut mails: Vec<Vec<u8>> = names.iter().map(|n| corpus(n)).collect();
    mails.push(twenty_megabytes());
    server.append_all("INBOX", &mails).await;

    // Each is taken (flagged) or moved to the quarantine folder: none stays.
    let settled = eventually(Duration::from_secs(120), || async {
        let inbox = server.flags("INBOX").await;
        let held = server.flags("Casewire-Quarantine").await;
        let taken = inbox
            .iter()
            .filter(|f| f.iter().any(|x| x.contains("CasewireIngested")))
            .count();
        (taken == inbox.len() && taken + held.len() == mails.len()).then_some((taken, held.len()))
    })
    .await
    .unwrap_or_else(|| panic!("not every mail was handled; dovecot log:\n{}", server.log()));
    eprintln!("{} mails: {} taken, {} held", mails.len(), settled.0, settled.1);
    let list = app
        .client("carol")
        .get("/api/v1/inbound/quarantine")
        .await
        .unwrap()
        .body;
    let mut reasons: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["reason"].as_str().unwrap())
        .collect();
    reasons.sort_unstable();
    assert_eq!(reasons, ["blocked-attachment", "unparsable"], "{list}");
    assert_eq!(settled.1, 2, "what the API held is in the quarantine folder too");
    let all = cases(&app).await;
    let big = all
        .iter()
        .find(|c| c["title"] == "The scans")
        .expect("the 20 MB mail is a case");
    let detail = app
        .client("carol")
        .get(&format!("/api/v1/cases/{}", big["id"].as_str().unwrap()))
        .await
        .unwrap()
        .body;
    let pdf = detail["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "scans.pdf")
        .unwrap();
    assert_eq!(pdf["size"], 20 * 1024 * 1024, "{pdf}");
    // The reader is still alive: the next mail is taken.
    let before = all.len();
    let next = String::from_utf8(corpus("gmail-new.eml"))
        .unwrap()
        .replace("My kettle leaks", "My toaster too")
        .replace("CAF4x8s1m", "CAF4toaster");
    server.append("INBOX", next.as_bytes()).await;
    let more = eventually(Duration::from_secs(30), || async {
        (cases(&app).await.len() == before + 1).then_some(())
    })
    .await;
    assert!(more.is_some(), "a mail after the corpus is still taken");
    app.stop().await;
    server.stop().await;
}
