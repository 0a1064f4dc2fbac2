//! `casewire bench tasks`: external tasks through Camunda's API on a fresh
//! embedded platform. `--workers` workers fetch and lock (10 at a time)
//! and complete `--tasks` tasks over HTTP; then one worker long-polls
//! while tasks are created one by one, and the time from a task's
//! creation (its command accepted) to the poll's answer is the wake-up
//! latency. The baseline is the raw SQLite event append, one per
//! transaction, in the same run: each task costs three commands (create,
//! lock, complete). Figures are printed, never asserted.

use std::time::{Duration, Instant};

use anyhow::Context;
use casewire_runtime::Config;
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::Client;
use crate::embedded::{Embedded, Services};

/// Options of `casewire bench tasks`.
#[derive(Debug, Clone, clap::Args)]
pub struct TaskBenchArgs {
    /// External tasks created, then fetched and completed.
    #[arg(long, default_value_t = 1000)]
    pub tasks: usize,
    /// Workers fetching and completing at once.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Long-poll wake-ups measured.
    #[arg(long, default_value_t = 20)]
    pub wakeups: usize,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

const TOPIC: &str = "bench";
/// Tasks per case (a case holds at most 500).
const PER_CASE: usize = 100;

async fn open_case(client: &Client) -> anyhow::Result<String> {
    let r = client
        .post_wait(
            "/api/v1/cases",
            &json!({"definition": "customer-complaint", "title": "Task bench",
            "data": {"channel": "web", "product": "Kettle K200"}}),
        )
        .await?;
    anyhow::ensure!(r.status.as_u16() == 201, "opening a case failed: {}", r.body);
    r.body["id"].as_str().map(str::to_owned).context("case id")
}

async fn create_task(client: &Client, case: &str) -> anyhow::Result<()> {
    let r = client
        .post(
            &format!("/api/v1/cases/{case}/tasks"),
            &json!({"kind": "external", "name": "Bench", "topic": TOPIC}),
        )
        .await?;
    anyhow::ensure!(r.status.as_u16() == 202, "creating a task failed: {}", r.body);
    Ok(())
}

async fn fetch(client: &Client, worker: &str, max: usize, timeout_ms: u64) -> anyhow::Result<Vec<Value>> {
    let body = json!({"workerId": worker, "maxTasks": max, "asyncResponseTimeout": timeout_ms,
                      "topics": [{"topicName": TOPIC, "lockDuration": 60000}]});
    let r = client
        .send(
            Method::POST,
            "/engine-rest/external-task/fetchAndLock",
            Some(&body),
            None,
        )
        .await?;
    anyhow::ensure!(r.status.is_success(), "fetchAndLock: {} {}", r.status, r.body);
    Ok(r.body.as_array().cloned().unwrap_or_default())
}

async fn complete(client: &Client, worker: &str, task: &Value) -> anyhow::Result<crate::client::Reply> {
    let id = task["id"].as_str().unwrap_or_default();
    client
        .send(
            Method::POST,
            &format!("/engine-rest/external-task/{id}/complete"),
            Some(&json!({"workerId": worker})),
            None,
        )
        .await
}

/// One worker: fetch up to 10, complete each, until nothing is left.
async fn worker(client: Client, name: String) -> anyhow::Result<usize> {
    let mut done = 0;
    loop {
        let tasks = fetch(&client, &name, 10, 0).await?;
        if tasks.is_empty() {
            return Ok(done);
        }
        // Handlers run side by side, as Camunda's clients run them.
        for r in futures::future::join_all(tasks.iter().map(|t| complete(&client, &name, t))).await {
            if r?.status.as_u16() == 204 {
                done += 1;
            }
        }
    }
}

/// Waits until `n` bench tasks are waiting in the read model.
async fn all_waiting(platform: &Embedded, n: usize) -> anyhow::Result<()> {
    let tenant = platform.platform.config.default_tenant.clone();
    let query = casewire_ports::TaskQuery {
        topics: Some(vec![TOPIC.into()]),
        states: Some(vec![casewire_domain::TaskState::Created]),
        limit: n + 1,
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs(600);
    while platform.platform.reads.list_tasks(&tenant, &query).await?.len() < n {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the tasks were not created within 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Long-poll wake-ups: a poll waits, a task is created, the poll answers.
async fn wakeups(platform: &Embedded, case: &str, n: usize) -> anyhow::Result<Vec<Duration>> {
    let creator = platform.client("intake")?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let poller = platform.client("intake")?;
        let poll = tokio::spawn(async move {
            let got = fetch(&poller, "waker", 1, 20_000).await;
            (got, Instant::now())
        });
        // Let the poll find nothing and start waiting.
        tokio::time::sleep(Duration::from_millis(150)).await;
        create_task(&creator, case).await?;
        let accepted = Instant::now();
        let (got, answered) = poll.await?;
        let got = got?;
        anyhow::ensure!(got.len() == 1, "the long poll answered without the task");
        out.push(answered.saturating_duration_since(accepted));
        let id = got[0]["id"].as_str().unwrap_or_default().to_owned();
        creator
            .send(
                Method::POST,
                &format!("/engine-rest/external-task/{id}/complete"),
                Some(&json!({"workerId": "waker"})),
                None,
            )
            .await?;
    }
    out.sort();
    Ok(out)
}

/// Runs the benchmark.
pub async fn run(mut base: Config, args: TaskBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.tasks > 0 && args.workers > 0,
        "need at least one task and one worker"
    );
    let dir = crate::bench::fresh_platform_dir(&mut base)?;
    let platform = Embedded::start(base.clone(), Services::default()).await?;
    let admin = platform.client("carol")?;
    let r = admin.import_definition(crate::DEMO_DEFINITIONS[0].1).await?;
    anyhow::ensure!(r.status.as_u16() == 201, "definition import failed: {}", r.body);
    let intake = platform.client("intake")?;
    let mut cases = Vec::new();
    for _ in 0..args.tasks.div_ceil(PER_CASE) {
        cases.push(open_case(&intake).await?);
    }
    for n in 0..args.tasks {
        create_task(&intake, &cases[n / PER_CASE]).await?;
    }
    all_waiting(&platform, args.tasks).await?;
    let started = Instant::now();
    let mut running = Vec::new();
    for w in 0..args.workers {
        running.push(tokio::spawn(worker(platform.client("intake")?, format!("w{w}"))));
    }
    let mut completed = 0;
    for r in running {
        completed += r.await??;
    }
    let elapsed = started.elapsed();
    anyhow::ensure!(completed == args.tasks, "{completed} of {} tasks completed", args.tasks);
    let rate = completed as f64 / elapsed.as_secs_f64();
    let latencies = wakeups(&platform, &cases[0], args.wakeups).await?;
    platform.stop().await?;
    let baselines = crate::bench::sqlite_baselines(&base, dir.path(), args.workers, 3 * args.tasks).await?;
    let raw = baselines.first().context("a baseline")?;
    let pct = |p: f64| crate::bench::ms(crate::bench::percentile(&latencies, p));
    if args.json {
        println!(
            "{}",
            json!({"tasks": args.tasks, "workers": args.workers, "tasksPerSec": rate,
                   "wakeupMs": {"p50": pct(0.5), "p99": pct(0.99), "n": latencies.len()},
                   "baseline": {"what": raw.what, "perSec": raw.per_sec},
                   "ratioCommandsToBaseline": 3.0 * rate / raw.per_sec})
        );
    } else {
        println!(
            "Casewire bench tasks: {} external tasks, {} workers, over /engine-rest",
            args.tasks, args.workers
        );
        println!(
            "  fetch-and-lock -> complete   {rate:>9.1} tasks/s ({:.1} commands/s)",
            3.0 * rate
        );
        println!(
            "  long-poll wake-up            p50 {:.1} ms, p99 {:.1} ms ({} wake-ups)",
            pct(0.5),
            pct(0.99),
            latencies.len()
        );
        println!("  baseline: {}  {:>9.1} {} (same run)", raw.what, raw.per_sec, raw.unit);
        println!("    ratio commands/s to it      {:>9.3}", 3.0 * rate / raw.per_sec);
    }
    Ok(())
}
