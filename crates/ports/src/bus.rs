//! The bus: named topics carrying keyed messages, consumer groups with
//! committed positions. Delivery is at-least-once; consumers are idempotent.

use async_trait::async_trait;

use crate::BusError;

/// The platform's topics (ARCHITECTURE.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Commands, keyed by case id.
    Commands,
    /// Events, keyed by case id.
    Events,
    /// External tasks.
    Tasks,
    /// Command outcomes, keyed by command id.
    Outcomes,
    /// Poison messages.
    Dlq,
    /// New in-app notifications, keyed by user, for the WebSocket push.
    Notifications,
}

impl Topic {
    /// Every topic.
    pub const ALL: [Topic; 6] = [
        Topic::Commands,
        Topic::Events,
        Topic::Tasks,
        Topic::Outcomes,
        Topic::Dlq,
        Topic::Notifications,
    ];

    /// The topic's name without any deployment prefix.
    pub fn name(&self) -> &'static str {
        match self {
            Topic::Commands => "casewire.commands",
            Topic::Events => "casewire.events",
            Topic::Tasks => "casewire.tasks",
            Topic::Outcomes => "casewire.outcomes",
            Topic::Dlq => "casewire.dlq",
            Topic::Notifications => "casewire.notifications",
        }
    }
}

/// A delivered message.
#[derive(Debug, Clone, PartialEq)]
pub struct BusMessage {
    pub topic: Topic,
    pub partition: i32,
    pub offset: i64,
    pub key: String,
    pub payload: Vec<u8>,
    /// The sender's W3C trace context, where the transport carries one
    /// (Kafka: the `traceparent` header).
    pub traceparent: Option<String>,
}

/// A message to publish with the trace context it continues: key,
/// payload, `traceparent`.
pub type Traced = (String, Vec<u8>, Option<String>);

/// Where a subscription without a committed position starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    /// The oldest retained message.
    Earliest,
    /// Only messages published after subscribing.
    Latest,
}

/// A publish/subscribe transport.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Publishes messages to a topic, durably, in order; returns when the bus has accepted all of them.
    async fn publish(&self, topic: Topic, messages: Vec<(String, Vec<u8>)>) -> Result<(), BusError>;
    /// [`publish`](Bus::publish), each message with the W3C trace context
    /// it continues; a transport without message headers drops it.
    async fn publish_traced(&self, topic: Topic, messages: Vec<Traced>) -> Result<(), BusError> {
        self.publish(topic, messages.into_iter().map(|(k, p, _)| (k, p)).collect())
            .await
    }
    /// Subscribes a consumer group (or, with `None`, an uncommitted private reader) to a topic.
    async fn subscribe(
        &self,
        group: Option<&str>,
        topic: Topic,
        start: StartFrom,
    ) -> Result<Box<dyn Subscription>, BusError>;
    /// Checks that the transport answers.
    async fn ping(&self) -> Result<(), BusError>;
    /// Moves a message that can not be handled to the dead-letter topic, with the reason.
    async fn dead_letter(&self, message: &BusMessage, reason: &str) -> Result<(), BusError> {
        tracing::error!(
            reason,
            topic = message.topic.name(),
            offset = message.offset,
            "Dead-lettered a message"
        );
        self.publish(Topic::Dlq, vec![(message.key.clone(), message.payload.clone())])
            .await
    }
    /// Drops messages no consumer needs any more and returns how many; brokers keep their own retention.
    async fn prune(&self) -> Result<u64, BusError> {
        Ok(0)
    }
}

/// One consumer's view of a topic.
#[async_trait]
pub trait Subscription: Send {
    /// Waits for the next message. Cancel-safe: dropping the future loses nothing.
    async fn next(&mut self) -> Result<BusMessage, BusError>;
    /// Marks a message and everything before it in its partition as handled by the group.
    async fn commit(&mut self, message: &BusMessage) -> Result<(), BusError>;
    /// Messages of this group member's partitions past the group's
    /// committed offsets, as the transport last reported them; `None`
    /// where it does not (or for a subscriber without a group).
    fn lag(&self) -> Option<u64> {
        None
    }
}
