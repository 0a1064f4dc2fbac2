//! The Casewire case domain: definitions, the `Case` aggregate, its commands
//! and events. Pure: no I/O, no async, no clocks and no randomness — the
//! caller passes time, ids and the actor in, so every rule is testable as
//! given/when/then.
//!
//! # Layout
//! - [`types`]: validated newtypes (`CaseKey`, `KeyPrefix`, `QueueName`,
//!   `Tag`, `TenantId`, `EmailAddress`, `UserRef`) — parse, don't validate.
//! - [`definition`]: versioned case definitions (YAML) and their validation.
//! - [`command`]: the commands a case accepts, named with domain verbs.
//! - [`event`]: the facts they produce, in the past tense.
//! - [`case`]: the aggregate state, `handle` (every rule) and `apply` (none).
//! - [`automation`]: a definition's rules, and which fire on an event.
//! - [`task`]: human and external tasks of a case, their commands, events
//!   and rules.
//! - [`email`]: mail that joins a case and bounces; the case's mail thread.
//! - [`calendar`]: business calendars (zone, weekly hours, holidays) and
//!   open time between and after instants.
//! - [`sla`]: SLA clocks computed from a case's events on a calendar.
//! - [`error`]: typed rejections with stable codes.
//! - [`error_code`]: the one table of stable error codes, their HTTP status
//!   and meaning.

pub mod automation;
pub mod calendar;
pub mod case;
pub mod command;
pub mod definition;
pub mod email;
pub mod error;
pub mod error_code;
pub mod event;
pub mod sla;
pub mod task;
pub mod types;

pub use case::{Attachment, Case, CaseStatus, Comment, Decision, EventMeta};
pub use command::CaseCommand;
pub use definition::CaseDefinition;
pub use error::DomainError;
pub use error_code::ErrorCode;
pub use event::CaseEvent;
pub use task::{Task, TaskKind, TaskState};
