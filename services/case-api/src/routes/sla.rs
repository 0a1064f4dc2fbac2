//! Business calendars (`/api/v1/calendars`: import, each a new version, and
//! read) and a case's SLA clocks (`/api/v1/cases/{id}/sla`), computed from
//! its events, its definition and the newest version of its calendar at the
//! time of the request, so editing a calendar moves every open clock.

use actix_web::web::{Data, Path, Query};
use actix_web::{HttpResponse, get, http::header, post};
use casewire_domain::calendar::{BusinessCalendar, holidays_from_ical};
use casewire_domain::sla::Clock;
use casewire_ports::Action;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Auth;
use crate::authz;
use crate::body::Body;
use crate::error::{ApiError, ErrorBody};
use crate::routes::cases::resolve_case;
use crate::routes::definitions::VersionParam;
use crate::state::AppState;

/// The calendars of a tenant.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CalendarList {
    pub items: Vec<BusinessCalendar>,
}

/// The newest version of every calendar.
#[utoipa::path(
    get, path = "/api/v1/calendars", tag = "sla",
    responses((status = 200, body = CalendarList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/calendars")]
pub async fn list_calendars(state: Data<AppState>, auth: Auth) -> Result<HttpResponse, ApiError> {
    authz::require(&state, &auth, Action::DefinitionRead).await?;
    let items = state.platform.reads.list_calendars(&auth.tenant).await?;
    Ok(HttpResponse::Ok().json(CalendarList { items }))
}

/// One calendar.
#[utoipa::path(
    get, path = "/api/v1/calendars/{id}", tag = "sla",
    params(("id" = String, Path, pattern = "^[a-z0-9-]+$", description = "A calendar id"), VersionParam),
    responses((status = 200, body = BusinessCalendar), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/calendars/{id}")]
pub async fn get_calendar(
    state: Data<AppState>,
    auth: Auth,
    id: Path<String>,
    q: Query<VersionParam>,
) -> Result<HttpResponse, ApiError> {
    authz::require(&state, &auth, Action::DefinitionRead).await?;
    let cal = state.platform.reads.get_calendar(&auth.tenant, &id, q.version).await?;
    cal.map(|c| HttpResponse::Ok().json(c))
        .ok_or_else(|| ApiError::not_found("calendar"))
}

/// Import a calendar (YAML or JSON). Each import is a new version, and the
/// open clocks on it count by it from then on.
#[utoipa::path(
    post, path = "/api/v1/calendars", tag = "sla",
    request_body(content((String = "application/yaml"), (BusinessCalendar = "application/json")),
        description = "`id`, `timeZone` (IANA), `hours` per weekday (`HH:MM-HH:MM` ranges), `holidays`; else 422 `CW-INVALID-DEFINITION`"),
    responses((status = 201, body = BusinessCalendar), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/calendars")]
pub async fn post_calendar(state: Data<AppState>, auth: Auth, body: Body) -> Result<HttpResponse, ApiError> {
    authz::require(&state, &auth, Action::DefinitionImport).await?;
    let source = std::str::from_utf8(&body).map_err(|_| ApiError::bad_parameter("the calendar must be UTF-8 text"))?;
    let cal = BusinessCalendar::parse_yaml(source)?;
    let stored = state.platform.reads.put_calendar(&auth.tenant, &cal).await?;
    tracing::info!(calendar = %stored.id, version = stored.version, "Imported a business calendar");
    Ok(HttpResponse::Created().json(stored))
}

/// Query of a holiday import.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HolidayImport {
    /// `true`: the file's dates replace the calendar's holidays; else they
    /// are added to them.
    #[serde(default)]
    pub replace: bool,
}

/// Import holidays from an iCalendar file (RFC 5545, `text/calendar`, as
/// public-holiday feeds publish them): each event's dates, `DTSTART` to
/// `DTEND` (exclusive). They are added to the newest version of the
/// calendar (or replace its holidays with `replace=true`), which makes a
/// new version; the open clocks on it count by it from then on.
#[utoipa::path(
    post, path = "/api/v1/calendars/{id}/holidays", tag = "sla",
    params(("id" = String, Path, pattern = "^[a-z0-9-]+$", description = "A calendar id"), HolidayImport),
    request_body(content((String = "text/calendar")),
        description = "A VCALENDAR of VEVENTs; a repeating event (RRULE) or a file without events is 422 `CW-INVALID-DEFINITION`"),
    responses((status = 201, body = BusinessCalendar), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/calendars/{id}/holidays")]
pub async fn post_holidays(
    state: Data<AppState>,
    auth: Auth,
    id: Path<String>,
    q: Query<HolidayImport>,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    authz::require(&state, &auth, Action::DefinitionImport).await?;
    let current = state
        .platform
        .reads
        .get_calendar(&auth.tenant, &id, None)
        .await?
        .ok_or_else(|| ApiError::not_found("calendar"))?;
    let text = std::str::from_utf8(&body).map_err(|_| ApiError::bad_parameter("the file must be UTF-8 text"))?;
    let dates = holidays_from_ical(text)?;
    let cal = current.with_holidays(&dates, q.replace)?;
    let stored = state.platform.reads.put_calendar(&auth.tenant, &cal).await?;
    tracing::info!(calendar = %stored.id, version = stored.version, holidays = dates.len(), "Imported holidays");
    Ok(HttpResponse::Created().json(stored))
}

/// A case's clocks at `at`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaseSla {
    /// First response, next response (its newest cycle) and resolution,
    /// for each goal the case's priority has.
    pub items: Vec<Clock>,
    /// The calendar they count on (`null`: every hour counts).
    pub calendar: Option<String>,
    /// Its version used.
    pub calendar_version: Option<u32>,
    /// The definition names a calendar the tenant does not have: the clocks
    /// count every hour until it is imported.
    pub calendar_missing: bool,
    pub at: DateTime<Utc>,
}

/// The case's SLA clocks now: goal, elapsed, remaining, breached, paused,
/// due and warning times, whether the calendar is open. Computed on each
/// request (no ETag: they move with time). Staff only: those who may read
/// internal comments (a requester gets 403).
#[utoipa::path(
    get, path = "/api/v1/cases/{id}/sla", tag = "sla",
    params(("id" = String, Path, description = "Case id or key")),
    responses((status = 200, body = CaseSla), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/cases/{id}/sla")]
pub async fn case_sla(state: Data<AppState>, auth: Auth, id: Path<String>) -> Result<HttpResponse, ApiError> {
    let case_id = resolve_case(&state, &auth.tenant, &id).await?;
    let case = authz::current_case(&state, &auth.tenant, case_id).await?;
    // Clocks are internal work, like internal comments and tasks: a
    // requester sees the case, not how late it is.
    authz::authorize(&state, &auth, Action::CaseRead, &case).await?;
    authz::authorize(&state, &auth, authz::READ_INTERNAL, &case).await?;
    let def = state
        .cases
        .definition(
            &*state.platform.reads,
            &auth.tenant,
            &case.definition_id,
            Some(case.definition_version),
        )
        .await?
        .ok_or_else(|| ApiError::not_found("definition"))?;
    let at = Utc::now();
    let cc = casewire_application::sla::clocks_at(
        &*state.platform.reads,
        &*state.platform.events,
        &def,
        &auth.tenant,
        case_id,
        at,
    )
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(CaseSla {
            calendar_missing: cc.calendar_missing(),
            items: cc.clocks,
            calendar: cc.calendar,
            calendar_version: cc.calendar_version,
            at,
        }))
}
