//! Shared state of the API workers, and the outcome listener that wakes
//! requests waiting with `Prefer: wait`.

use casewire_domain::types::TenantId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use casewire_application::AccessCache;
use casewire_oidc::Principal;
use casewire_oidc::{DevIssuer, JwksVerifier};
use casewire_ports::{BlobStore, CommandOutcome, NotificationStore, PolicyEngine, StartFrom, Topic};
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

/// Who signed in, as the notification rules need them (queue members,
/// addresses) and the policy needs them to judge what they may hear of.
/// A person is written to the directory when first seen in this process
/// or when their claims changed, not on every request.
#[derive(Debug, Default, Clone)]
pub struct PeopleSeen {
    seen: Arc<Mutex<HashMap<(TenantId, String), u64>>>,
}

impl PeopleSeen {
    /// Records `p` in the directory unless this process already did with
    /// the same claims.
    pub async fn saw(&self, store: &dyn NotificationStore, p: &Principal) {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (&p.name, &p.email, &p.roles, &p.groups).hash(&mut h);
        let fingerprint = h.finish();
        let key = (p.tenant.clone(), p.sub.clone());
        if self.seen.lock().ok().and_then(|s| s.get(&key).copied()) == Some(fingerprint) {
            return;
        }
        let person = p.person(chrono::Utc::now());
        match store.upsert_person(&person).await {
            Ok(()) => {
                if let Ok(mut s) = self.seen.lock() {
                    s.insert(key, fingerprint);
                }
            }
            // Not worth failing the request: the next one tries again.
            Err(e) => tracing::warn!(error = %e, "Could not record a person in the directory"),
        }
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
    /// The dev issuer's authorization codes and refresh tokens.
    pub dev_grants: Arc<casewire_oidc::grants::Grants>,
    pub waiters: Waiters,
    pub streams: StreamSlots,
    /// `/api/v1/openapi.json`, with this configuration's limits.
    pub openapi: Arc<serde_json::Value>,
    /// Definition access groups, for the policy.
    pub access: AccessCache,
    /// Case states for the early check of incoming commands.
    pub cases: Arc<casewire_application::CaseCache>,
    /// People seen signing in (the notification directory).
    pub people: PeopleSeen,
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
