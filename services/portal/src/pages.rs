//! The screens, server-rendered with `maud` (escaped by construction).
//! Every page works without JavaScript; what the policy forbids is not
//! offered, and what the API refuses is shown with its reason.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Query};
use actix_web::{HttpRequest, HttpResponse, get};
use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

use crate::Portal;
use crate::session::{self, Session};

const STYLE: &str = "\
:root{color-scheme:light dark;--fg:#1b1f24;--bg:#fff;--muted:#57606a;--line:#d0d7de;--accent:#0a58ca;--bad:#b42318;--good:#1a7f37}\
@media(prefers-color-scheme:dark){:root{--fg:#e6edf3;--bg:#0d1117;--muted:#9198a1;--line:#30363d;--accent:#6cb6ff;--bad:#ff8182;--good:#3fb950}}\
*{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,sans-serif;color:var(--fg);background:var(--bg)}\
header{display:flex;gap:1rem;align-items:center;padding:.6rem 1rem;border-bottom:1px solid var(--line)}\
header nav{display:flex;gap:1rem;flex:1}a{color:var(--accent)}main{padding:1rem;max-width:80rem;margin:auto}\
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid var(--line)}\
form.filters{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end;margin-bottom:1rem}\
label{display:flex;flex-direction:column;font-size:.85rem;color:var(--muted)}\
input,select,button{font:inherit;padding:.35rem .5rem;color:var(--fg);background:var(--bg);border:1px solid var(--line);border-radius:4px}\
button{cursor:pointer}form.inline{display:inline-flex;gap:.4rem;align-items:end;margin:0 .5rem .5rem 0}\
.actions{margin:1rem 0}.board{display:flex;gap:1rem;overflow-x:auto;align-items:flex-start}\
.column{min-width:14rem;flex:1;border:1px solid var(--line);border-radius:6px;padding:.5rem}.column ul{list-style:none;padding:0;margin:0;min-height:3rem}\
.card{border:1px solid var(--line);border-radius:4px;padding:.4rem;margin:.4rem 0;background:var(--bg);cursor:grab}.card form{margin-top:.3rem}dl.fields{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}dd{margin:0}.problem{color:var(--bad)}.muted{color:var(--muted)}\
ul.files,ul.tags{list-style:none;padding:0}ul.files li{margin:.4rem 0}ul.files img{display:block;max-width:160px;height:auto;border:1px solid var(--line)}ul.tags li{display:inline-block;margin-right:.6rem}form.upload{border:1px dashed var(--line);border-radius:6px;padding:.6rem;display:flex;gap:.5rem;align-items:end;flex-wrap:wrap}form.upload.drop{border-color:var(--accent)}.replies{margin-left:1.2rem;padding-left:.8rem;border-left:2px solid var(--line)}article.comment .body p{margin:.2rem 0}details summary{cursor:pointer;color:var(--accent)}\
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(22rem,1fr));gap:1rem}.chart svg{max-width:40rem;display:block}\
.chart text{fill:var(--fg);font-size:12px}rect.bar{fill:var(--accent)}.axis{stroke:var(--line)}polyline.opened,.key.opened{stroke:var(--accent);color:var(--accent);stroke-width:2}\
polyline.resolved,.key.resolved{stroke:var(--good);color:var(--good);stroke-width:2}.tiles{display:flex;gap:1.5rem;font-size:1.1rem}.tile strong{font-size:1.6rem}\
nav.views ul{list-style:none;display:flex;flex-wrap:wrap;gap:.8rem;padding:0;margin:0 0 .5rem}nav.views a[aria-current]{font-weight:600;text-decoration:none}\
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:.5rem;background:var(--bg);padding:.25rem .5rem}";

pub(crate) fn layout(title: &str, who: Option<&Session>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Casewire" }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    strong { "Casewire" }
                    @if let Some(s) = who {
                        nav aria-label="Main" { a href="/cases" { "Cases" } a href="/tasks" { "Tasks" } a href="/board" { "Boards" } a href="/dashboard" { "Dashboard" } a href="/new" { "New case" } }
                        span.muted #live-status role="status" {}
                        span.muted { (s.username) " · " (s.realm) }
                        form method="post" action="/auth/logout" {
                            input type="hidden" name="csrf" value=(s.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main #main { (body) }
                @if who.is_some() { script src=(crate::assets::LIVE_JS_PATH.as_str()) defer {} }
            }
        }
    }
}

pub(crate) fn page(status: StatusCode, markup: Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header((
            "Content-Security-Policy",
            "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self' http: https:",
        ))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(markup.into_string())
}

/// A page that says what went wrong.
pub fn problem(status: StatusCode, message: &str) -> HttpResponse {
    page(
        status,
        layout(
            "Problem",
            None,
            html! { h1 { "Something went wrong" } p.problem role="alert" { (message) } p { a href="/auth/login" { "Sign in" } } },
        ),
    )
}

/// Which realm to sign in to, when there are several.
pub fn realm_choice(portal: &Portal) -> HttpResponse {
    page(
        StatusCode::OK,
        layout(
            "Sign in",
            None,
            html! {
                h1 { "Sign in" }
                ul { @for (name, _) in portal.bases().map(|b| b.realms.as_slice()).unwrap_or_default() {
                    li { a href={ "/auth/login?realm=" (name) } { "Sign in to " (name) } }
                } }
            },
        ),
    )
}

pub(crate) fn to_login() -> HttpResponse {
    HttpResponse::Found()
        .insert_header(("Location", "/auth/login"))
        .finish()
}

/// `/`: the case list when signed in, else the sign-in.
#[get("/")]
pub async fn home(portal: Data<Portal>, req: HttpRequest) -> HttpResponse {
    match session::of(&portal.sessions, &req) {
        Some(_) => HttpResponse::Found().insert_header(("Location", "/cases")).finish(),
        None => to_login(),
    }
}

/// The list's filters, passed to the API as they are.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct ListQuery {
    pub q: Option<String>,
    pub stage: Option<String>,
    pub queue: Option<String>,
    pub assignee: Option<String>,
    pub unassigned: Option<String>,
    pub priority: Option<String>,
    pub tag: Option<String>,
    pub status: Option<String>,
    pub sla: Option<String>,
    pub sort: Option<String>,
    pub cursor: Option<String>,
}

fn filters(q: &ListQuery, sla: bool) -> Markup {
    let v = |x: &Option<String>| x.clone().unwrap_or_default();
    let mut sorts = vec![
        ("-updatedAt", "Recently updated"),
        ("-createdAt", "Newest"),
        ("createdAt", "Oldest"),
        ("key", "Key"),
    ];
    if sla {
        sorts.push(("slaDue", "SLA due first"));
    }
    html! {
        form.filters method="get" action="/cases" role="search" {
            label { "Search" input type="search" name="q" value=(v(&q.q)) autocomplete="off"; }
            label { "Stage" input name="stage" value=(v(&q.stage)); }
            label { "Queue" input name="queue" value=(v(&q.queue)); }
            label { "Assignee" input name="assignee" value=(v(&q.assignee)) placeholder="me"; }
            label { "Priority" input name="priority" value=(v(&q.priority)); }
            label { "Tag" input name="tag" value=(v(&q.tag)); }
            label { "Status" select name="status" {
                @for (value, text) in [("", "Any"), ("open", "Open"), ("resolved", "Resolved"), ("closed", "Closed")] {
                    option value=(value) selected[q.status.as_deref().unwrap_or_default() == value] { (text) }
                }
            } }
            @if sla {
                label { "SLA" select name="sla" {
                    @for (value, text) in [("", "Any"), ("breached", "Breached"), ("at-risk", "At risk"), ("ok", "On time")] {
                        option value=(value) selected[q.sla.as_deref().unwrap_or_default() == value] { (text) }
                    }
                } }
            }
            @if q.unassigned.is_some() { input type="hidden" name="unassigned" value=(v(&q.unassigned)); }
            label { "Sort" select name="sort" {
                @for (value, text) in &sorts {
                    option value=(value) selected[q.sort.as_deref() == Some(*value)] { (text) }
                }
            } }
            button type="submit" { "Filter" }
        }
    }
}

/// The views bar: built-in and saved views, and saving this one.
fn views_bar(q: &ListQuery, s: &Session, sla: bool, saved: &[crate::views::View]) -> Markup {
    let current = serde_urlencoded_query(&ListQuery {
        cursor: None,
        ..q.clone()
    });
    let current = current.trim_start_matches('&');
    html! {
        nav.views aria-label="Views" {
            ul {
                @for v in crate::views::built_in(sla).iter().chain(saved) {
                    li { a href={ "/cases?" (v.query) } aria-current=[(v.query == current).then_some("page")] { (v.name) } }
                }
            }
            form.inline method="post" action="/views" {
                input type="hidden" name="csrf" value=(s.csrf);
                input type="hidden" name="query" value=(current);
                label { "Save this view as" input name="name" required maxlength="40"; }
                button type="submit" { "Save view" }
            }
            @if !saved.is_empty() {
                form.inline method="post" action="/views" {
                    input type="hidden" name="csrf" value=(s.csrf);
                    label { "Remove a view" select name="name" { @for v in saved { option value=(v.name) { (v.name) } } } }
                    button type="submit" { "Remove" }
                }
            }
        }
    }
}

/// Whether the API lets this person filter by SLA (staff): asked once
/// per session, with a one-case list.
async fn sla_allowed(portal: &Portal, req: &HttpRequest, s: &Session) -> bool {
    if let Some(known) = s.sla_filter {
        return known;
    }
    let allowed = matches!(
        crate::api::get(portal, s, "/api/v1/cases?limit=1&sla=ok").await,
        Ok((status, _)) if status.is_success()
    );
    if let Some((id, mut current)) = session::of(&portal.sessions, req) {
        current.sla_filter = Some(allowed);
        portal.sessions.update(&id, current);
    }
    allowed
}

fn rows(page: &Value) -> Markup {
    let items = page["items"].as_array().cloned().unwrap_or_default();
    html! {
        @if items.is_empty() { p.muted { "No cases match." } }
        @else {
            table {
                caption.skip { "Cases" }
                thead { tr { th scope="col" { "Key" } th scope="col" { "Title" } th scope="col" { "Stage" }
                    th scope="col" { "Priority" } th scope="col" { "Queue" } th scope="col" { "Assignee" } th scope="col" { "Updated" } } }
                tbody { @for c in &items {
                    tr {
                        td { a href={ "/cases/" (c["id"].as_str().unwrap_or_default()) } { (c["key"].as_str().unwrap_or_default()) } }
                        td { (c["title"].as_str().unwrap_or_default()) }
                        td { (c["stage"].as_str().unwrap_or_default()) }
                        td { (c["priority"].as_str().unwrap_or_default()) }
                        td { (c["queue"].as_str().unwrap_or_default()) }
                        td { (c["assignee"].as_str().unwrap_or("—")) }
                        td { time datetime=(c["updatedAt"].as_str().unwrap_or_default()) { (c["updatedAt"].as_str().unwrap_or_default().get(..16).unwrap_or_default().replace('T', " ")) } }
                    }
                } }
            }
        }
    }
}

/// The case list: the API's list with the person's token and filters.
#[get("/cases")]
pub async fn cases(portal: Data<Portal>, req: HttpRequest, q: Query<ListQuery>) -> HttpResponse {
    let Some(s) = crate::login::signed_in(&portal, &req).await else {
        return to_login();
    };
    let query = serde_urlencoded_query(&q);
    let sla = sla_allowed(&portal, &req, &s).await;
    let saved = crate::views::saved(&req, &s);
    match crate::api::get(&portal, &s, &format!("/api/v1/cases?limit=50{query}")).await {
        Ok((status, body)) if status.is_success() => {
            let next = body["nextCursor"].as_str().map(|c| {
                let more = ListQuery {
                    cursor: Some(c.to_owned()),
                    ..q.0.clone()
                };
                format!("/cases?{}", serde_urlencoded_query(&more).trim_start_matches('&'))
            });
            page(
                StatusCode::OK,
                layout(
                    "Cases",
                    Some(&s),
                    html! {
                        h1 { "Cases" }
                        (views_bar(&q, &s, sla, &saved))
                        (filters(&q, sla))
                        div #case-rows data-region {
                            (rows(&body))
                            @if let Some(n) = next { p { a href=(n) rel="next" { "More cases" } } }
                        }
                    },
                ),
            )
        }
        Ok((status, body)) => page(
            StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
            layout(
                "Cases",
                Some(&s),
                html! {
                    h1 { "Cases" } (views_bar(&q, &s, sla, &saved)) (filters(&q, sla))
                    p.problem role="alert" { (body["message"].as_str().unwrap_or("The API refused the list.")) " (" (body["code"].as_str().unwrap_or_default()) ")" }
                },
            ),
        ),
        Err(e) => problem(StatusCode::BAD_GATEWAY, &format!("The API can not be reached: {e}")),
    }
}

/// `&k=v` for each filter given (empty ones left out).
fn serde_urlencoded_query(q: &ListQuery) -> String {
    let pairs = [
        ("q", &q.q),
        ("stage", &q.stage),
        ("queue", &q.queue),
        ("assignee", &q.assignee),
        ("unassigned", &q.unassigned),
        ("priority", &q.priority),
        ("tag", &q.tag),
        ("status", &q.status),
        ("sla", &q.sla),
        ("sort", &q.sort),
        ("cursor", &q.cursor),
    ];
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if let Some(v) = v.as_deref().filter(|v| !v.trim().is_empty()) {
            out.append_pair(k, v);
        }
    }
    let s = out.finish();
    if s.is_empty() { s } else { format!("&{s}") }
}
