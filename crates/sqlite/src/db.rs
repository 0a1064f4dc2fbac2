//! A small connection manager. SQLite allows one writer at a time per file;
//! we keep one write connection behind a mutex and a few read connections.
//!
//! Statements run on the calling thread. They take tens of microseconds,
//! and profiling showed that handing each one to tokio's blocking pool cost
//! more than the statement itself (a quarter of all CPU in futex wake-ups;
//! moving inline raised end-to-end throughput by ~70%). The price: when
//! another *process* holds the write lock, the wait (at most the 10 s
//! busy timeout) blocks a runtime thread. The embedded runtime is one
//! process; multi-process deployments should use the Kafka and MongoDB
//! adapters.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

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

/// A database file with one writer and a pool of readers.
#[derive(Debug, Clone)]
pub struct Db {
    writer: Arc<Mutex<Connection>>,
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
    let sync = match durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    conn.execute_batch(&format!("PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON;"))
        .map_err(map_err)?;
    Ok(conn)
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
            readers: Arc::new(readers),
            next_reader: Arc::new(AtomicUsize::new(0)),
            _alive: alive,
        })
    }

    /// Runs `f` on the write connection, from synchronous code (start-up).
    pub fn write_now<R>(&self, f: impl FnOnce(&mut Connection) -> Result<R, StoreError>) -> Result<R, StoreError> {
        let mut conn = self
            .writer
            .lock()
            .map_err(|_| StoreError::Backend("writer connection poisoned".into()))?;
        f(&mut conn)
    }

    /// Runs `f` on the write connection.
    pub async fn write<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let mut conn = self
            .writer
            .lock()
            .map_err(|_| StoreError::Backend("writer connection poisoned".into()))?;
        f(&mut conn)
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
}
