//! `/api/v1/cases`: opening, one task endpoint per command, the list, the
//! detail (with `asOf`) and the history.

use actix_web::http::header;
use actix_web::web::{Data, Path, Query};
use actix_web::{HttpRequest, HttpResponse, delete, get, post};
use casewire_domain::command::*;
use casewire_domain::types::{CaseKey, QueueName, Tag, TenantId};
use casewire_domain::{Case, CaseCommand, ErrorCode};
use casewire_ports::Action;
use casewire_ports::envelope::event_to_json;
use casewire_ports::event_store::replay;
use casewire_ports::{CaseQuery, CaseSummary, Cursor, Resource, SlaState, SortKey};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Auth;
use crate::authz;
use crate::body::Body;
use crate::error::{ApiError, ErrorBody, json_body, required_json};
use crate::state::AppState;
use crate::submit::{Accepted, submit};

/// The hyphenated form of a UUID, as an ECMA-262 pattern.
pub const UUID_PATTERN: &str = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

/// How paths (and `caseId`) name a case: its id (a UUID) or its key such as
/// `CMP-000042`. Anything else names no case: 404.
#[derive(Debug)]
pub struct CaseRef;

impl utoipa::PartialSchema for CaseRef {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AnyOfBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
        use utoipa::openapi::{Ref, RefOr};
        AnyOfBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "A case's id (a UUID) or its key (such as `CMP-000042`); anything else names no case (404).",
            ))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
                    .pattern(Some(UUID_PATTERN)),
            )
            .item(RefOr::Ref(Ref::from_schema_name("CaseKey")))
            .into()
    }
}

impl utoipa::ToSchema for CaseRef {
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        use utoipa::PartialSchema as _;
        schemas.push(("CaseKey".into(), CaseKey::schema()));
    }
}

/// Finds a case id from a UUID or a human key such as `CMP-000042`.
pub async fn resolve_case(state: &AppState, tenant: &TenantId, raw: &str) -> Result<Uuid, ApiError> {
    if let Ok(id) = raw.parse::<Uuid>() {
        return Ok(id);
    }
    let key = CaseKey::parse(raw).map_err(|_| ApiError::not_found("case"))?;
    state
        .platform
        .reads
        .get_case_by_key(tenant, &key)
        .await?
        .map(|c| c.id)
        .ok_or_else(|| ApiError::not_found("case"))
}

/// Open a case. 202 with `{commandId, caseId, key}`; with `Prefer: wait=N`,
/// 201 with the case or the rejection.
#[utoipa::path(
    post, path = "/api/v1/cases", tag = "cases", request_body = OpenCase,
    params(("Prefer" = Option<String>, Header, description = "`wait=N`: wait up to N seconds for the outcome (RFC 7240)")),
    responses(
        (status = 202, description = "Accepted", body = Accepted),
        (status = 201, description = "Opened (with Prefer: wait)", body = Case),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[post("/cases")]
pub async fn open_case(
    state: Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let open: OpenCase = required_json(&body)?;
    submit(&state, &auth, &req, Uuid::now_v7(), CaseCommand::Open(open), None).await
}

pub(crate) async fn task(
    state: &AppState,
    auth: &Auth,
    req: &HttpRequest,
    id: &str,
    command: CaseCommand,
) -> Result<HttpResponse, ApiError> {
    let case_id = resolve_case(state, &auth.tenant, id).await?;
    submit(state, auth, req, case_id, command, None).await
}

/// Generates one task endpoint: a POST that turns its body into a command.
macro_rules! task_endpoint {
    ($name:ident, $route:literal, $body:ty, $variant:ident, $doc:literal, $parse:ident) => {
        #[doc = $doc]
        #[utoipa::path(
            post, path = concat!("/api/v1", $route), tag = "cases", request_body = $body,
            params(
                ("id" = CaseRef, Path, description = "Case id or key"),
                ("Prefer" = Option<String>, Header, description = "`wait=N` (RFC 7240)")
            ),
            responses(
                (status = 202, description = "Accepted", body = Accepted),
                (status = 200, description = "Done (with Prefer: wait)", body = Case),
                (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
                (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)
            ),
            security(("bearer" = []))
        )]
        #[post($route)]
        pub async fn $name(state: Data<AppState>, auth: Auth, req: HttpRequest, id: Path<String>, body: Body) -> Result<HttpResponse, ApiError> {
            let payload: $body = $parse(&body)?;
            task(&state, &auth, &req, &id, CaseCommand::$variant(payload)).await
        }
    };
}

task_endpoint!(
    revise_details,
    "/cases/{id}/details",
    ReviseDetails,
    ReviseDetails,
    "Revise title, description or data.",
    required_json
);
task_endpoint!(
    assign,
    "/cases/{id}/assign",
    AssignCase,
    Assign,
    "Assign the case to a person.",
    required_json
);
task_endpoint!(
    unassign,
    "/cases/{id}/unassign",
    UnassignCase,
    Unassign,
    "Remove the assignee.",
    json_body
);
task_endpoint!(
    route,
    "/cases/{id}/route",
    RouteCase,
    Route,
    "Send the case to a queue.",
    required_json
);
task_endpoint!(
    move_to_stage,
    "/cases/{id}/stage",
    MoveToStage,
    MoveToStage,
    "Move along an allowed transition.",
    required_json
);
task_endpoint!(
    prioritize,
    "/cases/{id}/priority",
    PrioritizeCase,
    Prioritize,
    "Change the priority.",
    required_json
);
task_endpoint!(
    comment,
    "/cases/{id}/comments",
    CommentOnCase,
    Comment,
    "Comment, optionally replying to `parentId`.",
    required_json
);
task_endpoint!(tag, "/cases/{id}/tags", TagCase, Tag, "Add a tag.", required_json);
task_endpoint!(
    link,
    "/cases/{id}/links",
    LinkCase,
    Link,
    "Link to another case.",
    required_json
);
task_endpoint!(
    resolve,
    "/cases/{id}/resolve",
    ResolveCase,
    Resolve,
    "Resolve with a resolution code.",
    required_json
);
task_endpoint!(
    close,
    "/cases/{id}/close",
    CloseCase,
    Close,
    "Close a resolved case.",
    json_body
);
task_endpoint!(
    reopen,
    "/cases/{id}/reopen",
    ReopenCase,
    Reopen,
    "Reopen a resolved or closed case.",
    json_body
);

/// Attach an uploaded file (`{"fileId": ...}`); name, type, size and
/// sha256 come from the file's record.
#[utoipa::path(
    post, path = "/api/v1/cases/{id}/attachments", tag = "cases", request_body = AttachFile,
    params(("id" = CaseRef, Path, description = "Case id or key"), ("Prefer" = Option<String>, Header)),
    responses((status = 202, body = Accepted), (status = 200, body = Case), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/cases/{id}/attachments")]
pub async fn attach(
    state: Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    id: Path<String>,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let payload: AttachFile = required_json(&body)?;
    task(&state, &auth, &req, &id, CaseCommand::Attach(payload)).await
}

/// Remove an attachment; the file stays in the case's history.
#[utoipa::path(
    delete, path = "/api/v1/cases/{id}/attachments/{fileId}", tag = "cases",
    params(("id" = CaseRef, Path, description = "Case id or key"), ("fileId" = Uuid, Path), ("Prefer" = Option<String>, Header)),
    responses((status = 202, body = Accepted), (status = 200, body = Case), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []))
)]
#[delete("/cases/{id}/attachments/{fileId}")]
pub async fn detach(
    state: Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    path: Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, file) = path.into_inner();
    let file_id = file.parse::<Uuid>().map_err(|_| ApiError::not_found("attachment"))?;
    task(&state, &auth, &req, &id, CaseCommand::Detach(DetachFile { file_id })).await
}

/// Remove a tag.
#[utoipa::path(
    delete, path = "/api/v1/cases/{id}/tags/{tag}", tag = "cases",
    params(("id" = CaseRef, Path, description = "Case id or key"), ("tag" = Tag, Path), ("Prefer" = Option<String>, Header)),
    responses((status = 202, body = Accepted), (status = 200, body = Case), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []))
)]
#[delete("/cases/{id}/tags/{tag}")]
pub async fn untag(
    state: Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    path: Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, raw_tag) = path.into_inner();
    let parsed = Tag::parse(&raw_tag)?;
    task(&state, &auth, &req, &id, CaseCommand::Untag(TagCase { tag: parsed })).await
}

/// Query of the case list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    pub stage: Option<String>,
    pub queue: Option<String>,
    /// A user name, or `me`.
    pub assignee: Option<String>,
    /// `true`: only cases nobody is assigned to (not with `assignee`).
    pub unassigned: Option<bool>,
    pub priority: Option<String>,
    pub tag: Option<String>,
    /// `open`, `resolved` or `closed`.
    pub status: Option<String>,
    pub definition: Option<String>,
    /// Full-text search over key, title, description, comments, tags and requester.
    pub q: Option<String>,
    /// Cases whose SLA clocks are `breached` (a clock not yet met is past
    /// its goal), `at-risk` (past a warning time, not breached) or `ok`
    /// (neither, cases without clocks included), now. Staff only, like the
    /// clocks (else 403).
    #[param(inline, value_type = Option<SlaState>)]
    pub sla: Option<String>,
    /// `updatedAt`, `createdAt`, `key` or `slaDue` (the earliest due time
    /// of a running SLA clock, cases without one last; staff only); prefix
    /// `-` for descending. Default `-updatedAt`.
    #[param(inline, value_type = Option<ListSort>)]
    pub sort: Option<String>,
    /// Page size: 1 to `api.max_page_size` (200 unless configured; the
    /// document states the configured maximum). Default
    /// `api.default_page_size` (25 unless configured).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<usize>,
    /// `nextCursor` of the previous page: opaque, and only a cursor this API
    /// issued (else 400 `CW-BAD-CURSOR`). Cursors are unpadded base64url, 68
    /// characters or more.
    #[param(pattern = "^[A-Za-z0-9_-]+$", min_length = 68)]
    pub cursor: Option<String>,
}

/// The orders of the case list: a sort key, prefixed with `-` for
/// descending.
#[derive(Debug)]
pub struct ListSort;

impl ListSort {
    /// Every value `sort` takes.
    pub const VALUES: [&'static str; 8] = [
        "updatedAt",
        "-updatedAt",
        "createdAt",
        "-createdAt",
        "key",
        "-key",
        "slaDue",
        "-slaDue",
    ];
}

impl utoipa::PartialSchema for ListSort {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(ListSort::VALUES))
            .into()
    }
}

impl utoipa::ToSchema for ListSort {}

/// A page of cases.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CasePage {
    pub items: Vec<CaseSummary>,
    pub next_cursor: Option<String>,
}

/// List cases, filtered, sorted and paged by cursor.
#[utoipa::path(
    get, path = "/api/v1/cases", tag = "cases", params(ListParams),
    responses((status = 200, body = CasePage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/cases")]
pub async fn list_cases(
    state: Data<AppState>,
    auth: Auth,
    params: Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let p = params.into_inner();
    let api = &state.platform.config.api;
    let (sort, descending) = parse_sort(p.sort.as_deref())?;
    let limit = p.limit.unwrap_or(api.default_page_size);
    if limit == 0 || limit > api.max_page_size {
        return Err(
            ApiError::bad_parameter(format!("limit must be between 1 and {}", api.max_page_size))
                .with_details(serde_json::json!({"field": "limit"})),
        );
    }
    let after = match &p.cursor {
        Some(c) => Some(
            Cursor::decode(c)
                .ok_or_else(|| ApiError::new(ErrorCode::BadCursor, "the cursor is not one this API issued"))?,
        ),
        None => None,
    };
    let sla = match p.sla.as_deref() {
        None => None,
        Some(raw) => Some(SlaState::parse(raw).ok_or_else(|| {
            ApiError::bad_parameter(format!("sla '{raw}' is not one of breached, at-risk, ok"))
                .with_details(serde_json::json!({"field": "sla"}))
        })?),
    };
    let unassigned = p.unassigned.unwrap_or(false);
    if unassigned && p.assignee.is_some() {
        return Err(
            ApiError::bad_parameter("assignee and unassigned=true exclude each other")
                .with_details(serde_json::json!({"field": "unassigned"})),
        );
    }
    let visible = authz::filter(&state, &auth).await?;
    // Only a search or the SLA can touch internal work; skip the decision otherwise.
    let searching = p.q.as_deref().is_some_and(|q| !q.trim().is_empty());
    let asks_sla = sla.is_some() || sort == SortKey::SlaDue;
    let staff = if searching || asks_sla {
        authz::allowed(&state, &auth, authz::READ_INTERNAL).await?
    } else {
        true
    };
    if asks_sla && !staff {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "the SLA filter and sort are for staff: a requester sees the case, not how late it is",
        ));
    }
    let public_text_only = searching && !staff;
    let (Some(queue), Some(tag_filter)) = (
        filter_value(p.queue, QueueName::parse),
        filter_value(p.tag.map(|t| t.to_lowercase()), Tag::parse),
    ) else {
        return Ok(HttpResponse::Ok().json(CasePage {
            items: vec![],
            next_cursor: None,
        }));
    };
    let query = CaseQuery {
        stage: p.stage,
        queue,
        assignee: p.assignee.map(|a| if a == "me" { auth.name.clone() } else { a }),
        unassigned,
        priority: p.priority,
        tag: tag_filter,
        status: p.status,
        definition: p.definition,
        text: p.q.filter(|q| !q.trim().is_empty()),
        public_text_only,
        visible: Some(visible.clauses),
        sla: sla.map(|s| (s, chrono::Utc::now())),
        sort,
        descending,
        limit,
        after,
    };
    let mut page = state.platform.reads.list_cases(&visible.tenant, &query).await?;
    if !page.items.iter().all(|c| c.sla_due_at.is_none())
        && !authz::allowed(&state, &auth, authz::READ_INTERNAL).await?
    {
        page.items.iter_mut().for_each(|c| c.sla_due_at = None);
    }
    Ok(HttpResponse::Ok().json(CasePage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// A list filter as its type: `Some(None)` for no filter, `None` for one
/// that no case can match. That is a text the type refuses, or one that
/// parsing would change (it trims): the store compared the text as given,
/// so a padded queue found nothing, and still does.
fn filter_value<T: AsRef<str>>(
    raw: Option<String>,
    parse: impl Fn(String) -> Result<T, casewire_domain::DomainError>,
) -> Option<Option<T>> {
    match raw {
        None => Some(None),
        Some(raw) => parse(raw.clone()).ok().filter(|v| v.as_ref() == raw).map(Some),
    }
}

/// `sort` of the case list: the key, and whether descending (`-key`).
pub(crate) fn parse_sort(raw: Option<&str>) -> Result<(SortKey, bool), ApiError> {
    let (descending, sort_name) = match raw {
        Some(s) => s.strip_prefix('-').map_or((false, s), |rest| (true, rest)),
        None => (true, "updatedAt"),
    };
    let sort = match sort_name {
        "updatedAt" => SortKey::UpdatedAt,
        "createdAt" => SortKey::CreatedAt,
        "key" => SortKey::Key,
        "slaDue" => SortKey::SlaDue,
        other => {
            return Err(ApiError::bad_parameter(format!(
                "sort '{other}' is not one of updatedAt, createdAt, key, slaDue"
            ))
            .with_details(serde_json::json!({"field": "sort"})));
        }
    };
    Ok((sort, descending))
}

/// Query of the case detail.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct DetailParams {
    /// RFC 3339 time: the case as it was then, rebuilt from its events.
    #[param(value_type = Option<DateTime<Utc>>)]
    pub as_of: Option<String>,
}

fn etag_matches(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == etag || t == "*")
        })
}

/// The case detail. Its revision is the ETag; `If-None-Match` gives 304.
#[utoipa::path(
    get, path = "/api/v1/cases/{id}", tag = "cases",
    params(("id" = CaseRef, Path, description = "Case id or key"), DetailParams, ("If-None-Match" = Option<String>, Header)),
    responses((status = 200, body = Case), (status = 304, description = "Not modified"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/cases/{id}")]
pub async fn get_case(
    state: Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    id: Path<String>,
    params: Query<DetailParams>,
) -> Result<HttpResponse, ApiError> {
    let case_id = resolve_case(&state, &auth.tenant, &id).await?;
    // Visibility follows the case as it is now, also for an earlier state.
    let now = state
        .platform
        .reads
        .get_case(&auth.tenant, case_id)
        .await?
        .ok_or_else(|| ApiError::not_found("case"))?;
    authz::authorize(&state, &auth, Action::CaseRead, &now).await?;
    let case = match &params.as_of {
        Some(raw) => {
            let at: DateTime<Utc> = DateTime::parse_from_rfc3339(raw)
                .map_err(|e| {
                    ApiError::bad_parameter(format!("asOf must be an RFC 3339 time: {e}"))
                        .with_details(serde_json::json!({"field": "asOf"}))
                })?
                .with_timezone(&Utc);
            let events = state.platform.events.load(&auth.tenant, case_id).await?;
            replay(&events, Some(at))?
        }
        None => Some(now.clone()),
    };
    let mut case = case.ok_or_else(|| ApiError::not_found("case"))?;
    if authz::has_internal(&case)
        && !authz::decide(&state, &auth, authz::READ_INTERNAL, Some(&Resource::of(&now)))
            .await?
            .allow
    {
        authz::hide_internal_comments(&mut case);
    }
    let etag = format!("\"{}\"", case.revision);
    if etag_matches(&req, &etag) {
        return Ok(HttpResponse::NotModified().insert_header((header::ETAG, etag)).finish());
    }
    Ok(HttpResponse::Ok().insert_header((header::ETAG, etag)).json(case))
}

/// The case history.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct History {
    /// CloudEvents (structured JSON), oldest first.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<serde_json::Value>,
}

/// The case's events, oldest first, as CloudEvents.
#[utoipa::path(
    get, path = "/api/v1/cases/{id}/history", tag = "cases",
    params(("id" = CaseRef, Path, description = "Case id or key")),
    responses((status = 200, body = History), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/cases/{id}/history")]
pub async fn history(state: Data<AppState>, auth: Auth, id: Path<String>) -> Result<HttpResponse, ApiError> {
    let case_id = resolve_case(&state, &auth.tenant, &id).await?;
    let case = authz::current_case(&state, &auth.tenant, case_id).await?;
    authz::authorize(&state, &auth, Action::CaseHistory, &case).await?;
    let timeline = state.platform.reads.timeline(&auth.tenant, case_id).await?;
    let internal = !timeline.iter().any(authz::is_internal_comment)
        || authz::decide(&state, &auth, authz::READ_INTERNAL, Some(&Resource::of(&case)))
            .await?
            .allow;
    Ok(HttpResponse::Ok().json(History {
        items: timeline
            .iter()
            .filter(|r| internal || !authz::is_internal_comment(r))
            .map(event_to_json)
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn list_filters_that_no_case_can_match_are_told_apart_from_no_filter() {
        assert_eq!(filter_value(None, QueueName::parse), Some(None));
        assert_eq!(
            filter_value(Some("support".into()), QueueName::parse),
            Some(Some(QueueName::parse("support").unwrap()))
        );
        for unmatched in ["Bad Queue", "", " support"] {
            assert_eq!(
                filter_value(Some(unmatched.into()), QueueName::parse),
                None,
                "{unmatched:?}"
            );
        }
        assert_eq!(
            filter_value(Some("vip".into()), Tag::parse),
            Some(Some(Tag::parse("vip").unwrap()))
        );
    }
}

/// What the caller may do on a case now.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CasePermissions {
    /// The actions the policy allows the caller on this case (of
    /// `case.*` and `task.*`), e.g. `case.assign`, `case.comment.internal`.
    pub actions: Vec<String>,
}

/// The case-level actions a client may ask about.
const CASE_ACTIONS: &[Action] = &[
    Action::CaseRead,
    Action::CaseHistory,
    Action::CaseReviseDetails,
    Action::CaseAssign,
    Action::CaseUnassign,
    Action::CaseRoute,
    Action::CaseMoveToStage,
    Action::CasePrioritize,
    Action::CaseCommentPublic,
    Action::CaseCommentInternal,
    Action::CaseCommentReadInternal,
    Action::CaseTag,
    Action::CaseUntag,
    Action::CaseLink,
    Action::CaseAttach,
    Action::CaseDetach,
    Action::CaseResolve,
    Action::CaseClose,
    Action::CaseReopen,
    Action::TaskCreate,
    Action::TaskWork,
    Action::TaskManage,
];

/// The actions the policy allows the caller on the case, decided as each
/// command would be: what a client shows as buttons (a button the policy
/// forbids is not offered). The command is still decided when sent.
#[utoipa::path(
    get, path = "/api/v1/cases/{id}/permissions", tag = "cases",
    params(("id" = CaseRef, Path, description = "Case id or key")),
    responses((status = 200, body = CasePermissions), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/cases/{id}/permissions")]
pub async fn permissions(state: Data<AppState>, auth: Auth, id: Path<String>) -> Result<HttpResponse, ApiError> {
    let case_id = resolve_case(&state, &auth.tenant, &id).await?;
    let case = authz::current_case(&state, &auth.tenant, case_id).await?;
    authz::authorize(&state, &auth, Action::CaseRead, &case).await?;
    let resource = Resource::of(&case);
    let mut actions = Vec::new();
    for action in CASE_ACTIONS {
        if authz::decide(&state, &auth, *action, Some(&resource)).await?.allow {
            actions.push(action.as_str().to_owned());
        }
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(CasePermissions { actions }))
}
