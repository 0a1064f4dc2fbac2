//! The dev issuer's OIDC endpoints, Keycloak-shaped, under
//! `/dev-auth/realms/<tenant>`, one realm per demo tenant. Only mounted when
//! the dev issuer runs (dev mode, loopback, no configured issuers).

use actix_web::web::{Data, Form, Path};
use actix_web::{HttpResponse, get, post};
use casewire_oidc::DevIssuer;
use serde::Deserialize;

use crate::state::AppState;

/// Where the dev issuer's realms live.
pub const REALMS_PATH: &str = casewire_runtime::identity::DEV_REALMS_PATH;
/// The scope its routes are mounted on.
pub const REALM_SCOPE: &str = "/dev-auth/realms/{realm}";

/// The dev issuer, if `realm` is one of its realms.
fn realm<'a>(state: &'a AppState, realm: &str) -> Option<&'a DevIssuer> {
    state
        .dev_issuer
        .as_ref()
        .filter(|_| DevIssuer::tenants().contains(&realm))
}

#[get("/.well-known/openid-configuration")]
pub async fn discovery(state: Data<AppState>, path: Path<String>) -> HttpResponse {
    match realm(&state, &path) {
        Some(i) => HttpResponse::Ok().json(i.discovery(&path)),
        None => HttpResponse::NotFound().finish(),
    }
}

#[get("/protocol/openid-connect/certs")]
pub async fn certs(state: Data<AppState>, path: Path<String>) -> HttpResponse {
    match realm(&state, &path) {
        Some(i) => HttpResponse::Ok().json(i.jwks()),
        None => HttpResponse::NotFound().finish(),
    }
}

/// A password grant.
#[derive(Debug, Deserialize)]
pub struct TokenRequest {
    pub grant_type: String,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// OAuth 2.0 token endpoint for the demo users of the realm (password grant).
#[post("/protocol/openid-connect/token")]
pub async fn token(state: Data<AppState>, path: Path<String>, form: Form<TokenRequest>) -> HttpResponse {
    let oauth_error = |error: &str, description: &str| {
        HttpResponse::BadRequest().json(serde_json::json!({"error": error, "error_description": description}))
    };
    let Some(issuer) = realm(&state, &path) else {
        return HttpResponse::NotFound().finish();
    };
    if form.grant_type != "password" {
        return oauth_error("unsupported_grant_type", "only the password grant is offered");
    }
    let user = form
        .username
        .as_deref()
        .and_then(DevIssuer::user)
        .filter(|u| u.tenant == path.as_str());
    match user {
        Some(u) if form.password.as_deref() == Some(u.password) => {
            let ttl = state.platform.config.auth.dev_token_ttl_secs;
            match issuer.token_for(u.username, ttl) {
                Ok(token) => HttpResponse::Ok().json(serde_json::json!({
                    "access_token": token, "token_type": "Bearer", "expires_in": ttl
                })),
                Err(e) => {
                    tracing::error!(error = %e, "Signing a dev token failed");
                    HttpResponse::InternalServerError().finish()
                }
            }
        }
        _ => HttpResponse::Unauthorized()
            .json(serde_json::json!({"error": "invalid_grant", "error_description": "unknown user or wrong password"})),
    }
}
