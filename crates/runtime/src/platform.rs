//! The opened adapters behind the ports. Adapters are chosen by URL scheme,
//! so the services never name a concrete store.

use std::path::PathBuf;
use std::sync::Arc;

use casewire_ports::{Bus, EventStore, ReadStore, StoreError};
use casewire_sqlite::{Durability, SqliteBus, SqliteEventStore, SqliteReadStore};

use crate::config::{self, Config, SecretUrl};

/// Everything a service needs: its config and the ports.
#[derive(Clone)]
pub struct Platform {
    pub config: Arc<Config>,
    pub events: Arc<dyn EventStore>,
    pub reads: Arc<dyn ReadStore>,
    pub bus: Arc<dyn Bus>,
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn sqlite_path(url: &SecretUrl) -> Result<PathBuf, StoreError> {
    url.expose()
        .strip_prefix("sqlite://")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| StoreError::Backend(format!("{} is not a sqlite://<path> URL", url.masked())))
}

impl Platform {
    /// Opens every adapter the config names.
    pub fn open(config: Config) -> Result<Platform, StoreError> {
        let durability = match config.store.durability {
            config::Durability::Normal => Durability::Normal,
            config::Durability::Full => Durability::Full,
        };
        let events = sqlite_path(&config.store_url(&config.store.events, "events.db"))?;
        let reads = sqlite_path(&config.store_url(&config.store.read, "read.db"))?;
        let bus = sqlite_path(&config.store_url(&config.store.bus, "bus.db"))?;
        Ok(Platform {
            events: Arc::new(SqliteEventStore::open(&events, durability)?),
            reads: Arc::new(SqliteReadStore::open(&reads, durability)?),
            bus: Arc::new(SqliteBus::open(&bus, durability)?),
            config: Arc::new(config),
        })
    }
}
