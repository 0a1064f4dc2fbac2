//! `casewire admin init`: creates what the services need and must not
//! create themselves when they run without admin rights: the Kafka
//! topics, the stores' collections and indexes, and the S3 buckets (one,
//! or one per tenant). Idempotent: what is there is left as it is, and a
//! second run creates nothing. The Helm chart runs it as a pre-install
//! and pre-upgrade hook.

use anyhow::Context;
use casewire_blob::{S3BlobStore, S3Settings};
use casewire_kafka::{KafkaBus, TopicOutcome};

use crate::adapter_url::{AdapterUrl, Scheme};
use crate::config::{Config, SecretUrl};
use crate::platform::{durability, kafka_settings, mongo_settings, open_stores};

/// What became of one thing `init` looked after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Made now (for indexes: how many).
    Created(usize),
    /// It was there already.
    Exists,
}

/// One line of the report: what (a topic, a bucket, a database's
/// indexes) and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    pub what: String,
    pub outcome: Outcome,
}

fn line(what: String, created: usize) -> Provisioned {
    Provisioned {
        what,
        outcome: if created == 0 {
            Outcome::Exists
        } else {
            Outcome::Created(created)
        },
    }
}

/// Creates what is missing; `tenants` name the tenants whose buckets to
/// make when each tenant has its own.
pub async fn init(config: &Config, tenants: &[String]) -> anyhow::Result<Vec<Provisioned>> {
    config.validate()?;
    let mut report = Vec::new();
    report.extend(topics(config).await?);
    report.extend(stores(config).await?);
    report.extend(buckets(config, tenants).await?);
    Ok(report)
}

async fn topics(config: &Config) -> anyhow::Result<Vec<Provisioned>> {
    let url = config.store_url(&config.bus.url, "bus.db");
    let AdapterUrl::Kafka(url) = AdapterUrl::parse("bus.url", &url, &[Scheme::Sqlite, Scheme::Kafka])? else {
        return Ok(vec![]);
    };
    let bus = KafkaBus::connect_only(kafka_settings(config, &url)?)?;
    let made = bus
        .ensure_topics()
        .await
        .with_context(|| format!("creating the topics at {}", url.masked()))?;
    made.into_iter()
        .map(|(name, outcome)| match outcome {
            TopicOutcome::Created => Ok(line(format!("Kafka topic {name}"), 1)),
            TopicOutcome::Exists => Ok(line(format!("Kafka topic {name}"), 0)),
            TopicOutcome::Forbidden(why) => {
                anyhow::bail!("may not create the Kafka topic {name} ({why}): run admin init with an account that may")
            }
        })
        .collect()
}

/// The indexes of every collection of the MongoDB databases the stores
/// use, before and after opening them (opening creates what is missing).
async fn stores(config: &Config) -> anyhow::Result<Vec<Provisioned>> {
    let mut databases: Vec<SecretUrl> = Vec::new();
    for (name, url) in [
        ("store.events", &config.store.events),
        ("store.read", &config.store.read),
    ] {
        let url = config.store_url(url, "x.db");
        if let AdapterUrl::MongoDb(url) = AdapterUrl::parse(name, &url, &[Scheme::Sqlite, Scheme::MongoDb])?
            && !databases.contains(&url)
        {
            databases.push(url);
        }
    }
    let mut before = Vec::new();
    for url in &databases {
        before.push(index_count(config, url).await?);
    }
    open_stores(config, durability(config)).await?;
    let mut report = Vec::new();
    for (url, before) in databases.iter().zip(before) {
        let after = index_count(config, url).await?;
        report.push(line(
            format!("MongoDB indexes at {}", url.masked()),
            after.saturating_sub(before),
        ));
    }
    Ok(report)
}

async fn index_count(config: &Config, url: &SecretUrl) -> anyhow::Result<usize> {
    let db = casewire_mongodb::connect(&mongo_settings(config, url)).await?;
    let mut n = 0;
    for name in db.list_collection_names().await? {
        n += db
            .collection::<mongodb::bson::Document>(&name)
            .list_index_names()
            .await
            .map(|v| v.len())
            .unwrap_or(0);
    }
    Ok(n)
}

async fn buckets(config: &Config, tenants: &[String]) -> anyhow::Result<Vec<Provisioned>> {
    let url = config.storage_url();
    if !url.expose().starts_with("s3://") {
        return Ok(vec![]);
    }
    let store = S3BlobStore::connect(S3Settings::from_url(url.expose())?).await?;
    let names: Vec<String> = if store.tenant_buckets() {
        if tenants.is_empty() {
            anyhow::bail!("storage.url has tenant_buckets=true: name the tenants (--tenant) whose buckets to create");
        }
        tenants.iter().map(|t| format!("{}-{t}", store.bucket())).collect()
    } else {
        vec![store.bucket().to_owned()]
    };
    let mut report = Vec::new();
    for name in names {
        let created = store
            .ensure_bucket(&name)
            .await
            .with_context(|| format!("creating the bucket {name} at {}", url.masked()))?;
        report.push(line(format!("S3 bucket {name}"), usize::from(created)));
    }
    Ok(report)
}
