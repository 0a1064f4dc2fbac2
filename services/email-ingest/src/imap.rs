//! One IMAP session on one mailbox: log in, select the folder, hand over
//! what is new, wait (IDLE or a poll), again.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use async_imap::Session;
use async_imap::imap_proto::{Capability, Response};
use async_imap::types::UnsolicitedResponse;
use casewire_runtime::config::MailboxConfig;
use futures::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_util::sync::CancellationToken;

use crate::state::{self, Position};
use crate::{Delivered, Reader};

/// A connection, plain or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> Io for T {}

type Imap = Session<Box<dyn Io>>;

/// The keyword of a message Casewire has taken.
const TAKEN: &str = "$CasewireIngested";

/// How the connection to the server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    /// `imaps://`: TLS from the first byte.
    Implicit,
    /// `imap://` upgraded with STARTTLS; a server without it is an error.
    StartTls,
    /// `imap://` to a loopback host: STARTTLS when offered, else plaintext
    /// (a local test server has no certificate).
    StartTlsIfOffered,
    /// `imap://...?tls=none`: plaintext, as the operator asked explicitly.
    Plain,
}

/// Where and how to log in, from `imap://user:password@host:port?tls=&ca=`.
/// No `Debug`: it holds the password.
struct Target {
    host: String,
    port: u16,
    security: Security,
    /// A PEM file of CAs trusted besides Mozilla's (a private CA).
    ca: Option<PathBuf>,
    user: String,
    password: String,
}

impl Target {
    fn parse(url: &str) -> anyhow::Result<Target> {
        let parsed = url::Url::parse(url).context("imap_url is not a URL")?;
        let implicit = match parsed.scheme() {
            "imaps" => true,
            "imap" => false,
            other => anyhow::bail!("imap_url: scheme {other} (imap or imaps)"),
        };
        let (host, loopback) = host(&parsed)?;
        let (tls, ca) = options(&parsed)?;
        let security = match (implicit, tls.as_deref()) {
            (true, None) => Security::Implicit,
            (true, Some(_)) => {
                anyhow::bail!("imap_url of {host}: tls= is for imap:// (imaps:// is TLS from the start)")
            }
            (false, Some("none")) => Security::Plain,
            (false, Some("starttls")) => Security::StartTls,
            (false, Some(other)) => anyhow::bail!("imap_url of {host}: tls={other} (none or starttls)"),
            // Plaintext off loopback would send the password over the network.
            (false, None) if loopback => Security::StartTlsIfOffered,
            (false, None) => Security::StartTls,
        };
        if security == Security::Plain && ca.is_some() {
            anyhow::bail!("imap_url of {host}: ca= with tls=none (no TLS to trust a CA for)");
        }
        Ok(Target {
            port: parsed.port().unwrap_or(if implicit { 993 } else { 143 }),
            host,
            security,
            ca,
            user: decode(parsed.username()),
            password: decode(parsed.password().unwrap_or_default()),
        })
    }
}

/// A percent-decoded part of the URL (`%40` in a user name is `@`).
fn decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The host to connect to (an IPv6 address without its brackets) and
/// whether it is loopback: 127.0.0.0/8, ::1 or `localhost`.
fn host(url: &url::Url) -> anyhow::Result<(String, bool)> {
    match url.host().context("imap_url has no host")? {
        url::Host::Ipv4(ip) => Ok((ip.to_string(), ip.is_loopback())),
        url::Host::Ipv6(ip) => Ok((ip.to_string(), ip.is_loopback())),
        // imap:// is not a special scheme to the URL parser: an IPv4
        // address comes as a name.
        url::Host::Domain(name) => {
            let loopback = match name.parse::<std::net::IpAddr>() {
                Ok(ip) => ip.is_loopback(),
                Err(_) => name.eq_ignore_ascii_case("localhost"),
            };
            Ok((name.to_owned(), loopback))
        }
    }
}

/// `tls=` and `ca=` of the query. Anything else there is refused, so
/// that a misspelt `tsl=none` does not quietly mean something else.
fn options(url: &url::Url) -> anyhow::Result<(Option<String>, Option<PathBuf>)> {
    let (mut tls, mut ca) = (None, None);
    for (key, value) in url.query_pairs() {
        let slot = match key.as_ref() {
            "tls" => &mut tls,
            "ca" => &mut ca,
            other => anyhow::bail!("imap_url: unknown parameter {other} (tls or ca)"),
        };
        anyhow::ensure!(slot.is_none(), "imap_url: {key} is given twice");
        *slot = Some(value.into_owned());
    }
    Ok((tls, ca.map(PathBuf::from)))
}

/// Mozilla's roots, and the CAs of `ca` when given.
fn tls_config(ca: Option<&Path>) -> anyhow::Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca {
        let pem = std::fs::read(path).with_context(|| format!("reading the CA file {}", path.display()))?;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.with_context(|| format!("the CA file {} is not PEM", path.display()))?;
            roots
                .add(cert)
                .with_context(|| format!("a certificate of the CA file {}", path.display()))?;
            added += 1;
        }
        anyhow::ensure!(added > 0, "the CA file {} has no certificate", path.display());
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// TLS over `stream` (a fresh TCP connection, or one after STARTTLS).
async fn tls(target: &Target, stream: Box<dyn Io>) -> anyhow::Result<Box<dyn Io>> {
    let config = tls_config(target.ca.as_deref())?;
    let name =
        ServerName::try_from(target.host.clone()).with_context(|| format!("{} is not a name for TLS", target.host))?;
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, stream)
        .await
        .map_err(|e| {
            let untrusted = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<tokio_rustls::rustls::Error>())
                .is_some_and(|r| matches!(r, tokio_rustls::rustls::Error::InvalidCertificate(_)));
            let hint = if untrusted {
                " (the server's certificate is not trusted; a private CA goes in ?ca=/path/ca.pem)"
            } else {
                ""
            };
            anyhow::Error::new(e).context(format!("TLS with {}:{}{hint}", target.host, target.port))
        })?;
    Ok(Box::new(tls))
}

type Client = async_imap::Client<Box<dyn Io>>;

/// Whether the server offers STARTTLS. async-imap asks CAPABILITY only
/// once logged in, so the untagged answer is caught as an unsolicited one.
async fn offers_starttls(client: &mut Client) -> anyhow::Result<bool> {
    let (tx, rx) = async_channel::unbounded();
    client
        .run_command_and_check_ok("CAPABILITY", Some(tx))
        .await
        .context("asking the server's CAPABILITY")?;
    let mut offered = false;
    while let Ok(response) = rx.try_recv() {
        if let UnsolicitedResponse::Other(data) = response
            && let Response::Capabilities(caps) = data.parsed()
        {
            offered |= caps
                .iter()
                .any(|c| matches!(c, Capability::Atom(a) if a.eq_ignore_ascii_case("STARTTLS")));
        }
    }
    Ok(offered)
}

/// Upgrades a plain connection as `target.security` says; the client
/// returned is the one to log in with.
async fn secure(target: &Target, mut client: Client) -> anyhow::Result<Client> {
    let required = match target.security {
        Security::Implicit | Security::Plain => return Ok(client),
        Security::StartTls => true,
        Security::StartTlsIfOffered => false,
    };
    if !offers_starttls(&mut client).await? {
        anyhow::ensure!(
            !required,
            "the IMAP server {}:{} does not offer STARTTLS; not logging in in plaintext \
             (imaps:// for TLS from the start, or ?tls=none to allow plaintext)",
            target.host,
            target.port
        );
        tracing::warn!(host = %target.host, port = target.port, "A loopback IMAP server without STARTTLS: logging in in plaintext");
        return Ok(client);
    }
    client
        .run_command_and_check_ok("STARTTLS", None)
        .await
        .with_context(|| format!("STARTTLS with {}:{}", target.host, target.port))?;
    // into_inner drops whatever was read past the answer: anything the
    // server (or someone between) sent before the handshake is not trusted.
    let stream = tls(target, client.into_inner()).await?;
    // No new greeting after STARTTLS: the next thing said is the login.
    Ok(async_imap::Client::new(stream))
}

async fn login(target: &Target) -> anyhow::Result<Imap> {
    let tcp = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
        .await
        .with_context(|| format!("connecting to {}:{}", target.host, target.port))?;
    let stream: Box<dyn Io> = Box::new(tcp);
    let stream = match target.security {
        Security::Implicit => tls(target, stream).await?,
        _ => stream,
    };
    let mut client = async_imap::Client::new(stream);
    client
        .read_response()
        .await?
        .context("the server closed before its greeting")?;
    let client = secure(target, client).await?;
    client
        .login(&target.user, &target.password)
        .await
        .map_err(|(e, _)| anyhow::anyhow!("logging in as {} on {}: {e}", target.user, target.host))
}

/// Checks what can be checked of `imap_url` without the server: the URL,
/// its `tls=` and that the CA file of `ca=` holds certificates.
pub(crate) fn check_url(imap_url: &str) -> anyhow::Result<()> {
    let target = Target::parse(imap_url)?;
    if target.security != Security::Plain {
        tls_config(target.ca.as_deref())?;
    }
    Ok(())
}

/// Logs in with `imap_url` as the reader would, selects `folder` and logs
/// out: a check of a mailbox's URL, TLS and password (the tests use it).
pub async fn check_login(imap_url: &str, folder: &str) -> anyhow::Result<()> {
    let target = Target::parse(imap_url)?;
    let mut session = login(&target).await?;
    session
        .select(folder)
        .await
        .with_context(|| format!("selecting {folder}"))?;
    let _ = session.logout().await;
    Ok(())
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

    fn parse(url: &str) -> Target {
        Target::parse(url).unwrap_or_else(|e| panic!("{url}: {e:#}"))
    }

    fn refused(url: &str) -> String {
        match Target::parse(url) {
            Ok(t) => panic!("{url} was taken as {:?}", t.security),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn imap_urls_name_host_port_tls_and_an_escaped_login() {
        let t = parse("imaps://support%40x.example:p%40ss@mail.x.example");
        assert_eq!(
            (t.host.as_str(), t.port, t.security),
            ("mail.x.example", 993, Security::Implicit)
        );
        assert_eq!((t.user.as_str(), t.password.as_str()), ("support@x.example", "p@ss"));
        let plain = parse("imap://u:p@127.0.0.1:1143");
        assert_eq!(plain.port, 1143);
        assert!(Target::parse("pop3://u:p@h").is_err());
    }

    #[test]
    fn imap_off_loopback_requires_starttls() {
        for url in [
            "imap://u:p@mail.x.example",
            "imap://u:p@10.0.0.7:143",
            "imap://u:p@[2001:db8::1]",
        ] {
            assert_eq!(parse(url).security, Security::StartTls, "{url}");
        }
        assert_eq!(parse("imap://u:p@mail.x.example").port, 143);
    }

    #[test]
    fn imap_on_loopback_upgrades_only_when_offered() {
        for url in [
            "imap://u:p@127.0.0.1:1143",
            "imap://u:p@127.8.9.10",
            "imap://u:p@[::1]:1143",
            "imap://u:p@localhost",
            "imap://u:p@LOCALHOST:1143",
        ] {
            assert_eq!(parse(url).security, Security::StartTlsIfOffered, "{url}");
        }
        // Connected to without brackets.
        assert_eq!(parse("imap://u:p@[::1]:1143").host, "::1");
    }

    #[test]
    fn the_query_forces_or_opts_out_and_names_a_ca() {
        let forced = parse("imap://u:p@127.0.0.1:1143?tls=starttls&ca=/etc/casewire/ca.pem");
        assert_eq!(forced.security, Security::StartTls);
        assert_eq!(forced.ca.as_deref(), Some(Path::new("/etc/casewire/ca.pem")));
        let plain = parse("imap://u:p@mail.x.example?tls=none");
        assert_eq!(plain.security, Security::Plain);
        let imaps = parse("imaps://u:p@mail.x.example?ca=%2Fsrv%2Fmy%20ca.pem");
        assert_eq!(
            (imaps.security, imaps.ca.as_deref()),
            (Security::Implicit, Some(Path::new("/srv/my ca.pem")))
        );
    }

    #[test]
    fn the_query_stays_out_of_host_user_and_password() {
        let t = parse("imap://support:s3cret@mail.x.example:1143?tls=starttls&ca=/ca.pem");
        assert_eq!(
            (t.host.as_str(), t.port, t.user.as_str(), t.password.as_str()),
            ("mail.x.example", 1143, "support", "s3cret")
        );
        let no_port = parse("imap://support:s3cret@mail.x.example?tls=none");
        assert_eq!(
            (no_port.host.as_str(), no_port.password.as_str()),
            ("mail.x.example", "s3cret")
        );
    }

    #[test]
    fn unclear_queries_are_refused() {
        let unknown = refused("imap://u:p@mail.x.example?tls=ssl");
        assert!(
            unknown.contains("tls=ssl") && unknown.contains("mail.x.example"),
            "{unknown}"
        );
        assert!(refused("imap://u:p@mail.x.example?tsl=none").contains("unknown parameter tsl"));
        assert!(refused("imap://u:p@mail.x.example?tls=none&tls=starttls").contains("twice"));
        assert!(refused("imaps://u:p@mail.x.example?tls=starttls").contains("imap://"));
        assert!(refused("imap://u:p@mail.x.example?tls=none&ca=/ca.pem").contains("tls=none"));
    }

    #[test]
    fn a_ca_file_must_be_readable_and_hold_a_certificate() {
        let missing = Path::new("/nonexistent/casewire-ca.pem");
        let e = format!(
            "{:#}",
            tls_config(Some(missing)).err().unwrap_or_else(|| panic!("taken"))
        );
        assert!(e.contains("reading the CA file /nonexistent/casewire-ca.pem"), "{e}");
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap_or_else(|e| panic!("{e}"));
        let e = format!(
            "{:#}",
            tls_config(Some(&empty)).err().unwrap_or_else(|| panic!("taken"))
        );
        assert!(e.contains("has no certificate"), "{e}");
        assert!(tls_config(None).is_ok());
        // Checked before any connection, as `run` does at the start.
        assert!(check_url("imaps://u:p@mail.x.example?ca=/nonexistent/casewire-ca.pem").is_err());
        assert!(check_url("imap://u:p@mail.x.example").is_ok());
    }
}
