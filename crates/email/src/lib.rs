//! E-mail to case, the parts without I/O: reading real mail into an
//! [`Inbound`] (bodies, attachments, headers, a content fingerprint),
//! refusing what must be quarantined ([`Limits`]), finding which case a
//! message belongs to ([`thread`]), deciding whether it may be answered
//! automatically ([`guard`]), reading bounces ([`Bounce`]) and trimming
//! quoted history for the comment ([`trim`]).

pub mod guard;
mod parse;
pub mod thread;
pub mod trim;

pub use parse::{Bounce, Inbound, Limits, Mailbox, Part, Quarantine, headline, parse, sha256_hex};
