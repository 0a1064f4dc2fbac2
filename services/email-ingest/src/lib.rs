//! `casewire serve email-ingest`: reads the IMAP mailboxes of
//! `email.mailboxes` and hands each message, raw, to the inbound webhook
//! of the Case API, as a pusher would; threading, dedupe and the policy
//! are the API's. A message is flagged (or moved) only once the API
//! answered that its case event is stored, and one the API refuses is
//! moved whole to the mailbox's quarantine folder (the API holds a copy in
//! its own quarantine, for admins to release or drop, unless the body was
//! too big to read at all); nothing is deleted.
//! The last UID handled is kept per mailbox (with the UIDVALIDITY it
//! belongs to), so a restart neither skips nor repeats; a message handled
//! but not yet recorded when the process died is delivered again, and the
//! API's mail-derived ids make that repeat change nothing. New mail is
//! waited for with IDLE where the server has it, else looked for every
//! `email.poll_secs`.

mod imap;
pub mod state;

pub use imap::check_login;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use casewire_camunda::ExternalTaskClient;
use casewire_runtime::config::MailboxConfig;
use tokio_util::sync::CancellationToken;

/// A reader of mailboxes, ready to run.
#[derive(Debug)]
pub struct Reader {
    pub client: ExternalTaskClient,
    /// Where the read positions are kept.
    pub data_dir: PathBuf,
    /// The longest wait for new mail (an IDLE, or the poll interval).
    pub poll: Duration,
    pub idle: bool,
}

/// What the API made of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// Its case event is stored.
    Taken,
    /// Refused for good, with the reason.
    Refused(String),
}

impl Reader {
    /// Hands one raw message to the API. An error is for trying again
    /// later (the API is down, busy, or the account is misconfigured).
    pub async fn deliver(&self, mailbox: &str, raw: &[u8]) -> anyhow::Result<Delivered> {
        let path = format!("/api/v1/inbound/email?mailbox={mailbox}");
        let (status, body) = self
            .client
            .post_bytes(&path, "message/rfc822", raw, Duration::from_secs(120))
            .await?;
        match status.as_u16() {
            200..=299 => Ok(Delivered::Taken),
            413 => Ok(Delivered::Refused("too-big".into())),
            422 if body["code"] == "CW-MAIL-QUARANTINED" => Ok(Delivered::Refused(
                body["details"]["reason"].as_str().unwrap_or("refused").to_owned(),
            )),
            code => anyhow::bail!(
                "the API answered {code} {}: {}",
                body["code"].as_str().unwrap_or(""),
                body["message"].as_str().unwrap_or("")
            ),
        }
    }
}

/// Reads every mailbox that has an `imap_url` until `shutdown`.
pub async fn run(
    reader: Arc<Reader>,
    mailboxes: Vec<MailboxConfig>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let boxes: Vec<MailboxConfig> = mailboxes.into_iter().filter(|m| m.imap_url.is_some()).collect();
    if boxes.is_empty() {
        tracing::info!("No mailbox has an imap_url: nothing to read");
        shutdown.cancelled().await;
        return Ok(());
    }
    // A wrong URL, tls= or CA file is the operator's to fix: said once at
    // the start rather than in every retry.
    for mailbox in &boxes {
        if let Some(url) = &mailbox.imap_url {
            imap::check_url(url.expose()).with_context(|| format!("the imap_url of mailbox {}", mailbox.name))?;
        }
    }
    let mut running = tokio::task::JoinSet::new();
    for mailbox in boxes {
        running.spawn(watch(reader.clone(), mailbox, shutdown.clone()));
    }
    while let Some(ended) = running.join_next().await {
        ended?;
    }
    Ok(())
}

/// Keeps one mailbox read, reconnecting with backoff after any failure.
async fn watch(reader: Arc<Reader>, mailbox: MailboxConfig, shutdown: CancellationToken) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let started = std::time::Instant::now();
        let result = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = imap::session(&reader, &mailbox, &shutdown) => r,
        };
        match result {
            Ok(()) => return,
            Err(e) => {
                // A session that ran a while failed afresh: start the backoff over.
                if started.elapsed() > Duration::from_secs(60) {
                    backoff = Duration::from_secs(1);
                }
                // {e:#}: the causes too (a certificate refused, not just "TLS with host").
                tracing::warn!(mailbox = %mailbox.name, error = format!("{e:#}"), retry_in_s = backoff.as_secs(), "Reading the mailbox failed");
                metrics::counter!("casewire_email_ingest_errors_total", "mailbox" => mailbox.name.clone()).increment(1);
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(60));
    }
}
