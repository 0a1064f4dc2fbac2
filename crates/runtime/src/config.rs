//! Configuration, layered: built-in defaults → TOML file → environment
//! (`CASEWIRE__API__BIND=0.0.0.0:8080`, `CASEWIRE__AUTH__AUDIENCE=...`).
//! Every field has a default, so an empty file is a working dev setup.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use casewire_domain::types::TenantId;
use casewire_oidc::{ClaimMapping, TrustedIssuer};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::{ExposeSecret as _, SecretString};

use crate::adapter_url::{AdapterUrl, Scheme};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Configuration that could not be loaded or does not make sense.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("configuration could not be read: {0}")]
    Load(String),
    #[error("configuration is invalid: {0}")]
    Invalid(String),
}

/// Dev mode enables the built-in OIDC issuer and demo data. There is no
/// default: `casewire dev` (and the embedded runtime) choose dev, and
/// `casewire serve` refuses to start until the operator says which, so a
/// production install never runs the dev issuer by leaving a line out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Dev,
    Production,
}

/// A connection URL whose password never reaches a log: kept in a
/// `secrecy` box (zeroed when dropped, never in `Debug`), shown masked.
#[derive(Clone)]
pub struct SecretUrl(SecretString);

impl SecretUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        SecretUrl(SecretString::from(url.into()))
    }
    /// The URL itself, for the driver.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
    /// The URL with any password replaced by `***`, also for multi-host
    /// URLs (`mongodb://u:p@h1,h2/`) that generic URL parsers refuse.
    pub fn masked(&self) -> String {
        let url = self.expose();
        if url.starts_with("s3://") || url.starts_with("file://") {
            casewire_blob::mask_url(url)
        } else {
            casewire_mongodb::mask_url(url)
        }
    }
    /// Whether it is empty (meaning: derive from the data dir).
    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

impl Default for SecretUrl {
    fn default() -> Self {
        SecretUrl::new(String::new())
    }
}

impl PartialEq for SecretUrl {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for SecretUrl {}

/// Serialized as the URL itself: the layered loader round-trips the
/// defaults through serde. Nothing else serializes a config.
impl Serialize for SecretUrl {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.expose())
    }
}

impl<'de> Deserialize<'de> for SecretUrl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(SecretUrl::new)
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.masked())
    }
}

/// The public HTTP API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Listen address; port 0 picks a free port.
    pub bind: SocketAddr,
    /// The URL clients use (behind a proxy); defaults to `http://<bound address>`.
    pub public_url: Option<String>,
    /// Largest accepted JSON or YAML body.
    pub max_body_bytes: usize,
    /// Upper bound of `Prefer: wait=N`, in seconds.
    pub max_wait_secs: u64,
    /// Default and largest page size of lists.
    pub default_page_size: usize,
    pub max_page_size: usize,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            max_body_bytes: 1024 * 1024,
            max_wait_secs: 30,
            default_page_size: 25,
            max_page_size: 200,
            workers: 0,
        }
    }
}

/// The management port: health and metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ManagementConfig {
    pub bind: SocketAddr,
}

impl Default for ManagementConfig {
    fn default() -> Self {
        ManagementConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 9090)),
        }
    }
}

/// How commits reach the disk (SQLite adapters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    #[default]
    Normal,
    Full,
}

/// Where events and read models live. Empty URLs mean "SQLite files in
/// the data dir".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://<path>` or `mongodb://[user:password@]host[:port][/database][?options]`.
    pub events: SecretUrl,
    /// `sqlite://<path>` or `mongodb://...` (may be the same URL as `events`).
    pub read: SecretUrl,
    /// Notifications, preferences and webhooks: `sqlite://<path>` (default
    /// `notify.db` in the data dir). Processes that share it share a disk.
    pub notify: SecretUrl,
    /// SQLite: how commits reach the disk.
    pub durability: Durability,
    /// MongoDB: database, pool and timeouts.
    pub mongodb: MongoConfig,
}

/// The MongoDB adapters' settings. Write concern, TLS, auth source and
/// replica set go in the URL's options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MongoConfig {
    /// Used when the URL names no database.
    pub database: String,
    /// Connections per process, at most / kept open.
    pub max_pool_size: u32,
    pub min_pool_size: u32,
    /// How long an operation waits for a reachable server before the API
    /// answers 503 (and consumers retry), in ms.
    pub server_selection_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    /// The longest one operation may take before it fails as unavailable
    /// (the driver has no socket timeout), in ms.
    pub operation_timeout_ms: u64,
    /// How long the event stream waits for an allocated position to become
    /// visible before stepping over it, in ms.
    pub gap_grace_ms: u64,
}

impl Default for MongoConfig {
    fn default() -> Self {
        MongoConfig {
            database: "casewire".into(),
            max_pool_size: 20,
            min_pool_size: 0,
            server_selection_timeout_ms: 5_000,
            connect_timeout_ms: 5_000,
            operation_timeout_ms: 30_000,
            gap_grace_ms: 5_000,
        }
    }
}

impl StoreConfig {
    /// Points both the event store and the read store at one URL.
    pub fn set_url(&mut self, url: &str) {
        self.events = SecretUrl::new(url);
        self.read = SecretUrl::new(url);
    }
}

/// Whether a store URL names MongoDB.
pub fn is_mongodb(url: &str) -> bool {
    matches!(
        AdapterUrl::parse("store", &SecretUrl::new(url), &[Scheme::MongoDb]),
        Ok(AdapterUrl::MongoDb(_))
    )
}

/// The message bus.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BusConfig {
    /// `sqlite://<path>` (the embedded bus; empty means `<data_dir>/bus.db`)
    /// or `kafka://host:port[,host:port...]`.
    pub url: SecretUrl,
    /// Prepended to every Kafka topic and consumer group name.
    pub topic_prefix: String,
    /// Partitions of Kafka topics created at start-up.
    pub partitions: i32,
    /// Replication factor of Kafka topics created at start-up.
    pub replication: i32,
    /// How long a publish may retry before the API answers 503, in ms.
    pub message_timeout_ms: u64,
    /// Kafka idempotent producer (`enable.idempotence`).
    pub idempotent_producer: bool,
    /// librdkafka properties passed through (security.protocol, sasl.*, ssl.*).
    pub properties: std::collections::BTreeMap<String, String>,
    /// Handling attempts of one message before it goes to the dead-letter topic.
    pub max_attempts: u32,
    /// The most messages a consumer hands its service at once (what the
    /// subscription holds, never waiting for more): the engine publishes a
    /// batch's events and outcomes and commits it once, the projector
    /// saves its checkpoint once. 1 handles one message at a time.
    pub max_batch: usize,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            url: SecretUrl::default(),
            topic_prefix: String::new(),
            partitions: 6,
            replication: 1,
            message_timeout_ms: 10_000,
            idempotent_producer: true,
            properties: Default::default(),
            max_attempts: 5,
            max_batch: 256,
        }
    }
}

impl fmt::Debug for BusConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let properties = casewire_kafka::masked_properties(&self.properties);
        f.debug_struct("BusConfig")
            .field("url", &self.url)
            .field("topic_prefix", &self.topic_prefix)
            .field("partitions", &self.partitions)
            .field("replication", &self.replication)
            .field("message_timeout_ms", &self.message_timeout_ms)
            .field("idempotent_producer", &self.idempotent_producer)
            .field("properties", &properties)
            .field("max_attempts", &self.max_attempts)
            .field("max_batch", &self.max_batch)
            .finish()
    }
}

/// Authentication.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Run the built-in dev issuer. Unset: on in dev mode when no
    /// `auth.issuers` are configured, off otherwise. `true` runs it beside
    /// configured issuers (tests do); it only ever runs in dev mode and on a
    /// loopback bind.
    pub dev_issuer: Option<bool>,
    /// The audience the dev issuer puts in its tokens, and that its tokens must carry.
    pub audience: String,
    /// External issuers to trust (Keycloak realms).
    pub issuers: Vec<TrustedIssuer>,
    /// Clock skew allowed on exp and nbf, in seconds.
    pub leeway_secs: u64,
    /// Lifetime of dev tokens, in seconds.
    pub dev_token_ttl_secs: i64,
    pub claims: ClaimMapping,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            dev_issuer: None,
            audience: "casewire".into(),
            issuers: Vec::new(),
            leeway_secs: 30,
            dev_token_ttl_secs: 8 * 3600,
            claims: ClaimMapping::default(),
        }
    }
}

/// The command handler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// How often a command is re-decided after a revision conflict.
    pub max_conflict_retries: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_conflict_retries: 8,
        }
    }
}

/// The case portal, served by the case API at `/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PortalSettings {
    /// Whether the API serves it.
    pub enabled: bool,
    /// Its OAuth client at the issuers (a public client with PKCE, e.g. a
    /// Keycloak client with "Client authentication" off and S256 required).
    pub client_id: String,
    /// For an issuer that makes the portal a confidential client.
    pub client_secret: Option<SecretUrl>,
    /// For `casewire serve portal` (the portal in a process of its own):
    /// the case API's base URL it calls, without `/api/v1`.
    pub api_url: Option<String>,
}

impl Default for PortalSettings {
    fn default() -> Self {
        PortalSettings {
            enabled: true,
            client_id: "casewire-portal".into(),
            client_secret: None,
            api_url: None,
        }
    }
}

/// The SLA scheduler (`casewire serve sla-scheduler`, and in `casewire dev`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlaConfig {
    /// Whether `casewire dev` runs it beside the API.
    pub enabled: bool,
    /// How often it looks for clocks that reached a threshold, in ms: how
    /// late at most a warning or a breach is recorded.
    pub tick_ms: u64,
    /// How long a claimed case is held by one scheduler: if it dies
    /// holding it, another takes the case after this.
    pub claim_secs: u64,
    /// Cases claimed per look.
    pub batch: usize,
    /// How often it checks for edited calendars, in seconds.
    pub calendar_check_secs: u64,
}

impl Default for SlaConfig {
    fn default() -> Self {
        SlaConfig {
            enabled: true,
            tick_ms: 1_000,
            claim_secs: 60,
            batch: 256,
            calendar_check_secs: 5,
        }
    }
}

/// The NDJSON event stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamConfig {
    /// Seconds between heartbeat lines when no event flows.
    pub heartbeat_secs: u64,
    /// How often the stream looks for new events written by other processes, in ms.
    pub poll_ms: u64,
    /// Open streams one caller (tenant and subject) may hold in this
    /// process; one more is 429 `CW-TOO-MANY-STREAMS`.
    pub max_per_principal: usize,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            heartbeat_secs: 15,
            poll_ms: 250,
            max_per_principal: 8,
        }
    }
}

/// The WebSocket publisher (`GET /api/v1/ws`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WsConfig {
    /// Listen address; port 0 picks a free port.
    pub bind: SocketAddr,
    /// The URL clients use (behind a proxy), e.g. `wss://cases.example.com`;
    /// defaults to `ws://<bound address>`.
    pub public_url: Option<String>,
    /// Seconds a socket without an `Authorization` header has to send its
    /// `auth` message before it is closed with 4401.
    pub auth_timeout_secs: u64,
    /// Seconds between pings; a socket that answers nothing for two of
    /// them is closed as dead.
    pub ping_secs: u64,
    /// Events queued for one socket before it is told it fell behind
    /// (4509, with the position to resume after) and closed.
    pub buffer: usize,
    /// Sockets one caller (tenant and subject) may hold in this process;
    /// one more is closed with 4429.
    pub max_per_principal: usize,
    /// Sockets this process holds at most; one more is closed with 1013.
    pub max_sockets: usize,
    /// Subscriptions one socket may hold.
    pub max_subscriptions: usize,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 8081)),
            public_url: None,
            auth_timeout_secs: 5,
            ping_secs: 20,
            buffer: 1024,
            max_per_principal: 16,
            max_sockets: 20_000,
            max_subscriptions: 32,
        }
    }
}

/// The notify-publisher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// `smtp://host:port` (plain, for a local relay), `smtp+starttls://` or
    /// `smtps://`, with `user:password@` if the server wants a login.
    /// Unset: e-mail deliveries wait, and the readiness check says so.
    pub smtp_url: Option<SecretUrl>,
    /// The `From` of notification e-mails.
    pub from: String,
    /// The right-hand side of `Message-ID`s, so replies can be threaded.
    pub message_id_domain: String,
    /// The base of links in messages (the portal); default the API's URL.
    pub link_base: Option<String>,
    /// Webhook targets on private, loopback or link-local addresses are
    /// refused unless this is on (SSRF).
    pub allow_private_targets: bool,
    /// How long one webhook call may take, in ms.
    pub webhook_timeout_ms: u64,
    /// Failed e-mails and webhook calls are retried with exponential
    /// backoff and jitter for this many hours, then given up.
    pub retry_hours: u64,
    /// How often due deliveries are looked for, in ms.
    pub send_every_ms: u64,
    /// Kinds that bypass quiet hours, digests and mutes.
    pub critical_kinds: Vec<String>,
    /// Kinds nobody is told of.
    pub disabled_kinds: Vec<String>,
    /// Events older than this (seconds) notify nobody: a new consumer
    /// group starts at the oldest retained event, and people must not hear
    /// of last month.
    pub skip_older_than_secs: u64,
    /// The most bytes of files one reply carries (a comment's files, in
    /// order); the rest are named in the text, to be fetched from the case.
    pub max_attachment_bytes: u64,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            smtp_url: None,
            from: "Casewire <noreply@casewire.local>".into(),
            message_id_domain: "casewire.local".into(),
            link_base: None,
            allow_private_targets: false,
            webhook_timeout_ms: 10_000,
            retry_hours: 24,
            send_every_ms: 1_000,
            critical_kinds: Vec::new(),
            disabled_kinds: Vec::new(),
            skip_older_than_secs: 24 * 3600,
            max_attachment_bytes: 15 * 1024 * 1024,
        }
    }
}

/// How the built-in API clients (the task worker, the mailbox reader)
/// reach the Case API: its URL and their service account. Being clients,
/// they hold only that account's rights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceAccountConfig {
    /// The Case API (`http://case-api:8080`); default the API's public
    /// URL, else its bind address.
    pub api_url: Option<String>,
    /// The OpenID token endpoint of the account
    /// (`.../realms/<realm>/protocol/openid-connect/token`); the
    /// `client_credentials` grant. Unset in dev: the dev issuer signs
    /// tokens for `dev_user`.
    pub token_url: Option<String>,
    /// The account's client id.
    pub client_id: String,
    /// The account's client secret.
    pub client_secret: Option<SecretUrl>,
    /// In dev mode without `token_url`: the demo user they act as.
    pub dev_user: String,
}

impl Default for ServiceAccountConfig {
    fn default() -> Self {
        ServiceAccountConfig {
            api_url: None,
            token_url: None,
            client_id: "casewire-services".into(),
            client_secret: None,
            dev_user: "intake".into(),
        }
    }
}

/// The built-in task worker (`casewire serve task-worker`): a client of
/// the Camunda-compatible API like any user's worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TaskWorkerConfig {
    /// Whether `casewire dev` runs it beside the API (`casewire serve
    /// task-worker` always does).
    pub enabled: bool,
    /// Its `workerId`; default `casewire-<host>-<pid>`.
    pub worker_id: Option<String>,
    /// Tasks worked at once (and asked for per fetch).
    pub max_tasks: u32,
    /// How long a fetched task is locked, in ms.
    pub lock_ms: u64,
    /// How long one fetch waits for a task (long polling), in ms.
    pub poll_ms: u64,
    /// Retries of a task that fails transiently; at 0 an incident is raised.
    pub retries: u32,
    /// The first retry's delay in ms; each next one doubles, up to an hour.
    pub retry_ms: u64,
    /// `casewire.http` may call only URLs that start with one of these
    /// prefixes (`https://erp.example.com/api/`). Empty: none.
    pub http_allow: Vec<String>,
    /// The Standard Webhooks secret (`whsec_...`) its calls are signed with.
    pub http_secret: Option<SecretUrl>,
    /// One `casewire.http` call at most, in ms.
    pub http_timeout_ms: u64,
    /// Let `casewire.http` reach private, loopback and link-local
    /// addresses (SSRF), even when allow-listed.
    pub allow_private_targets: bool,
    /// `casewire.email` may write to the case's requester, and to addresses
    /// of these domains. Empty: the requester only.
    pub email_domains: Vec<String>,
}

impl Default for TaskWorkerConfig {
    fn default() -> Self {
        TaskWorkerConfig {
            enabled: true,
            worker_id: None,
            max_tasks: 8,
            lock_ms: 60_000,
            poll_ms: 20_000,
            retries: 3,
            retry_ms: 10_000,
            http_allow: Vec::new(),
            http_secret: None,
            http_timeout_ms: 10_000,
            allow_private_targets: false,
            email_domains: Vec::new(),
        }
    }
}

/// A mailbox: where mail comes in, and what it becomes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxConfig {
    /// Its name (`?mailbox=` of the inbound webhook), a slug.
    pub name: String,
    /// The tenant its cases belong to.
    pub tenant: String,
    /// Its address (`support@example.com`); plus addresses of it
    /// (`support+CMP-000123@example.com`) thread into the case of the key.
    pub address: String,
    /// The definition of the cases it opens.
    pub definition: String,
    /// Their queue; default the definition's.
    #[serde(default)]
    pub queue: Option<String>,
    /// Case data of the cases it opens (the definition's schema must take it).
    #[serde(default = "empty_object")]
    pub data: serde_json::Value,
    /// The IMAP mailbox `casewire serve email-ingest` reads:
    /// `imaps://user:password@host:993` (TLS from the start) or
    /// `imap://user:password@host:143`, upgraded with STARTTLS before the
    /// login. User and password are URL-encoded. Unset: mail comes by
    /// webhook only.
    ///
    /// `imap://` to a host that is not loopback requires STARTTLS: a server
    /// that does not offer it is an error naming the host, and the password
    /// is never sent in plaintext. To a loopback host (127.0.0.0/8, `::1`,
    /// `localhost`) STARTTLS is used when offered, plaintext otherwise (a
    /// local test server). The query changes that and is not part of the
    /// login: `?tls=starttls` requires STARTTLS on loopback too, `?tls=none`
    /// is plaintext, explicitly (`imap://` only); `?ca=/path/ca.pem` trusts
    /// the CAs of that PEM file besides Mozilla's roots, for a server with
    /// a private CA (`imaps://` and STARTTLS). Another parameter, another
    /// `tls` value, `ca` with `tls=none` or a CA file that can not be read
    /// is an error when the reader starts.
    #[serde(default)]
    pub imap_url: Option<SecretUrl>,
    /// The folder read.
    #[serde(default = "inbox")]
    pub folder: String,
    /// What is done with a mail once its case event is stored: `flag`
    /// (`\Seen` and `$CasewireIngested`) or `move:<folder>`. Nothing is
    /// ever deleted.
    #[serde(default = "flag")]
    pub after: String,
    /// Where mail that can not be taken is moved, whole, with the reason
    /// in the log (created when missing).
    #[serde(default = "quarantine_folder")]
    pub quarantine_folder: String,
    /// A reply from an address that is no participant of the case it
    /// threads into: `new-case` (opens a case linked to it) or `hold`
    /// (kept in the quarantine as `unknown-sender` until an admin
    /// releases it into the case or drops it).
    #[serde(default)]
    pub strangers: Strangers,
}

/// What becomes of a stranger's reply; see [`MailboxConfig::strangers`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strangers {
    #[default]
    NewCase,
    Hold,
}

impl MailboxConfig {
    /// A mailbox with the defaults: the definition's queue, no case data,
    /// no IMAP.
    pub fn new(name: &str, tenant: &str, address: &str, definition: &str) -> Self {
        MailboxConfig {
            name: name.into(),
            tenant: tenant.into(),
            address: address.into(),
            definition: definition.into(),
            queue: None,
            data: empty_object(),
            imap_url: None,
            folder: inbox(),
            after: flag(),
            quarantine_folder: quarantine_folder(),
            strangers: Strangers::NewCase,
        }
    }
}

fn inbox() -> String {
    "INBOX".into()
}

fn flag() -> String {
    "flag".into()
}

fn quarantine_folder() -> String {
    "Casewire-Quarantine".into()
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}

/// E-mail to case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailConfig {
    pub mailboxes: Vec<MailboxConfig>,
    /// Whether `casewire dev` reads the mailboxes that have an `imap_url`.
    pub ingest: bool,
    /// How often a mailbox without IDLE (or with `idle = false`) is
    /// looked at, and the longest an IDLE waits before it looks anyway, in s.
    pub poll_secs: u64,
    /// Use IMAP IDLE where the server has it.
    pub idle: bool,
    /// Addresses that are ours besides the mailboxes: mail from them is
    /// never answered automatically.
    pub own_addresses: Vec<String>,
    /// The largest message, in bytes.
    pub max_bytes: usize,
    /// The most MIME parts of one message.
    pub max_parts: usize,
    /// The deepest nesting of multiparts and attached messages.
    pub max_depth: usize,
    /// The most bytes all parts of one message decode to.
    pub max_decoded_bytes: usize,
    /// Attachment file name extensions that are refused (no dot).
    pub blocked_extensions: Vec<String>,
    /// The most automatic answers (acknowledgements of new cases) one
    /// sender gets in `auto_reply_window_secs`; past it they get none, so
    /// an auto-responder that answers everything can not keep a loop going.
    pub auto_reply_limit: u32,
    /// The window of `auto_reply_limit`, in s.
    pub auto_reply_window_secs: u64,
}

impl Default for EmailConfig {
    fn default() -> Self {
        let limits = casewire_email::Limits::default();
        EmailConfig {
            mailboxes: Vec::new(),
            ingest: true,
            poll_secs: 60,
            idle: true,
            own_addresses: Vec::new(),
            max_bytes: limits.max_bytes,
            max_parts: limits.max_parts,
            max_depth: limits.max_depth,
            max_decoded_bytes: limits.max_decoded_bytes,
            blocked_extensions: limits.blocked_extensions,
            auto_reply_limit: 3,
            auto_reply_window_secs: 3600,
        }
    }
}

impl EmailConfig {
    /// Whether `address` is one of ours: a mailbox's, or in `own_addresses`.
    pub fn is_own(&self, address: &str) -> bool {
        self.mailboxes
            .iter()
            .map(|m| m.address.as_str())
            .chain(self.own_addresses.iter().map(String::as_str))
            .any(|own| own.eq_ignore_ascii_case(address))
    }

    /// Our addresses: the mailboxes' and `own_addresses`.
    pub fn own(&self) -> Vec<String> {
        self.mailboxes
            .iter()
            .map(|m| m.address.clone())
            .chain(self.own_addresses.iter().cloned())
            .collect()
    }

    /// The parser's limits.
    pub fn limits(&self) -> casewire_email::Limits {
        casewire_email::Limits {
            max_bytes: self.max_bytes,
            max_parts: self.max_parts,
            max_depth: self.max_depth,
            max_decoded_bytes: self.max_decoded_bytes,
            blocked_extensions: self.blocked_extensions.iter().map(|e| e.to_ascii_lowercase()).collect(),
        }
    }
}

/// Files: where their bytes go and what uploads may be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// `file:///path` (default `<data_dir>/files`) or
    /// `s3://bucket?endpoint=...&region=...&path_style=true&public_endpoint=...`.
    pub url: SecretUrl,
    /// Largest upload, in bytes.
    pub max_upload_bytes: u64,
    /// Content types accepted (`type/subtype`, or `type/*`).
    pub allowed_types: Vec<String>,
    /// Seconds before an uploaded file that no case attached is removed.
    pub unattached_ttl_secs: u64,
    /// How often the sweeper looks for such files, in seconds (0: never).
    pub sweep_every_secs: u64,
    /// Lifetime of presigned URLs, in seconds.
    pub presign_ttl_secs: u64,
    /// The retention rule of removed attachments: purge the bytes of a file
    /// that no case has held for this many seconds (its record, and the
    /// case histories naming it, stay). Unset: keep the bytes for good.
    pub purge_detached_after_secs: Option<u64>,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            url: SecretUrl::default(),
            max_upload_bytes: 512 * 1024 * 1024,
            allowed_types: [
                "image/*",
                "application/pdf",
                "text/plain",
                "text/csv",
                "message/rfc822",
                "application/zip",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "application/octet-stream",
            ]
            .into_iter()
            .map(str::to_owned)
            .collect(),
            unattached_ttl_secs: 24 * 3600,
            sweep_every_secs: 300,
            presign_ttl_secs: 300,
            purge_detached_after_secs: None,
        }
    }
}

/// Which policy engine decides access.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyEngineKind {
    /// Rego evaluated in-process by regorus (the default).
    #[default]
    Rego,
    /// A running OPA server's REST API (`POST /v1/data/casewire/authz/...`).
    OpaServer,
}

/// Authorization policies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    pub engine: PolicyEngineKind,
    /// Directory of `*.rego` files (tests `*_test.rego` are skipped); the
    /// policy built into the binary when unset.
    pub dir: Option<PathBuf>,
    /// How often the directory is checked for changes, in seconds (0: never).
    pub reload_secs: u64,
    /// The OPA server, for `engine = "opa-server"`, e.g. `http://127.0.0.1:8181`.
    pub opa_url: Option<String>,
    /// Timeout of one call to the OPA server, in ms.
    pub opa_timeout_ms: u64,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            engine: PolicyEngineKind::Rego,
            dir: None,
            reload_secs: 2,
            opa_url: None,
            opa_timeout_ms: 2000,
        }
    }
}

/// Demo data of dev mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DemoConfig {
    /// Create demo cases on the first start.
    pub enabled: bool,
    /// How many.
    pub cases: usize,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            enabled: true,
            cases: 50,
        }
    }
}

/// Log output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `json`, `pretty`, or `auto` (the default): pretty for `casewire dev`
    /// writing to a terminal, JSON for services and pipes.
    pub format: String,
    /// A `tracing` filter such as `info` or `casewire=debug,info`; `RUST_LOG` wins.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: "auto".into(),
            level: "info".into(),
        }
    }
}

/// Traces over OpenTelemetry (OTLP/HTTP with JSON bodies); off unless an
/// endpoint is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// The collector's OTLP/HTTP base URL, e.g. `http://otel-collector:4318`
    /// (`/v1/traces` is added); unset: no traces are exported.
    pub otlp_endpoint: Option<String>,
    /// The `service.name` of this process's spans; default `casewire-<service>`
    /// (`casewire` for the all-in-one).
    pub service_name: Option<String>,
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `dev` or `production`; see [`Mode`].
    pub mode: Option<Mode>,
    /// Where the embedded runtime keeps its files.
    pub data_dir: PathBuf,
    /// The tenant of demo data and of tokens that name none; parsed when
    /// the configuration is read, so a bad name stops the start.
    pub default_tenant: TenantId,
    pub api: ApiConfig,
    pub management: ManagementConfig,
    pub store: StoreConfig,
    pub bus: BusConfig,
    pub auth: AuthConfig,
    pub engine: EngineConfig,
    pub sla: SlaConfig,
    pub portal: PortalSettings,
    pub stream: StreamConfig,
    pub ws: WsConfig,
    pub notify: NotifyConfig,
    pub service_account: ServiceAccountConfig,
    pub task_worker: TaskWorkerConfig,
    pub email: EmailConfig,
    pub policy: PolicyConfig,
    pub storage: StorageConfig,
    pub demo: DemoConfig,
    pub log: LogConfig,
    pub telemetry: TelemetryConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: None,
            data_dir: PathBuf::from("./data"),
            default_tenant: TenantId::default_tenant(),
            api: ApiConfig::default(),
            management: ManagementConfig::default(),
            store: StoreConfig::default(),
            bus: BusConfig::default(),
            auth: AuthConfig::default(),
            engine: EngineConfig::default(),
            sla: SlaConfig::default(),
            portal: PortalSettings::default(),
            stream: StreamConfig::default(),
            ws: WsConfig::default(),
            notify: NotifyConfig::default(),
            service_account: ServiceAccountConfig::default(),
            task_worker: TaskWorkerConfig::default(),
            email: EmailConfig::default(),
            policy: PolicyConfig::default(),
            storage: StorageConfig::default(),
            demo: DemoConfig::default(),
            log: LogConfig::default(),
            telemetry: TelemetryConfig::default(),
        }
    }
}

impl Config {
    /// Loads defaults, then `file` (or `./casewire.toml` if it exists), then
    /// the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                if !path.exists() {
                    return Err(ConfigError::Load(format!("{} does not exist", path.display())));
                }
                figment = figment.merge(Toml::file(path));
            }
            None if Path::new("casewire.toml").exists() => figment = figment.merge(Toml::file("casewire.toml")),
            None => {}
        }
        figment = figment.merge(Env::prefixed("CASEWIRE__").split("__").lowercase(false).map(|k| {
            // Env vars are upper case; our keys are snake case.
            k.as_str().to_lowercase().into()
        }));
        figment.extract().map_err(|e| ConfigError::Load(e.to_string()))
    }

    /// Whether the built-in dev issuer runs (see `auth.dev_issuer`).
    pub fn dev_issuer_enabled(&self) -> bool {
        self.mode == Some(Mode::Dev) && self.auth.dev_issuer.unwrap_or(self.auth.issuers.is_empty())
    }

    /// The mode rules of authentication: the dev issuer only in dev mode and
    /// on loopback, every issuer bound to a tenant, some issuer at all.
    fn validate_auth(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.auth.dev_issuer == Some(true) && self.mode != Some(Mode::Dev) {
            return bad(
                "auth.dev_issuer can only run in dev mode; set auth.dev_issuer = false and configure auth.issuers"
                    .into(),
            );
        }
        if self.dev_issuer_enabled() {
            let public_loopback = self.api.public_url.as_deref().is_none_or(|u| {
                url::Url::parse(u).is_ok_and(|u| match u.host() {
                    Some(url::Host::Domain(d)) => d == "localhost",
                    Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                    Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                    None => false,
                })
            });
            if !self.api.bind.ip().is_loopback() || !public_loopback {
                return bad(format!(
                    "the dev issuer (demo logins whose passwords are their names) only runs on a loopback address, \
                     but api.bind = {} and api.public_url = {}; configure auth.issuers (and auth.dev_issuer = false) \
                     to serve other hosts",
                    self.api.bind,
                    self.api.public_url.as_deref().unwrap_or("(unset)")
                ));
            }
        }
        if let Some(unbound) = self.auth.issuers.iter().find(|i| i.tenant().is_none()) {
            return bad(format!(
                "auth.issuers: '{}' is bound to no tenant; set its tenant, or use a Keycloak URL .../realms/<realm>",
                unbound.issuer
            ));
        }
        // Tokens of an issuer carry its tenant into every case and bucket
        // name, so it must be a valid one before any token arrives.
        for issuer in &self.auth.issuers {
            if let Some(Err(e)) = issuer.tenant().map(TenantId::parse) {
                return bad(format!(
                    "auth.issuers: '{}' serves an invalid tenant: {e}",
                    issuer.issuer
                ));
            }
        }
        if self.mode.is_some() && !self.dev_issuer_enabled() && self.auth.issuers.is_empty() {
            return bad("no token issuer: configure auth.issuers (or run the dev issuer in dev mode)".into());
        }
        Ok(())
    }

    /// Durations that become instants or token lifetimes: a value past what
    /// a clock can add is refused here, instead of panicking on first use.
    fn validate_mailboxes(&self) -> Result<(), ConfigError> {
        let mut names = std::collections::HashSet::new();
        for m in &self.email.mailboxes {
            let bad = |why: &str| Err(ConfigError::Invalid(format!("email.mailboxes '{}': {why}", m.name)));
            if m.name.is_empty()
                || !m
                    .name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                return bad("the name must be a slug (a-z, 0-9, -)");
            }
            if !names.insert(m.name.as_str()) {
                return bad("the name is used twice");
            }
            if TenantId::parse(&m.tenant).is_err() {
                return bad("the tenant is not a tenant name");
            }
            if casewire_domain::types::EmailAddress::parse(&m.address).is_err() || m.address.contains('+') {
                return bad("the address must be a plain e-mail address (no +)");
            }
            if !m.data.is_object() {
                return bad("data must be an object");
            }
            if m.after != "flag" && m.after.strip_prefix("move:").is_none_or(|f| f.trim().is_empty()) {
                return bad("after must be flag or move:<folder>");
            }
            if let Some(url) = &m.imap_url
                && !(url.expose().starts_with("imap://") || url.expose().starts_with("imaps://"))
            {
                return bad("imap_url must be imap://user:password@host:port or imaps://...");
            }
        }
        Ok(())
    }

    fn validate_bounds(&self) -> Result<(), ConfigError> {
        const DAY: u64 = 24 * 3600;
        let worker = &self.task_worker;
        let checks: [(&str, u64, u64, u64); 17] = [
            ("api.max_wait_secs", self.api.max_wait_secs, 0, 3600),
            ("ws.auth_timeout_secs", self.ws.auth_timeout_secs, 1, 300),
            ("ws.ping_secs", self.ws.ping_secs, 1, 3600),
            // A buffer of 0 would close every socket at its first event.
            ("ws.buffer", self.ws.buffer as u64, 1, 1 << 20),
            ("ws.max_per_principal", self.ws.max_per_principal as u64, 1, 1 << 20),
            ("ws.max_subscriptions", self.ws.max_subscriptions as u64, 1, 4096),
            // S3 presigned URLs live at most 7 days.
            ("storage.presign_ttl_secs", self.storage.presign_ttl_secs, 1, 7 * DAY),
            ("auth.leeway_secs", self.auth.leeway_secs, 0, 3600),
            (
                "auth.dev_token_ttl_secs",
                u64::try_from(self.auth.dev_token_ttl_secs).unwrap_or(0),
                1,
                30 * DAY,
            ),
            ("task_worker.max_tasks", u64::from(worker.max_tasks), 1, 1000),
            // Camunda's own limits: a lock of at least 1 ms, a poll of at most 30 min.
            ("task_worker.lock_ms", worker.lock_ms, 1_000, 7 * DAY * 1000),
            ("task_worker.poll_ms", worker.poll_ms, 0, 1_800_000),
            ("task_worker.http_timeout_ms", worker.http_timeout_ms, 100, 600_000),
            ("sla.tick_ms", self.sla.tick_ms, 10, 600_000),
            ("sla.claim_secs", self.sla.claim_secs, 1, DAY),
            ("sla.batch", u64::try_from(self.sla.batch).unwrap_or(0), 1, 10_000),
            ("sla.calendar_check_secs", self.sla.calendar_check_secs, 1, DAY),
        ];
        for (name, value, min, max) in checks {
            if !(min..=max).contains(&value) {
                return Err(ConfigError::Invalid(format!("{name} must be between {min} and {max}")));
            }
        }
        Ok(())
    }

    /// Checks what serde can not: URL schemes, sizes, mode rules.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        self.validate_auth()?;
        self.validate_mailboxes()?;
        if !self.store.notify.is_empty() {
            AdapterUrl::parse("store.notify", &self.store.notify, &[Scheme::Sqlite])?;
        }
        for (name, url) in [("store.events", &self.store.events), ("store.read", &self.store.read)] {
            if !url.is_empty() {
                AdapterUrl::parse(name, url, &[Scheme::Sqlite, Scheme::MongoDb])?;
            }
        }
        match (self.policy.engine, &self.policy.opa_url) {
            (PolicyEngineKind::OpaServer, None) => {
                return bad("policy.engine = \"opa-server\" needs policy.opa_url".into());
            }
            (PolicyEngineKind::OpaServer, Some(u)) if !(u.starts_with("http://") || u.starts_with("https://")) => {
                return bad(format!("policy.opa_url = {u}: must be an http:// or https:// URL"));
            }
            _ => {}
        }
        if let Some(dir) = &self.policy.dir
            && !dir.is_dir()
        {
            return bad(format!("policy.dir = {}: no such directory", dir.display()));
        }
        if !self.storage.url.is_empty() {
            AdapterUrl::parse("storage.url", &self.storage.url, &[Scheme::File, Scheme::S3])?;
        }
        if let Some(bad_type) = self.storage.allowed_types.iter().find(|t| !t.contains('/')) {
            return bad(format!(
                "storage.allowed_types: '{bad_type}' is not type/subtype or type/*"
            ));
        }
        let m = &self.store.mongodb;
        if m.database.is_empty() || m.max_pool_size == 0 || m.min_pool_size > m.max_pool_size {
            return bad(
                "store.mongodb: database must be set, max_pool_size at least 1 and min_pool_size at most max_pool_size"
                    .into(),
            );
        }
        if m.server_selection_timeout_ms == 0 || m.connect_timeout_ms == 0 || m.operation_timeout_ms == 0 {
            return bad(
                "store.mongodb.server_selection_timeout_ms, connect_timeout_ms and operation_timeout_ms must be positive"
                    .into(),
            );
        }
        if !self.bus.url.is_empty() {
            AdapterUrl::parse("bus.url", &self.bus.url, &[Scheme::Sqlite, Scheme::Kafka])?;
        }
        if self.bus.partitions < 1 || self.bus.replication < 1 || self.bus.max_attempts < 1 || self.bus.max_batch < 1 {
            return bad(
                "bus.partitions, bus.replication, bus.max_attempts and bus.max_batch must be at least 1".into(),
            );
        }
        self.validate_bounds()?;
        if self.api.max_body_bytes < 1024 {
            return bad("api.max_body_bytes must be at least 1024".into());
        }
        if self.api.default_page_size == 0 || self.api.default_page_size > self.api.max_page_size {
            return bad("api.default_page_size must be between 1 and api.max_page_size".into());
        }
        if self.stream.heartbeat_secs == 0 || self.stream.poll_ms == 0 || self.stream.max_per_principal == 0 {
            return bad("stream.heartbeat_secs, stream.poll_ms and stream.max_per_principal must be positive".into());
        }
        if !matches!(self.log.format.as_str(), "json" | "pretty" | "auto") {
            return bad(format!("log.format = {}: use auto, json or pretty", self.log.format));
        }
        Ok(())
    }

    /// A store URL, or the SQLite file in the data dir when unset.
    /// Where file bytes go: `storage.url`, or `<data_dir>/files`.
    pub fn storage_url(&self) -> SecretUrl {
        if self.storage.url.is_empty() {
            let dir = std::path::absolute(self.data_dir.join("files")).unwrap_or_else(|_| self.data_dir.join("files"));
            SecretUrl::new(format!("file://{}", dir.display()))
        } else {
            self.storage.url.clone()
        }
    }

    pub fn store_url(&self, url: &SecretUrl, file: &str) -> SecretUrl {
        if url.is_empty() {
            SecretUrl::new(format!("sqlite://{}", self.data_dir.join(file).display()))
        } else {
            url.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns its own error type.
    fn layers_apply_in_order_and_validation_catches_mistakes() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("c.toml", "data_dir = \"/tmp/x\"\n[api]\nmax_wait_secs = 5\n")?;
            jail.set_env("CASEWIRE__API__MAX_WAIT_SECS", "7");
            jail.set_env("CASEWIRE__STREAM__HEARTBEAT_SECS", "3");
            let c = Config::load(Some(Path::new("c.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(c.data_dir, PathBuf::from("/tmp/x"), "the file overrides defaults");
            assert_eq!(c.api.max_wait_secs, 7, "the environment overrides the file");
            assert_eq!(c.stream.heartbeat_secs, 3);
            assert!(c.validate().is_ok());

            jail.create_file("bad.toml", "[api]\nmax_wiat_secs = 5\n")?;
            let err = Config::load(Some(Path::new("bad.toml"))).unwrap_err().to_string();
            assert!(err.contains("max_wiat_secs"), "{err}");

            jail.create_file("tenant.toml", "default_tenant = \"Acme Corp\"\n")?;
            let err = Config::load(Some(Path::new("tenant.toml"))).unwrap_err().to_string();
            assert!(err.contains("tenant"), "a bad default tenant stops the start: {err}");
            Ok(())
        });
        let mut c = Config {
            mode: Some(Mode::Production),
            ..Config::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("no token issuer"));
        c.auth.dev_issuer = Some(true);
        assert!(c.validate().unwrap_err().to_string().contains("dev mode"));
        let mut c = Config::default();
        c.store.events = SecretUrl::new("postgres://u:pw@h/db");
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("unsupported scheme") && !err.contains("pw"), "{err}");
    }

    fn issuer(url: &str) -> TrustedIssuer {
        TrustedIssuer {
            issuer: url.into(),
            audiences: vec!["casewire".into()],
            jwks_uri: None,
            tenant: None,
        }
    }

    #[test]
    fn the_dev_issuer_runs_only_in_dev_mode_on_loopback_without_issuers() {
        let mut c = Config::default();
        assert!(!c.dev_issuer_enabled(), "no mode, no dev issuer");
        c.mode = Some(Mode::Dev);
        assert!(c.dev_issuer_enabled());
        c.auth.issuers = vec![issuer("https://kc.example/realms/acme")];
        assert!(!c.dev_issuer_enabled(), "configured issuers switch it off");
        c.auth.dev_issuer = Some(true);
        assert!(c.dev_issuer_enabled(), "unless asked for explicitly");
        assert!(c.validate().is_ok());
        c.api.bind = "0.0.0.0:8080".parse().unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("loopback"), "{err}");
        c.api.bind = "127.0.0.1:8080".parse().unwrap();
        c.api.public_url = Some("https://cases.example.com".into());
        assert!(c.validate().unwrap_err().to_string().contains("loopback"));
        c.api.public_url = Some("http://localhost:8080".into());
        assert!(c.validate().is_ok());
        c.mode = Some(Mode::Production);
        assert!(!c.dev_issuer_enabled());
        assert!(c.validate().unwrap_err().to_string().contains("dev mode"));
        c.auth.dev_issuer = None;
        assert!(c.validate().is_ok(), "production with a Keycloak realm");
        c.auth.issuers.push(issuer("https://login.example.com/"));
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("bound to no tenant"), "{err}");
        c.auth.issuers[1].tenant = Some("Acme Corp".into());
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("invalid tenant"), "{err}");
        c.auth.issuers[1].tenant = Some("acme".into());
        assert!(c.validate().is_ok());
    }

    #[test]
    fn durations_past_the_clock_are_refused_not_panics() {
        let mut c = Config::default();
        c.api.max_wait_secs = u64::MAX;
        assert!(c.validate().unwrap_err().to_string().contains("api.max_wait_secs"));
        let mut c = Config::default();
        c.storage.presign_ttl_secs = u64::MAX;
        assert!(c.validate().unwrap_err().to_string().contains("presign_ttl_secs"));
        let mut c = Config::default();
        c.auth.dev_token_ttl_secs = i64::MAX;
        assert!(c.validate().unwrap_err().to_string().contains("dev_token_ttl_secs"));
        c.auth.dev_token_ttl_secs = -5;
        assert!(c.validate().is_err());
    }

    #[test]
    fn passwords_are_masked() {
        let url = SecretUrl::new("mongodb://casewire:hunter2@db:27017/cw");
        assert!(!format!("{url:?}").contains("hunter2"));
        assert!(url.masked().contains("***"));
        let mut c = Config::default();
        c.store
            .set_url("mongodb://casewire:hunter2@db1:27017,db2:27017/cw?replicaSet=rs0");
        assert!(c.validate().is_ok());
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2") && shown.contains("db2:27017"), "{shown}");
        let mut bus = BusConfig::default();
        bus.properties.insert("sasl.password".into(), "hunter2".into());
        bus.properties.insert("security.protocol".into(), "SASL_SSL".into());
        let shown = format!("{bus:?}");
        assert!(!shown.contains("hunter2") && shown.contains("SASL_SSL"), "{shown}");
    }
}
