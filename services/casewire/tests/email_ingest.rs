//! `casewire serve email-ingest` killed with SIGKILL during a burst of
//! 1,000 mails in a real IMAP server (Dovecot), then started again: every
//! mail becomes exactly one case with exactly one mail event, and every
//! message ends flagged as taken.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// Shared with the end-to-end tests; not every helper is used here.
#[allow(dead_code)]
#[path = "../../../tests/e2e/src/imap.rs"]
mod imap;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_casewire");
const MAILS: usize = 1000;

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mail(n: usize) -> Vec<u8> {
    format!(
        "From: Customer {n} <customer{n}@customer.example>\r\nTo: support@casewire.example\r\n\
         Subject: Burst {n}\r\nMessage-ID: <burst-{n}@customer.example>\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nMail number {n}.\r\n"
    )
    .into_bytes()
}

/// The last UID the reader recorded, 0 before any.
fn last_uid(data: &std::path::Path) -> u64 {
    std::fs::read(data.join("email-ingest/support.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v["lastUid"].as_u64())
        .unwrap_or(0)
}

fn reader(data: &std::path::Path, config: &std::path::Path, api: &str) -> Proc {
    Proc(
        Command::new(BIN)
            .args(["serve", "email-ingest", "--config"])
            .arg(config)
            .env("CASEWIRE__MODE", "dev")
            .env("CASEWIRE__DATA_DIR", data)
            .env("CASEWIRE__SERVICE_ACCOUNT__API_URL", api)
            .env("CASEWIRE__MANAGEMENT__BIND", "127.0.0.1:0")
            .env("CASEWIRE__LOG__LEVEL", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Every case: id → (mail events, comments).
async fn cases(http: &reqwest::Client, api: &str, token: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{api}/cases?limit=200");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = http
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for item in page["items"].as_array().unwrap() {
            let id = item["id"].as_str().unwrap();
            let c: Value = http
                .get(format!("{api}/cases/{id}"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            out.push(c);
        }
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

#[tokio::test]
async fn kill_9_of_email_ingest_during_a_burst_of_1000_mails_takes_each_once() {
    let Some(bin) = imap::dovecot() else { return };
    let server = imap::Dovecot::start(&bin).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("casewire.toml");
    let dev_log = dir.path().join("dev.log");
    std::fs::write(
        &config,
        format!(
            "[email]\ningest = false\n\n[[email.mailboxes]]\nname = \"support\"\ntenant = \"casewire\"\n\
             address = \"support@casewire.example\"\ndefinition = \"customer-complaint\"\n\
             data = {{ channel = \"email\", product = \"unknown\" }}\nimap_url = \"{}\"\n",
            server.url()
        ),
    )
    .unwrap();
    let mut api_proc = Command::new(BIN)
        .args(["dev", "--port", "0", "--no-demo", "--data-dir"])
        .arg(&data)
        .arg("--config")
        .arg(&config)
        .env("CASEWIRE__LOG__LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&dev_log).unwrap())
        .spawn()
        .unwrap();
    // Read the whole banner, not just its first line, and keep reading:
    // the server's stdout stays open for as long as it runs.
    let mut lines = BufReader::new(api_proc.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    std::thread::spawn(move || lines.for_each(drop));
    let _api_proc = Proc(api_proc);
    // What the server logged, for a failure message.
    let log_tail = || {
        let log = std::fs::read_to_string(&dev_log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    };
    let api = first.split_whitespace().nth(1).unwrap().to_owned();
    let base = api.trim_end_matches("/api/v1").to_owned();
    let token = |user: &str| {
        let out = Command::new(BIN)
            .args(["token", user, "--data-dir"])
            .arg(&data)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let carol = token("carol");
    let http = reqwest::Client::new();
    for (_, yaml) in casewire::DEMO_DEFINITIONS {
        let r = http
            .post(format!("{api}/definitions"))
            .bearer_auth(&carol)
            .header("content-type", "application/yaml")
            .body(*yaml)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
    }

    let mails: Vec<Vec<u8>> = (0..MAILS).map(mail).collect();
    server.append_all("INBOX", &mails).await;
    let started = Instant::now();
    let mut ingest = reader(&data, &config, &base);
    let deadline = Instant::now() + Duration::from_secs(300);
    while last_uid(&data) < 300 {
        assert!(
            Instant::now() < deadline,
            "the reader took fewer than 300 mails in 5 minutes; the server logged:\n{}",
            log_tail()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ingest.0.kill().unwrap(); // SIGKILL
    let _ = ingest.0.wait();
    let at_kill = last_uid(&data);
    eprintln!("killed email-ingest with SIGKILL at UID {at_kill}");
    let _ingest = reader(&data, &config, &base);
    while last_uid(&data) < MAILS as u64 {
        assert!(
            Instant::now() < deadline,
            "only {} of {MAILS} mails taken; the server logged:\n{}",
            last_uid(&data),
            log_tail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "{MAILS} mails taken in {:.1} s, across one kill",
        started.elapsed().as_secs_f64()
    );

    let all = cases(&http, &api, &carol).await;
    assert_eq!(all.len(), MAILS, "one case per mail");
    let mut ids = HashSet::new();
    for c in &all {
        assert_eq!(
            c["comments"].as_array().unwrap().len(),
            1,
            "one mail event per case: {c}"
        );
        assert!(
            ids.insert(c["mail"]["messageIds"][0].as_str().unwrap().to_owned()),
            "a mail twice: {c}"
        );
    }
    let flags = server.flags("INBOX").await;
    assert_eq!(flags.len(), MAILS);
    assert!(
        flags.iter().all(|f| f.iter().any(|x| x.contains("CasewireIngested"))),
        "every message is flagged as taken"
    );
    server.stop().await;
}
