//! Log setup. JSON (one object per line, with the span fields such as
//! case_id and command_id) for services and pipes; human-readable with
//! `log.format = pretty`, or by default (`auto`) when a person runs
//! `casewire dev` in a terminal.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

use crate::config::LogConfig;

/// Whether logs are for a person: asked for, or `auto` with an interactive
/// command (`casewire dev`) writing to a terminal.
pub fn human(log: &LogConfig, interactive: bool) -> bool {
    match log.format.as_str() {
        "pretty" => true,
        "auto" => interactive && std::io::stderr().is_terminal(),
        _ => false,
    }
}

/// Installs the global subscriber; later calls are no-ops (tests start
/// several platforms in one process). `interactive`: the command is one a
/// person watches (`casewire dev`), not a service.
pub fn init(log: &LogConfig, interactive: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if human(log, interactive) {
        builder.try_init()
    } else {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    };
}
