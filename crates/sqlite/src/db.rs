//! A small connection manager. SQLite allows one writer at a time per file;
//! we keep one write connection and a few read connections.
//!
//! Statements run on the calling thread. They take tens of microseconds,
//! and profiling showed that handing each one to tokio's blocking pool cost
//! more than the statement itself (a quarter of all CPU in futex wake-ups;
//! moving inline raised end-to-end throughput by ~70%). The price: when
//! another *process* holds the write lock, the wait (at most the 10 s
//! busy timeout) blocks a runtime thread. The embedded runtime is one
//! process; multi-process deployments should use the Kafka and MongoDB
//! adapters.
//!
//! Writes are group-committed by flat combining: a writer queues its work,
//! and whoever holds the connection runs everything queued in one
//! transaction, each piece in its own savepoint, and answers each after the
//! commit. A writer that finds the connection busy awaits its answer
//! instead of blocking its thread on a mutex, so concurrent requests share
//! one commit instead of queueing for one each.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use casewire_ports::StoreError;
use rusqlite::{Connection, ErrorCode, OpenFlags};

/// `execute` and `query_row` through the connection's statement cache:
/// parsing and planning a statement cost more than running most of ours
/// (7% of the embedded bench's CPU before this).
pub(crate) trait Cached {
    fn execute_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    fn query_row_cached<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn execute_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn query_row_cached<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

/// How hard a commit waits for the disk. `Normal` (the default) survives a
/// process crash but may lose the last commits on power loss; `Full`
/// survives both at a cost in throughput.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    #[default]
    Normal,
    Full,
}

const READERS: usize = 4;

/// How often the background thread copies the WAL into the database.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// WAL frames (pages) past which a checkpoint waits for readers: 64 MiB
/// of 4 KiB pages.
const WAL_FRAMES_BOUND: i64 = 16_384;

/// A write waiting for the group that runs it.
trait Pending: Send {
    /// Runs the write; returns whether it succeeded (else its savepoint is
    /// rolled back).
    fn run(&mut self, conn: &mut Connection) -> bool;
    /// Answers the writer once the group's fate is known.
    fn finish(self: Box<Self>, commit: Result<(), StoreError>);
}

struct Write<R, F> {
    work: Option<F>,
    result: Option<Result<R, StoreError>>,
    reply: tokio::sync::oneshot::Sender<Result<R, StoreError>>,
}

impl<R, F> Pending for Write<R, F>
where
    R: Send,
    F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send,
{
    fn run(&mut self, conn: &mut Connection) -> bool {
        let result = self.work.take().map(|work| work(conn));
        let ok = matches!(result, Some(Ok(_)));
        self.result = result;
        ok
    }

    fn finish(self: Box<Self>, commit: Result<(), StoreError>) {
        let answer = match (self.result, commit) {
            // Its own failure says more than the group's.
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (_, Err(e)) => Err(e),
            (None, Ok(())) => Err(StoreError::Backend("a write was never run".into())),
        };
        let _ = self.reply.send(answer);
    }
}

/// A database file with one writer and a pool of readers.
#[derive(Clone)]
pub struct Db {
    writer: Arc<Mutex<Connection>>,
    /// Writes waiting for whoever holds `writer` next.
    queue: Arc<Mutex<Vec<Box<dyn Pending>>>>,
    readers: Arc<Vec<Mutex<Connection>>>,
    next_reader: Arc<AtomicUsize>,
    /// Held by every clone; the checkpoint thread stops once all are gone.
    _alive: Arc<()>,
}

/// Checkpoints the WAL from a thread of its own. SQLite's automatic
/// checkpoint runs inside whichever commit crosses the threshold, holding
/// the write lock (and so, here, a runtime thread) through two fsyncs; a
/// profile of the embedded bench showed those stalls as its latency tail.
/// A passive checkpoint waits for nobody and blocks nobody.
fn start_checkpoints(path: &Path, durability: Durability, alive: &Arc<()>) -> Result<(), StoreError> {
    let conn = open_conn(path, durability, false)?;
    let alive = Arc::downgrade(alive);
    let name = format!(
        "checkpoint-{}",
        path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()
    );
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            while alive.strong_count() > 0 {
                std::thread::sleep(CHECKPOINT_EVERY);
                let passive = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1));
                // Readers that never let go could keep a passive checkpoint
                // from ever reaching the end, and the WAL would only grow:
                // past a bound, wait for them and start the WAL over.
                let result = match passive {
                    Ok(frames) if frames > WAL_FRAMES_BOUND => {
                        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                    }
                    other => other.map(|_| ()),
                };
                if let Err(error) = result {
                    tracing::warn!(%error, "A WAL checkpoint failed; the next one retries");
                }
            }
        })
        .map_err(|e| StoreError::Unavailable(format!("can not start the checkpoint thread: {e}")))?;
    Ok(())
}

/// Maps a driver error to the port's error.
pub fn map_err(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::CannotOpen | ErrorCode::DiskFull => {
                StoreError::Unavailable(e.to_string())
            }
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => StoreError::Corrupt(e.to_string()),
            _ => StoreError::Backend(e.to_string()),
        },
        rusqlite::Error::FromSqlConversionFailure(..) | rusqlite::Error::InvalidColumnType(..) => {
            StoreError::Corrupt(e.to_string())
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

fn open_conn(path: &Path, durability: Durability, read_only: bool) -> Result<Connection, StoreError> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags).map_err(map_err)?;
    // Other processes may hold the write lock briefly; wait instead of failing.
    conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(map_err)?;
    conn.set_prepared_statement_cache_capacity(64);
    // Without the planner stability guarantee, SQLite lets a statement's
    // plan depend on the value bound to `LIMIT ?`, and then expires the
    // cached statement at every bind: each bus poll and each log read was
    // parsed again (5% of the embedded bench's CPU in a profile). Plans
    // here never depend on values (no ANALYZE, no LIKE on a parameter).
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map_err(map_err)?;
    let sync = match durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    conn.execute_batch(&format!("PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON;"))
        .map_err(map_err)?;
    Ok(conn)
}

/// One `BEGIN IMMEDIATE … COMMIT` for the group; everyone is answered
/// after the commit (or told why there was none).
fn run_group(conn: &mut MutexGuard<'_, Connection>, mut group: Vec<Box<dyn Pending>>) {
    metrics::histogram!("casewire_sqlite_group_size").record(group.len() as f64);
    let exec = |conn: &Connection, sql: &str| conn.execute_cached(sql, []).map(|_| ()).map_err(map_err);
    let mut outcome = exec(conn, "BEGIN IMMEDIATE");
    if outcome.is_ok() {
        outcome = match group.as_mut_slice() {
            // Alone, the transaction is the write's own: no savepoint,
            // which would copy every page it changes to a sub-journal
            // first (a replay's large writes felt that). A failed write
            // is rolled back whole and answered with its own error.
            [write] => {
                let end = if write.run(conn) { "COMMIT" } else { "ROLLBACK" };
                exec(conn, end)
            }
            writes => in_savepoints(conn, writes).and_then(|()| exec(conn, "COMMIT")),
        };
        if outcome.is_err() && !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
    }
    for write in group {
        write.finish(outcome.clone());
    }
}

/// Runs each write of a group in a savepoint of its own, so that one that
/// fails (a revision conflict) takes back its own changes only.
fn in_savepoints(conn: &mut Connection, writes: &mut [Box<dyn Pending>]) -> Result<(), StoreError> {
    for write in writes {
        conn.execute_cached("SAVEPOINT write", []).map_err(map_err)?;
        let end = if write.run(conn) {
            "RELEASE write"
        } else {
            "ROLLBACK TO write; RELEASE write"
        };
        conn.execute_batch(end).map_err(map_err)?;
    }
    Ok(())
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").finish_non_exhaustive()
    }
}

impl Db {
    /// Opens (creating if needed) the database and applies `schema`.
    pub fn open(path: &Path, durability: Durability, schema: &str) -> Result<Db, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Unavailable(format!("can not create {}: {e}", dir.display())))?;
        }
        let writer = open_conn(path, durability, false)?;
        writer
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
            .map_err(map_err)?;
        // A transaction larger than the page cache spills pages to the WAL
        // before its commit and reads them back: SQLite's 2 MiB default is
        // a few hundred cases of a replay's write, so the writer gets 32 MiB
        // (an upper bound, allocated as used).
        writer.execute_batch("PRAGMA cache_size = -32768").map_err(map_err)?;
        // Savepoints of grouped writes journal the pages they change: in
        // memory, not in a temporary file.
        writer.execute_batch("PRAGMA temp_store = MEMORY").map_err(map_err)?;
        // Commits never checkpoint; the thread below does (see there).
        writer
            .query_row("PRAGMA wal_autocheckpoint = 0", [], |r| r.get::<_, i64>(0))
            .map_err(map_err)?;
        writer.execute_batch(schema).map_err(map_err)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            readers.push(Mutex::new(open_conn(path, durability, true)?));
        }
        let alive = Arc::new(());
        start_checkpoints(path, durability, &alive)?;
        Ok(Db {
            writer: Arc::new(Mutex::new(writer)),
            queue: Arc::default(),
            readers: Arc::new(readers),
            next_reader: Arc::new(AtomicUsize::new(0)),
            _alive: alive,
        })
    }

    /// Runs `f` on the write connection, from synchronous code (start-up),
    /// alone: `f` manages its own transaction.
    pub fn write_now<R>(&self, f: impl FnOnce(&mut Connection) -> Result<R, StoreError>) -> Result<R, StoreError> {
        let result = {
            let mut conn = self
                .writer
                .lock()
                .map_err(|_| StoreError::Backend("writer connection poisoned".into()))?;
            f(&mut conn)
        };
        // Writes queued meanwhile found the connection taken.
        self.combine();
        result
    }

    /// Runs `f` on the write connection inside an immediate transaction,
    /// shared with the writes queued at the same time; answers after the
    /// commit. `f` is atomic (alone, the transaction is its own; grouped,
    /// it runs in a savepoint), so an error takes back its changes only.
    /// `f` never begins or ends a transaction itself.
    pub async fn write<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.queue
            .lock()
            .map_err(|_| StoreError::Backend("write queue poisoned".into()))?
            .push(Box::new(Write {
                work: Some(f),
                result: None,
                reply,
            }));
        self.combine();
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::Backend("a write was dropped unanswered".into())))
    }

    /// Runs what is queued, if the connection is free; whoever holds it
    /// looks at the queue again after letting go, so nothing is left.
    fn combine(&self) {
        loop {
            let mut conn = match self.writer.try_lock() {
                Ok(conn) => conn,
                Err(TryLockError::WouldBlock) => return,
                Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            };
            loop {
                let group = match self.queue.lock() {
                    Ok(mut queue) => std::mem::take(&mut *queue),
                    Err(_) => return,
                };
                if group.is_empty() {
                    break;
                }
                run_group(&mut conn, group);
            }
            drop(conn);
            if self.queue.lock().map(|q| q.is_empty()).unwrap_or(true) {
                return;
            }
        }
    }

    /// Runs `f` on a read connection.
    pub async fn read<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % READERS;
        let conn = self.readers[i]
            .lock()
            .map_err(|_| StoreError::Backend("reader connection poisoned".into()))?;
        f(&conn)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn commits_leave_the_wal_to_the_background_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let db = Db::open(&path, Durability::Normal, "CREATE TABLE t (x BLOB);").unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        for _ in 0..200 {
            db.write(|c| {
                c.execute("INSERT INTO t VALUES (?1)", [vec![7u8; 4000]])
                    .map(|_| ())
                    .map_err(map_err)
            })
            .await
            .unwrap();
        }
        let wal = dir.path().join("t.db-wal");
        assert!(
            std::fs::metadata(&wal).unwrap().len() > 800_000,
            "the commits went to the WAL"
        );
        // The thread copies the pages into the database within a few of
        // its periods.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::metadata(&path).unwrap().len() < before + 800_000 {
            assert!(std::time::Instant::now() < deadline, "no checkpoint within 10 s");
            tokio::time::sleep(CHECKPOINT_EVERY).await;
        }
        let rows: i64 = db
            .read(|c| c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).map_err(map_err))
            .await
            .unwrap();
        assert_eq!(rows, 200);
    }

    fn table(dir: &tempfile::TempDir) -> Db {
        Db::open(
            &dir.path().join("t.db"),
            Durability::Normal,
            "CREATE TABLE t (x INTEGER);",
        )
        .unwrap()
    }

    fn insert(n: i64, fail: bool) -> impl FnOnce(&mut Connection) -> Result<i64, StoreError> + Send + 'static {
        move |c: &mut Connection| {
            c.execute("INSERT INTO t VALUES (?1)", [n]).map_err(map_err)?;
            if fail {
                return Err(StoreError::Conflict { expected: 0, actual: 1 });
            }
            Ok(n)
        }
    }

    /// Writes that queue while the connection is taken run as one group
    /// when it is let go; one that fails loses its own changes only.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_queued_together_share_a_commit_and_a_failure_stays_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let db = table(&dir);
        let queued = db.clone();
        let tasks = db
            .write_now(move |_| {
                let tasks: Vec<_> = [(1, false), (2, true), (3, false)]
                    .into_iter()
                    .map(|(n, fail)| {
                        let db = queued.clone();
                        tokio::spawn(async move { db.write(insert(n, fail)).await })
                    })
                    .collect();
                while queued.queue.lock().unwrap().len() < 3 {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Ok(tasks)
            })
            .unwrap();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.unwrap());
        }
        assert_eq!(answers[0], Ok(1));
        assert!(
            matches!(answers[1], Err(StoreError::Conflict { .. })),
            "{:?}",
            answers[1]
        );
        assert_eq!(answers[2], Ok(3));
        let rows: Vec<i64> = db
            .read(|c| {
                let mut stmt = c.prepare("SELECT x FROM t ORDER BY x").map_err(map_err)?;
                let rows = stmt.query_map([], |r| r.get(0)).map_err(map_err)?;
                rows.collect::<Result<_, _>>().map_err(map_err)
            })
            .await
            .unwrap();
        assert_eq!(rows, vec![1, 3]);
    }

    /// A write on its own still commits before it is answered.
    #[tokio::test]
    async fn a_lone_write_is_committed_when_answered() {
        let dir = tempfile::tempdir().unwrap();
        let db = table(&dir);
        assert_eq!(db.write(insert(7, false)).await, Ok(7));
        let n: i64 = db
            .read(|c| c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).map_err(map_err))
            .await
            .unwrap();
        assert_eq!(n, 1, "a reader sees it: committed");
    }

    /// A write on its own that fails after a statement leaves nothing of
    /// it: the transaction is its own, even for a closure that opens none.
    #[tokio::test]
    async fn a_lone_write_that_fails_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = table(&dir);
        assert!(matches!(
            db.write(insert(5, true)).await,
            Err(StoreError::Conflict { .. })
        ));
        let n: i64 = db
            .read(|c| c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).map_err(map_err))
            .await
            .unwrap();
        assert_eq!(n, 0, "the failed write's insert was rolled back");
    }
}
