//! One decision: load, decide, report. No side effects besides the cache.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use casewire_domain::types::TenantId;
use casewire_domain::{Case, CaseCommand, CaseDefinition, CaseEvent, Decision, DomainError};
use casewire_ports::{CommandEnvelope, EventStore, ReadStore, StoreError};
use lru::LruCache;
use uuid::Uuid;

/// A decision and what it was made against.
#[derive(Debug, Clone)]
pub struct Decided {
    /// The case before the command; `None` before it is opened.
    pub case: Option<Case>,
    pub definition: Arc<CaseDefinition>,
    pub events: Vec<CaseEvent>,
}

impl Decided {
    /// The revision the events append to: 0 for a case not opened yet.
    pub fn revision(&self) -> u64 {
        self.case.as_ref().map_or(0, |c| c.revision)
    }
}

/// Recently seen case states. Streams only grow, so a cached state plus
/// the events after its revision is always the current state: the cache
/// saves replaying long streams, and is never a source of staleness. It is
/// bounded by the cases' weight in bytes, not their number: ten thousand
/// cases with two thousand comments each would be gigabytes.
///
/// It also keeps the definition versions the cases use: a version never
/// changes once imported, so a cached one is never stale, and its data
/// schema is compiled once instead of on every open.
#[derive(Debug)]
pub struct CaseCache {
    inner: Mutex<Weighed>,
    definitions: Mutex<LruCache<(TenantId, String, u32), Arc<CaseDefinition>>>,
}

/// Definition versions kept: every version in use of a large tenant.
const DEFINITIONS_KEPT: usize = 1024;

#[derive(Debug)]
struct Weighed {
    cases: LruCache<(TenantId, Uuid), (Case, usize)>,
    weight: usize,
    budget: usize,
}

impl Weighed {
    fn put(&mut self, key: (TenantId, Uuid), case: Case) {
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
            definitions: Mutex::new(LruCache::new(
                NonZeroUsize::new(DEFINITIONS_KEPT).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }

    /// A definition: version `version`, or the newest when `None`. A given
    /// version comes from the cache after its first load; the newest is
    /// always asked of the store (an import anywhere may have made a newer
    /// one), and then shared with the cached copy of that version.
    pub async fn definition(
        &self,
        reads: &dyn ReadStore,
        tenant: &TenantId,
        id: &str,
        version: Option<u32>,
    ) -> Result<Option<Arc<CaseDefinition>>, StoreError> {
        if let Some(v) = version {
            let key = (tenant.clone(), id.to_owned(), v);
            if let Some(found) = self.definitions.lock().ok().and_then(|mut d| d.get(&key).cloned()) {
                return Ok(Some(found));
            }
        }
        let Some(loaded) = reads.get_definition(tenant, id, version).await? else {
            return Ok(None);
        };
        let key = (tenant.clone(), id.to_owned(), loaded.version);
        let Ok(mut kept) = self.definitions.lock() else {
            return Ok(Some(Arc::new(loaded)));
        };
        Ok(Some(kept.get_or_insert(key, || Arc::new(loaded)).clone()))
    }

    /// How many cases it holds and what they weigh.
    pub fn usage(&self) -> (usize, usize) {
        self.inner.lock().map_or((0, 0), |w| (w.cases.len(), w.weight))
    }

    /// The current state of a case: cached state + newer events; `None`
    /// while it is not opened.
    pub async fn current(
        &self,
        events: &dyn EventStore,
        tenant: &TenantId,
        case_id: Uuid,
    ) -> Result<Option<Case>, StoreError> {
        let key = (tenant.clone(), case_id);
        let mut case = self
            .inner
            .lock()
            .ok()
            .and_then(|mut c| c.cases.get(&key).map(|(case, _)| case.clone()));
        let revision = case.as_ref().map_or(0, |c| c.revision);
        for record in events.load_after(tenant, case_id, revision).await? {
            case = Case::fold(case, &record.meta(), &record.case_event()?);
        }
        if let Some(case) = &case
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
    decide_on(case, reads, cache, envelope).await
}

/// [`decide`] against a given state of the case (`None`: not opened),
/// for callers that hold newer state than the store (a batch deciding
/// several commands of one case before appending any).
pub async fn decide_on(
    case: Option<Case>,
    reads: &dyn ReadStore,
    cache: &CaseCache,
    envelope: &CommandEnvelope,
) -> Result<Result<Decided, DomainError>, StoreError> {
    let definition = match (&envelope.command, &case) {
        (CaseCommand::Open(open), _) => {
            cache
                .definition(reads, &envelope.tenant, &open.definition, None)
                .await?
        }
        (_, Some(case)) => {
            cache
                .definition(
                    reads,
                    &envelope.tenant,
                    &case.definition_id,
                    Some(case.definition_version),
                )
                .await?
        }
        (_, None) => return Ok(Err(DomainError::NotFound)),
    };
    let Some(definition) = definition else {
        let id = match (&envelope.command, &case) {
            (CaseCommand::Open(open), _) => open.definition.clone(),
            (_, Some(case)) => format!("{}@{}", case.definition_id, case.definition_version),
            (_, None) => return Ok(Err(DomainError::NotFound)),
        };
        return Ok(Err(DomainError::invalid(
            "definition",
            format!("unknown case definition '{id}'"),
        )));
    };
    let result = Case::decide(
        case.as_ref(),
        &envelope.command,
        &Decision {
            definition: &definition,
            actor: &envelope.actor,
            key: envelope.case_key.as_ref(),
            // The clock is read here, outside the domain; the events carry
            // the absolute times it yields, so a replay needs no clock.
            now: chrono::Utc::now(),
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

    use casewire_domain::CaseStatus;
    use casewire_domain::types::{CaseKey, QueueName};

    fn case_of(body_len: usize) -> Case {
        Case {
            id: Uuid::now_v7(),
            tenant: tenant(),
            key: CaseKey::parse("CMP-000001").unwrap(),
            definition_id: "complaint".into(),
            definition_version: 1,
            title: String::new(),
            description: "x".repeat(body_len),
            data: Default::default(),
            stage: "new".into(),
            status: CaseStatus::Open,
            priority: "normal".into(),
            queue: QueueName::parse("support").unwrap(),
            assignee: None,
            requester: None,
            tags: vec![],
            links: vec![],
            comments: vec![],
            attachments: vec![],
            tasks: vec![],
            mail: Default::default(),
            sla: Vec::new(),
            resolution: None,
            confidential: false,
            created_by: String::new(),
            created_at: None,
            updated_at: None,
            closed_at: None,
            revision: 1,
        }
    }

    fn tenant() -> TenantId {
        TenantId::parse("t").unwrap()
    }

    #[test]
    fn the_cache_is_bounded_by_weight_not_count() {
        let cache = CaseCache::new(100_000);
        let mut inner = cache.inner.lock().unwrap();
        for _ in 0..1_000 {
            let case = case_of(10_000);
            inner.put((tenant(), case.id), case);
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
        inner.put((tenant(), id), huge);
        assert!(inner.cases.peek(&(tenant(), id)).is_none());
        for _ in 0..1_000 {
            let case = case_of(0);
            inner.put((tenant(), case.id), case);
        }
        assert!(inner.cases.len() > 100, "light cases: many more fit");
    }

    #[tokio::test]
    async fn a_definition_version_is_loaded_once_and_the_newest_is_always_asked() {
        use casewire_ports::DefinitionStore as _;
        let dir = tempfile::tempdir().unwrap();
        let reads =
            casewire_sqlite::SqliteReadStore::open(&dir.path().join("read.db"), casewire_sqlite::Durability::Normal)
                .unwrap();
        let t = tenant();
        let yaml = "id: t\nname: T\nkeyPrefix: TT\nschema: {type: object, required: [a]}\nstages: [{id: new}]\ninitialStage: new\npriorities: [{id: normal}]\ndefaultPriority: normal\ndefaultQueue: support\n";
        let def = CaseDefinition::parse_yaml(yaml).unwrap();
        reads.put_definition(&t, &def).await.unwrap();
        let cache = CaseCache::default();

        let first = cache.definition(&reads, &t, "t", Some(1)).await.unwrap().unwrap();
        let again = cache.definition(&reads, &t, "t", Some(1)).await.unwrap().unwrap();
        assert!(Arc::ptr_eq(&first, &again), "one load, one compiled schema, shared");
        let newest = cache.definition(&reads, &t, "t", None).await.unwrap().unwrap();
        assert!(
            Arc::ptr_eq(&first, &newest),
            "the newest is the cached copy of its version"
        );
        assert!(
            first.validate_data(&serde_json::json!({})).is_err(),
            "the schema applies"
        );

        // A new import: the newest is asked of the store, never cached.
        let mut changed = def;
        changed.name = "T v2".into();
        reads.put_definition(&t, &changed).await.unwrap();
        let newest = cache.definition(&reads, &t, "t", None).await.unwrap().unwrap();
        assert_eq!((newest.version, newest.name.as_str()), (2, "T v2"));
        assert!(cache.definition(&reads, &t, "nope", None).await.unwrap().is_none());
    }
}
