//! Views of the case list: the built-in ones ("my open cases", "unassigned
//! in my queues", and for staff "SLA breached"), and the person's own,
//! saved under a name. Saved views live in a cookie of their own per
//! person (`HttpOnly`, `SameSite=Lax`): they survive a restart of the
//! portal and need no store, and another person in the same browser has
//! other ones. A view is only a list query; the API still decides what it
//! shows.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::web::{Data, Form};
use actix_web::{HttpRequest, HttpResponse, post};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Portal;
use crate::pages::problem;
use crate::session::Session;

/// The most views one person keeps.
pub const MAX_VIEWS: usize = 12;
/// The longest name and query of a view.
const MAX_NAME: usize = 40;
const MAX_QUERY: usize = 300;

/// A saved view: its name and the list's query string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    pub name: String,
    pub query: String,
}

/// The built-in views; the last is for those who may filter by SLA.
pub fn built_in(sla: bool) -> Vec<View> {
    let mut views = vec![
        View {
            name: "All".into(),
            query: String::new(),
        },
        View {
            name: "My open cases".into(),
            query: "assignee=me&status=open".into(),
        },
        View {
            name: "Unassigned in my queues".into(),
            query: "unassigned=true&status=open".into(),
        },
    ];
    if sla {
        views.push(View {
            name: "SLA breached".into(),
            query: "sla=breached&status=open&sort=slaDue".into(),
        });
    }
    views
}

/// The cookie of `s`'s person: a name no other person shares.
fn cookie_name(s: &Session) -> String {
    let hash = Sha256::digest(format!("{}/{}", s.realm, s.username).as_bytes());
    let short: String = hash.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("cw_views_{short}")
}

/// The person's saved views (none when the cookie is missing or bad).
pub fn saved(req: &HttpRequest, s: &Session) -> Vec<View> {
    req.cookie(&cookie_name(s))
        .and_then(|c| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(c.value()).ok())
        .and_then(|bytes| serde_json::from_slice::<Vec<View>>(&bytes).ok())
        .map(|mut v| {
            v.truncate(MAX_VIEWS);
            v
        })
        .unwrap_or_default()
}

fn store(s: &Session, views: &[View], secure: bool) -> Cookie<'static> {
    let json = serde_json::to_vec(views).unwrap_or_default();
    Cookie::build(
        cookie_name(s),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json),
    )
    .path("/")
    .http_only(true)
    .secure(secure)
    .same_site(SameSite::Lax)
    .max_age(actix_web::cookie::time::Duration::days(400))
    .finish()
}

/// Save or remove a view.
#[derive(Debug, Deserialize)]
pub struct ViewForm {
    pub csrf: String,
    pub name: String,
    /// The query to save; absent: remove the view of that name.
    #[serde(default)]
    pub query: Option<String>,
}

#[post("/views")]
pub async fn save(portal: Data<Portal>, req: HttpRequest, form: Form<ViewForm>) -> HttpResponse {
    let s = match crate::login::form_session(&portal, &req, Some(&form.csrf)).await {
        Ok(s) => s,
        Err(denied) => return denied.page(),
    };
    let name = form.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return problem(StatusCode::BAD_REQUEST, "A view needs a name of 1 to 40 characters.");
    }
    let mut views = saved(&req, &s);
    views.retain(|v| v.name != name);
    let back = match &form.query {
        Some(query) => {
            let query = query.trim_start_matches('?');
            if query.len() > MAX_QUERY || url::form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k == "cursor") {
                return problem(
                    StatusCode::BAD_REQUEST,
                    "That view can not be saved: its query is too long or holds a page cursor.",
                );
            }
            if views.len() >= MAX_VIEWS {
                return problem(StatusCode::BAD_REQUEST, "You keep 12 views already; remove one first.");
            }
            views.push(View {
                name: name.to_owned(),
                query: query.to_owned(),
            });
            format!("/cases?{query}")
        }
        None => "/cases".to_owned(),
    };
    let secure = portal.bases().is_none_or(crate::Bases::secure_cookies);
    HttpResponse::SeeOther()
        .cookie(store(&s, &views, secure))
        .insert_header(("Location", back))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sla_view_is_for_staff_only() {
        assert!(built_in(true).iter().any(|v| v.query.contains("sla=")));
        assert!(!built_in(false).iter().any(|v| v.query.contains("sla=")));
    }
}
