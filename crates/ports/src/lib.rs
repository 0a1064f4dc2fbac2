//! Ports: the traits every runtime implements, the records that cross them,
//! the wire envelopes, and one contract-test suite per port.
//!
//! Both runtimes (embedded and distributed) run the same services against
//! these traits; an adapter is picked by URL scheme in `casewire-runtime`.
//!
//! # Layout
//! - [`error`]: `StoreError` and `BusError`, typed and mapped at the edges.
//! - [`event_store`]: the `EventStore` port — the source of truth and outbox.
//! - [`read_store`]: `ReadStore`, the query side's one backend, made of five
//!   ports: [`projection`] (`CaseProjection`: case list/detail, timeline),
//!   [`command_log`] (`CommandLog`), [`file_catalog`] (`FileCatalog`: file
//!   records, pins, links, sweeps), [`definitions`] (`DefinitionStore`) and
//!   [`checkpoints`] (`Checkpoints`).
//! - [`bus`]: the `Bus` port — topics, consumer groups, committed positions.
//! - [`policy`]: the `PolicyEngine` port — decisions and visibility filters.
//! - [`blob`]: the `BlobStore` port — file bytes, streamed and checksummed.
//! - [`rejection`]: why a command was rejected, typed by its `ErrorCode`,
//!   in outcomes and the command log.
//! - [`envelope`]: CloudEvents 1.0 (structured JSON) for events, commands
//!   and outcomes on the bus and the NDJSON stream.
//! - [`contract`]: the suites that every adapter of a port must pass, and
//!   the macros that instantiate the read-side ones as one named test per
//!   behaviour (`read_store_contract!`).

pub mod action;
pub mod blob;
pub mod bus;
pub mod checkpoints;
pub mod command_log;
pub mod contract;
pub mod definitions;
pub mod envelope;
pub mod error;
pub mod event_store;
pub mod file_catalog;
pub mod notification;
pub mod policy;
pub mod projection;
pub mod quarantine;
pub mod read_store;
pub mod rejection;
pub mod sla;

pub use action::Action;
pub use blob::{BlobError, BlobInfo, BlobRead, BlobStore, ByteRange, ByteStream};
pub use bus::{Bus, BusMessage, StartFrom, Subscription, Topic, Traced};
pub use checkpoints::Checkpoints;
pub use command_log::{CancelResult, ClaimResult, CommandLog, CommandRecord, CommandStatus};
pub use definitions::DefinitionStore;
pub use envelope::{CommandEnvelope, CommandOutcome, OutcomeStatus};
pub use error::{BusError, StoreError};
pub use event_store::{Append, EventRecord, EventStore, NewEvent};
pub use file_catalog::{FileCatalog, FileRecord, FileState};
pub use notification::{
    Channel, Delivery, DeliveryState, InboxItem, NotificationStore, Person, Preferences, QuietHours, WebhookAttempt,
    WebhookSubscription,
};
pub use policy::{
    Clause, Decision, DefinitionAccessMap, PolicyEngine, PolicyError, Resource, Subject, VisibilityFilter, policy_input,
};
pub use projection::{
    CaseProjection, CaseQuery, CaseSummary, Cursor, Page, SortKey, TASK_SCAN_CASES, TaskItem, TaskQuery,
};
pub use quarantine::{Held, MailQuarantine};
pub use read_store::ReadStore;
pub use rejection::Rejection;
pub use sla::{SlaClaim, SlaEntry, SlaSchedule, SlaState};
