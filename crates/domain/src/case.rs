//! The `Case` aggregate. [`Case::handle`] holds every rule and returns the
//! events a command causes; [`Case::apply`] folds one event into the state
//! and can not fail. The same state, serialised, is the case detail that the
//! read model stores and `asOf` rebuilds.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::command::{CaseCommand, LinkRelation, OpenCase, Requester, Visibility};
use crate::definition::CaseDefinition;
use crate::error::DomainError;
use crate::event::*;
use crate::types::{CaseKey, QueueName, Tag, TenantId};

// The OpenAPI document states these bounds too (`#[schema(...)]` on the
// command payloads wants literals); a test holds the two together.
const MAX_TITLE: usize = 200;
const MAX_TEXT: usize = 20_000;
const MAX_CODE: usize = 64;
// What grows per case is bounded, so one case (and every fold, cache entry
// and detail of it) stays a bounded size whatever its clients send.
const MAX_TAGS: usize = 32;
const MAX_ATTACHMENTS: usize = 200;
pub(crate) const MAX_COMMENTS: usize = 2_000;
const MAX_LINKS: usize = 200;

/// Where a case is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum CaseStatus {
    #[default]
    Open,
    Resolved,
    Closed,
}

impl CaseStatus {
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            CaseStatus::Open => "open",
            CaseStatus::Resolved => "resolved",
            CaseStatus::Closed => "closed",
        }
    }
}

/// A comment on a case; `parentId` threads replies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Comment {
    pub id: Uuid,
    pub parent_id: Option<Uuid>,
    pub body: String,
    pub visibility: Visibility,
    pub author: String,
    pub at: DateTime<Utc>,
    /// Files of the case the comment goes with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Uuid>,
}

/// A link to another case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaseLink {
    pub target: Uuid,
    pub relation: LinkRelation,
}

/// A file attached to the case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    pub file_id: Uuid,
    pub name: String,
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
    pub by: String,
    pub at: DateTime<Utc>,
}

/// How a case was resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Resolution {
    pub code: String,
    pub note: Option<String>,
    pub by: String,
    pub at: DateTime<Utc>,
}

// A case that has not been opened yet has no state at all (`Option<Case>`
// is `None`), so every `Case` has a tenant, a key and a queue, each a valid
// one. The typed fields keep the plain-string schema of the JSON they
// serialise to: the published document is what it was. (Doc comments here
// are schema descriptions in that document.)
/// The case: aggregate state and, serialised, the case detail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Case {
    pub id: Uuid,
    #[schema(value_type = String)]
    pub tenant: TenantId,
    #[schema(value_type = String)]
    pub key: CaseKey,
    pub definition_id: String,
    pub definition_version: u32,
    pub title: String,
    pub description: String,
    #[schema(value_type = Object)]
    pub data: Value,
    pub stage: String,
    pub status: CaseStatus,
    pub priority: String,
    #[schema(value_type = String)]
    pub queue: QueueName,
    pub assignee: Option<String>,
    pub requester: Option<Requester>,
    #[schema(value_type = Vec<String>)]
    pub tags: Vec<Tag>,
    pub links: Vec<CaseLink>,
    pub comments: Vec<Comment>,
    /// Files attached now (removed ones stay in the history).
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    /// Human and external tasks, ended ones included.
    #[serde(default)]
    pub tasks: Vec<crate::task::Task>,
    /// Its mail: participants, Message-IDs seen, undeliverable addresses.
    #[serde(default)]
    pub mail: crate::email::MailThread,
    /// SLA thresholds the scheduler recorded (staff only, like internal
    /// comments: a requester sees the case, not how late it is).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sla: Vec<crate::sla::RecordSla>,
    pub resolution: Option<Resolution>,
    /// Visible only to the assignee, the queue's managers and admins.
    #[serde(default)]
    pub confidential: bool,
    pub created_by: String,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    /// Number of events applied; 0 means the case does not exist yet.
    pub revision: u64,
}

/// A rough size in bytes of a JSON value held in memory.
fn json_weight(v: &Value) -> usize {
    match v {
        Value::Null | Value::Bool(_) | Value::Number(_) => 16,
        Value::String(s) => 24 + s.len(),
        Value::Array(a) => 24 + a.iter().map(json_weight).sum::<usize>(),
        Value::Object(o) => 48 + o.iter().map(|(k, v)| 24 + k.len() + json_weight(v)).sum::<usize>(),
    }
}

impl Case {
    /// A rough size in bytes of this state in memory, for caches bounded
    /// by size: a case with 2,000 comments weighs what it holds.
    pub fn weight(&self) -> usize {
        let strings = self.tenant.as_str().len() + self.key.as_str().len() + self.title.len() + self.description.len();
        let comments: usize = self.comments.iter().map(|c| 160 + c.body.len() + c.author.len()).sum();
        let attachments: usize = self
            .attachments
            .iter()
            .map(|a| 160 + a.name.len() + a.sha256.len())
            .sum();
        let tags: usize = self.tags.iter().map(|t| 24 + t.as_str().len()).sum();
        512 + strings + json_weight(&self.data) + comments + attachments + tags + 64 * self.links.len()
    }
}

/// What a decision needs besides the state and the command. The caller
/// supplies everything that would otherwise be I/O.
#[derive(Debug, Clone)]
pub struct Decision<'a> {
    /// The definition the case uses (for `open`, the newest version).
    pub definition: &'a CaseDefinition,
    /// Who issues the command.
    pub actor: &'a str,
    /// The human key allocated for an `open`; ignored otherwise.
    pub key: Option<&'a CaseKey>,
    /// The time of the decision: task locks and retry timeouts count from
    /// it (the domain reads no clock).
    pub now: DateTime<Utc>,
}

/// Envelope facts that `apply` records on the state.
#[derive(Debug, Clone)]
pub struct EventMeta<'a> {
    pub case_id: Uuid,
    pub tenant: &'a TenantId,
    pub revision: u64,
    pub time: DateTime<Utc>,
    pub actor: &'a str,
}

fn text(field: &str, value: &str, max: usize, required: bool) -> Result<String, DomainError> {
    let v = value.trim();
    if required && v.is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    if v.chars().count() > max {
        return Err(DomainError::invalid(field, format!("must be at most {max} characters")));
    }
    Ok(v.to_owned())
}

impl Case {
    /// Folds a whole stream into a state; `None` until the case is opened.
    pub fn replay<'a>(events: impl IntoIterator<Item = (EventMeta<'a>, &'a CaseEvent)>) -> Option<Case> {
        events
            .into_iter()
            .fold(None, |case, (meta, event)| Case::fold(case, &meta, event))
    }

    /// Folds one event into a state that may not exist yet: `Opened` makes
    /// the case; any other event changes an existing one. Never fails, like
    /// [`Case::apply`]: an event of a case that was never opened (which no
    /// decision produces) leaves it unopened.
    pub fn fold(case: Option<Case>, meta: &EventMeta<'_>, event: &CaseEvent) -> Option<Case> {
        match (case, event) {
            (Some(mut case), event) => {
                case.apply(meta, event);
                Some(case)
            }
            (None, CaseEvent::Opened(opened)) => Some(Case::opened(meta, opened)),
            (None, _) => None,
        }
    }

    /// Decides a command against the case, or against no case yet (`None`):
    /// only `open` makes one, and only when there is none.
    pub fn decide(
        case: Option<&Case>,
        command: &CaseCommand,
        ctx: &Decision<'_>,
    ) -> Result<Vec<CaseEvent>, DomainError> {
        match (case, command) {
            (None, CaseCommand::Open(open)) => Case::open(open, ctx),
            (None, _) => Err(DomainError::NotFound),
            (Some(case), command) => case.handle(command, ctx),
        }
    }

    /// The rules of `open`, which has no state to check against.
    fn open(open: &OpenCase, ctx: &Decision<'_>) -> Result<Vec<CaseEvent>, DomainError> {
        let def = ctx.definition;
        let key = ctx
            .key
            .ok_or_else(|| DomainError::invalid("key", "no key was allocated for the new case"))?;
        if open.definition != def.id {
            return Err(DomainError::invalid(
                "definition",
                "does not match the loaded definition",
            ));
        }
        let title = text("title", &open.title, MAX_TITLE, true)?;
        let description = text(
            "description",
            open.description.as_deref().unwrap_or(""),
            MAX_TEXT,
            false,
        )?;
        def.validate_data(&open.data)?;
        let priority = match &open.priority {
            Some(p) if !def.has_priority(p) => return Err(DomainError::UnknownPriority(p.clone())),
            Some(p) => p.clone(),
            None => def.default_priority.clone(),
        };
        if open.tags.len() > MAX_TAGS {
            return Err(DomainError::invalid("tags", format!("at most {MAX_TAGS} tags")));
        }
        let mut tags = open.tags.clone();
        tags.sort();
        tags.dedup();
        Ok(vec![CaseEvent::Opened(CaseOpened {
            key: key.clone(),
            definition_id: def.id.clone(),
            definition_version: def.version,
            title,
            description,
            data: open.data.clone(),
            stage: def.initial_stage.clone(),
            priority,
            queue: open.queue.as_ref().unwrap_or(&def.default_queue).clone(),
            requester: open.requester.clone(),
            tags,
            confidential: open.confidential,
        })])
    }

    /// The state of a case from its `Opened` event.
    fn opened(meta: &EventMeta<'_>, e: &CaseOpened) -> Case {
        Case {
            id: meta.case_id,
            tenant: meta.tenant.clone(),
            key: e.key.clone(),
            definition_id: e.definition_id.clone(),
            definition_version: e.definition_version,
            title: e.title.clone(),
            description: e.description.clone(),
            data: e.data.clone(),
            stage: e.stage.clone(),
            status: CaseStatus::Open,
            priority: e.priority.clone(),
            queue: e.queue.clone(),
            assignee: None,
            requester: e.requester.clone(),
            tags: e.tags.clone(),
            links: Vec::new(),
            comments: Vec::new(),
            attachments: Vec::new(),
            tasks: Vec::new(),
            mail: crate::email::MailThread::default(),
            sla: Vec::new(),
            resolution: None,
            confidential: e.confidential,
            created_by: meta.actor.to_owned(),
            created_at: Some(meta.time),
            updated_at: Some(meta.time),
            closed_at: None,
            revision: meta.revision,
        }
    }

    /// Decides what a command causes to this (existing) case. Every rule of
    /// the case lives here and in [`Case::open`].
    pub fn handle(&self, command: &CaseCommand, ctx: &Decision<'_>) -> Result<Vec<CaseEvent>, DomainError> {
        let def = ctx.definition;
        if let CaseCommand::Open(_) = command {
            return Err(DomainError::AlreadyExists);
        }
        match (self.status, command) {
            (CaseStatus::Closed, CaseCommand::Reopen(_)) => {}
            (CaseStatus::Closed, _) => return Err(DomainError::CaseClosed),
            (
                CaseStatus::Resolved,
                CaseCommand::ReviseDetails(_)
                | CaseCommand::Assign(_)
                | CaseCommand::Unassign(_)
                | CaseCommand::Route(_)
                | CaseCommand::MoveToStage(_)
                | CaseCommand::Prioritize(_)
                | CaseCommand::Resolve(_)
                | CaseCommand::CreateTask(_),
            ) => {
                return Err(DomainError::CaseNotOpen {
                    status: self.status.as_str().into(),
                });
            }
            _ => {}
        }
        if let Some(events) = self.handle_task(command, ctx) {
            return events;
        }
        let event = match command {
            CaseCommand::Open(_) => return Err(DomainError::AlreadyExists),
            CaseCommand::ReviseDetails(c) => {
                let title = c
                    .title
                    .as_deref()
                    .map(|t| text("title", t, MAX_TITLE, true))
                    .transpose()?
                    .filter(|t| *t != self.title);
                let description = c
                    .description
                    .as_deref()
                    .map(|t| text("description", t, MAX_TEXT, false))
                    .transpose()?
                    .filter(|t| *t != self.description);
                let data = match &c.data {
                    Some(d) => {
                        def.validate_data(d)?;
                        Some(d.clone()).filter(|d| *d != self.data)
                    }
                    None => None,
                };
                if title.is_none() && description.is_none() && data.is_none() {
                    return Err(DomainError::NoChange("the details are unchanged".into()));
                }
                CaseEvent::DetailsRevised(DetailsRevised {
                    title,
                    description,
                    data,
                })
            }
            CaseCommand::Assign(c) => {
                if self.assignee.as_deref() == Some(c.assignee.as_str()) {
                    return Err(DomainError::NoChange(format!(
                        "the case is already assigned to {}",
                        c.assignee
                    )));
                }
                CaseEvent::Assigned(CaseAssigned {
                    assignee: c.assignee.as_str().to_owned(),
                    previous: self.assignee.clone(),
                })
            }
            CaseCommand::Unassign(_) => match &self.assignee {
                Some(previous) => CaseEvent::Unassigned(CaseUnassigned {
                    previous: previous.clone(),
                }),
                None => return Err(DomainError::NoChange("the case has no assignee".into())),
            },
            CaseCommand::Route(c) => {
                if self.queue == c.queue {
                    return Err(DomainError::NoChange(format!(
                        "the case is already in queue {}",
                        c.queue
                    )));
                }
                CaseEvent::Routed(CaseRouted {
                    queue: c.queue.clone(),
                    previous: self.queue.clone(),
                })
            }
            CaseCommand::MoveToStage(c) => {
                if !def.has_stage(&c.stage) {
                    return Err(DomainError::UnknownStage(c.stage.clone()));
                }
                if self.stage == c.stage {
                    return Err(DomainError::NoChange(format!(
                        "the case is already in stage {}",
                        c.stage
                    )));
                }
                if !def.allows(&self.stage, &c.stage) {
                    return Err(DomainError::TransitionNotAllowed {
                        from: self.stage.clone(),
                        to: c.stage.clone(),
                    });
                }
                CaseEvent::StageChanged(StageChanged {
                    from: self.stage.clone(),
                    to: c.stage.clone(),
                })
            }
            CaseCommand::Prioritize(c) => {
                if !def.has_priority(&c.priority) {
                    return Err(DomainError::UnknownPriority(c.priority.clone()));
                }
                if self.priority == c.priority {
                    return Err(DomainError::NoChange(format!("the priority is already {}", c.priority)));
                }
                CaseEvent::Prioritized(CasePrioritized {
                    priority: c.priority.clone(),
                    previous: self.priority.clone(),
                })
            }
            CaseCommand::Comment(c) => {
                let body = text("body", &c.body, MAX_TEXT, true)?;
                let comment_id = c
                    .comment_id
                    .ok_or_else(|| DomainError::invalid("commentId", "is required"))?;
                if self.comments.iter().any(|x| x.id == comment_id) {
                    return Err(DomainError::NoChange(format!("comment {comment_id} already exists")));
                }
                if self.comments.len() >= MAX_COMMENTS {
                    return Err(DomainError::limit("comments", MAX_COMMENTS));
                }
                if let Some(parent) = c.parent_id
                    && !self.comments.iter().any(|x| x.id == parent)
                {
                    return Err(DomainError::UnknownComment(parent.to_string()));
                }
                self.check_comment_files(&c.attachments)?;
                CaseEvent::CommentAdded(CommentAdded {
                    comment_id,
                    parent_id: c.parent_id,
                    body,
                    visibility: c.visibility,
                    author: ctx.actor.to_owned(),
                    attachments: c.attachments.clone(),
                    by_requester: c.by_requester,
                })
            }
            CaseCommand::Tag(c) => {
                if self.tags.contains(&c.tag) {
                    return Err(DomainError::NoChange(format!("the case is already tagged {}", c.tag)));
                }
                if self.tags.len() >= MAX_TAGS {
                    return Err(DomainError::limit("tags", MAX_TAGS));
                }
                CaseEvent::Tagged(TagChanged { tag: c.tag.clone() })
            }
            CaseCommand::Untag(c) => {
                if !self.tags.contains(&c.tag) {
                    return Err(DomainError::NoChange(format!("the case is not tagged {}", c.tag)));
                }
                CaseEvent::Untagged(TagChanged { tag: c.tag.clone() })
            }
            CaseCommand::Attach(c) => {
                if self.attachments.iter().any(|a| a.file_id == c.file_id) {
                    return Err(DomainError::NoChange("the file is attached already".into()));
                }
                if self.attachments.len() >= MAX_ATTACHMENTS {
                    return Err(DomainError::limit("attachments", MAX_ATTACHMENTS));
                }
                let Some(file) = &c.file else {
                    return Err(DomainError::invalid("fileId", "no such file"));
                };
                CaseEvent::AttachmentAdded(AttachmentAdded {
                    file_id: c.file_id,
                    name: file.name.clone(),
                    content_type: file.content_type.clone(),
                    size: file.size,
                    sha256: file.sha256.clone(),
                })
            }
            CaseCommand::Detach(c) => {
                if !self.attachments.iter().any(|a| a.file_id == c.file_id) {
                    return Err(DomainError::NoChange("the file is not attached".into()));
                }
                CaseEvent::AttachmentRemoved(AttachmentRemoved { file_id: c.file_id })
            }
            CaseCommand::Link(c) => {
                if c.target == self.id {
                    return Err(DomainError::invalid("target", "a case can not link to itself"));
                }
                if self
                    .links
                    .iter()
                    .any(|l| l.target == c.target && l.relation == c.relation)
                {
                    return Err(DomainError::NoChange("the link exists already".into()));
                }
                if self.links.len() >= MAX_LINKS {
                    return Err(DomainError::limit("links", MAX_LINKS));
                }
                CaseEvent::Linked(CaseLinked {
                    target: c.target,
                    relation: c.relation,
                })
            }
            CaseCommand::Resolve(c) => {
                let code = text("resolution", &c.resolution, MAX_CODE, true)?;
                if !def.resolution_codes.is_empty() && !def.resolution_codes.contains(&code) {
                    return Err(DomainError::UnknownResolution(code));
                }
                let note = c
                    .note
                    .as_deref()
                    .map(|n| text("note", n, MAX_TEXT, false))
                    .transpose()?;
                CaseEvent::Resolved(CaseResolved { resolution: code, note })
            }
            CaseCommand::Close(_) => {
                if self.status != CaseStatus::Resolved {
                    return Err(DomainError::CaseNotResolved);
                }
                CaseEvent::Closed(CaseClosed {})
            }
            CaseCommand::CreateTask(_)
            | CaseCommand::ClaimTask(_)
            | CaseCommand::UnclaimTask(_)
            | CaseCommand::AssignTask(_)
            | CaseCommand::CompleteTask(_)
            | CaseCommand::CancelTask(_)
            | CaseCommand::LockTask(_)
            | CaseCommand::ExtendTaskLock(_)
            | CaseCommand::UnlockTask(_)
            | CaseCommand::FailTask(_)
            | CaseCommand::RaiseTaskError(_)
            | CaseCommand::SetTaskRetries(_) => unreachable!("task commands are decided by handle_task"),
            CaseCommand::ReceiveEmail(c) => self.receive_email(c)?,
            CaseCommand::RecordEmailSent(c) => self.record_email_sent(c)?,
            CaseCommand::RecordBounce(c) => self.record_bounce(c)?,
            CaseCommand::RecordSla(c) => self.record_sla(c)?,
            CaseCommand::Reopen(c) => {
                if self.status == CaseStatus::Open {
                    return Err(DomainError::CaseAlreadyOpen);
                }
                let stage = def
                    .is_terminal(&self.stage)
                    .then(|| def.reopen_stage.clone().unwrap_or_else(|| def.initial_stage.clone()));
                CaseEvent::Reopened(CaseReopened {
                    reason: c.reason.clone(),
                    stage,
                })
            }
        };
        Ok(vec![event])
    }

    /// The task commands' rules (in [`crate::task`]); `None` for a command
    /// that is not about a task.
    fn handle_task(&self, command: &CaseCommand, ctx: &Decision<'_>) -> Option<Result<Vec<CaseEvent>, DomainError>> {
        let one = |r: Result<CaseEvent, DomainError>| Some(r.map(|e| vec![e]));
        match command {
            CaseCommand::CreateTask(c) => one(self.create_task(c)),
            CaseCommand::ClaimTask(c) => one(self.claim_task(c, ctx)),
            CaseCommand::UnclaimTask(c) => one(self.unclaim_task(c)),
            CaseCommand::AssignTask(c) => one(self.assign_task(c)),
            CaseCommand::CompleteTask(c) => one(self.complete_task(c, ctx)),
            CaseCommand::CancelTask(c) => one(self.cancel_task(c)),
            CaseCommand::LockTask(c) => one(self.lock_task(c, ctx)),
            CaseCommand::ExtendTaskLock(c) => one(self.extend_task_lock(c, ctx)),
            CaseCommand::UnlockTask(c) => one(self.unlock_task(c)),
            CaseCommand::FailTask(c) => Some(self.fail_task(c, ctx)),
            CaseCommand::RaiseTaskError(c) => one(self.raise_task_error(c)),
            CaseCommand::SetTaskRetries(c) => one(self.set_task_retries(c)),
            _ => None,
        }
    }

    /// Folds one event into the state. Holds no rule and never fails: the
    /// event already happened.
    pub fn apply(&mut self, meta: &EventMeta<'_>, event: &CaseEvent) {
        if self.apply_task(meta, event) || self.apply_email(meta, event) {
            self.revision = meta.revision;
            self.updated_at = Some(meta.time);
            return;
        }
        match event {
            CaseEvent::Opened(e) => {
                self.id = meta.case_id;
                self.tenant = meta.tenant.clone();
                self.key = e.key.clone();
                self.definition_id = e.definition_id.clone();
                self.definition_version = e.definition_version;
                self.title = e.title.clone();
                self.description = e.description.clone();
                self.data = e.data.clone();
                self.stage = e.stage.clone();
                self.status = CaseStatus::Open;
                self.priority = e.priority.clone();
                self.queue = e.queue.clone();
                self.requester = e.requester.clone();
                self.tags = e.tags.clone();
                self.confidential = e.confidential;
                self.created_by = meta.actor.to_owned();
                self.created_at = Some(meta.time);
            }
            CaseEvent::DetailsRevised(e) => {
                if let Some(t) = &e.title {
                    self.title = t.clone();
                }
                if let Some(d) = &e.description {
                    self.description = d.clone();
                }
                if let Some(d) = &e.data {
                    self.data = d.clone();
                }
            }
            CaseEvent::Assigned(e) => self.assignee = Some(e.assignee.clone()),
            CaseEvent::Unassigned(_) => self.assignee = None,
            CaseEvent::Routed(e) => self.queue = e.queue.clone(),
            CaseEvent::StageChanged(e) => self.stage = e.to.clone(),
            CaseEvent::Prioritized(e) => self.priority = e.priority.clone(),
            CaseEvent::CommentAdded(e) => self.comments.push(Comment {
                id: e.comment_id,
                parent_id: e.parent_id,
                body: e.body.clone(),
                visibility: e.visibility,
                author: e.author.clone(),
                at: meta.time,
                attachments: e.attachments.clone(),
            }),
            CaseEvent::Tagged(e) => {
                if !self.tags.contains(&e.tag) {
                    self.tags.push(e.tag.clone());
                    self.tags.sort();
                }
            }
            CaseEvent::Untagged(e) => self.tags.retain(|t| *t != e.tag),
            CaseEvent::Linked(e) => self.links.push(CaseLink {
                target: e.target,
                relation: e.relation,
            }),
            CaseEvent::AttachmentAdded(e) => self.attachments.push(Attachment {
                file_id: e.file_id,
                name: e.name.clone(),
                content_type: e.content_type.clone(),
                size: e.size,
                sha256: e.sha256.clone(),
                by: meta.actor.to_owned(),
                at: meta.time,
            }),
            CaseEvent::AttachmentRemoved(e) => self.attachments.retain(|a| a.file_id != e.file_id),
            CaseEvent::Resolved(e) => {
                self.status = CaseStatus::Resolved;
                self.resolution = Some(Resolution {
                    code: e.resolution.clone(),
                    note: e.note.clone(),
                    by: meta.actor.to_owned(),
                    at: meta.time,
                });
            }
            CaseEvent::Closed(_) => {
                self.status = CaseStatus::Closed;
                self.closed_at = Some(meta.time);
            }
            CaseEvent::Reopened(e) => {
                self.status = CaseStatus::Open;
                self.resolution = None;
                self.closed_at = None;
                if let Some(stage) = &e.stage {
                    self.stage = stage.clone();
                }
            }
            // Folded by apply_task above.
            CaseEvent::TaskCreated(_)
            | CaseEvent::TaskAssigned(_)
            | CaseEvent::TaskCompleted(_)
            | CaseEvent::TaskCancelled(_)
            | CaseEvent::TaskLocked(_)
            | CaseEvent::TaskLockExtended(_)
            | CaseEvent::TaskUnlocked(_)
            | CaseEvent::TaskFailed(_)
            | CaseEvent::IncidentRaised(_)
            | CaseEvent::TaskErrorRaised(_)
            | CaseEvent::TaskRetriesSet(_) => {}
            // Folded by apply_email above.
            CaseEvent::EmailReceived(_) | CaseEvent::EmailBounced(_) | CaseEvent::EmailSent(_) => {}
            CaseEvent::SlaWarning(r) | CaseEvent::SlaBreached(r) => self.sla.push(r.clone()),
        }
        self.revision = meta.revision;
        self.updated_at = Some(meta.time);
    }
}

/// The most files one comment goes with.
const MAX_COMMENT_FILES: usize = 20;

impl Case {
    /// A comment's files are files of the case, each once.
    fn check_comment_files(&self, files: &[Uuid]) -> Result<(), DomainError> {
        if files.len() > MAX_COMMENT_FILES {
            return Err(DomainError::invalid(
                "attachments",
                format!("at most {MAX_COMMENT_FILES} files"),
            ));
        }
        for (i, f) in files.iter().enumerate() {
            if files[..i].contains(f) {
                return Err(DomainError::invalid("attachments", format!("file {f} is named twice")));
            }
            if !self.attachments.iter().any(|a| a.file_id == *f) {
                return Err(DomainError::invalid(
                    "attachments",
                    format!("file {f} is not attached to the case"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Given/when/then: given past events, when a command arrives, then these
    //! events (or this rejection).
    use super::*;
    use crate::command::*;
    use crate::definition::tests::sample;
    use crate::types::{KeyPrefix, UserRef};
    use serde_json::json;

    struct Scenario {
        def: CaseDefinition,
        state: Option<Case>,
        id: Uuid,
    }

    fn given(commands: &[CaseCommand]) -> Scenario {
        let mut s = Scenario {
            def: sample(),
            state: None,
            id: Uuid::now_v7(),
        };
        for c in commands {
            let events = s.when(c).unwrap_or_else(|e| panic!("given {c:?} failed: {e}"));
            let tenant = TenantId::parse("acme").unwrap();
            for e in events {
                let meta = EventMeta {
                    case_id: s.id,
                    tenant: &tenant,
                    revision: s.state.as_ref().map_or(0, |c| c.revision) + 1,
                    time: Utc::now(),
                    actor: "alice",
                };
                s.state = Case::fold(s.state.take(), &meta, &e);
            }
        }
        s
    }

    impl Scenario {
        fn case(&self) -> &Case {
            self.state.as_ref().expect("the case was opened")
        }
        fn when(&self, command: &CaseCommand) -> Result<Vec<CaseEvent>, DomainError> {
            self.when_by(command, "alice", Utc::now())
        }
        /// The command from `actor` at `now`.
        fn when_by(
            &self,
            command: &CaseCommand,
            actor: &str,
            now: DateTime<Utc>,
        ) -> Result<Vec<CaseEvent>, DomainError> {
            let key = CaseKey::new(&KeyPrefix::parse("CMP").unwrap(), 1);
            Case::decide(
                self.state.as_ref(),
                command,
                &Decision {
                    definition: &self.def,
                    actor,
                    key: Some(&key),
                    now,
                },
            )
        }
        /// Folds what the command causes into the state; fails the test
        /// when it is rejected.
        fn and(&mut self, command: CaseCommand, actor: &str, now: DateTime<Utc>) -> Vec<CaseEvent> {
            let events = self
                .when_by(&command, actor, now)
                .unwrap_or_else(|e| panic!("{command:?} failed: {e}"));
            let tenant = TenantId::parse("acme").unwrap();
            for e in &events {
                let meta = EventMeta {
                    case_id: self.id,
                    tenant: &tenant,
                    revision: self.case().revision + 1,
                    time: now,
                    actor,
                };
                self.state = Case::fold(self.state.take(), &meta, e);
            }
            events
        }
        fn then_rejects(&self, command: CaseCommand, code: &str) {
            match self.when(&command) {
                Err(e) => assert_eq!(e.code().as_str(), code, "{e}"),
                Ok(events) => panic!("expected {code}, got {events:?}"),
            }
        }
        fn then_one(&self, command: CaseCommand) -> CaseEvent {
            let mut events = self.when(&command).unwrap();
            assert_eq!(events.len(), 1);
            events.remove(0)
        }
    }

    fn open() -> CaseCommand {
        CaseCommand::Open(OpenCase {
            definition: "complaint".into(),
            title: "Kettle leaks".into(),
            description: None,
            data: json!({"product": "kettle"}),
            priority: None,
            queue: None,
            requester: None,
            tags: vec![Tag::parse("Vip").unwrap()],
            confidential: false,
        })
    }
    fn stage(s: &str) -> CaseCommand {
        CaseCommand::MoveToStage(MoveToStage { stage: s.into() })
    }
    fn assign(u: &str) -> CaseCommand {
        CaseCommand::Assign(AssignCase {
            assignee: UserRef::parse(u).unwrap(),
        })
    }
    fn resolve() -> CaseCommand {
        CaseCommand::Resolve(ResolveCase {
            resolution: "fixed".into(),
            note: None,
        })
    }
    fn comment(id: Uuid, parent: Option<Uuid>) -> CaseCommand {
        CaseCommand::Comment(CommentOnCase {
            comment_id: Some(id),
            parent_id: parent,
            body: "Called the customer".into(),
            visibility: Visibility::Public,
            attachments: vec![],
            by_requester: false,
        })
    }

    #[test]
    fn open_uses_definition_defaults() {
        let s = given(&[open()]);
        assert_eq!(s.case().key.as_str(), "CMP-000001");
        assert_eq!(s.case().stage, "new");
        assert_eq!(s.case().priority, "normal");
        assert_eq!(s.case().queue.as_str(), "complaints");
        assert_eq!(s.case().tags, vec![Tag::parse("vip").unwrap()]);
        assert_eq!(s.case().revision, 1);
        assert_eq!(s.case().created_by, "alice");
    }

    #[test]
    fn open_twice_is_a_conflict() {
        given(&[open()]).then_rejects(open(), "CW-CONFLICT");
    }

    #[test]
    fn open_rejects_schema_violations() {
        let mut cmd = open();
        if let CaseCommand::Open(o) = &mut cmd {
            o.data = json!({"amount": "a lot"});
        }
        given(&[]).then_rejects(cmd, "CW-SCHEMA-VIOLATION");
    }

    #[test]
    fn open_rejects_empty_title_and_unknown_priority() {
        let mut cmd = open();
        if let CaseCommand::Open(o) = &mut cmd {
            o.title = "   ".into();
        }
        given(&[]).then_rejects(cmd, "CW-VALIDATION");
        let mut cmd = open();
        if let CaseCommand::Open(o) = &mut cmd {
            o.priority = Some("urgent!".into());
        }
        given(&[]).then_rejects(cmd, "CW-UNKNOWN-PRIORITY");
    }

    #[test]
    fn commands_on_a_missing_case_are_not_found() {
        given(&[]).then_rejects(assign("bob"), "CW-NOT-FOUND");
    }

    #[test]
    fn revise_details_validates_and_records_only_changes() {
        let s = given(&[open()]);
        let e = s.then_one(CaseCommand::ReviseDetails(ReviseDetails {
            title: Some("Kettle leaks".into()),
            description: Some("Since Monday".into()),
            data: None,
        }));
        assert_eq!(
            e,
            CaseEvent::DetailsRevised(DetailsRevised {
                title: None,
                description: Some("Since Monday".into()),
                data: None
            })
        );
        s.then_rejects(
            CaseCommand::ReviseDetails(ReviseDetails {
                title: None,
                description: None,
                data: Some(json!({"product": ""})),
            }),
            "CW-SCHEMA-VIOLATION",
        );
        s.then_rejects(
            CaseCommand::ReviseDetails(ReviseDetails {
                title: Some("Kettle leaks".into()),
                description: None,
                data: None,
            }),
            "CW-NO-CHANGE",
        );
    }

    #[test]
    fn assign_and_reassign() {
        let s = given(&[open(), assign("bob")]);
        assert_eq!(s.case().assignee.as_deref(), Some("bob"));
        s.then_rejects(assign("bob"), "CW-NO-CHANGE");
        let e = s.then_one(assign("carol"));
        assert_eq!(
            e,
            CaseEvent::Assigned(CaseAssigned {
                assignee: "carol".into(),
                previous: Some("bob".into())
            })
        );
    }

    #[test]
    fn unassign_needs_an_assignee() {
        given(&[open()]).then_rejects(CaseCommand::Unassign(UnassignCase {}), "CW-NO-CHANGE");
        let s = given(&[open(), assign("bob"), CaseCommand::Unassign(UnassignCase {})]);
        assert_eq!(s.case().assignee, None);
    }

    #[test]
    fn route_changes_queue_once() {
        let route = |q: &str| {
            CaseCommand::Route(RouteCase {
                queue: QueueName::parse(q).unwrap(),
            })
        };
        let s = given(&[open(), route("refunds")]);
        assert_eq!(s.case().queue.as_str(), "refunds");
        s.then_rejects(route("refunds"), "CW-NO-CHANGE");
    }

    #[test]
    fn stages_follow_the_transitions() {
        let s = given(&[open(), stage("investigating"), stage("waiting")]);
        assert_eq!(s.case().stage, "waiting");
        s.then_rejects(stage("new"), "CW-TRANSITION-NOT-ALLOWED");
        s.then_rejects(stage("nowhere"), "CW-UNKNOWN-STAGE");
        s.then_rejects(stage("waiting"), "CW-NO-CHANGE");
    }

    #[test]
    fn terminal_stage_has_no_way_out() {
        given(&[open(), stage("done")]).then_rejects(stage("investigating"), "CW-TRANSITION-NOT-ALLOWED");
    }

    #[test]
    fn prioritize_checks_the_definition() {
        let p = |x: &str| CaseCommand::Prioritize(PrioritizeCase { priority: x.into() });
        let s = given(&[open(), p("high")]);
        assert_eq!(s.case().priority, "high");
        s.then_rejects(p("high"), "CW-NO-CHANGE");
        s.then_rejects(p("whenever"), "CW-UNKNOWN-PRIORITY");
    }

    #[test]
    fn comments_thread_by_parent() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let s = given(&[open(), comment(a, None), comment(b, Some(a))]);
        assert_eq!(s.case().comments.len(), 2);
        assert_eq!(s.case().comments[1].parent_id, Some(a));
        assert_eq!(s.case().comments[1].visibility, Visibility::Public);
        s.then_rejects(comment(Uuid::now_v7(), Some(Uuid::now_v7())), "CW-UNKNOWN-COMMENT");
        s.then_rejects(comment(a, None), "CW-NO-CHANGE");
        s.then_rejects(
            CaseCommand::Comment(CommentOnCase {
                comment_id: Some(Uuid::now_v7()),
                parent_id: None,
                body: " ".into(),
                visibility: Visibility::Internal,
                attachments: vec![],
                by_requester: false,
            }),
            "CW-VALIDATION",
        );
    }

    #[test]
    fn tag_and_untag() {
        let tag = |t: &str| {
            CaseCommand::Tag(TagCase {
                tag: Tag::parse(t).unwrap(),
            })
        };
        let untag = |t: &str| {
            CaseCommand::Untag(TagCase {
                tag: Tag::parse(t).unwrap(),
            })
        };
        let s = given(&[open(), tag("refund"), untag("vip")]);
        assert_eq!(s.case().tags, vec![Tag::parse("refund").unwrap()]);
        s.then_rejects(tag("refund"), "CW-NO-CHANGE");
        s.then_rejects(untag("vip"), "CW-NO-CHANGE");
    }

    #[test]
    fn files_attach_once_carry_their_facts_and_detach() {
        let file = Uuid::now_v7();
        let facts = FileFacts {
            name: "damage.jpg".into(),
            content_type: "image/jpeg".into(),
            size: 1234,
            sha256: "ab".repeat(32),
        };
        let attach = |f: Option<FileFacts>| CaseCommand::Attach(AttachFile { file_id: file, file: f });
        let detach = CaseCommand::Detach(DetachFile { file_id: file });
        let s = given(&[open(), attach(Some(facts.clone()))]);
        let a = &s.case().attachments[0];
        assert_eq!(
            (a.name.as_str(), a.size, a.sha256.as_str()),
            ("damage.jpg", 1234, facts.sha256.as_str())
        );
        s.then_rejects(attach(Some(facts.clone())), "CW-NO-CHANGE");
        given(&[open()]).then_rejects(attach(None), "CW-VALIDATION");
        let s = given(&[open(), attach(Some(facts)), detach.clone()]);
        assert!(s.case().attachments.is_empty());
        s.then_rejects(detach, "CW-NO-CHANGE");
    }

    #[test]
    fn a_comment_goes_with_files_of_the_case_only() {
        let file = Uuid::now_v7();
        let facts = FileFacts {
            name: "label.pdf".into(),
            content_type: "application/pdf".into(),
            size: 99,
            sha256: "cd".repeat(32),
        };
        let attach = CaseCommand::Attach(AttachFile {
            file_id: file,
            file: Some(facts),
        });
        let with = |files: Vec<Uuid>| {
            CaseCommand::Comment(CommentOnCase {
                comment_id: Some(Uuid::now_v7()),
                parent_id: None,
                body: "The return label".into(),
                visibility: Visibility::Public,
                attachments: files,
                by_requester: false,
            })
        };
        let mut s = given(&[open(), attach]);
        s.then_rejects(with(vec![Uuid::now_v7()]), "CW-VALIDATION");
        s.then_rejects(with(vec![file, file]), "CW-VALIDATION");
        s.and(with(vec![file]), "alice", Utc::now());
        assert_eq!(s.case().comments[0].attachments, [file]);
    }

    #[test]
    fn links_are_unique_and_never_to_self() {
        let target = Uuid::now_v7();
        let link = |t: Uuid| {
            CaseCommand::Link(LinkCase {
                target: t,
                relation: LinkRelation::Duplicates,
            })
        };
        let s = given(&[open(), link(target)]);
        assert_eq!(s.case().links.len(), 1);
        s.then_rejects(link(target), "CW-NO-CHANGE");
        s.then_rejects(link(s.id), "CW-VALIDATION");
    }

    #[test]
    fn what_grows_per_case_is_bounded_with_a_code() {
        let mut history = vec![open()];
        history.extend((0..MAX_COMMENTS).map(|_| comment(Uuid::now_v7(), None)));
        let s = given(&history);
        assert_eq!(s.case().comments.len(), MAX_COMMENTS);
        s.then_rejects(comment(Uuid::now_v7(), None), "CW-LIMIT-REACHED");
        let err = s.when(&comment(Uuid::now_v7(), None)).unwrap_err();
        assert_eq!(err.details(), json!({"what": "comments", "limit": MAX_COMMENTS}));

        let link = |t: Uuid| {
            CaseCommand::Link(LinkCase {
                target: t,
                relation: LinkRelation::RelatesTo,
            })
        };
        let mut history = vec![open()];
        history.extend((0..MAX_LINKS).map(|_| link(Uuid::now_v7())));
        given(&history).then_rejects(link(Uuid::now_v7()), "CW-LIMIT-REACHED");

        let tag = |n: usize| {
            CaseCommand::Tag(TagCase {
                tag: Tag::parse(format!("t{n}")).unwrap(),
            })
        };
        let mut history = vec![open()];
        history.extend((1..MAX_TAGS).map(tag));
        given(&history).then_rejects(tag(9999), "CW-LIMIT-REACHED");
    }

    #[test]
    fn resolve_close_reopen_lifecycle() {
        let s = given(&[open(), stage("done"), resolve()]);
        assert_eq!(s.case().status, CaseStatus::Resolved);
        assert_eq!(s.case().resolution.as_ref().map(|r| r.code.as_str()), Some("fixed"));
        s.then_rejects(resolve(), "CW-CASE-NOT-OPEN");
        s.then_rejects(assign("bob"), "CW-CASE-NOT-OPEN");
        // Comments are still welcome on a resolved case.
        assert!(s.when(&comment(Uuid::now_v7(), None)).is_ok());

        let s = given(&[open(), stage("done"), resolve(), CaseCommand::Close(CloseCase {})]);
        assert_eq!(s.case().status, CaseStatus::Closed);
        s.then_rejects(comment(Uuid::now_v7(), None), "CW-CASE-CLOSED");
        s.then_rejects(assign("bob"), "CW-CASE-CLOSED");

        // Reopening from the terminal stage goes back to the initial stage.
        let e = s.then_one(CaseCommand::Reopen(ReopenCase {
            reason: Some("customer wrote again".into()),
        }));
        assert_eq!(
            e,
            CaseEvent::Reopened(CaseReopened {
                reason: Some("customer wrote again".into()),
                stage: Some("new".into())
            })
        );
    }

    #[test]
    fn close_needs_resolution_and_reopen_needs_a_finished_case() {
        let s = given(&[open()]);
        s.then_rejects(CaseCommand::Close(CloseCase {}), "CW-CASE-NOT-RESOLVED");
        s.then_rejects(CaseCommand::Reopen(ReopenCase { reason: None }), "CW-CASE-ALREADY-OPEN");
        s.then_rejects(
            CaseCommand::Resolve(ResolveCase {
                resolution: "shrug".into(),
                note: None,
            }),
            "CW-UNKNOWN-RESOLUTION",
        );
    }

    #[test]
    fn command_schemas_state_the_bounds_that_handle_enforces() {
        use utoipa::PartialSchema;
        let schema = |s: utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>| serde_json::to_value(s).unwrap();
        let (open, revise) = (schema(OpenCase::schema()), schema(ReviseDetails::schema()));
        let (comment, resolve) = (schema(CommentOnCase::schema()), schema(ResolveCase::schema()));
        let bounds = [
            (&open["properties"]["title"], Some(1), MAX_TITLE),
            (&open["properties"]["description"], None, MAX_TEXT),
            (&revise["properties"]["title"], Some(1), MAX_TITLE),
            (&revise["properties"]["description"], None, MAX_TEXT),
            (&comment["properties"]["body"], Some(1), MAX_TEXT),
            (&resolve["properties"]["resolution"], Some(1), MAX_CODE),
            (&resolve["properties"]["note"], None, MAX_TEXT),
        ];
        for (property, min, max) in bounds {
            assert_eq!(property["maxLength"], json!(max), "{property}");
            assert_eq!(property["minLength"].as_u64(), min, "{property}");
            // What must not be blank says so with a pattern.
            assert_eq!(property.get("pattern").is_some(), min.is_some(), "{property}");
        }
        assert_eq!(open["properties"]["tags"]["maxItems"], json!(MAX_TAGS));
    }

    #[test]
    fn the_not_blank_pattern_admits_exactly_what_text_keeps() {
        // The pattern names Rust's whitespace (`trim`) one by one: engines
        // disagree on what `\s` is.
        use utoipa::PartialSchema;
        let open = serde_json::to_value(OpenCase::schema()).unwrap();
        let pattern = &open["properties"]["title"]["pattern"];
        let validator = crate::types::tests::validator(json!({"type": "string", "pattern": pattern}));
        let mut admitted = 0;
        for s in crate::types::tests::samples() {
            let kept = text("title", &s, usize::MAX, true).is_ok();
            let admits = validator.is_valid(&json!(s));
            assert_eq!(admits, kept, "{s:?}");
            admitted += usize::from(admits);
        }
        assert!(admitted > 1000);
    }

    #[test]
    fn events_round_trip_through_their_cloud_event_type() {
        let s = given(&[open()]);
        for e in s.when(&assign("bob")).unwrap() {
            let back = CaseEvent::from_parts(&e.cloud_event_type(), e.data()).unwrap();
            assert_eq!(back, e);
            assert_eq!(e.cloud_event_type(), "casewire.case.assigned.v1");
        }
    }

    #[test]
    fn commands_reject_unknown_fields_on_the_wire() {
        let err =
            serde_json::from_value::<CaseCommand>(json!({"type": "case.assign", "data": {"assignee": "bob", "x": 1}}))
                .unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
        let ok: CaseCommand = serde_json::from_value(json!({"type": "case.close", "data": {}})).unwrap();
        assert_eq!(ok.name(), "case.close");
    }

    mod tasks {
        //! The task rules, given/when/then like the case's.
        use super::*;
        use crate::task::*;
        use chrono::Duration;

        fn external(id: Uuid) -> CaseCommand {
            CaseCommand::CreateTask(CreateTask {
                task_id: Some(id),
                kind: TaskKind::External,
                name: "Fraud score".into(),
                description: None,
                form: None,
                queue: None,
                assignee: None,
                due: None,
                topic: Some("fraud-score".into()),
                variables: Some(json!({"amount": 1200})),
                priority: 5,
                cause: None,
            })
        }
        fn human(id: Uuid, assignee: Option<&str>) -> CaseCommand {
            CaseCommand::CreateTask(CreateTask {
                task_id: Some(id),
                kind: TaskKind::Human,
                name: "Collect police report".into(),
                description: None,
                form: Some(json!({"type": "object", "required": ["reportNumber"],
                    "properties": {"reportNumber": {"type": "string", "minLength": 3}}})),
                queue: Some(QueueName::parse("claims").unwrap()),
                assignee: assignee.map(|a| UserRef::parse(a).unwrap()),
                due: None,
                topic: None,
                variables: None,
                priority: 0,
                cause: None,
            })
        }
        fn lock(id: Uuid, worker: &str, ms: u64) -> CaseCommand {
            CaseCommand::LockTask(LockTask {
                task_id: id,
                worker_id: worker.into(),
                lock_duration: ms,
            })
        }
        fn fail(id: Uuid, worker: &str, retries: u32, timeout: u64) -> CaseCommand {
            CaseCommand::FailTask(FailTask {
                task_id: id,
                worker_id: worker.into(),
                error_message: Some("scoring service down".into()),
                error_details: None,
                retries,
                retry_timeout: timeout,
            })
        }
        fn complete(id: Uuid, worker: Option<&str>, output: serde_json::Value) -> CaseCommand {
            CaseCommand::CompleteTask(CompleteTask {
                task_id: id,
                worker_id: worker.map(str::to_owned),
                output: Some(output),
            })
        }
        fn task(s: &Scenario, id: Uuid) -> Task {
            s.case().task(id).unwrap().clone()
        }

        #[test]
        fn an_external_task_is_created_waiting_with_its_variables() {
            let id = Uuid::now_v7();
            let s = given(&[open(), external(id)]);
            let t = task(&s, id);
            assert_eq!((t.kind, t.state), (TaskKind::External, TaskState::Created));
            assert_eq!(t.topic.as_deref(), Some("fraud-score"));
            assert_eq!(t.variables, json!({"amount": 1200}));
            assert!(t.is_lockable(Utc::now()));
        }

        #[test]
        fn an_external_task_needs_a_topic_and_a_form_must_compile() {
            let s = given(&[open()]);
            let CaseCommand::CreateTask(mut c) = external(Uuid::now_v7()) else {
                unreachable!()
            };
            c.topic = None;
            s.then_rejects(CaseCommand::CreateTask(c), "CW-VALIDATION");
            let CaseCommand::CreateTask(mut h) = human(Uuid::now_v7(), None) else {
                unreachable!()
            };
            h.form = Some(json!({"type": 12}));
            s.then_rejects(CaseCommand::CreateTask(h), "CW-VALIDATION");
        }

        #[test]
        fn creating_the_same_task_twice_changes_nothing() {
            let id = Uuid::now_v7();
            let s = given(&[open(), external(id)]);
            s.then_rejects(external(id), "CW-NO-CHANGE");
        }

        #[test]
        fn a_second_worker_can_not_lock_a_locked_task_until_the_lock_expires() {
            let id = Uuid::now_v7();
            let mut s = given(&[open(), external(id)]);
            let now = Utc::now();
            s.and(lock(id, "w1", 60_000), "svc", now);
            assert!(matches!(
                s.when_by(&lock(id, "w2", 60_000), "svc", now + Duration::seconds(10)),
                Err(DomainError::TaskLocked { .. })
            ));
            // After the expiry, w2 takes it, and w1 may no longer complete.
            s.and(lock(id, "w2", 60_000), "svc", now + Duration::seconds(61));
            assert!(matches!(
                s.when_by(&complete(id, Some("w1"), json!({})), "svc", now + Duration::seconds(62)),
                Err(DomainError::TaskLocked { .. })
            ));
            s.and(
                complete(id, Some("w2"), json!({"score": 0.3})),
                "svc",
                now + Duration::seconds(62),
            );
            let t = task(&s, id);
            assert_eq!(t.state, TaskState::Completed);
            assert_eq!(t.output, Some(json!({"score": 0.3})));
            assert!(t.lock.is_none());
        }

        #[test]
        fn the_last_locker_completes_after_its_lock_expired_if_nobody_else_locked() {
            let id = Uuid::now_v7();
            let mut s = given(&[open(), external(id)]);
            let now = Utc::now();
            s.and(lock(id, "w1", 1_000), "svc", now);
            s.and(complete(id, Some("w1"), json!({})), "svc", now + Duration::seconds(5));
            assert_eq!(task(&s, id).state, TaskState::Completed);
        }

        #[test]
        fn completing_an_unlocked_external_task_is_refused() {
            let id = Uuid::now_v7();
            let s = given(&[open(), external(id)]);
            s.then_rejects(complete(id, Some("w1"), json!({})), "CW-TASK-LOCKED");
        }

        #[test]
        fn a_failure_with_retries_frees_the_task_after_the_timeout() {
            let id = Uuid::now_v7();
            let mut s = given(&[open(), external(id)]);
            let now = Utc::now();
            s.and(lock(id, "w1", 60_000), "svc", now);
            s.and(fail(id, "w1", 2, 5_000), "svc", now);
            let t = task(&s, id);
            assert_eq!(t.retries, Some(2));
            assert_eq!(t.lock.as_ref().map(|l| l.expires_at), Some(now + Duration::seconds(5)));
            assert!(!t.is_lockable(now + Duration::seconds(1)), "within the retry timeout");
            assert!(t.is_lockable(now + Duration::seconds(6)));
            assert_eq!(t.failure.unwrap().message.as_deref(), Some("scoring service down"));
        }

        #[test]
        fn retries_to_zero_raise_an_incident_and_setting_retries_resolves_it() {
            let id = Uuid::now_v7();
            let mut s = given(&[open(), external(id)]);
            let now = Utc::now();
            s.and(lock(id, "w1", 60_000), "svc", now);
            let events = s.and(fail(id, "w1", 0, 0), "svc", now);
            assert_eq!(
                events.iter().map(CaseEvent::name).collect::<Vec<_>>(),
                ["task-failed", "incident-raised"]
            );
            let t = task(&s, id);
            assert!(t.incident.is_some());
            assert!(!t.is_lockable(now + Duration::hours(1)));
            assert!(matches!(
                s.when_by(&lock(id, "w1", 1_000), "svc", now),
                Err(DomainError::TaskState { .. })
            ));
            s.and(
                CaseCommand::SetTaskRetries(SetTaskRetries {
                    task_id: id,
                    retries: 3,
                }),
                "alice",
                now,
            );
            let t = task(&s, id);
            assert!(t.incident.is_none());
            assert_eq!(t.retries, Some(3));
            assert!(t.is_lockable(now));
        }

        #[test]
        fn a_business_error_ends_the_task_with_its_code() {
            let id = Uuid::now_v7();
            let mut s = given(&[open(), external(id)]);
            let now = Utc::now();
            s.and(lock(id, "w1", 60_000), "svc", now);
            s.and(
                CaseCommand::RaiseTaskError(RaiseTaskError {
                    task_id: id,
                    worker_id: "w1".into(),
                    error_code: "suspected-fraud".into(),
                    error_message: None,
                    variables: Some(json!({"score": 0.97})),
                }),
                "svc",
                now,
            );
            let t = task(&s, id);
            assert_eq!(t.state, TaskState::Errored);
            assert_eq!(t.error.unwrap().error_code, "suspected-fraud");
            s.then_rejects(lock(id, "w2", 1_000), "CW-TASK-STATE");
        }

        #[test]
        fn extend_lock_needs_the_holder_and_a_live_lock_and_unlock_frees() {
            let id = Uuid::now_v7();
            let mut s = given(&[open(), external(id)]);
            let now = Utc::now();
            s.and(lock(id, "w1", 10_000), "svc", now);
            let extend = |w: &str, ms| {
                CaseCommand::ExtendTaskLock(ExtendTaskLock {
                    task_id: id,
                    worker_id: w.into(),
                    new_duration: ms,
                })
            };
            assert!(matches!(
                s.when_by(&extend("w2", 60_000), "svc", now),
                Err(DomainError::TaskLocked { .. })
            ));
            s.and(extend("w1", 60_000), "svc", now + Duration::seconds(5));
            assert_eq!(task(&s, id).lock.unwrap().expires_at, now + Duration::seconds(65));
            assert!(matches!(
                s.when_by(&extend("w1", 1_000), "svc", now + Duration::seconds(70)),
                Err(DomainError::TaskLocked { .. })
            ));
            s.and(CaseCommand::UnlockTask(TaskRef { task_id: id }), "svc", now);
            assert!(task(&s, id).is_lockable(now));
        }

        #[test]
        fn a_lock_duration_out_of_range_is_refused() {
            let id = Uuid::now_v7();
            let s = given(&[open(), external(id)]);
            s.then_rejects(lock(id, "w1", 0), "CW-VALIDATION");
            s.then_rejects(lock(id, "w1", MAX_LOCK_MS + 1), "CW-VALIDATION");
        }

        #[test]
        fn a_human_task_is_claimed_and_completed_with_output_that_fits_its_form() {
            let id = Uuid::now_v7();
            let mut s = given(&[open(), human(id, None)]);
            let now = Utc::now();
            s.and(CaseCommand::ClaimTask(TaskRef { task_id: id }), "bob", now);
            assert_eq!(task(&s, id).state, TaskState::Claimed);
            assert_eq!(task(&s, id).assignee.as_deref(), Some("bob"));
            // Someone else may neither claim nor complete it.
            assert!(matches!(
                s.when_by(&CaseCommand::ClaimTask(TaskRef { task_id: id }), "carol", now),
                Err(DomainError::TaskState { .. })
            ));
            assert!(matches!(
                s.when_by(&complete(id, None, json!({"reportNumber": "PR-1234"})), "carol", now),
                Err(DomainError::TaskLocked { .. })
            ));
            assert!(matches!(
                s.when_by(&complete(id, None, json!({"reportNumber": 7})), "bob", now),
                Err(DomainError::SchemaViolation { .. })
            ));
            s.and(complete(id, None, json!({"reportNumber": "PR-1234"})), "bob", now);
            let t = task(&s, id);
            assert_eq!(t.state, TaskState::Completed);
            assert_eq!(t.ended_by.as_deref(), Some("bob"));
            s.then_rejects(
                CaseCommand::CancelTask(CancelTask {
                    task_id: id,
                    reason: None,
                }),
                "CW-TASK-STATE",
            );
        }

        #[test]
        fn unclaim_and_reassign_move_a_human_task_between_people() {
            let id = Uuid::now_v7();
            let mut s = given(&[open(), human(id, Some("bob"))]);
            let now = Utc::now();
            // A task meant for bob is bob's to claim.
            assert!(matches!(
                s.when_by(&CaseCommand::ClaimTask(TaskRef { task_id: id }), "carol", now),
                Err(DomainError::TaskLocked { .. })
            ));
            s.and(CaseCommand::ClaimTask(TaskRef { task_id: id }), "bob", now);
            s.and(CaseCommand::UnclaimTask(TaskRef { task_id: id }), "bob", now);
            let t = task(&s, id);
            assert_eq!((t.state, t.assignee), (TaskState::Created, None));
            s.and(
                CaseCommand::AssignTask(AssignTask {
                    task_id: id,
                    assignee: Some(UserRef::parse("carol").unwrap()),
                }),
                "alice",
                now,
            );
            s.and(CaseCommand::ClaimTask(TaskRef { task_id: id }), "carol", now);
            assert_eq!(task(&s, id).state, TaskState::Claimed);
        }

        #[test]
        fn workers_do_not_claim_and_people_do_not_lock() {
            let (h, e) = (Uuid::now_v7(), Uuid::now_v7());
            let s = given(&[open(), human(h, None), external(e)]);
            s.then_rejects(CaseCommand::ClaimTask(TaskRef { task_id: e }), "CW-VALIDATION");
            s.then_rejects(lock(h, "w1", 1_000), "CW-VALIDATION");
            s.then_rejects(lock(Uuid::now_v7(), "w1", 1_000), "CW-UNKNOWN-TASK");
        }

        #[test]
        fn a_resolved_case_takes_no_new_task_and_a_closed_one_no_task_command() {
            let id = Uuid::now_v7();
            let s = given(&[open(), external(id), resolve()]);
            s.then_rejects(external(Uuid::now_v7()), "CW-CASE-NOT-OPEN");
            // Work already running may still finish.
            s.then_rejects(complete(id, Some("w1"), json!({})), "CW-TASK-LOCKED");
            let closed = given(&[open(), external(id), resolve(), CaseCommand::Close(CloseCase {})]);
            closed.then_rejects(lock(id, "w1", 1_000), "CW-CASE-CLOSED");
        }

        #[test]
        fn task_events_round_trip_through_their_wire_form() {
            let id = Uuid::now_v7();
            let mut s = given(&[open(), external(id)]);
            let events = s.and(lock(id, "w1", 1_000), "svc", Utc::now());
            for e in events {
                let back = CaseEvent::from_parts(&e.cloud_event_type(), e.data()).unwrap();
                assert_eq!(back, e);
            }
        }
    }

    fn mail(comment: Uuid, from: &str, message_id: &str) -> CaseCommand {
        use crate::email::{MailAddress, ReceiveEmail, ThreadedBy};
        CaseCommand::ReceiveEmail(ReceiveEmail {
            comment_id: comment,
            mailbox: "support".into(),
            message_id: message_id.into(),
            fingerprint: "f".into(),
            from: MailAddress {
                name: Some("Dave".into()),
                email: from.into(),
            },
            to: vec![],
            cc: vec![MailAddress {
                name: None,
                email: "erin@example.com".into(),
            }],
            subject: "Kettle".into(),
            body: "It leaks".into(),
            threaded_by: ThreadedBy::New,
            files: vec![],
            original_file_id: None,
            headers: vec![],
            no_auto_reply: None,
        })
    }

    #[test]
    fn a_mail_is_a_public_comment_by_its_sender_and_remembers_its_thread() {
        let mut s = given(&[open()]);
        let id = Uuid::now_v7();
        s.and(mail(id, "dave@example.com", "m1@example.com"), "intake", Utc::now());
        let c = s.case();
        assert_eq!(
            c.comments.last().map(|x| (x.id, x.author.as_str(), x.visibility)),
            Some((id, "dave@example.com", Visibility::Public))
        );
        assert_eq!(c.mail.participants, ["dave@example.com", "erin@example.com"]);
        assert_eq!(c.mail.message_ids, ["m1@example.com"]);
        assert_eq!(c.mail.mailbox.as_deref(), Some("support"));
        assert!(c.mail.is_participant("DAVE@example.com"));
    }

    #[test]
    fn the_same_mail_comment_twice_is_no_change_and_a_bad_sender_is_refused() {
        let mut s = given(&[open()]);
        let id = Uuid::now_v7();
        s.and(mail(id, "dave@example.com", "m1@example.com"), "intake", Utc::now());
        s.then_rejects(mail(id, "dave@example.com", "m1@example.com"), "CW-NO-CHANGE");
        s.then_rejects(
            mail(Uuid::now_v7(), "Dave@Example.com", "m2@example.com"),
            "CW-VALIDATION",
        );
        s.then_rejects(mail(Uuid::now_v7(), "dave@example.com", " "), "CW-VALIDATION");
    }

    #[test]
    fn an_sla_threshold_is_recorded_once_per_clock_and_cycle() {
        use crate::sla::{Metric, RecordSla, Threshold};
        let mut s = given(&[open()]);
        let record = |metric, cycle, threshold| {
            CaseCommand::RecordSla(RecordSla {
                metric,
                cycle,
                threshold,
                at: Utc::now(),
                goal: chrono::Duration::hours(4),
            })
        };
        s.and(record(Metric::FirstResponse, 1, Threshold::Warning), "sla", Utc::now());
        s.and(record(Metric::FirstResponse, 1, Threshold::Breached), "sla", Utc::now());
        s.and(record(Metric::NextResponse, 2, Threshold::Breached), "sla", Utc::now());
        assert_eq!(s.case().sla.len(), 3);
        s.then_rejects(record(Metric::FirstResponse, 1, Threshold::Breached), "CW-NO-CHANGE");
        s.then_rejects(record(Metric::Resolution, 0, Threshold::Warning), "CW-VALIDATION");
        assert!(s.case().comments.is_empty(), "a record is no comment");
    }

    #[test]
    fn a_bounce_marks_the_recipient_undeliverable_once_and_adds_no_comment() {
        use crate::email::RecordBounce;
        let mut s = given(&[open()]);
        let bounce = || {
            CaseCommand::RecordBounce(RecordBounce {
                message_id: "dsn1@mx".into(),
                recipients: vec!["gone@example.com".into()],
                status: Some("5.1.1".into()),
                diagnostic: None,
                original_message_id: None,
            })
        };
        s.and(bounce(), "intake", Utc::now());
        assert_eq!(s.case().mail.undeliverable, ["gone@example.com"]);
        assert!(s.case().comments.is_empty());
        s.then_rejects(bounce(), "CW-NO-CHANGE");
    }

    #[test]
    fn an_undeliverable_address_that_writes_again_is_reachable_again() {
        use crate::email::RecordBounce;
        let mut s = given(&[open()]);
        let bounce = CaseCommand::RecordBounce(RecordBounce {
            message_id: "undeliverable.case-1.c1@casewire.local".into(),
            recipients: vec!["dave@example.com".into()],
            status: None,
            diagnostic: Some("550 mailbox full".into()),
            original_message_id: Some("case-1.c1@casewire.local".into()),
        });
        s.and(bounce, "notify-publisher", Utc::now());
        assert_eq!(s.case().mail.undeliverable, ["dave@example.com"]);
        s.and(
            mail(Uuid::now_v7(), "dave@example.com", "m7@example.com"),
            "intake",
            Utc::now(),
        );
        assert!(s.case().mail.undeliverable.is_empty(), "{:?}", s.case().mail);
    }

    #[test]
    fn a_closed_case_takes_no_mail() {
        let s = given(&[open(), resolve(), CaseCommand::Close(CloseCase {})]);
        s.then_rejects(
            mail(Uuid::now_v7(), "dave@example.com", "m1@example.com"),
            "CW-CASE-CLOSED",
        );
    }
}
