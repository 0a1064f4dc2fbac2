//! What the notify-publisher and the API share about notifications, with
//! no I/O but a DNS lookup: who hears of an event ([`rules`]), when
//! ([`schedule`]: quiet hours, digests), what it says ([`render`]) and how
//! webhooks are signed and which targets they may have ([`webhook`]).
//!
//! # Layout
//! - [`rules`]: an event and its case → intents (recipient, kind).
//! - [`schedule`]: preferences and a time → when a delivery may go.
//! - [`render`]: the built-in templates per kind (text and HTML).
//! - [`webhook`]: Standard Webhooks signatures, secrets, the SSRF check.

pub mod mail;
pub mod render;
pub mod rules;
pub mod schedule;
pub mod webhook;

pub use rules::{Intent, Recipient, intents};
pub use schedule::{Slot, slot};
