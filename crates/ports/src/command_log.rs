//! The command log port: the lifecycle of every accepted command, behind
//! `GET /api/v1/commands/{id}`, cancel, and the engine's claim.

use async_trait::async_trait;
use casewire_domain::types::TenantId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{Rejection, StoreError};

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
    #[schema(value_type = String)]
    pub tenant: TenantId,
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

impl CommandRecord {
    /// The entry of a command just accepted: pending, nothing decided.
    pub fn pending(envelope: &crate::CommandEnvelope) -> CommandRecord {
        CommandRecord {
            id: envelope.command_id,
            tenant: envelope.tenant.clone(),
            case_id: envelope.case_id,
            command_type: envelope.command.name().to_owned(),
            status: CommandStatus::Pending,
            actor: envelope.actor.clone(),
            accepted_at: envelope.issued_at,
            finished_at: None,
            revision: None,
            error: None,
        }
    }
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

/// Where accepted commands are recorded and claimed.
#[async_trait]
pub trait CommandLog: Send + Sync + 'static {
    /// Records a newly accepted command as pending.
    async fn insert_command(&self, record: &CommandRecord) -> Result<(), StoreError>;
    /// A command's log entry.
    async fn get_command(&self, id: Uuid) -> Result<Option<CommandRecord>, StoreError>;
    /// Moves a pending command to processing, atomically, and says what it found.
    async fn claim_command(&self, id: Uuid) -> Result<ClaimResult, StoreError>;
    /// Cancels a command if, and only if, it is still pending.
    async fn cancel_command(&self, id: Uuid) -> Result<CancelResult, StoreError>;
    /// Whether any command of the case is still pending or processing.
    async fn has_unfinished_commands(&self, tenant: &TenantId, case_id: Uuid) -> Result<bool, StoreError>;
    /// Records a command's final state (processed or rejected), inserting it if unknown.
    async fn finish_command(&self, record: &CommandRecord) -> Result<(), StoreError>;
    /// [`claim_command`](Self::claim_command) for each of `ids`, in order;
    /// adapters that can do it in one transaction do.
    async fn claim_commands(&self, ids: &[Uuid]) -> Result<Vec<ClaimResult>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.claim_command(*id).await?);
        }
        Ok(out)
    }
    /// [`finish_command`](Self::finish_command) for each record, in order;
    /// adapters that can do it in one transaction do.
    async fn finish_commands(&self, records: &[CommandRecord]) -> Result<(), StoreError> {
        for record in records {
            self.finish_command(record).await?;
        }
        Ok(())
    }
}
