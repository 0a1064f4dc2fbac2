//! The file catalog port: the records of uploaded files (their bytes are in
//! the `BlobStore`), their pins and case links, and the sweeper's claims.

use async_trait::async_trait;
use casewire_domain::types::TenantId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::StoreError;

/// An uploaded file, as the storage API keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileRecord {
    pub id: Uuid,
    #[schema(value_type = String)]
    pub tenant: TenantId,
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

/// Where file records live. Not derived from events: an upload is not a
/// case event.
#[async_trait]
pub trait FileCatalog: Send + Sync + 'static {
    /// Records an uploaded file (its bytes are already stored).
    async fn insert_file(&self, file: &FileRecord) -> Result<(), StoreError>;
    /// Replaces a `Pending` record with the completed one (same id), only
    /// if it is still pending; returns whether it was.
    async fn complete_file(&self, file: &FileRecord) -> Result<bool, StoreError>;
    /// A file of the tenant.
    async fn get_file(&self, tenant: &TenantId, id: Uuid) -> Result<Option<FileRecord>, StoreError>;
    /// Marks a file as wanted by a case (before an attach is accepted), so the
    /// sweeper never takes it. False when the file is gone or being swept.
    async fn pin_file(&self, tenant: &TenantId, id: Uuid) -> Result<bool, StoreError>;
    /// Undoes the pin of a rejected attach: a pinned file no case ever held
    /// becomes `uploaded` again, as if uploaded at `now` (so the sweeper
    /// gives a concurrent, accepted attach of the same file a whole TTL to
    /// be projected). False when the file is held by a case or not pinned.
    async fn unpin_file(&self, tenant: &TenantId, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Adds (`attached`) or removes a case link, idempotently; the
    /// projector calls it for `attachment-added` / `attachment-removed`.
    async fn link_file(
        &self,
        tenant: &TenantId,
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
    async fn mark_purged(&self, tenant: &TenantId, id: Uuid) -> Result<(), StoreError>;
    /// Forgets a file (its bytes are gone).
    async fn delete_file(&self, tenant: &TenantId, id: Uuid) -> Result<(), StoreError>;
}
