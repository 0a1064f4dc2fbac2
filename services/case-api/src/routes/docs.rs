//! `/api/v1/openapi.json` and the JSON-Schema descriptions of commands and
//! events, all generated from the Rust types with `utoipa`.

use std::sync::LazyLock;

use actix_web::web::Data;
use actix_web::{HttpResponse, get};
use casewire_domain::ErrorCode;
use casewire_domain::command::*;
use casewire_domain::event::*;
use casewire_domain::{Case, CaseCommand, CaseDefinition, CaseEvent, CaseStatus, Comment};
use casewire_ports::{CaseSummary, CommandRecord, CommandStatus, SortKey};
use casewire_runtime::Config;
use serde_json::{Map, Value};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::ErrorBody;
use crate::routes::{cases, commands, definitions, events, files, me, tasks, webhooks};
use crate::state::AppState;
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
        super::sla::list_calendars, super::sla::get_calendar, super::sla::post_calendar, super::sla::post_holidays, super::sla::case_sla, super::cases::permissions,
        super::stats::case_stats,
        events::stream,
        me::get_preferences, me::put_preferences, me::inbox, me::mark_read, me::mark_all_read, me::watch, me::unwatch,
        webhooks::create, webhooks::list, webhooks::remove, webhooks::rotate, webhooks::deliveries,
        tasks::list_tasks, tasks::create_task, tasks::claim_task, tasks::unclaim_task, tasks::assign_task, tasks::complete_task,
        tasks::cancel_task, tasks::set_task_retries,
        super::inbound::inbound_email,
        super::inbound::list_held,
        super::inbound::get_held,
        super::inbound::raw_held,
        super::inbound::release_held,
        super::inbound::drop_held,
    ),
    components(schemas(
        casewire_domain::types::CaseKey, casewire_domain::types::KeyPrefix, casewire_domain::types::QueueName,
        casewire_domain::types::Tag, casewire_domain::types::EmailAddress, casewire_domain::types::UserRef, cases::CaseRef,
        Case, CaseStatus, Comment, casewire_domain::case::CaseLink, casewire_domain::case::Resolution,
        CaseSummary, cases::CasePage, cases::History, CommandRecord, CommandStatus, SortKey, Accepted, ErrorBody,
        casewire_domain::ErrorCode, casewire_ports::Rejection,
        CaseDefinition, definitions::DefinitionList, commands::GenericCommand,
        casewire_domain::calendar::BusinessCalendar, super::sla::CalendarList, super::sla::CaseSla,
        casewire_domain::sla::Clock, casewire_domain::sla::Metric, super::cases::CasePermissions,
        casewire_application::stats::CaseStats, casewire_application::stats::Count, casewire_application::stats::Day,
        CaseCommand, OpenCase, ReviseDetails, AssignCase, UnassignCase, RouteCase, MoveToStage, PrioritizeCase,
        CommentOnCase, Visibility, TagCase, LinkCase, LinkRelation, ResolveCase, CloseCase, ReopenCase, Requester,
        AttachFile, DetachFile, FileFacts, casewire_domain::case::Attachment,
        casewire_ports::FileRecord, casewire_ports::FileState, files::Presigned, files::UploadRequest,
        CaseEvent, CaseOpened, DetailsRevised, CaseAssigned, CaseUnassigned, CaseRouted, StageChanged,
        CasePrioritized, CommentAdded, TagChanged, CaseLinked, CaseResolved, CaseClosed, CaseReopened,
        AttachmentAdded, AttachmentRemoved,
        casewire_ports::Preferences, casewire_ports::QuietHours, casewire_ports::Channel, casewire_ports::InboxItem,
        me::InboxPage, me::Marked, casewire_ports::WebhookSubscription, casewire_ports::WebhookAttempt,
        webhooks::NewWebhook, webhooks::WebhookWithSecret, webhooks::WebhookList, webhooks::AttemptList,
        casewire_domain::Task, casewire_domain::TaskKind, casewire_domain::TaskState, casewire_domain::task::TaskLock,
        casewire_domain::task::TaskFailure, casewire_domain::task::Incident, casewire_domain::task::TaskErrorRaised,
        casewire_domain::task::CreateTask, casewire_domain::task::TaskRef, casewire_domain::task::AssignTask,
        casewire_domain::task::CompleteTask, casewire_domain::task::CancelTask, casewire_domain::task::LockTask,
        casewire_domain::task::ExtendTaskLock, casewire_domain::task::FailTask, casewire_domain::task::RaiseTaskError,
        casewire_domain::task::SetTaskRetries,
        casewire_domain::task::TaskCreated, casewire_domain::task::TaskAssigned, casewire_domain::task::TaskCompleted,
        casewire_domain::task::TaskCancelled, casewire_domain::task::TaskLocked, casewire_domain::task::TaskUnlocked,
        casewire_domain::task::TaskFailed, casewire_domain::task::IncidentRaised, casewire_domain::task::TaskRetriesSet,
        tasks::TaskAssignee, tasks::TaskOutput, tasks::TaskCancellation, tasks::TaskRetries, tasks::NoBody,
        tasks::TaskList, casewire_ports::TaskItem,
        casewire_domain::email::MailThread, casewire_domain::email::MailAddress, casewire_domain::email::MailHeader,
        casewire_domain::email::ThreadedBy, casewire_domain::email::ReceiveEmail, casewire_domain::email::RecordBounce,
        casewire_domain::sla::RecordSla, casewire_domain::sla::Threshold,
        crate::inbound::Ingested,
        crate::routes::inbound::HeldList,
        casewire_ports::Held,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "cases", description = "Open and work cases"),
        (name = "commands", description = "Generic commands, their state and cancellation"),
        (name = "definitions", description = "Case definitions"),
        (name = "notifications", description = "Your preferences, inbox and watched cases"),
        (name = "tasks", description = "Human and external tasks of a case"),
        (name = "email", description = "Mail into cases: the inbound webhook and the quarantine"),
        (name = "sla", description = "Business calendars and SLA clocks"),
        (name = "webhooks", description = "The tenant's webhook subscriptions, signed per Standard Webhooks"),
        (name = "events", description = "The live event stream"),
        (name = "files", description = "Uploads, downloads and presigned URLs; attach files with /cases/{id}/attachments"),
        (name = "meta", description = "Descriptions of the API itself"),
    )
)]
#[derive(Debug)]
pub struct ApiDoc;

/// The OpenAPI document, with the limits of this server's configuration.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", responses((status = 200, description = "OpenAPI 3.1 document")))]
#[get("/openapi.json")]
pub async fn openapi_json(state: Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(&*state.openapi)
}

/// The document for `config`, built once per server (it is served as is).
pub fn for_config(config: &Config) -> Value {
    configured(DOCUMENT.clone(), config)
}

/// utoipa's document plus the statuses every operation of a kind can
/// answer, for the default configuration (built once): what paths and
/// methods exist, and the schemas the descriptions inline.
static DOCUMENT: LazyLock<Value> = LazyLock::new(|| configured(document(), &Config::default()));

/// The document with the limits the configuration sets: the largest page
/// of the case list (`api.max_page_size`) and the file types a presigned
/// upload may declare (`storage.allowed_types`).
pub fn configured(mut doc: Value, config: &Config) -> Value {
    if let Some(params) = doc
        .pointer_mut("/paths/~1api~1v1~1cases/get/parameters")
        .and_then(Value::as_array_mut)
    {
        for param in params.iter_mut().filter(|p| p["name"] == "limit") {
            param["schema"]["maximum"] = Value::from(config.api.max_page_size);
        }
    }
    if let Some(Value::Object(content_type)) =
        doc.pointer_mut("/components/schemas/UploadRequest/properties/contentType")
    {
        content_type.insert(
            "pattern".into(),
            Value::String(files::allowed_types_pattern(&config.storage.allowed_types)),
        );
    }
    doc
}

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
    // The API fills in an attachment's file facts itself: read-only (utoipa
    // drops `read_only` beside a reference).
    if let Some(Value::Object(file)) = doc.pointer_mut("/components/schemas/AttachFile/properties/file") {
        file.insert("readOnly".into(), Value::Bool(true));
    }
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
            // A parameter is absent or a string: never `null`.
            for param in op
                .get_mut("parameters")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Some(Value::Array(types)) = param.pointer_mut("/schema/type") {
                    types.retain(|t| t != "null");
                    if let [single] = types.as_slice() {
                        let single = single.clone();
                        param["schema"]["type"] = single;
                    }
                }
            }
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

#[cfg(test)]
mod tests {
    //! The document states what the server checks: whatever a schema of it
    //! admits, the check it stands for accepts.
    use casewire_domain::types::CaseKey;
    use serde_json::json;
    use uuid::Uuid;

    use super::*;

    /// A validator for the schema at `pointer` of the document, its
    /// references resolved within it.
    fn schema_at(doc: &Value, pointer: &str) -> jsonschema::Validator {
        let schema = doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("{pointer} is not in the document"));
        let root = json!({"components": doc["components"], "allOf": [schema]});
        jsonschema::validator_for(&root).unwrap()
    }

    /// The schema of a parameter of an operation.
    fn parameter(doc: &Value, path: &str, method: &str, name: &str) -> jsonschema::Validator {
        let params = doc["paths"][path][method]["parameters"].as_array().unwrap();
        let index = params.iter().position(|p| p["name"] == name).unwrap();
        let pointer = format!("/paths/{}/{method}/parameters/{index}/schema", path.replace('/', "~1"));
        schema_at(doc, &pointer)
    }

    /// Pseudo-random strings over `alphabet` (a fixed xorshift).
    fn strings(alphabet: &[&str], count: usize, max_units: usize) -> Vec<String> {
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        (0..count)
            .map(|_| {
                let units = (next() % (max_units as u64 + 1)) as usize;
                (0..units)
                    .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                    .collect()
            })
            .collect()
    }

    #[test]
    fn parameters_are_never_null() {
        let doc = document();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                for param in op["parameters"].as_array().into_iter().flatten() {
                    assert!(
                        !param["schema"].to_string().contains("\"null\""),
                        "{method} {path} {param}"
                    );
                }
            }
        }
    }

    #[test]
    fn case_paths_take_a_uuid_or_a_key() {
        let doc = document();
        let id = parameter(&doc, "/api/v1/cases/{id}", "get", "id");
        for ok in [
            "0190b6b4-6f1e-7a2b-9c3d-4e5f60718293",
            "0190B6B4-6F1E-7A2B-9C3D-4E5F60718293",
            "CMP-000042",
        ] {
            assert!(id.is_valid(&json!(ok)), "{ok}");
        }
        // Every single edit of a UUID and of a key, and some noise.
        let mut samples = strings(&["0", "9", "a", "F", "-", "C", "M", "P", "x", " "], 2_000, 40);
        for base in ["0190b6b4-6f1e-7a2b-9c3d-4e5f60718293", "CMP-000042", "CLMXYZ-1234567"] {
            for at in 0..=base.len() {
                for edit in ["", "0", "f", "G", "-", "C", "c", " ", "{", "é"] {
                    samples.push(format!("{}{edit}{}", &base[..at], &base[at..]));
                    if at < base.len() {
                        samples.push(format!("{}{edit}{}", &base[..at], &base[at + 1..]));
                    }
                }
            }
        }
        let mut admitted = 0;
        for s in samples {
            if id.is_valid(&json!(s)) {
                assert!(s.parse::<Uuid>().is_ok() || CaseKey::parse(&s).is_ok(), "{s:?}");
                admitted += 1;
            }
        }
        assert!(admitted > 100, "{admitted}");
    }

    #[test]
    fn generic_commands_need_their_data_and_a_case() {
        let doc = document();
        let command = schema_at(&doc, "/components/schemas/GenericCommand");
        for (name, _) in CaseCommand::CATALOGUE {
            // A missing `data` is `null`, which no payload takes.
            let null = serde_json::from_value::<CaseCommand>(json!({"type": name, "data": null}));
            assert!(null.is_err(), "{name}");
            assert!(
                !command.is_valid(&json!({"type": name, "caseId": "CMP-000001"})),
                "{name}"
            );
        }
        assert!(command.is_valid(&json!({"type": "case.close", "caseId": "CMP-000001", "data": {}})));
        assert!(
            !command.is_valid(&json!({"type": "case.close", "data": {}})),
            "caseId is required"
        );
        assert!(!command.is_valid(&json!({"type": "case.nope", "caseId": "CMP-000001", "data": {}})));
        let open = json!({"definition": "complaint", "title": "Kettle leaks"});
        assert!(command.is_valid(&json!({"type": "case.open", "data": open})));
        assert!(command.is_valid(&json!({"type": "case.open", "caseId": null, "data": open})));
        assert!(!command.is_valid(&json!({"type": "case.open", "caseId": "CMP-000001", "data": open})));
    }

    #[test]
    fn the_demo_definitions_are_valid_definitions() {
        let doc = document();
        let definition = schema_at(&doc, "/components/schemas/CaseDefinition");
        let body = schema_at(
            &doc,
            "/paths/~1api~1v1~1definitions/post/requestBody/content/application~1json/schema",
        );
        for source in [
            include_str!("../../../../definitions/customer-complaint.yaml"),
            include_str!("../../../../definitions/insurance-claim.yaml"),
            include_str!("../../../../definitions/it-service-request.yaml"),
        ] {
            let parsed = CaseDefinition::parse_yaml(source).unwrap();
            let json = serde_json::to_value(&parsed).unwrap();
            assert!(definition.is_valid(&json) && body.is_valid(&json), "{}", parsed.id);
        }
    }

    #[test]
    fn the_sort_enum_is_what_the_list_accepts() {
        let doc = document();
        let sort = parameter(&doc, "/api/v1/cases", "get", "sort");
        for value in cases::ListSort::VALUES {
            assert!(sort.is_valid(&json!(value)), "{value}");
            assert!(cases::parse_sort(Some(value)).is_ok(), "{value}");
        }
        for other in strings(&["key", "-", "updatedAt", "createdAt", "x", " "], 2_000, 3) {
            assert_eq!(
                sort.is_valid(&json!(other)),
                cases::parse_sort(Some(&other)).is_ok(),
                "{other:?}"
            );
        }
        let limit = parameter(&doc, "/api/v1/cases", "get", "limit");
        assert!(!limit.is_valid(&json!(0)) && limit.is_valid(&json!(1)) && limit.is_valid(&json!(200)));
        assert!(!limit.is_valid(&json!(201)));
    }

    #[test]
    fn the_configured_page_size_and_file_types_are_stated() {
        let mut config = Config::default();
        config.api.max_page_size = 50;
        config.storage.allowed_types = vec!["image/*".into(), "application/pdf".into()];
        let doc = for_config(&config);
        let limit = parameter(&doc, "/api/v1/cases", "get", "limit");
        assert!(limit.is_valid(&json!(50)) && !limit.is_valid(&json!(51)));
        let content_type = schema_at(&doc, "/components/schemas/UploadRequest/properties/contentType");
        for ok in [
            "image/png",
            "IMAGE/PNG; q=1",
            "image",
            "application/pdf",
            "Application/PDF;x",
        ] {
            assert!(content_type.is_valid(&json!(ok)), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/pdfx",
            " image/png",
            "imagex/png",
            "application/octet-stream",
            "",
        ] {
            assert!(!content_type.is_valid(&json!(bad)), "{bad}");
        }
    }

    #[test]
    fn file_types_admitted_are_allowed() {
        let mut odd = Config::default();
        odd.storage.allowed_types = ["a/b/*", " text/csv", "text/x;y", "*/*", "", "Text/HTML"]
            .map(String::from)
            .to_vec();
        for config in [Config::default(), odd] {
            file_types_admitted_are_allowed_by(&config);
        }
    }

    fn file_types_admitted_are_allowed_by(config: &Config) {
        let allowed = &config.storage.allowed_types;
        let doc = configured(document(), config);
        let content_type = schema_at(&doc, "/components/schemas/UploadRequest/properties/contentType");
        let pieces: Vec<&str> = "image|/|png|*|application|pdf|text|plain|csv|;| |X|IMAGE|Text|message|rfc822|zip|octet-stream|-|=|é|\t|a|b|x|y|html"
            .split('|')
            .collect();
        let mut admitted = 0;
        for s in strings(&pieces, 20_000, 5) {
            let admits = content_type.is_valid(&json!(s));
            let allowed_here = files::type_allowed(allowed, &s);
            if admits {
                assert!(allowed_here, "{s:?} is admitted but not allowed");
                admitted += 1;
            } else if s.chars().all(|c| c.is_ascii_graphic() || c == ' ') && !s.starts_with(' ') {
                // Printable ASCII is all the pattern admits, and it wants
                // the type at the start.
                let essence = s.split(';').next().unwrap_or_default();
                if !essence.contains(' ') {
                    assert!(!allowed_here, "{s:?} is allowed but not admitted");
                }
            }
        }
        assert!(admitted > 100, "{admitted}");
    }

    #[test]
    fn file_names_admitted_are_taken() {
        let doc = document();
        let header = parameter(&doc, "/api/v1/files", "post", "x-file-name");
        let pieces = [
            "a",
            "Z",
            "0",
            " ",
            ".",
            "/",
            "\\",
            "%",
            "%2F",
            "%5c",
            "%00",
            "%1f",
            "%7F",
            "%C2%85",
            "%C2%A0",
            "%c3%a9",
            "%E3%80%80",
            "%FF",
            "%e2%82",
            "%F0%9F%98%80",
            "~",
            "!",
            "%41",
            "%",
        ];
        let mut admitted = 0;
        for s in strings(&pieces, 30_000, 12) {
            if header.is_valid(&json!(s)) {
                let decoded = files::decode_file_name(s.trim());
                assert!(files::clean_name(&decoded).is_ok(), "{s:?} is admitted but refused");
                admitted += 1;
            }
        }
        assert!(admitted > 1000, "{admitted}");
        assert!(header.is_valid(&json!("r%C3%A9sum%C3%A9.pdf")));
        assert!(header.is_valid(&json!("C:\\docs\\report 2024.pdf")));
        assert!(!header.is_valid(&json!("a".repeat(256))));

        let body = schema_at(&doc, "/components/schemas/UploadRequest/properties/name");
        let pieces = [
            "a", " ", "/", "\\", "\u{0}", "\u{85}", "\u{a0}", "\u{3000}", "é", "😀", "\u{feff}", ".",
        ];
        let mut admitted = 0;
        for s in strings(&pieces, 30_000, 70) {
            if body.is_valid(&json!(s)) {
                assert!(files::clean_name(&s).is_ok(), "{s:?} is admitted but refused");
                admitted += 1;
            }
        }
        assert!(admitted > 1000, "{admitted}");
        assert!(body.is_valid(&json!("x".repeat(255))) && !body.is_valid(&json!("x".repeat(256))));
    }

    #[test]
    fn checksums_admitted_are_read() {
        use base64::Engine as _;
        let doc = document();
        let header = parameter(&doc, "/api/v1/files", "post", "x-checksum-sha256");
        let hex = "Ab".repeat(32);
        let b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        for ok in [hex.as_str(), b64.as_str()] {
            assert!(header.is_valid(&json!(ok)) && files::parse_sha256(ok).is_ok(), "{ok}");
        }
        let pieces = ["A", "E", "B", "f", "0", "8", "9", "+", "/", "=", "g", "w", "x"];
        let mut admitted = 0;
        for len in [43, 44, 45, 63, 64, 65] {
            for s in strings(&pieces, 3_000, len) {
                let mut s: String = s.chars().chain(std::iter::repeat('A')).take(len).collect();
                if len == 44 {
                    s.replace_range(43.., "=");
                }
                let admits = header.is_valid(&json!(s));
                assert_eq!(admits, files::parse_sha256(&s).is_ok(), "{s:?}");
                admitted += usize::from(admits);
            }
        }
        // Padded base64 of 32 bytes: every last character the decoder takes.
        for last in ('A'..='Z').chain('a'..='z').chain('0'..='9').chain(['+', '/']) {
            let s = format!("{}{last}=", "A".repeat(42));
            assert_eq!(header.is_valid(&json!(s)), files::parse_sha256(&s).is_ok(), "{s:?}");
            admitted += usize::from(header.is_valid(&json!(s)));
        }
        assert!(admitted >= 16, "{admitted}");
    }
}
