//! `casewire bench sla`: the SLA scheduler with `--cases` open clocks, of
//! which `--due` have reached their warning and goal. The log is written
//! straight to the event store (as `bench replay` does), sixty days old,
//! on the demo complaint and its office calendar; the schedule of every
//! case is stored, the due ones in the past. Measured in the same run:
//! - timers fired per second: the scheduler's look (claim, clocks computed
//!   from the case's events, `case.recordSla` issued for the warning and
//!   the breach, next time stored), against the claim and store alone;
//! - one clock computation (the ten events folded into signals and clocks
//!   on the calendar), against folding the same ten events into the case.
//!
//! Figures are printed, never asserted; what was fired is checked.

use std::time::{Duration, Instant};

use casewire_application::CaseCache;
use casewire_domain::calendar::BusinessCalendar;
use casewire_domain::sla::case_clocks;
use casewire_domain::types::TenantId;
use casewire_domain::{Case, CaseDefinition, CaseEvent};
use casewire_ports::SlaEntry;
use casewire_runtime::{Config, Platform};
use chrono::Utc;
use serde_json::json;

/// Options of `casewire bench sla`.
#[derive(Debug, Clone, clap::Args)]
pub struct SlaBenchArgs {
    /// Cases with an open resolution clock.
    #[arg(long, default_value_t = 100_000)]
    pub cases: usize,
    /// Of them, cases whose clock reached its warning and goal.
    #[arg(long, default_value_t = 10_000)]
    pub due: usize,
    /// Clock computations timed.
    #[arg(long, default_value_t = 20_000)]
    pub computations: usize,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

fn say(json: bool, line: &str) {
    if !json {
        eprintln!("  {line}");
    }
}

/// The demo complaint and its calendar, in the default tenant.
async fn definitions(platform: &Platform) -> anyhow::Result<(CaseDefinition, BusinessCalendar)> {
    let tenant = TenantId::default_tenant();
    let cal = BusinessCalendar::parse_yaml(crate::DEMO_CALENDARS[0].1).map_err(|e| anyhow::anyhow!("{e}"))?;
    let cal = platform.reads.put_calendar(&tenant, &cal).await?;
    let def = platform
        .reads
        .put_definition(&tenant, &crate::bench_replay::complaint()?)
        .await?;
    Ok((def, cal))
}

/// Every case's schedule: the first `due` in the past, the rest far ahead.
async fn schedule_all(platform: &Platform, due: usize) -> anyhow::Result<Vec<(TenantId, uuid::Uuid)>> {
    let mut cases = Vec::new();
    let (mut from, now) = (1, Utc::now());
    loop {
        let batch = platform.events.read_all(from, 20_000).await?;
        let Some(last) = batch.last() else { break };
        from = last.position + 1;
        cases.extend(
            batch
                .iter()
                .filter(|e| e.revision == 1)
                .map(|e| (e.tenant.clone(), e.case_id)),
        );
    }
    for (n, (tenant, id)) in cases.iter().enumerate() {
        let at = if n < due {
            now - chrono::Duration::seconds(1)
        } else {
            now + chrono::Duration::days(30)
        };
        let entry = SlaEntry {
            next_at: Some(at),
            due_at: Some(at),
            ..SlaEntry::default()
        };
        anyhow::ensure!(
            platform.reads.put_sla(tenant, *id, &entry).await?,
            "case {id} has no row"
        );
    }
    Ok(cases)
}

/// The claim and the store alone, over the same number of due cases.
async fn claim_only(platform: &Platform, cases: &[(TenantId, uuid::Uuid)], due: usize) -> anyhow::Result<Duration> {
    let past = Utc::now() - chrono::Duration::seconds(1);
    for (tenant, id) in &cases[..due] {
        let entry = SlaEntry {
            next_at: Some(past),
            ..SlaEntry::default()
        };
        platform.reads.put_sla(tenant, *id, &entry).await?;
    }
    let started = Instant::now();
    let mut claimed = 0;
    while claimed < due {
        let now = Utc::now();
        let batch = platform
            .reads
            .claim_sla(now, now + chrono::Duration::seconds(60), 256)
            .await?;
        anyhow::ensure!(!batch.is_empty(), "only {claimed} of {due} claimed");
        for c in &batch {
            platform
                .reads
                .put_sla(&c.tenant, c.case_id, &SlaEntry::default())
                .await?;
        }
        claimed += batch.len();
    }
    Ok(started.elapsed())
}

/// Microseconds per clock computation and per fold of the same events.
async fn computation(
    platform: &Platform,
    def: &CaseDefinition,
    cal: &BusinessCalendar,
    n: usize,
) -> anyhow::Result<(f64, f64)> {
    let first = platform.events.read_all(1, 10).await?;
    let events: Vec<(chrono::DateTime<Utc>, CaseEvent)> = first
        .iter()
        .map(|r| Ok((r.time, r.case_event()?)))
        .collect::<anyhow::Result<_>>()?;
    let compiled = cal.compile()?;
    let now = Utc::now();
    let started = Instant::now();
    let mut clocks = 0;
    for _ in 0..n {
        clocks += case_clocks(def, events.iter().map(|(t, e)| (*t, e)), &compiled, now).len();
    }
    let per_clock = started.elapsed().as_secs_f64() * 1e6 / n as f64;
    anyhow::ensure!(clocks > 0, "no clocks computed");
    let started = Instant::now();
    let mut revisions = 0;
    for _ in 0..n {
        let mut case = None;
        for r in &first {
            case = Case::fold(case, &r.meta(), &r.case_event()?);
        }
        revisions += case.map_or(0, |c| c.revision);
    }
    let per_fold = started.elapsed().as_secs_f64() * 1e6 / n as f64;
    anyhow::ensure!(revisions > 0, "nothing folded");
    Ok((per_clock, per_fold))
}

/// `casewire bench sla`.
pub async fn run(mut base: Config, args: SlaBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.cases > 0 && args.due <= args.cases,
        "need cases, and at most that many due"
    );
    let _dir = crate::bench::fresh_platform_dir(&mut base)?;
    base.sla.batch = 256;
    let platform = Platform::open(base).await?;
    let (def, cal) = definitions(&platform).await?;
    say(args.json, &format!("writing {} cases sixty days old", args.cases));
    let sixty_days_ago = Utc::now() - chrono::Duration::days(60);
    let written = crate::bench_replay::write_log(&platform, &def, args.cases, args.json, sixty_days_ago).await?;
    say(args.json, &format!("projecting {written} events"));
    casewire_projector::replay(&platform, 0, |_, _| {}).await?;
    let cases = schedule_all(&platform, args.due).await?;

    let cache = CaseCache::default();
    let started = Instant::now();
    let mut fired = 0;
    loop {
        let n = casewire_case_engine::sla::fire_due(&platform, &cache).await?;
        if n == 0 {
            break;
        }
        fired += n;
    }
    let fire_time = started.elapsed();
    // Each due case: its resolution clock's warning and breach.
    anyhow::ensure!(
        fired == 2 * args.due,
        "{fired} thresholds recorded for {} due cases",
        args.due
    );
    let claim_time = claim_only(&platform, &cases, args.due).await?;
    let (per_clock, per_fold) = computation(&platform, &def, &cal, args.computations).await?;
    report(&args, fired, fire_time, claim_time, per_clock, per_fold);
    Ok(())
}

fn report(args: &SlaBenchArgs, fired: usize, fire: Duration, claim: Duration, per_clock: f64, per_fold: f64) {
    let cases_per_sec = args.due as f64 / fire.as_secs_f64().max(1e-9);
    let timers_per_sec = fired as f64 / fire.as_secs_f64().max(1e-9);
    let claims_per_sec = args.due as f64 / claim.as_secs_f64().max(1e-9);
    if args.json {
        let out = json!({
            "openClocks": args.cases, "dueCases": args.due, "recorded": fired,
            "scheduler": {"timersPerSec": timers_per_sec, "casesPerSec": cases_per_sec, "secs": fire.as_secs_f64()},
            "baseline": {"what": "claim and store alone", "casesPerSec": claims_per_sec},
            "ratio": cases_per_sec / claims_per_sec,
            "clock": {"micros": per_clock, "baselineFoldMicros": per_fold, "ratio": per_clock / per_fold},
        });
        println!("{out}");
        return;
    }
    println!(
        "SLA scheduler, {} open clocks, {} due ({fired} thresholds)",
        args.cases, args.due
    );
    println!(
        "  timers fired              {timers_per_sec:>10.0} /s  ({cases_per_sec:.0} cases/s, {:.2} s)",
        fire.as_secs_f64()
    );
    println!("  baseline: claim + store   {claims_per_sec:>10.0} cases/s");
    println!("  ratio                     {:>10.3}", cases_per_sec / claims_per_sec);
    println!("  one clock computation     {per_clock:>10.1} µs  (10 events, office calendar)");
    println!("  baseline: fold 10 events  {per_fold:>10.1} µs");
    println!("  ratio                     {:>10.2}", per_clock / per_fold);
}
