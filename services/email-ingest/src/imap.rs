//! One IMAP session on one mailbox: log in, select the folder, hand over
//! what is new, wait (IDLE or a poll), again.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use async_imap::Session;
use casewire_runtime::config::MailboxConfig;
use futures::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

use crate::state::{self, Position};
use crate::{Delivered, Reader};

/// A connection, plain or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> Io for T {}

type Imap = Session<Box<dyn Io>>;

/// The keyword of a message Casewire has taken.
const TAKEN: &str = "$CasewireIngested";

/// Where and how to log in, from `imap://user:password@host:port`.
struct Target {
    host: String,
    port: u16,
    tls: bool,
    user: String,
    password: String,
}

impl Target {
    fn parse(url: &str) -> anyhow::Result<Target> {
        let parsed = url::Url::parse(url).context("imap_url is not a URL")?;
        let tls = match parsed.scheme() {
            "imaps" => true,
            "imap" => false,
            other => anyhow::bail!("imap_url: scheme {other} (imap or imaps)"),
        };
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        Ok(Target {
            host: parsed.host_str().context("imap_url has no host")?.to_owned(),
            port: parsed.port().unwrap_or(if tls { 993 } else { 143 }),
            tls,
            user: decode(parsed.username()),
            password: decode(parsed.password().unwrap_or_default()),
        })
    }
}

async fn connect(target: &Target) -> anyhow::Result<Box<dyn Io>> {
    let tcp = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
        .await
        .with_context(|| format!("connecting to {}:{}", target.host, target.port))?;
    if !target.tls {
        return Ok(Box::new(tcp));
    }
    let roots = tokio_rustls::rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from(target.host.clone())?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    Ok(Box::new(tls))
}

async fn login(target: &Target) -> anyhow::Result<Imap> {
    let mut client = async_imap::Client::new(connect(target).await?);
    client
        .read_response()
        .await?
        .context("the server closed before its greeting")?;
    client
        .login(&target.user, &target.password)
        .await
        .map_err(|(e, _)| anyhow::anyhow!("logging in as {}: {e}", target.user))
}

/// Reads `mailbox` until `shutdown` or an error.
pub async fn session(reader: &Reader, mailbox: &MailboxConfig, shutdown: &CancellationToken) -> anyhow::Result<()> {
    let url = mailbox.imap_url.as_ref().context("no imap_url")?;
    let target = Target::parse(url.expose())?;
    let mut session = login(&target).await?;
    let can_idle = reader.idle && session.capabilities().await?.has_str("IDLE");
    let selected = session.select(&mailbox.folder).await?;
    let path = state::file(&reader.data_dir, &mailbox.name);
    let mut position = state::start(state::load(&path)?, selected.uid_validity.unwrap_or(0));
    tracing::info!(
        mailbox = %mailbox.name, folder = %mailbox.folder, uid_validity = position.uid_validity,
        last_uid = position.last_uid, idle = can_idle, "Reading a mailbox"
    );
    loop {
        drain(reader, mailbox, &mut session, &mut position, &path).await?;
        if shutdown.is_cancelled() {
            let _ = session.logout().await;
            return Ok(());
        }
        session = wait(reader, session, can_idle, shutdown).await?;
    }
}

/// Waits for new mail: IDLE until the server says something, or a poll.
async fn wait(
    reader: &Reader,
    mut session: Imap,
    can_idle: bool,
    shutdown: &CancellationToken,
) -> anyhow::Result<Imap> {
    if !can_idle {
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(reader.poll) => {}
        }
        session.noop().await?;
        return Ok(session);
    }
    let mut idle = session.idle();
    idle.init().await?;
    let (waiting, _stop) = idle.wait_with_timeout(reader.poll);
    let waited = tokio::select! {
        r = waiting => r.map(|_| ()),
        _ = shutdown.cancelled() => Ok(()),
    };
    waited?;
    Ok(idle.done().await?)
}

/// Hands over every message after the last UID handled that is not taken.
async fn drain(
    reader: &Reader,
    mailbox: &MailboxConfig,
    session: &mut Imap,
    position: &mut Position,
    path: &Path,
) -> anyhow::Result<()> {
    let query = format!("UID {}:* NOT KEYWORD {TAKEN}", position.last_uid + 1);
    let mut uids: Vec<u32> = session
        .uid_search(&query)
        .await?
        .into_iter()
        .filter(|u| *u > position.last_uid)
        .collect();
    uids.sort_unstable();
    for uid in uids {
        if let Some(raw) = fetch(session, uid).await? {
            match reader.deliver(&mailbox.name, &raw).await? {
                Delivered::Taken => done(session, mailbox, uid).await?,
                Delivered::Refused(reason) => {
                    tracing::warn!(mailbox = %mailbox.name, uid, reason = %reason, folder = %mailbox.quarantine_folder,
                        "A message was refused; moved it to the quarantine folder");
                    metrics::counter!("casewire_email_quarantined_total", "reason" => reason).increment(1);
                    move_to(session, uid, &mailbox.quarantine_folder).await?;
                }
            }
            metrics::counter!("casewire_email_ingested_total", "mailbox" => mailbox.name.clone()).increment(1);
        }
        position.last_uid = uid;
        state::save(path, *position)?;
    }
    Ok(())
}

/// The raw message of `uid`; `None` if it went away meanwhile.
async fn fetch(session: &mut Imap, uid: u32) -> anyhow::Result<Option<Vec<u8>>> {
    let fetches: Vec<_> = session
        .uid_fetch(uid.to_string(), "(UID BODY.PEEK[])")
        .await?
        .try_collect()
        .await?;
    Ok(fetches
        .iter()
        .find(|f| f.uid == Some(uid))
        .and_then(|f| f.body())
        .map(<[u8]>::to_vec))
}

/// What is done with a message whose case event is stored.
async fn done(session: &mut Imap, mailbox: &MailboxConfig, uid: u32) -> anyhow::Result<()> {
    match mailbox.after.strip_prefix("move:") {
        Some(folder) => move_to(session, uid, folder).await,
        None => {
            let _: Vec<_> = session
                .uid_store(uid.to_string(), format!("+FLAGS (\\Seen {TAKEN})"))
                .await?
                .try_collect()
                .await?;
            Ok(())
        }
    }
}

async fn move_to(session: &mut Imap, uid: u32, folder: &str) -> anyhow::Result<()> {
    // It may exist already; a real failure shows in the move.
    let _ = session.create(folder).await;
    session
        .uid_mv(uid.to_string(), folder)
        .await
        .with_context(|| format!("moving message {uid} to {folder}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imap_urls_name_host_port_tls_and_an_escaped_login() {
        let t = Target::parse("imaps://support%40x.example:p%40ss@mail.x.example").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((t.host.as_str(), t.port, t.tls), ("mail.x.example", 993, true));
        assert_eq!((t.user.as_str(), t.password.as_str()), ("support@x.example", "p@ss"));
        let plain = Target::parse("imap://u:p@127.0.0.1:1143").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((plain.port, plain.tls), (1143, false));
        assert!(Target::parse("pop3://u:p@h").is_err());
    }
}
