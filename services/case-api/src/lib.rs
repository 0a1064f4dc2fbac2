//! case-api: the REST API (commands, queries, the event stream, OpenAPI),
//! the dev issuer's OIDC endpoints in dev mode, and the management port.
//!
//! # Layout
//! - [`error`]: `ApiError`, the one error type, with stable codes.
//! - [`auth`]: the `Auth` extractor (bearer JWT → `Principal`).
//! - [`authz`]: asking the policy — 404 when not visible, 403 when denied.
//! - [`state`]: shared state and the outcome listener behind `Prefer: wait`.
//! - [`submit`]: accepting a command — early check, key, log, publish, wait.
//! - [`routes`]: handlers per resource, and the OpenAPI document.
//! - [`sweeper`]: removes uploaded files that no case attached in time.
//! - [`body`]: the size-limited body extractor with JSON errors.

pub mod auth;
pub mod authz;
pub mod body;
pub mod error;
pub mod inbound;
pub mod quarantine;
pub mod routes;
pub mod state;
pub mod submit;
pub mod sweeper;

use std::net::{SocketAddr, TcpListener};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::{Next, from_fn};
use actix_web::web::{self, Data};
use actix_web::{App, HttpResponse, HttpServer};
use anyhow::Context;
use casewire_oidc::DevIssuer;
use casewire_runtime::Platform;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::{ApiError, json_error};
use crate::routes::{cases, commands, definitions, dev_auth, docs, events, external_task, files, me, tasks, webhooks};
use crate::state::{AppState, StreamSlots, Waiters, listen_for_outcomes};
use casewire_application::AccessCache;

/// A running API.
#[derive(Debug)]
pub struct ApiServer {
    pub api_addr: SocketAddr,
    pub management_addr: SocketAddr,
    /// Where clients reach the API.
    pub public_url: String,
    /// The dev issuer's `iss`, in dev mode.
    pub dev_issuer: Option<DevIssuer>,
    pub state: AppState,
    task: JoinHandle<anyhow::Result<()>>,
}

impl ApiServer {
    /// Waits until both servers have stopped.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("API server task failed")?
    }
}

async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().to_string();
    let res = next.call(req).await?;
    let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".into());
    let status = res.status().as_u16();
    let elapsed = started.elapsed();
    metrics::histogram!("casewire_http_request_duration_seconds", "method" => method.clone(), "route" => route.clone(), "status" => status.to_string())
        .record(elapsed.as_secs_f64());
    let ms = elapsed.as_secs_f64() * 1000.0;
    match status {
        500.. => tracing::warn!(%method, %route, status, ms, "Request failed"),
        400..=499 => tracing::info!(%method, %route, status, ms, "Request refused"),
        _ => tracing::debug!(%method, %route, status, ms, "Request served"),
    }
    Ok(res)
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found("resource"))
}

/// What no route took: 405 with `Allow` when the document has the path
/// with other methods, else 404.
async fn unrouted(req: actix_web::HttpRequest) -> HttpResponse {
    use actix_web::ResponseError as _;
    match docs::allowed_methods(req.path()) {
        Some(allowed) => {
            let mut res = ApiError::new(
                casewire_domain::ErrorCode::MethodNotAllowed,
                format!(
                    "{} is not a method of {}; use {}",
                    req.method(),
                    req.path(),
                    allowed.join(", ")
                ),
            )
            .error_response();
            if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&allowed.join(", ")) {
                res.headers_mut().insert(actix_web::http::header::ALLOW, value);
            }
            res
        }
        None => ApiError::not_found("resource").error_response(),
    }
}

/// The file routes, which the storage API serves alone.
fn files_scope(scope: actix_web::Scope) -> actix_web::Scope {
    scope
        // Literal paths before `/files/{id}`.
        .service(files::presigned_upload)
        // Other methods on the literal path are 405, not a file "uploads".
        .service(web::resource("/files/uploads").default_service(web::to(unrouted)))
        .service(files::complete_upload)
        .service(files::upload)
        .service(files::file_info)
        .service(files::download_url)
        .service(files::download)
        .service(files::head_file)
}

/// Binds the API and management ports and starts serving. Port 0 picks
/// free ports; the bound addresses are in the result.
pub async fn start(platform: Platform, shutdown: CancellationToken) -> anyhow::Result<ApiServer> {
    start_serving(platform, shutdown, false, None).await
}

/// Routes another crate mounts on the API's server (the portal at `/`),
/// after the API's own, so they never shadow one.
pub type ExtraRoutes = std::sync::Arc<dyn Fn(&mut web::ServiceConfig) + Send + Sync>;

/// [`start`] with `extra` routes on the same server.
pub async fn start_with(
    platform: Platform,
    shutdown: CancellationToken,
    extra: ExtraRoutes,
) -> anyhow::Result<ApiServer> {
    start_serving(platform, shutdown, false, Some(extra)).await
}

/// The storage API alone (`casewire serve storage-api`): `/api/v1/files`
/// and its sweeper, for deployments that scale file traffic apart.
pub async fn start_storage(platform: Platform, shutdown: CancellationToken) -> anyhow::Result<ApiServer> {
    start_serving(platform, shutdown, true, None).await
}

async fn start_serving(
    platform: Platform,
    shutdown: CancellationToken,
    files_only: bool,
    extra: Option<ExtraRoutes>,
) -> anyhow::Result<ApiServer> {
    let cfg = platform.config.clone();
    casewire_runtime::management::recorder();
    let api_listener =
        TcpListener::bind(cfg.api.bind).with_context(|| format!("binding the API to {}", cfg.api.bind))?;
    let mgmt_listener = TcpListener::bind(cfg.management.bind)
        .with_context(|| format!("binding the management port to {}", cfg.management.bind))?;
    let api_addr = api_listener.local_addr()?;
    let management_addr = mgmt_listener.local_addr()?;
    let public_url = cfg
        .api
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{api_addr}"))
        .trim_end_matches('/')
        .to_owned();

    let (dev_issuer, verifier) = casewire_runtime::identity::verifier(&cfg, &public_url)?;
    let policy = platform.policy(&shutdown)?;
    let blobs = platform.blobs().await?;
    let state = AppState {
        platform: platform.clone(),
        verifier,
        policy,
        blobs,
        dev_issuer: dev_issuer.clone(),
        dev_grants: std::sync::Arc::default(),
        waiters: Waiters::default(),
        streams: StreamSlots::default(),
        openapi: std::sync::Arc::new(docs::for_config(&cfg)),
        access: AccessCache::default(),
        cases: std::sync::Arc::default(),
        people: state::PeopleSeen::default(),
    };
    tokio::spawn(sweeper::run(state.clone(), shutdown.clone()));
    tokio::spawn({
        let (state, shutdown) = (state.clone(), shutdown.clone());
        async move {
            if let Err(e) = listen_for_outcomes(state, shutdown).await {
                tracing::error!(error = %e, "Outcome listener stopped");
            }
        }
    });

    let data = Data::new(state.clone());
    let max_body = cfg.api.max_body_bytes;
    // Mail over email.max_bytes is held in the quarantine (an admin may
    // release it); only past twice that is the body refused unread (413),
    // so the API never buffers an unbounded body.
    let max_mail = cfg.email.max_bytes.saturating_mul(2);
    let with_dev_auth = dev_issuer.is_some();
    let workers = if cfg.api.workers == 0 {
        std::thread::available_parallelism().map(usize::from).unwrap_or(2)
    } else {
        cfg.api.workers
    };
    let api = HttpServer::new(move || {
        let mut app = App::new()
            .app_data(data.clone())
            .app_data(
                web::JsonConfig::default()
                    .limit(max_body)
                    .error_handler(|e, _| json_error(e).into()),
            )
            .app_data(web::QueryConfig::default().error_handler(|e, _| ApiError::bad_parameter(e.to_string()).into()))
            // A path id that is not a UUID names nothing: the JSON 404.
            .app_data(web::PathConfig::default().error_handler(|_, _| ApiError::not_found("resource").into()))
            .app_data(web::FormConfig::default().error_handler(|e, _| ApiError::bad_parameter(e.to_string()).into()))
            .app_data(web::PayloadConfig::new(max_body))
            .wrap(from_fn(observe))
            .service(if files_only {
                files_scope(web::scope("/api/v1"))
            } else {
                files_scope(
                    web::scope("/api/v1")
                        .service(
                            // Mail is bigger than other bodies: its own limit.
                            web::resource("/inbound/email")
                                .app_data(web::PayloadConfig::new(max_mail))
                                .route(web::post().to(routes::inbound::inbound_email)),
                        )
                        .service(routes::inbound::list_held)
                        .service(routes::inbound::get_held)
                        .service(routes::inbound::raw_held)
                        .service(routes::inbound::release_held)
                        .service(routes::inbound::drop_held)
                        .service(cases::open_case)
                        .service(cases::list_cases)
                        .service(cases::history)
                        .service(cases::revise_details)
                        .service(cases::assign)
                        .service(cases::unassign)
                        .service(cases::route)
                        .service(cases::move_to_stage)
                        .service(cases::prioritize)
                        .service(cases::comment)
                        .service(cases::tag)
                        .service(cases::untag)
                        .service(cases::link)
                        .service(cases::resolve)
                        .service(cases::close)
                        .service(cases::reopen)
                        .service(tasks::list_tasks)
                        .service(tasks::create_task)
                        .service(tasks::claim_task)
                        .service(tasks::unclaim_task)
                        .service(tasks::assign_task)
                        .service(tasks::complete_task)
                        .service(tasks::cancel_task)
                        .service(tasks::set_task_retries)
                        .service(cases::get_case)
                        // Literal paths before `/commands/{id}`.
                        .service(docs::command_descriptions)
                        .service(docs::event_descriptions)
                        .service(docs::openapi_json)
                        .service(commands::post_command)
                        .service(commands::get_command)
                        .service(commands::cancel_command)
                        .service(definitions::list_definitions)
                        .service(definitions::get_definition)
                        .service(definitions::post_definition)
                        .service(routes::sla::list_calendars)
                        .service(routes::sla::get_calendar)
                        .service(routes::sla::post_calendar)
                        .service(routes::sla::post_holidays)
                        .service(routes::sla::case_sla)
                        .service(routes::stats::case_stats)
                        .service(cases::permissions)
                        .service(events::stream)
                        .service(cases::attach)
                        .service(cases::detach)
                        .service(me::watch)
                        .service(me::unwatch)
                        .service(me::get_preferences)
                        .service(me::put_preferences)
                        .service(me::inbox)
                        .service(me::mark_all_read)
                        .service(me::mark_read)
                        .service(webhooks::create)
                        .service(webhooks::list)
                        .service(webhooks::remove)
                        .service(webhooks::rotate)
                        .service(webhooks::deliveries),
                )
            });
        if !files_only {
            app = app.service(
                web::scope("/engine-rest")
                    .service(external_task::fetch_and_lock)
                    .service(external_task::list)
                    .service(external_task::get_one)
                    .service(external_task::act),
            );
        }
        if with_dev_auth {
            app = app.service(
                web::scope(dev_auth::REALM_SCOPE)
                    .service(dev_auth::discovery)
                    .service(dev_auth::certs)
                    .service(dev_auth::login_page)
                    .service(dev_auth::login)
                    .service(dev_auth::logout)
                    .service(dev_auth::end_session)
                    .service(dev_auth::token),
            );
        }
        if let Some(extra) = &extra {
            app = app.configure(|cfg| extra(cfg));
        }
        if files_only {
            app.default_service(web::to(not_found))
        } else {
            app.default_service(web::to(unrouted))
        }
    })
    .workers(workers)
    // A client that closes its side is gone: end its response at once.
    // Otherwise an event stream the client dropped keeps its slot (one of
    // stream.max_per_principal) until the next heartbeat tries to write.
    .h1_allow_half_closed(false)
    .disable_signals()
    .shutdown_timeout(5)
    .listen(api_listener)?
    .run();

    let management = casewire_runtime::management::server(platform.clone(), mgmt_listener)?;
    let (api_handle, mgmt_handle) = (api.handle(), management.handle());
    tokio::spawn(async move {
        shutdown.cancelled().await;
        tokio::join!(api_handle.stop(true), mgmt_handle.stop(true));
    });
    let task = tokio::spawn(async move {
        let (a, m) = tokio::join!(api, management);
        a.context("API server")?;
        m.context("management server")?;
        Ok(())
    });
    tracing::info!(api = %api_addr, management = %management_addr, "Case API listening");
    Ok(ApiServer {
        api_addr,
        management_addr,
        public_url,
        dev_issuer,
        state,
        task,
    })
}

/// Runs the API until `shutdown`.
pub async fn run(platform: Platform, shutdown: CancellationToken) -> anyhow::Result<()> {
    start(platform, shutdown).await?.wait().await
}
