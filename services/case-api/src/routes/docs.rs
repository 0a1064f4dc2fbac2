//! `/api/v1/openapi.json` and the JSON-Schema descriptions of commands and
//! events, all generated from the Rust types with `utoipa`.

use actix_web::{HttpResponse, get};
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
    HttpResponse::Ok().json(ApiDoc::openapi())
}

fn components() -> Map<String, Value> {
    let doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    doc.pointer("/components/schemas")
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
