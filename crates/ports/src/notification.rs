//! The notification store: what the notify-publisher decided to send and
//! whether it went out, the in-app inbox, people's preferences, the
//! directory of people the platform has seen, case watchers and webhook
//! subscriptions. The API reads and writes the people-facing parts; the
//! notify-publisher plans into it and sends from it.

use std::collections::BTreeMap;

use async_trait::async_trait;
use casewire_domain::types::TenantId;
use chrono::{DateTime, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::StoreError;

/// How a notification reaches someone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// The inbox in the portal (and a push over the WebSocket).
    InApp,
    Email,
    Webhook,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::InApp => "inapp",
            Channel::Email => "email",
            Channel::Webhook => "webhook",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        match s {
            "inapp" => Some(Channel::InApp),
            "email" => Some(Channel::Email),
            "webhook" => Some(Channel::Webhook),
            _ => None,
        }
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Waiting for `not_before`, or for a retry.
    Pending,
    Sent,
    /// Given up (retries exhausted, the endpoint disabled, no address).
    Dead,
}

/// One notification to one recipient on one channel. Its key is unique:
/// `(event, recipient, channel)`, recorded before anything is sent, so a
/// redelivered event or a replay never plans it twice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub key: String,
    pub tenant: TenantId,
    pub channel: Channel,
    /// A user name, an e-mail address (a requester without an account) or
    /// a webhook subscription id.
    pub recipient: String,
    /// The e-mail address or webhook URL it goes to.
    pub address: Option<String>,
    pub case_id: Uuid,
    pub event_id: Uuid,
    /// The rule's kind: `assigned`, `queue`, `comment`, `resolved`, `watch`, ...
    pub kind: String,
    /// What to send: the rendered message, or the CloudEvent of a webhook.
    pub payload: Value,
    /// Not before this time (quiet hours, a digest's interval, a retry).
    pub not_before: DateTime<Utc>,
    /// Collected into one e-mail with the recipient's other digest items.
    pub digest: bool,
    pub attempts: u32,
    pub state: DeliveryState,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// An in-app notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InboxItem {
    pub id: Uuid,
    #[schema(value_type = String)]
    pub tenant: TenantId,
    pub user: String,
    pub case_id: Uuid,
    pub event_id: Uuid,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

/// Daily quiet hours in the user's time zone; `start` after `end` spans
/// midnight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QuietHours {
    #[schema(value_type = String, example = "22:00")]
    pub start: NaiveTime,
    #[schema(value_type = String, example = "07:00")]
    pub end: NaiveTime,
}

/// What a person wants to hear of, and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Preferences {
    /// Channels per kind (`assigned`, `queue`, `comment`, `resolved`,
    /// `watch`); a kind not listed uses `defaultChannels`.
    #[serde(default)]
    pub channels: BTreeMap<String, Vec<Channel>>,
    #[serde(default = "Preferences::default_channels")]
    pub default_channels: Vec<Channel>,
    /// An IANA time zone such as `Europe/Berlin`.
    #[serde(default = "Preferences::utc")]
    pub time_zone: String,
    /// In-app and e-mail notifications in this window wait for its end.
    #[serde(default)]
    pub quiet_hours: Option<QuietHours>,
    /// E-mails are collected and sent as one every this many minutes.
    #[serde(default)]
    pub digest_minutes: Option<u32>,
    /// Cases this person hears nothing of (critical rules aside).
    #[serde(default)]
    pub muted_cases: Vec<Uuid>,
}

impl Preferences {
    fn default_channels() -> Vec<Channel> {
        vec![Channel::InApp, Channel::Email]
    }

    fn utc() -> String {
        "UTC".into()
    }

    /// The channels for `kind`.
    pub fn channels_for(&self, kind: &str) -> &[Channel] {
        self.channels.get(kind).map_or(&self.default_channels, Vec::as_slice)
    }
}

impl Default for Preferences {
    fn default() -> Self {
        Preferences {
            channels: BTreeMap::new(),
            default_channels: Self::default_channels(),
            time_zone: Self::utc(),
            quiet_hours: None,
            digest_minutes: None,
            muted_cases: Vec::new(),
        }
    }
}

/// Someone the platform has seen sign in: the rules need their address and
/// groups (queue members), and the policy needs them to judge what they
/// may hear of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Person {
    pub tenant: TenantId,
    pub username: String,
    pub sub: String,
    pub email: Option<String>,
    pub roles: Vec<String>,
    pub groups: Vec<String>,
    pub seen_at: DateTime<Utc>,
}

/// A tenant's webhook endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSubscription {
    pub id: Uuid,
    #[schema(value_type = String)]
    pub tenant: TenantId,
    pub url: String,
    /// Event types (`casewire.case.assigned.v1`); empty is every type.
    pub events: Vec<String>,
    /// `whsec_...`; during a rotation the new one first and the old one
    /// second, and both sign.
    #[serde(skip_serializing, default)]
    pub secrets: Vec<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// One attempt to deliver to a webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAttempt {
    pub subscription: Uuid,
    /// The `webhook-id` (the delivery's key).
    pub message_id: String,
    pub attempt: u32,
    pub at: DateTime<Utc>,
    pub status: Option<u16>,
    pub error: Option<String>,
}

#[async_trait]
pub trait NotificationStore: Send + Sync + 'static {
    /// Records planned deliveries and inbox items whose keys are new, in
    /// one transaction; returns how many deliveries were new.
    async fn record(&self, deliveries: Vec<Delivery>, inbox: Vec<InboxItem>) -> Result<usize, StoreError>;
    /// Pending deliveries due at `now`, oldest first.
    async fn due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Delivery>, StoreError>;
    /// Pending digest deliveries of one recipient on one channel (due or not).
    async fn pending_for(
        &self,
        tenant: &TenantId,
        recipient: &str,
        channel: Channel,
    ) -> Result<Vec<Delivery>, StoreError>;
    async fn mark_sent(&self, keys: &[String], at: DateTime<Utc>) -> Result<(), StoreError>;
    /// Another try at `not_before`, after `error`.
    async fn retry(&self, key: &str, not_before: DateTime<Utc>, error: &str) -> Result<(), StoreError>;
    async fn mark_dead(&self, key: &str, error: &str) -> Result<(), StoreError>;
    async fn delivery(&self, key: &str) -> Result<Option<Delivery>, StoreError>;
    /// How many deliveries of `kind` to `recipient` were planned at or after
    /// `since` (any state): what rate limits count.
    async fn planned_since(
        &self,
        tenant: &TenantId,
        recipient: &str,
        kind: &str,
        since: DateTime<Utc>,
    ) -> Result<usize, StoreError>;

    /// A user's inbox, newest first, after `before` (the cursor: an item
    /// id), and the number unread.
    async fn inbox(
        &self,
        tenant: &TenantId,
        user: &str,
        before: Option<Uuid>,
        limit: usize,
    ) -> Result<(Vec<InboxItem>, u64), StoreError>;
    /// Marks one item (or, with `None`, all) read; returns how many changed.
    async fn mark_read(
        &self,
        tenant: &TenantId,
        user: &str,
        id: Option<Uuid>,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    async fn preferences(&self, tenant: &TenantId, user: &str) -> Result<Option<Preferences>, StoreError>;
    async fn put_preferences(&self, tenant: &TenantId, user: &str, prefs: &Preferences) -> Result<(), StoreError>;

    async fn upsert_person(&self, person: &Person) -> Result<(), StoreError>;
    async fn person(&self, tenant: &TenantId, username: &str) -> Result<Option<Person>, StoreError>;
    async fn people(&self, tenant: &TenantId) -> Result<Vec<Person>, StoreError>;

    /// Starts (`true`) or stops watching a case.
    async fn watch(&self, tenant: &TenantId, case_id: Uuid, user: &str, on: bool) -> Result<(), StoreError>;
    async fn watchers(&self, tenant: &TenantId, case_id: Uuid) -> Result<Vec<String>, StoreError>;

    async fn put_webhook(&self, sub: &WebhookSubscription) -> Result<(), StoreError>;
    async fn webhooks(&self, tenant: &TenantId) -> Result<Vec<WebhookSubscription>, StoreError>;
    async fn delete_webhook(&self, tenant: &TenantId, id: Uuid) -> Result<bool, StoreError>;
    async fn log_attempt(&self, attempt: &WebhookAttempt) -> Result<(), StoreError>;
    /// A subscription's attempts, newest first.
    async fn attempts(&self, subscription: Uuid, limit: usize) -> Result<Vec<WebhookAttempt>, StoreError>;
}
