//! The read store: the one backend (a SQLite file, a MongoDB database) that
//! holds the query side. It is five ports, so that each has its own
//! contract suite and a caller's imports say which part it uses:
//! [`CaseProjection`], [`CommandLog`], [`FileCatalog`], [`DefinitionStore`]
//! and [`Checkpoints`]. `ReadStore` is what the platform holds: all of them
//! in one backend, which is what lets `reset_projections` drop the projector
//! checkpoints with the projections.

use async_trait::async_trait;

use crate::{CaseProjection, Checkpoints, CommandLog, DefinitionStore, FileCatalog, SlaSchedule, StoreError};

/// Query-side storage: every read-side port in one backend.
#[async_trait]
pub trait ReadStore: CaseProjection + CommandLog + FileCatalog + DefinitionStore + Checkpoints + SlaSchedule {
    /// Checks that the backend answers.
    async fn ping(&self) -> Result<(), StoreError>;
}
