//! The SLA scheduler: records `sla-warning` and `sla-breached` on a case
//! when one of its clocks reaches its warning time or its goal, once per
//! clock and cycle, late rather than never.
//!
//! Two loops, one process (`casewire serve sla-scheduler`, and in
//! `casewire dev`):
//! - the **follower** reads `casewire.events` (group `sla`) and, for each
//!   case an event touches, computes the clocks again and stores the
//!   case's schedule on its row ([`SlaSchedule::put_sla`]): when to look
//!   next, and the due and warning times the case list filters by. It
//!   never records anything itself;
//! - the **ticker** claims the cases whose time has come (a claim one
//!   scheduler holds at a time, for `sla.claim_secs`), computes their
//!   clocks at this moment, issues `case.recordSla` for each threshold
//!   reached and not yet recorded, and stores the next time.
//!
//! Exactly once without a table of fired timers: the timer is the row's
//! `next_at` in the store (a scheduler that was down finds it past and
//! fires late), what was recorded is in the case's events (a replay or a
//! redelivery computes the same), the command id derives from case,
//! metric, cycle and threshold (a second scheduler, or a retry after a
//! crash between issue and store, issues the same command, which the
//! engine decides once), and the case refuses a second record.

use std::sync::Arc;
use std::time::Duration;

use casewire_application::CaseCache;
use casewire_application::sla::clocks_at;
use casewire_domain::sla::{RecordSla, Schedule, schedule};
use casewire_domain::types::TenantId;
use casewire_domain::{Case, CaseCommand};
use casewire_ports::envelope::{CommandEnvelope, event_from_json};
use casewire_ports::sla::parse_calendar_key;
use casewire_ports::{BusMessage, SlaClaim, SlaEntry, StoreError, Topic};
use casewire_runtime::Platform;
use casewire_runtime::consumer::{Failure, consume_batches};
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The consumer group of the follower.
pub const GROUP: &str = "sla";

/// The actor of the records.
pub const ACTOR: &str = "sla-scheduler";

/// Runs the follower and the ticker until `shutdown`.
pub async fn run(platform: Platform, shutdown: CancellationToken) -> anyhow::Result<()> {
    let cache = Arc::new(CaseCache::new(16 << 20));
    let ticker = tokio::spawn(tick(platform.clone(), cache.clone(), shutdown.clone()));
    let followed = follow(platform, cache, shutdown.clone()).await;
    shutdown.cancel();
    ticker.await??;
    followed
}

async fn follow(platform: Platform, cache: Arc<CaseCache>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let max_batch = platform.config.bus.max_batch;
    let p = platform.clone();
    consume_batches(
        &platform,
        GROUP,
        Topic::Events,
        shutdown,
        max_batch,
        move |batch| {
            let (platform, cache) = (p.clone(), cache.clone());
            async move { on_batch(&platform, &cache, &batch).await }
        },
        |_, reason| async move {
            tracing::error!(%reason, "An event the SLA scheduler could not read was dead-lettered");
        },
    )
    .await
}

/// Each case of the batch once: its newest state decides.
async fn on_batch(platform: &Platform, cache: &CaseCache, batch: &[BusMessage]) -> Result<(), Failure> {
    let mut seen: Vec<(TenantId, Uuid)> = Vec::new();
    for msg in batch {
        let record = event_from_json(&msg.payload).map_err(|e| Failure::Poison(e.to_string()))?;
        let key = (record.tenant, record.case_id);
        if !seen.contains(&key) {
            seen.push(key);
        }
    }
    for (tenant, case_id) in seen {
        refresh(platform, cache, &tenant, case_id)
            .await
            .map_err(|e| Failure::Transient(e.to_string()))?;
    }
    Ok(())
}

/// What a case's clocks say at `now`, with what the case recorded.
async fn plan(
    platform: &Platform,
    cache: &CaseCache,
    tenant: &TenantId,
    case_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<(Case, Schedule, Option<String>)>, StoreError> {
    let Some(case) = cache.current(&*platform.events, tenant, case_id).await? else {
        return Ok(None);
    };
    let def = cache
        .definition(
            &*platform.reads,
            tenant,
            &case.definition_id,
            Some(case.definition_version),
        )
        .await?;
    let Some(def) = def else { return Ok(None) };
    let clocks = clocks_at(&*platform.reads, &*platform.events, &def, tenant, case_id, now).await?;
    let plan = schedule(&clocks.clocks, &case.sla, now);
    let key = clocks
        .calendar_key
        .filter(|_| plan.due_at.is_some() || plan.next_at.is_some());
    Ok(Some((case, plan, key)))
}

fn entry(plan: &Schedule, calendar: Option<String>) -> SlaEntry {
    SlaEntry {
        next_at: plan.next_at,
        due_at: plan.due_at,
        warn_at: plan.warn_at,
        breached: plan.breached,
        calendar,
    }
}

/// Computes a case's schedule again and stores it. A threshold already
/// reached makes the next time now, for the ticker. The projector may not
/// have written the case's row yet: a short wait, then a failure, which
/// the consumer retries.
async fn refresh(platform: &Platform, cache: &CaseCache, tenant: &TenantId, case_id: Uuid) -> anyhow::Result<()> {
    let now = Utc::now();
    // No case or no definition: no clocks.
    let e = match plan(platform, cache, tenant, case_id, now).await? {
        Some((_, plan, key)) => {
            let mut e = entry(&plan, key);
            if let Some(first) = plan.due.first() {
                e.next_at = Some(first.at);
            }
            e
        }
        None => SlaEntry::default(),
    };
    for wait in [50, 100, 200, 400, 800, 1_600] {
        if platform.reads.put_sla(tenant, case_id, &e).await? {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
    anyhow::bail!("case {case_id} of {tenant} is not in the read store yet")
}

/// The ticker: claims due cases every `sla.tick_ms`, and recomputes the
/// cases of edited calendars every `sla.calendar_check_secs`.
async fn tick(platform: Platform, cache: Arc<CaseCache>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let cfg = platform.config.sla.clone();
    let mut interval = tokio::time::interval(Duration::from_millis(cfg.tick_ms));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_check = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = interval.tick() => {}
        }
        if let Err(e) = fire_due(&platform, &cache).await {
            tracing::warn!(error = %e, "The SLA scheduler could not look at due clocks; trying again");
        }
        if last_check.elapsed() >= Duration::from_secs(cfg.calendar_check_secs) {
            last_check = tokio::time::Instant::now();
            if let Err(e) = recompute_edited(&platform, &cache).await {
                tracing::warn!(error = %e, "The SLA scheduler could not check the calendars; trying again");
            }
        }
    }
}

/// Claims and fires until nothing is due; returns how many thresholds
/// were recorded.
pub async fn fire_due(platform: &Platform, cache: &CaseCache) -> anyhow::Result<usize> {
    let cfg = &platform.config.sla;
    let mut fired = 0;
    loop {
        let now = Utc::now();
        let until = now + chrono::Duration::seconds(i64::try_from(cfg.claim_secs).unwrap_or(60));
        let claims = platform.reads.claim_sla(now, until, cfg.batch).await?;
        for claim in &claims {
            fired += fire(platform, cache, claim, now).await?;
        }
        if claims.len() < cfg.batch {
            return Ok(fired);
        }
    }
}

/// Records what a claimed case reached, then stores its next time (which
/// releases the claim). A failure leaves the claim to run out: another
/// look fires it then, with the same command ids.
async fn fire(platform: &Platform, cache: &CaseCache, claim: &SlaClaim, now: DateTime<Utc>) -> anyhow::Result<usize> {
    let (tenant, case_id) = (&claim.tenant, claim.case_id);
    let Some((case, plan, key)) = plan(platform, cache, tenant, case_id, now).await? else {
        platform.reads.put_sla(tenant, case_id, &SlaEntry::default()).await?;
        return Ok(0);
    };
    for record in &plan.due {
        issue(platform, &case, record).await?;
    }
    platform.reads.put_sla(tenant, case_id, &entry(&plan, key)).await?;
    Ok(plan.due.len())
}

async fn issue(platform: &Platform, case: &Case, record: &RecordSla) -> anyhow::Result<()> {
    let command_id = RecordSla::command_id(case.id, record.metric, record.cycle, record.threshold);
    let envelope = CommandEnvelope {
        command_id,
        case_id: case.id,
        tenant: case.tenant.clone(),
        actor: ACTOR.into(),
        correlation_id: command_id,
        case_key: None,
        issued_at: Utc::now(),
        command: CaseCommand::RecordSla(record.clone()),
    };
    tracing::info!(case_id = %case.id, %command_id, metric = ?record.metric, cycle = record.cycle,
        threshold = ?record.threshold, at = %record.at, "An SLA clock reached a threshold");
    metrics::counter!("casewire_sla_recorded_total", "threshold" => format!("{:?}", record.threshold)).increment(1);
    platform.issue(&envelope).await
}

/// Cases whose schedule was computed on an older version of their
/// calendar (or before it was imported) are computed again.
async fn recompute_edited(platform: &Platform, cache: &CaseCache) -> anyhow::Result<()> {
    for key in platform.reads.sla_calendars().await? {
        let Some((tenant, id, version)) = parse_calendar_key(&key) else {
            continue;
        };
        let newest = platform.reads.get_calendar(&tenant, &id, None).await?;
        if newest.as_ref().map_or(0, |c| c.version) == version {
            continue;
        }
        let mut previous = Vec::new();
        loop {
            let cases = platform.reads.sla_cases_on(&key, 500).await?;
            // Each refresh moves a case off the old key; the same cases
            // again means they did not move (a failure logged elsewhere).
            if cases.is_empty() || cases == previous {
                break;
            }
            tracing::info!(calendar = %id, %tenant, cases = cases.len(), "A calendar changed; computing its open clocks again");
            for c in &cases {
                refresh(platform, cache, &c.tenant, c.case_id).await?;
            }
            previous = cases;
        }
    }
    Ok(())
}

/// Computes every given case's schedule again (after a projection
/// rebuild, which drops them with the rows).
pub async fn resync(platform: &Platform, cases: &[(TenantId, Uuid)]) -> anyhow::Result<()> {
    let cache = CaseCache::new(16 << 20);
    for (tenant, case_id) in cases {
        refresh(platform, &cache, tenant, *case_id).await?;
    }
    Ok(())
}
