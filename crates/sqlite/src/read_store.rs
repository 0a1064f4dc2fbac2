//! `SqliteReadStore`: the case list as indexed columns plus the full detail
//! as JSON, tags in their own table, full text in an FTS5 index whose rowid
//! is the case row's, the timeline, definitions, checkpoints and the
//! command log.

use std::path::Path;

use async_trait::async_trait;
use casewire_domain::calendar::BusinessCalendar;
use casewire_domain::types::{CaseKey, QueueName, TenantId};
use casewire_domain::{Case, CaseDefinition, TaskKind, TaskState};
use casewire_ports::definitions::Versioned;
use casewire_ports::projection::{searchable_text, sortable_time};
use casewire_ports::{
    CancelResult, CaseProjection, CaseQuery, CaseSummary, Checkpoints, ClaimResult, Clause, CommandLog, CommandRecord,
    CommandStatus, DefinitionStore, EventRecord, FileCatalog, FileRecord, FileState, Page, ReadStore, SortKey,
    StoreError, TASK_SCAN_CASES, TaskItem, TaskQuery,
};
use chrono::{DateTime, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use uuid::Uuid;

use crate::db::{Cached, Db, Durability, map_err};

/// The projections: derived from the event log, so a layout change drops
/// and rebuilds them (the projector starts again from position 0) instead of
/// migrating rows in place. Bump [`PROJECTION_VERSION`] with every change.
const PROJECTIONS: &str = "
CREATE TABLE IF NOT EXISTS cases (
    seq INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    key TEXT NOT NULL,
    definition_id TEXT NOT NULL,
    title TEXT NOT NULL,
    stage TEXT NOT NULL,
    status TEXT NOT NULL,
    priority TEXT NOT NULL,
    queue TEXT NOT NULL,
    assignee TEXT,
    confidential INTEGER NOT NULL,
    requester_email TEXT,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    revision INTEGER NOT NULL,
    summary TEXT NOT NULL,
    doc TEXT NOT NULL,
    -- The SLA scheduler's (see sla.rs); the projector never writes them.
    sla_next_at TEXT,
    sla_claimed_until TEXT,
    sla_due_at TEXT,
    sla_warn_at TEXT,
    sla_breached INTEGER NOT NULL DEFAULT 0,
    sla_calendar TEXT,
    UNIQUE (tenant, id)
);
CREATE INDEX IF NOT EXISTS cases_sla_next ON cases (sla_next_at) WHERE sla_next_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS cases_sla_due ON cases (tenant, COALESCE(sla_due_at, '~'), id);
CREATE INDEX IF NOT EXISTS cases_sla_calendar ON cases (sla_calendar) WHERE sla_calendar IS NOT NULL;
CREATE INDEX IF NOT EXISTS cases_key ON cases (tenant, key);
CREATE INDEX IF NOT EXISTS cases_updated ON cases (tenant, updated_at, id);
CREATE INDEX IF NOT EXISTS cases_created ON cases (tenant, created_at, id);
CREATE INDEX IF NOT EXISTS cases_stage ON cases (tenant, stage, updated_at);
CREATE INDEX IF NOT EXISTS cases_queue ON cases (tenant, queue, updated_at);
CREATE INDEX IF NOT EXISTS cases_assignee ON cases (tenant, assignee, updated_at);
CREATE INDEX IF NOT EXISTS cases_priority ON cases (tenant, priority, updated_at);
CREATE INDEX IF NOT EXISTS cases_requester ON cases (tenant, requester_email, updated_at);
CREATE INDEX IF NOT EXISTS cases_creator ON cases (tenant, created_by, updated_at);
CREATE TABLE IF NOT EXISTS case_tags (
    seq INTEGER NOT NULL,
    tag TEXT NOT NULL,
    PRIMARY KEY (tag, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS case_tasks (
    seq INTEGER NOT NULL,
    task_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    topic TEXT,
    assignee TEXT,
    PRIMARY KEY (seq, task_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS case_tasks_topic ON case_tasks (topic, state);
CREATE INDEX IF NOT EXISTS case_tasks_assignee ON case_tasks (assignee, state);
CREATE INDEX IF NOT EXISTS case_tasks_id ON case_tasks (task_id);
CREATE TABLE IF NOT EXISTS case_message_ids (
    message_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (message_id, seq)
) WITHOUT ROWID;
CREATE VIRTUAL TABLE IF NOT EXISTS cases_fts USING fts5 (body, public_body, tokenize = 'unicode61 remove_diacritics 2');
CREATE TABLE IF NOT EXISTS timeline (
    tenant TEXT NOT NULL,
    case_id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (tenant, case_id, revision)
) WITHOUT ROWID;
";

/// The layout version of [`PROJECTIONS`]: 5 added the SLA columns; 4 added the Message-ID index; 3 added the task
/// index; 2 added confidentiality, requester and creator columns and the public search column.
const PROJECTION_VERSION: i64 = 5;

/// What every read store has before any migration: the two layout records.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS projection_layout (only INTEGER PRIMARY KEY CHECK (only = 1), version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS store_layout (only INTEGER PRIMARY KEY CHECK (only = 1), version INTEGER NOT NULL);
";

/// The first layout of the tables that are not projections: the command
/// log, files, definitions and checkpoints.
const LAYOUT_1: &str = "
CREATE TABLE IF NOT EXISTS definitions (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (tenant, id, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
    consumer TEXT PRIMARY KEY,
    position INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS commands (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    case_id TEXT NOT NULL,
    status TEXT NOT NULL,
    record TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS files (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    state TEXT NOT NULL,
    uploaded_at TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS files_sweep ON files (state, uploaded_at);
CREATE INDEX IF NOT EXISTS commands_unfinished ON commands (case_id, tenant) WHERE status IN ('pending', 'processing');
";

/// One step from a layout to the next.
type Migration = fn(&rusqlite::Transaction<'_>) -> Result<(), StoreError>;

/// The tables that are not projections hold what the event log does not
/// (who uploaded which file, which command ended how), so a layout change
/// migrates them in place, never drops them. Steps run in order, once each,
/// and `store_layout` records the last; a database written before layouts
/// were recorded starts at 0, so every step also accepts a database that
/// already has its change.
const MIGRATIONS: &[(i64, Migration)] = &[
    (1, |tx| tx.execute_batch(LAYOUT_1).map_err(map_err)),
    (2, add_detached_at),
    (3, |tx| tx.execute_batch(LAYOUT_3).map_err(map_err)),
];

/// Layout 3: business calendars, versioned like definitions.
const LAYOUT_3: &str = "
CREATE TABLE IF NOT EXISTS calendars (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (tenant, id, version)
) WITHOUT ROWID;
";

/// Layout 2: `files.detached_at`, the retention rule's indexed clock,
/// filled in from each record.
fn add_detached_at(tx: &rusqlite::Transaction<'_>) -> Result<(), StoreError> {
    let has_column: bool = tx
        .query_row_cached(
            "SELECT EXISTS (SELECT 1 FROM pragma_table_info('files') WHERE name = 'detached_at')",
            [],
            |r| r.get(0),
        )
        .map_err(map_err)?;
    if !has_column {
        tx.execute_batch("ALTER TABLE files ADD COLUMN detached_at TEXT")
            .map_err(map_err)?;
        let records: Vec<String> = tx
            .prepare("SELECT record FROM files")
            .map_err(map_err)?
            .query_map([], |r| r.get(0))
            .map_err(map_err)?
            .collect::<Result<_, _>>()
            .map_err(map_err)?;
        for record in records {
            let file: FileRecord = serde_json::from_str(&record).map_err(corrupt)?;
            tx.execute_cached(
                "UPDATE files SET detached_at = ?3 WHERE tenant = ?1 AND id = ?2",
                params![file.tenant.as_str(), file.id.to_string(), detached_key(&file)],
            )
            .map_err(map_err)?;
        }
    }
    tx.execute_batch("CREATE INDEX IF NOT EXISTS files_purge ON files (state, detached_at)")
        .map_err(map_err)
}

/// Brings the tables that are not projections to the newest layout.
fn migrate(tx: &rusqlite::Transaction<'_>) -> Result<(), StoreError> {
    let version: i64 = tx
        .query_row("SELECT version FROM store_layout", [], |r| r.get(0))
        .optional()
        .map_err(map_err)?
        .unwrap_or(0);
    for (to, step) in MIGRATIONS.iter().filter(|(to, _)| *to > version) {
        step(tx)?;
        tx.execute_cached(
            "INSERT INTO store_layout (only, version) VALUES (1, ?1)
             ON CONFLICT (only) DO UPDATE SET version = excluded.version",
            [to],
        )
        .map_err(map_err)?;
        if version > 0 || *to > 1 {
            tracing::info!(from = version, to, "Migrated the read store's tables");
        }
    }
    Ok(())
}

/// The SQLite read store.
#[derive(Debug, Clone)]
pub struct SqliteReadStore {
    pub(crate) db: Db,
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(corrupt)
}

fn status_str(s: CommandStatus) -> &'static str {
    match s {
        CommandStatus::Pending => "pending",
        CommandStatus::Processing => "processing",
        CommandStatus::Processed => "processed",
        CommandStatus::Rejected => "rejected",
        CommandStatus::Cancelled => "cancelled",
    }
}

/// The retention clock of a file as stored: its detach time while no case
/// holds it, else nothing.
fn detached_key(f: &FileRecord) -> Option<String> {
    f.detached_at.filter(|_| f.cases.is_empty()).map(sortable_time)
}

/// Turns user text into an FTS5 query that can not be a syntax error:
/// every word becomes a quoted prefix term, and all must match.
fn fts_query(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| format!("\"{w}\"*"))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

fn search_body(case: &Case, with_internal: bool) -> String {
    searchable_text(case, with_internal).join("\n")
}

/// Appends the policy's visibility clauses to a case query: an OR of ANDs,
/// where an empty clause admits every case and no clause admits none.
fn push_visibility(sql: &mut String, args: &mut Vec<SqlValue>, clauses: &[Clause]) {
    if clauses.is_empty() {
        sql.push_str(" AND 0");
        return;
    }
    let mut ors = Vec::with_capacity(clauses.len());
    for clause in clauses {
        let mut ands = vec!["1".to_owned()];
        if let Some(queues) = &clause.queue {
            if queues.is_empty() {
                ands.push("0".into());
            } else {
                ands.push(format!("c.queue IN ({})", vec!["?"; queues.len()].join(", ")));
                args.extend(queues.iter().map(|q| SqlValue::from(q.clone())));
            }
        }
        if let Some(definitions) = &clause.definition {
            if definitions.is_empty() {
                ands.push("0".into());
            } else {
                ands.push(format!(
                    "c.definition_id IN ({})",
                    vec!["?"; definitions.len()].join(", ")
                ));
                args.extend(definitions.iter().map(|d| SqlValue::from(d.clone())));
            }
        }
        if let Some(confidential) = clause.confidential {
            ands.push("c.confidential = ?".into());
            args.push(i64::from(confidential).into());
        }
        for (column, value) in [
            ("assignee", &clause.assignee),
            ("requester_email", &clause.requester),
            ("created_by", &clause.created_by),
        ] {
            if let Some(v) = value {
                ands.push(format!("c.{column} = ?"));
                args.push(v.clone().into());
            }
        }
        ors.push(format!("({})", ands.join(" AND ")));
    }
    sql.push_str(&format!(" AND ({})", ors.join(" OR ")));
}

impl SqliteReadStore {
    /// Opens or creates the store at `path`.
    pub fn open(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        let db = Db::open(path, durability, SCHEMA)?;
        db.write_now(|conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(map_err)?;
            migrate(&tx)?;
            let version: i64 = tx
                .query_row("SELECT version FROM projection_layout", [], |r| r.get(0))
                .optional()
                .map_err(map_err)?
                .unwrap_or(0);
            if version < PROJECTION_VERSION {
                let had_cases: bool = tx
                    .query_row(
                        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'cases')",
                        [],
                        |r| r.get(0),
                    )
                    .map_err(map_err)?;
                if had_cases {
                    tracing::warn!(
                        from = version,
                        to = PROJECTION_VERSION,
                        "The read model's layout changed; dropping the projections, which the projector rebuilds from the event log"
                    );
                }
                tx.execute_batch(
                    "DROP TABLE IF EXISTS cases; DROP TABLE IF EXISTS case_tags; DROP TABLE IF EXISTS cases_fts;
                     DROP TABLE IF EXISTS case_tasks; DROP TABLE IF EXISTS case_message_ids;
                     DROP TABLE IF EXISTS timeline; DELETE FROM checkpoints WHERE consumer LIKE 'projector%';",
                )
                .map_err(map_err)?;
                tx.execute_cached(
                    "INSERT INTO projection_layout (only, version) VALUES (1, ?1)
                     ON CONFLICT (only) DO UPDATE SET version = excluded.version",
                    [PROJECTION_VERSION],
                )
                .map_err(map_err)?;
            }
            tx.execute_batch(PROJECTIONS).map_err(map_err)?;
            tx.commit().map_err(map_err)
        })?;
        Ok(SqliteReadStore { db })
    }

    /// Moves the files `select` finds (`?1` a cutoff time, `?2` a limit) to
    /// `to`, in one transaction, and returns them: the sweeper's claim.
    async fn claim_files(
        &self,
        select: &'static str,
        cutoff: DateTime<Utc>,
        limit: usize,
        to: FileState,
    ) -> Result<Vec<FileRecord>, StoreError> {
        let (cutoff, limit) = (sortable_time(cutoff), i64::try_from(limit).unwrap_or(i64::MAX));
        self.db
            .write(move |conn| {
                let tx = &*conn;
                let mut claimed = Vec::new();
                {
                    let mut stmt = tx.prepare_cached(select).map_err(map_err)?;
                    let rows = stmt
                        .query_map(params![cutoff, limit], |r| r.get::<_, String>(0))
                        .map_err(map_err)?;
                    for row in rows {
                        let mut f: FileRecord = serde_json::from_str(&row.map_err(map_err)?).map_err(corrupt)?;
                        f.state = to;
                        claimed.push(f);
                    }
                }
                for f in &claimed {
                    tx.execute_cached(
                        "UPDATE files SET state = ?3, record = ?4 WHERE tenant = ?1 AND id = ?2",
                        params![f.tenant.as_str(), f.id.to_string(), to.as_str(), to_json(f)?],
                    )
                    .map_err(map_err)?;
                }
                Ok(claimed)
            })
            .await
    }

    /// Read-modify-write of one file record in a write transaction; `change`
    /// says whether it applied. False when the file does not exist.
    async fn update_file(
        &self,
        tenant: &TenantId,
        id: Uuid,
        change: impl FnOnce(&mut FileRecord) -> bool + Send + 'static,
    ) -> Result<bool, StoreError> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        self.db
            .write(move |conn| {
                let tx = &*conn;
                let record: Option<String> = tx
                    .query_row_cached(
                        "SELECT record FROM files WHERE tenant = ?1 AND id = ?2",
                        params![tenant, id],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(map_err)?;
                let Some(record) = record else { return Ok(false) };
                let mut file: FileRecord = serde_json::from_str(&record).map_err(corrupt)?;
                if !change(&mut file) {
                    return Ok(false);
                }
                tx.execute_cached(
                    "UPDATE files SET state = ?3, detached_at = ?4, record = ?5, uploaded_at = ?6 WHERE tenant = ?1 AND id = ?2",
                    params![
                        tenant,
                        id,
                        file.state.as_str(),
                        detached_key(&file),
                        to_json(&file)?,
                        sortable_time(file.uploaded_at)
                    ],
                )
                .map_err(map_err)?;
                Ok(true)
            })
            .await
    }

    async fn one_case(&self, sql: &'static str, tenant: &TenantId, arg: String) -> Result<Option<Case>, StoreError> {
        let tenant = tenant.to_string();
        self.db
            .read(move |conn| {
                let doc: Option<String> = conn
                    .prepare_cached(sql)
                    .map_err(map_err)?
                    .query_row(params![tenant, arg], |r| r.get(0))
                    .optional()
                    .map_err(map_err)?;
                doc.map(|d| serde_json::from_str(&d).map_err(corrupt)).transpose()
            })
            .await
    }
}

/// Cases written per transaction by `put_cases`.
const PUT_CHUNK: usize = 5_000;

/// A timeline entry, serialised outside the write lock.
struct TimelineRow {
    tenant: String,
    case_id: String,
    revision: i64,
    record: String,
}

impl TimelineRow {
    fn of(event: &EventRecord) -> Result<Self, StoreError> {
        Ok(TimelineRow {
            tenant: event.tenant.to_string(),
            case_id: event.case_id.to_string(),
            revision: i64::try_from(event.revision).unwrap_or(i64::MAX),
            record: to_json(event)?,
        })
    }

    fn insert(&self, tx: &rusqlite::Connection) -> Result<(), StoreError> {
        tx.prepare_cached("INSERT OR IGNORE INTO timeline (tenant, case_id, revision, record) VALUES (?1, ?2, ?3, ?4)")
            .and_then(|mut stmt| stmt.execute(params![self.tenant, self.case_id, self.revision, self.record]))
            .map(|_| ())
            .map_err(map_err)
    }
}

/// A case's row, tags and search text, serialised outside the write lock.
struct CaseRow {
    case: Case,
    created_at: String,
    updated_at: String,
    summary: String,
    doc: String,
    body: String,
    public_body: String,
}

impl CaseRow {
    fn of(case: &Case) -> Result<Self, StoreError> {
        let summary = CaseSummary::of(case);
        Ok(CaseRow {
            created_at: sortable_time(summary.created_at),
            updated_at: sortable_time(summary.updated_at),
            summary: to_json(&summary)?,
            doc: to_json(case)?,
            body: search_body(case, true),
            public_body: search_body(case, false),
            case: case.clone(),
        })
    }

    /// Writes the case if its revision is newer than the stored one;
    /// returns whether it did.
    fn upsert(&self, tx: &rusqlite::Connection) -> Result<bool, StoreError> {
        let case = &self.case;
        let stored: Option<i64> = tx
            .prepare_cached("SELECT revision FROM cases WHERE tenant = ?1 AND id = ?2")
            .and_then(|mut stmt| {
                stmt.query_row(params![case.tenant.as_str(), case.id.to_string()], |r| r.get(0))
                    .optional()
            })
            .map_err(map_err)?;
        if stored.is_some_and(|r| r >= i64::try_from(case.revision).unwrap_or(i64::MAX)) {
            return Ok(false);
        }
        // RETURNING gives the row's seq for the index, and nothing when
        // the stored revision is the same or newer.
        let seq: Option<i64> = tx
            .prepare_cached(
                "INSERT INTO cases (tenant, id, key, definition_id, title, stage, status, priority, queue, assignee,
                                    created_at, updated_at, revision, summary, doc,
                                    confidential, requester_email, created_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)
                 ON CONFLICT (tenant, id) DO UPDATE SET
                    key = excluded.key, definition_id = excluded.definition_id, title = excluded.title,
                    stage = excluded.stage, status = excluded.status, priority = excluded.priority,
                    queue = excluded.queue, assignee = excluded.assignee, created_at = excluded.created_at,
                    updated_at = excluded.updated_at, revision = excluded.revision,
                    summary = excluded.summary, doc = excluded.doc,
                    confidential = excluded.confidential, requester_email = excluded.requester_email,
                    created_by = excluded.created_by
                 WHERE excluded.revision > cases.revision
                 RETURNING seq",
            )
            .and_then(|mut stmt| {
                stmt.query_row(
                    params![
                        case.tenant.as_str(),
                        case.id.to_string(),
                        case.key.as_str(),
                        case.definition_id,
                        case.title,
                        case.stage,
                        case.status.as_str(),
                        case.priority,
                        case.queue.as_str(),
                        case.assignee,
                        self.created_at,
                        self.updated_at,
                        i64::try_from(case.revision).unwrap_or(i64::MAX),
                        self.summary,
                        self.doc,
                        case.confidential,
                        case.requester.as_ref().map(|r| r.email.as_str().to_owned()),
                        case.created_by,
                    ],
                    |r| r.get(0),
                )
                .optional()
            })
            .map_err(map_err)?;
        let Some(seq) = seq else {
            return Ok(false);
        };
        self.index(tx, seq, stored.is_some())?;
        Ok(true)
    }

    /// The case's tags and search text, replaced. Only a case that was
    /// stored before has any to delete, and the delete is not free: FTS5
    /// writes out its pending terms before any delete, so deleting for a
    /// new case too (as this once did) made every case its own index
    /// segment (a replay's final write of 10,000 cases took 2.5 s instead
    /// of 4.0).
    fn index(&self, tx: &rusqlite::Connection, seq: i64, replaced: bool) -> Result<(), StoreError> {
        let run = |sql: &str, values: &[&dyn rusqlite::ToSql]| {
            tx.prepare_cached(sql)
                .and_then(|mut stmt| stmt.execute(values))
                .map_err(map_err)
        };
        if replaced {
            run("DELETE FROM case_tags WHERE seq = ?1", &[&seq])?;
            run("DELETE FROM cases_fts WHERE rowid = ?1", &[&seq])?;
            if !self.case.tasks.is_empty() {
                run("DELETE FROM case_tasks WHERE seq = ?1", &[&seq])?;
            }
            if !self.case.mail.message_ids.is_empty() {
                run("DELETE FROM case_message_ids WHERE seq = ?1", &[&seq])?;
            }
        }
        for id in &self.case.mail.message_ids {
            run(
                "INSERT OR IGNORE INTO case_message_ids (message_id, seq) VALUES (?1, ?2)",
                &[id, &seq],
            )?;
        }
        for task in &self.case.tasks {
            run(
                "INSERT INTO case_tasks (seq, task_id, kind, state, topic, assignee) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                &[
                    &seq,
                    &task.id.to_string(),
                    &task_kind(task.kind),
                    &task.state.as_str(),
                    &task.topic,
                    &task.assignee,
                ],
            )?;
        }
        for tag in &self.case.tags {
            run(
                "INSERT OR IGNORE INTO case_tags (seq, tag) VALUES (?1, ?2)",
                &[&seq, &tag.as_str()],
            )?;
        }
        run(
            "INSERT INTO cases_fts (rowid, body, public_body) VALUES (?1, ?2, ?3)",
            &[&seq, &self.body, &self.public_body],
        )?;
        Ok(())
    }
}

#[async_trait]
impl CaseProjection for SqliteReadStore {
    async fn apply_case(&self, case: &Case, event: &EventRecord) -> Result<bool, StoreError> {
        let row = CaseRow::of(case)?;
        let entry = TimelineRow::of(event)?;
        self.db
            .write(move |conn| {
                let tx = &*conn;
                entry.insert(tx)?;
                let applied = row.upsert(tx)?;
                Ok(applied)
            })
            .await
    }

    /// One transaction: every timeline entry, and each case's last state.
    async fn apply_cases(&self, batch: &[(Case, EventRecord)]) -> Result<Vec<bool>, StoreError> {
        let mut last = std::collections::HashMap::new();
        for (n, (case, _)) in batch.iter().enumerate() {
            last.insert((case.tenant.clone(), case.id), n);
        }
        let mut entries = Vec::with_capacity(batch.len());
        let mut rows = Vec::with_capacity(last.len());
        for (n, (case, event)) in batch.iter().enumerate() {
            entries.push(TimelineRow::of(event)?);
            if last.get(&(case.tenant.clone(), case.id)) == Some(&n) {
                rows.push((n, CaseRow::of(case)?));
            }
        }
        let applied_last = self
            .db
            .write(move |conn| {
                let tx = &*conn;
                for entry in &entries {
                    entry.insert(tx)?;
                }
                let mut applied = std::collections::HashMap::new();
                for (n, row) in &rows {
                    applied.insert(*n, row.upsert(tx)?);
                }
                Ok(applied)
            })
            .await?;
        Ok(batch
            .iter()
            .map(|(case, _)| {
                last.get(&(case.tenant.clone(), case.id))
                    .and_then(|n| applied_last.get(n))
                    .copied()
                    .unwrap_or(false)
            })
            .collect())
    }

    /// One transaction for all of them.
    async fn add_timeline(&self, events: &[EventRecord]) -> Result<(), StoreError> {
        let entries = events.iter().map(TimelineRow::of).collect::<Result<Vec<_>, _>>()?;
        self.db
            .write(move |conn| {
                let tx = &*conn;
                for entry in &entries {
                    entry.insert(tx)?;
                }
                Ok(())
            })
            .await
    }

    /// A transaction per [`PUT_CHUNK`] cases, so that a replay's final
    /// write does not hold the write lock for all of them at once.
    async fn put_cases(&self, cases: &[Case]) -> Result<(), StoreError> {
        for chunk in cases.chunks(PUT_CHUNK) {
            let rows = chunk.iter().map(CaseRow::of).collect::<Result<Vec<_>, _>>()?;
            self.db
                .write(move |conn| {
                    let tx = &*conn;
                    for row in &rows {
                        row.upsert(tx)?;
                    }
                    Ok(())
                })
                .await?;
        }
        Ok(())
    }

    async fn get_case(&self, tenant: &TenantId, id: Uuid) -> Result<Option<Case>, StoreError> {
        self.one_case(
            "SELECT doc FROM cases WHERE tenant = ?1 AND id = ?2",
            tenant,
            id.to_string(),
        )
        .await
    }

    async fn get_case_by_key(&self, tenant: &TenantId, key: &CaseKey) -> Result<Option<Case>, StoreError> {
        self.one_case(
            "SELECT doc FROM cases WHERE tenant = ?1 AND key = ?2",
            tenant,
            key.to_string(),
        )
        .await
    }

    async fn list_cases(&self, tenant: &TenantId, query: &CaseQuery) -> Result<Page<CaseSummary>, StoreError> {
        let mut sql = String::from("SELECT summary, sla_due_at FROM cases c WHERE c.tenant = ?");
        let mut args: Vec<SqlValue> = vec![tenant.to_string().into()];
        for (column, value) in [
            ("stage", query.stage.as_deref()),
            ("queue", query.queue.as_ref().map(QueueName::as_str)),
            ("assignee", query.assignee.as_deref()),
            ("priority", query.priority.as_deref()),
            ("status", query.status.as_deref()),
            ("definition_id", query.definition.as_deref()),
        ] {
            if let Some(v) = value {
                sql.push_str(&format!(" AND c.{column} = ?"));
                args.push(v.to_string().into());
            }
        }
        if query.unassigned {
            sql.push_str(" AND c.assignee IS NULL");
        }
        if let Some(tag) = &query.tag {
            sql.push_str(" AND EXISTS (SELECT 1 FROM case_tags t WHERE t.tag = ? AND t.seq = c.seq)");
            args.push(tag.to_string().into());
        }
        if let Some(text) = &query.text {
            match fts_query(text) {
                Some(q) => {
                    sql.push_str(" AND c.seq IN (SELECT rowid FROM cases_fts WHERE cases_fts MATCH ?)");
                    let column = if query.public_text_only { "public_body" } else { "body" };
                    args.push(format!("{column} : ({q})").into());
                }
                // Only punctuation: nothing can match.
                None => sql.push_str(" AND 0"),
            }
        }
        if let Some(clauses) = &query.visible {
            push_visibility(&mut sql, &mut args, clauses);
        }
        if let Some((state, now)) = query.sla {
            crate::sla::push_state(&mut sql, &mut args, state, now);
        }
        let column = match query.sort {
            SortKey::UpdatedAt => "c.updated_at",
            SortKey::CreatedAt => "c.created_at",
            SortKey::Key => "c.key",
            SortKey::SlaDue => "COALESCE(c.sla_due_at, '~')",
        };
        let (cmp, dir) = if query.descending { ("<", "DESC") } else { (">", "ASC") };
        if let Some(after) = &query.after {
            sql.push_str(&format!(" AND ({column}, c.id) {cmp} (?, ?)"));
            args.push(after.value.clone().into());
            args.push(after.id.to_string().into());
        }
        let limit = query.limit.clamp(1, 500);
        sql.push_str(&format!(" ORDER BY {column} {dir}, c.id {dir} LIMIT {}", limit + 1));
        let sort = query.sort;
        self.db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&sql).map_err(map_err)?;
                let rows = stmt
                    .query_map(rusqlite::params_from_iter(args), |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
                    })
                    .map_err(map_err)?;
                let mut items = Vec::new();
                for row in rows {
                    let (summary, due) = row.map_err(map_err)?;
                    let mut summary: CaseSummary = serde_json::from_str(&summary).map_err(corrupt)?;
                    summary.sla_due_at = crate::sla::time(due)?;
                    items.push(summary);
                }
                Ok(Page::of_overfetch(items, limit, sort))
            })
            .await
    }

    async fn timeline(&self, tenant: &TenantId, id: Uuid) -> Result<Vec<EventRecord>, StoreError> {
        let tenant = tenant.to_string();
        self.db
            .read(move |conn| {
                let mut stmt = conn
                    .prepare_cached("SELECT record FROM timeline WHERE tenant = ?1 AND case_id = ?2 ORDER BY revision")
                    .map_err(map_err)?;
                let rows = stmt
                    .query_map(params![tenant, id.to_string()], |r| r.get::<_, String>(0))
                    .map_err(map_err)?;
                let mut out = Vec::new();
                for row in rows {
                    out.push(serde_json::from_str(&row.map_err(map_err)?).map_err(corrupt)?);
                }
                Ok(out)
            })
            .await
    }

    async fn case_by_message_id(&self, tenant: &TenantId, message_ids: &[String]) -> Result<Option<Uuid>, StoreError> {
        if message_ids.is_empty() {
            return Ok(None);
        }
        let sql = format!(
            "SELECT c.id FROM case_message_ids m JOIN cases c ON c.seq = m.seq
             WHERE c.tenant = ? AND m.message_id IN ({}) ORDER BY c.updated_at DESC LIMIT 1",
            vec!["?"; message_ids.len()].join(", ")
        );
        let mut args: Vec<SqlValue> = vec![tenant.to_string().into()];
        args.extend(message_ids.iter().cloned().map(SqlValue::from));
        self.db
            .read(move |conn| {
                let id: Option<String> = conn
                    .prepare_cached(&sql)
                    .and_then(|mut stmt| {
                        stmt.query_row(rusqlite::params_from_iter(args), |r| r.get(0))
                            .optional()
                    })
                    .map_err(map_err)?;
                id.map(|s| s.parse().map_err(|_| StoreError::Corrupt(format!("case id {s}"))))
                    .transpose()
            })
            .await
    }

    async fn list_tasks(&self, tenant: &TenantId, query: &TaskQuery) -> Result<Vec<TaskItem>, StoreError> {
        let mut sql = String::from(
            "SELECT c.doc FROM cases c WHERE c.tenant = ? AND c.seq IN (SELECT t.seq FROM case_tasks t WHERE 1",
        );
        let mut args: Vec<SqlValue> = vec![tenant.to_string().into()];
        let mut any_of = |sql: &mut String, column: &str, values: Vec<String>| {
            sql.push_str(&format!(" AND t.{column} IN ({})", vec!["?"; values.len()].join(", ")));
            args.extend(values.into_iter().map(SqlValue::from));
        };
        if let Some(id) = query.task_id {
            any_of(&mut sql, "task_id", vec![id.to_string()]);
        }
        if let Some(kind) = query.kind {
            any_of(&mut sql, "kind", vec![task_kind(kind).to_owned()]);
        }
        if let Some(states) = &query.states {
            any_of(
                &mut sql,
                "state",
                states.iter().map(|s| s.as_str().to_owned()).collect(),
            );
        }
        if let Some(topics) = &query.topics {
            any_of(&mut sql, "topic", topics.clone());
        }
        if let Some(assignee) = &query.assignee {
            any_of(&mut sql, "assignee", vec![assignee.clone()]);
        }
        if query.lockable_at.is_some() {
            any_of(&mut sql, "state", vec![TaskState::Created.as_str().to_owned()]);
        }
        sql.push(')');
        if let Some(id) = query.case_id {
            sql.push_str(" AND c.id = ?");
            args.push(id.to_string().into());
        }
        if let Some(clauses) = &query.visible {
            push_visibility(&mut sql, &mut args, clauses);
        }
        sql.push_str(&format!(" ORDER BY c.seq LIMIT {TASK_SCAN_CASES}"));
        let query = query.clone();
        self.db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&sql).map_err(map_err)?;
                let rows = stmt
                    .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(0))
                    .map_err(map_err)?;
                let mut cases = Vec::new();
                for row in rows {
                    cases.push(serde_json::from_str::<Case>(&row.map_err(map_err)?).map_err(corrupt)?);
                }
                Ok(query.select(cases))
            })
            .await
    }

    async fn reset_projections(&self) -> Result<(), StoreError> {
        self.db
            .write(|conn| {
                conn.execute_batch(
                    "DELETE FROM cases; DELETE FROM case_tags; DELETE FROM cases_fts; DELETE FROM timeline; DELETE FROM case_tasks;
                     DELETE FROM case_message_ids; DELETE FROM checkpoints WHERE consumer LIKE 'projector%';",
                )
                .map_err(map_err)
            })
            .await
    }
}

#[async_trait]
impl CommandLog for SqliteReadStore {
    async fn insert_command(&self, record: &CommandRecord) -> Result<(), StoreError> {
        let (id, status, json) = (record.id.to_string(), status_str(record.status), to_json(record)?);
        let (tenant, case_id) = (record.tenant.to_string(), record.case_id.to_string());
        self.db
            .write(move |conn| {
                conn.execute_cached(
                    "INSERT OR IGNORE INTO commands (id, tenant, case_id, status, record) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![id, tenant, case_id, status, json],
                )
                .map_err(map_err)?;
                Ok(())
            })
            .await
    }

    async fn get_command(&self, id: Uuid) -> Result<Option<CommandRecord>, StoreError> {
        self.db
            .read(move |conn| {
                let rec: Option<String> = conn
                    .query_row_cached("SELECT record FROM commands WHERE id = ?1", [id.to_string()], |r| {
                        r.get(0)
                    })
                    .optional()
                    .map_err(map_err)?;
                rec.map(|r| serde_json::from_str(&r).map_err(corrupt)).transpose()
            })
            .await
    }

    async fn claim_command(&self, id: Uuid) -> Result<ClaimResult, StoreError> {
        let mut claimed = self.claim_commands(&[id]).await?;
        claimed
            .pop()
            .ok_or_else(|| StoreError::Backend("no claim result".into()))
    }

    /// One transaction for the whole batch.
    async fn claim_commands(&self, ids: &[Uuid]) -> Result<Vec<ClaimResult>, StoreError> {
        let ids = ids.to_vec();
        self.db
            .write(move |conn| {
                let tx = &*conn;
                let results = ids.iter().map(|id| claim_in(tx, *id)).collect::<Result<Vec<_>, _>>()?;
                Ok(results)
            })
            .await
    }

    async fn cancel_command(&self, id: Uuid) -> Result<CancelResult, StoreError> {
        self.db
            .write(move |conn| {
                let tx = &*conn;
                let Some(mut rec) = command_in(tx, id)? else {
                    return Ok(CancelResult::NotFound);
                };
                if rec.status != CommandStatus::Pending {
                    return Ok(CancelResult::NotPending(rec));
                }
                rec.status = CommandStatus::Cancelled;
                rec.finished_at = Some(chrono::Utc::now());
                tx.execute_cached(
                    "UPDATE commands SET status = ?2, record = ?3 WHERE id = ?1",
                    params![id.to_string(), status_str(rec.status), to_json(&rec)?],
                )
                .map_err(map_err)?;
                Ok(CancelResult::Cancelled(rec))
            })
            .await
    }

    async fn has_unfinished_commands(&self, tenant: &TenantId, case_id: Uuid) -> Result<bool, StoreError> {
        let tenant = tenant.to_string();
        self.db
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM commands WHERE case_id = ?1 AND tenant = ?2
                                    AND status IN ('pending', 'processing'))",
                )
                .map_err(map_err)?
                .query_row(params![case_id.to_string(), tenant], |r| r.get(0))
                .map_err(map_err)
            })
            .await
    }

    async fn finish_command(&self, record: &CommandRecord) -> Result<(), StoreError> {
        self.finish_commands(std::slice::from_ref(record)).await
    }

    /// One transaction for the whole batch.
    async fn finish_commands(&self, records: &[CommandRecord]) -> Result<(), StoreError> {
        let rows = records
            .iter()
            .map(|r| {
                Ok((
                    r.id.to_string(),
                    status_str(r.status),
                    to_json(r)?,
                    r.tenant.to_string(),
                    r.case_id.to_string(),
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.db
            .write(move |conn| {
                let tx = &*conn;
                for (id, status, json, tenant, case_id) in &rows {
                    tx.execute_cached(
                        "INSERT INTO commands (id, tenant, case_id, status, record) VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (id) DO UPDATE SET status = excluded.status, record = excluded.record",
                        params![id, tenant, case_id, status, json],
                    )
                    .map_err(map_err)?;
                }
                Ok(())
            })
            .await
    }
}

/// A command's record, read inside `tx`.
fn command_in(tx: &rusqlite::Connection, id: Uuid) -> Result<Option<CommandRecord>, StoreError> {
    let rec: Option<String> = tx
        .query_row_cached("SELECT record FROM commands WHERE id = ?1", [id.to_string()], |r| {
            r.get(0)
        })
        .optional()
        .map_err(map_err)?;
    rec.map(|r| serde_json::from_str(&r).map_err(corrupt)).transpose()
}

/// Claims one command inside `tx`: a pending or processing one becomes
/// processing and is the caller's to decide.
fn claim_in(tx: &rusqlite::Connection, id: Uuid) -> Result<ClaimResult, StoreError> {
    let Some(mut rec) = command_in(tx, id)? else {
        return Ok(ClaimResult::Unknown);
    };
    Ok(match rec.status {
        CommandStatus::Pending | CommandStatus::Processing => {
            rec.status = CommandStatus::Processing;
            tx.execute_cached(
                "UPDATE commands SET status = ?2, record = ?3 WHERE id = ?1",
                params![id.to_string(), status_str(rec.status), to_json(&rec)?],
            )
            .map_err(map_err)?;
            ClaimResult::Claimed
        }
        CommandStatus::Cancelled => ClaimResult::Cancelled,
        CommandStatus::Processed | CommandStatus::Rejected => ClaimResult::Finished(rec),
    })
}

#[async_trait]
impl FileCatalog for SqliteReadStore {
    async fn insert_file(&self, file: &FileRecord) -> Result<(), StoreError> {
        let (tenant, id, record) = (file.tenant.to_string(), file.id.to_string(), to_json(file)?);
        let (state, uploaded_at, detached_at) =
            (file.state.as_str(), sortable_time(file.uploaded_at), detached_key(file));
        self.db
            .write(move |conn| {
                conn.execute_cached(
                    "INSERT INTO files (tenant, id, state, uploaded_at, detached_at, record) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![tenant, id, state, uploaded_at, detached_at, record],
                )
                .map_err(map_err)?;
                Ok(())
            })
            .await
    }

    async fn complete_file(&self, file: &FileRecord) -> Result<bool, StoreError> {
        let done = file.clone();
        self.update_file(&file.tenant, file.id, move |f| {
            if f.state != FileState::Pending {
                return false;
            }
            *f = done;
            true
        })
        .await
    }

    async fn get_file(&self, tenant: &TenantId, id: Uuid) -> Result<Option<FileRecord>, StoreError> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        self.db
            .read(move |conn| {
                let record: Option<String> = conn
                    .prepare_cached("SELECT record FROM files WHERE tenant = ?1 AND id = ?2")
                    .map_err(map_err)?
                    .query_row(params![tenant, id], |r| r.get(0))
                    .optional()
                    .map_err(map_err)?;
                record.map(|r| serde_json::from_str(&r).map_err(corrupt)).transpose()
            })
            .await
    }

    async fn pin_file(&self, tenant: &TenantId, id: Uuid) -> Result<bool, StoreError> {
        self.update_file(tenant, id, |f| {
            if !matches!(f.state, FileState::Uploaded | FileState::Pinned) {
                return false;
            }
            f.state = FileState::Pinned;
            true
        })
        .await
    }

    async fn unpin_file(&self, tenant: &TenantId, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.update_file(tenant, id, move |f| {
            if f.state != FileState::Pinned || !f.cases.is_empty() || f.detached_at.is_some() {
                return false;
            }
            f.state = FileState::Uploaded;
            f.uploaded_at = now;
            true
        })
        .await
    }

    async fn link_file(
        &self,
        tenant: &TenantId,
        id: Uuid,
        case_id: Uuid,
        attached: bool,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.update_file(tenant, id, move |f| {
            let had = f.cases.contains(&case_id);
            if attached && !had {
                f.cases.push(case_id);
                f.detached_at = None;
            } else if !attached && had {
                f.cases.retain(|c| *c != case_id);
                if f.cases.is_empty() {
                    f.detached_at = Some(at);
                }
            }
            // An attachment is a pin, even if the API's pin was lost.
            if attached && f.state == FileState::Uploaded {
                f.state = FileState::Pinned;
            }
            true
        })
        .await
        .map(|_| ())
    }

    async fn claim_unattached_files(&self, cutoff: DateTime<Utc>, limit: usize) -> Result<Vec<FileRecord>, StoreError> {
        self.claim_files(
            "SELECT record FROM files WHERE (state IN ('uploaded', 'pending') AND uploaded_at < ?1) OR state = 'sweeping'
             ORDER BY uploaded_at LIMIT ?2",
            cutoff,
            limit,
            FileState::Sweeping,
        )
        .await
    }

    async fn claim_detached_files(&self, cutoff: DateTime<Utc>, limit: usize) -> Result<Vec<FileRecord>, StoreError> {
        self.claim_files(
            "SELECT record FROM files WHERE (state = 'pinned' AND detached_at < ?1) OR state = 'purging'
             ORDER BY detached_at LIMIT ?2",
            cutoff,
            limit,
            FileState::Purging,
        )
        .await
    }

    async fn mark_purged(&self, tenant: &TenantId, id: Uuid) -> Result<(), StoreError> {
        self.update_file(tenant, id, |f| {
            f.state = FileState::Purged;
            true
        })
        .await
        .map(|_| ())
    }

    async fn delete_file(&self, tenant: &TenantId, id: Uuid) -> Result<(), StoreError> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        self.db
            .write(move |conn| {
                conn.execute_cached("DELETE FROM files WHERE tenant = ?1 AND id = ?2", params![tenant, id])
                    .map_err(map_err)?;
                Ok(())
            })
            .await
    }
}

impl SqliteReadStore {
    /// Stores `value` as the next version of its id in its table.
    async fn put_versioned<T: Versioned>(&self, tenant: &TenantId, value: &T) -> Result<T, StoreError> {
        let tenant = tenant.to_string();
        let mut value = value.clone();
        self.db
            .write(move |conn| {
                let tx = &*conn;
                let last: i64 = tx
                    .query_row_cached(
                        &format!(
                            "SELECT COALESCE(MAX(version), 0) FROM {} WHERE tenant = ?1 AND id = ?2",
                            T::KIND
                        ),
                        params![tenant, value.id()],
                        |r| r.get(0),
                    )
                    .map_err(map_err)?;
                let version = u32::try_from(last + 1).map_err(corrupt)?;
                value.set_version(version);
                tx.execute_cached(
                    &format!(
                        "INSERT INTO {} (tenant, id, version, doc) VALUES (?1, ?2, ?3, ?4)",
                        T::KIND
                    ),
                    params![tenant, value.id(), version, to_json(&value)?],
                )
                .map_err(map_err)?;
                Ok(value)
            })
            .await
    }

    /// A given version of `id`, or its newest.
    async fn get_versioned<T: Versioned>(
        &self,
        tenant: &TenantId,
        id: &str,
        version: Option<u32>,
    ) -> Result<Option<T>, StoreError> {
        let (tenant, id) = (tenant.to_string(), id.to_owned());
        self.db
            .read(move |conn| {
                let doc: Option<String> = match version {
                    Some(v) => conn
                        .query_row_cached(
                            &format!(
                                "SELECT doc FROM {} WHERE tenant = ?1 AND id = ?2 AND version = ?3",
                                T::KIND
                            ),
                            params![tenant, id, v],
                            |r| r.get(0),
                        )
                        .optional(),
                    None => conn
                        .query_row_cached(
                            &format!(
                                "SELECT doc FROM {} WHERE tenant = ?1 AND id = ?2 ORDER BY version DESC LIMIT 1",
                                T::KIND
                            ),
                            params![tenant, id],
                            |r| r.get(0),
                        )
                        .optional(),
                }
                .map_err(map_err)?;
                doc.map(|d| serde_json::from_str(&d).map_err(corrupt)).transpose()
            })
            .await
    }

    /// The newest version of every id, by id.
    async fn list_versioned<T: Versioned>(&self, tenant: &TenantId) -> Result<Vec<T>, StoreError> {
        let tenant = tenant.to_string();
        self.db
            .read(move |conn| {
                let sql = format!(
                    "SELECT d.doc FROM {kind} d WHERE d.tenant = ?1 AND d.version =
                       (SELECT MAX(version) FROM {kind} x WHERE x.tenant = d.tenant AND x.id = d.id)
                     ORDER BY d.id",
                    kind = T::KIND
                );
                let mut stmt = conn.prepare_cached(&sql).map_err(map_err)?;
                let rows = stmt.query_map([tenant], |r| r.get::<_, String>(0)).map_err(map_err)?;
                let mut out = Vec::new();
                for row in rows {
                    out.push(serde_json::from_str(&row.map_err(map_err)?).map_err(corrupt)?);
                }
                Ok(out)
            })
            .await
    }
}

#[async_trait]
impl DefinitionStore for SqliteReadStore {
    async fn put_definition(
        &self,
        tenant: &TenantId,
        definition: &CaseDefinition,
    ) -> Result<CaseDefinition, StoreError> {
        self.put_versioned(tenant, definition).await
    }

    async fn get_definition(
        &self,
        tenant: &TenantId,
        id: &str,
        version: Option<u32>,
    ) -> Result<Option<CaseDefinition>, StoreError> {
        self.get_versioned(tenant, id, version).await
    }

    async fn list_definitions(&self, tenant: &TenantId) -> Result<Vec<CaseDefinition>, StoreError> {
        self.list_versioned(tenant).await
    }

    async fn put_calendar(
        &self,
        tenant: &TenantId,
        calendar: &BusinessCalendar,
    ) -> Result<BusinessCalendar, StoreError> {
        self.put_versioned(tenant, calendar).await
    }

    async fn get_calendar(
        &self,
        tenant: &TenantId,
        id: &str,
        version: Option<u32>,
    ) -> Result<Option<BusinessCalendar>, StoreError> {
        self.get_versioned(tenant, id, version).await
    }

    async fn list_calendars(&self, tenant: &TenantId) -> Result<Vec<BusinessCalendar>, StoreError> {
        self.list_versioned(tenant).await
    }
}

#[async_trait]
impl Checkpoints for SqliteReadStore {
    async fn checkpoint(&self, consumer: &str) -> Result<Option<u64>, StoreError> {
        let consumer = consumer.to_owned();
        self.db
            .read(move |conn| {
                let p: Option<i64> = conn
                    .query_row_cached(
                        "SELECT position FROM checkpoints WHERE consumer = ?1",
                        [consumer],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(map_err)?;
                Ok(p.and_then(|p| u64::try_from(p).ok()))
            })
            .await
    }

    async fn save_checkpoint(&self, consumer: &str, position: u64) -> Result<(), StoreError> {
        let consumer = consumer.to_owned();
        self.db
            .write(move |conn| {
                conn.execute_cached(
                    "INSERT INTO checkpoints (consumer, position) VALUES (?1, ?2)
                     ON CONFLICT (consumer) DO UPDATE SET position = excluded.position",
                    params![consumer, i64::try_from(position).unwrap_or(i64::MAX)],
                )
                .map_err(map_err)?;
                Ok(())
            })
            .await
    }
}

#[async_trait]
impl ReadStore for SqliteReadStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.db
            .read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())).map_err(map_err))
            .await
    }
}

fn task_kind(kind: TaskKind) -> &'static str {
    match kind {
        TaskKind::Human => "human",
        TaskKind::External => "external",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A store in a directory of its own, which lives as long as the test.
    async fn fresh_store() -> (Arc<SqliteReadStore>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteReadStore::open(&dir.path().join("read.db"), Durability::Normal).unwrap();
        (Arc::new(store), dir)
    }

    casewire_ports::read_store_contract!(fresh_store);

    #[tokio::test]
    async fn an_older_layout_is_dropped_for_the_projector_to_rebuild() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("read.db");
        let store = SqliteReadStore::open(&path, Durability::Normal).unwrap();
        store.save_checkpoint("projector", 42).await.unwrap();
        store.save_checkpoint("notifier", 7).await.unwrap();
        store
            .db
            .write(|c| {
                c.execute("UPDATE projection_layout SET version = 1", [])
                    .map_err(map_err)
            })
            .await
            .unwrap();
        drop(store);
        let store = SqliteReadStore::open(&path, Durability::Normal).unwrap();
        assert_eq!(
            store.checkpoint("projector").await.unwrap(),
            None,
            "the projector starts over"
        );
        assert_eq!(
            store.checkpoint("notifier").await.unwrap(),
            Some(7),
            "other consumers keep theirs"
        );
        // Reopening at the current layout keeps everything.
        store.save_checkpoint("projector", 5).await.unwrap();
        drop(store);
        let store = SqliteReadStore::open(&path, Durability::Normal).unwrap();
        assert_eq!(store.checkpoint("projector").await.unwrap(), Some(5));
    }

    /// The read store's non-projection tables as the release of 23 November
    /// 2026 wrote them (before `files.detached_at`), verbatim.
    const RELEASE_2026_11_23_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS projection_layout (only INTEGER PRIMARY KEY CHECK (only = 1), version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS definitions (tenant TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (tenant, id, version)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (consumer TEXT PRIMARY KEY, position INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS commands (id TEXT PRIMARY KEY, tenant TEXT NOT NULL, case_id TEXT NOT NULL,
    status TEXT NOT NULL, record TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS files (tenant TEXT NOT NULL, id TEXT NOT NULL, state TEXT NOT NULL,
    uploaded_at TEXT NOT NULL, record TEXT NOT NULL, PRIMARY KEY (tenant, id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS files_sweep ON files (state, uploaded_at);
CREATE INDEX IF NOT EXISTS commands_unfinished ON commands (case_id, tenant) WHERE status IN ('pending', 'processing');
";

    fn old_file(detached_mins_ago: Option<i64>) -> FileRecord {
        let at = |mins: i64| {
            DateTime::from_timestamp_micros((Utc::now() - chrono::Duration::minutes(mins)).timestamp_micros()).unwrap()
        };
        FileRecord {
            id: Uuid::now_v7(),
            tenant: TenantId::default_tenant(),
            name: "old.pdf".into(),
            content_type: "application/pdf".into(),
            size: 3,
            sha256: "ab".repeat(32),
            uploaded_by: "alice".into(),
            uploaded_at: at(600),
            cases: vec![],
            state: FileState::Pinned,
            detached_at: detached_mins_ago.map(at),
        }
    }

    #[tokio::test]
    async fn a_read_store_of_the_previous_layout_opens_and_keeps_its_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("read.db");
        let (detached, held) = (old_file(Some(120)), old_file(None));
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(RELEASE_2026_11_23_SCHEMA).unwrap();
            for f in [&detached, &held] {
                conn.execute_cached(
                    "INSERT INTO files (tenant, id, state, uploaded_at, record) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        f.tenant.as_str(),
                        f.id.to_string(),
                        f.state.as_str(),
                        sortable_time(f.uploaded_at),
                        to_json(f).unwrap()
                    ],
                )
                .unwrap();
            }
            conn.execute_cached(
                "INSERT INTO checkpoints (consumer, position) VALUES ('notifier', 9)",
                [],
            )
            .unwrap();
        }
        let store = SqliteReadStore::open(&path, Durability::Normal).expect("the old layout opens");
        assert_eq!(
            store.get_file(&TenantId::default_tenant(), held.id).await.unwrap(),
            Some(held.clone())
        );
        assert_eq!(store.checkpoint("notifier").await.unwrap(), Some(9));
        // The new column was filled in: the retention rule finds the old detach.
        let cutoff = Utc::now() - chrono::Duration::minutes(60);
        let due = store.claim_detached_files(cutoff, 10).await.unwrap();
        assert_eq!(due.iter().map(|f| f.id).collect::<Vec<_>>(), vec![detached.id]);
        drop(store);
        let store = SqliteReadStore::open(&path, Durability::Normal).expect("and opens again");
        assert!(
            store
                .get_file(&TenantId::default_tenant(), detached.id)
                .await
                .unwrap()
                .is_some()
        );
        let layout: i64 = store
            .db
            .read(|c| {
                c.query_row("SELECT version FROM store_layout", [], |r| r.get(0))
                    .map_err(map_err)
            })
            .await
            .unwrap();
        assert_eq!(layout, MIGRATIONS.last().unwrap().0);
    }

    #[tokio::test]
    async fn a_read_store_written_before_layouts_were_recorded_opens() {
        // The last release had today's tables but no store_layout row.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("read.db");
        let file = old_file(Some(120));
        {
            let store = SqliteReadStore::open(&path, Durability::Normal).unwrap();
            store.insert_file(&file).await.unwrap();
            store
                .db
                .write(|c| c.execute("DROP TABLE store_layout", []).map_err(map_err))
                .await
                .unwrap();
        }
        let store = SqliteReadStore::open(&path, Durability::Normal).expect("opens");
        assert_eq!(
            store.get_file(&TenantId::default_tenant(), file.id).await.unwrap(),
            Some(file)
        );
    }

    #[test]
    fn user_text_never_becomes_fts_syntax() {
        assert_eq!(fts_query("kettle leaks").as_deref(), Some("\"kettle\"* \"leaks\"*"));
        assert_eq!(fts_query("\"a\" OR (b"), Some("\"a\"* \"OR\"* \"b\"*".into()));
        assert_eq!(fts_query("--- ()"), None);
    }
}
