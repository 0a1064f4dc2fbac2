//! The case portal: server-rendered HTML for case workers, served by the
//! case API process at `/` (a backend for the browser). It logs people in
//! with the OpenID Connect authorization code flow and PKCE against the
//! configured issuer, keeps their tokens server-side behind an `HttpOnly`
//! session cookie, and does everything through the REST API with the
//! person's own token, so the policy, the submit path and the error codes
//! are the API's by construction.
//!
//! # Layout
//! - [`session`]: sessions, their cookie and CSRF tokens;
//! - [`login`]: login (PKCE), callback, token refresh and logout;
//! - [`api`]: the REST API with the session's token;
//! - [`pages`]: the layout, the case list and problems, as `maud` markup;
//! - [`detail`]: the case detail and its actions;
//! - [`new_case`]: a new case, from a form generated from the schema;
//! - [`tasks`]: the task inbox, claim and complete;
//! - [`dashboard`]: figures and SVG charts of the cases one may see;
//! - [`board`]: a definition's board, cards moved by form or by drag;
//! - [`files`]: attachments: upload, download, preview;
//! - [`markdown`]: comments as Markdown, rendered safely;
//! - [`live`]: the live stream of changed cases (Server-Sent Events);
//! - [`assets`]: the portal's own scripts, embedded, named by their hash;
//! - [`views`]: built-in and saved views of the case list;
//! - [`schema_form`]: forms from a JSON Schema, and the values back.

pub mod api;
pub mod assets;
pub mod board;
pub mod dashboard;
pub mod detail;
pub mod files;
pub mod live;
pub mod login;
pub mod markdown;
pub mod new_case;
pub mod pages;
pub mod schema_form;
pub mod session;
pub mod tasks;
pub mod views;

use std::sync::Arc;

use actix_web::web;

/// How the portal is set up.
#[derive(Debug, Clone)]
pub struct PortalConfig {
    /// The OAuth client of the portal (public, PKCE).
    pub client_id: String,
    /// Its secret, for an issuer that makes it a confidential client.
    pub client_secret: Option<String>,
}

/// Where the portal finds the API and the issuers: known once the API is
/// bound (port 0 picks its port), so set after the start.
#[derive(Debug, Clone)]
pub struct Bases {
    /// The API's base URL as the portal calls it, without `/api/v1`.
    pub api_base: String,
    /// The portal's own public base URL (for the redirect URI).
    pub public_base: String,
    /// The realms people log in to: name and issuer URL (the dev issuer's
    /// realms in dev mode, the configured issuers otherwise).
    pub realms: Vec<(String, String)>,
}

impl Bases {
    /// `Secure` cookies unless the portal is plain HTTP on loopback.
    pub fn secure_cookies(&self) -> bool {
        let Ok(url) = url::Url::parse(&self.public_base) else {
            return true;
        };
        let loopback = match url.host() {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        !(loopback && url.scheme() == "http")
    }
}

/// The portal's state, shared by its handlers.
#[derive(Debug)]
pub struct Portal {
    pub config: PortalConfig,
    bases: std::sync::OnceLock<Bases>,
    pub sessions: session::Sessions,
    pub logins: login::PendingLogins,
    pub http: reqwest::Client,
}

impl Portal {
    /// A portal for `config`; [`Portal::bind`] tells it where things are.
    pub fn new(config: PortalConfig) -> anyhow::Result<Arc<Portal>> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(30))
            .build()?;
        Ok(Arc::new(Portal {
            config,
            bases: std::sync::OnceLock::new(),
            sessions: session::Sessions::default(),
            logins: login::PendingLogins::default(),
            http,
        }))
    }

    /// Sets where the API, the portal and the realms are (once).
    pub fn bind(&self, bases: Bases) {
        let _ = self.bases.set(bases);
    }

    /// Where things are; `None` in the moment before the API is bound.
    pub fn bases(&self) -> Option<&Bases> {
        self.bases.get()
    }
}

/// Mounts the portal's routes (`/`, `/auth/*`, `/cases`) on an app.
pub fn configure(portal: Arc<Portal>) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + Sync + 'static {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::from(portal.clone()))
            .service(pages::home)
            .service(pages::cases)
            .service(detail::detail)
            .service(detail::comment)
            .service(detail::stage)
            .service(detail::details)
            .service(detail::command)
            .service(new_case::choose)
            .service(new_case::new_form)
            .service(new_case::open)
            .service(board::choose)
            .service(board::show)
            .service(board::move_card)
            .service(assets::asset)
            .service(views::save)
            .service(dashboard::dashboard)
            .service(files::upload)
            .service(files::download)
            .service(live::live)
            .service(tasks::inbox)
            .service(tasks::claim)
            .service(tasks::complete)
            .service(login::start)
            .service(login::callback)
            .service(login::logout);
    }
}
