//! Rejections of the domain. Each has a stable [`ErrorCode`] that clients
//! may match on, and that code fixes its HTTP status.

use thiserror::Error;

use crate::error_code::ErrorCode;

/// Why a command was rejected or a definition refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    /// A field failed its format or range rule.
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    /// The case data does not satisfy the definition's JSON Schema.
    #[error("case data violates the schema: {}", .errors.join("; "))]
    SchemaViolation { errors: Vec<String> },
    /// The case does not exist.
    #[error("case not found")]
    NotFound,
    /// The case was already opened.
    #[error("case already exists")]
    AlreadyExists,
    /// The stage graph has no edge from the current stage to the target.
    #[error("transition from '{from}' to '{to}' is not allowed")]
    TransitionNotAllowed { from: String, to: String },
    /// The stage is not part of the definition.
    #[error("unknown stage '{0}'")]
    UnknownStage(String),
    /// The priority is not part of the definition.
    #[error("unknown priority '{0}'")]
    UnknownPriority(String),
    /// The resolution code is not part of the definition.
    #[error("unknown resolution code '{0}'")]
    UnknownResolution(String),
    /// A reply names a parent comment that does not exist.
    #[error("unknown parent comment '{0}'")]
    UnknownComment(String),
    /// Closed cases only accept `reopen`.
    #[error("case is closed; reopen it first")]
    CaseClosed,
    /// The command needs an open case, and this one is resolved.
    #[error("case is {status}; this needs an open case")]
    CaseNotOpen { status: String },
    /// `close` needs a resolved case.
    #[error("case must be resolved before it is closed")]
    CaseNotResolved,
    /// `reopen` needs a resolved or closed case.
    #[error("case is already open")]
    CaseAlreadyOpen,
    /// The command would change nothing (assigning the current assignee...).
    #[error("{0}")]
    NoChange(String),
    /// The definition itself is malformed.
    #[error("invalid case definition: {0}")]
    InvalidDefinition(String),
    /// The case holds as many of something (comments, tags, links,
    /// attachments) as a case may.
    #[error("a case holds at most {limit} {what}")]
    LimitReached { what: &'static str, limit: usize },
    /// The case has no task with this id.
    #[error("unknown task '{0}'")]
    UnknownTask(String),
    /// The task is not in a state that allows the command (ended, or
    /// claimed by someone, or with an open incident).
    #[error("task {task} is {state}")]
    TaskState { task: String, state: String },
    /// Another worker or person holds the task (or nobody locked it, for
    /// a worker's complete, fail or extend).
    #[error("task {task} is held by {}", .worker.as_deref().unwrap_or("no worker"))]
    TaskLocked { task: String, worker: Option<String> },
}

impl DomainError {
    /// The stable code clients match on.
    pub fn code(&self) -> ErrorCode {
        match self {
            DomainError::Validation { .. } => ErrorCode::Validation,
            DomainError::SchemaViolation { .. } => ErrorCode::SchemaViolation,
            DomainError::NotFound => ErrorCode::NotFound,
            DomainError::AlreadyExists => ErrorCode::Conflict,
            DomainError::TransitionNotAllowed { .. } => ErrorCode::TransitionNotAllowed,
            DomainError::UnknownStage(_) => ErrorCode::UnknownStage,
            DomainError::UnknownPriority(_) => ErrorCode::UnknownPriority,
            DomainError::UnknownResolution(_) => ErrorCode::UnknownResolution,
            DomainError::UnknownComment(_) => ErrorCode::UnknownComment,
            DomainError::CaseClosed => ErrorCode::CaseClosed,
            DomainError::CaseNotOpen { .. } => ErrorCode::CaseNotOpen,
            DomainError::CaseNotResolved => ErrorCode::CaseNotResolved,
            DomainError::CaseAlreadyOpen => ErrorCode::CaseAlreadyOpen,
            DomainError::NoChange(_) => ErrorCode::NoChange,
            DomainError::InvalidDefinition(_) => ErrorCode::InvalidDefinition,
            DomainError::LimitReached { .. } => ErrorCode::LimitReached,
            DomainError::UnknownTask(_) => ErrorCode::UnknownTask,
            DomainError::TaskState { .. } => ErrorCode::TaskState,
            DomainError::TaskLocked { .. } => ErrorCode::TaskLocked,
        }
    }

    /// Whether the rejection depends on the case's current state (and so
    /// may not hold once commands still in flight are applied), as opposed
    /// to the command being wrong in itself.
    pub fn depends_on_state(&self) -> bool {
        match self {
            DomainError::NotFound
            | DomainError::AlreadyExists
            | DomainError::TransitionNotAllowed { .. }
            | DomainError::UnknownComment(_)
            | DomainError::CaseClosed
            | DomainError::CaseNotOpen { .. }
            | DomainError::CaseNotResolved
            | DomainError::CaseAlreadyOpen
            | DomainError::NoChange(_)
            | DomainError::LimitReached { .. }
            | DomainError::UnknownTask(_)
            | DomainError::TaskState { .. }
            | DomainError::TaskLocked { .. } => true,
            DomainError::Validation { .. }
            | DomainError::SchemaViolation { .. }
            | DomainError::UnknownStage(_)
            | DomainError::UnknownPriority(_)
            | DomainError::UnknownResolution(_)
            | DomainError::InvalidDefinition(_) => false,
        }
    }

    /// Structured details for the API's error body.
    pub fn details(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            DomainError::Validation { field, .. } => json!({"field": field}),
            DomainError::SchemaViolation { errors } => json!({"errors": errors}),
            DomainError::TransitionNotAllowed { from, to } => json!({"from": from, "to": to}),
            DomainError::UnknownStage(v)
            | DomainError::UnknownPriority(v)
            | DomainError::UnknownResolution(v)
            | DomainError::UnknownComment(v) => json!({"value": v}),
            DomainError::CaseNotOpen { status } => json!({"status": status}),
            DomainError::LimitReached { what, limit } => json!({"what": what, "limit": limit}),
            DomainError::UnknownTask(v) => json!({"taskId": v}),
            DomainError::TaskState { task, state } => json!({"taskId": task, "state": state}),
            DomainError::TaskLocked { task, worker } => json!({"taskId": task, "heldBy": worker}),
            DomainError::NotFound
            | DomainError::AlreadyExists
            | DomainError::CaseClosed
            | DomainError::CaseNotResolved
            | DomainError::CaseAlreadyOpen
            | DomainError::NoChange(_)
            | DomainError::InvalidDefinition(_) => json!({}),
        }
    }

    /// Shorthand for a full case.
    pub fn limit(what: &'static str, limit: usize) -> Self {
        DomainError::LimitReached { what, limit }
    }

    /// Shorthand for a field validation failure.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        DomainError::Validation {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}
