//! The real parts of the notification tests: an SMTP server (aiosmtpd) and
//! a webhook endpoint that verifies signatures with the `standardwebhooks`
//! package, both Python processes the tests start on free ports.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A free port on the loopback interface.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A helper process that prints "ready".
#[derive(Debug)]
struct Helper {
    _child: Child,
}

async fn start(python: &str, script: &str, port: u16, dir: &std::path::Path) -> Helper {
    let path = format!("{}/../notify/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(python)
        .arg(path)
        .arg(port.to_string())
        .arg(dir)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start a notification test helper");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("the helper starts within 20 s")
        .expect("its output");
    assert_eq!(line.as_deref(), Some("ready"), "{script} did not start");
    Helper { _child: child }
}

/// An SMTP server; what it received is on disk.
#[derive(Debug)]
pub struct SmtpSink {
    pub port: u16,
    dir: tempfile::TempDir,
    _helper: Helper,
}

impl SmtpSink {
    pub async fn start(python: &str) -> SmtpSink {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let helper = start(python, "smtp_sink.py", port, dir.path()).await;
        SmtpSink {
            port,
            dir,
            _helper: helper,
        }
    }

    /// `smtp://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message so far, in arrival order: `{"from", "to", "data", "text", "html"}`
    /// (the raw message, and its decoded plain-text and HTML parts).
    pub fn messages(&self) -> Vec<Value> {
        let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(self.dir.path())
            .expect("sink dir")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter_map(|p| {
                let n = p.file_stem()?.to_str()?.parse().ok()?;
                (p.extension()? == "json").then_some((n, p))
            })
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|(_, p)| serde_json::from_slice(&std::fs::read(p).expect("read")).expect("json"))
            .collect()
    }

    /// The messages to `address`.
    pub fn to(&self, address: &str) -> Vec<Value> {
        self.messages()
            .into_iter()
            .filter(|m| m["to"].as_array().is_some_and(|t| t.iter().any(|a| a == address)))
            .collect()
    }
}

/// A webhook endpoint.
#[derive(Debug)]
pub struct Receiver {
    pub port: u16,
    dir: tempfile::TempDir,
    _helper: Helper,
}

impl Receiver {
    pub async fn start(python: &str) -> Receiver {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let helper = start(python, "webhook_receiver.py", port, dir.path()).await;
        Receiver {
            port,
            dir,
            _helper: helper,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// The secrets it verifies with.
    pub fn set_secrets(&self, secrets: &[&str]) {
        std::fs::write(self.dir.path().join("secrets"), secrets.join("\n")).expect("write");
    }

    /// The status it answers a verified request with.
    pub fn set_status(&self, status: u16) {
        std::fs::write(self.dir.path().join("status"), status.to_string()).expect("write");
    }

    /// Every request so far: `{"id", "verified", "error", "signature", "status", "body"}`.
    pub fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("received.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect()
    }
}
