//! `/api/v1/openapi.json` and the JSON-Schema descriptions of commands and
//! events, all generated from the Rust types with `utoipa`.

use std::sync::LazyLock;

use actix_web::{HttpResponse, get};
use casewire_domain::ErrorCode;
use casewire_domain::command::*;
use casewire_domain::event::*;
use casewire_domain::{Case, CaseCommand, CaseDefinition, CaseEvent, CaseStatus, Comment};
use casewire_ports::{CaseSummary, CommandRecord, CommandStatus, SortKey};
use serde_json::{Map, Value};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::ErrorBody;
use crate::routes::{cases, commands, definitions, events, files};
use crate::submit::Accepted;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document of the public API.
#[derive(OpenApi)]
#[openapi(
    info(title = "Casewire API", description = "Event-sourced case management. Commands are accepted with 202 and decided asynchronously; send `Prefer: wait=N` to wait for the outcome."),
    paths(
        cases::open_case, cases::list_cases, cases::get_case, cases::history,
        cases::revise_details, cases::assign, cases::unassign, cases::route, cases::move_to_stage,
        cases::prioritize, cases::comment, cases::tag, cases::untag, cases::link, cases::resolve,
        cases::close, cases::reopen, cases::attach, cases::detach,
        files::upload, files::download, files::head_file, files::file_info, files::download_url,
        files::presigned_upload, files::complete_upload,
        commands::post_command, commands::get_command, commands::cancel_command,
        command_descriptions, event_descriptions, openapi_json,
        definitions::list_definitions, definitions::get_definition, definitions::post_definition,
        events::stream,
    ),
    components(schemas(
        Case, CaseStatus, Comment, casewire_domain::case::CaseLink, casewire_domain::case::Resolution,
        CaseSummary, cases::CasePage, cases::History, CommandRecord, CommandStatus, SortKey, Accepted, ErrorBody,
        casewire_domain::ErrorCode, casewire_ports::Rejection,
        CaseDefinition, definitions::DefinitionList, commands::GenericCommand,
        CaseCommand, OpenCase, ReviseDetails, AssignCase, UnassignCase, RouteCase, MoveToStage, PrioritizeCase,
        CommentOnCase, Visibility, TagCase, LinkCase, LinkRelation, ResolveCase, CloseCase, ReopenCase, Requester,
        AttachFile, DetachFile, FileFacts, casewire_domain::case::Attachment,
        casewire_ports::FileRecord, casewire_ports::FileState, files::Presigned, files::UploadRequest,
        CaseEvent, CaseOpened, DetailsRevised, CaseAssigned, CaseUnassigned, CaseRouted, StageChanged,
        CasePrioritized, CommentAdded, TagChanged, CaseLinked, CaseResolved, CaseClosed, CaseReopened,
        AttachmentAdded, AttachmentRemoved,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "cases", description = "Open and work cases"),
        (name = "commands", description = "Generic commands, their state and cancellation"),
        (name = "definitions", description = "Case definitions"),
        (name = "events", description = "The live event stream"),
        (name = "files", description = "Uploads, downloads and presigned URLs; attach files with /cases/{id}/attachments"),
        (name = "meta", description = "Descriptions of the API itself"),
    )
)]
#[derive(Debug)]
pub struct ApiDoc;

/// The OpenAPI document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", responses((status = 200, description = "OpenAPI 3.1 document")))]
#[get("/openapi.json")]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(&*DOCUMENT)
}

/// The document as served: utoipa's, plus the statuses every operation of
/// a kind can answer (built once).
static DOCUMENT: LazyLock<Value> = LazyLock::new(document);

/// The operations' methods as OpenAPI names them.
const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// The OpenAPI document with the statuses the API as a whole answers
/// declared on each operation they apply to: 401 (and 503: a store, the
/// bus, the issuer or the policy engine down) wherever a token is needed,
/// 400 wherever there is input, 413 and 415 wherever there is a body. Each
/// lists its codes from [`ErrorCode`], so the document can not drift from
/// the one table of codes.
pub fn document() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return doc;
    };
    for item in paths.values_mut().filter_map(Value::as_object_mut) {
        for (method, op) in item.iter_mut() {
            let Some(op) = op.as_object_mut().filter(|_| METHODS.contains(&method.as_str())) else {
                continue;
            };
            let secured = op.contains_key("security");
            let has_body = op.contains_key("requestBody");
            let has_input = has_body
                || op
                    .get("parameters")
                    .and_then(Value::as_array)
                    .is_some_and(|p| !p.is_empty());
            let common: [(bool, u16); 5] = [
                (secured, 401),
                (secured, 503),
                (has_input, 400),
                (has_body, 413),
                (has_body, 415),
            ];
            let responses = op.entry("responses").or_insert_with(|| Value::Object(Map::new()));
            if let Some(responses) = responses.as_object_mut() {
                for (_, status) in common.iter().filter(|(applies, _)| *applies) {
                    responses
                        .entry(status.to_string())
                        .or_insert_with(|| error_response(*status));
                }
            }
        }
    }
    doc
}

/// A response of `status` with the error body, naming the codes it carries.
fn error_response(status: u16) -> Value {
    let codes: Vec<String> = ErrorCode::ALL
        .iter()
        .filter(|c| c.status() == status)
        .map(|c| format!("`{}`", c.as_str()))
        .collect();
    serde_json::json!({
        "description": codes.join(", "),
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    })
}

/// The methods the document gives a request path (every template it
/// matches), or `None` when it matches none: the difference between 405
/// and 404.
pub fn allowed_methods(path: &str) -> Option<Vec<String>> {
    static TEMPLATES: LazyLock<Vec<(Vec<String>, Vec<String>)>> = LazyLock::new(|| {
        DOCUMENT
            .get("paths")
            .and_then(Value::as_object)
            .map(|paths| {
                paths
                    .iter()
                    .map(|(template, item)| {
                        let segments = template.split('/').map(str::to_owned).collect();
                        let methods = item
                            .as_object()
                            .map(|ops| {
                                ops.keys()
                                    .filter(|m| METHODS.contains(&m.as_str()))
                                    .map(|m| m.to_uppercase())
                                    .collect()
                            })
                            .unwrap_or_default();
                        (segments, methods)
                    })
                    .collect()
            })
            .unwrap_or_default()
    });
    let segments: Vec<&str> = path.split('/').collect();
    let matching: Vec<&(Vec<String>, Vec<String>)> = TEMPLATES
        .iter()
        .filter(|(template, _)| {
            template.len() == segments.len()
                && template
                    .iter()
                    .zip(&segments)
                    .all(|(t, s)| t == s || (t.starts_with('{') && t.ends_with('}') && !s.is_empty()))
        })
        .collect();
    // The most literal templates name the resource: `/files/uploads` is
    // the uploads resource, not a file whose id is "uploads".
    let literal = |t: &Vec<String>| t.iter().filter(|s| !s.starts_with('{')).count();
    let most = matching.iter().map(|(t, _)| literal(t)).max()?;
    let mut methods: Vec<String> = matching
        .iter()
        .filter(|(t, _)| literal(t) == most)
        .flat_map(|(_, methods)| methods.iter().cloned())
        .collect();
    if methods.is_empty() {
        return None;
    }
    methods.sort();
    methods.dedup();
    Some(methods)
}

fn components() -> Map<String, Value> {
    DOCUMENT
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// Replaces `$ref`s to components with the schemas themselves, so each
/// description stands alone as a JSON Schema.
fn inline(schema: &Value, components: &Map<String, Value>, depth: usize) -> Value {
    match schema {
        Value::Object(map) => {
            let target = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
                .and_then(|name| components.get(name));
            if let Some(target) = target
                && depth < 16
            {
                return inline(target, components, depth + 1);
            }
            Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), inline(v, components, depth)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| inline(v, components, depth)).collect()),
        other => other.clone(),
    }
}

fn describe(catalogue: &[(&str, &str)], key: impl Fn(&str) -> String) -> Value {
    let components = components();
    let mut out = Map::new();
    for (name, schema) in catalogue {
        let mut s = components
            .get(*schema)
            .map(|s| inline(s, &components, 0))
            .unwrap_or(Value::Null);
        if let Value::Object(m) = &mut s {
            m.insert(
                "$schema".into(),
                Value::String("https://json-schema.org/draft/2020-12/schema".into()),
            );
            m.insert("title".into(), Value::String((*schema).to_owned()));
        }
        out.insert(key(name), s);
    }
    Value::Object(out)
}

/// JSON Schemas of every command's `data`, keyed by command type.
#[utoipa::path(get, path = "/api/v1/commands/description", tag = "meta", responses((status = 200, description = "Command type → JSON Schema of its data")))]
#[get("/commands/description")]
pub async fn command_descriptions() -> HttpResponse {
    HttpResponse::Ok().json(describe(CaseCommand::CATALOGUE, str::to_owned))
}

/// JSON Schemas of every event's `data`, keyed by CloudEvents type.
#[utoipa::path(get, path = "/api/v1/events/description", tag = "meta", responses((status = 200, description = "CloudEvents type → JSON Schema of its data")))]
#[get("/events/description")]
pub async fn event_descriptions() -> HttpResponse {
    HttpResponse::Ok().json(describe(CaseEvent::CATALOGUE, |n| format!("casewire.case.{n}.v1")))
}
