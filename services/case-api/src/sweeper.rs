//! Removes uploaded files that no case attached within
//! `storage.unattached_ttl_secs`. A file is first claimed in the read store
//! (after which no attach can pin it), then its bytes are deleted, then its
//! record; a sweep that dies midway is finished by the next one.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::routes::files::blob_key;
use crate::state::AppState;

/// One purge pass under the retention rule: returns how many files' bytes
/// were purged.
pub async fn purge_once(state: &AppState) -> anyhow::Result<usize> {
    let Some(after) = state.platform.config.storage.purge_detached_after_secs else {
        return Ok(0);
    };
    let cutoff = chrono::Utc::now() - chrono::Duration::seconds(i64::try_from(after).unwrap_or(i64::MAX));
    let mut purged = 0;
    loop {
        let batch = state.platform.reads.claim_detached_files(cutoff, 100).await?;
        if batch.is_empty() {
            return Ok(purged);
        }
        for file in &batch {
            state.blobs.delete(&blob_key(&file.tenant, file.id)).await?;
            state.platform.reads.mark_purged(&file.tenant, file.id).await?;
            tracing::info!(file_id = %file.id, tenant = %file.tenant, "Purged the bytes of a file no case holds (retention rule)");
            purged += 1;
        }
    }
}

/// One pass: returns how many files were removed.
pub async fn sweep_once(state: &AppState) -> anyhow::Result<usize> {
    let cfg = &state.platform.config.storage;
    let ttl = chrono::Duration::seconds(i64::try_from(cfg.unattached_ttl_secs).unwrap_or(i64::MAX));
    let cutoff = chrono::Utc::now() - ttl;
    let mut removed = 0;
    loop {
        let batch = state.platform.reads.claim_unattached_files(cutoff, 100).await?;
        if batch.is_empty() {
            return Ok(removed);
        }
        for file in &batch {
            state.blobs.delete(&blob_key(&file.tenant, file.id)).await?;
            state.platform.reads.delete_file(&file.tenant, file.id).await?;
            tracing::info!(file_id = %file.id, tenant = %file.tenant, size = file.size, "Removed a file no case attached");
            removed += 1;
        }
        metrics::counter!("casewire_files_swept_total").increment(batch.len() as u64);
    }
}

/// Sweeps every `storage.sweep_every_secs` until `shutdown`.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    let every = state.platform.config.storage.sweep_every_secs;
    if every == 0 {
        return;
    }
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(every)) => {}
        }
        if let Err(e) = sweep_once(&state).await {
            tracing::warn!(error = %e, "The file sweep failed; retrying next time");
        }
        if let Err(e) = purge_once(&state).await {
            tracing::warn!(error = %e, "The retention purge failed; retrying next time");
        }
    }
}
