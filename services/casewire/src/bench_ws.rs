//! `casewire bench ws`: WebSocket fan-out. The platform (and its
//! publisher) runs in this process; the sockets are held by a child
//! process (`casewire bench ws-clients`, hidden), so that the publisher's
//! memory per socket can be read from this process alone and the two
//! sides do not share one descriptor limit. Figures are printed, never
//! asserted.

use std::time::{Duration, Instant};

use anyhow::Context;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::embedded::{Embedded, Services};

/// Options of `casewire bench ws`.
#[derive(Debug, Clone, clap::Args)]
pub struct WsBenchArgs {
    /// Sockets held, each subscribed to every case it may see.
    #[arg(long, default_value_t = 1000)]
    pub sockets: usize,
    /// Events written while they listen (comments on a few cases).
    #[arg(long, default_value_t = 100)]
    pub events: usize,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Options of the hidden client side.
#[derive(Debug, Clone, clap::Args)]
pub struct WsClientsArgs {
    #[arg(long)]
    pub url: String,
    #[arg(long)]
    pub token: String,
    #[arg(long)]
    pub sockets: usize,
    /// Events each socket is to receive before the side reports.
    #[arg(long)]
    pub events: usize,
}

/// Resident memory of this process, in KiB (Linux).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The baseline: reading the log back as the hub reads it, over and over
/// until 20,000 events were read (the bench's log is short).
async fn raw_read(platform: &casewire_runtime::Platform) -> anyhow::Result<(usize, f64)> {
    let started = Instant::now();
    let mut read = 0;
    while read < 20_000 {
        let mut next = 1;
        loop {
            let batch = platform.events.read_all(next, 500).await?;
            let Some(last) = batch.last() else { break };
            next = last.position + 1;
            read += batch.len();
        }
        anyhow::ensure!(read > 0, "the log is empty");
    }
    Ok((read, read as f64 / started.elapsed().as_secs_f64()))
}

/// Runs the benchmark.
pub async fn run(mut base: casewire_runtime::Config, args: WsBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.sockets > 0 && args.events > 0, "need sockets and events");
    let _dir = crate::bench::fresh_platform_dir(&mut base)?;
    base.ws.max_per_principal = args.sockets;
    base.ws.max_sockets = args.sockets + 16;
    let platform = Embedded::start(base, Services::default()).await?;
    let admin = platform.client("carol")?;
    let r = admin.import_definition(crate::DEMO_DEFINITIONS[0].1).await?;
    anyhow::ensure!(r.status.as_u16() == 201, "definition import failed: {}", r.body);
    let mut cases = Vec::new();
    for i in 0..4 {
        let body = json!({"definition": "customer-complaint", "title": format!("Live {i}"), "data": {"channel": "web", "product": "Kettle K200"}});
        let r = admin.post_wait("/api/v1/cases", &body).await?;
        anyhow::ensure!(r.status.as_u16() == 201, "open failed: {}", r.body);
        cases.push(r.body["id"].as_str().context("case id")?.to_owned());
    }
    let url = platform.ws.as_ref().context("the publisher is off")?.url.clone();
    let rss_before = rss_kib();

    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .args([
            "bench",
            "ws-clients",
            "--url",
            &url,
            "--token",
            &platform.token("carol")?,
        ])
        .args([
            "--sockets",
            &args.sockets.to_string(),
            "--events",
            &args.events.to_string(),
        ])
        .env("CASEWIRE__LOG__LEVEL", "warn")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the client side")?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let connecting = Instant::now();
    let line = lines.next_line().await?.context("the client side ended early")?;
    anyhow::ensure!(line == "ready", "client side: {line}");
    let connect_secs = connecting.elapsed().as_secs_f64();
    // Let the sockets settle before reading memory.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_held = rss_kib();

    let writing = Instant::now();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (c, cases, n) = (admin.clone(), cases.clone(), args.events);
            tokio::spawn(async move {
                for i in (w..n).step_by(4) {
                    let body = json!({"body": format!("Update {i}"), "visibility": "public"});
                    let r = c
                        .post(&format!("/api/v1/cases/{}/comments", cases[i % cases.len()]), &body)
                        .await?;
                    anyhow::ensure!(r.status.as_u16() == 202, "comment refused: {}", r.body);
                }
                Ok::<_, anyhow::Error>(())
            })
        })
        .collect();
    for w in writers {
        w.await??;
    }
    let line = tokio::time::timeout(Duration::from_secs(600), lines.next_line())
        .await
        .context("the sockets did not get every event within 10 minutes")??
        .context("the client side ended without a report")?;
    let report: Value = serde_json::from_str(&line).context("the client side's report")?;
    let delivered = report["delivered"].as_f64().unwrap_or(0.0);
    let span = writing.elapsed().as_secs_f64();
    let _ = child.wait().await;
    let (read, read_rate) = raw_read(&platform.platform).await?;
    platform.stop().await?;

    let per_1k = (rss_held.saturating_sub(rss_before)) as f64 / 1024.0 / (args.sockets as f64 / 1000.0);
    let rate = delivered / span;
    if args.json {
        println!(
            "{}",
            json!({
                "sockets": args.sockets, "events": args.events, "delivered": delivered,
                "connectSecs": connect_secs, "deliveredPerSec": rate,
                "p50Ms": report["p50Ms"], "p99Ms": report["p99Ms"],
                "rssMibPer1kSockets": per_1k,
                "baseline": {"what": "raw event read (read_all)", "events": read, "perSec": read_rate},
            })
        );
        return Ok(());
    }
    println!("casewire bench ws — {} sockets, {} events", args.sockets, args.events);
    println!(
        "  sockets held                  {:>9}  (connected in {connect_secs:.1} s)",
        args.sockets
    );
    println!("  events delivered              {delivered:>9.0}  (events × sockets)");
    println!("  delivered/s                   {rate:>9.0}");
    println!(
        "  event→socket latency          p50 {:.1} ms, p99 {:.1} ms",
        report["p50Ms"].as_f64().unwrap_or(0.0),
        report["p99Ms"].as_f64().unwrap_or(0.0)
    );
    println!("  publisher RSS per 1k sockets  {per_1k:>9.1} MiB");
    println!("  baseline: raw event read      {read_rate:>9.0} events/s ({read} events, same run)");
    println!("  ratio delivered/s / raw read  {:>9.2}", rate / read_rate);
    Ok(())
}

/// The client side: holds the sockets, then reports what they received.
pub async fn clients(args: WsClientsArgs) -> anyhow::Result<()> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Vec<Duration>)>();
    let ready = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let connecting = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
    for i in 0..args.sockets {
        let (args, tx, ready, connecting) = (args.clone(), tx.clone(), ready.clone(), connecting.clone());
        tokio::spawn(async move {
            let result = hold(i, &args, &ready, &connecting).await;
            match result {
                Ok(got) => {
                    let _ = tx.send(got);
                }
                Err(e) => {
                    eprintln!("socket {i}: {e:#}");
                    let _ = tx.send((0, Vec::new()));
                }
            }
        });
    }
    drop(tx);
    let all = u32::try_from(args.sockets).unwrap_or(u32::MAX);
    let _ = ready.acquire_many(all).await?;
    println!("ready");
    let (mut delivered, mut latencies) = (0usize, Vec::new());
    while let Some((n, l)) = rx.recv().await {
        delivered += n;
        latencies.extend(l);
    }
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len().max(1) - 1) as f64 * p).round() as usize)
            .map_or(0.0, |d| ms(*d))
    };
    println!(
        "{}",
        json!({"delivered": delivered, "p50Ms": pct(0.5), "p99Ms": pct(0.99)})
    );
    Ok(())
}

/// One socket: connect, subscribe, count events; every tenth socket
/// also measures each event's latency from its time in the log.
async fn hold(
    i: usize,
    args: &WsClientsArgs,
    ready: &tokio::sync::Semaphore,
    connecting: &tokio::sync::Semaphore,
) -> anyhow::Result<(usize, Vec<Duration>)> {
    let permit = connecting.acquire().await?;
    let mut req = args.url.as_str().into_client_request()?;
    req.headers_mut()
        .insert("authorization", format!("Bearer {}", args.token).parse()?);
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
    ws.send(Message::text(json!({"type": "subscribe", "id": "all"}).to_string()))
        .await?;
    loop {
        let frame = ws.next().await.context("closed while subscribing")??;
        if let Message::Text(t) = frame
            && t.contains("\"subscribed\"")
        {
            break;
        }
    }
    drop(permit);
    ready.add_permits(1);
    let (mut n, mut latencies) = (0, Vec::new());
    while n < args.events {
        let frame = ws.next().await.context("closed before every event came")??;
        let Message::Text(t) = frame else { continue };
        if !t.starts_with("{\"type\":\"event\"") {
            continue;
        }
        n += 1;
        if i.is_multiple_of(10) {
            let v: Value = serde_json::from_str(&t)?;
            if let Some(time) = v["event"]["time"].as_str()
                && let Ok(at) = chrono::DateTime::parse_from_rfc3339(time)
            {
                let lag = chrono::Utc::now() - at.with_timezone(&chrono::Utc);
                latencies.push(lag.to_std().unwrap_or_default());
            }
        }
    }
    let _ = ws.close(None).await;
    Ok((n, latencies))
}
