//! A real IMAP server for the tests: Dovecot (Debian's `dovecot-imapd`),
//! started in the foreground on a free loopback port with its own config,
//! mail and one user, `support` / `secret`. `tests/run` installs it and
//! sets `CASEWIRE_TEST_DOVECOT` to the binary. Self-contained: the
//! `casewire` package's process tests include this file too.

use std::process::Stdio;
use std::time::Duration;

use futures::TryStreamExt;
use tokio::process::{Child, Command};

/// A free port on the loopback interface.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running Dovecot.
#[derive(Debug)]
pub struct Dovecot {
    /// The loopback address it listens on.
    pub host: &'static str,
    /// IMAP (STARTTLS where started with TLS).
    pub port: u16,
    /// IMAP over TLS from the start, where started with TLS.
    pub imaps_port: Option<u16>,
    dir: tempfile::TempDir,
    child: Child,
}

/// The binary, or a printed reason to skip.
pub fn dovecot() -> Option<String> {
    match std::env::var("CASEWIRE_TEST_DOVECOT") {
        Ok(bin) => Some(bin),
        Err(_) => {
            casewire_ports::contract::skip(
                "set CASEWIRE_TEST_DOVECOT to a dovecot binary (tests/run installs dovecot-imapd)",
            );
            None
        }
    }
}

/// `id <flag> dovecot`: mail belongs to the package's own user, since
/// Dovecot refuses to keep mail as root.
fn id(flag: &str) -> String {
    std::process::Command::new("id")
        .arg(flag)
        .arg("dovecot")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "0".into())
}

impl Dovecot {
    /// Plaintext only (`ssl = no`), on 127.0.0.1 `port`.
    pub async fn start(bin: &str) -> Dovecot {
        Self::launch(bin, "127.0.0.1", "ssl = no\n", None).await
    }

    /// TLS required (`ssl = required`: no login before STARTTLS) with the
    /// PEM certificate chain and key given: STARTTLS on `port`, TLS from
    /// the start on `imaps_port`. On 127.0.0.2, which Linux connects to
    /// from 127.0.0.1: Dovecot counts a client on its own address as
    /// secure and would let it log in in plaintext despite `ssl = required`.
    /// The helpers below log in in plaintext, so they are for
    /// [`Dovecot::start`]'s servers only.
    pub async fn start_tls(bin: &str, cert_pem: &std::path::Path, key_pem: &std::path::Path) -> Dovecot {
        let ssl = format!(
            "ssl = required\nssl_cert = <{}\nssl_key = <{}\n",
            cert_pem.display(),
            key_pem.display()
        );
        Self::launch(bin, "127.0.0.2", &ssl, Some(free_port())).await
    }

    async fn launch(bin: &str, host: &'static str, ssl: &str, imaps_port: Option<u16>) -> Dovecot {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let d = dir.path().display().to_string();
        // The mail user writes its maildir in here.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
        }
        let (uid, gid) = (id("-u"), id("-g"));
        std::fs::write(dir.path().join("users"), "support:{PLAIN}secret::::::\n").expect("users");
        // Port 0: no imaps listener.
        let imaps = imaps_port.unwrap_or(0);
        let conf = format!(
            "base_dir = {d}/run\nstate_dir = {d}/state\nlog_path = {d}/dovecot.log\nprotocols = imap\n\
             listen = {host}\n{ssl}disable_plaintext_auth = no\nauth_mechanisms = plain login\n\
             mail_location = maildir:{d}/mail/%u\nfirst_valid_uid = 0\nfirst_valid_gid = 0\n\
             mail_uid = {uid}\nmail_gid = {gid}\ndefault_internal_user = dovecot\ndefault_login_user = dovenull\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {d}/users\n}}\n\
             userdb {{\n  driver = static\n  args = uid={uid} gid={gid} home={d}/home/%u\n}}\n\
             service imap-login {{\n  inet_listener imap {{\n    port = {port}\n  }}\n  inet_listener imaps {{\n    port = {imaps}\n  }}\n}}\n"
        );
        let conf_path = dir.path().join("dovecot.conf");
        std::fs::write(&conf_path, conf).expect("config");
        let child = Command::new(bin)
            .arg("-F")
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start dovecot");
        let server = Dovecot {
            host,
            port,
            imaps_port,
            dir,
            child,
        };
        for listening in std::iter::once(port).chain(imaps_port) {
            server.wait_for(listening).await;
        }
        server
    }

    async fn wait_for(&self, port: u16) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect((self.host, port)).await.is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "dovecot did not listen on {port}: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `imap://support:secret@<host>:<port>`.
    pub fn url(&self) -> String {
        format!("imap://support:secret@{}:{}", self.host, self.port)
    }

    /// Its log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    async fn session(&self) -> async_imap::Session<tokio::net::TcpStream> {
        let tcp = tokio::net::TcpStream::connect((self.host, self.port))
            .await
            .expect("connect");
        let mut client = async_imap::Client::new(tcp);
        client.read_response().await.expect("greeting");
        client
            .login("support", "secret")
            .await
            .map_err(|(e, _)| e)
            .expect("login")
    }

    /// Puts `raw` into `folder` (IMAP APPEND), as a delivery would.
    pub async fn append(&self, folder: &str, raw: &[u8]) {
        self.append_all(folder, &[raw.to_vec()]).await;
    }

    /// Puts every message of `raws` into `folder`, in one session.
    pub async fn append_all(&self, folder: &str, raws: &[Vec<u8>]) {
        let mut s = self.session().await;
        let _ = s.create(folder).await;
        for raw in raws {
            s.append(folder, None, None, raw).await.expect("append");
        }
        let _ = s.logout().await;
    }

    /// The flags of every message in `folder`, in UID order (empty when
    /// the folder does not exist).
    pub async fn flags(&self, folder: &str) -> Vec<Vec<String>> {
        let mut s = self.session().await;
        if s.examine(folder).await.is_err() {
            return Vec::new();
        }
        let fetches: Vec<_> = s
            .uid_fetch("1:*", "(UID FLAGS)")
            .await
            .expect("fetch")
            .try_collect()
            .await
            .expect("fetches");
        let mut out: Vec<(u32, Vec<String>)> = fetches
            .iter()
            .map(|f| (f.uid.unwrap_or(0), f.flags().map(|fl| format!("{fl:?}")).collect()))
            .collect();
        out.sort();
        let _ = s.logout().await;
        out.into_iter().map(|(_, f)| f).collect()
    }

    /// Stops it.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
