//! The event store: append-only streams, one per case, plus a global order.
//! It is the source of truth and doubles as the outbox: events found by
//! command id are re-published after a crash instead of deciding again.

use async_trait::async_trait;
use casewire_domain::types::TenantId;
use casewire_domain::{Case, CaseEvent, EventMeta};
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::StoreError;

/// An event about to be appended.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub id: Uuid,
    pub event_type: String,
    pub data: Value,
    pub time: DateTime<Utc>,
    pub actor: String,
    pub command_id: Uuid,
    pub correlation_id: Uuid,
}

impl NewEvent {
    /// Wraps a domain event with its envelope facts. The time is cut to
    /// microseconds, the precision every store keeps, so the event that is
    /// published equals the one a replay reads back.
    pub fn from_domain(
        event: &CaseEvent,
        time: DateTime<Utc>,
        actor: &str,
        command_id: Uuid,
        correlation_id: Uuid,
    ) -> Self {
        NewEvent {
            id: Uuid::now_v7(),
            event_type: event.cloud_event_type(),
            data: event.data(),
            time: time.trunc_subsecs(6),
            actor: actor.to_owned(),
            command_id,
            correlation_id,
        }
    }
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRecord {
    pub id: Uuid,
    /// Global, gapless-or-not but strictly increasing position; 1-based.
    pub position: u64,
    pub tenant: TenantId,
    pub case_id: Uuid,
    /// 1-based revision within the case's stream.
    pub revision: u64,
    pub event_type: String,
    pub data: Value,
    pub time: DateTime<Utc>,
    pub actor: String,
    pub command_id: Uuid,
    pub correlation_id: Uuid,
}

impl EventRecord {
    /// Decodes the domain event.
    pub fn case_event(&self) -> Result<CaseEvent, StoreError> {
        CaseEvent::from_parts(&self.event_type, self.data.clone())
            .map_err(|e| StoreError::Corrupt(format!("event {}: {e}", self.id)))
    }

    /// The envelope facts `Case::apply` needs.
    pub fn meta(&self) -> EventMeta<'_> {
        EventMeta {
            case_id: self.case_id,
            tenant: &self.tenant,
            revision: self.revision,
            time: self.time,
            actor: &self.actor,
        }
    }
}

/// Rebuilds a case from its events, optionally only those up to a time;
/// `None` when it was not opened (by then).
pub fn replay(events: &[EventRecord], until: Option<DateTime<Utc>>) -> Result<Option<Case>, StoreError> {
    let mut case = None;
    for record in events {
        if until.is_some_and(|t| record.time > t) {
            break;
        }
        let event = record.case_event()?;
        case = Case::fold(case, &record.meta(), &event);
    }
    Ok(case)
}

/// Append-only event storage.
/// One stream's part of [`EventStore::append_batch`].
#[derive(Debug, Clone)]
pub struct Append {
    pub tenant: TenantId,
    pub case_id: Uuid,
    /// The stream's revision before these events.
    pub expected: u64,
    pub events: Vec<NewEvent>,
}

#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends events to a case's stream if its revision is `expected`; fails with `Conflict` otherwise.
    async fn append(
        &self,
        tenant: &TenantId,
        case_id: Uuid,
        expected: u64,
        events: Vec<NewEvent>,
    ) -> Result<Vec<EventRecord>, StoreError>;
    /// Appends to several streams, each as [`append`](Self::append) would,
    /// in order (two parts for one case follow each other: the second
    /// expects the revision the first leaves). Adapters that can make it
    /// one transaction do, and then a `Conflict` stores none of it;
    /// otherwise the parts before the conflicting one stay stored, which
    /// callers must allow for (the engine finds them by command).
    async fn append_batch(&self, batch: Vec<Append>) -> Result<Vec<Vec<EventRecord>>, StoreError> {
        let mut out = Vec::with_capacity(batch.len());
        for part in batch {
            out.push(
                self.append(&part.tenant, part.case_id, part.expected, part.events)
                    .await?,
            );
        }
        Ok(out)
    }
    /// Loads one case's events with a revision above `after`, oldest first.
    async fn load_after(&self, tenant: &TenantId, case_id: Uuid, after: u64) -> Result<Vec<EventRecord>, StoreError>;
    /// Loads one case's whole stream, oldest first.
    async fn load(&self, tenant: &TenantId, case_id: Uuid) -> Result<Vec<EventRecord>, StoreError> {
        self.load_after(tenant, case_id, 0).await
    }
    /// Reads up to `limit` events of every case with position >= `from`, in position order.
    async fn read_all(&self, from: u64, limit: usize) -> Result<Vec<EventRecord>, StoreError>;
    /// Finds the events a command caused, in revision order.
    async fn find_by_command(&self, command_id: Uuid) -> Result<Vec<EventRecord>, StoreError>;
    /// The newest position in use (no event is above it), 0 when empty.
    async fn head(&self) -> Result<u64, StoreError>;
    /// Allocates the next number of a key prefix within a tenant: 1, 2, 3... never twice.
    async fn allocate_key(&self, tenant: &TenantId, prefix: &str) -> Result<u64, StoreError>;
    /// Checks that the backend answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// A receiver of the head position, if this adapter can notify in-process; otherwise readers poll.
    fn watch_head(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
}
