//! The opened adapters behind the ports. Adapters are chosen by URL scheme,
//! so the services never name a concrete store.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use casewire_kafka::{KafkaBus, KafkaSettings};
use casewire_mongodb::{MongoEventStore, MongoReadStore, MongoSettings};
use casewire_policy::RegoPolicy;
use casewire_policy::opa::OpaServer;
use casewire_ports::envelope::CommandEnvelope;
use casewire_ports::{
    BlobStore, Bus, CommandRecord, EventStore, MailQuarantine, NotificationStore, PolicyEngine, ReadStore, Topic,
};
use casewire_sqlite::{Durability, SqliteBus, SqliteEventStore, SqliteNotificationStore, SqliteReadStore};
use tokio_util::sync::CancellationToken;

use crate::adapter_url::{AdapterUrl, Scheme};
use crate::config::{self, Config, PolicyEngineKind, SecretUrl};

/// Everything a service needs: its config and the ports.
#[derive(Clone)]
pub struct Platform {
    pub config: Arc<Config>,
    pub events: Arc<dyn EventStore>,
    pub reads: Arc<dyn ReadStore>,
    pub bus: Arc<dyn Bus>,
    /// Notifications, preferences, people, watches and webhooks.
    pub notifications: Arc<dyn NotificationStore>,
    /// Mail held for review (same database as notifications: the mail
    /// side's own records).
    pub quarantine: Arc<dyn MailQuarantine>,
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A store's adapter, from its URL (validated already, so an error here
/// is a bug of the config check, reported all the same).
fn store_adapter(name: &str, url: &SecretUrl) -> anyhow::Result<AdapterUrl> {
    Ok(AdapterUrl::parse(name, url, &[Scheme::Sqlite, Scheme::MongoDb])?)
}

pub(crate) fn mongo_settings(config: &Config, url: &SecretUrl) -> MongoSettings {
    let m = &config.store.mongodb;
    let mut s = MongoSettings::new(url.expose());
    s.database = m.database.clone();
    s.max_pool_size = m.max_pool_size;
    s.min_pool_size = m.min_pool_size;
    s.server_selection_timeout = Duration::from_millis(m.server_selection_timeout_ms);
    s.connect_timeout = Duration::from_millis(m.connect_timeout_ms);
    s.operation_timeout = Duration::from_millis(m.operation_timeout_ms);
    s.gap_grace = Duration::from_millis(m.gap_grace_ms);
    s
}

/// Opens the event store and the read store; one MongoDB client serves
/// both when they name the same URL.
pub(crate) async fn open_stores(
    config: &Config,
    durability: Durability,
) -> anyhow::Result<(Arc<dyn EventStore>, Arc<dyn ReadStore>)> {
    let events_url = config.store_url(&config.store.events, "events.db");
    let reads_url = config.store_url(&config.store.read, "read.db");
    let mut shared: Option<(SecretUrl, mongodb::Database)> = None;
    let mut database = async |url: &SecretUrl| -> anyhow::Result<(MongoSettings, mongodb::Database)> {
        let settings = mongo_settings(config, url);
        if let Some((u, db)) = &shared
            && u == url
        {
            return Ok((settings, db.clone()));
        }
        let db = casewire_mongodb::connect(&settings).await?;
        tracing::info!(url = %url.masked(), database = db.name(), "Using MongoDB");
        shared = Some((url.clone(), db.clone()));
        Ok((settings, db))
    };
    let events: Arc<dyn EventStore> = match store_adapter("store.events", &events_url)? {
        AdapterUrl::MongoDb(url) => {
            let (settings, db) = database(&url).await?;
            Arc::new(
                MongoEventStore::open(&db, &settings)
                    .await
                    .with_context(|| format!("opening the event store at {}", url.masked()))?,
            )
        }
        AdapterUrl::Sqlite(path) => Arc::new(SqliteEventStore::open(&path, durability)?),
        other => anyhow::bail!("store.events can not be a {:?} adapter", other.scheme()),
    };
    let reads: Arc<dyn ReadStore> = match store_adapter("store.read", &reads_url)? {
        AdapterUrl::MongoDb(url) => {
            let (settings, db) = database(&url).await?;
            Arc::new(
                MongoReadStore::open(&db, &settings)
                    .await
                    .with_context(|| format!("opening the read store at {}", url.masked()))?,
            )
        }
        AdapterUrl::Sqlite(path) => Arc::new(SqliteReadStore::open(&path, durability)?),
        other => anyhow::bail!("store.read can not be a {:?} adapter", other.scheme()),
    };
    Ok((events, reads))
}

/// The stores' durability setting as the SQLite adapter takes it.
pub(crate) fn durability(config: &Config) -> Durability {
    match config.store.durability {
        config::Durability::Normal => Durability::Normal,
        config::Durability::Full => Durability::Full,
    }
}

/// The Kafka client settings of `config` for the broker URL `bus_url`.
pub(crate) fn kafka_settings(config: &Config, bus_url: &SecretUrl) -> anyhow::Result<KafkaSettings> {
    let mut settings = KafkaSettings::from_url(bus_url.expose())?;
    settings.topic_prefix = config.bus.topic_prefix.clone();
    settings.partitions = config.bus.partitions;
    settings.replication = config.bus.replication;
    settings.message_timeout_ms = config.bus.message_timeout_ms;
    settings.idempotent = config.bus.idempotent_producer;
    settings.properties = config.bus.properties.clone();
    Ok(settings)
}

impl Platform {
    /// Validates the config, then opens every adapter it names; Kafka topics
    /// are created when missing. Every command goes through here, so none
    /// runs on an invalid config.
    pub async fn open(config: Config) -> anyhow::Result<Platform> {
        config.validate()?;
        let durability = durability(&config);
        let (events, reads) = open_stores(&config, durability).await?;
        let bus_url = config.store_url(&config.bus.url, "bus.db");
        let bus: Arc<dyn Bus> = match AdapterUrl::parse("bus.url", &bus_url, &[Scheme::Sqlite, Scheme::Kafka])? {
            AdapterUrl::Kafka(bus_url) => {
                let settings = kafka_settings(&config, &bus_url)?;
                let bus = KafkaBus::connect(settings)
                    .await
                    .with_context(|| format!("connecting to Kafka at {}", bus_url.masked()))?;
                tracing::info!(brokers = %bus_url.masked(), prefix = %config.bus.topic_prefix, "Connected to Kafka");
                Arc::new(bus)
            }
            AdapterUrl::Sqlite(path) => Arc::new(SqliteBus::open(&path, durability)?),
            other => anyhow::bail!("bus.url can not be a {:?} adapter", other.scheme()),
        };
        let notify_url = config.store_url(&config.store.notify, "notify.db");
        let notify = match AdapterUrl::parse("store.notify", &notify_url, &[Scheme::Sqlite])? {
            AdapterUrl::Sqlite(path) => Arc::new(SqliteNotificationStore::open(&path, durability)?),
            other => anyhow::bail!("store.notify can not be a {:?} adapter", other.scheme()),
        };
        Ok(Platform {
            events,
            reads,
            bus,
            notifications: notify.clone(),
            quarantine: notify,
            config: Arc::new(config),
        })
    }

    /// Issues a command on behalf of a service (automation, the notify
    /// publisher): recorded in the command log as pending, then sent to the
    /// engine. Its id is the caller's (derived from what caused it), so a
    /// repeat is the same command, which the engine runs once.
    pub async fn issue(&self, envelope: &CommandEnvelope) -> anyhow::Result<()> {
        self.reads.insert_command(&CommandRecord::pending(envelope)).await?;
        self.bus
            .publish(
                Topic::Commands,
                vec![(envelope.case_id.to_string(), envelope.to_json())],
            )
            .await?;
        Ok(())
    }

    /// The policy engine the config names. A Rego directory is watched for
    /// changes until `shutdown` (a policy that does not compile keeps the
    /// previous one).
    pub fn policy(&self, shutdown: &CancellationToken) -> anyhow::Result<Arc<dyn PolicyEngine>> {
        let cfg = &self.config.policy;
        match cfg.engine {
            PolicyEngineKind::Rego => {
                let policy = Arc::new(
                    RegoPolicy::load(cfg.dir.as_deref())
                        .with_context(|| format!("loading the policies from {:?}", cfg.dir))?,
                );
                match &cfg.dir {
                    Some(dir) => {
                        tracing::info!(dir = %dir.display(), reload_secs = cfg.reload_secs, "Using the Rego policies")
                    }
                    None => tracing::info!("Using the built-in Rego policy (set policy.dir to use your own)"),
                }
                if cfg.dir.is_some() && cfg.reload_secs > 0 {
                    policy.watch(Duration::from_secs(cfg.reload_secs), shutdown.clone());
                }
                Ok(policy)
            }
            PolicyEngineKind::OpaServer => {
                let url = cfg.opa_url.as_deref().unwrap_or_default();
                tracing::info!(url, "Asking an OPA server for every decision");
                Ok(Arc::new(OpaServer::new(
                    url,
                    Duration::from_millis(cfg.opa_timeout_ms),
                )?))
            }
        }
    }

    /// The blob store `storage.url` names (local disk by default).
    pub async fn blobs(&self) -> anyhow::Result<Arc<dyn BlobStore>> {
        let url = self.config.storage_url();
        let blobs = casewire_blob::open(url.expose(), &casewire_blob::OpenOptions::default())
            .await
            .with_context(|| format!("opening the file storage at {}", url.masked()))?;
        tracing::info!(url = %url.masked(), "Using file storage");
        Ok(blobs)
    }
}
