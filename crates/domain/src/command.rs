//! Commands: wishes addressed to one case, named with domain verbs. Each
//! payload rejects unknown fields, so a typo is a 4xx and not a silent no-op.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::email::{ReceiveEmail, RecordBounce, RecordEmailSent};
use crate::task::{
    AssignTask, CancelTask, CompleteTask, CreateTask, ExtendTaskLock, FailTask, LockTask, RaiseTaskError,
    SetTaskRetries, TaskRef,
};
use crate::types::{EmailAddress, QueueName, Tag, UserRef};

/// The person a case is for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Requester {
    /// Free text.
    #[serde(default)]
    pub name: Option<String>,
    pub email: EmailAddress,
}

/// Open a new case of a definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpenCase {
    /// Definition id (a definition id is a slug of a-z, 0-9 and `-`); the
    /// newest version is used. It must name a definition imported into the
    /// tenant, else 422 `CW-VALIDATION`.
    #[schema(pattern = r"^[a-z0-9-]+$", min_length = 1)]
    pub definition: String,
    /// 1 to 200 characters once trimmed: not empty and not only whitespace
    /// (the pattern asks for one character that is not whitespace).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"[^\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
    )]
    pub title: String,
    /// At most 20,000 characters once trimmed.
    #[serde(default)]
    #[schema(max_length = 20000)]
    pub description: Option<String>,
    /// Case data, validated against the definition's JSON Schema (else 422
    /// `CW-SCHEMA-VIOLATION`).
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub data: Value,
    /// A priority id of the definition (else 422 `CW-UNKNOWN-PRIORITY`);
    /// the definition's default when absent.
    #[serde(default)]
    #[schema(min_length = 1)]
    pub priority: Option<String>,
    /// The definition's default queue when absent.
    #[serde(default)]
    pub queue: Option<QueueName>,
    #[serde(default)]
    pub requester: Option<Requester>,
    /// At most 32 tags; repeated ones are merged.
    #[serde(default)]
    #[schema(max_items = 32)]
    pub tags: Vec<Tag>,
    /// Visible only to the assignee, the queue's managers and admins.
    #[serde(default)]
    pub confidential: bool,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// Change title, description or data. Omitted fields stay as they are; data
/// is replaced whole. Nothing to change is 409 `CW-NO-CHANGE`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReviseDetails {
    /// 1 to 200 characters once trimmed: not empty and not only whitespace
    /// (the pattern asks for one character that is not whitespace).
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"[^\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
    )]
    pub title: Option<String>,
    /// At most 20,000 characters once trimmed.
    #[serde(default)]
    #[schema(max_length = 20000)]
    pub description: Option<String>,
    /// Validated against the definition's JSON Schema (else 422
    /// `CW-SCHEMA-VIOLATION`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
}

/// Give the case to a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssignCase {
    pub assignee: UserRef,
}

/// Take the case away from its assignee.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UnassignCase {}

/// Send the case to a queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteCase {
    pub queue: QueueName,
}

/// Move the case along an allowed transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MoveToStage {
    /// A stage id of the case's definition (else 422 `CW-UNKNOWN-STAGE`).
    #[schema(min_length = 1)]
    pub stage: String,
}

/// Change the priority.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrioritizeCase {
    /// A priority id of the case's definition (else 422
    /// `CW-UNKNOWN-PRIORITY`).
    #[schema(min_length = 1)]
    pub priority: String,
}

/// Who may read a comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Visibility {
    /// Case workers only.
    #[default]
    Internal,
    /// Also the requester.
    Public,
}

/// Add a comment, optionally as a reply to another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommentOnCase {
    /// Chosen by the API when absent, so a redelivered command keeps it.
    #[serde(default)]
    pub comment_id: Option<Uuid>,
    /// A comment of the case (else 422 `CW-UNKNOWN-COMMENT`).
    #[serde(default)]
    pub parent_id: Option<Uuid>,
    /// 1 to 20,000 characters once trimmed: not empty and not only
    /// whitespace (the pattern asks for one character that is not
    /// whitespace).
    #[schema(
        min_length = 1,
        max_length = 20000,
        pattern = r"[^\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
    )]
    pub body: String,
    #[serde(default)]
    pub visibility: Visibility,
    /// Files of the case (attached already) the comment goes with; a
    /// public comment's reply by mail carries them. At most 20, each once
    /// (else 422 `CW-VALIDATION`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Uuid>,
    /// Whether the case's requester wrote it (the caller's verified e-mail
    /// is the requester's): SLA clocks count it as a reply, not a response.
    /// The API sets it; a value sent is ignored.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub by_requester: bool,
}

/// Add or remove one tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TagCase {
    pub tag: Tag,
}

/// How two cases relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum LinkRelation {
    #[default]
    RelatesTo,
    Duplicates,
    Blocks,
    BlockedBy,
    ParentOf,
    ChildOf,
}

/// Link this case to another one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LinkCase {
    pub target: Uuid,
    #[serde(default)]
    pub relation: LinkRelation,
}

/// What the storage API knows of an uploaded file. The API fills it in from
/// its own record, whatever a client sent, so the event carries facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileFacts {
    pub name: String,
    pub content_type: String,
    pub size: u64,
    /// Lower-case hex SHA-256 of the bytes.
    pub sha256: String,
}

/// Attach an uploaded file (`POST /api/v1/files`) to the case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttachFile {
    /// A complete file you may read and that is not being swept (else 422
    /// `CW-VALIDATION`).
    pub file_id: Uuid,
    /// Set by the API from the file's record, whatever a client sent:
    /// read-only (the OpenAPI document says so), clients leave it out.
    #[serde(default)]
    pub file: Option<FileFacts>,
}

/// Remove an attachment from the case (the file stays in its history).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DetachFile {
    pub file_id: Uuid,
}

/// Resolve the case with a resolution code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResolveCase {
    /// 1 to 64 characters once trimmed: not empty and not only whitespace
    /// (the pattern asks for one character that is not whitespace). When
    /// the definition lists resolution codes, one of them (else 422
    /// `CW-UNKNOWN-RESOLUTION`).
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"[^\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
    )]
    pub resolution: String,
    /// At most 20,000 characters once trimmed.
    #[serde(default)]
    #[schema(max_length = 20000)]
    pub note: Option<String>,
}

/// Close a resolved case.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CloseCase {}

/// Reopen a resolved or closed case.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReopenCase {
    #[serde(default)]
    pub reason: Option<String>,
}

/// Every command a case accepts. On the wire (the generic command endpoint
/// and the commands topic) it is `{"type": "case.assign", "data": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", content = "data")]
pub enum CaseCommand {
    #[serde(rename = "case.open")]
    Open(OpenCase),
    #[serde(rename = "case.reviseDetails")]
    ReviseDetails(ReviseDetails),
    #[serde(rename = "case.assign")]
    Assign(AssignCase),
    #[serde(rename = "case.unassign")]
    Unassign(UnassignCase),
    #[serde(rename = "case.route")]
    Route(RouteCase),
    #[serde(rename = "case.moveToStage")]
    MoveToStage(MoveToStage),
    #[serde(rename = "case.prioritize")]
    Prioritize(PrioritizeCase),
    #[serde(rename = "case.comment")]
    Comment(CommentOnCase),
    #[serde(rename = "case.tag")]
    Tag(TagCase),
    #[serde(rename = "case.untag")]
    Untag(TagCase),
    #[serde(rename = "case.link")]
    Link(LinkCase),
    #[serde(rename = "case.attach")]
    Attach(AttachFile),
    #[serde(rename = "case.detach")]
    Detach(DetachFile),
    #[serde(rename = "case.resolve")]
    Resolve(ResolveCase),
    #[serde(rename = "case.close")]
    Close(CloseCase),
    #[serde(rename = "case.reopen")]
    Reopen(ReopenCase),
    #[serde(rename = "case.receiveEmail")]
    ReceiveEmail(ReceiveEmail),
    #[serde(rename = "case.recordBounce")]
    RecordBounce(RecordBounce),
    #[serde(rename = "case.recordEmailSent")]
    RecordEmailSent(RecordEmailSent),
    #[serde(rename = "case.recordSla")]
    RecordSla(crate::sla::RecordSla),
    #[serde(rename = "task.create")]
    CreateTask(CreateTask),
    #[serde(rename = "task.claim")]
    ClaimTask(TaskRef),
    #[serde(rename = "task.unclaim")]
    UnclaimTask(TaskRef),
    #[serde(rename = "task.assign")]
    AssignTask(AssignTask),
    #[serde(rename = "task.complete")]
    CompleteTask(CompleteTask),
    #[serde(rename = "task.cancel")]
    CancelTask(CancelTask),
    #[serde(rename = "task.lock")]
    LockTask(LockTask),
    #[serde(rename = "task.extendLock")]
    ExtendTaskLock(ExtendTaskLock),
    #[serde(rename = "task.unlock")]
    UnlockTask(TaskRef),
    #[serde(rename = "task.fail")]
    FailTask(FailTask),
    #[serde(rename = "task.raiseError")]
    RaiseTaskError(RaiseTaskError),
    #[serde(rename = "task.setRetries")]
    SetTaskRetries(SetTaskRetries),
}

impl CaseCommand {
    /// The wire name, e.g. `case.assign`.
    pub fn name(&self) -> &'static str {
        match self {
            CaseCommand::Open(_) => "case.open",
            CaseCommand::ReviseDetails(_) => "case.reviseDetails",
            CaseCommand::Assign(_) => "case.assign",
            CaseCommand::Unassign(_) => "case.unassign",
            CaseCommand::Route(_) => "case.route",
            CaseCommand::MoveToStage(_) => "case.moveToStage",
            CaseCommand::Prioritize(_) => "case.prioritize",
            CaseCommand::Comment(_) => "case.comment",
            CaseCommand::Tag(_) => "case.tag",
            CaseCommand::Untag(_) => "case.untag",
            CaseCommand::Link(_) => "case.link",
            CaseCommand::Attach(_) => "case.attach",
            CaseCommand::Detach(_) => "case.detach",
            CaseCommand::Resolve(_) => "case.resolve",
            CaseCommand::Close(_) => "case.close",
            CaseCommand::Reopen(_) => "case.reopen",
            CaseCommand::ReceiveEmail(_) => "case.receiveEmail",
            CaseCommand::RecordBounce(_) => "case.recordBounce",
            CaseCommand::RecordEmailSent(_) => "case.recordEmailSent",
            CaseCommand::RecordSla(_) => "case.recordSla",
            CaseCommand::CreateTask(_) => "task.create",
            CaseCommand::ClaimTask(_) => "task.claim",
            CaseCommand::UnclaimTask(_) => "task.unclaim",
            CaseCommand::AssignTask(_) => "task.assign",
            CaseCommand::CompleteTask(_) => "task.complete",
            CaseCommand::CancelTask(_) => "task.cancel",
            CaseCommand::LockTask(_) => "task.lock",
            CaseCommand::ExtendTaskLock(_) => "task.extendLock",
            CaseCommand::UnlockTask(_) => "task.unlock",
            CaseCommand::FailTask(_) => "task.fail",
            CaseCommand::RaiseTaskError(_) => "task.raiseError",
            CaseCommand::SetTaskRetries(_) => "task.setRetries",
        }
    }

    /// Wire names of every command, paired with the payload schema's name.
    pub const CATALOGUE: &'static [(&'static str, &'static str)] = &[
        ("case.open", "OpenCase"),
        ("case.reviseDetails", "ReviseDetails"),
        ("case.assign", "AssignCase"),
        ("case.unassign", "UnassignCase"),
        ("case.route", "RouteCase"),
        ("case.moveToStage", "MoveToStage"),
        ("case.prioritize", "PrioritizeCase"),
        ("case.comment", "CommentOnCase"),
        ("case.tag", "TagCase"),
        ("case.untag", "TagCase"),
        ("case.link", "LinkCase"),
        ("case.attach", "AttachFile"),
        ("case.detach", "DetachFile"),
        ("case.resolve", "ResolveCase"),
        ("case.close", "CloseCase"),
        ("case.reopen", "ReopenCase"),
        ("case.receiveEmail", "ReceiveEmail"),
        ("case.recordBounce", "RecordBounce"),
        ("case.recordEmailSent", "RecordEmailSent"),
        ("case.recordSla", "RecordSla"),
        ("task.create", "CreateTask"),
        ("task.claim", "TaskRef"),
        ("task.unclaim", "TaskRef"),
        ("task.assign", "AssignTask"),
        ("task.complete", "CompleteTask"),
        ("task.cancel", "CancelTask"),
        ("task.lock", "LockTask"),
        ("task.extendLock", "ExtendTaskLock"),
        ("task.unlock", "TaskRef"),
        ("task.fail", "FailTask"),
        ("task.raiseError", "RaiseTaskError"),
        ("task.setRetries", "SetTaskRetries"),
    ];
}
