//! The mailbox reader's TLS against a real Dovecot with a private CA:
//! STARTTLS on `imap://`, TLS from the start on `imaps://`, the CA of
//! `?ca=`, and no login when the certificate is not trusted or the server
//! has no STARTTLS where it is required.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// Shared with the end-to-end tests; only the server is used here.
#[allow(dead_code)]
#[path = "../../../tests/e2e/src/imap.rs"]
mod imap;

use std::path::{Path, PathBuf};
use std::process::Command;

use casewire_email_ingest::check_login;
use imap::{Dovecot, dovecot};

/// Runs `openssl` with `args` in `dir`.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`ca.pem`) and a server certificate it signed for 127.0.0.1,
/// 127.0.0.2 and localhost (`server.pem`, `server.key`), in `dir`.
fn private_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=Casewire test CA"];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
    ca.extend(["-addext", "basicConstraints=critical,CA:TRUE"]);
    ca.extend(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
    openssl(dir, &ca);
    let mut csr = vec!["req", "-new", "-subj", "/CN=localhost"];
    csr.extend(ec);
    csr.extend(["-keyout", "server.key", "-out", "server.csr"]);
    openssl(dir, &csr);
    // webpki wants the names in subjectAltName and refuses a CA as the server.
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName = IP:127.0.0.1, IP:127.0.0.2, DNS:localhost\nbasicConstraints = critical, CA:FALSE\n\
         keyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth\n",
    )
    .expect("extensions");
    let sign =
        "x509 -req -days 2 -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -extfile server.ext -out server.pem";
    openssl(dir, &sign.split(' ').collect::<Vec<_>>());
    (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server.key"))
}

/// `{e:#}` of a login that must fail.
async fn refused(url: &str) -> String {
    match check_login(url, "INBOX").await {
        Ok(()) => panic!("{url} logged in"),
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test]
async fn starttls_and_imaps_with_a_private_ca() {
    let Some(bin) = dovecot() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = private_ca(dir.path());
    let server = Dovecot::start_tls(&bin, &cert, &key).await;
    let ca = ca.display();
    let (host, port, imaps_port) = (server.host, server.port, server.imaps_port.unwrap());

    // (a) STARTTLS, the CA of ?ca=: logged in, INBOX selected.
    let starttls = format!("imap://support:secret@{host}:{port}?tls=starttls&ca={ca}");
    check_login(&starttls, "INBOX")
        .await
        .unwrap_or_else(|e| panic!("STARTTLS: {e:#}\n{}", server.log()));
    // Loopback without tls=: STARTTLS because the server offers it.
    let offered = format!("imap://support:secret@{host}:{port}?ca={ca}");
    check_login(&offered, "INBOX")
        .await
        .unwrap_or_else(|e| panic!("STARTTLS when offered: {e:#}\n{}", server.log()));
    // The same server refuses a plaintext login: the one above was over TLS.
    let plain = refused(&format!("imap://support:secret@{host}:{port}?tls=none")).await;
    assert!(plain.contains("Plaintext authentication disallowed"), "{plain}");

    // (b) TLS from the start.
    let imaps = format!("imaps://support:secret@{host}:{imaps_port}?ca={ca}");
    check_login(&imaps, "INBOX")
        .await
        .unwrap_or_else(|e| panic!("imaps: {e:#}\n{}", server.log()));

    // (c) Without the CA the certificate is not trusted: no login.
    for url in [
        format!("imap://support:secret@{host}:{port}?tls=starttls"),
        format!("imaps://support:secret@{host}:{imaps_port}"),
    ] {
        let e = refused(&url).await;
        assert!(e.contains("certificate") && e.contains("ca="), "{url}: {e}");
    }
    server.stop().await;
}

#[tokio::test]
async fn starttls_required_but_not_offered_is_no_login() {
    let Some(bin) = dovecot() else { return };
    let server = Dovecot::start(&bin).await;
    let (host, port) = (server.host, server.port);
    let e = refused(&format!("imap://support:secret@{host}:{port}?tls=starttls")).await;
    assert!(e.contains("does not offer STARTTLS") && e.contains(host), "{e}");
    // Loopback without tls=: plaintext, as the server has no TLS.
    check_login(&server.url(), "INBOX")
        .await
        .unwrap_or_else(|e| panic!("plaintext on loopback: {e:#}\n{}", server.log()));
    server.stop().await;
}
