//! The dev issuer's OIDC endpoints, Keycloak-shaped, under
//! `/dev-auth/realms/<tenant>`, one realm per demo tenant. Only mounted when
//! the dev issuer runs (dev mode, loopback, no configured issuers).

use actix_web::web::{Data, Form, Path, Query};
use actix_web::{HttpResponse, get, post};
use casewire_oidc::DevIssuer;
use casewire_oidc::grants::AuthRequest;
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

/// A token request: the password grant (scripts, tests), the
/// authorization code grant with PKCE (the portal's login) and the
/// refresh token grant (its silent renewal).
#[derive(Debug, Deserialize)]
pub struct TokenRequest {
    pub grant_type: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub client_id: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
}

fn oauth_error(status: actix_web::http::StatusCode, error: &str, description: &str) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({"error": error, "error_description": description}))
}

fn bad_request(error: &str, description: &str) -> HttpResponse {
    oauth_error(actix_web::http::StatusCode::BAD_REQUEST, error, description)
}

/// A demo user of `realm` whose password is `password`.
fn demo_user(realm: &str, username: Option<&str>, password: Option<&str>) -> Option<&'static casewire_oidc::DemoUser> {
    username
        .and_then(DevIssuer::user)
        .filter(|u| u.tenant == realm && password == Some(u.password))
}

/// OAuth 2.0 token endpoint for the demo users of the realm.
#[post("/protocol/openid-connect/token")]
pub async fn token(state: Data<AppState>, path: Path<String>, form: Form<TokenRequest>) -> HttpResponse {
    let Some(issuer) = realm(&state, &path) else {
        return HttpResponse::NotFound().finish();
    };
    let ttl = state.platform.config.auth.dev_token_ttl_secs;
    let granted = match form.grant_type.as_str() {
        "password" => match demo_user(&path, form.username.as_deref(), form.password.as_deref()) {
            Some(u) => (u.username.to_owned(), None, None),
            None => {
                return oauth_error(
                    actix_web::http::StatusCode::UNAUTHORIZED,
                    "invalid_grant",
                    "unknown user or wrong password",
                );
            }
        },
        "authorization_code" => {
            let (Some(code), Some(client), Some(redirect), Some(verifier)) = (
                form.code.as_deref(),
                form.client_id.as_deref(),
                form.redirect_uri.as_deref(),
                form.code_verifier.as_deref(),
            ) else {
                return bad_request(
                    "invalid_request",
                    "code, client_id, redirect_uri and code_verifier are required",
                );
            };
            match state.dev_grants.redeem_code(code, client, redirect, verifier) {
                Ok(g) => (g.username, Some(client.to_owned()), g.nonce),
                Err(e) => return bad_request(e.error, &e.description),
            }
        }
        "refresh_token" => {
            let (Some(refresh), Some(client)) = (form.refresh_token.as_deref(), form.client_id.as_deref()) else {
                return bad_request("invalid_request", "refresh_token and client_id are required");
            };
            match state.dev_grants.redeem_refresh(refresh, client) {
                Ok(g) => (g.username, Some(client.to_owned()), None),
                Err(e) => return bad_request(e.error, &e.description),
            }
        }
        _ => {
            return bad_request(
                "unsupported_grant_type",
                "password, authorization_code or refresh_token",
            );
        }
    };
    // A user of another realm never gets this realm's tokens.
    if DevIssuer::user(&granted.0).is_none_or(|u| u.tenant != path.as_str()) {
        return bad_request("invalid_grant", "the user is not of this realm");
    }
    tokens(
        &state,
        issuer,
        &granted.0,
        granted.1.as_deref(),
        granted.2.as_deref(),
        ttl,
    )
}

/// The token response: an access token, and for a client's login an ID
/// token and a refresh token.
fn tokens(
    state: &AppState,
    issuer: &DevIssuer,
    username: &str,
    client: Option<&str>,
    nonce: Option<&str>,
    ttl: i64,
) -> HttpResponse {
    let signed = issuer.token_for(username, ttl).and_then(|access| {
        let id = client
            .map(|c| issuer.id_token_for(username, c, nonce, ttl))
            .transpose()?;
        Ok((access, id))
    });
    match signed {
        Ok((access, id)) => {
            let mut body = serde_json::json!({"access_token": access, "token_type": "Bearer", "expires_in": ttl});
            if let (Some(client), Some(id)) = (client, id) {
                body["id_token"] = id.into();
                body["refresh_token"] = state.dev_grants.issue_refresh(username, client).into();
                body["refresh_expires_in"] = casewire_oidc::grants::REFRESH_TTL.as_secs().into();
                body["scope"] = "openid profile email".into();
            }
            HttpResponse::Ok()
                .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
                .json(body)
        }
        Err(e) => {
            tracing::error!(error = %e, "Signing a dev token failed");
            HttpResponse::InternalServerError().finish()
        }
    }
}

/// HTML-escapes text for the login page.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The login page: the demo users' form, carrying the request along.
fn page(realm: &str, request: &AuthRequest, error: Option<&str>) -> HttpResponse {
    let hidden: String = serde_json::to_value(request)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
        .map(|(k, v)| format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">", esc(&k), esc(&v)))
        .collect();
    let users: Vec<String> = casewire_oidc::dev::DEMO_USERS
        .iter()
        .filter(|u| u.tenant == realm)
        .map(|u| {
            format!(
                "<li><code>{}</code> / <code>{}</code>: {}</li>",
                esc(u.username),
                esc(u.password),
                esc(u.description)
            )
        })
        .collect();
    let error = error
        .map(|e| format!("<p role=\"alert\" class=\"error\">{}</p>", esc(e)))
        .unwrap_or_default();
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>Sign in to {realm} (dev issuer)</title><style>body{{font:16px system-ui;max-width:28rem;margin:3rem auto;padding:0 1rem}}\
         label{{display:block;margin:.75rem 0 .25rem}}input[type=text],input[type=password]{{width:100%;padding:.5rem;font:inherit}}\
         button{{margin-top:1rem;padding:.5rem 1.25rem;font:inherit}}.error{{color:#a00}}@media(prefers-color-scheme:dark){{body{{background:#111;color:#eee}}.error{{color:#f88}}}}</style></head>\
         <body><main><h1>Sign in to {realm}</h1><p>Casewire's dev issuer: demo users only, on this machine.</p>{error}\
         <form method=\"post\">{hidden}<label for=\"username\">User name</label><input id=\"username\" name=\"username\" type=\"text\" autocomplete=\"username\" required autofocus>\
         <label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <button type=\"submit\">Sign in</button></form><h2>Demo users</h2><ul>{}</ul></main></body></html>",
        users.join(""),
        realm = esc(realm),
    );
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ))
        .body(html)
}

/// The authorization endpoint: the login page, for an authorization code
/// request with PKCE to a loopback redirect URI (else 400, never a
/// redirect to where the request says).
#[get("/protocol/openid-connect/auth")]
pub async fn login_page(state: Data<AppState>, path: Path<String>, q: Query<AuthRequest>) -> HttpResponse {
    if realm(&state, &path).is_none() {
        return HttpResponse::NotFound().finish();
    }
    match q.check() {
        Ok(()) => page(&path, &q, None),
        Err(e) => bad_request(e.error, &e.description),
    }
}

/// A login form sent back.
#[derive(Debug, Deserialize)]
pub struct Login {
    pub username: String,
    pub password: String,
    #[serde(flatten)]
    pub request: AuthRequest,
}

/// A login: the right password redirects to the client with a code (and
/// its `state`); a wrong one shows the page again.
#[post("/protocol/openid-connect/auth")]
pub async fn login(state: Data<AppState>, path: Path<String>, form: Form<Login>) -> HttpResponse {
    if realm(&state, &path).is_none() {
        return HttpResponse::NotFound().finish();
    }
    if let Err(e) = form.request.check() {
        return bad_request(e.error, &e.description);
    }
    let Some(user) = demo_user(&path, Some(&form.username), Some(&form.password)) else {
        return page(&path, &form.request, Some("Unknown user or wrong password."));
    };
    let code = state.dev_grants.issue_code(user.username, &form.request);
    let Ok(mut to) = url::Url::parse(&form.request.redirect_uri) else {
        return bad_request("invalid_request", "redirect_uri is not a URL");
    };
    to.query_pairs_mut().append_pair("code", &code);
    if let Some(s) = &form.request.state {
        to.query_pairs_mut().append_pair("state", s);
    }
    HttpResponse::Found()
        .insert_header((actix_web::http::header::LOCATION, to.to_string()))
        .finish()
}

/// Logout (RP-initiated): the browser goes back to a loopback
/// `post_logout_redirect_uri`.
#[derive(Debug, Deserialize)]
pub struct Logout {
    pub post_logout_redirect_uri: Option<String>,
    pub id_token_hint: Option<String>,
    pub client_id: Option<String>,
}

/// Back-channel logout, as Keycloak takes it: the refresh token stops
/// working.
#[derive(Debug, Deserialize)]
pub struct EndSession {
    pub refresh_token: String,
    pub client_id: Option<String>,
}

#[post("/protocol/openid-connect/logout")]
pub async fn end_session(state: Data<AppState>, path: Path<String>, form: Form<EndSession>) -> HttpResponse {
    if realm(&state, &path).is_none() {
        return HttpResponse::NotFound().finish();
    }
    state.dev_grants.revoke(&form.refresh_token);
    HttpResponse::NoContent().finish()
}

#[get("/protocol/openid-connect/logout")]
pub async fn logout(state: Data<AppState>, path: Path<String>, q: Query<Logout>) -> HttpResponse {
    if realm(&state, &path).is_none() {
        return HttpResponse::NotFound().finish();
    }
    match q.post_logout_redirect_uri.as_deref() {
        Some(to) if casewire_oidc::grants::is_loopback_redirect(to) => HttpResponse::Found()
            .insert_header((actix_web::http::header::LOCATION, to.to_owned()))
            .finish(),
        Some(_) => bad_request("invalid_request", "post_logout_redirect_uri must be on a loopback host"),
        None => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body("<!doctype html><title>Signed out</title><p>You are signed out.</p>"),
    }
}
