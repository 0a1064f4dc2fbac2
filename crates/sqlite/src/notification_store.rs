//! `SqliteNotificationStore`: the notification store in its own file
//! (`notify.db`), so the publisher's writes never queue behind the
//! projector's. Each record is kept whole as JSON, with the columns its
//! queries need beside it.

use std::path::Path;

use async_trait::async_trait;
use casewire_domain::types::TenantId;
use casewire_ports::StoreError;
use casewire_ports::notification::{
    Channel, Delivery, DeliveryState, InboxItem, NotificationStore, Person, Preferences, WebhookAttempt,
    WebhookSubscription,
};
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::db::{Cached, Db, Durability, map_err};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS deliveries (
    key TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    channel TEXT NOT NULL,
    recipient TEXT NOT NULL,
    state TEXT NOT NULL,
    not_before INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (state, not_before);
CREATE INDEX IF NOT EXISTS deliveries_recipient ON deliveries (tenant, recipient, channel, state);
CREATE TABLE IF NOT EXISTS inbox (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    user TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    read INTEGER NOT NULL DEFAULT 0,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS inbox_user ON inbox (tenant, user, created_at, id);
CREATE TABLE IF NOT EXISTS preferences (
    tenant TEXT NOT NULL, user TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (tenant, user)
);
CREATE TABLE IF NOT EXISTS people (
    tenant TEXT NOT NULL, username TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (tenant, username)
);
CREATE TABLE IF NOT EXISTS watches (
    tenant TEXT NOT NULL, case_id TEXT NOT NULL, user TEXT NOT NULL, PRIMARY KEY (tenant, case_id, user)
);
CREATE TABLE IF NOT EXISTS webhooks (
    id TEXT PRIMARY KEY, tenant TEXT NOT NULL, secrets TEXT NOT NULL, doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS webhook_attempts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, subscription TEXT NOT NULL, doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_attempts_sub ON webhook_attempts (subscription, seq);
CREATE TABLE IF NOT EXISTS quarantine (
    tenant TEXT NOT NULL, id TEXT NOT NULL, mailbox TEXT NOT NULL, held_at INTEGER NOT NULL,
    doc TEXT NOT NULL, PRIMARY KEY (tenant, id)
);
CREATE INDEX IF NOT EXISTS quarantine_newest ON quarantine (tenant, held_at);
";

/// The SQLite notification store.
#[derive(Debug, Clone)]
pub struct SqliteNotificationStore {
    pub(crate) db: Db,
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(e.to_string()))
}

pub(crate) fn from_json<T: DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("a notification record: {e}")))
}

fn state_name(state: DeliveryState) -> &'static str {
    match state {
        DeliveryState::Pending => "pending",
        DeliveryState::Sent => "sent",
        DeliveryState::Dead => "dead",
    }
}

pub(crate) fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

impl SqliteNotificationStore {
    /// Opens or creates the store at `path`.
    pub fn open(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        Ok(SqliteNotificationStore {
            db: Db::open(path, durability, SCHEMA)?,
        })
    }

    /// Rewrites a delivery through `change`.
    async fn update(&self, key: &str, change: impl FnOnce(&mut Delivery) + Send + 'static) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.db
            .write(move |conn| {
                let tx = &*conn;
                let doc: Option<String> = tx
                    .query_row_cached("SELECT doc FROM deliveries WHERE key = ?1", [&key], |r| r.get(0))
                    .optional()
                    .map_err(map_err)?;
                let Some(doc) = doc else {
                    return Err(StoreError::Backend(format!("no delivery {key}")));
                };
                let mut d: Delivery = from_json(&doc)?;
                change(&mut d);
                tx.execute_cached(
                    "UPDATE deliveries SET state = ?2, not_before = ?3, doc = ?4 WHERE key = ?1",
                    params![key, state_name(d.state), micros(d.not_before), to_json(&d)?],
                )
                .map_err(map_err)?;
                Ok(())
            })
            .await
    }

    pub(crate) async fn docs<T: DeserializeOwned + Send + 'static>(
        &self,
        sql: &'static str,
        args: Vec<rusqlite::types::Value>,
    ) -> Result<Vec<T>, StoreError> {
        self.db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(sql).map_err(map_err)?;
                let rows = stmt
                    .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(0))
                    .map_err(map_err)?;
                let mut out = Vec::new();
                for row in rows {
                    out.push(from_json(&row.map_err(map_err)?)?);
                }
                Ok(out)
            })
            .await
    }
}

pub(crate) fn text(s: impl Into<String>) -> rusqlite::types::Value {
    rusqlite::types::Value::Text(s.into())
}

#[async_trait]
impl NotificationStore for SqliteNotificationStore {
    async fn record(&self, deliveries: Vec<Delivery>, inbox: Vec<InboxItem>) -> Result<usize, StoreError> {
        self.db
            .write(move |conn| {
                let tx = &*conn;
                let mut new = 0;
                for d in &deliveries {
                    new += tx
                        .execute_cached(
                            "INSERT OR IGNORE INTO deliveries (key, tenant, channel, recipient, state, not_before, doc)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                            params![
                                d.key,
                                d.tenant.as_str(),
                                d.channel.as_str(),
                                d.recipient,
                                state_name(d.state),
                                micros(d.not_before),
                                to_json(d)?
                            ],
                        )
                        .map_err(map_err)?;
                }
                for item in &inbox {
                    tx.execute_cached(
                        "INSERT OR IGNORE INTO inbox (id, tenant, user, created_at, read, doc) VALUES (?1, ?2, ?3, ?4, 0, ?5)",
                        params![
                            item.id.to_string(),
                            item.tenant.as_str(),
                            item.user,
                            micros(item.created_at),
                            to_json(item)?
                        ],
                    )
                    .map_err(map_err)?;
                }
                Ok(new)
            })
            .await
    }

    async fn due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.docs(
            "SELECT doc FROM deliveries WHERE state = 'pending' AND not_before <= ?1 ORDER BY not_before LIMIT ?2",
            vec![micros(now).into(), (limit as i64).into()],
        )
        .await
    }

    async fn pending_for(
        &self,
        tenant: &TenantId,
        recipient: &str,
        channel: Channel,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.docs(
            "SELECT doc FROM deliveries WHERE tenant = ?1 AND recipient = ?2 AND channel = ?3 AND state = 'pending'
             ORDER BY not_before, key",
            vec![text(tenant.as_str()), text(recipient), text(channel.as_str())],
        )
        .await
    }

    async fn mark_sent(&self, keys: &[String], at: DateTime<Utc>) -> Result<(), StoreError> {
        for key in keys {
            self.update(key, move |d| {
                d.state = DeliveryState::Sent;
                d.sent_at = Some(at);
                d.attempts += 1;
                d.last_error = None;
            })
            .await?;
        }
        Ok(())
    }

    async fn retry(&self, key: &str, not_before: DateTime<Utc>, error: &str) -> Result<(), StoreError> {
        let error = error.to_owned();
        self.update(key, move |d| {
            d.attempts += 1;
            d.not_before = not_before;
            d.last_error = Some(error);
        })
        .await
    }

    async fn mark_dead(&self, key: &str, error: &str) -> Result<(), StoreError> {
        let error = error.to_owned();
        self.update(key, move |d| {
            d.state = DeliveryState::Dead;
            d.last_error = Some(error);
        })
        .await
    }

    async fn planned_since(
        &self,
        tenant: &TenantId,
        recipient: &str,
        kind: &str,
        since: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        // Kind and time are in the document; a recipient's deliveries are
        // few and indexed, so they are filtered here.
        let all: Vec<Delivery> = self
            .docs(
                "SELECT doc FROM deliveries WHERE tenant = ?1 AND recipient = ?2",
                vec![text(tenant.as_str()), text(recipient)],
            )
            .await?;
        Ok(all.iter().filter(|d| d.kind == kind && d.created_at >= since).count())
    }

    async fn delivery(&self, key: &str) -> Result<Option<Delivery>, StoreError> {
        Ok(self
            .docs("SELECT doc FROM deliveries WHERE key = ?1", vec![text(key)])
            .await?
            .pop())
    }

    async fn inbox(
        &self,
        tenant: &TenantId,
        user: &str,
        before: Option<Uuid>,
        limit: usize,
    ) -> Result<(Vec<InboxItem>, u64), StoreError> {
        let (tenant, user) = (tenant.as_str().to_owned(), user.to_owned());
        self.db
            .read(move |conn| {
                // The cursor is the last item seen; its time and id order the page.
                let start: (i64, String) = match before {
                    Some(id) => conn
                        .query_row_cached(
                            "SELECT created_at, id FROM inbox WHERE tenant = ?1 AND user = ?2 AND id = ?3",
                            params![tenant, user, id.to_string()],
                            |r| Ok((r.get(0)?, r.get(1)?)),
                        )
                        .optional()
                        .map_err(map_err)?
                        .unwrap_or((i64::MIN, String::new())),
                    None => (i64::MAX, String::new()),
                };
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT doc FROM inbox WHERE tenant = ?1 AND user = ?2
                         AND (created_at < ?3 OR (created_at = ?3 AND id < ?4))
                         ORDER BY created_at DESC, id DESC LIMIT ?5",
                    )
                    .map_err(map_err)?;
                let rows = stmt
                    .query_map(params![tenant, user, start.0, start.1, limit as i64], |r| {
                        r.get::<_, String>(0)
                    })
                    .map_err(map_err)?;
                let mut items = Vec::new();
                for row in rows {
                    items.push(from_json(&row.map_err(map_err)?)?);
                }
                let unread: i64 = conn
                    .query_row_cached(
                        "SELECT COUNT(*) FROM inbox WHERE tenant = ?1 AND user = ?2 AND read = 0",
                        params![tenant, user],
                        |r| r.get(0),
                    )
                    .map_err(map_err)?;
                Ok((items, u64::try_from(unread).unwrap_or(0)))
            })
            .await
    }

    async fn mark_read(
        &self,
        tenant: &TenantId,
        user: &str,
        id: Option<Uuid>,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let (tenant, user) = (tenant.as_str().to_owned(), user.to_owned());
        self.db
            .write(move |conn| {
                let tx = &*conn;
                let docs: Vec<(String, String)> = {
                    let mut stmt = tx
                        .prepare_cached(
                            "SELECT id, doc FROM inbox WHERE tenant = ?1 AND user = ?2 AND read = 0 AND (?3 IS NULL OR id = ?3)",
                        )
                        .map_err(map_err)?;
                    let rows = stmt
                        .query_map(params![tenant, user, id.map(|i| i.to_string())], |r| {
                            Ok((r.get(0)?, r.get(1)?))
                        })
                        .map_err(map_err)?;
                    rows.collect::<Result<_, _>>().map_err(map_err)?
                };
                for (id, doc) in &docs {
                    let mut item: InboxItem = from_json(doc)?;
                    item.read_at = Some(at);
                    tx.execute_cached(
                        "UPDATE inbox SET read = 1, doc = ?2 WHERE id = ?1",
                        params![id, to_json(&item)?],
                    )
                    .map_err(map_err)?;
                }
                Ok(docs.len() as u64)
            })
            .await
    }

    async fn preferences(&self, tenant: &TenantId, user: &str) -> Result<Option<Preferences>, StoreError> {
        Ok(self
            .docs(
                "SELECT doc FROM preferences WHERE tenant = ?1 AND user = ?2",
                vec![text(tenant.as_str()), text(user)],
            )
            .await?
            .pop())
    }

    async fn put_preferences(&self, tenant: &TenantId, user: &str, prefs: &Preferences) -> Result<(), StoreError> {
        let args = (tenant.as_str().to_owned(), user.to_owned(), to_json(prefs)?);
        self.db
            .write(move |conn| {
                conn.execute_cached(
                    "INSERT INTO preferences (tenant, user, doc) VALUES (?1, ?2, ?3)
                     ON CONFLICT (tenant, user) DO UPDATE SET doc = excluded.doc",
                    params![args.0, args.1, args.2],
                )
                .map(|_| ())
                .map_err(map_err)
            })
            .await
    }

    async fn upsert_person(&self, person: &Person) -> Result<(), StoreError> {
        let args = (
            person.tenant.as_str().to_owned(),
            person.username.clone(),
            to_json(person)?,
        );
        self.db
            .write(move |conn| {
                conn.execute_cached(
                    "INSERT INTO people (tenant, username, doc) VALUES (?1, ?2, ?3)
                     ON CONFLICT (tenant, username) DO UPDATE SET doc = excluded.doc",
                    params![args.0, args.1, args.2],
                )
                .map(|_| ())
                .map_err(map_err)
            })
            .await
    }

    async fn person(&self, tenant: &TenantId, username: &str) -> Result<Option<Person>, StoreError> {
        Ok(self
            .docs(
                "SELECT doc FROM people WHERE tenant = ?1 AND username = ?2",
                vec![text(tenant.as_str()), text(username)],
            )
            .await?
            .pop())
    }

    async fn people(&self, tenant: &TenantId) -> Result<Vec<Person>, StoreError> {
        self.docs(
            "SELECT doc FROM people WHERE tenant = ?1 ORDER BY username",
            vec![text(tenant.as_str())],
        )
        .await
    }

    async fn watch(&self, tenant: &TenantId, case_id: Uuid, user: &str, on: bool) -> Result<(), StoreError> {
        let args = (tenant.as_str().to_owned(), case_id.to_string(), user.to_owned());
        self.db
            .write(move |conn| {
                let sql = if on {
                    "INSERT OR IGNORE INTO watches (tenant, case_id, user) VALUES (?1, ?2, ?3)"
                } else {
                    "DELETE FROM watches WHERE tenant = ?1 AND case_id = ?2 AND user = ?3"
                };
                conn.execute_cached(sql, params![args.0, args.1, args.2])
                    .map(|_| ())
                    .map_err(map_err)
            })
            .await
    }

    async fn watchers(&self, tenant: &TenantId, case_id: Uuid) -> Result<Vec<String>, StoreError> {
        let args = (tenant.as_str().to_owned(), case_id.to_string());
        self.db
            .read(move |conn| {
                let mut stmt = conn
                    .prepare_cached("SELECT user FROM watches WHERE tenant = ?1 AND case_id = ?2 ORDER BY user")
                    .map_err(map_err)?;
                let rows = stmt
                    .query_map(params![args.0, args.1], |r| r.get::<_, String>(0))
                    .map_err(map_err)?;
                rows.collect::<Result<_, _>>().map_err(map_err)
            })
            .await
    }

    async fn put_webhook(&self, sub: &WebhookSubscription) -> Result<(), StoreError> {
        let args = (
            sub.id.to_string(),
            sub.tenant.as_str().to_owned(),
            to_json(&sub.secrets)?,
            to_json(sub)?,
        );
        self.db
            .write(move |conn| {
                conn.execute_cached(
                    "INSERT INTO webhooks (id, tenant, secrets, doc) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (id) DO UPDATE SET secrets = excluded.secrets, doc = excluded.doc",
                    params![args.0, args.1, args.2, args.3],
                )
                .map(|_| ())
                .map_err(map_err)
            })
            .await
    }

    async fn webhooks(&self, tenant: &TenantId) -> Result<Vec<WebhookSubscription>, StoreError> {
        let tenant = tenant.as_str().to_owned();
        self.db
            .read(move |conn| {
                let mut stmt = conn
                    .prepare_cached("SELECT secrets, doc FROM webhooks WHERE tenant = ?1 ORDER BY id")
                    .map_err(map_err)?;
                let rows = stmt
                    .query_map([tenant], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                    .map_err(map_err)?;
                let mut out = Vec::new();
                for row in rows {
                    let (secrets, doc) = row.map_err(map_err)?;
                    let mut sub: WebhookSubscription = from_json(&doc)?;
                    sub.secrets = from_json(&secrets)?;
                    out.push(sub);
                }
                Ok(out)
            })
            .await
    }

    async fn delete_webhook(&self, tenant: &TenantId, id: Uuid) -> Result<bool, StoreError> {
        let args = (tenant.as_str().to_owned(), id.to_string());
        self.db
            .write(move |conn| {
                conn.execute_cached(
                    "DELETE FROM webhooks WHERE tenant = ?1 AND id = ?2",
                    params![args.0, args.1],
                )
                .map(|n| n > 0)
                .map_err(map_err)
            })
            .await
    }

    async fn log_attempt(&self, attempt: &WebhookAttempt) -> Result<(), StoreError> {
        let args = (attempt.subscription.to_string(), to_json(attempt)?);
        self.db
            .write(move |conn| {
                conn.execute_cached(
                    "INSERT INTO webhook_attempts (subscription, doc) VALUES (?1, ?2)",
                    params![args.0, args.1],
                )
                .map(|_| ())
                .map_err(map_err)
            })
            .await
    }

    async fn attempts(&self, subscription: Uuid, limit: usize) -> Result<Vec<WebhookAttempt>, StoreError> {
        self.docs(
            "SELECT doc FROM webhook_attempts WHERE subscription = ?1 ORDER BY seq DESC LIMIT ?2",
            vec![text(subscription.to_string()), (limit as i64).into()],
        )
        .await
    }
}

#[cfg(test)]
mod contract {
    use std::sync::Arc;

    use tempfile::TempDir;

    use super::*;

    async fn fresh_store() -> (Arc<SqliteNotificationStore>, TempDir) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = SqliteNotificationStore::open(&dir.path().join("notify.db"), Durability::Normal)
            .unwrap_or_else(|e| panic!("{e}"));
        (Arc::new(store), dir)
    }

    casewire_ports::notification_store_contract!(fresh_store);
}
