//! Authorization: every handler asks the policy (ARCHITECTURE.md §6) through
//! these helpers, so the answers are uniform — a case the caller may not see
//! is 404 (its existence never leaks, least of all across tenants), a denied
//! action on a visible case is 403 `CW-FORBIDDEN`.

use casewire_domain::types::TenantId;
use std::time::Instant;

use casewire_domain::command::Visibility;
use casewire_domain::{Case, ErrorCode};
use casewire_oidc::Principal;
use casewire_ports::{Action, Decision, PolicyError, Resource, Subject, VisibilityFilter};
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// Reading internal comments (with a case), or searching and streaming them
/// at all (without one).
pub const READ_INTERNAL: Action = Action::CaseCommentReadInternal;

/// The policy's view of the caller.
pub fn subject(p: &Principal) -> Subject {
    p.subject()
}

impl From<PolicyError> for ApiError {
    fn from(e: PolicyError) -> Self {
        match e {
            PolicyError::Unavailable(_) => {
                tracing::warn!(error = %e, "Policy engine unavailable");
                ApiError::new(
                    ErrorCode::Unavailable,
                    "the policy engine is unavailable; retry shortly",
                )
            }
            PolicyError::Invalid(_) => ApiError::internal(&e),
        }
    }
}

pub fn forbidden(action: Action) -> ApiError {
    ApiError::new(ErrorCode::Forbidden, format!("the policy does not allow you {action}"))
        .with_details(serde_json::json!({"action": action}))
}

/// Asks the policy, and records how long that took.
pub async fn decide(
    state: &AppState,
    who: &Principal,
    action: Action,
    resource: Option<&Resource>,
) -> Result<Decision, ApiError> {
    let definitions = state.access.of(&*state.platform.reads, &who.tenant).await?;
    let started = Instant::now();
    let decision = state.policy.decide(&subject(who), &definitions, action, resource).await;
    metrics::histogram!("casewire_policy_evaluation_seconds", "kind" => "decision")
        .record(started.elapsed().as_secs_f64());
    let decision = decision?;
    tracing::debug!(
        action = %action,
        allow = decision.allow,
        visible = decision.visible,
        "Policy decision"
    );
    Ok(decision)
}

/// Whether a tenant-wide action (no case) is allowed.
pub async fn allowed(state: &AppState, who: &Principal, action: Action) -> Result<bool, ApiError> {
    Ok(decide(state, who, action, None).await?.allow)
}

/// Requires a tenant-wide action: 403 when denied.
pub async fn require(state: &AppState, who: &Principal, action: Action) -> Result<(), ApiError> {
    if allowed(state, who, action).await? {
        Ok(())
    } else {
        Err(forbidden(action))
    }
}

/// Requires `action` on `case`: 404 when the caller may not see it, 403
/// when they see it but may not do this.
pub async fn authorize(state: &AppState, who: &Principal, action: Action, case: &Case) -> Result<(), ApiError> {
    let d = decide(state, who, action, Some(&Resource::of(case))).await?;
    if !d.visible || case.tenant != who.tenant {
        return Err(ApiError::not_found("case"));
    }
    if !d.allow {
        return Err(forbidden(action));
    }
    Ok(())
}

/// The cases the caller may see, for lists and streams.
pub async fn filter(state: &AppState, who: &Principal) -> Result<VisibilityFilter, ApiError> {
    let definitions = state.access.of(&*state.platform.reads, &who.tenant).await?;
    let started = Instant::now();
    let filter = state.policy.filter(&subject(who), &definitions).await;
    metrics::histogram!("casewire_policy_evaluation_seconds", "kind" => "filter")
        .record(started.elapsed().as_secs_f64());
    let filter = filter?;
    // The policy names the tenant; one that named another would be a
    // policy bug, and data never crosses tenants whatever the policy says.
    if filter.tenant != who.tenant {
        return Err(ApiError::internal(&format!(
            "the policy's filter names tenant '{}' for a subject of '{}'",
            filter.tenant, who.tenant
        )));
    }
    Ok(filter)
}

/// Whether a case detail holds anything [`hide_internal_comments`] would
/// remove (most cases do not: then there is nothing to decide).
pub fn has_internal(case: &Case) -> bool {
    !case.tasks.is_empty() || !case.sla.is_empty() || case.comments.iter().any(|c| c.visibility != Visibility::Public)
}

/// Removes what the caller may not read from a case detail: internal
/// comments, the tasks and the SLA records (see `is_internal_comment`).
pub fn hide_internal_comments(case: &mut Case) {
    case.comments.retain(|c| c.visibility == Visibility::Public);
    case.tasks.clear();
    case.sla.clear();
}

pub use casewire_application::is_internal_comment;

/// The current state of a case from the event log (never behind, unlike
/// the projection), or 404.
pub async fn current_case(state: &AppState, tenant: &TenantId, id: Uuid) -> Result<Case, ApiError> {
    let case = state.cases.current(&*state.platform.events, tenant, id).await?;
    case.ok_or_else(|| ApiError::not_found("case"))
}
