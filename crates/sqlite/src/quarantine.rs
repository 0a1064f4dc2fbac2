//! The mail quarantine in `notify.db`, beside the outbox: both are the
//! mail side's own records, and neither is derived from events.

use async_trait::async_trait;
use casewire_domain::types::TenantId;
use casewire_ports::StoreError;
use casewire_ports::quarantine::{Held, MailQuarantine};
use rusqlite::{OptionalExtension, params};
use uuid::Uuid;

use crate::db::{Cached, map_err};
use crate::notification_store::{SqliteNotificationStore, from_json, micros, text, to_json};

#[async_trait]
impl MailQuarantine for SqliteNotificationStore {
    async fn hold(&self, held: &Held) -> Result<bool, StoreError> {
        let args = (
            held.tenant.as_str().to_owned(),
            held.id.to_string(),
            held.mailbox.clone(),
            micros(held.held_at),
            to_json(held)?,
        );
        self.db
            .write(move |conn| {
                conn.execute_cached(
                    "INSERT INTO quarantine (tenant, id, mailbox, held_at, doc) VALUES (?1, ?2, ?3, ?4, ?5) \
                     ON CONFLICT (tenant, id) DO NOTHING",
                    params![args.0, args.1, args.2, args.3, args.4],
                )
                .map(|n| n > 0)
                .map_err(map_err)
            })
            .await
    }

    async fn held(&self, tenant: &TenantId, mailbox: Option<&str>, limit: usize) -> Result<Vec<Held>, StoreError> {
        // One statement for both: a NULL mailbox matches every one.
        self.docs(
            "SELECT doc FROM quarantine WHERE tenant = ?1 AND (?2 IS NULL OR mailbox = ?2) \
             ORDER BY held_at DESC, id DESC LIMIT ?3",
            vec![
                text(tenant.as_str()),
                mailbox.map_or(rusqlite::types::Value::Null, text),
                (limit as i64).into(),
            ],
        )
        .await
    }

    async fn held_one(&self, tenant: &TenantId, id: Uuid) -> Result<Option<Held>, StoreError> {
        let args = (tenant.as_str().to_owned(), id.to_string());
        let doc: Option<String> = self
            .db
            .read(move |conn| {
                conn.query_row_cached(
                    "SELECT doc FROM quarantine WHERE tenant = ?1 AND id = ?2",
                    params![args.0, args.1],
                    |r| r.get(0),
                )
                .optional()
                .map_err(map_err)
            })
            .await?;
        doc.map(|d| from_json(&d)).transpose()
    }

    async fn forget(&self, tenant: &TenantId, id: Uuid) -> Result<bool, StoreError> {
        let args = (tenant.as_str().to_owned(), id.to_string());
        self.db
            .write(move |conn| {
                conn.execute_cached(
                    "DELETE FROM quarantine WHERE tenant = ?1 AND id = ?2",
                    params![args.0, args.1],
                )
                .map(|n| n > 0)
                .map_err(map_err)
            })
            .await
    }
}

#[cfg(test)]
mod contract {
    use std::sync::Arc;

    use tempfile::TempDir;

    use crate::db::Durability;
    use crate::notification_store::SqliteNotificationStore;

    async fn fresh_store() -> (Arc<SqliteNotificationStore>, TempDir) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = SqliteNotificationStore::open(&dir.path().join("notify.db"), Durability::Normal)
            .unwrap_or_else(|e| panic!("{e}"));
        (Arc::new(store), dir)
    }

    casewire_ports::quarantine_contract!(fresh_store);
}
