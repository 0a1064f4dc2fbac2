//! The management port: liveness, readiness (which pings every
//! dependency) and Prometheus metrics. Served apart from the API so it can
//! stay private to the cluster.

use std::net::{SocketAddr, TcpListener};
use std::sync::OnceLock;

use actix_web::web::Data;
use actix_web::{App, HttpResponse, HttpServer, get};
use anyhow::Context as _;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::Platform;

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process-wide metrics recorder (installed once; several platforms in
/// one test process share it).
pub fn recorder() -> Option<&'static PrometheusHandle> {
    RECORDER
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::warn!(error = %e, "Metrics recorder not installed");
                None
            }
        })
        .as_ref()
}

/// The management server on `listener`, not yet running.
pub fn server(platform: Platform, listener: TcpListener) -> anyhow::Result<actix_web::dev::Server> {
    let data = Data::new(platform);
    serve_on(listener, move |cfg| {
        cfg.app_data(data.clone()).service(ready);
    })
}

/// A management server on `listener` with live, metrics and what
/// `configure` adds (its readiness), not yet running.
fn serve_on(
    listener: TcpListener,
    configure: impl Fn(&mut actix_web::web::ServiceConfig) + Clone + Send + 'static,
) -> anyhow::Result<actix_web::dev::Server> {
    recorder();
    Ok(
        HttpServer::new(move || App::new().configure(configure.clone()).service(live).service(metrics))
            .workers(1)
            .disable_signals()
            .shutdown_timeout(2)
            .listen(listener)?
            .run(),
    )
}

/// Runs `server` until `shutdown`: its address and its task.
fn run_until(
    addr: SocketAddr,
    server: actix_web::dev::Server,
    shutdown: CancellationToken,
) -> (SocketAddr, JoinHandle<anyhow::Result<()>>) {
    let handle = server.handle();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        handle.stop(true).await;
    });
    (
        addr,
        tokio::spawn(async move { server.await.context("management server") }),
    )
}

/// Serves only the management port (for processes without an API, such as
/// the engine and the projector): health and metrics until `shutdown`.
pub fn start(
    platform: Platform,
    shutdown: CancellationToken,
) -> anyhow::Result<(SocketAddr, JoinHandle<anyhow::Result<()>>)> {
    let bind = platform.config.management.bind;
    let listener = TcpListener::bind(bind).with_context(|| format!("binding the management port to {bind}"))?;
    let addr = listener.local_addr()?;
    Ok(run_until(addr, server(platform, listener)?, shutdown))
}

/// What a client of the API (the task worker, the mail reader) checks for
/// readiness: that the API answers at all.
#[derive(Debug, Clone)]
struct ApiProbe {
    url: String,
    http: reqwest::Client,
}

/// The management port of a process that is a client of the API and has
/// no stores of its own: live, ready (the API answers over HTTP: a 401
/// counts, a refused connection or a 5xx does not) and metrics, until
/// `shutdown`.
pub fn start_client(
    bind: SocketAddr,
    api_base: &str,
    shutdown: CancellationToken,
) -> anyhow::Result<(SocketAddr, JoinHandle<anyhow::Result<()>>)> {
    let listener = TcpListener::bind(bind).with_context(|| format!("binding the management port to {bind}"))?;
    let addr = listener.local_addr()?;
    let probe = Data::new(ApiProbe {
        url: format!("{}/api/v1/cases?limit=1", api_base.trim_end_matches('/')),
        http: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(3))
            .build()?,
    });
    let server = serve_on(listener, move |cfg| {
        cfg.app_data(probe.clone()).service(client_ready);
    })?;
    Ok(run_until(addr, server, shutdown))
}

#[get("/health/ready")]
async fn client_ready(probe: Data<ApiProbe>) -> HttpResponse {
    let api = match probe.http.get(&probe.url).send().await {
        Ok(r) if !r.status().is_server_error() => serde_json::json!({"status": "up"}),
        Ok(r) => serde_json::json!({"status": "down", "error": format!("the API answered {}", r.status())}),
        Err(e) => serde_json::json!({"status": "down", "error": e.to_string()}),
    };
    let up = api["status"] == "up";
    let body = serde_json::json!({"status": if up { "up" } else { "down" }, "checks": {"api": api}});
    if up {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

#[get("/health/live")]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "up"}))
}

#[get("/health/ready")]
pub async fn ready(platform: Data<Platform>) -> HttpResponse {
    let events = platform.events.ping().await.err().map(|e| e.to_string());
    let reads = platform.reads.ping().await.err().map(|e| e.to_string());
    let bus = platform.bus.ping().await.err().map(|e| e.to_string());
    let check = |e: &Option<String>| match e {
        None => serde_json::json!({"status": "up"}),
        Some(m) => serde_json::json!({"status": "down", "error": m}),
    };
    let body = serde_json::json!({
        "status": if events.is_none() && reads.is_none() && bus.is_none() { "up" } else { "down" },
        "checks": {"eventStore": check(&events), "readStore": check(&reads), "bus": check(&bus)}
    });
    if body["status"] == "up" {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

#[get("/metrics")]
pub async fn metrics() -> HttpResponse {
    match recorder() {
        Some(h) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(h.render()),
        None => HttpResponse::ServiceUnavailable().body("metrics recorder unavailable"),
    }
}
