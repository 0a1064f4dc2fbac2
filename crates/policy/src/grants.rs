//! The fast path: what the policy grants one subject, compiled by one Rego
//! evaluation of `data.casewire.authz.grants`, and decided in Rust.
//!
//! A full evaluation costs a few hundred microseconds, and every request
//! needs at least one. What the policy grants depends on the subject and the
//! definitions' access groups, which change rarely; the case only has to be
//! matched against the clauses the grants name. So the grants are
//! evaluated once per subject, definitions and policy version and kept in a
//! bounded cache, and a decision is a few clause matches.
//!
//! The grants must say what `decision` and `filter` say. Nothing in Rego
//! enforces that, so only the shipped policy, byte for byte, decides from
//! them: the property test in `tests/fast_path.rs` compares both ways on
//! 10,000 random inputs (`RegoPolicy::check_fast_path`). Any other policy
//! is evaluated in full.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use casewire_ports::{Action, Clause, Decision, DefinitionAccessMap, Resource, Subject, VisibilityFilter};
use serde::Deserialize;

pub(crate) const GRANTS: &str = "data.casewire.authz.grants";

/// Compiled grants kept per process: subjects times definition versions.
const CACHE_ENTRIES: usize = 4096;

/// What an action on a case needs besides its clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Needs {
    /// The case is visible to the subject.
    Visible,
    /// The case is in the subject's tenant.
    Tenant,
    /// Nothing: the rule does not read the case.
    Nothing,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseGrant {
    action: String,
    needs: Needs,
    clause: Clause,
}

/// The policy's `grants` for one subject, as it answers them.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Answer {
    visible: Vec<Clause>,
    without_case: Vec<String>,
    on_case: Vec<CaseGrant>,
}

/// One subject's grants, ready to decide with.
#[derive(Debug)]
pub(crate) struct Grants {
    filter: VisibilityFilter,
    /// Indexed by the action's position in [`Action::ALL`].
    without_case: Vec<bool>,
    on_case: Vec<Vec<(Needs, Clause)>>,
}

fn index(action: Action) -> usize {
    Action::ALL.iter().position(|a| *a == action).unwrap_or(usize::MAX)
}

impl Grants {
    /// Reads the policy's answer; an unknown action name is an invalid
    /// answer (a typo in the policy would otherwise deny silently).
    pub(crate) fn from_answer(subject: &Subject, value: serde_json::Value) -> Result<Self, String> {
        let answer: Answer = serde_json::from_value(value).map_err(|e| format!("{GRANTS}: {e}"))?;
        let by_name = |name: &str| {
            Action::ALL
                .iter()
                .position(|a| a.as_str() == name)
                .ok_or_else(|| format!("{GRANTS}: unknown action {name:?}"))
        };
        let mut without_case = vec![false; Action::ALL.len()];
        for name in &answer.without_case {
            without_case[by_name(name)?] = true;
        }
        let mut on_case = vec![Vec::new(); Action::ALL.len()];
        for grant in answer.on_case {
            on_case[by_name(&grant.action)?].push((grant.needs, grant.clause));
        }
        // The policy's `filter` collapses to one empty clause when one admits
        // everything; do the same, so both paths yield equal filters.
        let mut clauses = answer.visible;
        if clauses.contains(&Clause::default()) {
            clauses = vec![Clause::default()];
        }
        Ok(Grants {
            filter: VisibilityFilter {
                tenant: subject.tenant.clone(),
                clauses,
            },
            without_case,
            on_case,
        })
    }

    pub(crate) fn filter(&self) -> VisibilityFilter {
        self.filter.clone()
    }

    pub(crate) fn decide(&self, action: Action, resource: Option<&Resource>) -> Decision {
        let i = index(action);
        let Some(r) = resource else {
            return Decision {
                allow: self.without_case.get(i).copied().unwrap_or(false),
                visible: false,
            };
        };
        let visible = self.filter.admits(r);
        let same_tenant = r.tenant == self.filter.tenant;
        let allow = self.on_case.get(i).is_some_and(|grants| {
            grants.iter().any(|(needs, clause)| {
                let has = match needs {
                    Needs::Visible => visible,
                    Needs::Tenant => same_tenant,
                    Needs::Nothing => true,
                };
                has && clause.matches(r)
            })
        });
        Decision { allow, visible }
    }
}

/// The input of the `grants` rule: the subject and definitions, no case,
/// and the names of every action the API may ask about.
pub(crate) fn grants_input(subject: &Subject, definitions: &DefinitionAccessMap) -> serde_json::Value {
    let mut input = casewire_ports::policy_input(subject, definitions, None, None);
    input["resource"] = serde_json::Value::Null;
    input["actions"] = Action::ALL.iter().map(|a| a.as_str()).collect();
    input
}

/// Compiled grants by policy generation and input, least recently used
/// dropped first. The key is the input's JSON text: everything the rule
/// reads, so two subjects share an entry only when the policy cannot tell
/// them apart.
pub(crate) struct GrantsCache {
    entries: Mutex<lru::LruCache<(u64, String), Arc<Grants>>>,
}

impl GrantsCache {
    pub(crate) fn new() -> Self {
        let size = NonZeroUsize::new(CACHE_ENTRIES).unwrap_or(NonZeroUsize::MIN);
        GrantsCache {
            entries: Mutex::new(lru::LruCache::new(size)),
        }
    }

    pub(crate) fn get(&self, key: &(u64, String)) -> Option<Arc<Grants>> {
        self.entries.lock().ok()?.get(key).cloned()
    }

    pub(crate) fn put(&self, key: (u64, String), grants: Arc<Grants>) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.put(key, grants);
        }
    }
}
