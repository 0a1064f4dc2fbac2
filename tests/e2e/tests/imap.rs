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
