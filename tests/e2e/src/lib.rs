//! Test harness of the end-to-end tests: a fresh embedded platform per test
//! on free ports with its own temporary data dir, the demo definitions
//! imported, and clients for the demo users.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod imap;
pub mod notify;
pub mod sla_fixture;
pub mod ws;

use std::future::Future;
use std::time::{Duration, Instant};

use casewire::client::Client;
use casewire::embedded::{Embedded, Services};
use casewire_runtime::Config;
use tempfile::TempDir;

/// A running platform and the directory it lives in.
#[derive(Debug)]
pub struct TestApp {
    pub app: Embedded,
    pub dir: TempDir,
}

/// The config of a test platform in `dir`.
pub fn test_config(dir: &std::path::Path) -> Config {
    let mut config = Config {
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    config.api.bind.set_port(0);
    config.management.bind.set_port(0);
    config.ws.bind.set_port(0);
    config.demo.enabled = false;
    config.mode = Some(casewire_runtime::Mode::Dev);
    // The harness logs in through the dev issuer, also beside the issuers
    // a test configures (which switch it off by default).
    config.auth.dev_issuer = Some(true);
    config.log.level = "warn".into();
    config.log.format = "pretty".into();
    config
}

impl TestApp {
    /// Starts a platform with every service and the demo definitions.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(Services::default()).await
    }

    /// Starts a platform with the given services.
    pub async fn spawn_with(services: Services) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_in(dir, services, true).await
    }

    /// Starts a platform with every service, the demo definitions and a
    /// config changed by `configure`.
    pub async fn spawn_configured(configure: impl FnOnce(&mut Config)) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = test_config(dir.path());
        configure(&mut config);
        Self::start_with(dir, config, Services::default(), true).await
    }

    /// Starts a platform in an existing data dir.
    pub async fn start_in(dir: TempDir, services: Services, import: bool) -> TestApp {
        let config = test_config(dir.path());
        Self::start_with(dir, config, services, import).await
    }

    /// Starts a platform from `config` in `dir`; `import` imports the demo definitions.
    pub async fn start_with(dir: TempDir, config: Config, services: Services, import: bool) -> TestApp {
        casewire_runtime::telemetry::init(&config.log, false);
        let app = Embedded::start(config, services).await.expect("platform starts");
        let t = TestApp { app, dir };
        if import {
            let admin = t.client("carol");
            casewire::demo::import_calendars(&admin).await.expect("calendars");
            for (name, yaml) in casewire::DEMO_DEFINITIONS {
                let r = admin.import_definition(yaml).await.expect("import");
                assert_eq!(r.status.as_u16(), 201, "{name}: {}", r.body);
            }
        }
        t
    }

    /// A client logged in as a demo user.
    pub fn client(&self, user: &str) -> Client {
        self.app.client(user).expect("client")
    }

    /// The API base URL (without /api/v1).
    pub fn url(&self) -> String {
        self.app.url()
    }

    /// Starts a case engine beside the platform's (for tests that spawn
    /// without one, to control when commands are decided).
    pub fn start_engine(&self) -> Engine {
        let stop = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(casewire_case_engine::run(self.app.platform.clone(), stop.clone()));
        Engine { stop, task }
    }

    /// Stops the platform and hands back its data dir.
    pub async fn stop(self) -> TempDir {
        self.app.stop().await.expect("clean stop");
        self.dir
    }
}

/// An engine started by [`TestApp::start_engine`].
#[derive(Debug)]
pub struct Engine {
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Engine {
    /// Stops it and asserts that it ran without error.
    pub async fn stop(self) {
        self.stop.cancel();
        self.task.await.expect("engine task").expect("engine ran cleanly");
    }
}

/// Polls `check` until it returns `Some`, for at most `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A valid open-case body of the complaint definition.
pub fn complaint(title: &str) -> serde_json::Value {
    serde_json::json!({
        "definition": "customer-complaint",
        "title": title,
        "data": {"channel": "email", "product": "Kettle K200"},
    })
}

/// The case ids whose events a token's NDJSON stream carries from the
/// start, and the events, read until the stream idles (a heartbeat after
/// the backlog).
pub async fn streamed_cases(base: &str, token: &str) -> (std::collections::HashSet<String>, Vec<serde_json::Value>) {
    use futures::StreamExt;
    let res = reqwest::Client::new()
        .get(format!("{base}/api/v1/events?from=1&heartbeat=1"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200, "stream");
    let mut stream = Box::pin(res.bytes_stream());
    let (mut buf, mut ids, mut events) = (Vec::new(), std::collections::HashSet::new(), Vec::new());
    loop {
        if let Some(i) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
            if v.get("heartbeat").is_some() {
                return (ids, events);
            }
            ids.insert(v["subject"].as_str().unwrap().to_owned());
            events.push(v);
            continue;
        }
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("a line within 10 s")
            .unwrap()
            .unwrap();
        buf.extend_from_slice(&chunk);
    }
}

/// Whether a streamed or historic event is an internal comment.
pub fn is_internal_comment(event: &serde_json::Value) -> bool {
    event["type"].as_str().is_some_and(|t| t.contains("comment-added")) && event["data"]["visibility"] == "internal"
}

/// What a caller may do with a case, as the authorization matrices assert it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Not visible: 404 on detail, history and a command; absent from the
    /// list and the stream.
    Hidden,
    /// Visible; the command (adding a tag) is refused with 403.
    Read,
    /// Visible, and the command is done.
    Work,
}

impl Access {
    /// The README's wording of a cell.
    pub fn label(self) -> &'static str {
        match self {
            Access::Hidden => "404",
            Access::Read => "read, 403 on change",
            Access::Work => "read, change",
        }
    }
}

/// One cell of a matrix: `c` reaches case `id` through its detail, the list
/// (`listed`), its history, a command (tagging it `tag`) and the stream
/// (`streamed`) exactly as `expected` says; when visible, internal comments
/// show in the detail and history only if `reads_internal`. The case is
/// expected to carry one internal and one public comment. Returns whether
/// the tag was written.
pub async fn assert_cell(
    c: &Client,
    cell: &str,
    id: &str,
    expected: Access,
    (listed, streamed): (&std::collections::HashSet<String>, &std::collections::HashSet<String>),
    tag: &str,
    reads_internal: bool,
) -> bool {
    let visible = expected != Access::Hidden;
    let want = if visible { 200 } else { 404 };
    let detail = c.get(&format!("/api/v1/cases/{id}")).await.unwrap();
    assert_eq!(detail.status.as_u16(), want, "{cell}: detail {}", detail.body);
    if !visible {
        assert_eq!(
            detail.body["code"], "CW-NOT-FOUND",
            "{cell}: a hidden case is plain 404"
        );
    }
    assert_eq!(listed.contains(id), visible, "{cell}: list");
    assert_eq!(streamed.contains(id), visible, "{cell}: stream");
    let history = c.get(&format!("/api/v1/cases/{id}/history")).await.unwrap();
    assert_eq!(history.status.as_u16(), want, "{cell}: history");
    let command = c
        .post_wait(&format!("/api/v1/cases/{id}/tags"), &serde_json::json!({"tag": tag}))
        .await
        .unwrap();
    let want_command = match expected {
        Access::Hidden => 404,
        Access::Read => 403,
        Access::Work => 200,
    };
    assert_eq!(
        command.status.as_u16(),
        want_command,
        "{cell}: command {}",
        command.body
    );
    if expected == Access::Read {
        assert_eq!(command.body["code"], "CW-FORBIDDEN", "{cell}");
    }
    if visible {
        let comments = detail.body["comments"].as_array().unwrap().len();
        assert_eq!(comments, if reads_internal { 2 } else { 1 }, "{cell}: comments");
        let internal = history.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(is_internal_comment);
        assert_eq!(internal, reads_internal, "{cell}: internal comments in the history");
    }
    expected == Access::Work
}

/// An access token of the Keycloak-shaped test provider: `form` is the
/// grant (password or client credentials) for `client` in `realm`.
pub async fn provider_token(base: &str, realm: &str, client: &str, form: &[(&str, &str)]) -> String {
    let res = reqwest::Client::new()
        .post(format!("{base}/realms/{realm}/protocol/openid-connect/token"))
        .basic_auth(client, Some(format!("{client}-secret")))
        .form(form)
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    body["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("token from {realm}/{client}: {body}"))
        .to_owned()
}

/// The task `id` of a case detail; fails the test when there is none.
pub fn task_in(case: &serde_json::Value, id: uuid::Uuid) -> serde_json::Value {
    case["tasks"]
        .as_array()
        .and_then(|tasks| tasks.iter().find(|t| t["id"] == id.to_string()))
        .cloned()
        .unwrap_or_else(|| panic!("no task {id} in {case}"))
}
