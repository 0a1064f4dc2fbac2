//! The task inbox: the person's claimed human tasks and the unclaimed ones
//! of their queues (`GET /api/v1/tasks`, which the policy narrows), sorted
//! by due time; claim in place, and complete through the task's form
//! (generated from its JSON Schema, checked again by the API).

use actix_web::http::StatusCode;
use actix_web::web::{Data, Form, Path};
use actix_web::{HttpRequest, HttpResponse, get, post};
use maud::{Markup, html};
use serde_json::{Value, json};

use crate::Portal;
use crate::pages::{layout, page, problem, to_login};
use crate::session::Session;

/// Tasks of a query, soonest due first (no due time last).
async fn tasks(portal: &Portal, s: &Session, query: &str) -> Result<Vec<Value>, String> {
    let body = crate::api::get_ok(portal, s, &format!("/api/v1/tasks?kind=human&{query}"))
        .await
        .map_err(|(_, why)| why)?;
    let mut items = body["items"].as_array().cloned().unwrap_or_default();
    items.sort_by_key(|i| i["task"]["due"].as_str().map_or_else(|| "~".to_owned(), str::to_owned));
    Ok(items)
}

/// The claim button of a task; `back`: return to the case, not the inbox.
pub(crate) fn claim_form(case: &str, task: &str, s: &Session, back: bool) -> Markup {
    html! {
        form method="post" action={ "/tasks/" (case) "/" (task) "/claim" } {
            input type="hidden" name="csrf" value=(s.csrf);
            @if back { input type="hidden" name="back" value="case"; }
            button type="submit" { "Claim" }
        }
    }
}

/// The form that completes a task (`item`: its case and the task).
pub(crate) fn task_form(item: &Value, s: &Session, back: bool) -> Markup {
    let (case, task) = (&item["case"], &item["task"]);
    let base = format!(
        "/tasks/{}/{}",
        case["id"].as_str().unwrap_or_default(),
        task["id"].as_str().unwrap_or_default()
    );
    let schema = &task["form"];
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    html! {
        form method="post" action={ (base) "/complete" } {
            input type="hidden" name="csrf" value=(s.csrf);
            @if back { input type="hidden" name="back" value="case"; }
            @if let Some(props) = schema["properties"].as_object() {
                @for (name, prop) in props {
                    (crate::schema_form::input("out", name, prop, required.contains(&name.as_str()), None))
                }
            }
            button type="submit" { "Complete" }
        }
    }
}

fn table(items: &[Value], s: &Session, mine: bool) -> Markup {
    html! {
        @if items.is_empty() { p.muted { "Nothing here." } }
        @else {
            table {
                thead { tr { th scope="col" { "Task" } th scope="col" { "Case" } th scope="col" { "Due" } th scope="col" { "" } } }
                tbody { @for i in items {
                    tr {
                        td { (i["task"]["name"].as_str().unwrap_or_default()) }
                        td { a href={ "/cases/" (i["case"]["id"].as_str().unwrap_or_default()) } { (i["case"]["key"].as_str().unwrap_or_default()) } " " (i["case"]["title"].as_str().unwrap_or_default()) }
                        td { (i["task"]["due"].as_str().unwrap_or("—")) }
                        td {
                            @if mine { (task_form(i, s, false)) }
                            @else { (claim_form(i["case"]["id"].as_str().unwrap_or_default(), i["task"]["id"].as_str().unwrap_or_default(), s, false)) }
                        }
                    }
                } }
            }
        }
    }
}

fn inbox_page(s: &Session, mine: &[Value], open: &[Value], error: Option<&str>, status: StatusCode) -> HttpResponse {
    page(
        status,
        layout(
            "Tasks",
            Some(s),
            html! {
                h1 { "Tasks" }
                @if let Some(e) = error { p.problem role="alert" { (e) } }
                div #task-lists data-region {
                    h2 { "My tasks" } (table(mine, s, true))
                    h2 { "Unclaimed in my queues" } (table(open, s, false))
                }
            },
        ),
    )
}

async fn inbox_with(portal: &Portal, s: &Session, error: Option<&str>, status: StatusCode) -> HttpResponse {
    let mine = tasks(portal, s, "assignee=me&state=claimed").await;
    let open = tasks(portal, s, "state=created").await;
    match (mine, open) {
        (Ok(mine), Ok(open)) => inbox_page(s, &mine, &open, error, status),
        (Err(e), _) | (_, Err(e)) => problem(StatusCode::BAD_GATEWAY, &e),
    }
}

/// The task inbox.
#[get("/tasks")]
pub async fn inbox(portal: Data<Portal>, req: HttpRequest) -> HttpResponse {
    let Some(s) = crate::login::signed_in(&portal, &req).await else {
        return to_login();
    };
    inbox_with(&portal, &s, None, StatusCode::OK).await
}

async fn act(
    portal: &Portal,
    req: &HttpRequest,
    ids: &(String, String),
    typed: &[(String, String)],
    what: &str,
    body: Value,
) -> HttpResponse {
    let csrf = typed.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str());
    let s = match crate::login::form_session(portal, req, csrf).await {
        Ok(s) => s,
        Err(denied) => return denied.page(),
    };
    let enc = crate::api::enc;
    let path = format!("/api/v1/cases/{}/tasks/{}/{what}", enc(&ids.0), enc(&ids.1));
    match crate::api::outcome(crate::api::post(portal, &s, &path, &body).await) {
        Ok(_) => {
            let to_case = typed.iter().any(|(k, v)| k == "back" && v == "case");
            let to = if to_case {
                format!("/cases/{}", enc(&ids.0))
            } else {
                "/tasks".to_owned()
            };
            HttpResponse::SeeOther().insert_header(("Location", to)).finish()
        }
        Err(refused) => inbox_with(portal, &s, Some(&refused.reason()), refused.status).await,
    }
}

#[post("/tasks/{case}/{task}/claim")]
pub async fn claim(
    portal: Data<Portal>,
    req: HttpRequest,
    ids: Path<(String, String)>,
    typed: Form<Vec<(String, String)>>,
) -> HttpResponse {
    act(&portal, &req, &ids, &typed, "claim", json!({})).await
}

/// Completes with the form's values as the task's output (the API checks
/// them against the task's schema).
#[post("/tasks/{case}/{task}/complete")]
pub async fn complete(
    portal: Data<Portal>,
    req: HttpRequest,
    ids: Path<(String, String)>,
    typed: Form<Vec<(String, String)>>,
) -> HttpResponse {
    let Some(s) = crate::login::signed_in(&portal, &req).await else {
        return to_login();
    };
    // The schema gives the types; read the task to know it.
    let enc = crate::api::enc;
    let case = crate::api::get(&portal, &s, &format!("/api/v1/cases/{}", enc(&ids.0))).await;
    let schema = case
        .ok()
        .and_then(|(_, c)| {
            c["tasks"]
                .as_array()
                .and_then(|t| t.iter().find(|t| t["id"] == ids.1.as_str()).cloned())
        })
        .map(|t| t["form"].clone())
        .unwrap_or(Value::Null);
    let output = crate::schema_form::values("out", &schema, &typed);
    act(&portal, &req, &ids, &typed, "complete", json!({"output": output})).await
}
