//! `/api/v1/commands`: the generic command envelope for integrations, the
//! command log and cancellation.

use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse, get, post};
use casewire_domain::{Case, CaseCommand, ErrorCode};
use casewire_ports::Action;
use casewire_ports::{CancelResult, CommandRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::auth::Auth;
use crate::authz;
use crate::body::Body;
use crate::error::{ApiError, ErrorBody, required_json, serde_error};
use crate::routes::cases::resolve_case;
use crate::state::AppState;
use crate::submit::{Accepted, submit};

/// A command in the generic envelope.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenericCommand {
    /// Client-chosen id; resending the same id does not run the command twice.
    pub command_id: Option<Uuid>,
    /// The case id or key; for `case.open`, an optional id for the new case.
    pub case_id: Option<String>,
    /// The command, e.g. `case.assign` (see `/api/v1/commands/description`).
    #[serde(rename = "type")]
    pub command_type: String,
    /// The command's payload.
    #[serde(default)]
    pub data: Value,
}

/// One branch per command type: its `type`, the schema of its `data`, and
/// what `caseId` it takes. `data` is required (a missing one is `null`,
/// which no payload accepts), and so is `caseId` but for `case.open`.
impl utoipa::PartialSchema for GenericCommand {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{
            AdditionalProperties, KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type,
        };
        use utoipa::openapi::{Ref, RefOr};
        let uuid = |nullable: bool| {
            let object = ObjectBuilder::new().format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)));
            if nullable {
                object.schema_type(
                    [Type::String, Type::Null]
                        .into_iter()
                        .collect::<utoipa::openapi::schema::SchemaType>(),
                )
            } else {
                object.schema_type(Type::String)
            }
        };
        let mut one_of = OneOfBuilder::new().description(Some(
            "A command in the generic envelope: `type` names the command (see `/api/v1/commands/description`), \
             `data` is its payload, `caseId` the case's id or key (for `case.open`, an optional UUID for the new case) \
             and `commandId` a client-chosen id: resending the same id does not run the command twice.",
        ));
        for (name, payload) in CaseCommand::CATALOGUE {
            let opens = *name == "case.open";
            let case_id: RefOr<_> = if opens {
                uuid(true)
                    .pattern(Some(crate::routes::cases::UUID_PATTERN))
                    .description(Some("An id for the new case (else 400); a new one when absent."))
                    .into()
            } else {
                RefOr::Ref(Ref::from_schema_name("CaseRef"))
            };
            let mut branch = ObjectBuilder::new()
                .schema_type(Type::Object)
                .title(Some(*name))
                .property("commandId", uuid(true))
                .property("caseId", case_id)
                .property(
                    "type",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some([*name])),
                )
                .property("data", RefOr::Ref(Ref::from_schema_name(*payload)))
                .required("type")
                .required("data")
                .additional_properties(Some(AdditionalProperties::<utoipa::openapi::schema::Schema>::FreeForm(
                    false,
                )));
            if !opens {
                branch = branch.required("caseId");
            }
            one_of = one_of.item(branch);
        }
        one_of.into()
    }
}

impl utoipa::ToSchema for GenericCommand {}

/// Submit any command.
#[utoipa::path(
    post, path = "/api/v1/commands", tag = "commands", request_body = GenericCommand,
    params(("Prefer" = Option<String>, Header, description = "`wait=N` (RFC 7240)")),
    responses(
        (status = 202, body = Accepted), (status = 200, body = Case), (status = 201, body = Case),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[post("/commands")]
pub async fn post_command(
    state: Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let generic: GenericCommand = required_json(&body)?;
    if !CaseCommand::CATALOGUE
        .iter()
        .any(|(name, _)| *name == generic.command_type)
    {
        return Err(ApiError::new(
            ErrorCode::Validation,
            format!("unknown command type '{}'", generic.command_type),
        )
        .with_details(serde_json::json!({"field": "type"})));
    }
    let command: CaseCommand =
        serde_json::from_value(serde_json::json!({"type": generic.command_type, "data": generic.data}))
            .map_err(|e| serde_error(&e))?;
    if let Some(id) = generic.command_id {
        // A retry of a command we already have: answer with what we know.
        if let Some(existing) = state.platform.reads.get_command(id).await? {
            if existing.tenant != auth.tenant || existing.actor != auth.name {
                return Err(ApiError::new(ErrorCode::Conflict, "that command id is taken"));
            }
            return Ok(HttpResponse::Accepted().json(Accepted {
                command_id: existing.id,
                case_id: existing.case_id,
                key: None,
                task_id: None,
                status: existing.status,
            }));
        }
    }
    let case_id = match (&command, generic.case_id.as_deref()) {
        (CaseCommand::Open(_), Some(raw)) => raw.parse::<Uuid>().map_err(|_| {
            ApiError::bad_parameter("caseId of case.open must be a UUID")
                .with_details(serde_json::json!({"field": "caseId"}))
        })?,
        (CaseCommand::Open(_), None) => Uuid::now_v7(),
        (_, Some(raw)) => resolve_case(&state, &auth.tenant, raw).await?,
        (_, None) => {
            return Err(ApiError::new(ErrorCode::Validation, "caseId is required")
                .with_details(serde_json::json!({"field": "caseId"})));
        }
    };
    submit(&state, &auth, &req, case_id, command, generic.command_id).await
}

/// A command of the caller's tenant that the caller may do `action` on:
/// their own, or one on a case the policy lets them see (and, for a
/// cancel, work on). Anything else is 404, like the case itself.
async fn readable_command(state: &AppState, auth: &Auth, id: &str, action: Action) -> Result<CommandRecord, ApiError> {
    let not_found = || ApiError::not_found("command");
    let id: Uuid = id.parse().map_err(|_| not_found())?;
    let record = state
        .platform
        .reads
        .get_command(id)
        .await?
        .filter(|r| r.tenant == auth.tenant)
        .ok_or_else(not_found)?;
    if record.actor == auth.name {
        return Ok(record);
    }
    let case = authz::current_case(state, &auth.tenant, record.case_id)
        .await
        .map_err(|_| not_found())?;
    match authz::authorize(state, auth, action, &case).await {
        Ok(()) => Ok(record),
        Err(e) if e.code == ErrorCode::NotFound => Err(not_found()),
        Err(e) => Err(e),
    }
}

/// A command's state: pending, processing, processed, rejected (with the
/// reason) or cancelled.
#[utoipa::path(
    get, path = "/api/v1/commands/{id}", tag = "commands",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = CommandRecord), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/commands/{id}")]
pub async fn get_command(state: Data<AppState>, auth: Auth, id: Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(readable_command(&state, &auth, &id, Action::CommandRead).await?))
}

/// Cancel a command; works only while it is still pending.
#[utoipa::path(
    post, path = "/api/v1/commands/{id}/cancel", tag = "commands",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = CommandRecord), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/commands/{id}/cancel")]
pub async fn cancel_command(state: Data<AppState>, auth: Auth, id: Path<String>) -> Result<HttpResponse, ApiError> {
    let record = readable_command(&state, &auth, &id, Action::CommandCancel).await?;
    match state.platform.reads.cancel_command(record.id).await? {
        CancelResult::Cancelled(r) => {
            tracing::info!(command_id = %r.id, case_id = %r.case_id, "Cancelled a command");
            Ok(HttpResponse::Ok().json(r))
        }
        CancelResult::NotPending(r) => Err(ApiError::new(
            ErrorCode::NotPending,
            format!("the command is {:?} and can no longer be cancelled", r.status).to_lowercase(),
        )
        .with_details(serde_json::to_value(&r).unwrap_or_default())),
        CancelResult::NotFound => Err(ApiError::not_found("command")),
    }
}
