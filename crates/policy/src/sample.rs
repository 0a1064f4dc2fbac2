//! Seeded random policy inputs: subjects shaped like Keycloak's (default
//! roles, several roles, queue groups, with and without a verified
//! e-mail), definitions with and without access groups, and cases of
//! either tenant: what `RegoPolicy::check_fast_path` (and so the fast
//! path's property test) compares both ways on.

use casewire_domain::definition::AccessDef;
use casewire_domain::types::{QueueName, TenantId};
use casewire_ports::{Action, DefinitionAccessMap, Resource, Subject};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const TENANTS: &[&str] = &["casewire", "globex"];
const ROLES: &[&str] = &[
    "case-admin",
    "case-manager",
    "case-worker",
    "case-viewer",
    "requester",
    "integration",
    "default-roles-casewire",
    "offline_access",
    "uma_authorization",
    "Case-Admin",
];
const GROUPS: &[&str] = &[
    "/queues/support",
    "/queues/claims",
    "/queues/it",
    "/queues/*",
    "/queues/",
    "/teams/support",
];
const USERS: &[&str] = &["alice", "bob", "carol", "dave"];
const EMAILS: &[&str] = &["alice@example.com", "bob@example.com", "ann@example.org"];
const QUEUES: &[&str] = &["support", "claims", "it", "other", "claims.motor"];
const DEFINITIONS: &[&str] = &["complaint", "claim", "it-request"];

/// Draws policy inputs from a seed.
#[derive(Debug)]
pub struct Sampler {
    rng: StdRng,
    tenants: Vec<TenantId>,
    queues: Vec<QueueName>,
}

impl Sampler {
    /// A sampler whose draws are fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Sampler {
            rng: StdRng::seed_from_u64(seed),
            tenants: TENANTS.iter().filter_map(|t| TenantId::parse(t).ok()).collect(),
            queues: QUEUES.iter().filter_map(|q| QueueName::parse(q).ok()).collect(),
        }
    }

    fn some_of(&mut self, from: &[&str], p: f64) -> Vec<String> {
        from.iter()
            .filter(|_| self.rng.gen_bool(p))
            .map(|s| (*s).to_owned())
            .collect()
    }

    fn one_of(&mut self, from: &[&str]) -> String {
        from.choose(&mut self.rng).copied().unwrap_or_default().to_owned()
    }

    fn tenant(&mut self) -> TenantId {
        self.tenants
            .choose(&mut self.rng)
            .cloned()
            .unwrap_or_else(TenantId::default_tenant)
    }

    /// A subject and its tenant's definitions.
    pub fn subject_and_definitions(&mut self) -> (Subject, DefinitionAccessMap) {
        let subject = Subject {
            sub: format!("id-{}", self.rng.gen_range(0..4)),
            username: self.one_of(USERS),
            email: self.rng.gen_bool(0.6).then(|| self.one_of(EMAILS)),
            roles: self.some_of(ROLES, 0.25),
            groups: self.some_of(GROUPS, 0.3),
            tenant: self.tenant(),
        };
        let mut definitions = DefinitionAccessMap::new();
        if self.rng.gen_bool(0.85) {
            for id in DEFINITIONS {
                if self.rng.gen_bool(0.7) {
                    let access = AccessDef {
                        view: self.some_of(GROUPS, 0.25),
                        work: self.some_of(GROUPS, 0.25),
                    };
                    definitions.insert((*id).to_owned(), access);
                }
            }
        }
        (subject, definitions)
    }

    /// Any action.
    pub fn action(&mut self) -> Action {
        Action::ALL.choose(&mut self.rng).copied().unwrap_or(Action::CaseRead)
    }

    /// A case, mostly of the subject's tenant and often related to the
    /// subject, or (sometimes) none.
    pub fn resource(&mut self, subject: &Subject) -> Option<Resource> {
        if self.rng.gen_bool(0.15) {
            return None;
        }
        let tenant = if self.rng.gen_bool(0.85) {
            subject.tenant.clone()
        } else {
            self.tenant()
        };
        let queue = self.queues.choose(&mut self.rng).cloned()?;
        let mut definitions: Vec<&str> = DEFINITIONS.to_vec();
        definitions.push("unknown");
        Some(Resource {
            tenant,
            queue,
            assignee: self.rng.gen_bool(0.6).then(|| self.one_of(USERS)),
            requester: self.rng.gen_bool(0.6).then(|| self.one_of(EMAILS)),
            created_by: self.one_of(USERS),
            definition: self.one_of(&definitions),
            stage: "triage".to_owned(),
            confidential: self.rng.gen_bool(0.3),
        })
    }
}
