//! projector: keeps the read models up to date from `casewire.events`, and
//! rebuilds them from the event store on `casewire replay`.
//!
//! Every event is applied only if its revision is newer than the stored
//! case's, so redelivered and re-published events change nothing. A gap
//! (an event whose predecessor never arrived) is healed by reading the
//! case's stream from the event store.
//!
//! # Layout
//! - [`Projector`]: applies one event (with a small cache of case states);
//!   [`run`]: the consumer loop; [`replay`](replay()): the rebuild, in its
//!   own module.

mod replay;

pub use replay::{ReplayReport, replay, replay_holding};

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use casewire_domain::types::TenantId;
use casewire_domain::{Case, CaseEvent};
use casewire_ports::envelope::event_from_json;
use casewire_ports::{EventRecord, StoreError, Topic};
use casewire_runtime::Platform;
use casewire_runtime::consumer::{Failure, consume_batches};
use lru::LruCache;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The consumer group and checkpoint name.
pub const GROUP: &str = "projector";

/// Applies events to the read models.
#[derive(Debug, Clone)]
pub struct Projector {
    platform: Platform,
    /// Recently projected cases. Used only when exactly one revision behind
    /// the incoming event and dropped whenever the store refuses a write, so
    /// it saves reading and decoding the detail without ever going stale.
    cache: Arc<Mutex<LruCache<(TenantId, Uuid), Case>>>,
}

impl Projector {
    /// A projector over the platform's stores.
    pub fn new(platform: Platform) -> Self {
        Projector {
            platform,
            cache: Arc::new(Mutex::new(LruCache::new(
                NonZeroUsize::new(10_000).unwrap_or(NonZeroUsize::MIN),
            ))),
        }
    }

    fn cached(&self, key: &(TenantId, Uuid), revision: u64) -> Option<Case> {
        let mut cache = self.cache.lock().ok()?;
        cache.get(key).filter(|c| c.revision + 1 == revision).cloned()
    }

    /// Stores the case as of `record`. A case that is still not opened
    /// after one of its events has a stream that does not begin with
    /// `Opened`: corrupt, and no state to store.
    async fn store(&self, case: Option<&Case>, record: &EventRecord) -> Result<bool, StoreError> {
        let case = case.ok_or_else(|| before_opened(record))?;
        self.platform.reads.apply_case(case, record).await
    }

    /// The stored state of a case as the event before `revision` left it:
    /// from the cache when it holds exactly that, else from the store.
    async fn before(&self, key: &(TenantId, Uuid), revision: u64) -> Result<Option<Case>, StoreError> {
        match self.cached(key, revision) {
            Some(case) => Ok(Some(case)),
            None => self.platform.reads.get_case(&key.0, key.1).await,
        }
    }

    /// Applies a batch of events: each case folded in memory, then every
    /// timeline entry and each case's last state written in one go (one
    /// transaction where the store can). Redelivered events are skipped;
    /// a gap sends what is pending, then fills it one event at a time.
    pub async fn project_batch(&self, records: &[EventRecord]) -> Result<(), StoreError> {
        let mut states: HashMap<(TenantId, Uuid), Option<Case>> = HashMap::new();
        let mut pending: Vec<(Case, EventRecord)> = Vec::new();
        for record in records {
            let key = (record.tenant.clone(), record.case_id);
            let current = match states.remove(&key) {
                Some(state) => state,
                None => self.before(&key, record.revision).await?,
            };
            let have = current.as_ref().map_or(0, |c| c.revision);
            if record.revision <= have {
                states.insert(key, current);
                continue;
            }
            if record.revision > have + 1 {
                self.write(&mut pending).await?;
                self.project(record).await?;
                continue;
            }
            let event = record.case_event()?;
            link_file(&self.platform, record, &event).await?;
            let next = Case::fold(current, &record.meta(), &event);
            let Some(state) = &next else {
                return Err(before_opened(record));
            };
            pending.push((state.clone(), record.clone()));
            states.insert(key, next);
        }
        self.write(&mut pending).await
    }

    /// Stores what a batch folded so far and keeps the cache in step.
    async fn write(&self, pending: &mut Vec<(Case, EventRecord)>) -> Result<(), StoreError> {
        if pending.is_empty() {
            return Ok(());
        }
        let applied = self.platform.reads.apply_cases(pending).await?;
        metrics::counter!("casewire_projector_events_total").increment(pending.len() as u64);
        if let Ok(mut cache) = self.cache.lock() {
            for ((case, _), stored) in pending.drain(..).zip(applied) {
                let key = (case.tenant.clone(), case.id);
                if stored {
                    cache.put(key, case);
                } else {
                    // Someone else moved the case on; read it fresh next time.
                    cache.pop(&key);
                }
            }
        }
        pending.clear();
        Ok(())
    }

    /// Applies one event; returns whether anything changed.
    pub async fn project(&self, record: &EventRecord) -> Result<bool, StoreError> {
        let key = (record.tenant.clone(), record.case_id);
        let mut case = match self.cached(&key, record.revision) {
            Some(case) => Some(case),
            None => self.platform.reads.get_case(&record.tenant, record.case_id).await?,
        };
        let have = case.as_ref().map_or(0, |c| c.revision);
        if record.revision <= have {
            return Ok(false);
        }
        let mut stored = true;
        if record.revision == have + 1 {
            let event = record.case_event()?;
            link_file(&self.platform, record, &event).await?;
            case = Case::fold(case, &record.meta(), &event);
            stored = self.store(case.as_ref(), record).await?;
        } else {
            // A gap: fill it from the source of truth.
            tracing::warn!(case_id = %record.case_id, have, got = record.revision, "Filling a revision gap from the event store");
            let missing = self
                .platform
                .events
                .load_after(&record.tenant, record.case_id, have)
                .await?;
            for earlier in missing.iter().filter(|e| e.revision <= record.revision) {
                let event = earlier.case_event()?;
                link_file(&self.platform, earlier, &event).await?;
                case = Case::fold(case, &earlier.meta(), &event);
                stored &= self.store(case.as_ref(), earlier).await?;
            }
        }
        let Some(case) = case else {
            // The event store had none of the missing events: nothing to
            // store or cache until they arrive.
            return Ok(false);
        };
        if let Ok(mut cache) = self.cache.lock() {
            if stored {
                cache.put(key, case);
            } else {
                // Someone else moved the case on; read it fresh next time.
                cache.pop(&key);
            }
        }
        metrics::counter!("casewire_projector_events_total").increment(1);
        Ok(stored)
    }
}

/// Keeps the files' case links in step with attachment events. Called
/// only for events the case has not seen yet (before the case is stored,
/// so a crash in between repeats an idempotent link), never for
/// redeliveries, which could re-add a link removed since.
pub(crate) async fn link_file(platform: &Platform, record: &EventRecord, event: &CaseEvent) -> Result<(), StoreError> {
    let (file, attached) = match event {
        CaseEvent::AttachmentAdded(a) => (a.file_id, true),
        CaseEvent::AttachmentRemoved(r) => (r.file_id, false),
        _ => return Ok(()),
    };
    platform
        .reads
        .link_file(&record.tenant, file, record.case_id, attached, record.time)
        .await
}

/// A case that is still not opened after one of its events has a stream
/// that does not begin with `Opened`: corrupt, and no state to store.
pub(crate) fn before_opened(record: &EventRecord) -> StoreError {
    StoreError::Corrupt(format!(
        "event {} of case {} comes before the case was opened",
        record.revision, record.case_id
    ))
}

/// Runs the projector until `shutdown`, a batch at a time: each event
/// projected in order, then one checkpoint for the batch.
pub async fn run(platform: Platform, shutdown: CancellationToken) -> anyhow::Result<()> {
    let projector = Projector::new(platform.clone());
    let max_batch = platform.config.bus.max_batch;
    consume_batches(
        &platform,
        GROUP,
        Topic::Events,
        shutdown,
        max_batch,
        |batch| {
            let (projector, platform) = (projector.clone(), platform.clone());
            async move {
                let failure = |e: StoreError| match e {
                    StoreError::Unavailable(_) => Failure::Transient(e.to_string()),
                    StoreError::Conflict { .. } | StoreError::Corrupt(_) | StoreError::Backend(_) => {
                        Failure::Permanent(e.to_string())
                    }
                };
                let records = batch
                    .iter()
                    .map(|msg| event_from_json(&msg.payload))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| Failure::Poison(format!("not an event: {e}")))?;
                let spans = casewire_runtime::telemetry::event_spans(GROUP, &batch, &records);
                projector.project_batch(&records).await.map_err(failure)?;
                drop(spans);
                match records.last() {
                    Some(last) => platform
                        .reads
                        .save_checkpoint(GROUP, last.position)
                        .await
                        .map_err(failure),
                    None => Ok(()),
                }
            }
        },
        // A dead event leaves its case behind; the next event of the case
        // fills the gap from the event store, so there is nothing to end.
        |_, _| async {},
    )
    .await
}
