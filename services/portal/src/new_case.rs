//! New case: choose a definition, then a form generated from its JSON
//! Schema (`schema.properties`): enums as choices, strings, numbers and
//! yes/no as inputs with the schema's limits, so the browser checks what
//! it can; the API checks everything again and its refusal is shown on
//! the form with what was typed kept.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Form, Path};
use actix_web::{HttpRequest, HttpResponse, get, post};
use maud::{Markup, html};
use serde_json::{Value, json};

use crate::Portal;
use crate::pages::{layout, page, problem, to_login};
use crate::session::Session;

/// `/new`: the definitions the person may open cases of.
#[get("/new")]
pub async fn choose(portal: Data<Portal>, req: HttpRequest) -> HttpResponse {
    let Some(s) = crate::login::signed_in(&portal, &req).await else {
        return to_login();
    };
    let defs = match crate::api::get_ok(&portal, &s, "/api/v1/definitions").await {
        Ok(defs) => defs,
        Err((status, why)) => return problem(status, &why),
    };
    let items = defs["items"].as_array().cloned().unwrap_or_default();
    page(
        StatusCode::OK,
        layout(
            "New case",
            Some(&s),
            html! {
                h1 { "New case" }
                ul { @for d in &items {
                    li {
                        a href={ "/new/" (d["id"].as_str().unwrap_or_default()) } { (d["name"].as_str().unwrap_or_default()) }
                        @if let Some(text) = d["description"].as_str() { " — " span.muted { (text) } }
                    }
                } }
            },
        ),
    )
}

fn form(def: &Value, s: &Session, typed: &[(String, String)], error: Option<&str>) -> Markup {
    let got = |k: &str| typed.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let schema = &def["schema"];
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let id = def["id"].as_str().unwrap_or_default();
    html! {
        h1 { "New " (def["name"].as_str().unwrap_or(id)) }
        @if let Some(e) = error { p.problem role="alert" { (e) } }
        form.case method="post" action={ "/new/" (id) } {
            input type="hidden" name="csrf" value=(s.csrf);
            label for="title" { "Title *" input #title name="title" type="text" required maxlength="200" value=[got("title")]; }
            label for="description" { "Description" textarea #description name="description" rows="4" { (got("description").unwrap_or_default()) } }
            label for="priority" { "Priority" select #priority name="priority" {
                @for p in def["priorities"].as_array().into_iter().flatten() {
                    @let pid = p["id"].as_str().unwrap_or_default();
                    option value=(pid) selected[got("priority").map_or(def["defaultPriority"] == pid, |g| g == pid)] { (p["name"].as_str().unwrap_or(pid)) }
                }
            } }
            @if let Some(props) = schema["properties"].as_object() {
                fieldset { legend { "Details" }
                    @for (name, prop) in props {
                        (crate::schema_form::input("data", name, prop, required.contains(&name.as_str()), got(&format!("data.{name}"))))
                    }
                }
            }
            button type="submit" { "Open case" }
        }
    }
}

async fn definition(portal: &Portal, s: &Session, id: &str) -> Result<Value, HttpResponse> {
    let path = format!("/api/v1/definitions/{}", crate::api::enc(id));
    crate::api::get_ok(portal, s, &path)
        .await
        .map_err(|(status, why)| problem(status, &why))
}

/// `/new/{definition}`: the form.
#[get("/new/{definition}")]
pub async fn new_form(portal: Data<Portal>, req: HttpRequest, id: Path<String>) -> HttpResponse {
    let Some(s) = crate::login::signed_in(&portal, &req).await else {
        return to_login();
    };
    match definition(&portal, &s, &id).await {
        Ok(def) => page(StatusCode::OK, layout("New case", Some(&s), form(&def, &s, &[], None))),
        Err(r) => r,
    }
}

/// Opens the case; to it, or the form again with the API's reason.
#[post("/new/{definition}")]
pub async fn open(
    portal: Data<Portal>,
    req: HttpRequest,
    id: Path<String>,
    typed: Form<Vec<(String, String)>>,
) -> HttpResponse {
    let get = |k: &str| typed.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let s = match crate::login::form_session(&portal, &req, get("csrf").as_deref()).await {
        Ok(s) => s,
        Err(denied) => return denied.page(),
    };
    let def = match definition(&portal, &s, &id).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let mut body = json!({
        "definition": id.as_str(),
        "title": get("title").unwrap_or_default(),
        "data": crate::schema_form::values("data", &def["schema"], &typed),
    });
    if let Some(d) = get("description").filter(|d| !d.trim().is_empty()) {
        body["description"] = json!(d);
    }
    if let Some(p) = get("priority").filter(|p| !p.is_empty()) {
        body["priority"] = json!(p);
    }
    let sent = crate::api::post(&portal, &s, "/api/v1/cases", &body).await;
    match crate::api::outcome(sent) {
        Ok(created) => HttpResponse::SeeOther()
            .insert_header((
                "Location",
                format!("/cases/{}", created["id"].as_str().unwrap_or_default()),
            ))
            .finish(),
        Err(refused) => page(
            refused.status,
            layout("New case", Some(&s), form(&def, &s, &typed, Some(&refused.reason()))),
        ),
    }
}
