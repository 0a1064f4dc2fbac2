//! The case API with the portal on it (unless `portal.enabled = false`):
//! the portal's routes mounted on the API's server, and told where the
//! API and the realms are once the server is bound.

use std::sync::Arc;

use anyhow::Context as _;
use casewire_case_api::ApiServer;
use casewire_oidc::DevIssuer;
use casewire_portal::{Bases, Portal, PortalConfig};
use casewire_runtime::{Config, Platform};
use tokio_util::sync::CancellationToken;

/// Starts the case API, with the portal when it is enabled.
pub async fn start_api(platform: Platform, shutdown: CancellationToken) -> anyhow::Result<ApiServer> {
    let settings = platform.config.portal.clone();
    if !settings.enabled {
        return casewire_case_api::start(platform, shutdown).await;
    }
    let portal = Portal::new(portal_config(&platform.config))?;
    let routes = Arc::new(casewire_portal::configure(portal.clone()));
    let api = casewire_case_api::start_with(platform.clone(), shutdown, routes).await?;
    portal.bind(bases(&platform, &api));
    Ok(api)
}

/// The realms people log in to: the dev issuer's, or the configured
/// issuers (named by their tenant, or the realm of a Keycloak URL).
fn realms(config: &Config, dev: Option<&DevIssuer>) -> Vec<(String, String)> {
    match dev {
        Some(dev) => DevIssuer::tenants()
            .into_iter()
            .map(|t| (t.to_owned(), dev.issuer_for(t)))
            .collect(),
        None => config
            .auth
            .issuers
            .iter()
            .map(|i| {
                let name = i.tenant.clone().unwrap_or_else(|| {
                    i.issuer
                        .trim_end_matches('/')
                        .rsplit('/')
                        .next()
                        .unwrap_or_default()
                        .to_owned()
                });
                (name, i.issuer.clone())
            })
            .collect(),
    }
}

/// The portal's settings as the portal crate takes them.
fn portal_config(config: &Config) -> PortalConfig {
    PortalConfig {
        client_id: config.portal.client_id.clone(),
        client_secret: config.portal.client_secret.as_ref().map(|s| s.expose().to_owned()),
    }
}

/// `casewire serve portal`: the portal alone, on `api.bind`, a client of
/// the case API at `portal.api_url`, with a management port of its own
/// (ready while the API answers). `dev`: the dev issuer of the API's data
/// dir, in dev mode.
pub async fn serve_alone(config: Config, dev: Option<&DevIssuer>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let api_url = config
        .portal
        .api_url
        .clone()
        .context("casewire serve portal needs portal.api_url: the case API's base URL (without /api/v1)")?;
    let api_url = api_url.trim_end_matches('/').to_owned();
    let listener = std::net::TcpListener::bind(config.api.bind)
        .with_context(|| format!("binding the portal to {}", config.api.bind))?;
    let addr = listener.local_addr()?;
    let public_base = config
        .api
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"))
        .trim_end_matches('/')
        .to_owned();
    let portal = Portal::new(portal_config(&config))?;
    portal.bind(Bases {
        api_base: api_url.clone(),
        public_base: public_base.clone(),
        realms: realms(&config, dev),
    });
    let routes = casewire_portal::configure(portal);
    let server = actix_web::HttpServer::new(move || actix_web::App::new().configure(routes.clone()))
        // A browser that leaves a page closes its live stream: end the
        // stream (and its request to the API) at once, not at the next
        // heartbeat.
        .h1_allow_half_closed(false)
        .disable_signals()
        .shutdown_timeout(5)
        .listen(listener)?
        .run();
    let handle = server.handle();
    let (management, _served) =
        casewire_runtime::management::start_client(config.management.bind, &api_url, shutdown.clone())?;
    println!("Portal      {public_base}/");
    println!("Management  http://{management}/health/ready");
    tokio::spawn(async move {
        shutdown.cancelled().await;
        handle.stop(true).await;
    });
    server.await.context("the portal's server")
}

/// Where the portal finds the API, itself and the realms, once the API is
/// bound.
fn bases(platform: &Platform, api: &ApiServer) -> Bases {
    let realms = realms(&platform.config, api.dev_issuer.as_ref());
    // The portal calls the API on the address it is bound to, on loopback
    // when it listens on every interface.
    let mut addr = api.api_addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    Bases {
        api_base: format!("http://{addr}"),
        public_base: api.public_url.clone(),
        realms,
    }
}
