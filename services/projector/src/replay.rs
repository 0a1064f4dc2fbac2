//! `casewire replay`: rebuilds every projection from the event store.
//!
//! The live path writes a case's state per batch because it must be
//! readable at once; a rebuild needs it only at the end. So a replay reads
//! the log in large batches on its own task, folds every case in memory
//! (moving states, never cloning them), writes each batch's timeline
//! entries while the next batch is folded, and writes each case once, with
//! its tags and search text, when the log is done (or when more than
//! [`CASES_IN_MEMORY`] are held, to bound memory). The checkpoint is saved
//! last: a replay that dies half-way leaves none, and the projector then
//! rebuilds from position 1 on the idempotent live path.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use casewire_domain::Case;
use casewire_domain::types::TenantId;
use casewire_ports::{EventRecord, StoreError};
use casewire_runtime::Platform;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::{GROUP, before_opened, link_file};

/// Events read, folded and written per step.
const BATCH: usize = 20_000;

/// Case states held in memory before they are written out early.
const CASES_IN_MEMORY: usize = 100_000;

/// What a replay did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    pub events: u64,
    pub cases: u64,
    /// Every case replayed: what else was kept on their rows (the SLA
    /// schedule) is computed again from these.
    pub case_ids: Vec<(TenantId, Uuid)>,
    pub elapsed: Duration,
}

/// Rebuilds every projection from the event store, reporting progress
/// every `progress_every` events through `progress` (events done, head).
pub async fn replay(
    platform: &Platform,
    progress_every: u64,
    progress: impl FnMut(u64, u64),
) -> Result<ReplayReport, StoreError> {
    replay_holding(platform, CASES_IN_MEMORY, progress_every, progress).await
}

/// [`replay`] with at most about `hold` case states in memory: past that,
/// they are written out and read back when their next event comes.
pub async fn replay_holding(
    platform: &Platform,
    hold: usize,
    progress_every: u64,
    mut progress: impl FnMut(u64, u64),
) -> Result<ReplayReport, StoreError> {
    let started = Instant::now();
    let head = platform.events.head().await?;
    platform.reads.reset_projections().await?;
    let mut batches = read_batches(platform.clone(), head);
    let mut folder = Folder::new(platform.clone());
    let mut writing: Option<JoinHandle<Result<(), StoreError>>> = None;
    let (mut done, mut last_position) = (0u64, 0u64);
    while let Some(batch) = batches.recv().await {
        let batch = batch?;
        let entries = folder.fold(batch).await?;
        // The previous batch's entries were written while this one folded.
        finish(writing.take()).await?;
        let reads = platform.reads.clone();
        writing = Some(tokio::spawn(async move { reads.add_timeline(&entries).await }));
        if folder.held() > hold {
            folder.write_out().await?;
        }
        let before = done;
        done = folder.events;
        last_position = folder.last_position;
        if progress_every > 0 && done / progress_every > before / progress_every {
            progress(done, head);
        }
    }
    finish(writing).await?;
    folder.write_out().await?;
    if last_position > 0 {
        platform.reads.save_checkpoint(GROUP, last_position).await?;
    }
    Ok(ReplayReport {
        events: done,
        cases: folder.cases,
        case_ids: folder.case_ids,
        elapsed: started.elapsed(),
    })
}

/// Waits for a timeline write, if one is under way.
async fn finish(writing: Option<JoinHandle<Result<(), StoreError>>>) -> Result<(), StoreError> {
    match writing {
        Some(task) => task
            .await
            .map_err(|e| StoreError::Backend(format!("the timeline writer stopped: {e}")))?,
        None => Ok(()),
    }
}

/// Reads the log up to `head` on its own task, one batch ahead of the fold.
fn read_batches(platform: Platform, head: u64) -> mpsc::Receiver<Result<Vec<EventRecord>, StoreError>> {
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        let mut from = 1;
        loop {
            let batch = match platform.events.read_all(from, BATCH).await {
                Ok(batch) => batch,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            let Some(last) = batch.last() else {
                if from > head {
                    return;
                }
                // A position below the head is not readable yet: a store with a
                // concurrent global order (MongoDB) holds readers at a hole until
                // its writer lands or the grace period passes.
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            from = last.position + 1;
            if tx.send(Ok(batch)).await.is_err() {
                return;
            }
        }
    });
    rx
}

/// The cases folded so far.
struct Folder {
    platform: Platform,
    states: HashMap<(TenantId, Uuid), Case>,
    /// Whether states were written out early: a case missing from memory
    /// may then be in the store.
    wrote_early: bool,
    events: u64,
    cases: u64,
    case_ids: Vec<(TenantId, Uuid)>,
    last_position: u64,
}

impl Folder {
    fn new(platform: Platform) -> Self {
        Folder {
            platform,
            states: HashMap::new(),
            wrote_early: false,
            events: 0,
            cases: 0,
            case_ids: Vec::new(),
            last_position: 0,
        }
    }

    fn held(&self) -> usize {
        self.states.len()
    }

    /// Folds a batch into the states; returns the timeline entries to
    /// write: the batch's, plus any the log had skipped (a revision gap
    /// filled from the case's stream, as the live path does).
    async fn fold(&mut self, batch: Vec<EventRecord>) -> Result<Vec<EventRecord>, StoreError> {
        let mut filled = Vec::new();
        for record in &batch {
            let key = (record.tenant.clone(), record.case_id);
            let mut current = match self.states.remove(&key) {
                Some(case) => Some(case),
                None if self.wrote_early => self.platform.reads.get_case(&key.0, key.1).await?,
                None => None,
            };
            let have = current.as_ref().map_or(0, |c| c.revision);
            if record.revision > have + 1 {
                let missing = self.platform.events.load_after(&key.0, key.1, have).await?;
                for earlier in missing.into_iter().filter(|e| e.revision < record.revision) {
                    current = self.apply(current, &earlier).await?;
                    filled.push(earlier);
                }
            }
            let have = current.as_ref().map_or(0, |c| c.revision);
            if record.revision == have + 1 {
                current = self.apply(current, record).await?;
            }
            if let Some(case) = current {
                self.states.insert(key, case);
            }
            self.events += 1;
            self.last_position = record.position;
        }
        let mut entries = batch;
        entries.append(&mut filled);
        Ok(entries)
    }

    /// One event folded into its case, with the file link it implies.
    async fn apply(&mut self, case: Option<Case>, record: &EventRecord) -> Result<Option<Case>, StoreError> {
        let event = record.case_event()?;
        link_file(&self.platform, record, &event).await?;
        if case.is_none() {
            self.cases += 1;
            self.case_ids.push((record.tenant.clone(), record.case_id));
        }
        match Case::fold(case, &record.meta(), &event) {
            Some(case) => Ok(Some(case)),
            None => Err(before_opened(record)),
        }
    }

    /// Writes every held state (newer revision wins) and forgets them.
    async fn write_out(&mut self) -> Result<(), StoreError> {
        if self.states.is_empty() {
            return Ok(());
        }
        let cases: Vec<Case> = self.states.drain().map(|(_, case)| case).collect();
        self.platform.reads.put_cases(&cases).await?;
        self.wrote_early = true;
        Ok(())
    }
}
