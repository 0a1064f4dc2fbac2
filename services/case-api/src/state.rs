//! Shared state of the API workers, and the outcome listener that wakes
//! requests waiting with `Prefer: wait`.

use casewire_domain::types::TenantId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use casewire_oidc::{DevIssuer, JwksVerifier};
use casewire_ports::{
    BlobStore, CommandOutcome, DefinitionAccessMap, PolicyEngine, ReadStore, StartFrom, StoreError, Topic,
};
use casewire_runtime::Platform;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Requests waiting for a command's outcome.
#[derive(Debug, Default, Clone)]
pub struct Waiters {
    inner: Arc<Mutex<HashMap<Uuid, Vec<oneshot::Sender<CommandOutcome>>>>>,
}

impl Waiters {
    /// Registers interest in a command's outcome. Call before publishing it.
    pub fn register(&self, command_id: Uuid) -> oneshot::Receiver<CommandOutcome> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut map) = self.inner.lock() {
            map.entry(command_id).or_default().push(tx);
        }
        rx
    }

    /// Forgets a command (the waiter gave up).
    pub fn forget(&self, command_id: Uuid) {
        if let Ok(mut map) = self.inner.lock() {
            map.remove(&command_id);
        }
    }

    fn deliver(&self, outcome: &CommandOutcome) {
        let senders = self.inner.lock().ok().and_then(|mut m| m.remove(&outcome.command_id));
        for tx in senders.into_iter().flatten() {
            let _ = tx.send(outcome.clone());
        }
    }
}

/// Open streams per caller (tenant, subject), so one token cannot hold
/// every connection of the process.
#[derive(Debug, Default, Clone)]
pub struct StreamSlots {
    open: Arc<Mutex<HashMap<(TenantId, String), usize>>>,
}

/// One open stream; its slot is freed when the stream is dropped.
#[derive(Debug)]
pub struct StreamSlot {
    slots: StreamSlots,
    key: (TenantId, String),
}

impl StreamSlots {
    /// Takes a slot for `key`, unless it already holds `max`.
    pub fn take(&self, key: (TenantId, String), max: usize) -> Option<StreamSlot> {
        let mut open = self.open.lock().ok()?;
        let held = open.entry(key.clone()).or_default();
        if *held >= max {
            return None;
        }
        *held += 1;
        Some(StreamSlot {
            slots: self.clone(),
            key,
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.slots.open.lock()
            && let Some(held) = open.get_mut(&self.key)
        {
            *held = held.saturating_sub(1);
            if *held == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// The access groups of each tenant's definitions, as the policy needs
/// them on every decision. Kept for a few seconds: an import in this
/// process replaces its tenant's entry at once; one in another process is
/// seen within `TTL` (until then that definition's restricted cases stay
/// hidden from group-based staff, never shown).
#[derive(Debug, Default, Clone)]
pub struct AccessCache {
    tenants: Arc<Mutex<HashMap<TenantId, Fetched>>>,
}

/// A tenant's map and when it was read.
type Fetched = (std::time::Instant, Arc<DefinitionAccessMap>);

impl AccessCache {
    const TTL: std::time::Duration = std::time::Duration::from_secs(5);

    /// The map of `tenant`, from the cache or the read store.
    pub async fn of(&self, reads: &dyn ReadStore, tenant: &TenantId) -> Result<Arc<DefinitionAccessMap>, StoreError> {
        if let Some((at, map)) = self.tenants.lock().ok().and_then(|t| t.get(tenant).cloned())
            && at.elapsed() < Self::TTL
        {
            return Ok(map);
        }
        self.refresh(reads, tenant).await
    }

    /// Reads `tenant`'s definitions again (after an import).
    pub async fn refresh(
        &self,
        reads: &dyn ReadStore,
        tenant: &TenantId,
    ) -> Result<Arc<DefinitionAccessMap>, StoreError> {
        let map: DefinitionAccessMap = reads
            .list_definitions(tenant)
            .await?
            .into_iter()
            .map(|d| (d.id, d.access))
            .collect();
        let map = Arc::new(map);
        if let Ok(mut tenants) = self.tenants.lock() {
            tenants.insert(tenant.clone(), (std::time::Instant::now(), map.clone()));
        }
        Ok(map)
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub platform: Platform,
    pub verifier: JwksVerifier,
    /// Decides every action and yields the visibility filter.
    pub policy: Arc<dyn PolicyEngine>,
    /// File bytes (local disk or S3).
    pub blobs: Arc<dyn BlobStore>,
    pub dev_issuer: Option<DevIssuer>,
    pub waiters: Waiters,
    pub streams: StreamSlots,
    /// `/api/v1/openapi.json`, with this configuration's limits.
    pub openapi: Arc<serde_json::Value>,
    /// Definition access groups, for the policy.
    pub access: AccessCache,
    /// Case states for the early check of incoming commands.
    pub cases: Arc<casewire_application::CaseCache>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("platform", &self.platform)
            .field("verifier", &self.verifier)
            .finish_non_exhaustive()
    }
}

/// Listens on `casewire.outcomes` and wakes waiting requests. Each API
/// process reads every outcome (no group), starting from now.
pub async fn listen_for_outcomes(state: AppState, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut sub = state
        .platform
        .bus
        .subscribe(None, Topic::Outcomes, StartFrom::Latest)
        .await?;
    loop {
        let msg = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            msg = sub.next() => msg,
        };
        match msg {
            Ok(msg) => match CommandOutcome::from_json(&msg.payload) {
                Ok(outcome) => state.waiters.deliver(&outcome),
                Err(e) => tracing::warn!(error = %e, "Ignored an unreadable outcome"),
            },
            Err(e) => {
                tracing::warn!(error = %e, "Outcome listener lost the bus; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
    }
}
