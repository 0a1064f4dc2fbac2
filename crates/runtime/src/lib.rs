//! The runtime: typed, layered configuration and the wiring of ports to
//! adapters. Both the embedded (`casewire dev`) and the distributed
//! (`casewire serve <service>`) runtimes start from here.
//!
//! # Layout
//! - [`config`]: `Config` — defaults, then a TOML file, then
//!   `CASEWIRE__SECTION__FIELD` environment variables; validated at start.
//! - [`adapter_url`]: `AdapterUrl` — a URL parsed once into the adapter its
//!   scheme names.
//! - [`identity`]: the token verifier every way in builds from the config.
//! - [`platform`]: `Platform` — the opened adapters.
//! - [`consumer`]: the retry / dead-letter / commit loop every service runs.
//! - [`telemetry`]: JSON or human logs through `tracing`.
//! - [`management`]: the management port every service serves —
//!   `/health/live`, `/health/ready` (pings the stores and the bus) and
//!   Prometheus `/metrics`.

pub mod adapter_url;
pub mod admin;
pub mod config;
pub mod consumer;
pub mod identity;
pub mod management;
pub mod platform;
pub mod telemetry;

pub use config::{Config, Mode};
pub use platform::Platform;
