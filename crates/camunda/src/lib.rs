//! Camunda 7's external-task protocol, both sides of it: the typed
//! variables and dates the API speaks (`variables`), and a client of the
//! API (`client`) that the built-in task worker uses, so a built-in worker
//! and a user's worker are peers on the same wire.

pub mod client;
pub mod variables;

pub use client::{ClientError, ExternalTaskClient, LockedTask, TokenSource};
