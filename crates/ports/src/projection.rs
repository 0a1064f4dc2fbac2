//! The case projection port: the case list and detail and each case's
//! timeline, derived from the events by the projector and rebuilt by replay.

use async_trait::async_trait;
use base64::Engine as _;
use casewire_domain::command::Visibility;
use casewire_domain::types::{CaseKey, QueueName, Tag, TenantId};
use casewire_domain::{Case, Task, TaskKind, TaskState};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{Clause, EventRecord, StoreError};

/// What the case list is sorted by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum SortKey {
    #[default]
    UpdatedAt,
    CreatedAt,
    Key,
    /// The earliest due time of a running SLA clock; cases without one last.
    SlaDue,
}

/// A position in a sorted list: the sort value and id of the last item seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    #[serde(rename = "v")]
    pub value: String,
    #[serde(rename = "i")]
    pub id: Uuid,
}

impl Cursor {
    /// Encodes the cursor opaquely (URL-safe base64 of JSON).
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    /// Decodes a cursor from `encode`; `None` for anything else.
    pub fn decode(raw: &str) -> Option<Cursor> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// Filters, sort and paging of the case list. `None` means "any".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaseQuery {
    pub stage: Option<String>,
    pub queue: Option<QueueName>,
    pub assignee: Option<String>,
    /// Only cases nobody is assigned to.
    pub unassigned: bool,
    pub priority: Option<String>,
    pub tag: Option<Tag>,
    pub status: Option<String>,
    pub definition: Option<String>,
    /// Full-text words; every word must match (prefix match).
    pub text: Option<String>,
    /// Search only what every viewer may read: internal comments are left
    /// out, so their words can not be probed through search.
    pub public_text_only: bool,
    /// The policy's visibility clauses, ORed (an empty list matches
    /// nothing); `None` lists every case of the tenant (internal callers).
    pub visible: Option<Vec<Clause>>,
    /// Cases in this SLA state at this time.
    pub sla: Option<(crate::SlaState, DateTime<Utc>)>,
    pub sort: SortKey,
    pub descending: bool,
    pub limit: usize,
    pub after: Option<Cursor>,
}

/// A case in the list: the fields a list view shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaseSummary {
    pub id: Uuid,
    // Plain strings in the schema, as in the JSON.
    #[schema(value_type = String)]
    pub key: CaseKey,
    pub definition_id: String,
    pub title: String,
    pub stage: String,
    pub status: String,
    pub priority: String,
    #[schema(value_type = String)]
    pub queue: QueueName,
    pub assignee: Option<String>,
    #[schema(value_type = Vec<String>)]
    pub tags: Vec<Tag>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub revision: u64,
    /// The earliest due time of a running SLA clock (the scheduler's,
    /// filled in by the store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla_due_at: Option<DateTime<Utc>>,
    /// When a resolved or closed case was resolved. Summaries projected
    /// before this field existed lack it until the case changes again or
    /// `casewire replay` rebuilds them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
}

/// The sort value of a missing SLA due time: after every time.
pub const NO_DUE_TIME: &str = "~";

impl CaseSummary {
    /// The summary of a case detail.
    pub fn of(case: &Case) -> Self {
        CaseSummary {
            id: case.id,
            key: case.key.clone(),
            definition_id: case.definition_id.clone(),
            title: case.title.clone(),
            stage: case.stage.clone(),
            status: case.status.as_str().to_owned(),
            priority: case.priority.clone(),
            queue: case.queue.clone(),
            assignee: case.assignee.clone(),
            tags: case.tags.clone(),
            created_at: case.created_at.unwrap_or_default(),
            updated_at: case.updated_at.unwrap_or_default(),
            revision: case.revision,
            sla_due_at: None,
            resolved_at: case
                .resolution
                .as_ref()
                .filter(|_| case.status != casewire_domain::case::CaseStatus::Open)
                .map(|r| r.at),
        }
    }

    /// The value this summary sorts by under `key`, as stored in cursors.
    pub fn sort_value(&self, key: SortKey) -> String {
        match key {
            SortKey::UpdatedAt => sortable_time(self.updated_at),
            SortKey::CreatedAt => sortable_time(self.created_at),
            SortKey::Key => self.key.to_string(),
            SortKey::SlaDue => self.sla_due_at.map_or_else(|| NO_DUE_TIME.to_owned(), sortable_time),
        }
    }
}

/// The texts `q` searches in: key, title, description, tags, comments and
/// the requester. One list, so every adapter finds the same cases.
/// `with_internal: false` leaves internal comments out (the public index).
pub fn searchable_text(case: &Case, with_internal: bool) -> Vec<&str> {
    let mut text = vec![case.key.as_str(), case.title.as_str(), case.description.as_str()];
    text.extend(case.tags.iter().map(Tag::as_str));
    text.extend(
        case.comments
            .iter()
            .filter(|c| with_internal || c.visibility == Visibility::Public)
            .map(|c| c.body.as_str()),
    );
    if let Some(r) = &case.requester {
        text.push(r.email.as_str());
        text.extend(r.name.as_deref());
    }
    text
}

/// A time rendered so that string order is time order.
pub fn sortable_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl Page<CaseSummary> {
    /// A page from items fetched in sort order with one more than `limit`:
    /// the extra item only says that more follow, and the cursor points at
    /// the last item kept.
    pub fn of_overfetch(mut items: Vec<CaseSummary>, limit: usize, sort: SortKey) -> Self {
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|last| {
                Cursor {
                    value: last.sort_value(sort),
                    id: last.id,
                }
                .encode()
            })
        } else {
            None
        };
        Page { items, next_cursor }
    }
}

/// Tasks across cases: the task inbox and a worker's fetch. `None` means
/// "any"; the adapters narrow the cases with the fields they index, and
/// [`TaskQuery::matches`] decides each task, so every adapter answers the
/// same.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskQuery {
    pub task_id: Option<Uuid>,
    pub case_id: Option<Uuid>,
    pub kind: Option<TaskKind>,
    pub states: Option<Vec<TaskState>>,
    /// External tasks of any of these topics.
    pub topics: Option<Vec<String>>,
    pub assignee: Option<String>,
    pub queue: Option<QueueName>,
    /// Only tasks a worker may lock at this time (waiting, no incident,
    /// past their retry timeout, lock free or expired).
    pub lockable_at: Option<DateTime<Utc>>,
    /// The policy's visibility clauses for the cases, as in [`CaseQuery`].
    pub visible: Option<Vec<Clause>>,
    /// At most this many, highest priority first, then oldest.
    pub limit: usize,
}

impl TaskQuery {
    /// Whether `task` is one the query asks for (the case-level filters,
    /// tenant and visibility, are the adapter's).
    pub fn matches(&self, task: &Task) -> bool {
        self.task_id.is_none_or(|id| task.id == id)
            && self.kind.is_none_or(|k| task.kind == k)
            && self.states.as_ref().is_none_or(|s| s.contains(&task.state))
            && self
                .topics
                .as_ref()
                .is_none_or(|t| task.topic.as_ref().is_some_and(|topic| t.contains(topic)))
            && self.assignee.as_ref().is_none_or(|a| task.assignee.as_ref() == Some(a))
            && self.queue.as_ref().is_none_or(|q| task.queue.as_ref() == Some(q))
            && self.lockable_at.is_none_or(|now| task.is_lockable(now))
    }

    /// Picks the matching tasks of `cases` in the answer's order, at most
    /// `limit` (at least 1).
    pub fn select(&self, cases: Vec<Case>) -> Vec<TaskItem> {
        let mut items: Vec<TaskItem> = cases
            .into_iter()
            .flat_map(|case| {
                let summary = CaseSummary::of(&case);
                case.tasks
                    .into_iter()
                    .filter(|t| self.matches(t))
                    .map(move |task| TaskItem {
                        case: summary.clone(),
                        task,
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        items.sort_by(|a, b| {
            b.task
                .priority
                .cmp(&a.task.priority)
                .then(a.task.created_at.cmp(&b.task.created_at))
                .then(a.task.id.cmp(&b.task.id))
        });
        items.truncate(self.limit.max(1));
        items
    }
}

/// A task with the case it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskItem {
    pub case: CaseSummary,
    pub task: Task,
}

/// Cases an adapter reads to answer one task query: enough that a page of
/// tasks is rarely short, bounded so a query stays cheap.
pub const TASK_SCAN_CASES: usize = 1_000;

/// The query side of cases: what the projector writes and the API reads.
#[async_trait]
pub trait CaseProjection: Send + Sync + 'static {
    /// Stores a case's new state and its event's timeline entry, only if `case.revision` is newer; returns whether it applied.
    async fn apply_case(&self, case: &Case, event: &EventRecord) -> Result<bool, StoreError>;
    /// Stores a batch of `(state, event)` pairs in order, several per case
    /// allowed, as [`apply_case`](Self::apply_case) would one by one; returns
    /// whether each applied. Adapters that can do it in one transaction
    /// write every timeline entry and only each case's last state, which
    /// leaves the same result.
    async fn apply_cases(&self, batch: &[(Case, EventRecord)]) -> Result<Vec<bool>, StoreError> {
        let mut applied = Vec::with_capacity(batch.len());
        for (case, event) in batch {
            applied.push(self.apply_case(case, event).await?);
        }
        Ok(applied)
    }
    /// Replay's bulk write of timeline entries, in any order; an entry
    /// already stored is left as it is. Replay writes the whole log this
    /// way and the case states once each at the end ([`put_cases`](Self::put_cases)),
    /// instead of a state per event.
    async fn add_timeline(&self, events: &[EventRecord]) -> Result<(), StoreError>;
    /// Replay's bulk write of case states with their tags and search text,
    /// each only if its revision is newer than the stored one.
    async fn put_cases(&self, cases: &[Case]) -> Result<(), StoreError>;
    /// The case detail.
    async fn get_case(&self, tenant: &TenantId, id: Uuid) -> Result<Option<Case>, StoreError>;
    /// The case detail by human key.
    async fn get_case_by_key(&self, tenant: &TenantId, key: &CaseKey) -> Result<Option<Case>, StoreError>;
    /// One page of the case list.
    async fn list_cases(&self, tenant: &TenantId, query: &CaseQuery) -> Result<Page<CaseSummary>, StoreError>;
    /// The events of one case, oldest first.
    async fn timeline(&self, tenant: &TenantId, id: Uuid) -> Result<Vec<EventRecord>, StoreError>;
    /// Deletes every case projection and the projector checkpoints (for replay).
    async fn reset_projections(&self) -> Result<(), StoreError>;
    /// The case that has seen one of `message_ids` (the most recently
    /// updated, if several have): how a reply finds its case.
    async fn case_by_message_id(&self, tenant: &TenantId, message_ids: &[String]) -> Result<Option<Uuid>, StoreError>;
    /// Tasks across the tenant's cases ([`TaskQuery::select`] over the
    /// cases with a matching task, at most [`TASK_SCAN_CASES`] of them).
    async fn list_tasks(&self, tenant: &TenantId, query: &TaskQuery) -> Result<Vec<TaskItem>, StoreError>;
}
