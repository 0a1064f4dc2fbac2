//! Log setup, and traces. Logs: JSON (one object per line, with the span
//! fields such as case_id and command_id) for services and pipes;
//! human-readable with `log.format = pretty`, or by default (`auto`) when
//! a person runs `casewire dev` in a terminal. Traces: with
//! `telemetry.otlp_endpoint` set, every `tracing` span is also an
//! OpenTelemetry span, exported over OTLP/HTTP; the W3C `traceparent` of
//! a command and of its events travels in the Kafka message headers (see
//! [`traceparent`] and [`follow`]), so one trace runs from the HTTP
//! request through the engine to the projector and the publishers.

use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::sync::OnceLock;

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::{LogConfig, TelemetryConfig};

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();
/// What is traced: Casewire's spans from info, others' from warn.
const TRACED: &str = "warn,casewire=info";

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
    init_with(log, interactive, &TelemetryConfig::default(), "casewire");
}

/// [`init`], and traces to `telemetry.otlp_endpoint` when it is set, as
/// `service` (unless `telemetry.service_name` says otherwise). A bad
/// endpoint is logged and the process runs without traces.
pub fn init_with(log: &LogConfig, interactive: bool, telemetry: &TelemetryConfig, service: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&log.level));
    let traces = telemetry.otlp_endpoint.as_deref().and_then(|endpoint| {
        let name = telemetry.service_name.as_deref().unwrap_or(service);
        match provider(endpoint, name) {
            Ok(provider) => {
                let tracer = provider.tracer("casewire");
                let _ = PROVIDER.set(provider);
                // Its own filter: spans are traced at info whatever the
                // log level, and other crates' only from warn.
                Some(
                    tracing_opentelemetry::layer()
                        .with_tracer(tracer)
                        .with_filter(EnvFilter::new(TRACED)),
                )
            }
            Err(e) => {
                eprintln!("telemetry.otlp_endpoint {endpoint}: {e}; running without traces");
                None
            }
        }
    });
    let registry = tracing_subscriber::registry().with(traces);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let _ = if human(log, interactive) {
        registry.with(fmt.with_filter(filter)).try_init()
    } else {
        registry
            .with(
                fmt.json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_filter(filter),
            )
            .try_init()
    };
}

fn provider(endpoint: &str, service: &str) -> anyhow::Result<SdkTracerProvider> {
    use opentelemetry_otlp::{Protocol, WithExportConfig as _};
    let base = endpoint.trim_end_matches('/');
    let url = if base.ends_with("/v1/traces") {
        base.to_owned()
    } else {
        format!("{base}/v1/traces")
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpJson)
        .with_endpoint(url)
        .build()?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service.to_owned())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// Sends the spans not yet exported; call once before the process ends.
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get()
        && let Err(e) = provider.shutdown()
    {
        eprintln!("exporting the last traces failed: {e}");
    }
}

/// The W3C `traceparent` of the current span, to send along with a
/// message; `None` when traces are off.
pub fn traceparent() -> Option<String> {
    PROVIDER.get()?;
    let context = tracing::Span::current().context();
    let mut carrier: HashMap<String, String> = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove("traceparent")
}

/// Makes `span` a child of the span a message's `traceparent` names (the
/// sender's), so the trace goes on across the bus.
pub fn follow(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(parent) = traceparent else {
        return;
    };
    if PROVIDER.get().is_none() {
        return;
    }
    let carrier: HashMap<String, String> = HashMap::from([("traceparent".to_owned(), parent.to_owned())]);
    let context = TraceContextPropagator::new().extract(&carrier);
    let _ = span.set_parent(context);
}

/// A span `event` per event of a batch a consumer handles, each a child
/// of the span that sent it (the engine's, from the message's trace
/// context); they last as long as the caller holds them.
pub fn event_spans(
    consumer: &'static str,
    batch: &[casewire_ports::BusMessage],
    records: &[casewire_ports::EventRecord],
) -> Vec<tracing::Span> {
    batch
        .iter()
        .zip(records)
        .map(|(msg, r)| {
            let span = tracing::info_span!(
                "event",
                consumer,
                case_id = %r.case_id,
                command_id = %r.command_id,
                event = %r.event_type,
                position = r.position
            );
            follow(&span, msg.traceparent.as_deref());
            span
        })
        .collect()
}
