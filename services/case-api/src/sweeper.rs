//! Removes uploaded files that no case attached within
//! `storage.unattached_ttl_secs`. A file is first claimed in the read store
//! (after which no attach can pin it), then its bytes are deleted, then its
//! record; a sweep that dies midway is finished by the next one.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::routes::files::{blob_key, upload_key};
use crate::state::AppState;

/// The time `secs` seconds ago; a configured age too large for the
/// calendar means "before anything", never a panic.
fn ago(secs: u64) -> chrono::DateTime<chrono::Utc> {
    let now = chrono::Utc::now();
    i64::try_from(secs)
        .ok()
        .and_then(chrono::TimeDelta::try_seconds)
        .and_then(|age| now.checked_sub_signed(age))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC)
}

/// One purge pass under the retention rule: returns how many files' bytes
/// were purged.
pub async fn purge_once(state: &AppState) -> anyhow::Result<usize> {
    let Some(after) = state.platform.config.storage.purge_detached_after_secs else {
        return Ok(0);
    };
    let cutoff = ago(after);
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
    let cutoff = ago(cfg.unattached_ttl_secs);
    let mut removed = 0;
    loop {
        let batch = state.platform.reads.claim_unattached_files(cutoff, 100).await?;
        if batch.is_empty() {
            return Ok(removed);
        }
        for file in &batch {
            state.blobs.delete(&blob_key(&file.tenant, file.id)).await?;
            // A presigned upload never completed has its bytes here.
            state.blobs.delete(&upload_key(&file.tenant, file.id)).await?;
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

#[cfg(test)]
mod tests {
    #[test]
    fn any_configured_age_is_a_time_not_a_panic() {
        for secs in [0, 60, i64::MAX as u64 / 1000, i64::MAX as u64, u64::MAX] {
            assert!(super::ago(secs) <= chrono::Utc::now(), "{secs}");
        }
    }
}
