//! The case detail: fields, comments (internal ones only for those the API
//! shows them to), the timeline, and the actions the policy allows the
//! person on this case (`GET /cases/{id}/permissions`): a forbidden one is
//! not offered, and one refused anyway shows the API's reason.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Form, Path};
use actix_web::{HttpRequest, HttpResponse, get, post};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Portal;
use crate::pages::{layout, page, problem, to_login};
use crate::session::{self, Session};

/// The signed-in session, its token fresh; `None`: sign in again.
/// Everything the page shows, from the API.
struct Loaded {
    case: Value,
    actions: Vec<String>,
    history: Value,
    transitions: Vec<String>,
    definition: Value,
    /// The SLA clocks, for those who may see them.
    sla: Value,
}

async fn load(portal: &Portal, s: &Session, id: &str) -> Result<Loaded, (StatusCode, String)> {
    let get = |path: String| async move { crate::api::get_ok(portal, s, &path).await };
    let id = crate::api::enc(id);
    let case = get(format!("/api/v1/cases/{id}")).await?;
    let perms = get(format!("/api/v1/cases/{id}/permissions")).await?;
    let actions: Vec<String> = perms["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect();
    let history = if actions.iter().any(|a| a == "case.history") {
        get(format!("/api/v1/cases/{id}/history")).await.unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    let def = get(format!(
        "/api/v1/definitions/{}?version={}",
        case["definitionId"].as_str().unwrap_or_default(),
        case["definitionVersion"].as_u64().unwrap_or(1)
    ))
    .await
    .unwrap_or(Value::Null);
    let current = case["stage"].as_str().unwrap_or_default();
    let transitions = def["transitions"][current]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect();
    // Clocks are staff's: asked only of those who may read internal work.
    let sla = if actions.iter().any(|a| a == "case.comment.read.internal") {
        get(format!("/api/v1/cases/{id}/sla")).await.unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    Ok(Loaded {
        case,
        actions,
        history,
        transitions,
        definition: def,
        sla,
    })
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "—".into(),
        other => other.to_string(),
    }
}

fn fields(c: &Value) -> Markup {
    html! {
        dl.fields {
            @for (label, key) in [("Stage", "stage"), ("Status", "status"), ("Priority", "priority"), ("Queue", "queue"), ("Assignee", "assignee")] {
                dt { (label) } dd { (text(&c[key])) }
            }
            @if let Some(data) = c["data"].as_object() {
                @for (k, v) in data { dt { (k) } dd { (text(v)) } }
            }
        }
    }
}

/// Who may write which kind of comment, and the form's token.
struct Writer<'a> {
    csrf: &'a str,
    public: bool,
    internal: bool,
}

/// The comment form: a new thread, or a reply to `parent`.
fn comment_form(id: &str, w: &Writer, parent: Option<&str>) -> Markup {
    html! {
        form method="post" action={ "/cases/" (id) "/comment" } {
            input type="hidden" name="csrf" value=(w.csrf);
            @if let Some(p) = parent { input type="hidden" name="parent" value=(p); }
            label { @if parent.is_some() { "Reply" } @else { "Comment" } " (Markdown)" textarea name="body" rows=(if parent.is_some() { "2" } else { "4" }) required {} }
            label { "Visible to" select name="visibility" {
                @if w.internal { option value="internal" { "Staff only (internal)" } }
                @if w.public { option value="public" { "Everyone on the case (public)" } }
            } }
            button type="submit" { @if parent.is_some() { "Reply" } @else { "Add comment" } }
        }
    }
}

/// A comment and, under it, its replies (threads nest as deep as they go).
fn thread(all: &[Value], m: &Value, id: &str, w: Option<&Writer>, depth: usize) -> Markup {
    let cid = text(&m["id"]);
    let replies: Vec<&Value> = all
        .iter()
        .filter(|r| r["parentId"].as_str() == Some(cid.as_str()))
        .collect();
    html! {
        article.comment {
            p.muted {
                (text(&m["author"])) " · " time datetime=(text(&m["at"])) { (text(&m["at"]).get(..16).unwrap_or_default().replace('T', " ")) }
                @if m["visibility"] == "internal" { " · " strong { "internal" } }
            }
            div.body { (maud::PreEscaped(crate::markdown::render(m["body"].as_str().unwrap_or_default()))) }
            @if let Some(w) = w {
                details { summary { "Reply" } (comment_form(id, w, Some(&cid))) }
            }
            @if !replies.is_empty() && depth < 16 {
                div.replies { @for r in replies { (thread(all, r, id, w, depth + 1)) } }
            }
        }
    }
}

fn comments(c: &Value, id: &str, w: Option<&Writer>) -> Markup {
    let items = c["comments"].as_array().cloned().unwrap_or_default();
    // A reply whose parent this person can not see starts its own thread.
    let known = |p: &str| items.iter().any(|m| m["id"].as_str() == Some(p));
    html! {
        section #comments aria-labelledby="comments-h" {
            h2 #comments-h { "Comments" }
            @if items.is_empty() { p.muted { "No comments yet." } }
            @for m in items.iter().filter(|m| !m["parentId"].as_str().is_some_and(known)) {
                (thread(&items, m, id, w, 0))
            }
        }
    }
}

fn timeline(h: &Value) -> Markup {
    let items = h["items"].as_array().cloned().unwrap_or_default();
    html! {
        @if !items.is_empty() {
            section aria-labelledby="timeline-h" {
                h2 #timeline-h { "Timeline" }
                ol.timeline { @for e in items.iter().rev() {
                    li {
                        time datetime=(text(&e["time"])) { (text(&e["time"]).get(..19).unwrap_or_default().replace('T', " ")) }
                        " · " (text(&e["actor"])) " · "
                        (e["type"].as_str().unwrap_or_default().trim_start_matches("casewire.case.").trim_end_matches(".v1"))
                    }
                } }
            }
        }
    }
}

fn duration(secs: i64) -> String {
    let sign = if secs < 0 { "-" } else { "" };
    let s = secs.unsigned_abs();
    format!("{sign}{}h {:02}m", s / 3600, (s % 3600) / 60)
}

fn clock_state(c: &Value) -> &'static str {
    if c["breached"] == true {
        "breached"
    } else if c["metAt"].is_string() {
        "met"
    } else if c["paused"] == true {
        "paused"
    } else {
        "running"
    }
}

fn clocks(sla: &Value) -> Markup {
    let items = sla["items"].as_array().cloned().unwrap_or_default();
    html! {
        @if !items.is_empty() {
            section aria-labelledby="sla-h" {
                h2 #sla-h { "SLA" }
                table { caption.skip { "SLA clocks" }
                    thead { tr { th scope="col" { "Clock" } th scope="col" { "Goal" } th scope="col" { "Time left" } th scope="col" { "State" } th scope="col" { "Due" } } }
                    tbody { @for c in &items {
                        tr {
                            td { (text(&c["metric"])) }
                            td { (duration(c["goal"].as_i64().unwrap_or_default())) }
                            td { (duration(c["remaining"].as_i64().unwrap_or_default())) }
                            td { (clock_state(c)) }
                            td { (text(&c["dueAt"])) }
                        }
                    } }
                }
            }
        }
    }
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / f64::from(1u32 << 20)),
        b if b >= 1 << 10 => format!("{:.0} KB", b as f64 / 1024.0),
        b => format!("{b} bytes"),
    }
}

/// The case's files: images shown, PDFs previewed in a new tab, all
/// downloadable; with the upload form (drag and drop, progress) for those
/// who may attach.
fn files(c: &Value, s: &Session, id: &str, may_attach: bool) -> Markup {
    let items = c["attachments"].as_array().cloned().unwrap_or_default();
    html! {
        section aria-labelledby="files-h" {
            h2 #files-h { "Attachments" }
            div #case-files data-region {
                @if items.is_empty() { p.muted { "No files yet." } }
                ul.files { @for f in &items {
                    @let (fid, name, ty) = (text(&f["fileId"]), text(&f["name"]), text(&f["contentType"]));
                    li {
                        @if crate::files::is_image(&ty) {
                            img src={ "/files/" (fid) "?inline=1" } alt=(name) loading="lazy" width="160";
                        }
                        a href={ "/files/" (fid) } download=(name) { (name) }
                        " " span.muted { (size(f["size"].as_u64().unwrap_or_default())) " · " (text(&f["by"])) }
                        @if ty == "application/pdf" { " " a href={ "/files/" (fid) "?inline=1" } target="_blank" rel="noopener" { "Preview" } }
                    }
                } }
            }
            @if may_attach {
                form.upload method="post" enctype="multipart/form-data" action={ "/cases/" (id) "/attachments?csrf=" (s.csrf) } {
                    label { "Add a file (or drop it here)" input type="file" name="file" required; }
                    progress max="100" value="0" hidden {}
                    button type="submit" { "Upload" }
                    span.problem role="alert" {}
                }
                script src=(crate::assets::UPLOAD_JS_PATH.as_str()) defer {}
            }
        }
    }
}

/// Tags (each removable) and links to other cases, with their forms.
fn tags_and_links(l: &Loaded, s: &Session, id: &str) -> Markup {
    let may = |a: &str| l.actions.iter().any(|x| x == a);
    let c = &l.case;
    let tags = c["tags"].as_array().cloned().unwrap_or_default();
    let links = c["links"].as_array().cloned().unwrap_or_default();
    let relations = ["relatesTo", "duplicates", "blocks", "blockedBy", "parentOf", "childOf"];
    html! {
        div #case-tags data-region {
            h2 { "Tags and links" }
            ul.tags aria-label="Tags" { @for t in &tags {
                li { (text(t)) @if may("case.untag") { " " (button(id, &s.csrf, &format!("untag:{}", text(t)), "Remove")) } }
            } }
            @if !links.is_empty() { ul aria-label="Links" { @for k in &links {
                li { (text(&k["relation"])) " " a href={ "/cases/" (text(&k["target"])) } { (text(&k["target"])) } }
            } } }
        }
        @if may("case.tag") {
            form.inline method="post" action={ "/cases/" (id) "/do" } {
                input type="hidden" name="csrf" value=(s.csrf);
                input type="hidden" name="action" value="tag";
                label { "Tag" input name="value" required maxlength="64"; }
                button type="submit" { "Add tag" }
            }
        }
        @if may("case.link") {
            form.inline method="post" action={ "/cases/" (id) "/do" } {
                input type="hidden" name="csrf" value=(s.csrf);
                input type="hidden" name="action" value="link";
                label { "Relation" select name="relation" { @for r in relations { option value=(r) { (r) } } } }
                label { "Case key" input name="value" required placeholder="CC-12"; }
                button type="submit" { "Link" }
            }
        }
    }
}

/// The edit form of the title, description and data, from the
/// definition's JSON Schema: the browser checks what the schema's limits
/// allow it to, the API checks the whole schema again.
fn edit(l: &Loaded, s: &Session, id: &str) -> Markup {
    let c = &l.case;
    let schema = &l.definition["schema"];
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    html! {
        details.edit {
            summary { "Edit details" }
            form method="post" action={ "/cases/" (id) "/details" } {
                input type="hidden" name="csrf" value=(s.csrf);
                label { "Title *" input name="title" required maxlength="200" value=(text(&c["title"])); }
                label { "Description" textarea name="description" rows="3" maxlength="20000" { (c["description"].as_str().unwrap_or_default()) } }
                @if let Some(props) = schema["properties"].as_object() {
                    @for (name, prop) in props.iter().filter(|(_, p)| crate::schema_form::has_field(p)) {
                        (crate::schema_form::input("data", name, prop, required.contains(&name.as_str()), crate::schema_form::shown(&c["data"][name]).as_deref()))
                    }
                }
                button type="submit" { "Save details" }
            }
        }
    }
}

/// The case's human tasks: claim, and complete through the task's form.
fn case_tasks(l: &Loaded, s: &Session, id: &str) -> Markup {
    let c = &l.case;
    let work = l.actions.iter().any(|a| a == "task.work");
    let tasks: Vec<&Value> = c["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["kind"] == "human")
        .collect();
    html! {
        @if !tasks.is_empty() {
            section #case-tasks data-region aria-labelledby="tasks-h" {
                h2 #tasks-h { "Tasks" }
                table { caption.skip { "Tasks of the case" }
                    thead { tr { th scope="col" { "Task" } th scope="col" { "State" } th scope="col" { "Assignee" } th scope="col" { "Due" } th scope="col" { "" } } }
                    tbody { @for t in &tasks {
                        tr {
                            td { (text(&t["name"])) }
                            td { (text(&t["state"])) }
                            td { (text(&t["assignee"])) }
                            td { (text(&t["due"])) }
                            td {
                                @if !work {}
                                @else if t["state"] == "created" { (crate::tasks::claim_form(id, t["id"].as_str().unwrap_or_default(), s, true)) }
                                @else if t["state"] == "claimed" && t["assignee"].as_str() == Some(s.username.as_str()) {
                                    (crate::tasks::task_form(&json!({"case": {"id": id}, "task": t}), s, true))
                                }
                            }
                        }
                    } }
                }
            }
        }
    }
}

/// One button form for a command without input.
fn button(id: &str, csrf: &str, action: &str, text: &str) -> Markup {
    html! {
        form.inline method="post" action={ "/cases/" (id) "/do" } {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="action" value=(action);
            button type="submit" { (text) }
        }
    }
}

fn choice(
    id: &str,
    csrf: &str,
    action: &str,
    label: &str,
    options: &[(String, String)],
    current: Option<&str>,
) -> Markup {
    html! {
        form.inline method="post" action={ "/cases/" (id) "/do" } {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="action" value=(action);
            label { (label) select name="value" {
                @for (v, t) in options { option value=(v) selected[current == Some(v.as_str())] { (t) } }
            } }
            @if action == "resolve" { label { "Note" input name="note" type="text" maxlength="2000"; } }
            button type="submit" { @if action == "resolve" { "Resolve" } @else { "Set" } }
        }
    }
}

fn work(l: &Loaded, s: &Session, id: &str) -> Markup {
    let may = |a: &str| l.actions.iter().any(|x| x == a);
    let c = &l.case;
    let status = c["status"].as_str().unwrap_or_default();
    let mine = c["assignee"].as_str() == Some(s.username.as_str());
    let priorities: Vec<(String, String)> = l.definition["priorities"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| (text(&p["id"]), text(&p["name"])))
        .collect();
    let codes: Vec<(String, String)> = l.definition["resolutionCodes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| (text(c), text(c)))
        .collect();
    html! {
        div.actions {
            @if may("case.assign") && !mine { (button(id, &s.csrf, "assign-me", "Assign to me")) }
            @if may("case.assign") {
                form.inline method="post" action={ "/cases/" (id) "/do" } {
                    input type="hidden" name="csrf" value=(s.csrf);
                    input type="hidden" name="action" value="assign";
                    label { "Assign to" input name="value" required maxlength="128" autocomplete="off"; }
                    button type="submit" { "Assign" }
                }
            }
            @if may("case.unassign") && c["assignee"].is_string() { (button(id, &s.csrf, "unassign", "Unassign")) }
            @if may("case.close") && status == "resolved" { (button(id, &s.csrf, "close", "Close")) }
            @if may("case.reopen") && status != "open" { (button(id, &s.csrf, "reopen", "Reopen")) }
            @if may("case.prioritize") { (choice(id, &s.csrf, "priority", "Priority", &priorities, c["priority"].as_str())) }
            @if may("case.resolve") && status == "open" && !codes.is_empty() { (choice(id, &s.csrf, "resolve", "Resolution", &codes, None)) }
        }
    }
}

fn actions(l: &Loaded, s: &Session, id: &str) -> Markup {
    let may = |a: &str| l.actions.iter().any(|x| x == a);
    let (public, internal) = (may("case.comment.public"), may("case.comment.internal"));
    html! {
        div #case-work data-region {
            (work(l, s, id))
            @if may("case.moveToStage") && !l.transitions.is_empty() {
                form method="post" action={ "/cases/" (id) "/stage" } {
                    input type="hidden" name="csrf" value=(s.csrf);
                    label { "Move to stage" select name="stage" { @for t in &l.transitions { option value=(t) { (t) } } } }
                    button type="submit" { "Move" }
                }
            }
        }
        @if public || internal {
            (comment_form(id, &Writer { csrf: &s.csrf, public, internal }, None))
        }
    }
}

fn render(l: &Loaded, s: &Session, id: &str, error: Option<&str>, status: StatusCode) -> HttpResponse {
    let c = &l.case;
    let title = format!("{} {}", text(&c["key"]), text(&c["title"]));
    let may = |a: &str| l.actions.iter().any(|x| x == a);
    let (public, internal) = (may("case.comment.public"), may("case.comment.internal"));
    let writer = (public || internal).then_some(Writer {
        csrf: &s.csrf,
        public,
        internal,
    });
    page(
        status,
        layout(
            &title,
            Some(s),
            html! {
                p { a href="/cases" { "← Cases" } }
                h1 data-live-case=(id) { (text(&c["key"])) ": " (text(&c["title"])) }
                @if let Some(e) = error { p.problem role="alert" { (e) } }
                div #case-fields data-region {
                    (fields(c))
                    @if let Some(d) = c["description"].as_str().filter(|d| !d.is_empty()) { p { (d) } }
                }
                @if l.actions.iter().any(|a| a == "case.reviseDetails") { (edit(l, s, id)) }
                (actions(l, s, id))
                (case_tasks(l, s, id))
                (tags_and_links(l, s, id))
                (files(c, s, id, l.actions.iter().any(|a| a == "case.attach")))
                div #case-sla data-region { (clocks(&l.sla)) }
                div #case-comments data-region { (comments(c, id, writer.as_ref())) }
                div #case-timeline data-region { (timeline(&l.history)) }
            },
        ),
    )
}

/// The case detail.
#[get("/cases/{id}")]
pub async fn detail(portal: Data<Portal>, req: HttpRequest, id: Path<String>) -> HttpResponse {
    let Some(s) = crate::login::signed_in(&portal, &req).await else {
        return to_login();
    };
    match load(&portal, &s, &id).await {
        Ok(l) => render(&l, &s, &id, None, StatusCode::OK),
        Err((status, message)) => problem(status, &message),
    }
}

/// A comment from the detail page.
#[derive(Debug, Deserialize)]
pub struct CommentForm {
    pub csrf: String,
    pub body: String,
    pub visibility: String,
    /// The comment this one answers.
    #[serde(default)]
    pub parent: Option<String>,
}

/// A stage move from the detail page.
#[derive(Debug, Deserialize)]
pub struct StageForm {
    pub csrf: String,
    pub stage: String,
}

/// Sends a command; back to the case, or the case with the API's reason.
async fn act(portal: &Portal, req: &HttpRequest, id: &str, csrf: &str, path: &str, body: Value) -> HttpResponse {
    let s = match crate::login::form_session(portal, req, Some(csrf)).await {
        Ok(s) => s,
        Err(denied) => return denied.page(),
    };
    let enc = crate::api::enc(id);
    let sent = crate::api::post(portal, &s, &format!("/api/v1/cases/{enc}{path}"), &body).await;
    match (crate::api::outcome(sent), load(portal, &s, id).await) {
        (Ok(_), _) => HttpResponse::SeeOther()
            .insert_header(("Location", format!("/cases/{enc}")))
            .finish(),
        (Err(refused), Ok(l)) => render(&l, &s, id, Some(&refused.reason()), refused.status),
        (Err(refused), Err(_)) => problem(refused.status, &refused.reason()),
    }
}

#[post("/cases/{id}/comment")]
pub async fn comment(
    portal: Data<Portal>,
    req: HttpRequest,
    id: Path<String>,
    form: Form<CommentForm>,
) -> HttpResponse {
    let mut body = json!({"body": form.body, "visibility": form.visibility});
    if let Some(parent) = form.parent.as_deref().filter(|p| !p.is_empty()) {
        body["parentId"] = json!(parent);
    }
    act(&portal, &req, &id, &form.csrf, "/comments", body).await
}

#[post("/cases/{id}/stage")]
pub async fn stage(portal: Data<Portal>, req: HttpRequest, id: Path<String>, form: Form<StageForm>) -> HttpResponse {
    act(&portal, &req, &id, &form.csrf, "/stage", json!({"stage": form.stage})).await
}

/// A command from one of the case's buttons.
#[derive(Debug, Deserialize)]
pub struct ActionForm {
    pub csrf: String,
    pub action: String,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub relation: Option<String>,
}

#[post("/cases/{id}/do")]
pub async fn command(portal: Data<Portal>, req: HttpRequest, id: Path<String>, form: Form<ActionForm>) -> HttpResponse {
    let Some((_, s)) = session::of(&portal.sessions, &req) else {
        return to_login();
    };
    let value = form.value.clone().unwrap_or_default();
    let (path, body) = match form.action.as_str() {
        "assign-me" => ("/assign", json!({"assignee": s.username})),
        "assign" => ("/assign", json!({"assignee": value.trim()})),
        "unassign" => ("/unassign", json!({})),
        "priority" => ("/priority", json!({"priority": value})),
        "resolve" => (
            "/resolve",
            json!({"resolution": value, "note": form.note.clone().filter(|n| !n.trim().is_empty())}),
        ),
        "close" => ("/close", json!({})),
        "reopen" => ("/reopen", json!({})),
        "tag" => ("/tags", json!({"tag": value.trim()})),
        "link" => {
            match crate::api::get_ok(&portal, &s, &format!("/api/v1/cases/{}", crate::api::enc(value.trim()))).await {
                Ok(target) => (
                    "/links",
                    json!({"target": target["id"], "relation": form.relation.as_deref().unwrap_or("relatesTo")}),
                ),
                Err((status, why)) => return problem(status, &format!("The case to link to: {why}")),
            }
        }
        other => match other.strip_prefix("untag:") {
            Some(tag) => return untag(&portal, &req, &id, &form.csrf, tag).await,
            None => return problem(StatusCode::BAD_REQUEST, "Unknown action."),
        },
    };
    act(&portal, &req, &id, &form.csrf, path, body).await
}

/// Removes a tag (the API's DELETE), back to the case.
async fn untag(portal: &Portal, req: &HttpRequest, id: &str, csrf: &str, tag: &str) -> HttpResponse {
    let s = match crate::login::form_session(portal, req, Some(csrf)).await {
        Ok(s) => s,
        Err(denied) => return denied.page(),
    };
    let path = format!("/api/v1/cases/{}/tags/{}", crate::api::enc(id), crate::api::enc(tag));
    match crate::api::outcome(crate::api::delete(portal, &s, &path).await) {
        Ok(_) => HttpResponse::SeeOther()
            .insert_header(("Location", format!("/cases/{}", crate::api::enc(id))))
            .finish(),
        Err(refused) => problem(refused.status, refused.message()),
    }
}

/// Saves the edit form: the title, the description and the data, the
/// data's properties without a field (objects, arrays) kept as they were.
#[post("/cases/{id}/details")]
pub async fn details(
    portal: Data<Portal>,
    req: HttpRequest,
    id: Path<String>,
    typed: Form<Vec<(String, String)>>,
) -> HttpResponse {
    let Some(s) = crate::login::signed_in(&portal, &req).await else {
        return to_login();
    };
    let field = |name: &str| typed.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let csrf = field("csrf").unwrap_or_default();
    let l = match load(&portal, &s, &id).await {
        Ok(l) => l,
        Err((status, why)) => return problem(status, &why),
    };
    let schema = &l.definition["schema"];
    let typed_data = crate::schema_form::values("data", schema, &typed);
    let mut data = l.case["data"].as_object().cloned().unwrap_or_default();
    if let Some(props) = schema["properties"].as_object() {
        for name in props.keys().filter(|n| crate::schema_form::has_field(&props[*n])) {
            match typed_data.get(name) {
                Some(v) => data.insert(name.clone(), v.clone()),
                None => data.remove(name),
            };
        }
    }
    let body = json!({
        "title": field("title").unwrap_or_default(),
        "description": field("description").unwrap_or_default(),
        "data": data,
    });
    act(&portal, &req, &id, &csrf, "/details", body).await
}
