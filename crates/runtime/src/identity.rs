//! Who may call: the token verifier every way in (the REST API, the
//! WebSocket publisher, later the portal and the task API) builds the same
//! way, so that no service trusts an issuer another does not.

use std::time::Duration;

use casewire_oidc::{DevIssuer, JwksVerifier, TrustedIssuer};

use crate::{Config, Mode};

/// Where the dev issuer's realms live under the API's public URL.
pub const DEV_REALMS_PATH: &str = "/dev-auth/realms";

/// The token verifier: the configured issuers, and the dev issuer's realms
/// when it runs (one trusted issuer per demo tenant, seeded with its key).
pub fn verifier(cfg: &Config, public_url: &str) -> anyhow::Result<(Option<DevIssuer>, JwksVerifier)> {
    let dev_issuer = if cfg.dev_issuer_enabled() {
        // Config validation already refused it outside dev mode and off
        // loopback; this is the last line, not the first.
        anyhow::ensure!(
            cfg.mode == Some(Mode::Dev),
            "the dev issuer refuses to start outside dev mode"
        );
        let realms = format!("{public_url}{}", DEV_REALMS_PATH);
        Some(DevIssuer::load_or_create(&cfg.data_dir, &realms, &cfg.auth.audience)?)
    } else {
        None
    };
    let mut issuers = cfg.auth.issuers.clone();
    if let Some(dev) = &dev_issuer {
        for tenant in DevIssuer::tenants() {
            let issuer = dev.issuer_for(tenant);
            issuers.push(TrustedIssuer {
                jwks_uri: Some(format!("{issuer}/protocol/openid-connect/certs")),
                issuer,
                audiences: vec![cfg.auth.audience.clone()],
                tenant: Some(tenant.to_owned()),
            });
        }
    }
    let verifier = JwksVerifier::new(
        issuers,
        cfg.auth.claims.clone(),
        Duration::from_secs(cfg.auth.leeway_secs),
    );
    if let Some(dev) = &dev_issuer {
        for tenant in DevIssuer::tenants() {
            verifier.seed(&dev.issuer_for(tenant), dev.jwks())?;
        }
    }
    Ok((dev_issuer, verifier))
}
