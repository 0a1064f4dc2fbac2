//! Login with the OpenID Connect authorization code flow and PKCE (S256):
//! the portal sends the browser to the realm's authorization endpoint
//! with a challenge, a `state` and a `nonce`, exchanges the code for
//! tokens over the back channel with the verifier, and keeps the tokens in
//! the session. Access tokens are refreshed shortly before they expire,
//! so a person working never sees a login page; logout ends the session
//! here and at the issuer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::http::header::LOCATION;
use actix_web::web::{Data, Form, Query};
use actix_web::{HttpRequest, HttpResponse, get, post};
use base64::Engine as _;
use chrono::Utc;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::Portal;
use crate::session::{self, Session};

/// How long a login may take between the redirect and the callback.
const LOGIN_TTL: Duration = Duration::from_secs(600);
/// Refresh an access token this long before it expires.
const REFRESH_AHEAD_SECS: i64 = 30;

#[derive(Debug)]
struct Pending {
    realm: String,
    verifier: String,
    nonce: String,
    started: Instant,
}

/// Logins under way, by their `state`.
#[derive(Debug, Default)]
pub struct PendingLogins {
    inner: Mutex<HashMap<String, Pending>>,
}

/// An issuer's endpoints, from its discovery document.
#[derive(Debug, Clone, Deserialize)]
pub struct Endpoints {
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub end_session_endpoint: Option<String>,
}

fn issuer<'a>(portal: &'a Portal, realm: &str) -> Option<&'a str> {
    portal
        .bases()?
        .realms
        .iter()
        .find(|(name, _)| name == realm)
        .map(|(_, url)| url.as_str())
}

/// The realm's endpoints.
pub async fn endpoints(portal: &Portal, realm: &str) -> anyhow::Result<Endpoints> {
    let issuer = issuer(portal, realm).ok_or_else(|| anyhow::anyhow!("unknown realm {realm}"))?;
    let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    Ok(portal.http.get(&url).send().await?.error_for_status()?.json().await?)
}

fn redirect(to: &str) -> HttpResponse {
    HttpResponse::Found().insert_header((LOCATION, to.to_owned())).finish()
}

fn redirect_uri(portal: &Portal) -> String {
    format!(
        "{}/auth/callback",
        portal.bases().map_or("", |b| b.public_base.as_str())
    )
}

fn secure(portal: &Portal) -> bool {
    portal.bases().is_none_or(crate::Bases::secure_cookies)
}

/// `?realm=`: the realm to log in to.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    pub realm: Option<String>,
}

/// Starts a login: one realm goes straight to its issuer; several are a
/// choice first.
#[get("/auth/login")]
pub async fn start(portal: Data<Portal>, q: Query<LoginQuery>) -> HttpResponse {
    let Some(bases) = portal.bases() else {
        return crate::pages::problem(StatusCodeOf::SERVICE_UNAVAILABLE, "Starting up; try again in a moment.");
    };
    let realm = match (&q.realm, bases.realms.as_slice()) {
        (Some(r), _) => r.clone(),
        (None, [(only, _)]) => only.clone(),
        (None, _) => return crate::pages::realm_choice(&portal),
    };
    let ep = match endpoints(&portal, &realm).await {
        Ok(ep) => ep,
        Err(e) => {
            tracing::warn!(%realm, error = %e, "The issuer's discovery failed");
            return crate::pages::problem(
                StatusCodeOf::BAD_GATEWAY,
                "The sign-in service can not be reached. Try again in a moment.",
            );
        }
    };
    let (state, verifier, nonce) = (session::fresh_token(), session::fresh_token(), session::fresh_token());
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if let Ok(mut p) = portal.logins.inner.lock() {
        p.retain(|_, l| l.started.elapsed() < LOGIN_TTL);
        p.insert(
            state.clone(),
            Pending {
                realm,
                verifier,
                nonce: nonce.clone(),
                started: Instant::now(),
            },
        );
    }
    let Ok(mut to) = url::Url::parse(&ep.authorization_endpoint) else {
        return crate::pages::problem(StatusCodeOf::BAD_GATEWAY, "The sign-in service gave a bad address.");
    };
    to.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &portal.config.client_id)
        .append_pair("redirect_uri", &redirect_uri(&portal))
        .append_pair("scope", "openid profile email")
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    redirect(to.as_str())
}

use actix_web::http::StatusCode as StatusCodeOf;

/// What the issuer sends the browser back with.
#[derive(Debug, Deserialize)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// The payload of a JWT, unverified: only for tokens the portal received
/// itself from the token endpoint (OIDC Core 3.1.3.7 lets a client rely
/// on TLS to that endpoint); the API verifies every access token anyway.
fn claims(jwt: &str) -> Option<Value> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A session from a token response.
fn session_of(tokens: &Value, realm: &str, nonce: Option<&str>) -> Result<Session, &'static str> {
    let access = tokens["access_token"].as_str().ok_or("no access token")?;
    let id_token = tokens["id_token"].as_str();
    let id = id_token.and_then(claims).unwrap_or(Value::Null);
    if let Some(n) = nonce
        && id_token.is_some()
        && id["nonce"].as_str() != Some(n)
    {
        return Err("the ID token's nonce does not match the login");
    }
    let access_claims = claims(access).unwrap_or(Value::Null);
    let username = id["preferred_username"]
        .as_str()
        .or(access_claims["preferred_username"].as_str())
        .ok_or("the tokens name no user")?;
    let expires_in = tokens["expires_in"].as_i64().unwrap_or(300);
    Ok(Session {
        username: username.to_owned(),
        realm: realm.to_owned(),
        access: access.to_owned(),
        access_expires: Utc::now() + chrono::Duration::seconds(expires_in),
        refresh: tokens["refresh_token"].as_str().map(str::to_owned),
        id_token: id_token.map(str::to_owned),
        csrf: session::fresh_token(),
        last_seen: Utc::now(),
        sla_filter: None,
    })
}

/// The token endpoint's answer to `form`.
async fn token_request(portal: &Portal, realm: &str, form: &[(&str, &str)]) -> anyhow::Result<Value> {
    let ep = endpoints(portal, realm).await?;
    let mut form: Vec<(&str, &str)> = form.to_vec();
    form.push(("client_id", &portal.config.client_id));
    if let Some(secret) = &portal.config.client_secret {
        form.push(("client_secret", secret));
    }
    let r = portal.http.post(&ep.token_endpoint).form(&form).send().await?;
    let status = r.status();
    let body: Value = r.json().await?;
    anyhow::ensure!(status.is_success(), "the token endpoint said {status}: {body}");
    Ok(body)
}

/// The callback: the code exchanged, the session started.
#[get("/auth/callback")]
pub async fn callback(portal: Data<Portal>, q: Query<Callback>) -> HttpResponse {
    if let Some(e) = &q.error {
        let why = q.error_description.as_deref().unwrap_or(e);
        return crate::pages::problem(StatusCodeOf::UNAUTHORIZED, &format!("Sign-in was refused: {why}"));
    }
    let pending = q
        .state
        .as_deref()
        .and_then(|s| portal.logins.inner.lock().ok()?.remove(s))
        .filter(|p| p.started.elapsed() < LOGIN_TTL);
    let (Some(p), Some(code)) = (pending, q.code.as_deref()) else {
        return crate::pages::problem(
            StatusCodeOf::BAD_REQUEST,
            "This sign-in link is used or expired. Sign in again.",
        );
    };
    let uri = redirect_uri(&portal);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", uri.as_str()),
        ("code_verifier", p.verifier.as_str()),
    ];
    let tokens = match token_request(&portal, &p.realm, &form).await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "Exchanging a login code failed");
            return crate::pages::problem(StatusCodeOf::UNAUTHORIZED, "Sign-in failed. Sign in again.");
        }
    };
    match session_of(&tokens, &p.realm, Some(&p.nonce)) {
        Ok(s) => {
            tracing::info!(user = %s.username, realm = %s.realm, "Signed in to the portal");
            let id = portal.sessions.insert(s);
            HttpResponse::Found()
                .cookie(session::cookie(&id, secure(&portal)))
                .insert_header((LOCATION, "/cases"))
                .finish()
        }
        Err(why) => crate::pages::problem(StatusCodeOf::UNAUTHORIZED, why),
    }
}

/// The session's access token, refreshed first when it is about to
/// expire; `None` when the session can not go on (log in again).
pub async fn access(portal: &Portal, id: &str, mut s: Session) -> Option<Session> {
    if s.access_expires - Utc::now() > chrono::Duration::seconds(REFRESH_AHEAD_SECS) {
        return Some(s);
    }
    let refresh = s.refresh.clone()?;
    let tokens = token_request(
        portal,
        &s.realm,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await
    .map_err(|e| tracing::info!(error = %e, "A portal session could not be refreshed"))
    .ok()?;
    let renewed = session_of(&tokens, &s.realm, None).ok()?;
    s.access = renewed.access;
    s.access_expires = renewed.access_expires;
    s.refresh = renewed.refresh.or(s.refresh);
    s.id_token = renewed.id_token.or(s.id_token);
    portal.sessions.update(id, s.clone());
    Some(s)
}

/// A form that changes something: its CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    pub csrf: String,
}

/// Logout: the session ends here, then at the issuer, which sends the
/// browser back to the portal.
#[post("/auth/logout")]
pub async fn logout(portal: Data<Portal>, req: HttpRequest, form: Form<CsrfForm>) -> HttpResponse {
    let Some((id, s)) = session::of(&portal.sessions, &req) else {
        return redirect("/");
    };
    if form.csrf != s.csrf {
        return FormDenied::Stale.page();
    }
    portal.sessions.remove(&id);
    let back = format!("{}/", portal.bases().map_or("", |b| b.public_base.as_str()));
    let end = endpoints(&portal, &s.realm)
        .await
        .ok()
        .and_then(|e| e.end_session_endpoint);
    // The refresh token ends over the back channel (Keycloak's POST
    // logout), never in a URL the browser keeps; best effort.
    if let (Some(end), Some(refresh)) = (&end, &s.refresh) {
        let mut form = vec![
            ("client_id", portal.config.client_id.as_str()),
            ("refresh_token", refresh.as_str()),
        ];
        if let Some(secret) = &portal.config.client_secret {
            form.push(("client_secret", secret));
        }
        if let Err(e) = portal.http.post(end).form(&form).send().await {
            tracing::info!(error = %e, "Ending the session at the issuer failed");
        }
    }
    let to = end.and_then(|end| url::Url::parse(&end).ok()).map(|mut u| {
        u.query_pairs_mut()
            .append_pair("post_logout_redirect_uri", &back)
            .append_pair("client_id", &portal.config.client_id);
        if let Some(t) = &s.id_token {
            u.query_pairs_mut().append_pair("id_token_hint", t);
        }
        u.to_string()
    });
    HttpResponse::Found()
        .cookie(session::removal(secure(&portal)))
        .insert_header((LOCATION, to.unwrap_or(back)))
        .finish()
}

/// What a form post that is refused before it is sent answers.
pub const STALE_FORM: &str = "This form is stale. Reload the page and try again.";

/// Why a form post goes no further.
#[derive(Debug, PartialEq, Eq)]
pub enum FormDenied {
    /// No live session: sign in again.
    SignedOut,
    /// The form's CSRF token is not the session's (forged, or from an
    /// earlier session).
    Stale,
}

impl FormDenied {
    /// The page for it: the sign-in, or 403 with [`STALE_FORM`].
    pub fn page(self) -> HttpResponse {
        match self {
            FormDenied::SignedOut => crate::pages::to_login(),
            FormDenied::Stale => crate::pages::problem(StatusCodeOf::FORBIDDEN, STALE_FORM),
        }
    }
}

/// The session behind a form post, when the form carries its CSRF token.
pub async fn form_session(portal: &Portal, req: &HttpRequest, csrf: Option<&str>) -> Result<Session, FormDenied> {
    let s = signed_in(portal, req).await.ok_or(FormDenied::SignedOut)?;
    if csrf != Some(s.csrf.as_str()) {
        return Err(FormDenied::Stale);
    }
    Ok(s)
}

/// The request's live session with a fresh access token; `None` (and the
/// session ended) when the person must sign in again.
pub async fn signed_in(portal: &Portal, req: &HttpRequest) -> Option<Session> {
    let (id, s) = session::of(&portal.sessions, req)?;
    let fresh = access(portal, &id, s).await;
    if fresh.is_none() {
        portal.sessions.remove(&id);
    }
    fresh
}
