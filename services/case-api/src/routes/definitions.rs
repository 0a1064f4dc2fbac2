//! `/api/v1/definitions`: import (each import is a new version) and read.

use actix_web::web::{Data, Path, Query};
use actix_web::{HttpResponse, get, post};
use casewire_domain::types::TenantId;
use casewire_domain::{CaseDefinition, ErrorCode};
use casewire_ports::Action;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Auth;
use crate::authz;
use crate::body::Body;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// The definitions of a tenant.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DefinitionList {
    pub items: Vec<CaseDefinition>,
}

/// The newest version of every definition.
#[utoipa::path(
    get, path = "/api/v1/definitions", tag = "definitions",
    responses((status = 200, body = DefinitionList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/definitions")]
pub async fn list_definitions(state: Data<AppState>, auth: Auth) -> Result<HttpResponse, ApiError> {
    authz::require(&state, &auth, Action::DefinitionRead).await?;
    let items = state.platform.reads.list_definitions(&auth.tenant).await?;
    Ok(HttpResponse::Ok().json(DefinitionList { items }))
}

/// Query of one definition.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VersionParam {
    /// A version (versions count from 1); the newest when absent.
    #[param(minimum = 1)]
    pub version: Option<u32>,
}

/// One definition.
#[utoipa::path(
    get, path = "/api/v1/definitions/{id}", tag = "definitions",
    params(("id" = String, Path, pattern = "^[a-z0-9-]+$", description = "A definition id: a slug of a-z, 0-9 and `-`"), VersionParam),
    responses((status = 200, body = CaseDefinition), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/definitions/{id}")]
pub async fn get_definition(
    state: Data<AppState>,
    auth: Auth,
    id: Path<String>,
    q: Query<VersionParam>,
) -> Result<HttpResponse, ApiError> {
    authz::require(&state, &auth, Action::DefinitionRead).await?;
    let def = state
        .platform
        .reads
        .get_definition(&auth.tenant, &id, q.version)
        .await?;
    def.map(|d| HttpResponse::Ok().json(d))
        .ok_or_else(|| ApiError::not_found("definition"))
}

/// Imports a definition and stores it as the next version of its id.
pub async fn import(state: &AppState, tenant: &TenantId, source: &str) -> Result<CaseDefinition, ApiError> {
    // Parsing and compiling the schema is CPU work of unbounded size: off
    // the async threads, so one large import does not stall other requests.
    let owned = source.to_owned();
    let def = tokio::task::spawn_blocking(move || CaseDefinition::parse_yaml(&owned))
        .await
        .map_err(|e| ApiError::internal(&e))??;
    for (kind, t) in &def.notifications.templates {
        casewire_notify::render::check_template(&t.subject, &t.text, t.html.as_deref()).map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidDefinition,
                format!("notifications.templates.{kind}: {e}"),
            )
        })?;
    }
    let stored = state.platform.reads.put_definition(tenant, &def).await?;
    // Its access groups count from the next request on.
    state.access.refresh(&*state.platform.reads, tenant).await?;
    tracing::info!(definition = %stored.id, version = stored.version, "Imported a case definition");
    Ok(stored)
}

/// Import a definition (YAML or JSON body). Each import is a new version.
#[utoipa::path(
    post, path = "/api/v1/definitions", tag = "definitions",
    request_body(
        content((String = "application/yaml"), (CaseDefinition = "application/json")),
        description = "The definition in YAML, or in JSON (which is YAML too); the content type is not looked at. \
            Its rules are those of `CaseDefinition`, cross-references included (else 422 `CW-INVALID-DEFINITION`)."
    ),
    responses((status = 201, body = CaseDefinition), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/definitions")]
pub async fn post_definition(state: Data<AppState>, auth: Auth, body: Body) -> Result<HttpResponse, ApiError> {
    authz::require(&state, &auth, Action::DefinitionImport).await?;
    let source =
        std::str::from_utf8(&body).map_err(|_| ApiError::bad_parameter("the definition must be UTF-8 text"))?;
    let stored = import(&state, &auth.tenant, source).await?;
    Ok(HttpResponse::Created().json(stored))
}
