//! A WebSocket client for the tests: `tests/ws/driver.py`, written with
//! Python `websockets`, driven line by line over its stdin and stdout.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// The Python that has `websockets` (tests/run sets it to its venv's).
pub fn python() -> Option<String> {
    let python = std::env::var("CASEWIRE_TEST_PYTHON").ok();
    if python.is_none() {
        casewire_ports::contract::skip(
            "set CASEWIRE_TEST_PYTHON to a python3 with `websockets` (tests/run sets its venv's) for the WebSocket tests",
        );
    }
    python
}

/// What the server sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Text(Value),
    Closed(u16, String),
    Refused(u16, String),
}

/// One socket.
#[derive(Debug)]
pub struct WsClient {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl WsClient {
    /// Connects; `token` goes in the Authorization header.
    pub async fn connect(python: &str, url: &str, token: Option<&str>) -> (WsClient, Frame) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../ws/driver.py");
        let mut cmd = Command::new(python);
        cmd.arg(script).arg(url);
        if let Some(t) = token {
            cmd.arg("--token").arg(t);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start tests/ws/driver.py");
        let stdin = child.stdin.take().expect("stdin");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut client = WsClient { child, stdin, lines };
        let first = client
            .next(Duration::from_secs(20))
            .await
            .expect("the driver said nothing");
        (client, first)
    }

    /// Sends a JSON message.
    pub async fn send(&mut self, message: Value) {
        self.command(json!({"send": message})).await;
    }

    /// Sends a driver command.
    pub async fn command(&mut self, command: Value) {
        let line = format!("{command}\n");
        let _ = self.stdin.write_all(line.as_bytes()).await;
        let _ = self.stdin.flush().await;
    }

    /// The next frame, if one comes within `limit`.
    pub async fn next(&mut self, limit: Duration) -> Option<Frame> {
        let line = tokio::time::timeout(limit, self.lines.next_line()).await.ok()?.ok()??;
        let v: Value = serde_json::from_str(&line).expect("driver output is JSON");
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        Some(if v.get("open").is_some() {
            Frame::Text(json!({"type": "open"}))
        } else if let Some(code) = v.get("closed") {
            Frame::Closed(code.as_u64().unwrap_or(0) as u16, text(&v["reason"]))
        } else if let Some(status) = v.get("refused") {
            Frame::Refused(status.as_u64().unwrap_or(0) as u16, text(&v["body"]))
        } else {
            Frame::Text(v["text"].clone())
        })
    }

    /// The next text frame of `kind` (skipping heartbeats), or panics with what came instead.
    pub async fn expect(&mut self, kind: &str) -> Value {
        loop {
            match self.next(Duration::from_secs(20)).await {
                Some(Frame::Text(v)) if v["type"] == kind => return v,
                Some(Frame::Text(v)) if v["type"] == "heartbeat" => {}
                other => panic!("expected a {kind} message, got {other:?}"),
            }
        }
    }

    /// Frames until the socket closes or is quiet for `quiet`.
    pub async fn drain(&mut self, quiet: Duration) -> Vec<Frame> {
        let mut out = Vec::new();
        while let Some(frame) = self.next(quiet).await {
            let closed = matches!(frame, Frame::Closed(..));
            out.push(frame);
            if closed {
                break;
            }
        }
        out
    }

    /// Waits for the close, skipping everything before it.
    pub async fn closed(&mut self, limit: Duration) -> Option<(u16, String)> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await? {
                Frame::Closed(code, reason) => return Some((code, reason)),
                _ => continue,
            }
        }
    }

    /// Subscribes and collects what the catch-up sends until `subscribed`.
    pub async fn subscribe(&mut self, id: &str, filter: Value, after: Option<u64>) -> Vec<Value> {
        let mut msg = json!({"type": "subscribe", "id": id, "filter": filter});
        if let Some(a) = after {
            msg["after"] = json!(a);
        }
        self.send(msg).await;
        let mut events = Vec::new();
        loop {
            match self.next(Duration::from_secs(30)).await {
                Some(Frame::Text(v)) if v["type"] == "event" => events.push(v),
                Some(Frame::Text(v)) if v["type"] == "subscribed" && v["id"] == id => return events,
                Some(Frame::Text(v)) if v["type"] == "heartbeat" => {}
                other => panic!("subscribing {id}: unexpected {other:?}"),
            }
        }
    }

    /// Ends the driver.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The WebSocket cases a caller sees: every visible event since the start,
/// and the case ids they are about.
pub async fn ws_cases(python: &str, url: &str, token: &str) -> (std::collections::HashSet<String>, Vec<Value>) {
    let (mut ws, first) = WsClient::connect(python, url, Some(token)).await;
    assert_eq!(first, Frame::Text(json!({"type": "open"})));
    ws.expect("ready").await;
    let events: Vec<Value> = ws
        .subscribe("all", json!({}), Some(0))
        .await
        .into_iter()
        .map(|f| f["event"].clone())
        .collect();
    ws.stop().await;
    let cases = events
        .iter()
        .filter_map(|e| e["subject"].as_str().map(str::to_owned))
        .collect();
    (cases, events)
}
