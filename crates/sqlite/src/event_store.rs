//! `SqliteEventStore`: one `events` table with a global autoincrement
//! position and a unique (tenant, case_id, revision) index. SQLite
//! serialises writers, so positions become visible in order: a reader that
//! saw position N will never later find a smaller one appear.

use std::path::Path;

use async_trait::async_trait;
use casewire_ports::{Append, EventRecord, EventStore, NewEvent, StoreError};
use rusqlite::{OptionalExtension, Row, params};
use tokio::sync::watch;
use uuid::Uuid;

use crate::db::{Cached, Db, Durability, map_err};
use casewire_domain::types::TenantId;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    tenant TEXT NOT NULL,
    case_id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    data TEXT NOT NULL,
    time TEXT NOT NULL,
    actor TEXT NOT NULL,
    command_id TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    UNIQUE (tenant, case_id, revision)
);
CREATE INDEX IF NOT EXISTS events_command ON events (command_id);
CREATE TABLE IF NOT EXISTS key_sequences (
    tenant TEXT NOT NULL,
    prefix TEXT NOT NULL,
    last INTEGER NOT NULL,
    PRIMARY KEY (tenant, prefix)
);
";

const COLUMNS: &str =
    "position, id, tenant, case_id, revision, event_type, data, time, actor, command_id, correlation_id";

/// The SQLite event store.
#[derive(Debug, Clone)]
pub struct SqliteEventStore {
    db: Db,
    head: watch::Sender<u64>,
}

fn corrupt(e: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(e.to_string().into())
}

fn row_to_record(row: &Row<'_>) -> rusqlite::Result<EventRecord> {
    let uuid = |i: usize| -> rusqlite::Result<Uuid> { row.get::<_, String>(i)?.parse().map_err(corrupt) };
    Ok(EventRecord {
        position: row.get::<_, i64>(0)?.try_into().map_err(corrupt)?,
        id: uuid(1)?,
        tenant: TenantId::parse(row.get::<_, String>(2)?).map_err(corrupt)?,
        case_id: uuid(3)?,
        revision: row.get::<_, i64>(4)?.try_into().map_err(corrupt)?,
        event_type: row.get(5)?,
        data: serde_json::from_str(&row.get::<_, String>(6)?).map_err(corrupt)?,
        time: row.get::<_, String>(7)?.parse().map_err(corrupt)?,
        actor: row.get(8)?,
        command_id: uuid(9)?,
        correlation_id: uuid(10)?,
    })
}

fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl SqliteEventStore {
    /// Opens or creates the store at `path`.
    pub fn open(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        let db = Db::open(path, durability, SCHEMA)?;
        Ok(SqliteEventStore {
            db,
            head: watch::channel(0).0,
        })
    }

    async fn query(&self, sql: String, params: Vec<rusqlite::types::Value>) -> Result<Vec<EventRecord>, StoreError> {
        self.db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&sql).map_err(map_err)?;
                let rows = stmt
                    .query_map(rusqlite::params_from_iter(params), row_to_record)
                    .map_err(map_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(map_err)
            })
            .await
    }
}

/// Appends one stream's part inside `tx`, checking its revision first.
fn append_in(tx: &rusqlite::Connection, part: Append) -> Result<Vec<EventRecord>, StoreError> {
    let Append {
        tenant,
        case_id,
        expected,
        events,
    } = part;
    let actual: i64 = tx
        .query_row_cached(
            "SELECT COALESCE(MAX(revision), 0) FROM events WHERE tenant = ?1 AND case_id = ?2",
            params![tenant.as_str(), case_id.to_string()],
            |r| r.get(0),
        )
        .map_err(map_err)?;
    let actual = u64::try_from(actual).unwrap_or(0);
    if actual != expected {
        return Err(StoreError::Conflict { expected, actual });
    }
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO events (id, tenant, case_id, revision, event_type, data, time, actor, command_id, correlation_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .map_err(map_err)?;
    let mut out = Vec::with_capacity(events.len());
    for (i, e) in events.into_iter().enumerate() {
        let revision = expected + 1 + i as u64;
        stmt.execute(params![
            e.id.to_string(),
            tenant.as_str(),
            case_id.to_string(),
            i64_of(revision),
            e.event_type,
            e.data.to_string(),
            e.time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            e.actor,
            e.command_id.to_string(),
            e.correlation_id.to_string(),
        ])
        .map_err(map_err)?;
        out.push(EventRecord {
            id: e.id,
            position: u64::try_from(tx.last_insert_rowid()).unwrap_or(0),
            tenant: tenant.clone(),
            case_id,
            revision,
            event_type: e.event_type,
            data: e.data,
            time: e.time,
            actor: e.actor,
            command_id: e.command_id,
            correlation_id: e.correlation_id,
        });
    }
    Ok(out)
}

#[async_trait]
impl EventStore for SqliteEventStore {
    async fn append(
        &self,
        tenant: &TenantId,
        case_id: Uuid,
        expected: u64,
        events: Vec<NewEvent>,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let part = Append {
            tenant: tenant.clone(),
            case_id,
            expected,
            events,
        };
        let mut out = self.append_batch(vec![part]).await?;
        out.pop().ok_or_else(|| StoreError::Backend("no append result".into()))
    }

    /// One transaction: a conflict in any part stores none of them.
    async fn append_batch(&self, batch: Vec<Append>) -> Result<Vec<Vec<EventRecord>>, StoreError> {
        let out = self
            .db
            .write(move |conn| {
                let tx = &*conn;
                let out = batch
                    .into_iter()
                    .map(|part| append_in(tx, part))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(out)
            })
            .await?;
        if let Some(last) = out.iter().flatten().map(|r| r.position).max() {
            self.head.send_replace(last);
        }
        Ok(out)
    }

    async fn load_after(&self, tenant: &TenantId, case_id: Uuid, after: u64) -> Result<Vec<EventRecord>, StoreError> {
        self.query(
            format!(
                "SELECT {COLUMNS} FROM events WHERE tenant = ?1 AND case_id = ?2 AND revision > ?3 ORDER BY revision"
            ),
            vec![
                tenant.to_string().into(),
                case_id.to_string().into(),
                i64_of(after).into(),
            ],
        )
        .await
    }

    async fn read_all(&self, from: u64, limit: usize) -> Result<Vec<EventRecord>, StoreError> {
        self.query(
            format!("SELECT {COLUMNS} FROM events WHERE position >= ?1 ORDER BY position LIMIT ?2"),
            vec![i64_of(from).into(), i64_of(limit as u64).into()],
        )
        .await
    }

    async fn find_by_command(&self, command_id: Uuid) -> Result<Vec<EventRecord>, StoreError> {
        self.query(
            format!("SELECT {COLUMNS} FROM events WHERE command_id = ?1 ORDER BY position"),
            vec![command_id.to_string().into()],
        )
        .await
    }

    async fn head(&self) -> Result<u64, StoreError> {
        self.db
            .read(|conn| {
                let head: Option<i64> = conn
                    .query_row_cached("SELECT MAX(position) FROM events", [], |r| r.get(0))
                    .optional()
                    .map_err(map_err)?
                    .flatten();
                Ok(u64::try_from(head.unwrap_or(0)).unwrap_or(0))
            })
            .await
    }

    async fn allocate_key(&self, tenant: &TenantId, prefix: &str) -> Result<u64, StoreError> {
        let (tenant, prefix) = (tenant.to_owned(), prefix.to_owned());
        self.db
            .write(move |conn| {
                let n: i64 = conn
                    .query_row_cached(
                        "INSERT INTO key_sequences (tenant, prefix, last) VALUES (?1, ?2, 1)
                         ON CONFLICT (tenant, prefix) DO UPDATE SET last = last + 1 RETURNING last",
                        params![tenant.as_str(), prefix],
                        |r| r.get(0),
                    )
                    .map_err(map_err)?;
                Ok(u64::try_from(n).unwrap_or(0))
            })
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.db
            .read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())).map_err(map_err))
            .await
    }

    fn watch_head(&self) -> Option<watch::Receiver<u64>> {
        Some(self.head.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn passes_the_event_store_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteEventStore::open(&dir.path().join("events.db"), Durability::Normal).unwrap();
        casewire_ports::contract::event_store_contract(Arc::new(store)).await;
    }

    #[tokio::test]
    async fn survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        let case = Uuid::now_v7();
        let t = TenantId::parse("t").unwrap();
        {
            let store = SqliteEventStore::open(&path, Durability::Full).unwrap();
            let e = NewEvent {
                id: Uuid::now_v7(),
                event_type: "casewire.case.closed.v1".into(),
                data: serde_json::json!({}),
                time: chrono::Utc::now(),
                actor: "a".into(),
                command_id: Uuid::now_v7(),
                correlation_id: Uuid::now_v7(),
            };
            store.append(&t, case, 0, vec![e]).await.unwrap();
            store.allocate_key(&t, "ABC").await.unwrap();
        }
        let store = SqliteEventStore::open(&path, Durability::Full).unwrap();
        assert_eq!(store.load(&t, case).await.unwrap().len(), 1);
        assert_eq!(store.allocate_key(&t, "ABC").await.unwrap(), 2);
    }
}
