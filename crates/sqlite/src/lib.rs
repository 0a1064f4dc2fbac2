//! SQLite adapters of the `EventStore`, `ReadStore` and `Bus` ports: the
//! embedded runtime's persistence. Each store is its own database file in
//! WAL mode, so their writers do not queue behind each other, and several
//! processes on one machine may share them (`casewire serve ...`).
//!
//! # Layout
//! - [`db`]: connection handling — one writer, a few readers, all blocking
//!   work moved off the async runtime.
//! - [`event_store`]: `SqliteEventStore` (events, key sequences).
//! - [`read_store`]: `SqliteReadStore` (cases + FTS5, tags, timeline,
//!   definitions, checkpoints, command log).
//! - [`notification_store`]: `SqliteNotificationStore` (deliveries, inbox,
//!   preferences, people, watches, webhooks).
//! - [`bus`]: `SqliteBus`, the in-process bus driven by a durable table, so
//!   a restart loses no message and consumer groups resume where they
//!   committed.

pub mod bus;
pub mod db;
pub mod event_store;
pub mod notification_store;
pub mod quarantine;
pub mod read_store;
mod sla;

pub use bus::SqliteBus;
pub use db::Durability;
pub use event_store::SqliteEventStore;
pub use notification_store::SqliteNotificationStore;
pub use read_store::SqliteReadStore;
