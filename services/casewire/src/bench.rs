//! `casewire bench`: drives a fresh embedded platform over HTTP with N
//! concurrent clients and reports accepted and visible commands/s, the
//! accept→visible latency and the replay rate, next to baselines measured
//! in the same run on the same backends: the raw append rate of the SQLite
//! event store, or the raw `insert_many` rate of the MongoDB server
//! (`--store mongodb://...`), and a raw produce→consume hop on Kafka
//! (`--bus kafka://...`). Figures are printed, never asserted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use casewire_ports::{EventStore, NewEvent};
use casewire_runtime::Config;
use casewire_sqlite::{Durability, SqliteEventStore};
use serde_json::json;
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::client::Client;
use crate::embedded::{Embedded, Services};

/// Options of `casewire bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Concurrent HTTP clients, each working its own cases (open + 9 commands each).
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Commands in total.
    #[arg(long, default_value_t = 2000)]
    pub commands: usize,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Run over Kafka (kafka://host:port); the baseline is then a raw
    /// rdkafka produce→consume on the same broker.
    #[arg(long)]
    pub bus: Option<String>,
    /// Open loop: offer commands at this fixed rate (commands/s, spread
    /// over the clients) instead of as fast as the clients go. Latencies
    /// then count from each command's scheduled time, so a stall shows in
    /// the percentiles instead of slowing the offer down.
    #[arg(long)]
    pub rate: Option<f64>,
    #[command(subcommand)]
    pub what: Option<BenchWhat>,
}

/// Other benchmarks.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum BenchWhat {
    /// File upload and download MB/s through the API, against the blob store
    /// itself (the same adapter and server, no HTTP) in the same run.
    Files(FileBenchArgs),
    /// WebSocket fan-out: sockets held, events/s delivered, event→socket
    /// latency and memory per 1k sockets, against the raw event read.
    Ws(crate::bench_ws::WsBenchArgs),
    /// The rebuild of every read model from a generated log of `--cases`
    /// cases, against the raw read of the same log.
    Replay(crate::bench_replay::ReplayBenchArgs),
    /// External tasks through the Camunda API: tasks/s with N workers and
    /// the long-poll wake-up latency, against the raw event append.
    Tasks(crate::bench_tasks::TaskBenchArgs),
    /// Mail through the inbound webhook: mails/s from raw MIME to a
    /// visible case event, against parsing alone.
    Email(crate::bench_email::EmailBenchArgs),
    /// The SLA scheduler: timers fired per second with `--cases` open
    /// clocks, and one clock computation, against claims alone and a fold.
    Sla(crate::bench_sla::SlaBenchArgs),
    /// The client side of `bench ws`, which it starts itself.
    #[command(hide = true)]
    WsClients(crate::bench_ws::WsClientsArgs),
}

/// `casewire bench files`.
#[derive(Debug, Clone, clap::Args)]
pub struct FileBenchArgs {
    /// Size of each file, in MiB.
    #[arg(long, default_value_t = 32)]
    pub size_mb: usize,
    /// Files uploaded and downloaded, one after another.
    #[arg(long, default_value_t = 8)]
    pub count: usize,
    /// The file storage (`file:///path` or `s3://bucket?...`); default a
    /// temporary directory.
    #[arg(long)]
    pub storage: Option<String>,
}

/// The baseline measured in the same run.
pub(crate) struct Baseline {
    pub(crate) what: &'static str,
    pub(crate) unit: &'static str,
    pub(crate) per_sec: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
}

/// The raw SQLite event store, one append per transaction and then the
/// same appends `BATCH` to a transaction: what the engine could do at best
/// without batching and with it.
pub(crate) async fn sqlite_baselines(
    base: &Config,
    dir: &std::path::Path,
    clients: usize,
    total: usize,
) -> anyhow::Result<Vec<Baseline>> {
    const BATCH: usize = 256;
    let durability = match base.store.durability {
        casewire_runtime::config::Durability::Normal => Durability::Normal,
        casewire_runtime::config::Durability::Full => Durability::Full,
    };
    let raw = SqliteEventStore::open(&dir.join("raw-events.db"), durability)?;
    let bench_tenant = casewire_domain::types::TenantId::parse("bench")?;
    let event = |n: usize| {
        let cmd = Uuid::now_v7();
        NewEvent {
            id: Uuid::now_v7(),
            event_type: "casewire.case.comment-added.v1".into(),
            data: json!({"commentId": Uuid::now_v7(), "parentId": null, "body": format!("bench comment {n}"), "visibility": "internal", "author": "alice"}),
            time: chrono::Utc::now(),
            actor: "alice".into(),
            command_id: cmd,
            correlation_id: cmd,
        }
    };
    let mut out = Vec::new();
    for batch in [1, BATCH] {
        let streams: Vec<Uuid> = (0..clients).map(|_| Uuid::now_v7()).collect();
        let started = Instant::now();
        let mut n = 0;
        while n < total {
            let parts = (n..(n + batch).min(total))
                .map(|i| casewire_ports::Append {
                    tenant: bench_tenant.clone(),
                    case_id: streams[i % clients],
                    expected: (i / clients) as u64,
                    events: vec![event(i)],
                })
                .collect::<Vec<_>>();
            n += parts.len();
            raw.append_batch(parts).await?;
        }
        out.push(Baseline {
            what: if batch == 1 {
                "raw SQLite append, one per transaction"
            } else {
                "raw SQLite append, 256 per transaction"
            },
            unit: "appends/s",
            per_sec: total as f64 / started.elapsed().as_secs_f64(),
            p50_ms: None,
            p99_ms: None,
        });
    }
    Ok(out)
}

/// The HTTP floor: `clients` concurrent clients, the bench's own, asking
/// the API port for a path no route takes: the same server, workers and
/// middleware (metrics, a log line per 4xx like the one per accepted
/// command), but no token check and no store. No command can be accepted
/// faster than the round trip it rides on, so this bounds the closed-loop
/// rate from above on the same machine.
async fn http_baseline(url: &str, token: &str, clients: usize, total: usize) -> anyhow::Result<Baseline> {
    let per_client = total.div_ceil(clients);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let client = Client::new(url, token);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_client);
            for _ in 0..per_client {
                let t = Instant::now();
                let r = client.get("/api/v1/bench-floor").await?;
                anyhow::ensure!(r.status.as_u16() == 404, "/api/v1/bench-floor answered {}", r.status);
                latencies.push(t.elapsed());
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Ok(Baseline {
        what: "HTTP round trip, no work (a 404 on the API port)",
        unit: "requests/s",
        per_sec: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: Some(ms(percentile(&latencies, 0.5))),
        p99_ms: Some(ms(percentile(&latencies, 0.99))),
    })
}

/// The MongoDB server's raw bulk-write rate: `insert_many` of 100
/// event-sized documents per call from `clients` concurrent writers, into a
/// scratch collection of the bench database.
async fn mongodb_baseline(url: &str, clients: usize, total: usize) -> anyhow::Result<Baseline> {
    use mongodb::bson::doc;
    // The URL names the bench's own database.
    let db = casewire_mongodb::connect(&casewire_mongodb::MongoSettings::new(url)).await?;
    let raw = db.collection::<mongodb::bson::Document>("bench_raw");
    const BATCH: usize = 100;
    let started = Instant::now();
    let writers = (0..clients).map(|w| {
        let raw = raw.clone();
        async move {
            let mut n = w * BATCH;
            while n < total {
                let docs: Vec<_> = (n..(n + BATCH).min(total))
                    .map(|i| {
                        doc! {
                            "tenant": "bench", "caseId": Uuid::now_v7().to_string(), "revisions": [1_i64],
                            "events": [{"id": Uuid::now_v7().to_string(), "type": "casewire.case.comment-added.v1",
                                        "data": format!("{{\"body\":\"bench comment {i}\",\"visibility\":\"internal\"}}"),
                                        "time": chrono::Utc::now().to_rfc3339(), "actor": "alice"}],
                        }
                    })
                    .collect();
                raw.insert_many(docs).await?;
                n += clients * BATCH;
            }
            Ok::<_, anyhow::Error>(())
        }
    });
    for r in futures::future::join_all(writers).await {
        r?;
    }
    let per_sec = total as f64 / started.elapsed().as_secs_f64();
    raw.drop().await?;
    Ok(Baseline {
        what: "raw MongoDB insert_many (100 per call)",
        unit: "documents/s",
        per_sec,
        p50_ms: None,
        p99_ms: None,
    })
}

/// One hop through the broker: an idempotent acks=all producer and a
/// consumer, messages the size of a command, latency from send to receipt.
/// `pipelined`: every send queued at once and awaited together (what a
/// batching publisher can do); otherwise each awaited before the next.
async fn kafka_baseline(url: &str, total: usize, pipelined: bool) -> anyhow::Result<Baseline> {
    use rdkafka::Message;
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let mut settings = casewire_kafka::KafkaSettings::from_url(url)?;
    settings.topic_prefix = format!("bench-raw-{}.", Uuid::now_v7().simple());
    let topic = settings.topic(casewire_ports::Topic::Tasks);
    // Creates the topics with the platform's settings.
    drop(casewire_kafka::KafkaBus::connect(settings.clone()).await?);
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &settings.bootstrap_servers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "1")
        .create()?;
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &settings.bootstrap_servers)
        .set("group.id", format!("{}raw", settings.topic_prefix))
        .set("auto.offset.reset", "earliest")
        // The platform's consumers' setting, so both wait on the broker alike.
        .set("fetch.wait.max.ms", casewire_kafka::FETCH_WAIT_MAX_MS)
        .create()?;
    consumer.subscribe(&[&topic])?;
    let origin = Instant::now();
    let receiver = tokio::spawn(async move {
        let mut latencies = Vec::with_capacity(total);
        while latencies.len() < total {
            let m = tokio::time::timeout(Duration::from_secs(60), consumer.recv()).await??;
            let sent: u64 = serde_json::from_slice::<serde_json::Value>(m.payload().unwrap_or_default())?["sentNanos"]
                .as_u64()
                .unwrap_or(0);
            latencies.push(origin.elapsed().saturating_sub(Duration::from_nanos(sent)));
        }
        Ok::<_, anyhow::Error>((latencies, Instant::now()))
    });
    let first_send = Instant::now();
    let send = |n: usize| {
        let producer = producer.clone();
        let topic = topic.clone();
        async move {
            let payload = json!({"sentNanos": origin.elapsed().as_nanos() as u64, "body": format!("bench comment {n}"), "pad": "x".repeat(400)}).to_string();
            let key = format!("case-{}", n % 64);
            producer
                .send(
                    FutureRecord::to(&topic).key(&key).payload(&payload),
                    Duration::from_secs(30),
                )
                .await
                .map(|_| ())
                .map_err(|(e, _)| anyhow::anyhow!(e))
        }
    };
    if pipelined {
        for r in futures::future::join_all((0..total).map(send)).await {
            r?;
        }
    } else {
        for n in 0..total {
            send(n).await?;
        }
    }
    let (mut latencies, last) = receiver.await??;
    latencies.sort();
    Ok(Baseline {
        what: if pipelined {
            "raw rdkafka produce->consume, one hop, pipelined"
        } else {
            "raw rdkafka produce->consume, one hop, one at a time"
        },
        unit: "messages/s",
        per_sec: total as f64 / (last - first_send).as_secs_f64(),
        p50_ms: Some(ms(percentile(&latencies, 0.5))),
        p99_ms: Some(ms(percentile(&latencies, 0.99))),
    })
}

/// Commands in one case's life in the bench.
const SEQUENCE: usize = 10;

fn sequence(worker: usize, n: usize) -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (
            "",
            json!({"definition": "customer-complaint", "title": format!("Bench case {worker}-{n}"), "data": {"channel": "web", "product": "Kettle K200"}}),
        ),
        ("/assign", json!({"assignee": "alice"})),
        ("/comments", json!({"body": "Looking into it"})),
        ("/tags", json!({"tag": "bench"})),
        ("/stage", json!({"stage": "triage"})),
        (
            "/comments",
            json!({"body": "Asked the customer for photos", "visibility": "public"}),
        ),
        ("/priority", json!({"priority": "high"})),
        ("/stage", json!({"stage": "investigating"})),
        ("/comments", json!({"body": "Photos received"})),
        ("/tags/bench", serde_json::Value::Null),
    ]
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Sent {
    case: usize,
    revision: u64,
    accepted_at: Instant,
    visible_at: Option<Instant>,
}

/// Sends one command of a case's life. A command right behind its case's
/// open may find the open still on its way (409 `CW-CASE-PENDING`, on a
/// slow store); like any client, the bench then retries shortly.
async fn send_step(
    client: &Client,
    step: usize,
    id: &str,
    path: &str,
    body: &serde_json::Value,
) -> anyhow::Result<crate::client::Reply> {
    let mut tries = 0;
    loop {
        let r = if step == 0 {
            client.post("/api/v1/cases", body).await?
        } else if body.is_null() {
            client
                .send(
                    reqwest::Method::DELETE,
                    &format!("/api/v1/cases/{id}{path}"),
                    None,
                    None,
                )
                .await?
        } else {
            client.post(&format!("/api/v1/cases/{id}{path}"), body).await?
        };
        tries += 1;
        if r.body["code"] != "CW-CASE-PENDING" || tries >= 100 {
            return Ok(r);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs the benchmark.
pub async fn run(mut base: Config, args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.clients > 0 && args.commands >= args.clients,
        "need at least one command per client"
    );
    let dir = tempfile::tempdir().context("creating a temporary data dir")?;
    // MongoDB: a fresh database per run, dropped at the end.
    let mongodb = casewire_runtime::config::is_mongodb(base.store.events.expose()).then(|| {
        let url = casewire_mongodb::with_database(
            base.store.events.expose(),
            &format!("casewire_bench_{}", Uuid::now_v7().simple()),
        );
        base.store.set_url(&url);
        url
    });
    let mut config = base.clone();
    config.data_dir = dir.path().join("platform");
    config.api.bind.set_port(0);
    config.management.bind.set_port(0);
    config.ws.bind.set_port(0);
    config.demo.enabled = false;
    if let Some(bus) = &args.bus {
        config.bus.url = casewire_runtime::config::SecretUrl::new(bus.clone());
        config.bus.topic_prefix = format!("bench-{}.", Uuid::now_v7().simple());
    }
    let platform = Embedded::start(config.clone(), Services::default()).await?;
    let admin = platform.client("carol")?;
    let r = admin.import_definition(crate::DEMO_DEFINITIONS[0].1).await?;
    anyhow::ensure!(r.status.as_u16() == 201, "definition import failed: {}", r.body);
    let sent: Arc<Mutex<Vec<Sent>>> = Arc::default();
    let case_ids: Arc<Mutex<Vec<String>>> = Arc::default();
    let per_client = (args.commands / args.clients).div_ceil(SEQUENCE) * SEQUENCE;
    let total = per_client * args.clients;
    if let Some(rate) = args.rate {
        anyhow::ensure!(
            rate.is_finite() && rate > 0.0,
            "--rate must be a positive number of commands/s"
        );
    }
    let started = Instant::now();
    let mut clients = Vec::new();
    for worker in 0..args.clients {
        let client = Client::new(&platform.url(), &platform.token("alice")?);
        let (sent, case_ids) = (sent.clone(), case_ids.clone());
        let (rate, lanes) = (args.rate, args.clients);
        clients.push(tokio::spawn(async move {
            let mut accept_latencies = Vec::with_capacity(per_client);
            let mut k = 0usize;
            for n in 0..per_client / SEQUENCE {
                // A realistic case life: open, then nine commands, sent
                // back to back without waiting for their outcomes (closed
                // loop), or each at its scheduled time (open loop).
                let mut id = String::new();
                for (step, (path, body)) in sequence(worker, n).into_iter().enumerate() {
                    let t = match rate {
                        Some(rate) => {
                            // The clients take turns: command k of client w is
                            // the (k * clients + w)-th of the whole offer.
                            let due = started + Duration::from_secs_f64((k * lanes + worker) as f64 / rate);
                            tokio::time::sleep_until(due.into()).await;
                            due
                        }
                        None => Instant::now(),
                    };
                    k += 1;
                    let r = send_step(&client, step, &id, path, &body).await?;
                    anyhow::ensure!(r.status.as_u16() == 202, "command refused: {} {}", r.status, r.body);
                    let now = Instant::now();
                    accept_latencies.push(now - t);
                    let case = if step == 0 {
                        id = r.body["caseId"].as_str().context("case id")?.to_owned();
                        let mut ids = case_ids.lock().await;
                        ids.push(id.clone());
                        ids.len() - 1
                    } else {
                        case_ids.lock().await.iter().rposition(|c| *c == id).unwrap_or(0)
                    };
                    sent.lock().await.push(Sent {
                        case,
                        revision: step as u64 + 1,
                        accepted_at: now,
                        visible_at: None,
                    });
                }
            }
            Ok(accept_latencies)
        }));
    }

    // The watcher reads the projection directly: each case with a command
    // not yet seen, and stamps each command when its revision shows.
    let reads = platform.platform.reads.clone();
    let tenant = platform.platform.config.default_tenant.clone();
    let watcher = {
        let (sent, case_ids) = (sent.clone(), case_ids.clone());
        tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(600);
            loop {
                let pass = Instant::now();
                let ids = case_ids.lock().await.clone();
                let pending: std::collections::BTreeSet<usize> = sent
                    .lock()
                    .await
                    .iter()
                    .filter(|s| s.visible_at.is_none())
                    .map(|s| s.case)
                    .collect();
                let mut revisions = std::collections::HashMap::new();
                for case in pending {
                    let id = Uuid::parse_str(&ids[case])?;
                    if let Some(c) = reads.get_case(&tenant, id).await? {
                        revisions.insert(case, c.revision);
                    }
                }
                let now = Instant::now();
                let mut guard = sent.lock().await;
                for s in guard.iter_mut().filter(|s| s.visible_at.is_none()) {
                    if revisions.get(&s.case).is_some_and(|r| *r >= s.revision) {
                        s.visible_at = Some(now);
                    }
                }
                let done = guard.len() == total && guard.iter().all(|s| s.visible_at.is_some());
                drop(guard);
                if done {
                    return Ok::<_, anyhow::Error>(());
                }
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "commands did not become visible within 10 minutes"
                );
                // Looking must not starve what is measured: a slow store
                // (a pass of 30 ms) is asked at most a third of the time.
                tokio::time::sleep((pass.elapsed() * 2).max(Duration::from_millis(1))).await;
            }
        })
    };
    let mut accept_latencies = Vec::new();
    for c in clients {
        accept_latencies.extend(c.await??);
    }
    watcher.await??;
    let sent = sent.lock().await;
    let last_accept = sent.iter().map(|s| s.accepted_at).max().unwrap_or(started);
    let last_visible = sent.iter().filter_map(|s| s.visible_at).max().unwrap_or(started);
    let mut visibility: Vec<Duration> = sent
        .iter()
        .filter_map(|s| s.visible_at.map(|v| v - s.accepted_at))
        .collect();
    visibility.sort();
    accept_latencies.sort();
    let accepted_rate = total as f64 / (last_accept - started).as_secs_f64();
    let visible_rate = total as f64 / (last_visible - started).as_secs_f64();
    drop(sent);
    let http = http_baseline(&platform.url(), &platform.token("alice")?, args.clients, total).await?;
    platform.stop().await?;

    // Replay: rebuild the projection from the events this run wrote.
    let replayed = {
        let platform = casewire_runtime::Platform::open(config).await?;
        casewire_projector::replay(&platform, 0, |_, _| {}).await?
    };
    let replay_rate = replayed.events as f64 / replayed.elapsed.as_secs_f64().max(1e-9);

    let mut baselines = match &mongodb {
        Some(url) => vec![mongodb_baseline(url, args.clients, total).await?],
        None => sqlite_baselines(&base, dir.path(), args.clients, total).await?,
    };
    baselines.push(http);
    if let Some(url) = args.bus.as_deref().filter(|u| u.starts_with("kafka://")) {
        baselines.push(kafka_baseline(url, total, true).await?);
        baselines.push(kafka_baseline(url, total.min(1000), false).await?);
    }
    if let Some(url) = &mongodb {
        casewire_mongodb::connect(&casewire_mongodb::MongoSettings::new(url))
            .await?
            .drop()
            .await?;
    }
    let runtime = match (&mongodb, &args.bus) {
        (Some(_), Some(_)) => "embedded services, MongoDB stores, Kafka bus",
        (Some(_), None) => "embedded services, MongoDB stores, in-process bus",
        (None, Some(_)) => "embedded services, SQLite stores, Kafka bus",
        (None, None) => "embedded runtime (SQLite stores, in-process bus)",
    };

    if args.json {
        println!(
            "{}",
            json!({
                "runtime": runtime, "clients": args.clients, "commands": total,
                "mode": if args.rate.is_some() { "open" } else { "closed" }, "offeredPerSec": args.rate,
                "acceptedPerSec": accepted_rate, "visiblePerSec": visible_rate,
                "acceptMs": {"p50": ms(percentile(&accept_latencies, 0.5)), "p99": ms(percentile(&accept_latencies, 0.99))},
                "acceptToVisibleMs": {"p50": ms(percentile(&visibility, 0.5)), "p99": ms(percentile(&visibility, 0.99)), "max": ms(visibility.last().copied().unwrap_or_default())},
                "replay": {"events": replayed.events, "eventsPerSec": replay_rate},
                "baselines": baselines.iter().map(|b| json!({
                    "what": b.what, "unit": b.unit, "perSec": b.per_sec, "p50Ms": b.p50_ms, "p99Ms": b.p99_ms,
                    "ratioVisibleToBaseline": visible_rate / b.per_sec,
                })).collect::<Vec<_>>(),
            })
        );
    } else {
        let mode = match args.rate {
            Some(rate) => format!("open loop at {rate:.0} commands/s offered"),
            None => "closed loop".to_owned(),
        };
        println!(
            "Casewire bench: {runtime}, {} clients, {total} commands, {mode}",
            args.clients
        );
        println!(
            "  accepted (HTTP 202)        {accepted_rate:>9.1} commands/s   accept latency p50 {:.2} ms, p99 {:.2} ms",
            ms(percentile(&accept_latencies, 0.5)),
            ms(percentile(&accept_latencies, 0.99))
        );
        println!("  visible in the projection  {visible_rate:>9.1} commands/s");
        println!(
            "  accept -> visible          p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            ms(percentile(&visibility, 0.5)),
            ms(percentile(&visibility, 0.99)),
            ms(visibility.last().copied().unwrap_or_default())
        );
        println!(
            "  replay                     {replay_rate:>9.1} events/s    ({} events)",
            replayed.events
        );
        for baseline in &baselines {
            let latency = match (baseline.p50_ms, baseline.p99_ms) {
                (Some(p50), Some(p99)) => format!(", p50 {p50:.2} ms, p99 {p99:.2} ms"),
                _ => String::new(),
            };
            println!(
                "  baseline: {}  {:>9.1} {}{latency} (same run)",
                baseline.what, baseline.per_sec, baseline.unit
            );
            println!(
                "    ratio visible commands/s to it          {:>9.3}",
                visible_rate / baseline.per_sec
            );
        }
    }
    Ok(())
}

/// `casewire policy bench`: the cost of one authorization decision and of
/// one list filter, on one thread, next to the cost of evaluating a
/// constant rule with the same input (the engine's own overhead).
pub async fn policy(dir: &std::path::Path, decisions: u32) -> anyhow::Result<()> {
    use casewire_domain::definition::AccessDef;
    use casewire_ports::{PolicyEngine, Resource, Subject};
    let policy = casewire_policy::RegoPolicy::load(Some(dir))?;
    // The demo tenant's definitions, as the API passes them.
    let definitions: casewire_ports::DefinitionAccessMap = [
        (
            "customer-complaint",
            vec!["/queues/complaints", "/queues/support"],
            vec!["/queues/support"],
        ),
        ("insurance-claim", vec!["/queues/claims"], vec!["/queues/claims"]),
        (
            "it-service-request",
            vec!["/queues/it", "/queues/support"],
            vec!["/queues/it"],
        ),
    ]
    .into_iter()
    .map(|(id, view, work)| {
        let groups = |g: Vec<&str>| g.into_iter().map(str::to_owned).collect();
        (
            id.to_owned(),
            AccessDef {
                view: groups(view),
                work: groups(work),
            },
        )
    })
    .collect();
    let subject = Subject {
        sub: "id-alice".into(),
        username: "alice".into(),
        email: Some("alice@example.com".into()),
        roles: vec!["case-worker".into()],
        groups: vec!["/queues/support".into()],
        tenant: casewire_domain::types::TenantId::default_tenant(),
    };
    let resource = Resource {
        tenant: casewire_domain::types::TenantId::default_tenant(),
        queue: casewire_domain::types::QueueName::parse("support")?,
        assignee: Some("bob".into()),
        requester: Some("ann@example.com".into()),
        created_by: "bot".into(),
        definition: "customer-complaint".into(),
        stage: "triage".into(),
        confidential: false,
    };
    let input = casewire_ports::policy_input(
        &subject,
        &definitions,
        Some(casewire_ports::Action::CaseAssign),
        Some(&resource),
    );
    let per_eval = |started: Instant, n: u32| started.elapsed().as_secs_f64() / f64::from(n);
    let started = Instant::now();
    for _ in 0..decisions {
        policy.eval("data.casewire.authz.is_admin", input.clone())?;
    }
    let baseline = per_eval(started, decisions);
    let action = casewire_ports::Action::CaseAssign;
    let started = Instant::now();
    for _ in 0..decisions {
        let d = policy.decide_in_full(&subject, &definitions, action, Some(&resource))?;
        anyhow::ensure!(d.allow, "the bench's decision should be an allow");
    }
    let full_decision = per_eval(started, decisions);
    let started = Instant::now();
    for _ in 0..decisions {
        policy.filter_in_full(&subject, &definitions)?;
    }
    let full_filter = per_eval(started, decisions);
    let fast = policy.fast_path();
    // Cases that differ in everything the policy reads, so the fast path
    // cannot profit from having seen one before.
    let queues = ["support", "claims", "it", "other"]
        .into_iter()
        .map(casewire_domain::types::QueueName::parse)
        .collect::<Result<Vec<_>, _>>()?;
    let resources: Vec<Resource> = (0..64)
        .map(|n| Resource {
            queue: queues[n % 4].clone(),
            assignee: (n % 3 == 0).then(|| "alice".into()),
            confidential: n % 5 == 0,
            definition: ["customer-complaint", "insurance-claim", "it-service-request"][n % 3].into(),
            created_by: format!("user-{n}"),
            ..resource.clone()
        })
        .collect();
    let started = Instant::now();
    for n in 0..decisions {
        policy
            .decide(
                &subject,
                &definitions,
                action,
                Some(&resources[n as usize % resources.len()]),
            )
            .await?;
    }
    let fast_decision = per_eval(started, decisions);
    let started = Instant::now();
    for _ in 0..decisions {
        policy.filter(&subject, &definitions).await?;
    }
    let fast_filter = per_eval(started, decisions);
    // A new subject each time: what the first request of a principal costs.
    let compiles = (decisions / 20).max(10);
    let started = Instant::now();
    for n in 0..compiles {
        let newcomer = Subject {
            sub: format!("id-newcomer-{n}"),
            ..subject.clone()
        };
        policy.filter(&newcomer, &definitions).await?;
    }
    let compile = per_eval(started, compiles);
    println!(
        "Casewire policy bench: {decisions} evaluations each, one thread, policies from {}",
        dir.display()
    );
    let row = |what: &str, secs: f64| println!("  {what:<38} {:>9.2} µs {:>11.0}/s", secs * 1e6, 1.0 / secs);
    row("decision, full evaluation (case.assign)", full_decision);
    row("list filter, full evaluation", full_filter);
    if fast {
        row("decision, from the grants (64 cases)", fast_decision);
        row("list filter, from the grants", fast_filter);
        row("grants of a new subject (cache miss)", compile);
    } else {
        println!("  not the shipped policy: every decision is a full evaluation");
    }
    row("baseline: one trivial rule (same run)", baseline);
    println!(
        "  ratio full decision / baseline         {:>9.2}",
        full_decision / baseline
    );
    if fast {
        println!(
            "  ratio grants decision / full           {:>9.4}",
            fast_decision / full_decision
        );
        println!(
            "  ratio grants filter / full             {:>9.4}",
            fast_filter / full_filter
        );
    }
    policy_over_http(dir, decisions.clamp(100, 2_000)).await
}

/// A policy that allows everything: the baseline of the HTTP measurement.
const ALLOW_ALL: &str = "package casewire.authz\n\nimport rego.v1\n\n\
decision := {\"allow\": true, \"visible\": true}\n\n\
filter := {\"tenant\": input.subject.tenant, \"clauses\": [{}]}\n";

/// Mean latency of a case detail and of a list page over HTTP, one client,
/// with the policies of `dir` and with a policy that allows everything:
/// the difference is what authorization costs a request end to end.
async fn policy_over_http(dir: &std::path::Path, requests: u32) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir().context("creating a temporary data dir")?;
    let open_dir = tmp.path().join("allow-all");
    std::fs::create_dir_all(&open_dir)?;
    std::fs::write(open_dir.join("allow_all.rego"), ALLOW_ALL)?;
    let mut means = Vec::new();
    for (name, policy_dir) in [("policies", dir.to_path_buf()), ("allow-all", open_dir)] {
        let mut config = Config {
            data_dir: tmp.path().join(name),
            ..Config::default()
        };
        config.api.bind.set_port(0);
        config.management.bind.set_port(0);
        config.ws.bind.set_port(0);
        config.demo.enabled = false;
        config.log.level = "warn".into();
        config.policy.dir = Some(policy_dir);
        let platform = Embedded::start(config, Services::default()).await?;
        let admin = platform.client("carol")?;
        let r = admin.import_definition(crate::DEMO_DEFINITIONS[0].1).await?;
        anyhow::ensure!(r.status.as_u16() == 201, "definition import failed: {}", r.body);
        let mut id = String::new();
        for n in 0..25 {
            let r = admin
                .post_wait(
                    "/api/v1/cases",
                    &json!({"definition": "customer-complaint", "title": format!("Policy bench {n}"),
                    "data": {"channel": "web", "product": "Kettle K200"}}),
                )
                .await?;
            anyhow::ensure!(r.status.as_u16() == 201, "open failed: {}", r.body);
            id = r.body["id"].as_str().context("case id")?.to_owned();
        }
        // An internal comment, so the detail also asks whether alice may read it.
        let r = admin
            .post_wait(
                &format!("/api/v1/cases/{id}/comments"),
                &json!({"body": "internal note", "visibility": "internal"}),
            )
            .await?;
        anyhow::ensure!(r.status.as_u16() == 200, "comment failed: {}", r.body);
        let alice = Client::new(&platform.url(), &platform.token("alice")?);
        let mean = |path: String| {
            let alice = alice.clone();
            async move {
                // Warm-up: connections, caches, thread-local engines.
                for _ in 0..20 {
                    alice.get(&path).await?;
                }
                let started = Instant::now();
                for _ in 0..requests {
                    let r = alice.get(&path).await?;
                    anyhow::ensure!(r.status.as_u16() == 200, "{path}: {}", r.status);
                }
                Ok::<f64, anyhow::Error>(started.elapsed().as_secs_f64() / f64::from(requests))
            }
        };
        let detail = mean(format!("/api/v1/cases/{id}")).await?;
        let list = mean("/api/v1/cases?limit=25".to_owned()).await?;
        means.push((detail, list));
        platform.stop().await?;
    }
    let [(detail, list), (detail_base, list_base)] = means[..] else {
        anyhow::bail!("two runs expected");
    };
    println!("  over HTTP, one client, {requests} requests each (alice, case-worker):");
    println!(
        "    case detail   {:>8.0} µs with the policy, {:>8.0} µs allowing all: +{:.0} µs per request (ratio {:.2})",
        detail * 1e6,
        detail_base * 1e6,
        (detail - detail_base) * 1e6,
        detail / detail_base
    );
    println!(
        "    list page     {:>8.0} µs with the policy, {:>8.0} µs allowing all: +{:.0} µs per request (ratio {:.2})",
        list * 1e6,
        list_base * 1e6,
        (list - list_base) * 1e6,
        list / list_base
    );
    Ok(())
}

/// A temporary data dir for a bench's own platform, on free ports and
/// without demo data; the platform lives as long as the dir.
pub fn fresh_platform_dir(base: &mut Config) -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir().context("creating a temporary data dir")?;
    base.data_dir = dir.path().join("platform");
    base.api.bind.set_port(0);
    base.management.bind.set_port(0);
    base.ws.bind.set_port(0);
    base.demo.enabled = false;
    Ok(dir)
}

/// `casewire bench files`: MB/s through the API against the blob store.
pub async fn files(mut base: Config, args: FileBenchArgs) -> anyhow::Result<()> {
    use futures::StreamExt;
    anyhow::ensure!(args.size_mb > 0 && args.count > 0, "need a size and a count");
    let _dir = fresh_platform_dir(&mut base)?;
    base.storage.max_upload_bytes = base.storage.max_upload_bytes.max((args.size_mb as u64 + 1) << 20);
    if let Some(url) = &args.storage {
        base.storage.url = casewire_runtime::config::SecretUrl::new(url.clone());
    }
    let size = args.size_mb << 20;
    let body = bytes::Bytes::from((0..size).map(|i| ((i * 31) % 251) as u8).collect::<Vec<u8>>());
    let platform = Embedded::start(base.clone(), Services::default()).await?;
    let storage = base.storage_url();
    let token = platform.token("alice")?;
    let http = reqwest::Client::new();
    let mb = (size * args.count) as f64 / 1_048_576.0;

    let started = Instant::now();
    let mut ids = Vec::new();
    for _ in 0..args.count {
        let res = http
            .post(format!("{}/api/v1/files", platform.url()))
            .bearer_auth(&token)
            .header("content-type", "application/octet-stream")
            .header("x-file-name", "bench.bin")
            .body(body.clone())
            .send()
            .await?;
        anyhow::ensure!(res.status().as_u16() == 201, "upload failed: {}", res.text().await?);
        let v: serde_json::Value = res.json().await?;
        ids.push(v["id"].as_str().context("file id")?.to_owned());
    }
    let api_up = mb / started.elapsed().as_secs_f64();
    let started = Instant::now();
    for id in &ids {
        let res = http
            .get(format!("{}/api/v1/files/{id}", platform.url()))
            .bearer_auth(&token)
            .send()
            .await?;
        anyhow::ensure!(res.status().is_success(), "download failed: {}", res.status());
        let mut stream = res.bytes_stream();
        let mut n = 0;
        while let Some(chunk) = stream.next().await {
            n += chunk?.len();
        }
        anyhow::ensure!(n == size, "downloaded {n} of {size} bytes");
    }
    let api_down = mb / started.elapsed().as_secs_f64();

    // The baseline: the same store, the same bytes, no HTTP and no API.
    let blobs = platform.platform.blobs().await?;
    let chunks = || {
        let body = body.clone();
        let parts: Vec<Result<bytes::Bytes, casewire_ports::BlobError>> = (0..size)
            .step_by(1 << 20)
            .map(|i| Ok(body.slice(i..(i + (1 << 20)).min(size))))
            .collect();
        Box::pin(futures::stream::iter(parts)) as casewire_ports::ByteStream
    };
    // Under alice's tenant, like the API's keys: with tenant_buckets the
    // first segment picks the bucket.
    let tenant = &base.default_tenant;
    let keys: Vec<String> = (0..args.count)
        .map(|_| format!("{tenant}/bench-{}", Uuid::now_v7()))
        .collect();
    let started = Instant::now();
    for key in &keys {
        blobs.put(key, "application/octet-stream", chunks(), None).await?;
    }
    let raw_up = mb / started.elapsed().as_secs_f64();
    let started = Instant::now();
    for key in &keys {
        let mut read = blobs.get(key, None).await?;
        let mut n = 0;
        while let Some(chunk) = read.body.next().await {
            n += chunk?.len();
        }
        anyhow::ensure!(n == size, "read {n} of {size} bytes");
    }
    let raw_down = mb / started.elapsed().as_secs_f64();
    for key in &keys {
        blobs.delete(key).await?;
    }
    // On S3, also the plain SDK: one PutObject / GetObject per file.
    let raw = match storage.expose().starts_with("s3://") {
        true => Some(raw_s3(storage.expose(), tenant.as_str(), &body, args.count).await?),
        false => None,
    };
    platform.stop().await?;
    println!(
        "Casewire file bench: {} files of {} MiB, one client, storage {}",
        args.count,
        args.size_mb,
        storage.masked()
    );
    println!("  upload through the API         {api_up:>9.1} MB/s");
    println!("  baseline: blob store put       {raw_up:>9.1} MB/s (same store, no HTTP)");
    println!("    ratio                        {:>9.2}", api_up / raw_up);
    println!("  download through the API       {api_down:>9.1} MB/s");
    println!("  baseline: blob store get       {raw_down:>9.1} MB/s (same store, no HTTP)");
    println!("    ratio                        {:>9.2}", api_down / raw_down);
    if let Some((put, get)) = raw {
        println!("  baseline: raw S3 PutObject     {put:>9.1} MB/s (aws-sdk-s3, whole body, same server)");
        println!("    ratio upload / PutObject     {:>9.2}", api_up / put);
        println!("  baseline: raw S3 GetObject     {get:>9.1} MB/s");
        println!("    ratio download / GetObject   {:>9.2}", api_down / get);
    }
    Ok(())
}

/// MB/s of plain PutObject and GetObject calls on the server the storage
/// URL names: the floor under everything the adapter and the API add.
async fn raw_s3(url: &str, tenant: &str, body: &bytes::Bytes, count: usize) -> anyhow::Result<(f64, f64)> {
    let store = casewire_blob::S3BlobStore::connect(casewire_blob::S3Settings::from_url(url)?).await?;
    let mb = (body.len() * count) as f64 / 1_048_576.0;
    // Located like the API's own keys, so that both runs hit the same bucket.
    let keys: Vec<(String, String)> = (0..count)
        .map(|_| store.locate(&format!("{tenant}/bench-raw-{}", Uuid::now_v7())))
        .collect::<Result<_, _>>()?;
    let started = Instant::now();
    for (bucket, key) in &keys {
        store
            .client()
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body.clone().into())
            .send()
            .await
            .context("PutObject")?;
    }
    let put = mb / started.elapsed().as_secs_f64();
    let started = Instant::now();
    for (bucket, key) in &keys {
        let out = store
            .client()
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .context("GetObject")?;
        let bytes = out.body.collect().await.context("reading GetObject")?.into_bytes();
        anyhow::ensure!(bytes.len() == body.len(), "GetObject returned {} bytes", bytes.len());
    }
    let get = mb / started.elapsed().as_secs_f64();
    for (bucket, key) in &keys {
        store
            .client()
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .context("DeleteObject")?;
    }
    Ok((put, get))
}
