//! `/api/v1/webhooks`: a tenant's webhook subscriptions, their secrets and
//! delivery log. Managing them is tenant configuration: it needs what
//! importing definitions needs (`definition.import`).

use actix_web::web::{Data, Json, Path};
use actix_web::{HttpResponse, delete, get, post};
use casewire_domain::ErrorCode;
use casewire_notify::webhook::{check_target, generate_secret, secret_key};
use casewire_ports::{Action, WebhookAttempt, WebhookSubscription};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Auth;
use crate::authz;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// A new subscription.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewWebhook {
    /// An http(s) URL; private, loopback and link-local targets are
    /// refused unless the operator allowed them.
    pub url: String,
    /// CloudEvent types to send (`casewire.case.assigned.v1`); empty or
    /// absent is every type.
    #[serde(default)]
    pub events: Vec<String>,
    /// `whsec_<base64 of 24 to 64 bytes>`; generated when absent.
    pub secret: Option<String>,
}

/// A subscription with its secret, shown once (at creation and rotation).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub subscription: WebhookSubscription,
    pub secret: String,
}

/// The subscriptions of the tenant.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookList {
    pub items: Vec<WebhookSubscription>,
}

/// The delivery log of a subscription, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AttemptList {
    pub items: Vec<WebhookAttempt>,
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::Validation, message).with_details(serde_json::json!({ "field": field }))
}

async fn find(state: &AppState, auth: &Auth, id: Uuid) -> Result<WebhookSubscription, ApiError> {
    authz::require(state, auth, Action::DefinitionImport).await?;
    state
        .platform
        .notifications
        .webhooks(&auth.tenant)
        .await?
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| ApiError::not_found("webhook"))
}

/// Subscribes a URL to the tenant's events.
#[utoipa::path(
    post, path = "/api/v1/webhooks", tag = "webhooks", request_body = NewWebhook,
    responses((status = 201, body = WebhookWithSecret), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/webhooks")]
pub async fn create(state: Data<AppState>, auth: Auth, body: Json<NewWebhook>) -> Result<HttpResponse, ApiError> {
    authz::require(&state, &auth, Action::DefinitionImport).await?;
    let new = body.into_inner();
    let allow = state.platform.config.notify.allow_private_targets;
    check_target(&new.url, allow)
        .await
        .map_err(|e| invalid("url", format!("url: {e}")))?;
    let secret = match new.secret {
        Some(s) => {
            secret_key(&s).map_err(|e| invalid("secret", format!("secret: {e}")))?;
            s
        }
        None => generate_secret(),
    };
    let subscription = WebhookSubscription {
        id: Uuid::now_v7(),
        tenant: auth.tenant.clone(),
        url: new.url,
        events: new.events,
        secrets: vec![secret.clone()],
        enabled: true,
        disabled_reason: None,
        created_by: auth.name.clone(),
        created_at: chrono::Utc::now(),
    };
    state.platform.notifications.put_webhook(&subscription).await?;
    Ok(HttpResponse::Created().json(WebhookWithSecret { subscription, secret }))
}

/// The tenant's subscriptions (secrets are never listed).
#[utoipa::path(
    get, path = "/api/v1/webhooks", tag = "webhooks",
    responses((status = 200, body = WebhookList), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/webhooks")]
pub async fn list(state: Data<AppState>, auth: Auth) -> Result<HttpResponse, ApiError> {
    authz::require(&state, &auth, Action::DefinitionImport).await?;
    let items = state.platform.notifications.webhooks(&auth.tenant).await?;
    Ok(HttpResponse::Ok().json(WebhookList { items }))
}

/// Removes a subscription.
#[utoipa::path(
    delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = Uuid, Path)),
    responses((status = 204, description = "removed"), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
#[delete("/webhooks/{id}")]
pub async fn remove(state: Data<AppState>, auth: Auth, id: Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let sub = find(&state, &auth, *id).await?;
    state
        .platform
        .notifications
        .delete_webhook(&auth.tenant, sub.id)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A new secret; the previous one keeps signing beside it (two
/// signatures) until the next rotation, so receivers can switch at leisure.
/// Rotating also re-enables a disabled subscription.
#[utoipa::path(
    post, path = "/api/v1/webhooks/{id}/rotate", tag = "webhooks", params(("id" = Uuid, Path)),
    responses((status = 200, body = WebhookWithSecret), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/webhooks/{id}/rotate")]
pub async fn rotate(state: Data<AppState>, auth: Auth, id: Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let mut sub = find(&state, &auth, *id).await?;
    let secret = generate_secret();
    let previous = sub.secrets.first().cloned();
    sub.secrets = std::iter::once(secret.clone()).chain(previous).collect();
    sub.enabled = true;
    sub.disabled_reason = None;
    state.platform.notifications.put_webhook(&sub).await?;
    Ok(HttpResponse::Ok().json(WebhookWithSecret {
        subscription: sub,
        secret,
    }))
}

/// The subscription's delivery attempts, newest first (at most 200).
#[utoipa::path(
    get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks", params(("id" = Uuid, Path)),
    responses((status = 200, body = AttemptList), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/webhooks/{id}/deliveries")]
pub async fn deliveries(state: Data<AppState>, auth: Auth, id: Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let sub = find(&state, &auth, *id).await?;
    let items = state.platform.notifications.attempts(sub.id, 200).await?;
    Ok(HttpResponse::Ok().json(AttemptList { items }))
}
