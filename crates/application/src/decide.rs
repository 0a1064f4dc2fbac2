//! One decision: load, decide, report. No side effects besides the cache.

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
/// saves replaying long streams, and is never a source of staleness. It is
/// bounded by the cases' weight in bytes, not their number: ten thousand
/// cases with two thousand comments each would be gigabytes.
#[derive(Debug)]
pub struct CaseCache {
    inner: Mutex<Weighed>,
}

#[derive(Debug)]
struct Weighed {
    cases: LruCache<(String, Uuid), (Case, usize)>,
    weight: usize,
    budget: usize,
}

impl Weighed {
    fn put(&mut self, key: (String, Uuid), case: Case) {
        let weight = case.weight();
        if weight > self.budget {
            return;
        }
        if let Some((_, old)) = self.cases.put(key, (case, weight)) {
            self.weight -= old;
        }
        self.weight += weight;
        while self.weight > self.budget {
            match self.cases.pop_lru() {
                Some((_, (_, w))) => self.weight -= w,
                None => break,
            }
        }
    }
}

/// What the default cache may hold, in bytes.
pub const DEFAULT_CACHE_BYTES: usize = 64 * 1024 * 1024;

impl CaseCache {
    /// A cache of cases weighing at most `budget` bytes in all.
    pub fn new(budget: usize) -> Self {
        CaseCache {
            inner: Mutex::new(Weighed {
                cases: LruCache::unbounded(),
                weight: 0,
                budget,
            }),
        }
    }

    /// How many cases it holds and what they weigh.
    pub fn usage(&self) -> (usize, usize) {
        self.inner.lock().map_or((0, 0), |w| (w.cases.len(), w.weight))
    }

    /// The current state of a case: cached state + newer events.
    pub async fn current(&self, events: &dyn EventStore, tenant: &str, case_id: Uuid) -> Result<Case, StoreError> {
        let key = (tenant.to_owned(), case_id);
        let mut case = self
            .inner
            .lock()
            .ok()
            .and_then(|mut c| c.cases.get(&key).map(|(case, _)| case.clone()))
            .unwrap_or_default();
        for record in events.load_after(tenant, case_id, case.revision).await? {
            case.apply(&record.meta(), &record.case_event()?);
        }
        if case.exists()
            && let Ok(mut c) = self.inner.lock()
        {
            // Keep the newest state when two callers race.
            if c.cases.peek(&key).is_none_or(|(old, _)| old.revision < case.revision) {
                c.put(key, case.clone());
            }
        }
        Ok(case)
    }
}

impl Default for CaseCache {
    fn default() -> Self {
        CaseCache::new(DEFAULT_CACHE_BYTES)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn case_of(body_len: usize) -> Case {
        Case {
            id: Uuid::now_v7(),
            description: "x".repeat(body_len),
            revision: 1,
            ..Case::default()
        }
    }

    #[test]
    fn the_cache_is_bounded_by_weight_not_count() {
        let cache = CaseCache::new(100_000);
        let mut inner = cache.inner.lock().unwrap();
        for _ in 0..1_000 {
            let case = case_of(10_000);
            inner.put(("t".into(), case.id), case);
        }
        assert!(inner.weight <= 100_000, "{}", inner.weight);
        assert!(
            (5..=10).contains(&inner.cases.len()),
            "{} heavy cases",
            inner.cases.len()
        );
        let sum: usize = inner.cases.iter().map(|(_, (_, w))| *w).sum();
        assert_eq!(sum, inner.weight, "the running total is exact");
        // A case heavier than the whole budget is not cached at all.
        let huge = case_of(200_000);
        let id = huge.id;
        inner.put(("t".into(), id), huge);
        assert!(inner.cases.peek(&("t".to_owned(), id)).is_none());
        for _ in 0..1_000 {
            let case = case_of(0);
            inner.put(("t".into(), case.id), case);
        }
        assert!(inner.cases.len() > 100, "light cases: many more fit");
    }
}
