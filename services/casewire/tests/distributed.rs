//! The distributed runtime: `casewire serve case-api | case-engine |
//! projector` as separate processes over a real Kafka-protocol broker, with
//! SQLite stores shared through the data dir or with MongoDB stores.
//! Needs `CASEWIRE_TEST_KAFKA=host:port` (and `CASEWIRE_TEST_TANSU=<path to
//! tansu>` for the broker restart), `CASEWIRE_TEST_MONGODB=mongodb://...`
//! (and `CASEWIRE_TEST_SECANTUSD=<path to secantusd-py>` for the database
//! outage); `tests/run` starts tansu and SecantusDB and sets all four.
//! Without them the tests say so and pass, so plain `cargo test` works.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use casewire_ports::contract::skip;

#[path = "../../../tests/e2e/src/sla_fixture.rs"]
mod sla_fixture;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use casewire::client::Client;
use casewire_ports::{CommandStatus, EventStore, ReadStore};
use casewire_sqlite::{Durability, SqliteEventStore, SqliteReadStore};
use futures::TryStreamExt;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_casewire");

/// The tests that put a deployment under load take turns: on 2 cores, two
/// of them at once starve the broker's consumer-group heartbeats, and tansu
/// 0.6 then sometimes leaves a rebalancing group without consumers (see
/// ARCHITECTURE.md, "Known tansu 0.6 limit").
static UNDER_LOAD: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn kafka() -> Option<String> {
    match std::env::var("CASEWIRE_TEST_KAFKA") {
        Ok(k) => Some(k),
        Err(_) => {
            skip("set CASEWIRE_TEST_KAFKA=host:port (tests/run starts tansu and sets it)");
            None
        }
    }
}

fn mongodb() -> Option<String> {
    match std::env::var("CASEWIRE_TEST_MONGODB") {
        Ok(k) => Some(k),
        Err(_) => {
            skip("set CASEWIRE_TEST_MONGODB=mongodb://host:port/ (tests/run starts SecantusDB and sets it)");
            None
        }
    }
}

/// A free port on 127.0.0.1 for a server the test starts itself.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16) {
    for _ in 0..300 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("nothing listens on port {port}");
}

/// Starts a server the test owns, its output appended to `log`, and waits
/// until it listens on `port`.
fn start_server(mut command: Command, log: &std::path::Path, port: u16) -> Proc {
    let log = std::fs::File::options().create(true).append(true).open(log).unwrap();
    let child = command.stdout(log.try_clone().unwrap()).stderr(log).spawn().unwrap();
    wait_for_port(port);
    Proc { child, lines: vec![] }
}

struct Proc {
    child: Child,
    lines: Vec<String>,
}

impl Proc {
    /// The base URL an API process printed first (`API  <base>/api/v1`).
    fn base_url(&self) -> String {
        self.lines[0]
            .split_whitespace()
            .nth(1)
            .unwrap()
            .trim_end_matches("/api/v1")
            .to_owned()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One deployment: a data dir (shared SQLite stores, the dev issuer's
/// key), optionally a MongoDB database instead of the SQLite stores, a
/// broker and a topic prefix. The processes' logs stay in the temp dir for
/// post-mortems.
struct Deployment {
    data: PathBuf,
    kafka: String,
    prefix: String,
    logs: PathBuf,
    /// `mongodb://.../<database of this deployment>`.
    store: Option<String>,
}

impl Deployment {
    fn new(kafka: &str) -> Self {
        let prefix = format!("t{}.", Uuid::now_v7().simple());
        let dir = std::env::temp_dir().join(format!("casewire-distributed-{}", prefix.trim_end_matches('.')));
        std::fs::create_dir_all(&dir).unwrap();
        eprintln!("deployment logs in {}", dir.display());
        Deployment {
            data: dir.join("data"),
            kafka: kafka.to_owned(),
            prefix,
            logs: dir,
            store: None,
        }
    }

    /// A deployment whose stores are a fresh database of `mongodb`.
    fn with_mongodb(kafka: &str, mongodb: &str) -> Self {
        let mut d = Deployment::new(kafka);
        let database = format!("dist_{}", d.prefix.trim_end_matches('.'));
        d.store = Some(casewire_mongodb::with_database(mongodb, &database));
        d
    }

    /// The deployment's stores, opened by the test to check them.
    async fn stores(&self) -> (Arc<dyn EventStore>, Arc<dyn ReadStore>) {
        match &self.store {
            Some(url) => {
                let settings = casewire_mongodb::MongoSettings::new(url);
                let db = casewire_mongodb::connect(&settings).await.unwrap();
                (
                    Arc::new(casewire_mongodb::MongoEventStore::open(&db, &settings).await.unwrap()),
                    Arc::new(casewire_mongodb::MongoReadStore::open(&db, &settings).await.unwrap()),
                )
            }
            None => (
                Arc::new(SqliteEventStore::open(&self.data.join("events.db"), Durability::Normal).unwrap()),
                Arc::new(SqliteReadStore::open(&self.data.join("read.db"), Durability::Normal).unwrap()),
            ),
        }
    }

    /// The environment that points a `casewire` process at this deployment.
    fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("CASEWIRE__DATA_DIR".into(), self.data.display().to_string()),
            ("CASEWIRE__BUS__URL".into(), format!("kafka://{}", self.kafka)),
            ("CASEWIRE__BUS__TOPIC_PREFIX".into(), self.prefix.clone()),
        ];
        if let Some(url) = &self.store {
            env.push(("CASEWIRE__STORE__EVENTS".into(), url.clone()));
            env.push(("CASEWIRE__STORE__READ".into(), url.clone()));
        }
        env
    }

    fn serve(&self, service: &str) -> Proc {
        self.serve_with(service, &[])
    }

    fn serve_with(&self, service: &str, env: &[(&str, &str)]) -> Proc {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.logs.join(format!("{service}.log")))
            .unwrap();
        let mut child = Command::new(BIN)
            .args(["serve", service])
            .envs(self.env())
            .env("CASEWIRE__MODE", "dev")
            .env("CASEWIRE__BUS__PARTITIONS", "3")
            .env("CASEWIRE__BUS__MESSAGE_TIMEOUT_MS", "3000")
            .env("CASEWIRE__API__BIND", "127.0.0.1:0")
            .env("CASEWIRE__MANAGEMENT__BIND", "127.0.0.1:0")
            .env("CASEWIRE__WS__BIND", "127.0.0.1:0")
            .env(
                "CASEWIRE__LOG__LEVEL",
                std::env::var("CASEWIRE_TEST_CHILD_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let n = if matches!(service, "case-api" | "ws-publisher") {
            2
        } else {
            1
        };
        let stdout = child.stdout.take().unwrap();
        let lines: Vec<String> = BufReader::new(stdout).lines().take(n).map(Result::unwrap).collect();
        assert_eq!(lines.len(), n, "{service} printed its addresses");
        Proc { child, lines }
    }

    fn client(&self, api: &Proc, user: &str) -> Client {
        let base = api.base_url();
        let info: Value = serde_json::from_slice(&std::fs::read(self.data.join("runtime.json")).unwrap()).unwrap();
        let issuer =
            casewire_oidc::DevIssuer::load_or_create(&self.data, info["realms"].as_str().unwrap(), "casewire").unwrap();
        Client::new(&base, &issuer.token_for(user, 3600).unwrap())
    }

    fn topic(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

async fn import_definitions(c: &Client) {
    for (_, yaml) in casewire::DEMO_DEFINITIONS {
        let r = c.import_definition(yaml).await.unwrap();
        assert_eq!(r.status.as_u16(), 201, "{}", r.body);
    }
}

async fn open_cases(c: &Client, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let r = c
            .post_wait("/api/v1/cases", &json!({"definition": "customer-complaint", "title": format!("Case {i}"), "data": {"channel": "web", "product": "p"}}))
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 201, "open across processes: {}", r.body);
        ids.push(r.body["id"].as_str().unwrap().to_owned());
    }
    ids
}

/// Waits until every command is final, then checks exactly-once: one event
/// per accepted command, gapless per-case revisions, no duplicate events.
async fn assert_exactly_once(d: &Deployment, accepted: &[Uuid], cases: &[String], opens_per_case: u64) {
    let (events, reads) = d.stores().await;
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut pending: Vec<Uuid> = accepted.to_vec();
    while !pending.is_empty() {
        assert!(
            Instant::now() < deadline,
            "{} accepted commands never finished",
            pending.len()
        );
        let mut still = Vec::new();
        for id in pending {
            let rec = reads
                .get_command(id)
                .await
                .unwrap()
                .expect("every accepted command is logged");
            match rec.status {
                CommandStatus::Processed => {}
                CommandStatus::Pending | CommandStatus::Processing => still.push(id),
                other => panic!("command {id} ended {other:?}: {:?}", rec.error),
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    for id in accepted {
        let caused = events.find_by_command(*id).await.unwrap();
        assert_eq!(caused.len(), 1, "command {id} caused exactly one event");
    }
    let mut total = 0;
    let mut event_ids = HashSet::new();
    for case in cases {
        let stream = events
            .load(
                &casewire_domain::types::TenantId::default_tenant(),
                case.parse().unwrap(),
            )
            .await
            .unwrap();
        let revisions: Vec<u64> = stream.iter().map(|e| e.revision).collect();
        assert_eq!(
            revisions,
            (1..=stream.len() as u64).collect::<Vec<_>>(),
            "case {case} is gapless"
        );
        for e in &stream {
            assert!(event_ids.insert(e.id), "event {} stored twice", e.id);
        }
        total += stream.len() as u64;
    }
    assert_eq!(
        total,
        accepted.len() as u64 + opens_per_case * cases.len() as u64,
        "no lost and no extra events"
    );
}

#[tokio::test]
async fn three_processes_serve_the_api_over_kafka() {
    let Some(kafka) = kafka() else { return };
    let d = Deployment::new(&kafka);
    let api = d.serve("case-api");
    let _engine = d.serve("case-engine");
    let _projector = d.serve("projector");
    end_to_end(&d, &api).await;
}

/// An OTLP/HTTP receiver (JSON bodies) on a free port: what it got.
async fn otlp_receiver() -> (u16, Arc<Mutex<Vec<Value>>>) {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let data = web::Data::from(got.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(64 << 20))
            .route(
                "/v1/traces",
                web::post().to(|got: web::Data<Mutex<Vec<Value>>>, body: web::Bytes| async move {
                    if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                        got.lock().await.push(v);
                    }
                    HttpResponse::Ok().content_type("application/json").body("{}")
                }),
            )
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .unwrap();
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    (port, got)
}

/// (service, span name, trace id) of every span the receiver got whose
/// `case_id` attribute is `case`.
async fn spans_of(got: &Mutex<Vec<Value>>, case: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for body in got.lock().await.iter() {
        for rs in body["resourceSpans"].as_array().into_iter().flatten() {
            let service = rs["resource"]["attributes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| a["key"] == "service.name")
                .and_then(|a| a["value"]["stringValue"].as_str())
                .unwrap_or_default()
                .to_owned();
            for span in rs["scopeSpans"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|s| s["spans"].as_array().into_iter().flatten())
            {
                let of_case = span["attributes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|a| a["key"] == "case_id" && a["value"]["stringValue"] == case);
                if of_case {
                    out.push((
                        service.clone(),
                        span["name"].as_str().unwrap_or_default().to_owned(),
                        span["traceId"].as_str().unwrap_or_default().to_owned(),
                    ));
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn one_trace_follows_a_command_from_the_api_through_the_engine_to_the_projector_and_a_publisher() {
    let Some(kafka) = kafka() else { return };
    let (port, got) = otlp_receiver().await;
    let endpoint = format!("http://127.0.0.1:{port}");
    let otel = [
        ("CASEWIRE__TELEMETRY__OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "200"),
    ];
    let d = Deployment::new(&kafka);
    let api = d.serve_with("case-api", &otel);
    let _engine = d.serve_with("case-engine", &otel);
    let _projector = d.serve_with("projector", &otel);
    let _notify = d.serve_with("notify-publisher", &otel);
    let c = d.client(&api, "carol");
    import_definitions(&c).await;
    let case = open_cases(&c, 1).await.remove(0);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let spans = spans_of(&got, &case).await;
        let find = |service: &str, name: &str| {
            spans
                .iter()
                .find(|(s, n, _)| s == service && n == name)
                .map(|(_, _, t)| t.clone())
        };
        let api = find("casewire-case-api", "submit");
        let engine = find("casewire-case-engine", "command");
        let projector = find("casewire-projector", "event");
        let notify = find("casewire-notify-publisher", "event");
        if let (Some(a), Some(e), Some(p), Some(n)) = (&api, &engine, &projector, &notify) {
            assert_eq!(
                (a, a, a),
                (e, p, n),
                "one trace id from the API through the engine to the projector and the notify publisher: {spans:?}"
            );
            assert_eq!(a.len(), 32, "a W3C trace id: {a}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the four services' spans of the case within 30 s: {spans:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn three_processes_serve_the_api_over_kafka_and_mongodb_and_replay_rebuilds_identical_documents() {
    let (Some(kafka), Some(mongodb)) = (kafka(), mongodb()) else {
        return;
    };
    let d = Deployment::with_mongodb(&kafka, &mongodb);
    let api = d.serve("case-api");
    let _engine = d.serve("case-engine");
    let projector = d.serve("projector");
    end_to_end(&d, &api).await;

    // Replay into the same database must give back every document as it was.
    let (events, reads) = d.stores().await;
    let c = d.client(&api, "alice");
    let head = events.head().await.unwrap();
    let mut last = 0;
    for _ in 0..100 {
        last = reads.checkpoint("projector").await.unwrap().unwrap_or(0);
        if last >= head {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(last >= head, "the projector caught up ({last} of {head})");
    drop(projector);
    let settings = casewire_mongodb::MongoSettings::new(d.store.as_deref().unwrap());
    let db = casewire_mongodb::connect(&settings).await.unwrap();
    let snapshot = async |name: &str| -> Vec<mongodb::bson::Document> {
        db.collection::<mongodb::bson::Document>(name)
            .find(mongodb::bson::doc! {})
            .sort(mongodb::bson::doc! {"_id": 1})
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap()
    };
    let (cases, timeline) = (snapshot("cases").await, snapshot("timeline").await);
    assert_eq!(cases.len(), 2, "two cases projected");
    assert!(timeline.len() >= 7, "every event has its timeline entry");
    let out = Command::new(BIN)
        .arg("replay")
        .envs(d.env())
        .env("CASEWIRE__LOG__LEVEL", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "replay: {}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!("Replayed {} events of 2 cases", timeline.len())),
        "{said}"
    );
    let (cases_after, timeline_after) = (snapshot("cases").await, snapshot("timeline").await);
    assert_eq!(cases_after.len(), cases.len());
    // The SLA schedule (`sla*` fields) is the scheduler's, which this
    // deployment does not run and the replay computes afresh; the SLA
    // test checks it. Every field the projector writes must be identical.
    let projected = |d: &mongodb::bson::Document| -> mongodb::bson::Document {
        d.iter()
            .filter(|(k, _)| !k.starts_with("sla"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    for (before, after) in cases.iter().zip(&cases_after) {
        assert_eq!(
            projected(before),
            projected(after),
            "replayed case document is identical"
        );
    }
    assert_eq!(timeline_after.len(), timeline.len());
    for (before, after) in timeline.iter().zip(&timeline_after) {
        assert_eq!(before, after, "replayed timeline document is identical");
    }
    // And the API serves the replayed projection.
    let list = c.get("/api/v1/cases?assignee=bob").await.unwrap();
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
}

/// Flows across the three processes over HTTP: commands with `Prefer: wait`,
/// a rejection, lists, command status, a poison message, and the events on
/// the broker as CloudEvents.
async fn end_to_end(d: &Deployment, api: &Proc) {
    let kafka = d.kafka.clone();
    let c = d.client(api, "alice");
    import_definitions(&d.client(api, "carol")).await;
    let ids = open_cases(&c, 2).await;
    let id = &ids[0];
    for (path, body) in [
        ("/assign", json!({"assignee": "bob"})),
        ("/stage", json!({"stage": "triage"})),
        ("/comments", json!({"body": "hello"})),
    ] {
        let r = c.post_wait(&format!("/api/v1/cases/{id}{path}"), &body).await.unwrap();
        assert_eq!(r.status.as_u16(), 200, "{path}: {}", r.body);
    }
    let r = c
        .post_wait(&format!("/api/v1/cases/{id}/stage"), &json!({"stage": "done"}))
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 409, "rejections cross processes too");
    let list = c.get("/api/v1/cases?assignee=bob").await.unwrap();
    assert_eq!(list.body["items"][0]["id"], id.as_str());
    let r = c
        .post(&format!("/api/v1/cases/{id}/tags"), &json!({"tag": "async"}))
        .await
        .unwrap();
    let command = r.body["commandId"].as_str().unwrap().to_owned();
    let mut status = Value::Null;
    for _ in 0..100 {
        status = c.get(&format!("/api/v1/commands/{command}")).await.unwrap().body;
        if status["status"] == "processed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status["status"], "processed");

    // A poison message goes to the dead-letter topic; the partition moves on.
    use rdkafka::Message;
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &kafka)
        .create()
        .unwrap();
    producer
        .send(
            FutureRecord::to(&d.topic("casewire.commands"))
                .key(id.as_str())
                .payload("{not a command"),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let r = c
        .post_wait(
            &format!("/api/v1/cases/{id}/comments"),
            &json!({"body": "after the poison"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "the partition keeps going: {}", r.body);
    let reader = |topic: String| {
        let consumer: StreamConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &kafka)
            .set("group.id", format!("check-{}", Uuid::now_v7()))
            .set("auto.offset.reset", "earliest")
            .create()
            .unwrap();
        consumer.subscribe(&[&topic]).unwrap();
        consumer
    };
    let dlq = reader(d.topic("casewire.dlq"));
    let parked = tokio::time::timeout(Duration::from_secs(20), dlq.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(parked.payload(), Some(&b"{not a command"[..]));

    // Any Kafka client can read the events: CloudEvents JSON, key = case id.
    let events = reader(d.topic("casewire.events"));
    let mut seen = 0;
    // Two opens, assign, stage, comment, tag and the comment after the poison.
    while seen < 7 {
        let m = tokio::time::timeout(Duration::from_secs(20), events.recv())
            .await
            .unwrap()
            .unwrap();
        let e: Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
        assert_eq!(e["specversion"], "1.0");
        assert_eq!(
            m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
            e["subject"].as_str().map(str::to_owned),
            "key = case id"
        );
        assert!(e["type"].as_str().unwrap().starts_with("casewire.case."));
        for ext in [
            "tenant",
            "revision",
            "correlationid",
            "causationid",
            "actor",
            "position",
        ] {
            assert!(!e[ext].is_null(), "extension {ext} present");
        }
        seen += 1;
    }
}

/// Fires `total` comment commands at `cases` from `clients` tasks; 503s are
/// retried (that is what a client should do). Calls `at(n)` once after the
/// n-th acceptance. Returns the accepted command ids and the 503 count.
async fn load(
    c: &Client,
    cases: &[String],
    total: usize,
    clients: usize,
    at: usize,
    hook: impl FnOnce() + Send + 'static,
) -> (Vec<Uuid>, usize) {
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let counter = Arc::new(AtomicUsize::new(0));
    let unavailable = Arc::new(AtomicUsize::new(0));
    let hook = Arc::new(std::sync::Mutex::new(Some(hook)));
    let mut tasks = Vec::new();
    for w in 0..clients {
        let (c, cases, accepted, counter, unavailable, hook) = (
            c.clone(),
            cases.to_vec(),
            accepted.clone(),
            counter.clone(),
            unavailable.clone(),
            hook.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let share = total / clients + usize::from(w < total % clients);
            for n in 0..share {
                let case = &cases[(w + n) % cases.len()];
                let body = json!({"body": format!("load {w}-{n}")});
                loop {
                    match c.post(&format!("/api/v1/cases/{case}/comments"), &body).await {
                        Ok(r) if r.status.as_u16() == 202 => {
                            accepted
                                .lock()
                                .await
                                .push(r.body["commandId"].as_str().unwrap().parse::<Uuid>().unwrap());
                            if counter.fetch_add(1, Ordering::SeqCst) + 1 == at
                                && let Some(h) = hook.lock().unwrap().take()
                            {
                                h();
                            }
                            break;
                        }
                        Ok(r) if r.status.as_u16() == 503 => {
                            assert_eq!(r.body["code"], "CW-UNAVAILABLE");
                            assert!(r.retry_after.is_some(), "a 503 says when to retry");
                            unavailable.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                        Ok(r) => panic!("unexpected answer {}: {}", r.status, r.body),
                        // The API itself never went away; a transport error is a bug.
                        Err(e) => panic!("request failed: {e}"),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let ids = accepted.lock().await.clone();
    (ids, unavailable.load(Ordering::SeqCst))
}

/// Two engines share the partitions; one dies by SIGKILL in the middle of
/// 5,000 commands and comes back: two rebalances under load.
#[tokio::test]
async fn kill_9_of_the_engine_under_load_loses_and_doubles_nothing() {
    let Some(kafka) = kafka() else { return };
    kill_9_under_load(Deployment::new(&kafka), 5000, 1500).await;
}

/// The same over MongoDB stores, checked in MongoDB. Fewer commands: the
/// test server (SecantusDB, in Python) is ~50x slower than SQLite here.
#[tokio::test]
async fn kill_9_of_the_engine_under_load_on_mongodb_loses_and_doubles_nothing() {
    let (Some(kafka), Some(mongodb)) = (kafka(), mongodb()) else {
        return;
    };
    kill_9_under_load(Deployment::with_mongodb(&kafka, &mongodb), 600, 200).await;
}

async fn kill_9_under_load(d: Deployment, total: usize, kill_at: usize) {
    let _turn = UNDER_LOAD.lock().await;
    let d = Arc::new(d);
    let api = d.serve("case-api");
    let engine = Arc::new(std::sync::Mutex::new(Some(d.serve("case-engine"))));
    let _projector = d.serve("projector");
    let c = d.client(&api, "alice");
    import_definitions(&d.client(&api, "carol")).await;
    let cases = open_cases(&c, 20).await;
    // The second engine joins a working group (tansu 0.6 has stalled groups
    // whose two members joined in the same instant; see the closing note).
    let _second_engine = d.serve("case-engine");
    let started = Instant::now();
    let (kill_engine, d2) = (engine.clone(), d.clone());
    let (accepted, _) = load(&c, &cases, total, 16, kill_at, move || {
        let mut slot = kill_engine.lock().unwrap();
        if let Some(mut p) = slot.take() {
            p.child.kill().unwrap(); // SIGKILL
            p.child.wait().unwrap();
            eprintln!("killed the engine with SIGKILL");
        }
        *slot = Some(d2.serve("case-engine"));
    })
    .await;
    assert_eq!(accepted.len(), total);
    assert_exactly_once(&d, &accepted, &cases, 1).await;
    eprintln!("{total} commands through a kill -9 in {:?}", started.elapsed());
}

#[tokio::test]
async fn a_broker_restart_under_load_loses_no_accepted_command() {
    let _turn = UNDER_LOAD.lock().await;
    let Some(_) = kafka() else { return };
    let Ok(tansu) = std::env::var("CASEWIRE_TEST_TANSU") else {
        skip("set CASEWIRE_TEST_TANSU=<path to tansu> (tests/run sets it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    eprintln!("broker files in {}", dir.path().display());
    let port = free_port();
    let start_broker = {
        let (tansu, dir) = (tansu.clone(), dir.path().to_owned());
        move || {
            let url = format!("tcp://127.0.0.1:{port}");
            // tansu reads sqlite://<path> as relative, so it runs in its directory.
            let mut command = Command::new(&tansu);
            command
                .args([
                    "--listener-url",
                    &url,
                    "--advertised-listener-url",
                    &url,
                    "--storage-engine",
                    "sqlite://tansu.db",
                ])
                .current_dir(&dir);
            start_server(command, &dir.join("tansu.log"), port)
        }
    };
    let broker = Arc::new(std::sync::Mutex::new(Some(start_broker())));
    let d = Deployment::new(&format!("127.0.0.1:{port}"));
    // tansu 0.6 panics (storage/src/lite.rs:503, "more or less than one
    // row") when an idempotent producer carries its producer id across a
    // broker restart, and then fails every produce. Casewire's exactly-once
    // does not rest on producer idempotence, so this test turns it off.
    let plain = [("CASEWIRE__BUS__IDEMPOTENT_PRODUCER", "false")];
    let api = d.serve_with("case-api", &plain);
    let _engine = d.serve_with("case-engine", &plain);
    let _projector = d.serve_with("projector", &plain);
    let c = d.client(&api, "alice");
    import_definitions(&d.client(&api, "carol")).await;
    let cases = open_cases(&c, 5).await;
    let restart = broker.clone();
    let (accepted, unavailable) = load(&c, &cases, 1200, 8, 300, move || {
        std::thread::spawn(move || {
            let mut slot = restart.lock().unwrap();
            if let Some(mut p) = slot.take() {
                // SIGTERM, like an orchestrator restarting the pod.
                let _ = Command::new("kill").arg(p.child.id().to_string()).status();
                let _ = p.child.wait();
            }
            eprintln!("broker stopped at {:?}", Instant::now());
            std::thread::sleep(Duration::from_secs(4));
            *slot = Some(start_broker());
            eprintln!("broker started again");
        });
    })
    .await;
    eprintln!(
        "{} commands accepted, {unavailable} answers were 503 while the broker was away",
        accepted.len()
    );
    assert_eq!(accepted.len(), 1200);
    assert_exactly_once(&d, &accepted, &cases, 1).await;
}

/// MongoDB goes away for 30 s under load (SIGKILL, then a restart on the
/// same files). The API answers 503 with `Retry-After` for what it can not
/// accept, every accepted command is processed after recovery, exactly
/// once, and no Casewire process is restarted.
#[tokio::test]
async fn a_database_outage_under_load_loses_no_accepted_command() {
    let _turn = UNDER_LOAD.lock().await;
    let Some(kafka) = kafka() else { return };
    let Ok(secantusd) = std::env::var("CASEWIRE_TEST_SECANTUSD") else {
        skip("set CASEWIRE_TEST_SECANTUSD=<path to secantusd-py> (tests/run sets it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    eprintln!("database files in {}", dir.path().display());
    let port = free_port();
    let start_database = {
        let dir = dir.path().to_owned();
        move || {
            let mut command = Command::new(&secantusd);
            command
                .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--storage-path"])
                .arg(dir.join("data"))
                // Acknowledged writes reach the disk, as with j:true on MongoDB,
                // so a SIGKILL loses nothing that was acknowledged.
                .arg("--sync-on-commit");
            start_server(command, &dir.join("secantusd.log"), port)
        }
    };
    let database = Arc::new(std::sync::Mutex::new(Some(start_database())));
    let d = Deployment::with_mongodb(&kafka, &format!("mongodb://127.0.0.1:{port}/?directConnection=true"));
    let mut api = d.serve("case-api");
    let mut engine = d.serve("case-engine");
    let mut projector = d.serve("projector");
    let c = d.client(&api, "alice");
    import_definitions(&d.client(&api, "carol")).await;
    let cases = open_cases(&c, 5).await;
    let outage = database.clone();
    let started = Instant::now();
    let (accepted, unavailable) = load(&c, &cases, 600, 8, 150, move || {
        std::thread::spawn(move || {
            let mut slot = outage.lock().unwrap();
            if let Some(mut p) = slot.take() {
                p.child.kill().unwrap(); // SIGKILL
                p.child.wait().unwrap();
            }
            eprintln!("database down at {:?}", started.elapsed());
            std::thread::sleep(Duration::from_secs(30));
            *slot = Some(start_database());
            eprintln!("database back at {:?}", started.elapsed());
        });
    })
    .await;
    eprintln!(
        "{} commands accepted, {unavailable} answers were 503 while the database was away",
        accepted.len()
    );
    assert!(unavailable > 0, "the API answered 503 while the database was away");
    assert_eq!(accepted.len(), 600);
    assert_exactly_once(&d, &accepted, &cases, 1).await;
    for (name, p) in [
        ("api", &mut api),
        ("engine", &mut engine),
        ("projector", &mut projector),
    ] {
        assert!(
            p.child.try_wait().unwrap().is_none(),
            "the {name} process survived the outage without a restart"
        );
    }
}

/// A WebSocket client of the test: every event frame's (position, id).
struct Socket {
    ws: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
}

impl Socket {
    /// Connects, subscribes to everything after `after`, and returns the
    /// events of the catch-up.
    async fn resume(url: &str, token: &str, after: u64) -> (Socket, Vec<(u64, String)>) {
        use futures::SinkExt;
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = url.into_client_request().unwrap();
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        let mut socket = Socket { ws };
        let sub = json!({"type": "subscribe", "id": "all", "after": after}).to_string();
        socket.ws.send(sub.into()).await.unwrap();
        let mut caught_up = Vec::new();
        loop {
            match socket.next(Duration::from_secs(30)).await {
                Some(Ok(v)) if v["type"] == "event" => caught_up.push(Self::key(&v)),
                Some(Ok(v)) if v["type"] == "subscribed" => return (socket, caught_up),
                Some(Ok(_)) => {}
                other => panic!("resuming: {other:?}"),
            }
        }
    }

    fn key(v: &Value) -> (u64, String) {
        (
            v["position"].as_u64().unwrap(),
            v["event"]["id"].as_str().unwrap().to_owned(),
        )
    }

    /// The next text frame as JSON; `Err` when the socket ended.
    async fn next(&mut self, limit: Duration) -> Option<Result<Value, String>> {
        use futures::StreamExt;
        loop {
            let frame = tokio::time::timeout(limit, self.ws.next()).await.ok()?;
            return Some(match frame {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) => Ok(serde_json::from_str(&t).unwrap()),
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(c))) => Err(format!("closed: {c:?}")),
                Some(Ok(_)) => continue,
                Some(Err(e)) => Err(e.to_string()),
                None => Err("ended".into()),
            });
        }
    }
}

/// `serve ws-publisher` for the deployment whose API is `api`: the same
/// dev issuer, so the API's tokens verify.
fn serve_ws(d: &Deployment, api: &Proc) -> (Proc, String) {
    let base = api.base_url();
    let ws = d.serve_with("ws-publisher", &[("CASEWIRE__API__PUBLIC_URL", &base)]);
    let url = ws.lines[1].split_whitespace().nth(1).unwrap().to_owned();
    (ws, url)
}

#[tokio::test]
async fn kill_9_of_the_ws_publisher_under_load_and_the_client_resumes_without_gap_or_duplicate() {
    let Some(kafka) = kafka() else { return };
    let _turn = UNDER_LOAD.lock().await;
    let d = Deployment::new(&kafka);
    let api = d.serve("case-api");
    let _engine = d.serve("case-engine");
    let _projector = d.serve("projector");
    let c = d.client(&api, "carol");
    import_definitions(&c).await;
    let cases = open_cases(&c, 3).await;
    let token = c.token().to_owned();
    let (mut publisher, url) = serve_ws(&d, &api);

    // Comments flow the whole time; the publisher dies in the middle.
    let total = 60;
    let writer = {
        let (c, cases) = (c.clone(), cases.clone());
        tokio::spawn(async move {
            for i in 0..total {
                let body = json!({"body": format!("update {i}"), "visibility": "public"});
                let r = c
                    .post_wait(&format!("/api/v1/cases/{}/comments", cases[i % 3]), &body)
                    .await
                    .unwrap();
                assert_eq!(r.status.as_u16(), 200, "{}", r.body);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let (mut socket, mut got) = Socket::resume(&url, &token, 0).await;
    while got.len() < 20 {
        match socket.next(Duration::from_secs(30)).await {
            Some(Ok(v)) if v["type"] == "event" => got.push(Socket::key(&v)),
            Some(Ok(_)) => {}
            other => panic!("before the kill: {other:?}"),
        }
    }
    publisher.child.kill().unwrap(); // SIGKILL
    let _ = publisher.child.wait();
    // The client sees its socket end, then resumes at a new publisher
    // after the last position it saw.
    loop {
        match socket.next(Duration::from_secs(30)).await {
            Some(Ok(v)) if v["type"] == "event" => got.push(Socket::key(&v)),
            Some(Ok(_)) => {}
            _ => break,
        }
    }
    let (_publisher, url) = serve_ws(&d, &api);
    let last = got.last().unwrap().0;
    let (mut socket, caught_up) = Socket::resume(&url, &token, last).await;
    got.extend(caught_up);
    writer.await.unwrap();
    while let Some(Ok(v)) = socket.next(Duration::from_secs(3)).await {
        if v["type"] == "event" {
            got.push(Socket::key(&v));
        }
    }

    // Exactly the log: every event once, in position order.
    let (events, _) = d.stores().await;
    let log: Vec<(u64, String)> = events
        .read_all(1, 10_000)
        .await
        .unwrap()
        .iter()
        .map(|e| (e.position, e.id.to_string()))
        .collect();
    assert_eq!(log.len(), 3 + total, "3 opens and the comments are stored");
    assert_eq!(got, log, "the client saw every event once, in order, across the kill");
}

/// A Python helper of `tests/notify` (an SMTP sink or a webhook receiver)
/// on a free port, writing what it receives into `dir`.
fn notify_helper(python: &str, script: &str, dir: &std::path::Path) -> (Proc, u16) {
    let port = free_port();
    let mut child = Command::new(python)
        .arg(format!("{}/../../tests/notify/{script}", env!("CARGO_MANIFEST_DIR")))
        .arg(port.to_string())
        .arg(dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready", "{script}");
    (Proc { child, lines: vec![] }, port)
}

/// The ids a helper saw (Message-ID of each e-mail, or webhook-id of each
/// request), with repeats.
fn seen_ids(dir: &std::path::Path) -> Vec<String> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().filter_map(Result::ok) {
        let path = entry.path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if path.extension().is_some_and(|e| e == "json") {
            let v: Value = serde_json::from_str(&text).unwrap();
            let data = v["data"].as_str().unwrap_or_default();
            let id = data
                .lines()
                .find_map(|l| l.strip_prefix("Message-ID: "))
                .unwrap_or_default();
            ids.push(id.to_owned());
        } else if path.file_name().is_some_and(|n| n == "received.jsonl") {
            for l in text.lines() {
                let v: Value = serde_json::from_str(l).unwrap();
                assert_eq!(v["verified"], true, "every webhook verifies: {v}");
                ids.push(v["id"].as_str().unwrap().to_owned());
            }
        }
    }
    ids
}

#[tokio::test]
async fn kill_9_of_the_notify_publisher_under_load_loses_no_notification() {
    let Some(kafka) = kafka() else { return };
    let Ok(python) = std::env::var("CASEWIRE_TEST_PYTHON") else {
        skip("set CASEWIRE_TEST_PYTHON to a python3 with aiosmtpd and standardwebhooks (tests/run does)");
        return;
    };
    let _turn = UNDER_LOAD.lock().await;
    let d = Deployment::new(&kafka);
    let (mail_dir, hook_dir) = (d.logs.join("mail"), d.logs.join("hooks"));
    let (_sink, smtp_port) = notify_helper(&python, "smtp_sink.py", &mail_dir);
    let (_receiver, hook_port) = notify_helper(&python, "webhook_receiver.py", &hook_dir);
    let smtp = format!("smtp://127.0.0.1:{smtp_port}");
    let env = [
        ("CASEWIRE__NOTIFY__SMTP_URL", smtp.as_str()),
        ("CASEWIRE__NOTIFY__ALLOW_PRIVATE_TARGETS", "true"),
        ("CASEWIRE__NOTIFY__SEND_EVERY_MS", "100"),
    ];
    let api = d.serve_with("case-api", &env);
    let _engine = d.serve("case-engine");
    let _projector = d.serve("projector");
    let mut publisher = d.serve_with("notify-publisher", &env);
    let (carol, alice) = (d.client(&api, "carol"), d.client(&api, "alice"));
    import_definitions(&carol).await;
    assert_eq!(alice.get("/api/v1/me/preferences").await.unwrap().status.as_u16(), 200);
    let hook = json!({"url": format!("http://127.0.0.1:{hook_port}/hook"), "events": ["casewire.case.assigned.v1"]});
    let r = carol.post("/api/v1/webhooks", &hook).await.unwrap();
    assert_eq!(r.status.as_u16(), 201, "{}", r.body);
    std::fs::write(hook_dir.join("secrets"), r.body["secret"].as_str().unwrap()).unwrap();

    // 40 assignments to alice: each one in-app, one e-mail and one webhook.
    let cases = open_cases(&carol, 4).await;
    let total = 40;
    let writer = {
        let (carol, cases) = (carol.clone(), cases.clone());
        tokio::spawn(async move {
            for i in 0..total {
                let who = if (i / 4) % 2 == 0 { "alice" } else { "erin" };
                let r = carol
                    .post_wait(
                        &format!("/api/v1/cases/{}/assign", cases[i % 4]),
                        &json!({"assignee": who}),
                    )
                    .await
                    .unwrap();
                assert_eq!(r.status.as_u16(), 200, "{}", r.body);
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen_ids(&hook_dir).len() < 10 {
        assert!(Instant::now() < deadline, "no webhook deliveries");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    publisher.child.kill().unwrap(); // SIGKILL
    let _ = publisher.child.wait();
    eprintln!("killed the notify-publisher with SIGKILL");
    let _publisher = d.serve_with("notify-publisher", &env);
    writer.await.unwrap();

    // Every assignment once at the receiver and, for alice's, in her
    // mailbox, beside the four new cases in her queue (complaints).
    let expect_hooks = total;
    let expect_mail = total / 2 + 4;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (hooks, mail) = (seen_ids(&hook_dir), seen_ids(&mail_dir));
        let distinct = |v: &[String]| v.iter().collect::<HashSet<_>>().len();
        if distinct(&hooks) == expect_hooks && distinct(&mail) == expect_mail {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let (hooks, mail) = (seen_ids(&hook_dir), seen_ids(&mail_dir));
            eprintln!(
                "webhooks: {} received, {} distinct; e-mails: {} received, {} distinct",
                hooks.len(),
                distinct(&hooks),
                mail.len(),
                distinct(&mail)
            );
            // On the wire a message is at least once, with a stable id: a
            // kill between the server's acceptance and the publisher's
            // record repeats that one message (same webhook-id, same
            // Message-ID), at most one per channel per kill.
            assert!(hooks.len() - distinct(&hooks) <= 1, "{hooks:?}");
            assert!(mail.len() - distinct(&mail) <= 1, "{mail:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "lost notifications: {} of {expect_hooks} webhooks, {} of {expect_mail} e-mails",
            distinct(&hooks),
            distinct(&mail)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let inbox = alice.get("/api/v1/me/notifications?limit=200").await.unwrap().body;
    let assigned = inbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "assigned")
        .count();
    assert_eq!(assigned, total / 2, "one in-app notification per assignment");
}

/// How many events of `kind` the case's history has.
async fn count_events(c: &Client, id: &str, kind: &str) -> usize {
    let h = c.get(&format!("/api/v1/cases/{id}/history")).await.unwrap().body;
    h["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == format!("casewire.case.{kind}.v1"))
        .count()
}

async fn wait_for_event(c: &Client, id: &str, kind: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    while count_events(c, id, kind).await == 0 {
        assert!(Instant::now() < deadline, "no {kind} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Two SLA schedulers over Kafka and MongoDB: the warning is recorded
/// once; both are killed with SIGKILL; the goal passes while none runs;
/// one started again records the breach, late and once; a replay (which
/// recomputes the schedule) and another scheduler add nothing.
#[tokio::test]
async fn sla_warning_and_breach_once_across_two_schedulers_a_kill_9_and_a_replay_on_kafka_and_mongodb() {
    let (Some(kafka), Some(mongodb)) = (kafka(), mongodb()) else {
        return;
    };
    let d = Deployment::with_mongodb(&kafka, &mongodb);
    let api = d.serve("case-api");
    let _engine = d.serve("case-engine");
    let projector = d.serve("projector");
    let c = d.client(&api, "carol");
    let r = c.import_definition(&sla_fixture::fast_complaint()).await.unwrap();
    assert_eq!(r.status.as_u16(), 201, "{}", r.body);
    let a = d.serve("sla-scheduler");
    let b = d.serve("sla-scheduler");
    let id = open_cases(&c, 1).await.remove(0);
    wait_for_event(&c, &id, "sla-warning", Duration::from_secs(30)).await;
    drop((a, b)); // SIGKILL, both
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        count_events(&c, &id, "sla-breached").await,
        0,
        "nobody ran to record it"
    );
    let _again = d.serve("sla-scheduler");
    wait_for_event(&c, &id, "sla-breached", Duration::from_secs(30)).await;
    let list = c.get("/api/v1/cases?sla=breached").await.unwrap().body;
    assert!(
        list["items"].as_array().unwrap().iter().any(|x| x["id"] == id.as_str()),
        "{list}"
    );

    drop(projector);
    let out = Command::new(BIN)
        .arg("replay")
        .envs(d.env())
        .env("CASEWIRE__LOG__LEVEL", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "replay: {}", String::from_utf8_lossy(&out.stderr));
    let _projector = d.serve("projector");
    let _third = d.serve("sla-scheduler");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(count_events(&c, &id, "sla-warning").await, 1, "one warning");
    assert_eq!(count_events(&c, &id, "sla-breached").await, 1, "one breach");
    let list = c.get("/api/v1/cases?sla=breached").await.unwrap().body;
    assert!(
        list["items"].as_array().unwrap().iter().any(|x| x["id"] == id.as_str()),
        "the replay computed the schedule again: {list}"
    );
}
