//! The application layer: what more than one service does with the domain
//! and the ports, so that no service depends on another. The case API runs
//! the same decision as the engine for its early check, against the same
//! kind of case cache.
//!
//! # Layout
//! - [`decide`]: loading a case (through the cache) and its definition, and
//!   running `Case::handle`; the cache of case states, bounded by weight.

pub mod decide;

pub use decide::{CaseCache, DEFAULT_CACHE_BYTES, Decided, decide, decide_on};
