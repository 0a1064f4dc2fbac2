//! MongoDB adapters of the `EventStore` and `ReadStore` ports, chosen by a
//! `mongodb://` (or `mongodb+srv://`) store URL.
//!
//! No multi-document transaction is used: every write that must be atomic
//! is one document (a commit of events, a case, a command), and every
//! other write is idempotent, so a crash between two writes is repaired by
//! redelivery. Payloads (event data, the case detail, definitions) are kept
//! as JSON text next to the queried fields, because user data may hold keys
//! that BSON updates refuse (`$x`, `a.b`) and numbers and times must come
//! back exactly as they went in.
//!
//! # Layout
//! - [`MongoSettings`] and [`connect`]: client options, the database, and
//!   the mapping of driver errors to `StoreError`.
//! - [`event_store`]: `MongoEventStore` — commits, positions, keys.
//! - [`read_store`]: `MongoReadStore` — cases, timeline, definitions,
//!   checkpoints, the command log.
//! - `sla`: the SLA schedule (`SlaSchedule`) on the case documents.

use std::future::{Future, IntoFuture};
use std::time::Duration;

use casewire_ports::StoreError;
use mongodb::Database;
use mongodb::error::{Error, ErrorKind, WriteFailure};
use mongodb::options::ClientOptions;

pub mod event_store;
pub mod read_store;
mod sla;

pub use event_store::MongoEventStore;
pub use read_store::MongoReadStore;

/// How to reach the database. The URL may carry any standard connection
/// option (`replicaSet`, `w`, `tls`, `authSource` ...); the fields here
/// override the pool and timeout options.
#[derive(Clone)]
pub struct MongoSettings {
    /// `mongodb://user:password@host:port/?options`.
    pub url: String,
    /// Used when the URL names no database.
    pub database: String,
    pub max_pool_size: u32,
    pub min_pool_size: u32,
    /// How long an operation waits for a usable server before it fails
    /// as unavailable (the API then answers 503).
    pub server_selection_timeout: Duration,
    pub connect_timeout: Duration,
    /// The longest any one operation (a query, a write, reading a cursor to
    /// its end) may take before it fails as unavailable; the Rust driver
    /// has no socket timeout, so a stalled server would otherwise hold the
    /// caller forever.
    pub operation_timeout: Duration,
    /// How long a reader of the global order waits for a position that was
    /// allocated but is not visible yet before it treats it as never
    /// written (see `MongoEventStore::read_all`).
    pub gap_grace: Duration,
}

impl std::fmt::Debug for MongoSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoSettings")
            .field("url", &mask_url(&self.url))
            .field("database", &self.database)
            .field("max_pool_size", &self.max_pool_size)
            .field("min_pool_size", &self.min_pool_size)
            .field("server_selection_timeout", &self.server_selection_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .field("gap_grace", &self.gap_grace)
            .finish()
    }
}

impl MongoSettings {
    /// Settings with the defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        MongoSettings {
            url: url.into(),
            database: "casewire".into(),
            max_pool_size: 20,
            min_pool_size: 0,
            server_selection_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(30),
            gap_grace: Duration::from_secs(5),
        }
    }
}

/// A MongoDB URL with its password replaced by `***`. Works on
/// multi-host URLs (`h1:27017,h2:27017`) that generic URL parsers refuse.
pub fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_owned()
            };
            format!("{scheme}://{masked}@{hosts}{tail}")
        }
        None => url.to_owned(),
    }
}

/// The URL with its database replaced by `database` (options kept).
pub fn with_database(url: &str, database: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let options = tail.find('?').map_or("", |i| &tail[i..]);
    format!("{scheme}://{authority}/{database}{options}")
}

/// Connects (lazily: the driver dials on first use) and returns the database.
pub async fn connect(settings: &MongoSettings) -> Result<Database, StoreError> {
    let mut options = ClientOptions::parse(&settings.url)
        .await
        .map_err(|e| StoreError::Backend(format!("{}: {e}", mask_url(&settings.url))))?;
    options.app_name.get_or_insert_with(|| "casewire".into());
    options.max_pool_size = Some(settings.max_pool_size);
    options.min_pool_size = Some(settings.min_pool_size);
    options.server_selection_timeout = Some(settings.server_selection_timeout);
    options.connect_timeout = Some(settings.connect_timeout);
    let database = options
        .default_database
        .clone()
        .unwrap_or_else(|| settings.database.clone());
    let client = mongodb::Client::with_options(options).map_err(map_err)?;
    Ok(client.database(&database))
}

/// A driver operation bounded by the store's operation timeout
/// (`MongoSettings::operation_timeout`), its error mapped.
pub(crate) trait Bounded<T>: IntoFuture<Output = mongodb::error::Result<T>> + Sized {
    /// Runs it; past `limit` it is `Unavailable`, like a lost server.
    fn bounded(self, limit: Duration) -> impl Future<Output = Result<T, StoreError>> + Send
    where
        Self::IntoFuture: Send,
        T: Send,
    {
        let within = self.within(limit);
        async move { within.await?.map_err(map_err) }
    }

    /// Runs it within the timeout, handing back the driver's own result for
    /// callers that look at its error (a duplicate key is an answer).
    fn within(self, limit: Duration) -> impl Future<Output = Result<mongodb::error::Result<T>, StoreError>> + Send
    where
        Self::IntoFuture: Send,
        T: Send,
    {
        let operation = self.into_future();
        async move {
            tokio::time::timeout(limit, operation)
                .await
                .map_err(|_| timed_out(limit))
        }
    }
}

fn timed_out(limit: Duration) -> StoreError {
    StoreError::Unavailable(format!("MongoDB did not answer within {} ms", limit.as_millis()))
}

impl<T, F: IntoFuture<Output = mongodb::error::Result<T>>> Bounded<T> for F {}

/// Server error codes that mean "the server is there but can not serve
/// this now" (stepping down, shutting down, unreachable peers).
const UNAVAILABLE_CODES: [i32; 9] = [6, 7, 89, 91, 189, 262, 10107, 11600, 13435];

/// Maps a driver error: unreachable → `Unavailable` (503, retried by
/// consumers), everything else → `Backend`.
pub(crate) fn map_err(e: Error) -> StoreError {
    let unavailable = match e.kind.as_ref() {
        ErrorKind::Io(_) | ErrorKind::ServerSelection { .. } | ErrorKind::ConnectionPoolCleared { .. } => true,
        ErrorKind::Command(c) => UNAVAILABLE_CODES.contains(&c.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(c)) => UNAVAILABLE_CODES.contains(&c.code),
        _ => e.contains_label("RetryableWriteError") || e.contains_label("SystemOverloadedError"),
    };
    if unavailable {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Backend(e.to_string())
    }
}

/// Whether the error is a unique-index violation (E11000), however the
/// operation reported it.
pub(crate) fn is_duplicate_key(e: &Error) -> bool {
    const DUPLICATE_KEY: i32 = 11000;
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == DUPLICATE_KEY,
        ErrorKind::Command(c) => c.code == DUPLICATE_KEY,
        ErrorKind::InsertMany(m) => m
            .write_errors
            .as_ref()
            .is_some_and(|errors| errors.iter().any(|w| w.code == DUPLICATE_KEY)),
        _ => false,
    }
}

/// Asks the server for `ping`: the health check of both stores.
pub(crate) async fn ping(client: &mongodb::Client, limit: Duration) -> Result<(), StoreError> {
    client
        .database("admin")
        .run_command(mongodb::bson::doc! {"ping": 1})
        .bounded(limit)
        .await?;
    Ok(())
}

pub(crate) fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// Counters live in MongoDB as i64; positions and revisions never get near
/// its end, so saturating is only a guard.
pub(crate) fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn u64_of(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("negative number {n} where a count was stored")))
}

/// Creates the indexes a collection needs. `createIndexes` with an existing,
/// identical index is a no-op, so this runs at every start-up.
pub(crate) async fn ensure_indexes(
    collection: &mongodb::Collection<mongodb::bson::Document>,
    indexes: Vec<mongodb::IndexModel>,
    limit: Duration,
) -> Result<(), StoreError> {
    collection.create_indexes(indexes).bounded(limit).await?;
    Ok(())
}

pub(crate) fn index(name: &str, keys: mongodb::bson::Document, unique: bool) -> mongodb::IndexModel {
    mongodb::IndexModel::builder()
        .keys(keys)
        .options(
            mongodb::options::IndexOptions::builder()
                .name(name.to_owned())
                .unique(unique.then_some(true))
                .build(),
        )
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_passwords_in_single_and_multi_host_urls() {
        assert_eq!(
            mask_url("mongodb://app:s3cret@db:27017/casewire?authSource=admin"),
            "mongodb://app:***@db:27017/casewire?authSource=admin"
        );
        assert_eq!(
            mask_url("mongodb://app:p@ss@h1:27017,h2:27017/?replicaSet=rs0"),
            "mongodb://app:***@h1:27017,h2:27017/?replicaSet=rs0"
        );
        assert_eq!(
            mask_url("mongodb+srv://u@cluster.example"),
            "mongodb+srv://u@cluster.example"
        );
        assert_eq!(mask_url("mongodb://127.0.0.1:27017"), "mongodb://127.0.0.1:27017");
        assert_eq!(
            with_database("mongodb://u:p@h1,h2/old?replicaSet=rs0", "new"),
            "mongodb://u:p@h1,h2/new?replicaSet=rs0"
        );
        assert_eq!(with_database("mongodb://h?w=1", "new"), "mongodb://h/new?w=1");
        assert_eq!(with_database("mongodb://h", "new"), "mongodb://h/new");
        let settings = MongoSettings::new("mongodb://app:s3cret@db:27017");
        assert!(!format!("{settings:?}").contains("s3cret"));
    }
}
