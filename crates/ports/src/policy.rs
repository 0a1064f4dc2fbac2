//! The policy port: who may see a case, who may do what, and the filter
//! that lists and streams apply. One policy answers all three, so a list
//! can never show a case whose detail would be refused.

use std::collections::BTreeMap;

use async_trait::async_trait;
use casewire_domain::types::{QueueName, TenantId};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The caller, as the policy sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Subject {
    pub sub: String,
    pub username: String,
    /// A verified e-mail address only (`email_verified: true`); absent, not
    /// `null`, when there is none, so a rule can never compare against null.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub roles: Vec<String>,
    pub groups: Vec<String>,
    pub tenant: TenantId,
}

/// The case an action is about (absent for tenant-wide actions).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    pub tenant: TenantId,
    pub queue: QueueName,
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
///
/// A field is either absent (no constraint) or a value: a policy answering
/// `null` for a field (say, the e-mail of a token that has none) is an
/// invalid answer, never "match anything". Serde's `Option` would read
/// `null` as `None`, so every field goes through [`present`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Clause {
    /// The case's queue is one of these. Plain strings, as the policy
    /// answers them: a name that is no valid queue matches no case.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub queue: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub confidential: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub assignee: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub requester: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub created_by: Option<String>,
    /// The case's definition is one of these.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub definition: Option<Vec<String>>,
}

/// Deserializes a field that is present: its value, never `null`.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

impl Clause {
    /// Whether a case matches this clause (for filtering in memory, e.g. streams).
    pub fn matches(&self, r: &Resource) -> bool {
        self.queue
            .as_ref()
            .is_none_or(|q| q.iter().any(|q| q == r.queue.as_str()))
            && self.confidential.is_none_or(|c| c == r.confidential)
            && self.assignee.as_ref().is_none_or(|a| r.assignee.as_ref() == Some(a))
            && self.requester.as_ref().is_none_or(|e| r.requester.as_ref() == Some(e))
            && self.created_by.as_ref().is_none_or(|c| *c == r.created_by)
            && self.definition.as_ref().is_none_or(|d| d.contains(&r.definition))
    }
}

/// The cases a subject may see: those of `tenant` matching any clause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisibilityFilter {
    pub tenant: TenantId,
    pub clauses: Vec<Clause>,
}

impl VisibilityFilter {
    /// Whether a case passes the filter.
    pub fn admits(&self, r: &Resource) -> bool {
        r.tenant == self.tenant && self.clauses.iter().any(|c| c.matches(r))
    }
}

/// The access groups (`view`, `work`: group paths such as `/queues/claims`)
/// of every definition of a tenant, from each one's newest version, by
/// definition id: the data the policy needs to enforce definition access
/// groups, in decisions and in list filters alike.
pub type DefinitionAccessMap = BTreeMap<String, casewire_domain::definition::AccessDef>;

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

/// The input of every policy evaluation: `{subject, action, resource,
/// definitions}` (action and resource only for decisions).
pub fn policy_input(
    subject: &Subject,
    definitions: &DefinitionAccessMap,
    action: Option<crate::Action>,
    resource: Option<&Resource>,
) -> serde_json::Value {
    let mut input = serde_json::json!({"subject": subject, "definitions": definitions});
    if let Some(action) = action {
        input["action"] = serde_json::Value::from(action.as_str());
        input["resource"] = serde_json::to_value(resource).unwrap_or_default();
    }
    input
}

/// Decides actions and yields visibility filters.
#[async_trait]
pub trait PolicyEngine: Send + Sync + 'static {
    /// Decides whether `subject` may do `action` on `resource`, given the
    /// access groups of the tenant's definitions.
    async fn decide(
        &self,
        subject: &Subject,
        definitions: &DefinitionAccessMap,
        action: crate::Action,
        resource: Option<&Resource>,
    ) -> Result<Decision, PolicyError>;
    /// The filter of the cases `subject` may see.
    async fn filter(
        &self,
        subject: &Subject,
        definitions: &DefinitionAccessMap,
    ) -> Result<VisibilityFilter, PolicyError>;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_null_clause_field_is_refused_not_read_as_no_constraint() {
        for field in [
            "queue",
            "confidential",
            "assignee",
            "requester",
            "createdBy",
            "definition",
        ] {
            let answer = serde_json::json!({ field: null, "confidential": false });
            let answer = if field == "confidential" {
                serde_json::json!({ "confidential": null })
            } else {
                answer
            };
            assert!(
                serde_json::from_value::<Clause>(answer.clone()).is_err(),
                "{answer} must not deserialize"
            );
        }
        let absent: Clause = serde_json::from_value(serde_json::json!({})).unwrap();
        assert_eq!(absent, Clause::default());
        let set: Clause = serde_json::from_value(serde_json::json!({"requester": "a@b.c"})).unwrap();
        assert_eq!(set.requester.as_deref(), Some("a@b.c"));
    }

    #[test]
    fn a_subject_without_email_has_no_email_field_at_all() {
        let s = Subject {
            sub: "s".into(),
            username: "u".into(),
            email: None,
            roles: vec![],
            groups: vec![],
            tenant: TenantId::parse("t").unwrap(),
        };
        let v = serde_json::to_value(&s).unwrap();
        assert!(v.get("email").is_none(), "{v}");
    }
}
