//! Events: facts about one case, in the past tense. They are the source of
//! truth; the case state is a left fold of them.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::command::{LinkRelation, Requester, Visibility};
pub use crate::task::{
    IncidentRaised, TaskAssigned, TaskCancelled, TaskCompleted, TaskCreated, TaskErrorRaised, TaskFailed, TaskLocked,
    TaskRetriesSet, TaskUnlocked,
};
use crate::types::{CaseKey, QueueName, Tag};

/// The case came into being.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaseOpened {
    // The schema stays a plain string, as the JSON is: these serialise as
    // their text, and the published document does not change.
    #[schema(value_type = String)]
    pub key: CaseKey,
    pub definition_id: String,
    pub definition_version: u32,
    pub title: String,
    pub description: String,
    #[schema(value_type = Object)]
    pub data: Value,
    pub stage: String,
    pub priority: String,
    #[schema(value_type = String)]
    pub queue: QueueName,
    pub requester: Option<Requester>,
    #[schema(value_type = Vec<String>)]
    pub tags: Vec<Tag>,
    /// Absent in events written before confidentiality existed: not confidential.
    #[serde(default)]
    pub confidential: bool,
}

/// Some of title, description and data changed; absent fields did not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DetailsRevised {
    pub title: Option<String>,
    pub description: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaseAssigned {
    pub assignee: String,
    pub previous: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaseUnassigned {
    pub previous: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaseRouted {
    #[schema(value_type = String)]
    pub queue: QueueName,
    #[schema(value_type = String)]
    pub previous: QueueName,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageChanged {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CasePrioritized {
    pub priority: String,
    pub previous: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommentAdded {
    pub comment_id: Uuid,
    pub parent_id: Option<Uuid>,
    pub body: String,
    pub visibility: Visibility,
    pub author: String,
    /// Files of the case the comment goes with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Uuid>,
    /// The case's requester wrote it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub by_requester: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TagChanged {
    #[schema(value_type = String)]
    pub tag: Tag,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaseLinked {
    pub target: Uuid,
    pub relation: LinkRelation,
}

/// A file was attached: what it was when attached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentAdded {
    pub file_id: Uuid,
    pub name: String,
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentRemoved {
    pub file_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaseResolved {
    pub resolution: String,
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaseClosed {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaseReopened {
    pub reason: Option<String>,
    /// Set when the case left a terminal stage on reopening.
    pub stage: Option<String>,
}

/// Every event of a case. Serialised as `{"type": "...", "data": {...}}`;
/// the type is the CloudEvents `type` without the `casewire.case.` prefix
/// and `.v1` suffix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", content = "data")]
pub enum CaseEvent {
    #[serde(rename = "opened")]
    Opened(CaseOpened),
    #[serde(rename = "details-revised")]
    DetailsRevised(DetailsRevised),
    #[serde(rename = "assigned")]
    Assigned(CaseAssigned),
    #[serde(rename = "unassigned")]
    Unassigned(CaseUnassigned),
    #[serde(rename = "routed")]
    Routed(CaseRouted),
    #[serde(rename = "stage-changed")]
    StageChanged(StageChanged),
    #[serde(rename = "prioritized")]
    Prioritized(CasePrioritized),
    #[serde(rename = "comment-added")]
    CommentAdded(CommentAdded),
    #[serde(rename = "tagged")]
    Tagged(TagChanged),
    #[serde(rename = "untagged")]
    Untagged(TagChanged),
    #[serde(rename = "linked")]
    Linked(CaseLinked),
    #[serde(rename = "attachment-added")]
    AttachmentAdded(AttachmentAdded),
    #[serde(rename = "attachment-removed")]
    AttachmentRemoved(AttachmentRemoved),
    #[serde(rename = "resolved")]
    Resolved(CaseResolved),
    #[serde(rename = "closed")]
    Closed(CaseClosed),
    #[serde(rename = "reopened")]
    Reopened(CaseReopened),
    #[serde(rename = "task-created")]
    TaskCreated(TaskCreated),
    #[serde(rename = "task-assigned")]
    TaskAssigned(TaskAssigned),
    #[serde(rename = "task-completed")]
    TaskCompleted(TaskCompleted),
    #[serde(rename = "task-cancelled")]
    TaskCancelled(TaskCancelled),
    #[serde(rename = "task-locked")]
    TaskLocked(TaskLocked),
    #[serde(rename = "task-lock-extended")]
    TaskLockExtended(TaskLocked),
    #[serde(rename = "task-unlocked")]
    TaskUnlocked(TaskUnlocked),
    #[serde(rename = "task-failed")]
    TaskFailed(TaskFailed),
    #[serde(rename = "incident-raised")]
    IncidentRaised(IncidentRaised),
    #[serde(rename = "task-error-raised")]
    TaskErrorRaised(TaskErrorRaised),
    #[serde(rename = "task-retries-set")]
    TaskRetriesSet(TaskRetriesSet),
    #[serde(rename = "email-received")]
    EmailReceived(crate::email::EmailReceived),
    #[serde(rename = "email-bounced")]
    EmailBounced(crate::email::EmailBounced),
    #[serde(rename = "email-sent")]
    EmailSent(crate::email::EmailSent),
    #[serde(rename = "sla-warning")]
    SlaWarning(crate::sla::SlaReached),
    #[serde(rename = "sla-breached")]
    SlaBreached(crate::sla::SlaReached),
}

impl CaseEvent {
    /// The short name, e.g. `assigned`.
    pub fn name(&self) -> &'static str {
        match self {
            CaseEvent::Opened(_) => "opened",
            CaseEvent::DetailsRevised(_) => "details-revised",
            CaseEvent::Assigned(_) => "assigned",
            CaseEvent::Unassigned(_) => "unassigned",
            CaseEvent::Routed(_) => "routed",
            CaseEvent::StageChanged(_) => "stage-changed",
            CaseEvent::Prioritized(_) => "prioritized",
            CaseEvent::CommentAdded(_) => "comment-added",
            CaseEvent::Tagged(_) => "tagged",
            CaseEvent::Untagged(_) => "untagged",
            CaseEvent::Linked(_) => "linked",
            CaseEvent::AttachmentAdded(_) => "attachment-added",
            CaseEvent::AttachmentRemoved(_) => "attachment-removed",
            CaseEvent::Resolved(_) => "resolved",
            CaseEvent::Closed(_) => "closed",
            CaseEvent::Reopened(_) => "reopened",
            CaseEvent::TaskCreated(_) => "task-created",
            CaseEvent::TaskAssigned(_) => "task-assigned",
            CaseEvent::TaskCompleted(_) => "task-completed",
            CaseEvent::TaskCancelled(_) => "task-cancelled",
            CaseEvent::TaskLocked(_) => "task-locked",
            CaseEvent::TaskLockExtended(_) => "task-lock-extended",
            CaseEvent::TaskUnlocked(_) => "task-unlocked",
            CaseEvent::TaskFailed(_) => "task-failed",
            CaseEvent::IncidentRaised(_) => "incident-raised",
            CaseEvent::TaskErrorRaised(_) => "task-error-raised",
            CaseEvent::TaskRetriesSet(_) => "task-retries-set",
            CaseEvent::EmailReceived(_) => "email-received",
            CaseEvent::EmailBounced(_) => "email-bounced",
            CaseEvent::EmailSent(_) => "email-sent",
            CaseEvent::SlaWarning(_) => "sla-warning",
            CaseEvent::SlaBreached(_) => "sla-breached",
        }
    }

    /// The CloudEvents type, e.g. `casewire.case.assigned.v1`.
    pub fn cloud_event_type(&self) -> String {
        format!("casewire.case.{}.v1", self.name())
    }

    /// Rebuilds an event from its CloudEvents type and data payload.
    pub fn from_parts(cloud_event_type: &str, data: Value) -> Result<Self, serde_json::Error> {
        let name = cloud_event_type
            .strip_prefix("casewire.case.")
            .and_then(|s| s.strip_suffix(".v1"))
            .unwrap_or(cloud_event_type);
        serde_json::from_value(serde_json::json!({"type": name, "data": data}))
    }

    /// The data payload alone (what goes in the CloudEvent's `data`).
    pub fn data(&self) -> Value {
        match serde_json::to_value(self) {
            Ok(Value::Object(mut m)) => m.remove("data").unwrap_or(Value::Null),
            _ => Value::Null,
        }
    }

    /// Event names paired with their payload schema's name.
    pub const CATALOGUE: &'static [(&'static str, &'static str)] = &[
        ("opened", "CaseOpened"),
        ("details-revised", "DetailsRevised"),
        ("assigned", "CaseAssigned"),
        ("unassigned", "CaseUnassigned"),
        ("routed", "CaseRouted"),
        ("stage-changed", "StageChanged"),
        ("prioritized", "CasePrioritized"),
        ("comment-added", "CommentAdded"),
        ("tagged", "TagChanged"),
        ("untagged", "TagChanged"),
        ("linked", "CaseLinked"),
        ("attachment-added", "AttachmentAdded"),
        ("attachment-removed", "AttachmentRemoved"),
        ("resolved", "CaseResolved"),
        ("closed", "CaseClosed"),
        ("reopened", "CaseReopened"),
        ("task-created", "TaskCreated"),
        ("task-assigned", "TaskAssigned"),
        ("task-completed", "TaskCompleted"),
        ("task-cancelled", "TaskCancelled"),
        ("task-locked", "TaskLocked"),
        ("task-lock-extended", "TaskLocked"),
        ("task-unlocked", "TaskUnlocked"),
        ("task-failed", "TaskFailed"),
        ("incident-raised", "IncidentRaised"),
        ("task-error-raised", "TaskErrorRaised"),
        ("task-retries-set", "TaskRetriesSet"),
        ("email-received", "ReceiveEmail"),
        ("email-bounced", "RecordBounce"),
        ("email-sent", "RecordEmailSent"),
        ("sla-warning", "RecordSla"),
        ("sla-breached", "RecordSla"),
    ];
}
