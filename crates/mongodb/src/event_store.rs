//! `MongoEventStore`: the `events` collection holds one document per
//! append (a commit of one command's events), so an append is atomic
//! without a transaction: a crash leaves the whole commit or none of it.
//!
//! - `revisions` carries a unique index with `tenant` and `caseId`. The
//!   index is multikey, so two commits can never share a revision of a
//!   case, and a stale writer fails with E11000, which becomes
//!   `StoreError::Conflict` (409 at the API).
//! - Positions (the global order) come from `$inc` on a counter document
//!   before the insert. `_id` is the commit's first position and `last` its
//!   last; both are indexed, and `read_all` pages on `last`.
//! - Counters also allocate the human key numbers, per (tenant, prefix).
//!
//! Because a position is allocated before its commit is inserted, a reader
//! of the global order can see position N+1 before N. `read_all` therefore
//! stops at a hole that is younger than the grace period (the writer is
//! probably still inserting) and steps over older holes (a writer that died
//! after allocating). A writer that loses a conflict fills its positions
//! with an empty marker commit, so conflicts do not make readers wait.

use std::time::Duration;

use async_trait::async_trait;
use casewire_ports::{EventRecord, EventStore, NewEvent, StoreError};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::bson::{Document, doc};
use mongodb::options::ReturnDocument;
use mongodb::{Collection, Database};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Bounded as _, MongoSettings, corrupt, ensure_indexes, i64_of, index, is_duplicate_key, map_err, u64_of};
use casewire_domain::types::TenantId;

/// One append: the events of one command on one case.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CommitDoc {
    /// Position of the first event.
    #[serde(rename = "_id")]
    first: i64,
    /// Position of the last event.
    last: i64,
    tenant: String,
    #[serde(rename = "caseId")]
    case_id: String,
    revisions: Vec<i64>,
    /// When the positions were allocated, by the writer's clock (for readers'
    /// hole handling).
    at: mongodb::bson::DateTime,
    events: Vec<EventDoc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventDoc {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    /// The event's data as JSON text (see the crate docs for why).
    data: String,
    /// RFC 3339 with microseconds: BSON dates keep only milliseconds.
    time: String,
    actor: String,
    command_id: String,
    correlation_id: String,
}

fn uuid(s: &str) -> Result<Uuid, StoreError> {
    s.parse().map_err(|e| corrupt(format!("{s}: {e}")))
}

impl CommitDoc {
    fn records(self) -> Result<Vec<EventRecord>, StoreError> {
        if self.events.is_empty() {
            // A hole marker.
            return Ok(Vec::new());
        }
        let case_id = uuid(&self.case_id)?;
        let first = u64_of(self.first)?;
        if self.revisions.len() != self.events.len() {
            return Err(corrupt(format!("commit {} has mismatched revisions", self.first)));
        }
        self.events
            .into_iter()
            .zip(self.revisions)
            .enumerate()
            .map(|(i, (e, revision))| {
                Ok(EventRecord {
                    id: uuid(&e.id)?,
                    position: first + i as u64,
                    tenant: TenantId::parse(&self.tenant).map_err(corrupt)?,
                    case_id,
                    revision: u64_of(revision)?,
                    event_type: e.event_type,
                    data: serde_json::from_str(&e.data).map_err(corrupt)?,
                    time: DateTime::parse_from_rfc3339(&e.time)
                        .map_err(corrupt)?
                        .with_timezone(&Utc),
                    actor: e.actor,
                    command_id: uuid(&e.command_id)?,
                    correlation_id: uuid(&e.correlation_id)?,
                })
            })
            .collect()
    }
}

const POSITION_COUNTER: &str = "position";

/// The MongoDB event store.
#[derive(Debug, Clone)]
pub struct MongoEventStore {
    commits: Collection<CommitDoc>,
    raw: Collection<Document>,
    counters: Collection<Document>,
    gap_grace: Duration,
    /// The bound of every operation (`MongoSettings::operation_timeout`).
    timeout: Duration,
}

impl MongoEventStore {
    /// Opens the store: creates the indexes and repairs the position
    /// counter if it is behind the stored events (a restored backup).
    pub async fn open(db: &Database, settings: &MongoSettings) -> Result<Self, StoreError> {
        let store = MongoEventStore {
            commits: db.collection("events"),
            raw: db.collection("events"),
            counters: db.collection("counters"),
            gap_grace: settings.gap_grace,
            timeout: settings.operation_timeout,
        };
        ensure_indexes(
            &store.raw,
            vec![
                index("stream", doc! {"tenant": 1, "caseId": 1, "revisions": 1}, true),
                index("position", doc! {"last": 1}, true),
                index("command", doc! {"events.commandId": 1}, false),
            ],
            store.timeout,
        )
        .await?;
        let head = store.head().await?;
        store
            .counters
            .update_one(doc! {"_id": POSITION_COUNTER}, doc! {"$max": {"seq": i64_of(head)}})
            .upsert(true)
            .bounded(store.timeout)
            .await?;
        Ok(store)
    }

    /// `$inc` on a counter document. A missing counter is first created at
    /// 0 with `$setOnInsert` (whose concurrent duplicates are harmless), and
    /// the increment itself never upserts: racing upserts on one `_id` may
    /// fail or, on some servers, return nothing, and then nobody knows
    /// whether the number was taken.
    async fn bump(&self, counter: &str, by: u64) -> Result<u64, StoreError> {
        for _ in 0..3 {
            let bumped = self
                .counters
                .find_one_and_update(doc! {"_id": counter}, doc! {"$inc": {"seq": i64_of(by)}})
                .return_document(ReturnDocument::After)
                .bounded(self.timeout)
                .await?;
            if let Some(d) = bumped {
                return u64_of(d.get_i64("seq").map_err(corrupt)?);
            }
            let created = self
                .counters
                .update_one(doc! {"_id": counter}, doc! {"$setOnInsert": {"seq": 0_i64}})
                .upsert(true)
                .within(self.timeout)
                .await?;
            match created {
                Ok(_) => {}
                Err(e) if is_duplicate_key(&e) => {}
                Err(e) => return Err(map_err(e)),
            }
        }
        Err(corrupt(format!("counter {counter} can not be created")))
    }

    async fn commits(&self, filter: Document, limit: Option<i64>) -> Result<Vec<CommitDoc>, StoreError> {
        let mut find = self.commits.find(filter).sort(doc! {"last": 1});
        if let Some(limit) = limit {
            find = find.limit(limit);
        }
        find.bounded(self.timeout)
            .await?
            .try_collect()
            .bounded(self.timeout)
            .await
    }

    /// Marks positions that a losing writer allocated as never to be used,
    /// so readers of the global order go on at once instead of waiting out
    /// the grace period. Best effort: without the marker they still go on
    /// after the grace period.
    async fn fill_hole(&self, first: u64, last: u64) {
        let marker = CommitDoc {
            first: i64_of(first),
            last: i64_of(last),
            tenant: String::new(),
            // Unique per marker, so markers never collide in the stream index.
            case_id: format!("hole:{first}"),
            revisions: Vec::new(),
            at: mongodb::bson::DateTime::now(),
            events: Vec::new(),
        };
        if let Err(e) = self.commits.insert_one(&marker).bounded(self.timeout).await {
            tracing::warn!(first, last, error = %e, "Could not mark unused positions; readers wait out the grace period");
        }
    }

    async fn stream_revision(&self, tenant: &TenantId, case_id: Uuid) -> Result<u64, StoreError> {
        let newest = self
            .commits
            .find_one(doc! {"tenant": tenant.as_str(), "caseId": case_id.to_string()})
            .sort(doc! {"last": -1})
            .bounded(self.timeout)
            .await?;
        Ok(match newest.and_then(|c| c.revisions.last().copied()) {
            Some(r) => u64_of(r)?,
            None => 0,
        })
    }
}

#[async_trait]
impl EventStore for MongoEventStore {
    async fn append(
        &self,
        tenant: &TenantId,
        case_id: Uuid,
        expected: u64,
        events: Vec<NewEvent>,
    ) -> Result<Vec<EventRecord>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let n = events.len() as u64;
        let last = self.bump(POSITION_COUNTER, n).await?;
        let first = last + 1 - n;
        let commit = CommitDoc {
            first: i64_of(first),
            last: i64_of(last),
            tenant: tenant.to_string(),
            case_id: case_id.to_string(),
            revisions: (1..=n).map(|i| i64_of(expected + i)).collect(),
            at: mongodb::bson::DateTime::now(),
            events: events
                .iter()
                .map(|e| EventDoc {
                    id: e.id.to_string(),
                    event_type: e.event_type.clone(),
                    data: e.data.to_string(),
                    time: e.time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    actor: e.actor.clone(),
                    command_id: e.command_id.to_string(),
                    correlation_id: e.correlation_id.to_string(),
                })
                .collect(),
        };
        match self.commits.insert_one(&commit).within(self.timeout).await? {
            Ok(_) => {}
            Err(e) if is_duplicate_key(&e) => {
                self.fill_hole(first, last).await;
                let actual = self.stream_revision(tenant, case_id).await?;
                if actual == expected {
                    return Err(StoreError::Backend(format!(
                        "position {first} is taken although the counter handed it out; \
                         was the counters collection edited?"
                    )));
                }
                return Err(StoreError::Conflict { expected, actual });
            }
            Err(e) => return Err(map_err(e)),
        }
        Ok(events
            .into_iter()
            .enumerate()
            .map(|(i, e)| EventRecord {
                id: e.id,
                position: first + i as u64,
                tenant: tenant.to_owned(),
                case_id,
                revision: expected + 1 + i as u64,
                event_type: e.event_type,
                data: e.data,
                time: e.time,
                actor: e.actor,
                command_id: e.command_id,
                correlation_id: e.correlation_id,
            })
            .collect())
    }

    async fn load_after(&self, tenant: &TenantId, case_id: Uuid, after: u64) -> Result<Vec<EventRecord>, StoreError> {
        let commits = self
            .commits(
                doc! {"tenant": tenant.as_str(), "caseId": case_id.to_string(), "revisions": {"$gt": i64_of(after)}},
                None,
            )
            .await?;
        let mut out = Vec::new();
        for commit in commits {
            out.extend(commit.records()?.into_iter().filter(|e| e.revision > after));
        }
        Ok(out)
    }

    /// Events from `from` in position order, stopping before a hole that
    /// may still fill (younger than `gap_grace`), so a reader that follows
    /// the head never skips a commit that was merely slow to land.
    async fn read_all(&self, from: u64, limit: usize) -> Result<Vec<EventRecord>, StoreError> {
        let from = from.max(1);
        let batch = i64_of(limit.max(1) as u64);
        let now = Utc::now();
        let grace = chrono::Duration::from_std(self.gap_grace).unwrap_or_default();
        let mut next = from;
        let mut out = Vec::new();
        // A commit holds at least one event, but hole markers hold none, so
        // a batch may come back short of events: fetch until full or done.
        loop {
            let commits = self.commits(doc! {"last": {"$gte": i64_of(next)}}, Some(batch)).await?;
            let fetched = commits.len();
            for commit in commits {
                let first = u64_of(commit.first)?;
                if first > next {
                    let allocated = DateTime::<Utc>::from(commit.at.to_system_time());
                    if now - allocated < grace {
                        tracing::debug!(hole = next, until = first, "Waiting for a commit that is still landing");
                        return Ok(out);
                    }
                }
                next = u64_of(commit.last)? + 1;
                out.extend(commit.records()?.into_iter().filter(|e| e.position >= from));
                if out.len() >= limit {
                    out.truncate(limit);
                    return Ok(out);
                }
            }
            if fetched < limit.max(1) {
                return Ok(out);
            }
        }
    }

    async fn find_by_command(&self, command_id: Uuid) -> Result<Vec<EventRecord>, StoreError> {
        let id = command_id.to_string();
        let commits = self.commits(doc! {"events.commandId": &id}, None).await?;
        let mut out = Vec::new();
        for commit in commits {
            out.extend(commit.records()?.into_iter().filter(|e| e.command_id == command_id));
        }
        Ok(out)
    }

    /// The last position in use; it may be a hole marker's, which readers
    /// step over, so it still bounds every event written so far.
    async fn head(&self) -> Result<u64, StoreError> {
        let newest = self
            .raw
            .find_one(doc! {})
            .sort(doc! {"last": -1})
            .projection(doc! {"last": 1})
            .bounded(self.timeout)
            .await?;
        match newest {
            Some(d) => u64_of(d.get_i64("last").map_err(corrupt)?),
            None => Ok(0),
        }
    }

    async fn allocate_key(&self, tenant: &TenantId, prefix: &str) -> Result<u64, StoreError> {
        // A key prefix is upper-case letters only, so the last '/' ends the tenant.
        self.bump(&format!("key/{tenant}/{prefix}"), 1).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        crate::ping(self.commits.client(), self.timeout).await
    }
}
