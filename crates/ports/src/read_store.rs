//! The read store: query-shaped projections of the events (case list and
//! detail, timeline), the versioned definitions, the consumers' checkpoints
//! and the command log behind `GET /api/v1/commands/{id}`.

use async_trait::async_trait;
use base64::Engine as _;
use casewire_domain::command::Visibility;
use casewire_domain::{Case, CaseDefinition};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{Clause, EventRecord, Rejection, StoreError};

/// What the case list is sorted by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum SortKey {
    #[default]
    UpdatedAt,
    CreatedAt,
    Key,
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
    pub queue: Option<String>,
    pub assignee: Option<String>,
    pub priority: Option<String>,
    pub tag: Option<String>,
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
    pub key: String,
    pub definition_id: String,
    pub title: String,
    pub stage: String,
    pub status: String,
    pub priority: String,
    pub queue: String,
    pub assignee: Option<String>,
    pub tags: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub revision: u64,
}

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
        }
    }

    /// The value this summary sorts by under `key`, as stored in cursors.
    pub fn sort_value(&self, key: SortKey) -> String {
        match key {
            SortKey::UpdatedAt => sortable_time(self.updated_at),
            SortKey::CreatedAt => sortable_time(self.created_at),
            SortKey::Key => self.key.clone(),
        }
    }
}

/// The texts `q` searches in: key, title, description, tags, comments and
/// the requester. One list, so every adapter finds the same cases.
/// `with_internal: false` leaves internal comments out (the public index).
pub fn searchable_text(case: &Case, with_internal: bool) -> Vec<&str> {
    let mut text = vec![case.key.as_str(), case.title.as_str(), case.description.as_str()];
    text.extend(case.tags.iter().map(String::as_str));
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

/// An uploaded file, as the storage API keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileRecord {
    pub id: Uuid,
    pub tenant: String,
    pub name: String,
    pub content_type: String,
    pub size: u64,
    /// Lower-case hex SHA-256 of the bytes.
    pub sha256: String,
    pub uploaded_by: String,
    pub uploaded_at: DateTime<Utc>,
    /// The cases the file is attached to now.
    pub cases: Vec<Uuid>,
    pub state: FileState,
    /// When the last case link was removed.
    pub detached_at: Option<DateTime<Utc>>,
}

/// Where a file is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum FileState {
    /// A presigned upload was handed out; the bytes are not confirmed yet.
    /// Swept like an unattached upload when never completed.
    Pending,
    /// Uploaded, attached to no case yet; swept after `storage.unattached_ttl_secs`.
    Uploaded,
    /// An attach was accepted: kept for good (the case history names it).
    Pinned,
    /// Claimed by the sweeper; its bytes are being removed.
    Sweeping,
    /// Detached from every case longer than the retention rule allows:
    /// claimed for purging, its bytes are being removed.
    Purging,
    /// Its bytes were purged by the retention rule; the record stays,
    /// because the case history names it.
    Purged,
}

impl FileState {
    /// The stored name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            FileState::Pending => "pending",
            FileState::Uploaded => "uploaded",
            FileState::Pinned => "pinned",
            FileState::Sweeping => "sweeping",
            FileState::Purging => "purging",
            FileState::Purged => "purged",
        }
    }
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

/// Lifecycle of an accepted command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum CommandStatus {
    /// Accepted, not yet picked up by the engine.
    Pending,
    /// The engine is deciding it.
    Processing,
    /// Decided; its events are stored.
    Processed,
    /// Decided against; `error` says why.
    Rejected,
    /// Cancelled while pending; it will never run.
    Cancelled,
}

impl CommandStatus {
    /// Whether the command will not change any more.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            CommandStatus::Processed | CommandStatus::Rejected | CommandStatus::Cancelled
        )
    }
}

/// The command log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommandRecord {
    pub id: Uuid,
    pub tenant: String,
    pub case_id: Uuid,
    #[serde(rename = "type")]
    pub command_type: String,
    pub status: CommandStatus,
    pub actor: String,
    pub accepted_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The case revision after the command, when processed.
    pub revision: Option<u64>,
    /// The rejection, when rejected.
    pub error: Option<Rejection>,
}

/// What `claim_command` found.
#[derive(Debug, Clone, PartialEq)]
// One per handled command, moved straight into a match: boxing the record
// would cost an allocation for nothing.
#[allow(clippy::large_enum_variant)]
pub enum ClaimResult {
    /// It was pending or processing (a redelivery); the caller decides it now.
    Claimed,
    /// It was cancelled; skip it.
    Cancelled,
    /// It was decided already; re-announce the outcome.
    Finished(CommandRecord),
    /// Never recorded (published by another producer); the caller decides it.
    Unknown,
}

/// What `cancel_command` found.
#[derive(Debug, Clone, PartialEq)]
pub enum CancelResult {
    Cancelled(CommandRecord),
    NotPending(CommandRecord),
    NotFound,
}

/// Query-side storage.
#[async_trait]
pub trait ReadStore: Send + Sync + 'static {
    /// Stores a case's new state and its event's timeline entry, only if `case.revision` is newer; returns whether it applied.
    async fn apply_case(&self, case: &Case, event: &EventRecord) -> Result<bool, StoreError>;
    /// The case detail.
    async fn get_case(&self, tenant: &str, id: Uuid) -> Result<Option<Case>, StoreError>;
    /// The case detail by human key.
    async fn get_case_by_key(&self, tenant: &str, key: &str) -> Result<Option<Case>, StoreError>;
    /// One page of the case list.
    async fn list_cases(&self, tenant: &str, query: &CaseQuery) -> Result<Page<CaseSummary>, StoreError>;
    /// The events of one case, oldest first.
    async fn timeline(&self, tenant: &str, id: Uuid) -> Result<Vec<EventRecord>, StoreError>;
    /// Stores a definition as the next version of its id and returns it with that version.
    async fn put_definition(&self, tenant: &str, definition: &CaseDefinition) -> Result<CaseDefinition, StoreError>;
    /// A definition's given version, or its newest with `None`.
    async fn get_definition(
        &self,
        tenant: &str,
        id: &str,
        version: Option<u32>,
    ) -> Result<Option<CaseDefinition>, StoreError>;
    /// The newest version of every definition.
    async fn list_definitions(&self, tenant: &str) -> Result<Vec<CaseDefinition>, StoreError>;
    /// A consumer's checkpoint (last handled event position).
    async fn checkpoint(&self, consumer: &str) -> Result<Option<u64>, StoreError>;
    /// Saves a consumer's checkpoint.
    async fn save_checkpoint(&self, consumer: &str, position: u64) -> Result<(), StoreError>;
    /// Records a newly accepted command as pending.
    async fn insert_command(&self, record: &CommandRecord) -> Result<(), StoreError>;
    /// A command's log entry.
    async fn get_command(&self, id: Uuid) -> Result<Option<CommandRecord>, StoreError>;
    /// Moves a pending command to processing, atomically, and says what it found.
    async fn claim_command(&self, id: Uuid) -> Result<ClaimResult, StoreError>;
    /// Cancels a command if, and only if, it is still pending.
    async fn cancel_command(&self, id: Uuid) -> Result<CancelResult, StoreError>;
    /// Whether any command of the case is still pending or processing.
    async fn has_unfinished_commands(&self, tenant: &str, case_id: Uuid) -> Result<bool, StoreError>;
    /// Records a command's final state (processed or rejected), inserting it if unknown.
    async fn finish_command(&self, record: &CommandRecord) -> Result<(), StoreError>;
    /// Deletes every case projection and the projector checkpoints (for replay).
    async fn reset_projections(&self) -> Result<(), StoreError>;
    /// Records an uploaded file (its bytes are already stored).
    async fn insert_file(&self, file: &FileRecord) -> Result<(), StoreError>;
    /// Replaces a `Pending` record with the completed one (same id), only
    /// if it is still pending; returns whether it was.
    async fn complete_file(&self, file: &FileRecord) -> Result<bool, StoreError>;
    /// A file of the tenant.
    async fn get_file(&self, tenant: &str, id: Uuid) -> Result<Option<FileRecord>, StoreError>;
    /// Marks a file as wanted by a case (before an attach is accepted), so the
    /// sweeper never takes it. False when the file is gone or being swept.
    async fn pin_file(&self, tenant: &str, id: Uuid) -> Result<bool, StoreError>;
    /// Undoes the pin of a rejected attach: a pinned file no case ever held
    /// becomes `uploaded` again, as if uploaded at `now` (so the sweeper
    /// gives a concurrent, accepted attach of the same file a whole TTL to
    /// be projected). False when the file is held by a case or not pinned.
    async fn unpin_file(&self, tenant: &str, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Adds (`attached`) or removes a case link, idempotently; the
    /// projector calls it for `attachment-added` / `attachment-removed`.
    async fn link_file(
        &self,
        tenant: &str,
        id: Uuid,
        case_id: Uuid,
        attached: bool,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Claims for removal, atomically, every unpinned (uploaded or pending) file uploaded before
    /// `cutoff` (and those claimed before but not yet removed) and returns
    /// them; a claimed file can no longer be pinned.
    async fn claim_unattached_files(&self, cutoff: DateTime<Utc>, limit: usize) -> Result<Vec<FileRecord>, StoreError>;
    /// Claims for purging, atomically, every pinned file attached to no case
    /// since before `cutoff` (and those claimed before but not finished); a
    /// claimed file can no longer be pinned.
    async fn claim_detached_files(&self, cutoff: DateTime<Utc>, limit: usize) -> Result<Vec<FileRecord>, StoreError>;
    /// Marks a claimed file as purged (its bytes are gone, its record stays).
    async fn mark_purged(&self, tenant: &str, id: Uuid) -> Result<(), StoreError>;
    /// Forgets a file (its bytes are gone).
    async fn delete_file(&self, tenant: &str, id: Uuid) -> Result<(), StoreError>;
    /// Checks that the backend answers.
    async fn ping(&self) -> Result<(), StoreError>;
}
