//! `POST /api/v1/inbound/email`: mail pushed by a provider (or the mailbox
//! reader) as raw MIME, for a configured mailbox of the caller's tenant.

use actix_web::web::{Data, Query};
use actix_web::{HttpResponse, http::header};
use casewire_domain::ErrorCode;
use casewire_ports::Action;
use serde::Deserialize;

use crate::auth::Auth;
use crate::authz;
use crate::body::Body;
use crate::error::{ApiError, ErrorBody};
use crate::inbound::{Ingested, ingest};
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
        (status = 413, body = ErrorBody), (status = 422, description = "Quarantined: `details.reason`", body = ErrorBody),
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
    let mailbox = state
        .platform
        .config
        .email
        .mailboxes
        .iter()
        .find(|m| m.name == query.mailbox && m.tenant == auth.tenant.as_str())
        .cloned()
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no mailbox '{}'", query.mailbox)))?;
    if body.0.is_empty() {
        return Err(ApiError::bad_parameter("the body must be the raw message"));
    }
    let ingested = ingest(&state, &auth, &mailbox, body.0).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(ingested))
}
