//! projector: keeps the read models up to date from `casewire.events`, and
//! rebuilds them from the event store on `casewire replay`.
//!
//! Every event is applied only if its revision is newer than the stored
//! case's, so redelivered and re-published events change nothing. A gap
//! (an event whose predecessor never arrived) is healed by reading the
//! case's stream from the event store.
//!
//! # Layout
//! - [`Projector`]: applies one event; [`run`]: the consumer loop;
//!   [`replay`]: the rebuild.

use std::time::{Duration, Instant};

use casewire_domain::Case;
use casewire_ports::envelope::event_from_json;
use casewire_ports::{EventRecord, StartFrom, StoreError, Topic};
use casewire_runtime::Platform;
use tokio_util::sync::CancellationToken;

/// The consumer group and checkpoint name.
pub const GROUP: &str = "projector";

/// Applies events to the read models.
#[derive(Debug, Clone)]
pub struct Projector {
    platform: Platform,
}

/// What a replay did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayReport {
    pub events: u64,
    pub cases: u64,
    pub elapsed: Duration,
}

impl Projector {
    /// A projector over the platform's stores.
    pub fn new(platform: Platform) -> Self {
        Projector { platform }
    }

    /// Applies one event; returns whether anything changed.
    pub async fn project(&self, record: &EventRecord) -> Result<bool, StoreError> {
        let reads = &self.platform.reads;
        let current = reads
            .get_case(&record.tenant, record.case_id)
            .await?
            .unwrap_or_default();
        self.project_onto(current, record).await.map(|(_, applied)| applied)
    }

    async fn project_onto(&self, mut case: Case, record: &EventRecord) -> Result<(Case, bool), StoreError> {
        let reads = &self.platform.reads;
        if record.revision <= case.revision {
            return Ok((case, false));
        }
        if record.revision == case.revision + 1 {
            case.apply(&record.meta(), &record.case_event()?);
            reads.apply_case(&case, record).await?;
        } else {
            // A gap: fill it from the source of truth.
            tracing::warn!(case_id = %record.case_id, have = case.revision, got = record.revision, "Filling a revision gap from the event store");
            for earlier in self.platform.events.load(&record.tenant, record.case_id).await? {
                if earlier.revision > case.revision && earlier.revision <= record.revision {
                    case.apply(&earlier.meta(), &earlier.case_event()?);
                    reads.apply_case(&case, &earlier).await?;
                }
            }
        }
        metrics::counter!("casewire_projector_events_total").increment(1);
        Ok((case, true))
    }
}

/// Runs the projector until `shutdown`.
pub async fn run(platform: Platform, shutdown: CancellationToken) -> anyhow::Result<()> {
    let projector = Projector::new(platform.clone());
    let mut sub = platform
        .bus
        .subscribe(Some(GROUP), Topic::Events, StartFrom::Earliest)
        .await?;
    tracing::info!("Projector started");
    loop {
        let msg = tokio::select! {
            _ = shutdown.cancelled() => break,
            msg = sub.next() => msg?,
        };
        match event_from_json(&msg.payload) {
            Ok(record) => {
                let mut backoff = Duration::from_millis(50);
                loop {
                    match projector.project(&record).await {
                        Ok(_) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, case_id = %record.case_id, "Projection failed; retrying");
                            tokio::select! {
                                _ = shutdown.cancelled() => return Ok(()),
                                _ = tokio::time::sleep(backoff) => {}
                            }
                            backoff = (backoff * 2).min(Duration::from_secs(5));
                        }
                    }
                }
                platform.reads.save_checkpoint(GROUP, record.position).await?;
            }
            Err(e) => {
                tracing::error!(error = %e, offset = msg.offset, "Moved an unreadable event to the dead-letter topic");
                platform
                    .bus
                    .publish(Topic::Dlq, vec![(msg.key.clone(), msg.payload.clone())])
                    .await?;
            }
        }
        sub.commit(&msg).await?;
    }
    tracing::info!("Projector stopped");
    Ok(())
}

/// Rebuilds every projection from the event store, reporting progress
/// every `progress_every` events through `progress`.
pub async fn replay(
    platform: &Platform,
    progress_every: u64,
    mut progress: impl FnMut(u64, u64),
) -> Result<ReplayReport, StoreError> {
    let started = Instant::now();
    let projector = Projector::new(platform.clone());
    let head = platform.events.head().await?;
    platform.reads.reset_projections().await?;
    // Cases are kept in memory during the rebuild so each event costs one
    // write and no read.
    let mut cases: std::collections::HashMap<(String, uuid::Uuid), Case> = std::collections::HashMap::new();
    let (mut from, mut done) = (1, 0u64);
    loop {
        let batch = platform.events.read_all(from, 1000).await?;
        let Some(last) = batch.last() else { break };
        from = last.position + 1;
        for record in &batch {
            let key = (record.tenant.clone(), record.case_id);
            let case = cases.remove(&key).unwrap_or_default();
            let (case, _) = projector.project_onto(case, record).await?;
            cases.insert(key, case);
            done += 1;
            if progress_every > 0 && done % progress_every == 0 {
                progress(done, head);
            }
        }
        platform.reads.save_checkpoint(GROUP, last.position).await?;
    }
    Ok(ReplayReport {
        events: done,
        cases: cases.len() as u64,
        elapsed: started.elapsed(),
    })
}
