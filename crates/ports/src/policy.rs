//! The policy port: who may see a case, who may do what, and the filter
//! that lists and streams apply. One policy answers all three, so a list
//! can never show a case whose detail would be refused.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The caller, as the policy sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Subject {
    pub sub: String,
    pub username: String,
    pub email: Option<String>,
    pub roles: Vec<String>,
    pub groups: Vec<String>,
    pub tenant: String,
}

/// The case an action is about (absent for tenant-wide actions).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    pub tenant: String,
    pub queue: String,
    pub assignee: Option<String>,
    /// The requester's e-mail address.
    pub requester: Option<String>,
    pub created_by: String,
    pub definition: String,
    pub stage: String,
    pub confidential: bool,
}

impl Resource {
    /// The policy's view of a case.
    pub fn of(case: &casewire_domain::Case) -> Self {
        Resource {
            tenant: case.tenant.clone(),
            queue: case.queue.clone(),
            assignee: case.assignee.clone(),
            requester: case.requester.as_ref().map(|r| r.email.as_str().to_owned()),
            created_by: case.created_by.clone(),
            definition: case.definition_id.clone(),
            stage: case.stage.clone(),
            confidential: case.confidential,
        }
    }
}

/// What the policy decided about one action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Decision {
    /// The action may be done (otherwise 403 `CW-FORBIDDEN`).
    pub allow: bool,
    /// The subject may know the case exists (otherwise 404).
    pub visible: bool,
}

/// One way a case can be visible: every field present must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Clause {
    /// The case's queue is one of these.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidential: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requester: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
}

impl Clause {
    /// Whether a case matches this clause (for filtering in memory, e.g. streams).
    pub fn matches(&self, r: &Resource) -> bool {
        self.queue.as_ref().is_none_or(|q| q.contains(&r.queue))
            && self.confidential.is_none_or(|c| c == r.confidential)
            && self.assignee.as_ref().is_none_or(|a| r.assignee.as_ref() == Some(a))
            && self.requester.as_ref().is_none_or(|e| r.requester.as_ref() == Some(e))
            && self.created_by.as_ref().is_none_or(|c| *c == r.created_by)
    }
}

/// The cases a subject may see: those of `tenant` matching any clause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisibilityFilter {
    pub tenant: String,
    pub clauses: Vec<Clause>,
}

impl VisibilityFilter {
    /// Whether a case passes the filter.
    pub fn admits(&self, r: &Resource) -> bool {
        r.tenant == self.tenant && self.clauses.iter().any(|c| c.matches(r))
    }
}

/// What a policy evaluation can fail with.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PolicyError {
    /// A remote policy server can not be reached; retrying later may work.
    #[error("policy engine unavailable: {0}")]
    Unavailable(String),
    /// The policy answered something that is not a decision or a filter.
    #[error("policy answer is invalid: {0}")]
    Invalid(String),
}

/// Decides actions and yields visibility filters.
#[async_trait]
pub trait PolicyEngine: Send + Sync + 'static {
    /// Decides whether `subject` may do `action` on `resource`.
    async fn decide(
        &self,
        subject: &Subject,
        action: &str,
        resource: Option<&Resource>,
    ) -> Result<Decision, PolicyError>;
    /// The filter of the cases `subject` may see.
    async fn filter(&self, subject: &Subject) -> Result<VisibilityFilter, PolicyError>;
}
