//! The board of a definition: a column per stage, a card per open case
//! the person may see. Each card moves along the definition's transitions
//! with a form (no script needed); with scripts, cards are dragged to a
//! column, and a move the definition or the policy refuses snaps back
//! with the API's reason (`/assets/board.js`).

use actix_web::http::StatusCode;
use actix_web::web::{Data, Form, Path};
use actix_web::{HttpRequest, HttpResponse, get, post};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Portal;
use crate::pages::{layout, page, problem, to_login};
use crate::session::Session;

fn card(c: &Value, def: &Value, s: &Session, board: &str, movable: bool) -> Markup {
    let id = c["id"].as_str().unwrap_or_default();
    let stage = c["stage"].as_str().unwrap_or_default();
    let next: Vec<&str> = def["transitions"][stage]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|_| movable)
        .collect();
    html! {
        li.card draggable=(if movable { "true" } else { "false" }) data-case=(id) data-stage=(stage) tabindex="0" {
            a href={ "/cases/" (id) } { (c["key"].as_str().unwrap_or_default()) } " " (c["title"].as_str().unwrap_or_default())
            @if !next.is_empty() {
                form.move method="post" action={ "/board/" (board) "/move" } {
                    input type="hidden" name="csrf" value=(s.csrf);
                    input type="hidden" name="case" value=(id);
                    label { span.skip { "Move " (c["key"].as_str().unwrap_or_default()) " to" }
                        select name="stage" { @for n in &next { option value=(n) { (n) } } } }
                    button type="submit" { "Move" }
                }
            }
        }
    }
}

fn columns(def: &Value, cases: &[(Value, bool)], s: &Session, board: &str) -> Markup {
    html! {
        div.board #board data-region role="list" {
            @for st in def["stages"].as_array().into_iter().flatten() {
                @let sid = st["id"].as_str().unwrap_or_default();
                // A div: a section may not take the listitem role.
                div.column role="listitem" data-stage=(sid) aria-label=(st["name"].as_str().unwrap_or(sid)) {
                    h2 { (st["name"].as_str().unwrap_or(sid)) }
                    ul { @for (c, movable) in cases.iter().filter(|(c, _)| c["stage"] == sid) { (card(c, def, s, board, *movable)) } }
                }
            }
        }
    }
}

/// Each case with whether the person may move it: a move the policy
/// forbids is not offered (asked per case, all at once).
async fn movable(portal: &Portal, s: &Session, cases: Vec<Value>) -> Vec<(Value, bool)> {
    let asks = cases.iter().map(|c| {
        let path = format!(
            "/api/v1/cases/{}/permissions",
            crate::api::enc(c["id"].as_str().unwrap_or_default())
        );
        async move {
            crate::api::get_ok(portal, s, &path).await.ok().is_some_and(|p| {
                p["actions"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == "case.moveToStage"))
            })
        }
    });
    let allowed = futures::future::join_all(asks).await;
    cases.into_iter().zip(allowed).collect()
}

async fn render(portal: &Portal, s: &Session, board: &str, error: Option<&str>, status: StatusCode) -> HttpResponse {
    let def = match crate::api::get_ok(portal, s, &format!("/api/v1/definitions/{}", crate::api::enc(board))).await {
        Ok(d) => d,
        Err((st, why)) => return problem(st, &why),
    };
    let list = match crate::api::get_ok(
        portal,
        s,
        &format!(
            "/api/v1/cases?definition={}&status=open&limit=200",
            crate::api::enc(board)
        ),
    )
    .await
    {
        Ok(l) => l,
        Err((st, why)) => return problem(st, &why),
    };
    let cases = movable(portal, s, list["items"].as_array().cloned().unwrap_or_default()).await;
    let title = format!("Board: {}", def["name"].as_str().unwrap_or(board));
    page(
        status,
        layout(
            &title,
            Some(s),
            html! {
                h1 { (title) }
                @if let Some(e) = error { p.problem role="alert" #board-error { (e) } }
                @else { p.problem role="alert" #board-error hidden {} }
                (columns(&def, &cases, s, board))
                script src=(crate::assets::BOARD_JS_PATH.as_str()) defer {}
            },
        ),
    )
}

/// The board of a definition.
#[get("/board/{definition}")]
pub async fn show(portal: Data<Portal>, req: HttpRequest, def: Path<String>) -> HttpResponse {
    let Some(s) = crate::login::signed_in(&portal, &req).await else {
        return to_login();
    };
    render(&portal, &s, &def, None, StatusCode::OK).await
}

/// A card moved (a form, or the script's drop).
#[derive(Debug, Deserialize)]
pub struct MoveForm {
    pub csrf: String,
    pub case: String,
    pub stage: String,
}

/// Moves a case. For the script (`Accept: application/json`) the answer
/// is JSON (`{ok}` or the API's error); for a form, the board again.
#[post("/board/{definition}/move")]
pub async fn move_card(
    portal: Data<Portal>,
    req: HttpRequest,
    def: Path<String>,
    form: Form<MoveForm>,
) -> HttpResponse {
    let s = match crate::login::form_session(&portal, &req, Some(&form.csrf)).await {
        Ok(s) => s,
        Err(denied) => return denied.page(),
    };
    let wants_json = req
        .headers()
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    let path = format!("/api/v1/cases/{}/stage", crate::api::enc(&form.case));
    let sent = crate::api::post(&portal, &s, &path, &json!({"stage": form.stage})).await;
    match (crate::api::outcome(sent), wants_json) {
        (Ok(_), true) => HttpResponse::Ok().json(json!({"ok": true})),
        (Ok(_), false) => HttpResponse::SeeOther()
            .insert_header(("Location", format!("/board/{}", crate::api::enc(&def))))
            .finish(),
        (Err(refused), true) => HttpResponse::build(refused.status).json(refused.body),
        (Err(refused), false) => render(&portal, &s, &def, Some(&refused.reason()), refused.status).await,
    }
}

/// `/board`: which definition's board.
#[get("/board")]
pub async fn choose(portal: Data<Portal>, req: HttpRequest) -> HttpResponse {
    let Some(s) = crate::login::signed_in(&portal, &req).await else {
        return to_login();
    };
    let defs = match crate::api::get_ok(&portal, &s, "/api/v1/definitions").await {
        Ok(d) => d,
        Err((st, why)) => return problem(st, &why),
    };
    page(
        StatusCode::OK,
        layout(
            "Boards",
            Some(&s),
            html! {
                h1 { "Boards" }
                ul { @for d in defs["items"].as_array().into_iter().flatten() {
                    li { a href={ "/board/" (d["id"].as_str().unwrap_or_default()) } { (d["name"].as_str().unwrap_or_default()) } }
                } }
            },
        ),
    )
}
