//! The dev issuer's OIDC endpoints, Keycloak-shaped, under
//! `/dev-auth/realms/casewire`. Only mounted in dev mode.

use actix_web::web::{Data, Form};
use actix_web::{HttpResponse, get, post};
use serde::Deserialize;

use crate::state::AppState;

/// The realm path the dev issuer serves.
pub const REALM_PATH: &str = "/dev-auth/realms/casewire";

#[get("/.well-known/openid-configuration")]
pub async fn discovery(state: Data<AppState>) -> HttpResponse {
    match &state.dev_issuer {
        Some(i) => HttpResponse::Ok().json(i.discovery()),
        None => HttpResponse::NotFound().finish(),
    }
}

#[get("/protocol/openid-connect/certs")]
pub async fn certs(state: Data<AppState>) -> HttpResponse {
    match &state.dev_issuer {
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

/// OAuth 2.0 token endpoint for the demo users (password grant).
#[post("/protocol/openid-connect/token")]
pub async fn token(state: Data<AppState>, form: Form<TokenRequest>) -> HttpResponse {
    let oauth_error = |error: &str, description: &str| {
        HttpResponse::BadRequest().json(serde_json::json!({"error": error, "error_description": description}))
    };
    let Some(issuer) = &state.dev_issuer else {
        return HttpResponse::NotFound().finish();
    };
    if form.grant_type != "password" {
        return oauth_error("unsupported_grant_type", "only the password grant is offered");
    }
    let user = form.username.as_deref().and_then(casewire_oidc::DevIssuer::user);
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
