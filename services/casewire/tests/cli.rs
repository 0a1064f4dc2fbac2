//! The `casewire` binary as a user runs it: `dev` prints its URLs and
//! logins first and serves the API, `token` prints a token the server
//! accepts, `definitions import` imports a directory, and `replay` rebuilds
//! projections identical to the live ones.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_casewire");

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(data: &std::path::Path, extra: &[&str]) -> (Server, Vec<String>) {
    start_with(data, extra, &[])
}

fn start_with(data: &std::path::Path, extra: &[&str], env: &[(&str, &str)]) -> (Server, Vec<String>) {
    let mut child = Command::new(BIN)
        .args(["dev", "--port", "0", "--data-dir"])
        .arg(data)
        .args(extra)
        .envs(env.iter().copied())
        .env("CASEWIRE__LOG__LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("casewire starts");
    let stdout = child.stdout.take().expect("stdout");
    let lines: Vec<String> = BufReader::new(stdout)
        .lines()
        .take(8)
        .map(|l| l.expect("line"))
        .collect();
    (Server(child), lines)
}

fn token(data: &std::path::Path, user: &str) -> String {
    let out = Command::new(BIN)
        .args(["token", user, "--data-dir"])
        .arg(data)
        .output()
        .expect("token runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8").trim().to_owned()
}

async fn get(url: &str, token: &str) -> serde_json::Value {
    let res = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    assert!(res.status().is_success(), "{url}: {}", res.status());
    res.json().await.expect("json")
}

#[tokio::test]
async fn dev_serves_demo_data_and_replay_rebuilds_identical_projections() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (server, lines) = start(&data, &[]);
    assert!(lines[0].starts_with("API "), "first line is the API URL: {lines:?}");
    assert!(lines[1].starts_with("Portal      http://"), "{lines:?}");
    assert!(lines[2].starts_with("Management "), "{lines:?}");
    assert!(lines[3].starts_with("WebSocket   ws://"), "{lines:?}");
    assert!(
        lines[4].contains("alice/alice") && lines[4].contains("bob/bob") && lines[4].contains("carol/carol"),
        "{lines:?}"
    );
    let api = lines[0].split_whitespace().nth(1).unwrap().to_owned();
    let mgmt = lines[2].split_whitespace().nth(1).unwrap().to_owned();
    // The admin sees every case of the tenant; the demo also seeds 5 in globex.
    let admin = token(&data, "carol");

    // The demo loader creates its cases through commands.
    let started = Instant::now();
    let mut count = 0;
    while started.elapsed() < Duration::from_secs(120) {
        let page = get(&format!("{api}/cases?limit=200"), &admin).await;
        count = page["items"].as_array().unwrap().len();
        if count == 50 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(count, 50, "fifty demo cases");
    let ready = reqwest::get(&mgmt).await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    let page = get(&format!("{api}/cases?limit=200&sort=key"), &admin).await;
    let mut before = Vec::new();
    for item in page["items"].as_array().unwrap() {
        let id = item["id"].as_str().unwrap();
        before.push((
            get(&format!("{api}/cases/{id}"), &admin).await,
            get(&format!("{api}/cases/{id}/history"), &admin).await,
        ));
    }
    assert!(
        before.iter().any(|(c, _)| c["status"] == "closed"),
        "some demo cases are closed"
    );
    assert!(
        before
            .iter()
            .any(|(c, _)| c["comments"].as_array().is_some_and(|c| !c.is_empty())),
        "some have comments"
    );
    drop(server);

    let out = Command::new(BIN)
        .args(["replay", "--data-dir"])
        .arg(&data)
        .env("CASEWIRE__LOG__LEVEL", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("of 55 cases"),
        "50 in casewire, 5 in globex: {summary}"
    );

    let (_server, lines) = start(&data, &[]);
    let api = lines[0].split_whitespace().nth(1).unwrap().to_owned();
    let admin = token(&data, "carol");
    let page = get(&format!("{api}/cases?limit=200&sort=key"), &admin).await;
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        50,
        "the demo is not loaded twice"
    );
    for (case, history) in &before {
        let id = case["id"].as_str().unwrap();
        assert_eq!(
            &get(&format!("{api}/cases/{id}"), &admin).await,
            case,
            "replayed detail of {id} is identical"
        );
        assert_eq!(
            &get(&format!("{api}/cases/{id}/history"), &admin).await,
            history,
            "replayed history of {id} is identical"
        );
    }
}

/// `casewire dev | head -1`, or a test that reads the first line and
/// closes the pipe: the platform keeps serving. `println!` panics on a
/// broken pipe, which once killed `dev` in the middle of a CI run. The
/// pipe is closed before the banner, so every banner line meets it.
#[tokio::test]
async fn dev_keeps_serving_after_its_reader_closes_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["dev", "--port", "0", "--no-demo", "--data-dir"])
        .arg(dir.path())
        .env("CASEWIRE__LOG__LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let _server = Server(child);
    // runtime.json is written just before the banner.
    let runtime = dir.path().join("runtime.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    let info = loop {
        if let Some(v) = std::fs::read(&runtime)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        {
            break v;
        }
        assert!(Instant::now() < deadline, "dev wrote no runtime.json");
        std::thread::sleep(Duration::from_millis(50));
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let api = format!("{}/api/v1", info["apiUrl"].as_str().unwrap());
    let page = get(&format!("{api}/cases"), &token(dir.path(), "carol")).await;
    assert!(page["items"].is_array(), "{page}");
}

#[test]
fn definitions_import_and_helpful_errors() {
    let dir = tempfile::tempdir().unwrap();
    let defs = concat!(env!("CARGO_MANIFEST_DIR"), "/../../definitions");
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .env("CASEWIRE__LOG__LEVEL", "warn")
            .output()
            .unwrap()
    };
    let out = run(&["definitions", "import", defs]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("version 1").count(), 3, "{text}");
    let again = run(&["definitions", "import", defs]);
    assert_eq!(String::from_utf8_lossy(&again.stdout).matches("version 2").count(), 3);

    let bad = tempfile::tempdir().unwrap();
    std::fs::write(bad.path().join("broken.yaml"), "id: broken\nname: B\n").unwrap();
    let out = run(&["definitions", "import", bad.path().to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken.yaml"));

    let out = run(&["token", "mallory"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("alice, bob, carol, dave, erin, intake, gina, hank"));

    let out = Command::new(BIN)
        .args(["dev", "--port", "0"])
        .env("CASEWIRE__MODE", "production")
        .output()
        .unwrap();
    assert!(!out.status.success(), "dev mode is refused in production");
    // `serve` never falls into dev mode: the mode is the operator's word.
    let serve = |env: &[(&str, &str)]| {
        let out = Command::new(BIN)
            .args(["serve", "case-api"])
            .env("CASEWIRE__DATA_DIR", dir.path())
            .env("CASEWIRE__API__BIND", "127.0.0.1:0")
            .env("CASEWIRE__MANAGEMENT__BIND", "127.0.0.1:0")
            .env("CASEWIRE__WS__BIND", "127.0.0.1:0")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{env:?} must not start");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = serve(&[]);
    assert!(err.contains("explicit mode"), "{err}");
    let err = serve(&[("CASEWIRE__MODE", "production")]);
    assert!(err.contains("no token issuer"), "{err}");
    let err = serve(&[("CASEWIRE__MODE", "production"), ("CASEWIRE__AUTH__DEV_ISSUER", "true")]);
    assert!(err.contains("dev_issuer"), "{err}");
    // Dev mode on a public bind: the demo logins stay on loopback.
    let err = serve(&[("CASEWIRE__MODE", "dev"), ("CASEWIRE__API__BIND", "0.0.0.0:0")]);
    assert!(err.contains("loopback"), "{err}");
}

/// VmRSS and VmHWM (peak) of a process, in bytes.
fn memory_of(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .expect("field")
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A deterministic body of `size` bytes in 1 MiB chunks, hashed as it goes.
fn generated(size: usize) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures::stream::iter((0..size.div_ceil(1 << 20)).map(move |i| {
        let len = (size - i * (1 << 20)).min(1 << 20);
        Ok((0..len).map(|j| ((i * 7 + j * 13) % 251) as u8).collect())
    }))
}

#[tokio::test]
async fn a_200_mb_file_streams_through_in_bounded_memory() {
    two_hundred_mb(None).await;
}

/// The same on S3 (Garage, started by tests/run): multipart upload, one
/// part in memory at a time.
#[tokio::test]
async fn a_200_mb_file_streams_through_s3_in_bounded_memory() {
    let (Ok(url), Ok(key), Ok(secret)) = (
        std::env::var("CASEWIRE_TEST_S3"),
        std::env::var("CASEWIRE_TEST_S3_ACCESS_KEY"),
        std::env::var("CASEWIRE_TEST_S3_SECRET_KEY"),
    ) else {
        casewire_ports::contract::skip("set CASEWIRE_TEST_S3 and its keys (tests/run starts Garage)");
        return;
    };
    let prefix = format!("cli-{}/", uuid::Uuid::now_v7().simple());
    two_hundred_mb(Some(format!(
        "{url}&access_key={key}&secret_key={secret}&prefix={prefix}"
    )))
    .await;
}

async fn two_hundred_mb(storage: Option<String>) {
    use futures::StreamExt;
    use sha2::{Digest, Sha256};
    const SIZE: usize = 200 * 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let env: Vec<(&str, &str)> = storage.iter().map(|s| ("CASEWIRE__STORAGE__URL", s.as_str())).collect();
    let (server, lines) = start_with(&data, &["--no-demo"], &env);
    let backend = if storage.is_some() { "S3" } else { "local disk" };
    let api = lines[0].split_whitespace().nth(1).unwrap().to_owned();
    let alice = token(&data, "alice");
    let pid = server.0.id();
    let (rss_before, _) = memory_of(pid);

    let mut expected = Sha256::new();
    let mut body = generated(SIZE);
    while let Some(chunk) = body.next().await {
        expected.update(chunk.unwrap());
    }
    let expected: String = expected.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let started = Instant::now();
    let res = reqwest::Client::new()
        .post(format!("{api}/files"))
        .bearer_auth(&alice)
        .header("content-type", "application/octet-stream")
        .header("x-file-name", "big.bin")
        .header("x-checksum-sha256", &expected)
        .body(reqwest::Body::wrap_stream(generated(SIZE)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let up = started.elapsed();
    let file: serde_json::Value = res.json().await.unwrap();
    assert_eq!(file["size"].as_u64(), Some(SIZE as u64));

    let started = Instant::now();
    let res = reqwest::Client::new()
        .get(format!("{api}/files/{}", file["id"].as_str().unwrap()))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let mut got = Sha256::new();
    let mut n = 0;
    let mut stream = res.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        n += chunk.len();
        got.update(&chunk);
    }
    let down = started.elapsed();
    let got: String = got.finalize().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!((n, got), (SIZE, expected), "the same bytes come back");
    let (rss_after, peak) = memory_of(pid);
    let mb = |b: u64| b as f64 / 1_048_576.0;
    eprintln!(
        "200 MB on {backend}: upload {up:?}, download {down:?}; server RSS {:.1} MB before, {:.1} MB after, peak {:.1} MB",
        mb(rss_before),
        mb(rss_after),
        mb(peak)
    );
    // Generous: the body must never be held whole (that alone is 200 MB).
    assert!(
        peak < rss_before + 100 * 1_048_576,
        "peak RSS {:.1} MB grew more than 100 MB over {:.1} MB",
        mb(peak),
        mb(rss_before)
    );
}

#[tokio::test]
async fn serve_storage_api_serves_files_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = Command::new(BIN)
        .args(["serve", "storage-api", "--data-dir"])
        .arg(&data)
        .env("CASEWIRE__MODE", "dev")
        .env("CASEWIRE__API__BIND", "127.0.0.1:0")
        .env("CASEWIRE__MANAGEMENT__BIND", "127.0.0.1:0")
        .env("CASEWIRE__WS__BIND", "127.0.0.1:0")
        .env("CASEWIRE__LOG__LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // Both lines it prints: a pipe closed after the first makes the
    // second `println!` fail, and the server with it (seen under load).
    let lines: Vec<String> = BufReader::new(stdout).lines().take(2).map(Result::unwrap).collect();
    let _server = Server(child);
    let api = lines[0].split_whitespace().nth(1).unwrap().to_owned();
    let alice = token(&data, "alice");
    let http = reqwest::Client::new();
    let up = http
        .post(format!("{api}/files"))
        .bearer_auth(&alice)
        .header("content-type", "text/plain")
        .header("x-file-name", "a.txt")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(up.status().as_u16(), 201);
    let id = up.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let back = http
        .get(format!("{api}/files/{id}"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(back.text().await.unwrap(), "hello");
    let cases = http
        .get(format!("{api}/cases"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(cases.status().as_u16(), 404, "the case API is not served here");
}

/// `casewire serve task-worker` alone, beside a `casewire dev` whose own
/// worker is off: it signs its tokens with the dev issuer's key in the
/// shared data dir and works a `casewire.command` task through the API.
/// In production it needs a service account, and says so.
#[tokio::test]
async fn serve_task_worker_works_tasks_of_a_separate_api() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (_server, lines) = start_with(&data, &["--no-demo"], &[("CASEWIRE__TASK_WORKER__ENABLED", "false")]);
    let api = lines[0].split_whitespace().nth(1).unwrap().to_owned();
    let base = api.trim_end_matches("/api/v1").to_owned();
    let worker = |env: &[(&str, &str)]| {
        let mut command = Command::new(BIN);
        command
            .args(["serve", "task-worker"])
            .env("CASEWIRE__DATA_DIR", &data)
            .env("CASEWIRE__SERVICE_ACCOUNT__API_URL", &base)
            .env("CASEWIRE__TASK_WORKER__WORKER_ID", "lonely-worker")
            .env("CASEWIRE__MANAGEMENT__BIND", "127.0.0.1:0")
            .env("CASEWIRE__LOG__LEVEL", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    };
    let out = worker(&[("CASEWIRE__MODE", "production")]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("service_account.token_url"), "{err}");

    let carol = token(&data, "carol");
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
    let opened: serde_json::Value = http
        .post(format!("{api}/cases"))
        .bearer_auth(&carol)
        .header("prefer", "wait=10")
        .json(
            &serde_json::json!({"definition": "customer-complaint", "title": "Lid broken",
                                  "data": {"channel": "web", "product": "K1"}}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let case = opened["id"].as_str().unwrap().to_owned();
    let r = http
        .post(format!("{api}/cases/{case}/tasks"))
        .bearer_auth(&carol)
        .header("prefer", "wait=10")
        .json(
            &serde_json::json!({"kind": "external", "name": "Tag it", "topic": "casewire.command",
                                  "variables": {"command": "case.tag", "data": {"tag": "worked-alone"}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let mut child = worker(&[("CASEWIRE__MODE", "dev")]).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let _worker = Server(child);
    // The worker has a management port of its own: ready while the API answers.
    let management = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("Management").map(|r| r.trim().to_owned()))
        .expect("the worker prints its management URL");
    std::thread::spawn(move || lines.for_each(drop));
    let ready: serde_json::Value = reqwest::get(&management).await.unwrap().json().await.unwrap();
    assert_eq!(ready["checks"]["api"]["status"], "up", "{ready}");
    // `casewire health`, the containers' health check, says the same by its exit code.
    let health = |url: &str| Command::new(BIN).args(["health", "--url", url]).output().unwrap();
    assert!(health(&management).status.success());
    assert!(
        !health("http://127.0.0.1:9/health/ready").status.success(),
        "nothing listens there"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = get(&format!("{api}/cases/{case}"), &carol).await;
        let done = c["tasks"][0]["state"] == "completed";
        if done {
            assert!(
                c["tags"]
                    .as_array()
                    .unwrap()
                    .contains(&serde_json::json!("worked-alone")),
                "{c}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the lone worker never completed the task: {c}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let history = get(&format!("{api}/cases/{case}/history"), &carol).await;
    let locked = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"].as_str().is_some_and(|t| t.contains("task-locked")))
        .cloned()
        .unwrap();
    assert_eq!(locked["data"]["workerId"], "lonely-worker");
}

/// `casewire serve portal` alone, beside a `casewire dev` that has the
/// API: a person signs in through the dev issuer's code flow with the
/// portal's own callback, and sees the cases through the API.
#[tokio::test]
async fn serve_portal_signs_in_and_lists_cases_of_a_separate_api() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (_server, lines) = start_with(&data, &[], &[]);
    let api = lines[0].split_whitespace().nth(1).unwrap().to_owned();
    let base = api.trim_end_matches("/api/v1").to_owned();
    let mut child = Command::new(BIN)
        .args(["serve", "portal", "--data-dir"])
        .arg(&data)
        .env("CASEWIRE__MODE", "dev")
        .env("CASEWIRE__PORTAL__API_URL", &base)
        .env("CASEWIRE__API__BIND", "127.0.0.1:0")
        .env("CASEWIRE__MANAGEMENT__BIND", "127.0.0.1:0")
        .env("CASEWIRE__LOG__LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines: Vec<String> = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .take(2)
        .map(Result::unwrap)
        .collect();
    let _portal = Server(child);
    let portal = lines[0]
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    let ready: serde_json::Value = reqwest::get(lines[1].split_whitespace().nth(1).unwrap())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["checks"]["api"]["status"], "up", "{ready}");

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    let to = http
        .get(format!("{portal}/auth/login?realm=casewire"))
        .send()
        .await
        .unwrap();
    let login = to.headers()["location"].to_str().unwrap().to_owned();
    assert!(login.starts_with(&base), "the API's dev issuer: {login}");
    let page = reqwest::Url::parse(&login).unwrap();
    let redirect: String = page
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    assert_eq!(redirect, format!("{portal}/auth/callback"), "the portal's own callback");
    let mut form: Vec<(String, String)> = page.query_pairs().into_owned().collect();
    form.push(("username".into(), "alice".into()));
    form.push(("password".into(), "alice".into()));
    let r = http.post(page.as_str()).form(&form).send().await.unwrap();
    let callback = r.headers()["location"].to_str().unwrap().to_owned();
    let r = http.get(&callback).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 302, "signed in");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let html = http
            .get(format!("{portal}/cases"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if html.contains("CMP-") {
            assert!(html.contains("alice · casewire"), "alice's list, through the API");
            break;
        }
        assert!(Instant::now() < deadline, "the demo cases in alice's list: {html}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
