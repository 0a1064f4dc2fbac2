//! The mail quarantine port: mail that could not be taken (unreadable, too
//! big, a blocked attachment) or is held for review (a stranger's reply to
//! a case), kept whole until an admin releases or drops it. The record is
//! here; the raw message is in the `BlobStore` under [`Held::blob`].

use async_trait::async_trait;
use casewire_domain::types::TenantId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::StoreError;

/// One held mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Held {
    /// Derived from the tenant, the mailbox and the bytes' sha256, so the
    /// same mail held twice (a webhook retry, the reader after a crash) is
    /// one entry.
    pub id: Uuid,
    #[schema(value_type = String)]
    pub tenant: TenantId,
    /// The mailbox it came in through.
    pub mailbox: String,
    /// Why, as a stable code: `unreadable`, `too-big`, `too-many-parts`,
    /// `too-deep`, `too-much-content`, `blocked-attachment`,
    /// `unknown-sender`.
    pub reason: String,
    /// The reason in words.
    pub message: String,
    /// `From`, when the headers could be read.
    pub from: Option<String>,
    /// `Subject`, when the headers could be read.
    pub subject: Option<String>,
    /// Size of the raw message in bytes.
    pub size: u64,
    /// Lower-case hex sha256 of the raw message.
    pub sha256: String,
    pub held_at: DateTime<Utc>,
    /// Key of the raw message in the blob store.
    pub blob: String,
    /// For `unknown-sender`: the case the mail threads into.
    pub case_id: Option<Uuid>,
}

/// Where held mail is recorded.
#[async_trait]
pub trait MailQuarantine: Send + Sync + 'static {
    /// Records a held mail; false when an entry of that id exists already
    /// (which is kept as it was).
    async fn hold(&self, held: &Held) -> Result<bool, StoreError>;
    /// The tenant's held mail, newest first; of one mailbox when named.
    async fn held(&self, tenant: &TenantId, mailbox: Option<&str>, limit: usize) -> Result<Vec<Held>, StoreError>;
    /// One held mail of the tenant.
    async fn held_one(&self, tenant: &TenantId, id: Uuid) -> Result<Option<Held>, StoreError>;
    /// Forgets a held mail (released or dropped); false when there was none.
    async fn forget(&self, tenant: &TenantId, id: Uuid) -> Result<bool, StoreError>;
}
