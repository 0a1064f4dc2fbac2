//! The Kafka adapter of the `Bus` port (librdkafka through `rdkafka`).
//!
//! - Topics are `<prefix>casewire.commands`, `...events`, `...tasks`,
//!   `...outcomes` and `...dlq`, created at connect time when missing, with
//!   the configured partitions and replication.
//! - Messages are keyed (case id for commands and events, command id for
//!   outcomes); values are the CloudEvents JSON the services produce.
//! - The producer is idempotent with `acks=all`, so retries inside
//!   librdkafka neither lose nor reorder nor duplicate; it is flushed when
//!   the bus is dropped.
//! - Consumers store an offset only when the service commits the message
//!   (`enable.auto.offset.store=false`); stored offsets are committed in the
//!   background and on close, so a crash redelivers what was not handled.
//!
//! # Layout
//! - [`KafkaSettings`]: connection and topic settings, from the URL and config.
//! - [`KafkaBus`]: the `Bus` implementation; `KafkaSubscription` its consumer.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use casewire_ports::{Bus, BusError, BusMessage, StartFrom, Subscription, Topic};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers as _, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

/// Everything needed to reach the brokers and shape the topics.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KafkaSettings {
    /// `host:port[,host:port...]`.
    pub bootstrap_servers: String,
    /// Prepended to every topic name (e.g. `prod.`), so several platforms can share a cluster.
    pub topic_prefix: String,
    /// Partitions of topics created at start-up.
    pub partitions: i32,
    /// Replication factor of topics created at start-up.
    pub replication: i32,
    /// How long the producer keeps retrying a message before failing the publish.
    pub message_timeout_ms: u64,
    /// Idempotent producer (no duplicates from producer retries). Casewire
    /// does not rely on it for correctness: consumers deduplicate by command
    /// id and revision.
    pub idempotent: bool,
    /// Passed to librdkafka as is: `security.protocol`, `sasl.*`, `ssl.*`...
    pub properties: BTreeMap<String, String>,
}

/// librdkafka properties fit for a log: values of keys that name a
/// password, secret or key are replaced by `***`.
pub fn masked_properties(properties: &BTreeMap<String, String>) -> BTreeMap<&str, &str> {
    properties
        .iter()
        .map(|(k, v)| {
            let secret = k.contains("password") || k.contains("secret") || k.contains("key");
            (k.as_str(), if secret { "***" } else { v.as_str() })
        })
        .collect()
}

impl std::fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let masked = masked_properties(&self.properties);
        f.debug_struct("KafkaSettings")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("topic_prefix", &self.topic_prefix)
            .field("partitions", &self.partitions)
            .field("replication", &self.replication)
            .field("idempotent", &self.idempotent)
            .field("properties", &masked)
            .finish()
    }
}

impl KafkaSettings {
    /// Settings from a `kafka://host:port[,host:port]` URL with defaults.
    pub fn from_url(url: &str) -> Result<Self, BusError> {
        let rest = url
            .strip_prefix("kafka://")
            .ok_or_else(|| BusError::Backend(format!("{url} is not a kafka:// URL")))?;
        let servers = rest.trim_end_matches('/');
        if servers.is_empty() {
            return Err(BusError::Backend("kafka:// URL without brokers".into()));
        }
        Ok(KafkaSettings {
            bootstrap_servers: servers.to_owned(),
            topic_prefix: String::new(),
            partitions: 6,
            replication: 1,
            message_timeout_ms: 10_000,
            idempotent: true,
            properties: BTreeMap::new(),
        })
    }

    /// The full name of a topic.
    pub fn topic(&self, topic: Topic) -> String {
        format!("{}{}", self.topic_prefix, topic.name())
    }

    fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap_servers);
        for (k, v) in &self.properties {
            config.set(k, v);
        }
        config
    }
}

/// The consumers' default `fetch.wait.max.ms` (a `bus.properties` entry
/// overrides it).
pub const FETCH_WAIT_MAX_MS: &str = "100";
/// The message header that carries the W3C trace context.
const TRACEPARENT: &str = "traceparent";
/// How often librdkafka reports its statistics, and so the lag (a
/// `statistics.interval.ms` entry in `bus.properties` overrides it).
const STATS_EVERY_MS: &str = "5000";

/// A consumer's context that reads librdkafka's statistics: the lag of a
/// group's partitions (high watermark less the committed offset), kept for
/// [`Subscription::lag`] and as the gauge `casewire_consumer_lag{group,topic}`.
/// A private reader (no group) commits nothing, so it has no lag: its
/// statistics are not asked for.
struct LagContext {
    group: Option<String>,
    topic: &'static str,
    lag: Arc<AtomicI64>,
}

impl ClientContext for LagContext {
    fn stats(&self, stats: rdkafka::Statistics) {
        // Only if `bus.properties` turned statistics on for readers too.
        let Some(group) = &self.group else { return };
        // What the partitions hold past the group's committed offset (its
        // own `consumer_lag` counts from the last stable offset, which not
        // every broker reports). -1 is librdkafka's "unknown": a partition
        // not consumed here, or not fetched yet; partition -1 is its UA.
        let lags: Vec<i64> = stats
            .topics
            .values()
            .flat_map(|t| t.partitions.values())
            .filter(|p| p.partition >= 0 && p.hi_offset >= 0)
            .map(|p| (p.hi_offset - p.committed_offset.max(p.lo_offset).max(0)).max(0))
            .collect();
        // A report that knows no partition (between assignments) says
        // nothing about the lag: the last one stands.
        if lags.is_empty() {
            return;
        }
        let lag: i64 = lags.iter().sum();
        self.lag.store(lag, Ordering::Relaxed);
        metrics::gauge!("casewire_consumer_lag", "group" => group.clone(), "topic" => self.topic).set(lag as f64);
    }
}

impl ConsumerContext for LagContext {}

type LagConsumer = StreamConsumer<LagContext>;

fn unavailable(e: KafkaError) -> BusError {
    BusError::Unavailable(e.to_string())
}

/// What [`KafkaBus::ensure_topics`] did with a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicOutcome {
    Created,
    /// It was there.
    Exists,
    /// This account may not create topics (the broker's reason): whether
    /// the topic exists is unknown; an operator makes it.
    Forbidden(String),
}

/// The Kafka bus.
#[derive(Clone)]
pub struct KafkaBus {
    settings: Arc<KafkaSettings>,
    producer: FutureProducer,
}

impl std::fmt::Debug for KafkaBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaBus")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl KafkaBus {
    /// Connects, and creates the topics that are missing, where its
    /// account may: a service without that right (the topics made by
    /// `casewire admin init`) goes on with a warning.
    pub async fn connect(settings: KafkaSettings) -> Result<Self, BusError> {
        let bus = Self::connect_only(settings)?;
        for (name, outcome) in bus.ensure_topics().await? {
            if let TopicOutcome::Forbidden(why) = outcome {
                tracing::warn!(topic = %name, reason = %why, "May not create a Kafka topic; going on as if `casewire admin init` made it");
            }
        }
        Ok(bus)
    }

    /// Connects without touching topics (librdkafka's mock cluster can not
    /// create topics through the admin API; its tests create them directly).
    pub fn connect_only(settings: KafkaSettings) -> Result<Self, BusError> {
        let producer: FutureProducer = settings
            .client_config()
            .set("enable.idempotence", settings.idempotent.to_string())
            .set("acks", "all")
            .set("message.timeout.ms", settings.message_timeout_ms.to_string())
            .set("linger.ms", "1")
            .create()
            .map_err(unavailable)?;
        Ok(KafkaBus {
            settings: Arc::new(settings),
            producer,
        })
    }

    /// Creates missing topics; existing ones are left as they are. Each
    /// topic's name, and what became of it.
    pub async fn ensure_topics(&self) -> Result<Vec<(String, TopicOutcome)>, BusError> {
        let admin: AdminClient<DefaultClientContext> = self.settings.client_config().create().map_err(unavailable)?;
        let names: Vec<String> = Topic::ALL.iter().map(|t| self.settings.topic(*t)).collect();
        let topics: Vec<NewTopic<'_>> = names
            .iter()
            .map(|n| {
                NewTopic::new(
                    n,
                    self.settings.partitions,
                    TopicReplication::Fixed(self.settings.replication),
                )
            })
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = admin
            .create_topics(topics.iter(), &options)
            .await
            .map_err(unavailable)?;
        let mut report = Vec::new();
        for result in results {
            match result {
                Ok(name) => {
                    tracing::info!(topic = %name, partitions = self.settings.partitions, "Created a topic");
                    report.push((name, TopicOutcome::Created));
                }
                Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => report.push((name, TopicOutcome::Exists)),
                Err((
                    name,
                    code @ (RDKafkaErrorCode::TopicAuthorizationFailed | RDKafkaErrorCode::ClusterAuthorizationFailed),
                )) => report.push((name, TopicOutcome::Forbidden(code.to_string()))),
                Err((name, code)) => return Err(BusError::Unavailable(format!("creating topic {name}: {code}"))),
            }
        }
        Ok(report)
    }

    /// The settings in use.
    pub fn settings(&self) -> &KafkaSettings {
        &self.settings
    }

    async fn send(
        &self,
        topic: &str,
        key: &str,
        payload: &[u8],
        headers: Option<OwnedHeaders>,
    ) -> Result<(), BusError> {
        let mut record = FutureRecord::to(topic).key(key).payload(payload);
        if let Some(h) = headers {
            record = record.headers(h);
        }
        self.producer
            .send(
                record,
                Timeout::After(Duration::from_millis(self.settings.message_timeout_ms)),
            )
            .await
            .map(|_| ())
            .map_err(|(e, _)| match e {
                KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge) => {
                    BusError::Backend(e.to_string())
                }
                other => unavailable(other),
            })
    }
}

impl Drop for KafkaBus {
    fn drop(&mut self) {
        // Only the last clone flushes; the others share the producer.
        if Arc::strong_count(&self.settings) == 1 {
            let _ = self.producer.flush(Timeout::After(Duration::from_secs(5)));
        }
    }
}

#[async_trait]
impl Bus for KafkaBus {
    async fn publish(&self, topic: Topic, messages: Vec<(String, Vec<u8>)>) -> Result<(), BusError> {
        let name = self.settings.topic(topic);
        // Enqueue all, then await all: the idempotent producer keeps the
        // order per partition even when it retries.
        let sends = messages
            .iter()
            .map(|(key, payload)| self.send(&name, key, payload, None));
        futures::future::join_all(sends).await.into_iter().collect()
    }

    async fn publish_traced(&self, topic: Topic, messages: Vec<casewire_ports::Traced>) -> Result<(), BusError> {
        let name = self.settings.topic(topic);
        let sends = messages.iter().map(|(key, payload, trace)| {
            let headers = trace.as_deref().map(|t| {
                OwnedHeaders::new().insert(Header {
                    key: TRACEPARENT,
                    value: Some(t),
                })
            });
            self.send(&name, key, payload, headers)
        });
        futures::future::join_all(sends).await.into_iter().collect()
    }

    async fn subscribe(
        &self,
        group: Option<&str>,
        topic: Topic,
        start: StartFrom,
    ) -> Result<Box<dyn Subscription>, BusError> {
        let name = self.settings.topic(topic);
        let mut config = self.settings.client_config();
        let reset = match start {
            StartFrom::Earliest => "earliest",
            StartFrom::Latest => "latest",
        };
        config
            .set("auto.offset.reset", reset)
            .set("enable.auto.offset.store", "false")
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000")
            // Also the rebalance timeout: how long the coordinator waits for
            // members to rejoin. librdkafka's 5 minutes stalls a group for
            // that long after a member is killed; handlers here take far
            // less than 30 s between polls.
            .set("max.poll.interval.ms", "30000");
        // How long the broker may hold a fetch that finds nothing new. Every
        // command crosses two hops (commands, then events), and a broker
        // that answers only when this expires (tansu does) added the full
        // wait to each: librdkafka's 500 ms made accept→visible a second.
        // Not lower: at 20 ms, 3 of 5 kill -9 runs on tansu 0.6 ended with
        // a consumer group that never settled after the rebalance (0 of 5
        // at 100 ms, 0 of 3 at 500 ms).
        if !self.settings.properties.contains_key("fetch.wait.max.ms") {
            config.set("fetch.wait.max.ms", FETCH_WAIT_MAX_MS);
        }
        if group.is_some() && !self.settings.properties.contains_key("statistics.interval.ms") {
            config.set("statistics.interval.ms", STATS_EVERY_MS);
        }
        let lag = Arc::new(AtomicI64::new(-1));
        let context = LagContext {
            group: group.map(str::to_owned),
            topic: topic.name(),
            lag: lag.clone(),
        };
        let consumer: LagConsumer = match group {
            Some(g) => {
                config
                    .set("group.id", format!("{}{g}", self.settings.topic_prefix))
                    .set("enable.auto.commit", "true")
                    .set("auto.commit.interval.ms", "1000");
                let consumer: LagConsumer = config.create_with_context(context).map_err(unavailable)?;
                consumer.subscribe(&[&name]).map_err(unavailable)?;
                consumer
            }
            None => {
                // A private reader takes every partition itself, at offsets
                // read now: "latest" then means exactly "after this call",
                // not "after a group assignment that happens some time later".
                config
                    .set(
                        "group.id",
                        format!("{}reader-{}", self.settings.topic_prefix, uuid::Uuid::now_v7()),
                    )
                    .set("enable.auto.commit", "false");
                let consumer: LagConsumer = config.create_with_context(context).map_err(unavailable)?;
                // Metadata and watermark calls block for up to their
                // timeout: off the async threads.
                let topic_name = name.clone();
                tokio::task::spawn_blocking(move || assign_all(consumer, &topic_name, start))
                    .await
                    .map_err(|e| BusError::Backend(e.to_string()))??
            }
        };
        Ok(Box::new(KafkaSubscription {
            consumer,
            lag,
            topic,
            name,
            commits: group.is_some(),
            unassigned: None,
            patience: REJOIN_AFTER,
            watch: watch_interval(),
        }))
    }

    async fn ping(&self) -> Result<(), BusError> {
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(None, Timeout::After(Duration::from_secs(3)))
                .map(|_| ())
                .map_err(unavailable)
        })
        .await
        .map_err(|e| BusError::Backend(e.to_string()))?
    }

    async fn dead_letter(&self, message: &BusMessage, reason: &str) -> Result<(), BusError> {
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "casewire-dlq-reason",
                value: Some(reason),
            })
            .insert(Header {
                key: "casewire-dlq-topic",
                value: Some(&self.settings.topic(message.topic)),
            })
            .insert(Header {
                key: "casewire-dlq-partition",
                value: Some(&message.partition.to_string()),
            })
            .insert(Header {
                key: "casewire-dlq-offset",
                value: Some(&message.offset.to_string()),
            });
        self.send(
            &self.settings.topic(Topic::Dlq),
            &message.key,
            &message.payload,
            Some(headers),
        )
        .await
    }
}

/// How long a group member may hold no partition before it rejoins; it
/// doubles with each rejoin that changes nothing, up to [`REJOIN_MAX`].
const REJOIN_AFTER: Duration = Duration::from_secs(30);
const REJOIN_MAX: Duration = Duration::from_secs(600);

struct KafkaSubscription {
    consumer: LagConsumer,
    /// The group's lag librdkafka last reported; -1 before its first
    /// report, and always for a private reader.
    lag: Arc<AtomicI64>,
    topic: Topic,
    name: String,
    commits: bool,
    /// Since when this group member has held no partition.
    unassigned: Option<std::time::Instant>,
    patience: Duration,
    /// When to look at the assignment: one timer for the subscription's
    /// life, not one per message received.
    watch: tokio::time::Interval,
}

fn watch_interval() -> tokio::time::Interval {
    let mut every = tokio::time::interval(Duration::from_secs(5));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every
}

impl KafkaSubscription {
    /// A group member that holds no partition for long rejoins. After a
    /// member was killed moments after it joined, tansu 0.6 formed the
    /// next generation with an empty assignment for its only member, which
    /// then heartbeat happily forever: the notify-publisher's kill -9 test
    /// saw nothing more delivered (the group's state in tansu: `Formed`,
    /// one member, `assignments: {}`). A member of a group with more
    /// members than partitions also holds none, legitimately; its rejoins
    /// back off to one per ten minutes, and the log says why.
    fn watch_assignment(&mut self) {
        if !self.commits {
            return;
        }
        let empty = self.consumer.assignment().map(|a| a.count() == 0).unwrap_or(false);
        if !empty {
            self.unassigned = None;
            self.patience = REJOIN_AFTER;
            return;
        }
        let since = *self.unassigned.get_or_insert_with(std::time::Instant::now);
        if since.elapsed() < self.patience {
            return;
        }
        tracing::warn!(
            topic = %self.name,
            idle_secs = since.elapsed().as_secs(),
            "This group member holds no partition; rejoining the group (more members than partitions also does this)"
        );
        self.consumer.unsubscribe();
        if let Err(e) = self.consumer.subscribe(&[&self.name]) {
            tracing::warn!(error = %e, topic = %self.name, "Rejoining the group failed; will try again");
        }
        self.unassigned = None;
        self.patience = (self.patience * 2).min(REJOIN_MAX);
    }
}

#[async_trait]
impl Subscription for KafkaSubscription {
    async fn next(&mut self) -> Result<BusMessage, BusError> {
        loop {
            let received = tokio::select! {
                m = self.consumer.recv() => Some(m),
                _ = self.watch.tick() => None,
            };
            let Some(received) = received else {
                self.watch_assignment();
                continue;
            };
            match received {
                Ok(m) => {
                    return Ok(BusMessage {
                        topic: self.topic,
                        partition: m.partition(),
                        offset: m.offset(),
                        key: m
                            .key()
                            .map(|k| String::from_utf8_lossy(k).into_owned())
                            .unwrap_or_default(),
                        payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                        traceparent: m.headers().and_then(|h| {
                            h.iter()
                                .find(|h| h.key == TRACEPARENT)
                                .and_then(|h| h.value)
                                .map(|v| String::from_utf8_lossy(v).into_owned())
                        }),
                    });
                }
                // Transient broker trouble surfaces here; librdkafka
                // reconnects by itself, so wait and poll again.
                Err(e) => {
                    tracing::warn!(error = %e, topic = %self.name, "Kafka consumer error; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }

    async fn commit(&mut self, message: &BusMessage) -> Result<(), BusError> {
        if !self.commits {
            return Ok(());
        }
        // librdkafka stores offset + 1, the next one to read.
        self.consumer
            .store_offset(&self.name, message.partition, message.offset)
            .map_err(|e| BusError::Backend(format!("storing offset {}@{}: {e}", message.offset, message.partition)))
    }

    fn lag(&self) -> Option<u64> {
        u64::try_from(self.lag.load(Ordering::Relaxed)).ok()
    }
}

/// Assigns every partition of `name` to a private reader, at the start or
/// at the high watermarks read now. Blocking: call it off the async threads.
fn assign_all(consumer: LagConsumer, name: &str, start: StartFrom) -> Result<LagConsumer, BusError> {
    let timeout = Timeout::After(Duration::from_secs(10));
    let metadata = consumer.fetch_metadata(Some(name), timeout).map_err(unavailable)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(BusError::Unavailable(format!("topic {name} has no partitions")));
    }
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        let offset = match start {
            StartFrom::Earliest => Offset::Beginning,
            StartFrom::Latest => {
                let (_, high) = consumer.fetch_watermarks(name, p, timeout).map_err(unavailable)?;
                Offset::Offset(high)
            }
        };
        tpl.add_partition_offset(name, p, offset).map_err(unavailable)?;
    }
    consumer.assign(&tpl).map_err(unavailable)?;
    Ok(consumer)
}
