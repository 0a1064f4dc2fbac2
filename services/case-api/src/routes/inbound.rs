//! `POST /api/v1/inbound/email`: mail pushed by a provider (or the mailbox
//! reader) as raw MIME, for a configured mailbox of the caller's tenant;
//! and `/api/v1/inbound/quarantine`: what was held, for admins.

use actix_web::web::{Data, Path, Query};
use actix_web::{HttpResponse, delete, get, http::header, post};
use casewire_domain::ErrorCode;
use casewire_domain::types::TenantId;
use casewire_ports::{Action, Held};
use casewire_runtime::config::MailboxConfig;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::Auth;
use crate::authz;
use crate::body::Body;
use crate::error::{ApiError, ErrorBody};
use crate::inbound::{Admit, Ingested, ingest};
use crate::quarantine;
use crate::state::AppState;

/// Which mailbox the mail came in through.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct MailboxParam {
    /// A mailbox of `email.mailboxes` of the caller's tenant.
    pub mailbox: String,
}

/// Take one mail (RFC 5322, the raw bytes as received). 200 says what
/// became of it; the same mail again changes nothing and answers the same.
#[utoipa::path(
    post, path = "/api/v1/inbound/email", tag = "email", params(MailboxParam),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "The raw message (RFC 5322) as received; any content type is taken, `message/rfc822` fits"),
    responses(
        (status = 200, description = "Taken", body = Ingested),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 422, description = "Held in the quarantine: `details.reason`, `details.quarantineId`", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn inbound_email(
    state: Data<AppState>,
    auth: Auth,
    query: Query<MailboxParam>,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    authz::require(&state, &auth, Action::MailIngest).await?;
    let mailbox = mailbox(&state, &auth.tenant, &query.mailbox)?;
    if body.0.is_empty() {
        return Err(ApiError::bad_parameter("the body must be the raw message"));
    }
    let ingested = ingest(&state, &auth, &mailbox, body.0, Admit::default()).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(ingested))
}

/// A configured mailbox of the tenant.
fn mailbox(state: &AppState, tenant: &TenantId, name: &str) -> Result<MailboxConfig, ApiError> {
    state
        .platform
        .config
        .email
        .mailboxes
        .iter()
        .find(|m| m.name == name && m.tenant == tenant.as_str())
        .cloned()
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no mailbox '{name}'")))
}

/// Which held mail to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HeldQuery {
    /// Only this mailbox's.
    pub mailbox: Option<String>,
    /// At most this many (1 to 500, default 100), newest first.
    pub limit: Option<usize>,
}

/// Held mail, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HeldList {
    pub items: Vec<Held>,
}

/// The tenant's held mail: what could not be taken and strangers' replies
/// held for review, each with its reason. Admins only.
#[utoipa::path(
    get, path = "/api/v1/inbound/quarantine", tag = "email", params(HeldQuery),
    responses((status = 200, body = HeldList), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/inbound/quarantine")]
pub async fn list_held(state: Data<AppState>, auth: Auth, query: Query<HeldQuery>) -> Result<HttpResponse, ApiError> {
    authz::require(&state, &auth, Action::MailQuarantine).await?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_parameter("limit must be 1 to 500"));
    }
    let items = state
        .platform
        .quarantine
        .held(&auth.tenant, query.mailbox.as_deref(), limit)
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(HeldList { items }))
}

/// One held mail.
#[utoipa::path(
    get, path = "/api/v1/inbound/quarantine/{id}", tag = "email", params(("id" = Uuid, Path)),
    responses((status = 200, body = Held), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/inbound/quarantine/{id}")]
pub async fn get_held(state: Data<AppState>, auth: Auth, id: Path<Uuid>) -> Result<HttpResponse, ApiError> {
    authz::require(&state, &auth, Action::MailQuarantine).await?;
    let held = quarantine::find(&state, &auth.tenant, *id).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(held))
}

/// The held message as it came (`message/rfc822`), to be looked at in a
/// mail client; served as a download, never rendered.
#[utoipa::path(
    get, path = "/api/v1/inbound/quarantine/{id}/raw", tag = "email", params(("id" = Uuid, Path)),
    responses((status = 200, description = "The raw message"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/inbound/quarantine/{id}/raw")]
pub async fn raw_held(state: Data<AppState>, auth: Auth, id: Path<Uuid>) -> Result<HttpResponse, ApiError> {
    authz::require(&state, &auth, Action::MailQuarantine).await?;
    let held = quarantine::find(&state, &auth.tenant, *id).await?;
    let raw = quarantine::raw(&state, &held).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "message/rfc822"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            casewire_ports::blob::content_disposition(&format!("{}.eml", held.id)),
        ))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(raw))
}

/// Takes a held mail after all: read with its type and size limits lifted,
/// and a stranger's reply joins the case it answers. Answers what became
/// of it, as the webhook does; the entry is gone then. A mail that still
/// can not be read stays held (422).
#[utoipa::path(
    post, path = "/api/v1/inbound/quarantine/{id}/release", tag = "email", params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = Ingested), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, description = "Still unreadable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/inbound/quarantine/{id}/release")]
pub async fn release_held(state: Data<AppState>, auth: Auth, id: Path<Uuid>) -> Result<HttpResponse, ApiError> {
    authz::require(&state, &auth, Action::MailQuarantine).await?;
    let held = quarantine::find(&state, &auth.tenant, *id).await?;
    let mailbox = mailbox(&state, &auth.tenant, &held.mailbox)?;
    let raw = quarantine::raw(&state, &held).await?;
    let admit = Admit {
        waive_limits: true,
        vouch_sender: true,
    };
    let ingested = ingest(&state, &auth, &mailbox, raw, admit).await?;
    quarantine::forget(&state, &held).await?;
    tracing::info!(id = %held.id, by = %auth.name, outcome = ingested.outcome, "Released a held mail");
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(ingested))
}

/// Drops a held mail for good: its record and its bytes.
#[utoipa::path(
    delete, path = "/api/v1/inbound/quarantine/{id}", tag = "email", params(("id" = Uuid, Path)),
    responses((status = 204, description = "Dropped"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
#[delete("/inbound/quarantine/{id}")]
pub async fn drop_held(state: Data<AppState>, auth: Auth, id: Path<Uuid>) -> Result<HttpResponse, ApiError> {
    authz::require(&state, &auth, Action::MailQuarantine).await?;
    let held = quarantine::find(&state, &auth.tenant, *id).await?;
    quarantine::forget(&state, &held).await?;
    tracing::info!(id = %held.id, by = %auth.name, reason = %held.reason, "Dropped a held mail");
    Ok(HttpResponse::NoContent().finish())
}
