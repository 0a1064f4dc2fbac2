//! Holding mail, and letting it go. A mail that can not be taken, or a
//! stranger's reply held for review, is kept whole: its bytes in the blob
//! store (`<tenant>/quarantine/<id>`), then its record in the quarantine,
//! so a record always has its bytes. An admin lists it, reads it, releases
//! it (ingested again with what held it vouched for) or drops it.

use bytes::Bytes;
use casewire_domain::ErrorCode;
use casewire_domain::types::TenantId;
use casewire_ports::Held;
use casewire_runtime::config::MailboxConfig;
use chrono::Utc;
use futures::TryStreamExt;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// Why a mail is held: a stable code and the reason in words.
#[derive(Debug, Clone)]
pub struct Why {
    pub code: String,
    pub message: String,
    /// For a stranger's reply: the case it threads into.
    pub case_id: Option<Uuid>,
}

/// The same mail held twice (a webhook retry, the reader after a crash)
/// has the same id.
fn held_id(tenant: &TenantId, mailbox: &str, sha256: &str) -> Uuid {
    let name = format!("{tenant}\u{0}{mailbox}\u{0}{sha256}");
    Uuid::new_v5(&Uuid::NAMESPACE_OID, name.as_bytes())
}

fn blob_key(tenant: &TenantId, id: Uuid) -> String {
    format!("{tenant}/quarantine/{id}")
}

/// Keeps `raw` in the quarantine; an entry held before is answered as it is.
pub async fn hold(
    state: &AppState,
    tenant: &TenantId,
    mailbox: &MailboxConfig,
    raw: &Bytes,
    why: Why,
) -> Result<Held, ApiError> {
    let sha256 = casewire_email::sha256_hex(raw);
    let id = held_id(tenant, &mailbox.name, &sha256);
    if let Some(held) = state.platform.quarantine.held_one(tenant, id).await? {
        return Ok(held);
    }
    let blob = blob_key(tenant, id);
    let bytes = raw.clone();
    let stream: casewire_ports::ByteStream = Box::pin(futures::stream::once(async move { Ok(bytes) }));
    state.blobs.put(&blob, "message/rfc822", stream, Some(&sha256)).await?;
    let (from, subject) = casewire_email::headline(raw);
    let held = Held {
        id,
        tenant: tenant.clone(),
        mailbox: mailbox.name.clone(),
        reason: why.code,
        message: why.message,
        from,
        subject,
        size: raw.len() as u64,
        sha256,
        held_at: chrono::DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap_or_default(),
        blob,
        case_id: why.case_id,
    };
    state.platform.quarantine.hold(&held).await?;
    metrics::counter!("casewire_mail_held_total", "reason" => held.reason.clone()).increment(1);
    tracing::warn!(
        id = %held.id, mailbox = %held.mailbox, reason = %held.reason, from = ?held.from,
        "Mail held in the quarantine: {}", held.message
    );
    Ok(held)
}

/// A held mail of the tenant, or the JSON 404.
pub async fn find(state: &AppState, tenant: &TenantId, id: Uuid) -> Result<Held, ApiError> {
    state
        .platform
        .quarantine
        .held_one(tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("held mail"))
}

/// The raw message of a held mail.
pub async fn raw(state: &AppState, held: &Held) -> Result<Bytes, ApiError> {
    let read = state.blobs.get(&held.blob, None).await?;
    let chunks: Vec<Bytes> = read
        .body
        .try_collect()
        .await
        .map_err(|e| ApiError::new(ErrorCode::Unavailable, format!("reading held mail: {e}")))?;
    Ok(chunks.concat().into())
}

/// Forgets a held mail and removes its bytes (the record first: a record
/// without bytes would be listed but could not be read).
pub async fn forget(state: &AppState, held: &Held) -> Result<bool, ApiError> {
    let gone = state.platform.quarantine.forget(&held.tenant, held.id).await?;
    if let Err(e) = state.blobs.delete(&held.blob).await {
        // Left behind it costs space, not correctness: nothing names it.
        tracing::warn!(id = %held.id, error = %e, "A released or dropped mail's bytes could not be removed");
    }
    Ok(gone)
}
