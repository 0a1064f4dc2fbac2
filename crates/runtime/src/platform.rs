//! The opened adapters behind the ports. Adapters are chosen by URL scheme,
//! so the services never name a concrete store.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use casewire_kafka::{KafkaBus, KafkaSettings};
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
    /// Opens every adapter the config names; Kafka topics are created when missing.
    pub async fn open(config: Config) -> anyhow::Result<Platform> {
        let durability = match config.store.durability {
            config::Durability::Normal => Durability::Normal,
            config::Durability::Full => Durability::Full,
        };
        let events = sqlite_path(&config.store_url(&config.store.events, "events.db"))?;
        let reads = sqlite_path(&config.store_url(&config.store.read, "read.db"))?;
        let bus_url = config.store_url(&config.bus.url, "bus.db");
        let bus: Arc<dyn Bus> = if bus_url.expose().starts_with("kafka://") {
            let mut settings = KafkaSettings::from_url(bus_url.expose())?;
            settings.topic_prefix = config.bus.topic_prefix.clone();
            settings.partitions = config.bus.partitions;
            settings.replication = config.bus.replication;
            settings.message_timeout_ms = config.bus.message_timeout_ms;
            settings.idempotent = config.bus.idempotent_producer;
            settings.properties = config.bus.properties.clone();
            let bus = KafkaBus::connect(settings)
                .await
                .with_context(|| format!("connecting to Kafka at {}", bus_url.masked()))?;
            tracing::info!(brokers = %bus_url.masked(), prefix = %config.bus.topic_prefix, "Connected to Kafka");
            Arc::new(bus)
        } else {
            Arc::new(SqliteBus::open(&sqlite_path(&bus_url)?, durability)?)
        };
        Ok(Platform {
            events: Arc::new(SqliteEventStore::open(&events, durability)?),
            reads: Arc::new(SqliteReadStore::open(&reads, durability)?),
            bus,
            config: Arc::new(config),
        })
    }
}
