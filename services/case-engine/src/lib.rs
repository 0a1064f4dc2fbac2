//! case-engine: consumes `casewire.commands`, decides each command against
//! the case's events and definition, appends the new events with an expected
//! revision, publishes them to `casewire.events`, records and announces the
//! outcome, and only then commits the command's offset.
//!
//! The event store doubles as the outbox: if the process dies after the
//! append but before the publish, the command is delivered again, the
//! engine finds the events that command already caused and publishes those
//! instead of deciding twice.
//!
//! # Layout
//! - [`automation`]: the definition's rules, turned into commands as
//!   events come; a consumer of its own (`casewire serve automation`),
//!   beside the engine in `casewire dev`.
//! - [`sla`]: the SLA scheduler, which records warnings and breaches of
//!   the cases' clocks (`casewire serve sla-scheduler`, and in `casewire dev`).
//! - [`engine`]: the consumer loop, the outbox recovery and outcomes. The
//!   decision itself (`decide`, the case cache) is in `casewire-application`,
//!   which the API's early check shares.

pub mod automation;
pub mod engine;
pub mod sla;

pub use engine::{Engine, run};
