//! The application layer: what more than one service does with the domain
//! and the ports, so that no service depends on another. The case API runs
//! the same decision as the engine for its early check, against the same
//! kind of case cache.
//!
//! # Layout
//! - [`decide`]: loading a case (through the cache) and its definition, and
//!   running `Case::handle`; the cache of case states, bounded by weight.
//! - [`access`]: what every way in needs to show events as the REST API
//!   does: the per-tenant access groups the policy reads, internal comments.
//! - [`sla`]: a case's SLA clocks at a time, for the API and the scheduler.

pub mod access;
pub mod decide;
pub mod sla;
pub mod stats;

pub use access::{AccessCache, is_internal_comment};
pub use decide::{CaseCache, DEFAULT_CACHE_BYTES, Decided, decide, decide_on};
