//! What every way in shares to show events the way the REST API does: the
//! access groups the policy needs on every decision (cached per tenant),
//! and whether an event is an internal comment.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use casewire_domain::CaseEvent;
use casewire_domain::command::Visibility;
use casewire_domain::types::TenantId;
use casewire_ports::{DefinitionAccessMap, EventRecord, ReadStore, StoreError};

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

/// Whether an event is internal work: an internal comment, or any task
/// event (tasks are the organisation's work on the case, and their
/// variables and outcomes are not the requester's to read). Only callers
/// allowed `case.comment.read-internal` may see these.
pub fn is_internal_comment(record: &EventRecord) -> bool {
    match record.case_event() {
        Ok(CaseEvent::CommentAdded(c)) => c.visibility == Visibility::Internal,
        // Tasks and SLA records are staff work, like internal comments.
        Ok(e) => e.name().starts_with("task-") || e.name().starts_with("sla-") || e.name() == "incident-raised",
        Err(_) => false,
    }
}
