//! `casewire bench replay`: the rebuild of every read model from a log of
//! `--cases` cases of ten events each, against the raw read of the same log
//! in the same run (what a replay could do at best without changing the
//! event store). The log is decided by the domain, as the engine would, and
//! appended straight to the event store, so that a million events take
//! seconds to write instead of the minutes the HTTP bench would. Figures
//! are printed, never asserted; the rebuilt read model is checked.

use std::time::{Duration, Instant};

use anyhow::Context;
use casewire_domain::command::CaseCommand;
use casewire_domain::types::{CaseKey, TenantId};
use casewire_domain::{Case, CaseDefinition, Decision, EventMeta};
use casewire_ports::{Append, NewEvent};
use casewire_runtime::{Config, Platform};
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

/// Options of `casewire bench replay`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayBenchArgs {
    /// Cases in the log, ten events each.
    #[arg(long, default_value_t = 20_000)]
    pub cases: usize,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Cases appended per `append_batch`.
const APPEND_BATCH: usize = 500;

/// Events read per step of the raw baseline, as the replay reads them.
const READ_BATCH: usize = 20_000;

/// The ten commands of every case, as the commands topic has them (the
/// API gives each comment its id).
fn commands(n: usize) -> anyhow::Result<Vec<CaseCommand>> {
    let wire = [
        json!({"type": "case.open", "data": {"definition": "customer-complaint", "title": format!("Replayed case {n}"),
               "data": {"channel": "web", "product": "Kettle K200"}}}),
        json!({"type": "case.assign", "data": {"assignee": "alice"}}),
        json!({"type": "case.comment", "data": {"body": "Looking into it", "commentId": Uuid::now_v7()}}),
        json!({"type": "case.tag", "data": {"tag": "bench"}}),
        json!({"type": "case.moveToStage", "data": {"stage": "triage"}}),
        json!({"type": "case.comment", "data": {"body": "Asked the customer for photos", "visibility": "public",
               "commentId": Uuid::now_v7()}}),
        json!({"type": "case.prioritize", "data": {"priority": "high"}}),
        json!({"type": "case.moveToStage", "data": {"stage": "investigating"}}),
        json!({"type": "case.comment", "data": {"body": "Photos received", "commentId": Uuid::now_v7()}}),
        json!({"type": "case.untag", "data": {"tag": "bench"}}),
    ];
    wire.into_iter()
        .map(|c| serde_json::from_value(c).context("a bench command"))
        .collect()
}

/// One case's events, decided one command after another, at `at`.
pub(crate) fn decide_case(
    def: &CaseDefinition,
    tenant: &TenantId,
    n: usize,
    at: DateTime<Utc>,
) -> anyhow::Result<Append> {
    let key = CaseKey::new(&def.key_prefix, n as u64 + 1);
    let case_id = Uuid::now_v7();
    let (mut case, mut events): (Option<Case>, Vec<NewEvent>) = (None, Vec::new());
    for command in commands(n)? {
        let ctx = Decision {
            definition: def,
            actor: "alice",
            key: Some(&key),
            now: at,
        };
        let decided = Case::decide(case.as_ref(), &command, &ctx).map_err(|e| anyhow::anyhow!("{e}"))?;
        let command_id = Uuid::now_v7();
        for event in decided {
            let new = NewEvent::from_domain(&event, at, "alice", command_id, command_id);
            let meta = EventMeta {
                case_id,
                tenant,
                revision: events.len() as u64 + 1,
                time: new.time,
                actor: "alice",
            };
            case = Case::fold(case, &meta, &event);
            events.push(new);
        }
    }
    Ok(Append {
        tenant: tenant.clone(),
        case_id,
        expected: 0,
        events,
    })
}

/// The demo complaint, as the log's cases have it.
pub(crate) fn complaint() -> anyhow::Result<CaseDefinition> {
    CaseDefinition::parse_yaml(crate::DEMO_DEFINITIONS[0].1).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Writes the log of `def` (the demo complaint, any version), every event
/// at `at`; returns the events written.
pub(crate) async fn write_log(
    platform: &Platform,
    def: &CaseDefinition,
    cases: usize,
    json_out: bool,
    at: DateTime<Utc>,
) -> anyhow::Result<u64> {
    let tenant = TenantId::default_tenant();
    let (mut written, mut reported) = (0u64, Instant::now());
    for start in (0..cases).step_by(APPEND_BATCH) {
        let batch = (start..cases.min(start + APPEND_BATCH))
            .map(|n| decide_case(def, &tenant, n, at))
            .collect::<anyhow::Result<Vec<_>>>()?;
        for appended in platform.events.append_batch(batch).await? {
            written += appended.len() as u64;
        }
        if !json_out && reported.elapsed() > Duration::from_secs(2) {
            eprintln!("  writing the log: {written} events");
            reported = Instant::now();
        }
    }
    Ok(written)
}

/// Reads the whole log as a replay does, and does nothing with it.
async fn raw_read(platform: &Platform) -> anyhow::Result<(u64, Duration)> {
    let started = Instant::now();
    let (mut from, mut read) = (1, 0u64);
    loop {
        let batch = platform.events.read_all(from, READ_BATCH).await?;
        let Some(last) = batch.last() else { break };
        from = last.position + 1;
        read += batch.len() as u64;
    }
    Ok((read, started.elapsed()))
}

/// `casewire bench replay`.
pub async fn run(mut base: Config, args: ReplayBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.cases > 0, "need at least one case");
    anyhow::ensure!(
        !casewire_runtime::config::is_mongodb(base.store.events.expose()),
        "bench replay measures the embedded store; leave --store at its default"
    );
    let _dir = crate::bench::fresh_platform_dir(&mut base)?;
    let platform = Platform::open(base).await?;
    let started = Instant::now();
    let events = write_log(&platform, &complaint()?, args.cases, args.json, Utc::now()).await?;
    let write_secs = started.elapsed().as_secs_f64();
    let (read, read_time) = raw_read(&platform).await?;
    anyhow::ensure!(read == events, "the raw read saw {read} of {events} events");
    let report = casewire_projector::replay(&platform, 0, |_, _| {}).await?;
    anyhow::ensure!(
        report.events == events && report.cases == args.cases as u64,
        "the replay saw {} events of {} cases, not {events} of {}",
        report.events,
        report.cases,
        args.cases
    );
    check_rebuilt(&platform).await?;
    let raw_rate = read as f64 / read_time.as_secs_f64().max(1e-9);
    let rate = report.events as f64 / report.elapsed.as_secs_f64().max(1e-9);
    if args.json {
        let out = json!({
            "cases": args.cases, "events": events,
            "writeEventsPerSec": events as f64 / write_secs.max(1e-9),
            "replay": {"eventsPerSec": rate, "secs": report.elapsed.as_secs_f64()},
            "baseline": {"what": "raw event store read", "eventsPerSec": raw_rate},
            "ratio": rate / raw_rate,
        });
        println!("{out}");
    } else {
        println!("replay of {} cases, {events} events", args.cases);
        println!(
            "  replay                 {rate:>12.0} events/s  ({:.2} s)",
            report.elapsed.as_secs_f64()
        );
        println!("  baseline: raw read     {raw_rate:>12.0} events/s");
        println!("  ratio                  {:>12.3}", rate / raw_rate);
    }
    Ok(())
}

/// The rebuilt read model has the last case as its ten events left it.
async fn check_rebuilt(platform: &Platform) -> anyhow::Result<()> {
    let last = platform
        .events
        .read_all(platform.events.head().await?, 1)
        .await?
        .pop()
        .context("the log is empty")?;
    let case = platform
        .reads
        .get_case(&last.tenant, last.case_id)
        .await?
        .context("the last case was not rebuilt")?;
    anyhow::ensure!(
        case.revision == 10 && case.stage == "investigating" && case.comments.len() == 3,
        "the last case was rebuilt wrong: revision {}, stage {}",
        case.revision,
        case.stage
    );
    let timeline = platform.reads.timeline(&last.tenant, last.case_id).await?;
    anyhow::ensure!(
        timeline.len() == 10,
        "the last case has {} timeline entries",
        timeline.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every case's detail and timeline after a replay.
    async fn read_model(platform: &Platform) -> Vec<(Case, usize)> {
        let mut seen = Vec::new();
        for record in platform.events.read_all(1, 10_000).await.expect("read") {
            if record.revision == 1 {
                let case = platform
                    .reads
                    .get_case(&record.tenant, record.case_id)
                    .await
                    .expect("get");
                let timeline = platform
                    .reads
                    .timeline(&record.tenant, record.case_id)
                    .await
                    .expect("timeline");
                seen.push((case.expect("rebuilt"), timeline.len()));
            }
        }
        seen
    }

    #[tokio::test]
    async fn a_replay_that_writes_cases_out_early_rebuilds_the_same_read_model() {
        let mut config = Config::default();
        let _dir = crate::bench::fresh_platform_dir(&mut config).expect("dir");
        let platform = Platform::open(config).await.expect("open");
        assert_eq!(
            write_log(&platform, &complaint().expect("def"), 30, true, Utc::now())
                .await
                .expect("log"),
            300
        );
        let whole = casewire_projector::replay(&platform, 0, |_, _| {})
            .await
            .expect("replay");
        assert_eq!((whole.events, whole.cases), (300, 30));
        let expected = read_model(&platform).await;
        assert!(
            expected
                .iter()
                .all(|(case, entries)| case.revision == 10 && *entries == 10)
        );
        // Four cases in memory at most: most are written out, read back
        // and moved on many times.
        let mut reported = Vec::new();
        let early = casewire_projector::replay_holding(&platform, 4, 100, |done, head| reported.push((done, head)))
            .await
            .expect("replay");
        assert_eq!((early.events, early.cases), (300, 30));
        assert_eq!(read_model(&platform).await, expected);
        assert_eq!(
            reported,
            vec![(300, 300)],
            "progress once per 100 events crossed, per batch"
        );
        check_rebuilt(&platform).await.expect("the last case");
    }
}
