//! One decision: load, decide, report. No side effects besides the cache.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use casewire_domain::types::CaseKey;
use casewire_domain::{Case, CaseCommand, CaseDefinition, CaseEvent, Decision, DomainError};
use casewire_ports::{CommandEnvelope, EventStore, ReadStore, StoreError};
use lru::LruCache;
use uuid::Uuid;

/// A decision and what it was made against.
#[derive(Debug, Clone)]
pub struct Decided {
    /// The case before the command.
    pub case: Case,
    pub definition: CaseDefinition,
    pub events: Vec<CaseEvent>,
}

/// Recently seen case states. Streams only grow, so a cached state plus
/// the events after its revision is always the current state: the cache
/// saves replaying long streams, and is never a source of staleness.
#[derive(Debug)]
pub struct CaseCache {
    inner: Mutex<LruCache<(String, Uuid), Case>>,
}

impl CaseCache {
    /// A cache of at most `capacity` cases.
    pub fn new(capacity: usize) -> Self {
        CaseCache {
            inner: Mutex::new(LruCache::new(NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN))),
        }
    }

    /// The current state of a case: cached state + newer events.
    pub async fn current(&self, events: &dyn EventStore, tenant: &str, case_id: Uuid) -> Result<Case, StoreError> {
        let key = (tenant.to_owned(), case_id);
        let mut case = self
            .inner
            .lock()
            .ok()
            .and_then(|mut c| c.get(&key).cloned())
            .unwrap_or_default();
        for record in events.load_after(tenant, case_id, case.revision).await? {
            case.apply(&record.meta(), &record.case_event()?);
        }
        if case.exists()
            && let Ok(mut c) = self.inner.lock()
        {
            // Keep the newest state when two callers race.
            if c.peek(&key).is_none_or(|old| old.revision < case.revision) {
                c.put(key, case.clone());
            }
        }
        Ok(case)
    }
}

impl Default for CaseCache {
    fn default() -> Self {
        CaseCache::new(10_000)
    }
}

/// Loads the case and its definition and runs the command's rules. The
/// outer error is infrastructure; the inner one is the domain's rejection.
pub async fn decide(
    events: &dyn EventStore,
    reads: &dyn ReadStore,
    cache: &CaseCache,
    envelope: &CommandEnvelope,
) -> Result<Result<Decided, DomainError>, StoreError> {
    let case = cache.current(events, &envelope.tenant, envelope.case_id).await?;
    let definition = match (&envelope.command, case.exists()) {
        (CaseCommand::Open(open), _) => reads.get_definition(&envelope.tenant, &open.definition, None).await?,
        (_, true) => {
            reads
                .get_definition(&envelope.tenant, &case.definition_id, Some(case.definition_version))
                .await?
        }
        (_, false) => return Ok(Err(DomainError::NotFound)),
    };
    let Some(definition) = definition else {
        let id = match &envelope.command {
            CaseCommand::Open(open) => open.definition.clone(),
            _ => format!("{}@{}", case.definition_id, case.definition_version),
        };
        return Ok(Err(DomainError::invalid(
            "definition",
            format!("unknown case definition '{id}'"),
        )));
    };
    let key = match &envelope.case_key {
        Some(k) => match CaseKey::parse(k) {
            Ok(k) => Some(k),
            Err(e) => return Ok(Err(e)),
        },
        None => None,
    };
    let result = case.handle(
        &envelope.command,
        &Decision {
            definition: &definition,
            actor: &envelope.actor,
            key: key.as_ref(),
        },
    );
    Ok(result.map(|events| Decided {
        case,
        definition,
        events,
    }))
}
