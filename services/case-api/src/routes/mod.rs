//! HTTP handlers, one module per resource.

pub mod cases;
pub mod commands;
pub mod definitions;
pub mod dev_auth;
pub mod docs;
pub mod events;
pub mod external_task;
pub mod files;
pub mod inbound;
pub mod me;
pub mod sla;
pub mod stats;
pub mod tasks;
pub mod webhooks;
