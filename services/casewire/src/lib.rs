//! The single `casewire` binary's library: the embedded all-in-one runtime,
//! demo data, the benchmark and a small HTTP client they share with the
//! end-to-end tests.
//!
//! # Layout
//! - [`embedded`]: starts api, engine and projector in one process.
//! - [`client`]: a thin typed HTTP client of the public API.
//! - [`demo`]: definitions and ~50 demo cases created through commands.
//! - [`bench`]: `casewire bench` — end-to-end throughput and latency with a
//!   raw store baseline from the same run.
//! - [`bench_ws`]: `casewire bench ws` — WebSocket fan-out.
//! - [`bench_email`]: `casewire bench email` — mail through the inbound
//!   webhook against parsing alone.
//! - [`bench_tasks`]: `casewire bench tasks` — external tasks through the
//!   Camunda API.
//! - [`worker`]: the built-in task worker's tokens and API.
//! - `main.rs`: the CLI (clap).

pub mod bench;
pub mod bench_email;
pub mod bench_replay;
pub mod bench_sla;
pub mod bench_tasks;
pub mod bench_ws;
pub mod client;
pub mod demo;
pub mod embedded;
pub mod portal;
pub mod worker;

/// The demo business calendars (imported before the definitions that name them).
pub const DEMO_CALENDARS: &[(&str, &str)] = &[(
    "calendars/office.yaml",
    include_str!("../../../definitions/calendars/office.yaml"),
)];

/// The demo definitions, built in so `cargo run` works from any directory.
pub const DEMO_DEFINITIONS: &[(&str, &str)] = &[
    (
        "customer-complaint.yaml",
        include_str!("../../../definitions/customer-complaint.yaml"),
    ),
    (
        "insurance-claim.yaml",
        include_str!("../../../definitions/insurance-claim.yaml"),
    ),
    (
        "it-service-request.yaml",
        include_str!("../../../definitions/it-service-request.yaml"),
    ),
];
