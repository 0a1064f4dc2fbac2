//! `/api/v1/me/...`: the caller's notification preferences and inbox, and
//! `/api/v1/cases/{id}/watch`.

use actix_web::web::{Data, Json, Path, Query};
use actix_web::{HttpResponse, delete, get, post, put};
use casewire_domain::ErrorCode;
use casewire_ports::{Action, Channel, InboxItem, Preferences};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Auth;
use crate::authz;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::Validation, message).with_details(serde_json::json!({ "field": field }))
}

/// The caller's preferences (the defaults until they save some).
#[utoipa::path(
    get, path = "/api/v1/me/preferences", tag = "notifications",
    responses((status = 200, body = Preferences), (status = 401, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/me/preferences")]
pub async fn get_preferences(state: Data<AppState>, auth: Auth) -> Result<HttpResponse, ApiError> {
    let prefs = state
        .platform
        .notifications
        .preferences(&auth.tenant, &auth.name)
        .await?
        .unwrap_or_default();
    Ok(HttpResponse::Ok().json(prefs))
}

/// Replaces the caller's preferences.
#[utoipa::path(
    put, path = "/api/v1/me/preferences", tag = "notifications", request_body = Preferences,
    responses((status = 200, body = Preferences), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []))
)]
#[put("/me/preferences")]
pub async fn put_preferences(
    state: Data<AppState>,
    auth: Auth,
    body: Json<Preferences>,
) -> Result<HttpResponse, ApiError> {
    let prefs = body.into_inner();
    if !casewire_notify::schedule::valid_time_zone(&prefs.time_zone) {
        return Err(invalid(
            "timeZone",
            format!("timeZone: {} is not an IANA time zone", prefs.time_zone),
        ));
    }
    if prefs.digest_minutes.is_some_and(|m| !(1..=1440).contains(&m)) {
        return Err(invalid("digestMinutes", "digestMinutes: 1 to 1440"));
    }
    let all = prefs.channels.values().flatten().chain(&prefs.default_channels);
    if all.clone().any(|c| *c == Channel::Webhook) {
        return Err(invalid(
            "channels",
            "channels: a person's channels are inapp and email; webhooks are per tenant",
        ));
    }
    if prefs.muted_cases.len() > 1000 {
        return Err(invalid("mutedCases", "mutedCases: at most 1000"));
    }
    state
        .platform
        .notifications
        .put_preferences(&auth.tenant, &auth.name, &prefs)
        .await?;
    Ok(HttpResponse::Ok().json(prefs))
}

/// Inbox paging.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InboxParams {
    /// The `nextCursor` of the previous page.
    pub cursor: Option<Uuid>,
    /// Items per page (1 to 200, default 25).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<usize>,
}

/// A page of the inbox.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InboxPage {
    pub items: Vec<InboxItem>,
    pub unread: u64,
    pub next_cursor: Option<Uuid>,
}

/// The caller's in-app notifications, newest first.
#[utoipa::path(
    get, path = "/api/v1/me/notifications", tag = "notifications", params(InboxParams),
    responses((status = 200, body = InboxPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/me/notifications")]
pub async fn inbox(state: Data<AppState>, auth: Auth, q: Query<InboxParams>) -> Result<HttpResponse, ApiError> {
    let limit = q.limit.unwrap_or(25);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::bad_parameter("limit: 1 to 200"));
    }
    let (items, unread) = state
        .platform
        .notifications
        .inbox(&auth.tenant, &auth.name, q.cursor, limit)
        .await?;
    let next_cursor = (items.len() == limit).then(|| items.last().map(|i| i.id)).flatten();
    Ok(HttpResponse::Ok().json(InboxPage {
        items,
        unread,
        next_cursor,
    }))
}

/// How many were marked read.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Marked {
    pub marked: u64,
}

/// Marks one notification read (404 if it is not the caller's).
#[utoipa::path(
    post, path = "/api/v1/me/notifications/{id}/read", tag = "notifications", params(("id" = Uuid, Path)),
    responses((status = 200, body = Marked), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/me/notifications/{id}/read")]
pub async fn mark_read(state: Data<AppState>, auth: Auth, id: Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let store = &state.platform.notifications;
    let marked = store
        .mark_read(&auth.tenant, &auth.name, Some(*id), chrono::Utc::now())
        .await?;
    if marked == 0 {
        // Already read is fine; never the caller's is not found.
        let (items, _) = store.inbox(&auth.tenant, &auth.name, None, 200).await?;
        if !items.iter().any(|i| i.id == *id) {
            return Err(ApiError::not_found("notification"));
        }
    }
    Ok(HttpResponse::Ok().json(Marked { marked }))
}

/// Marks every notification of the caller read.
#[utoipa::path(
    post, path = "/api/v1/me/notifications/read-all", tag = "notifications",
    responses((status = 200, body = Marked), (status = 401, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/me/notifications/read-all")]
pub async fn mark_all_read(state: Data<AppState>, auth: Auth) -> Result<HttpResponse, ApiError> {
    let marked = state
        .platform
        .notifications
        .mark_read(&auth.tenant, &auth.name, None, chrono::Utc::now())
        .await?;
    Ok(HttpResponse::Ok().json(Marked { marked }))
}

async fn set_watch(state: &AppState, auth: &Auth, raw: &str, on: bool) -> Result<HttpResponse, ApiError> {
    let id = crate::routes::cases::resolve_case(state, &auth.tenant, raw).await?;
    let case = authz::current_case(state, &auth.tenant, id).await?;
    authz::authorize(state, auth, Action::CaseRead, &case).await?;
    state
        .platform
        .notifications
        .watch(&auth.tenant, id, &auth.name, on)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Watches a case the caller may see: they hear of everything on it.
#[utoipa::path(
    put, path = "/api/v1/cases/{id}/watch", tag = "notifications",
    params(("id" = crate::routes::cases::CaseRef, Path, description = "Case id or key")),
    responses((status = 204, description = "watching"), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
#[put("/cases/{id}/watch")]
pub async fn watch(state: Data<AppState>, auth: Auth, id: Path<String>) -> Result<HttpResponse, ApiError> {
    set_watch(&state, &auth, &id, true).await
}

/// Stops watching a case.
#[utoipa::path(
    delete, path = "/api/v1/cases/{id}/watch", tag = "notifications",
    params(("id" = crate::routes::cases::CaseRef, Path, description = "Case id or key")),
    responses((status = 204, description = "not watching"), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
#[delete("/cases/{id}/watch")]
pub async fn unwatch(state: Data<AppState>, auth: Auth, id: Path<String>) -> Result<HttpResponse, ApiError> {
    set_watch(&state, &auth, &id, false).await
}
