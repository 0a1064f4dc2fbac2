//! `SqliteBus`: the embedded bus. Messages live in a table; a subscription
//! reads past its cursor and a group's committed offset lives in another
//! table, so a restart redelivers exactly what was not committed. Publishers
//! in the same process wake subscribers at once; other processes sharing the
//! file are picked up by polling.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use casewire_ports::{Bus, BusError, BusMessage, StartFrom, StoreError, Subscription, Topic};
use rusqlite::{OptionalExtension, params};
use tokio::sync::Notify;

use crate::db::{Cached, Db, Durability, map_err};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    offset INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    key TEXT NOT NULL,
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_topic ON messages (topic, offset);
CREATE TABLE IF NOT EXISTS group_offsets (
    grp TEXT NOT NULL,
    topic TEXT NOT NULL,
    committed INTEGER NOT NULL,
    PRIMARY KEY (grp, topic)
) WITHOUT ROWID;
";

const BATCH: i64 = 256;
/// How often a subscriber looks for messages published by other processes.
const POLL: Duration = Duration::from_millis(100);

/// The SQLite-backed bus.
#[derive(Debug, Clone)]
pub struct SqliteBus {
    db: Db,
    /// One per topic, so a publish wakes only that topic's subscribers.
    notify: Arc<[Notify; Topic::ALL.len()]>,
}

fn topic_index(topic: Topic) -> usize {
    Topic::ALL.iter().position(|t| *t == topic).unwrap_or(0)
}

fn bus_err(e: StoreError) -> BusError {
    match e {
        StoreError::Unavailable(m) => BusError::Unavailable(m),
        StoreError::Conflict { .. } | StoreError::Corrupt(_) | StoreError::Backend(_) => {
            BusError::Backend(e.to_string())
        }
    }
}

fn topic_of(name: &str) -> Option<Topic> {
    Topic::ALL.into_iter().find(|t| t.name() == name)
}

impl SqliteBus {
    /// Opens or creates the bus at `path`.
    pub fn open(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        Ok(SqliteBus {
            db: Db::open(path, durability, SCHEMA)?,
            notify: Arc::new(std::array::from_fn(|_| Notify::new())),
        })
    }
}

#[async_trait]
impl Bus for SqliteBus {
    async fn publish(&self, topic: Topic, messages: Vec<(String, Vec<u8>)>) -> Result<(), BusError> {
        if messages.is_empty() {
            return Ok(());
        }
        self.db
            .write(move |conn| {
                let tx = &*conn;
                {
                    let mut stmt = tx
                        .prepare_cached("INSERT INTO messages (topic, key, payload) VALUES (?1, ?2, ?3)")
                        .map_err(map_err)?;
                    for (key, payload) in messages {
                        stmt.execute(params![topic.name(), key, payload]).map_err(map_err)?;
                    }
                }
                Ok(())
            })
            .await
            .map_err(bus_err)?;
        self.notify[topic_index(topic)].notify_waiters();
        Ok(())
    }

    async fn subscribe(
        &self,
        group: Option<&str>,
        topic: Topic,
        start: StartFrom,
    ) -> Result<Box<dyn Subscription>, BusError> {
        let group = group.map(str::to_owned);
        let g = group.clone();
        let cursor = self
            .db
            .read(move |conn| {
                let committed: Option<i64> = match &g {
                    Some(g) => conn
                        .query_row_cached(
                            "SELECT committed FROM group_offsets WHERE grp = ?1 AND topic = ?2",
                            params![g, topic.name()],
                            |r| r.get(0),
                        )
                        .optional()
                        .map_err(map_err)?,
                    None => None,
                };
                match (committed, start) {
                    (Some(c), _) => Ok(c),
                    (None, StartFrom::Earliest) => Ok(0),
                    (None, StartFrom::Latest) => conn
                        .query_row_cached("SELECT COALESCE(MAX(offset), 0) FROM messages", [], |r| r.get(0))
                        .map_err(map_err),
                }
            })
            .await
            .map_err(bus_err)?;
        Ok(Box::new(SqliteSubscription {
            db: self.db.clone(),
            notify: self.notify.clone(),
            group,
            topic,
            cursor,
            buffer: VecDeque::new(),
        }))
    }

    async fn ping(&self) -> Result<(), BusError> {
        self.db
            .read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())).map_err(map_err))
            .await
            .map_err(bus_err)
    }

    /// Deletes what every group of a topic has committed. Outcomes have no
    /// group (each API process reads them live), so only the newest
    /// `OUTCOMES_KEPT` stay; dead letters are kept for operators.
    async fn prune(&self) -> Result<u64, BusError> {
        self.db
            .write(|conn| {
                let committed = conn
                    .execute_cached(
                        "DELETE FROM messages WHERE topic <> 'casewire.outcomes' AND offset <= (
                            SELECT MIN(committed) FROM group_offsets g WHERE g.topic = messages.topic)",
                        [],
                    )
                    .map_err(map_err)?;
                let outcomes = conn
                    .execute_cached(
                        "DELETE FROM messages WHERE topic = 'casewire.outcomes' AND offset <
                            (SELECT MAX(offset) FROM messages WHERE topic = 'casewire.outcomes') - ?1",
                        [OUTCOMES_KEPT],
                    )
                    .map_err(map_err)?;
                Ok((committed + outcomes) as u64)
            })
            .await
            .map_err(bus_err)
    }
}

/// Outcomes kept by `prune`: enough for any waiter still listening.
const OUTCOMES_KEPT: i64 = 10_000;

struct SqliteSubscription {
    db: Db,
    notify: Arc<[Notify; Topic::ALL.len()]>,
    group: Option<String>,
    topic: Topic,
    /// Offset of the last message fetched into the buffer.
    cursor: i64,
    buffer: VecDeque<BusMessage>,
}

#[async_trait]
impl Subscription for SqliteSubscription {
    async fn next(&mut self) -> Result<BusMessage, BusError> {
        loop {
            if let Some(m) = self.buffer.pop_front() {
                return Ok(m);
            }
            // Register for wake-ups before looking, so a publish between the
            // look and the wait is not missed.
            let notified = self.notify[topic_index(self.topic)].notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (topic, cursor) = (self.topic, self.cursor);
            let rows = self
                .db
                .read(move |conn| {
                    let mut stmt = conn
                        .prepare_cached(
                            "SELECT offset, topic, key, payload FROM messages
                             WHERE topic = ?1 AND offset > ?2 ORDER BY offset LIMIT ?3",
                        )
                        .map_err(map_err)?;
                    let rows = stmt
                        .query_map(params![topic.name(), cursor, BATCH], |r| {
                            Ok((
                                r.get::<_, i64>(0)?,
                                r.get::<_, String>(1)?,
                                r.get::<_, String>(2)?,
                                r.get::<_, Vec<u8>>(3)?,
                            ))
                        })
                        .map_err(map_err)?;
                    rows.collect::<Result<Vec<_>, _>>().map_err(map_err)
                })
                .await
                .map_err(bus_err)?;
            if rows.is_empty() {
                tokio::select! {
                    _ = &mut notified => {}
                    _ = tokio::time::sleep(POLL) => {}
                }
                continue;
            }
            for (offset, topic_name, key, payload) in rows {
                self.cursor = offset;
                let Some(topic) = topic_of(&topic_name) else { continue };
                self.buffer.push_back(BusMessage {
                    topic,
                    partition: 0,
                    offset,
                    key,
                    payload,
                    traceparent: None,
                });
            }
        }
    }

    async fn commit(&mut self, message: &BusMessage) -> Result<(), BusError> {
        let Some(group) = self.group.clone() else {
            return Ok(());
        };
        let (topic, offset) = (message.topic, message.offset);
        self.db
            .write(move |conn| {
                conn.execute_cached(
                    "INSERT INTO group_offsets (grp, topic, committed) VALUES (?1, ?2, ?3)
                     ON CONFLICT (grp, topic) DO UPDATE SET committed = MAX(committed, excluded.committed)",
                    params![group, topic.name(), offset],
                )
                .map_err(map_err)?;
                Ok(())
            })
            .await
            .map_err(bus_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passes_the_bus_contract() {
        let dir = tempfile::tempdir().unwrap();
        let bus = SqliteBus::open(&dir.path().join("bus.db"), Durability::Normal).unwrap();
        casewire_ports::contract::bus_contract(Arc::new(bus)).await;
    }

    #[tokio::test]
    async fn committed_groups_survive_a_restart_and_prune_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bus.db");
        {
            let bus = SqliteBus::open(&path, Durability::Full).unwrap();
            let msgs = (0..3).map(|n| ("k".to_owned(), vec![n])).collect();
            bus.publish(Topic::Events, msgs).await.unwrap();
            let mut sub = bus
                .subscribe(Some("g"), Topic::Events, StartFrom::Earliest)
                .await
                .unwrap();
            let first = sub.next().await.unwrap();
            sub.commit(&first).await.unwrap();
        }
        let bus = SqliteBus::open(&path, Durability::Full).unwrap();
        assert_eq!(bus.prune().await.unwrap(), 1, "only what group g committed");
        let mut sub = bus
            .subscribe(Some("g"), Topic::Events, StartFrom::Earliest)
            .await
            .unwrap();
        assert_eq!(sub.next().await.unwrap().payload, vec![1]);
    }
}
