//! Errors of the ports. Adapters map their driver errors into these with
//! explicit matches so the API can answer 409/503/500 consistently.

use thiserror::Error;

/// What a store operation can fail with.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum StoreError {
    /// Optimistic concurrency: the stream moved on since it was read.
    #[error("revision conflict: expected {expected}, found {actual}")]
    Conflict { expected: u64, actual: u64 },
    /// The backend can not be reached now; retrying later may work.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be decoded: a bug or a tampered database.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Anything else the backend reported.
    #[error("store failure: {0}")]
    Backend(String),
}

/// What a bus operation can fail with.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum BusError {
    /// The broker can not be reached now; retrying later may work.
    #[error("bus unavailable: {0}")]
    Unavailable(String),
    /// The subscription was closed (shutdown).
    #[error("subscription closed")]
    Closed,
    /// Anything else the backend reported.
    #[error("bus failure: {0}")]
    Backend(String),
}
