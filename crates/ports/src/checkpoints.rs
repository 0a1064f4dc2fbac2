//! The checkpoints port: how far each event consumer got.

use async_trait::async_trait;

use crate::StoreError;

/// Where consumers keep their position in the event log.
#[async_trait]
pub trait Checkpoints: Send + Sync + 'static {
    /// A consumer's checkpoint (last handled event position).
    async fn checkpoint(&self, consumer: &str) -> Result<Option<u64>, StoreError>;
    /// Saves a consumer's checkpoint.
    async fn save_checkpoint(&self, consumer: &str, position: u64) -> Result<(), StoreError>;
}
