//! The case API with the portal on it (unless `portal.enabled = false`):
//! the portal's routes mounted on the API's server, and told where the
//! API and the realms are once the server is bound.

use std::sync::Arc;

use casewire_case_api::ApiServer;
use casewire_oidc::DevIssuer;
use casewire_portal::{Bases, Portal, PortalConfig};
use casewire_runtime::Platform;
use tokio_util::sync::CancellationToken;

/// Starts the case API, with the portal when it is enabled.
pub async fn start_api(platform: Platform, shutdown: CancellationToken) -> anyhow::Result<ApiServer> {
    let settings = platform.config.portal.clone();
    if !settings.enabled {
        return casewire_case_api::start(platform, shutdown).await;
    }
    let portal = Portal::new(PortalConfig {
        client_id: settings.client_id.clone(),
        client_secret: settings.client_secret.as_ref().map(|s| s.expose().to_owned()),
    })?;
    let routes = Arc::new(casewire_portal::configure(portal.clone()));
    let api = casewire_case_api::start_with(platform.clone(), shutdown, routes).await?;
    portal.bind(bases(&platform, &api));
    Ok(api)
}

/// The realms people log in to: the dev issuer's, or the configured
/// issuers (named by their tenant, or the realm of a Keycloak URL).
fn bases(platform: &Platform, api: &ApiServer) -> Bases {
    let realms = match &api.dev_issuer {
        Some(dev) => DevIssuer::tenants()
            .into_iter()
            .map(|t| (t.to_owned(), dev.issuer_for(t)))
            .collect(),
        None => platform
            .config
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
    };
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
