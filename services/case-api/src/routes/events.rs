//! `GET /api/v1/events`: the live NDJSON stream of the events of the cases
//! the caller may see (the policy's filter, as for lists), with heartbeats,
//! resumable from a position.

use casewire_domain::types::TenantId;
use std::time::{Duration, Instant};

use actix_web::web::{Bytes, Data, Query};
use actix_web::{HttpResponse, get};
use casewire_domain::ErrorCode;
use casewire_ports::Action;
use casewire_ports::envelope::event_to_json;
use casewire_ports::{Resource, VisibilityFilter};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Auth;
use crate::authz;
use crate::error::{ApiError, ErrorBody};
use crate::state::{AppState, StreamSlot};

/// Stream options.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// First position to deliver (inclusive; positions count from 1, and 0
    /// means 1). Absent: only new events. To resume, pass the last
    /// `position` you saw plus one.
    #[param(minimum = 0)]
    pub from: Option<u64>,
    /// Seconds between heartbeats while idle (default
    /// `stream.heartbeat_secs`, 15 unless configured). Any value is
    /// accepted and clamped to 1..=300: 0 means 1, more than 300 means 300.
    #[param(minimum = 0)]
    pub heartbeat: Option<u64>,
}

struct Cursor {
    state: AppState,
    tenant: TenantId,
    /// The policy's filter, taken when the stream opened.
    visible: VisibilityFilter,
    /// Whether internal comments may be streamed to this caller.
    internal: bool,
    next: u64,
    heartbeat: Duration,
    last_line: Instant,
    head: Option<tokio::sync::watch::Receiver<u64>>,
    poll: Duration,
    /// When the caller's token expires; the stream ends then, and the
    /// client resumes from the last position with a fresh token.
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Held while the stream is open.
    _slot: StreamSlot,
}

/// What one step of a stream yields.
enum Chunk {
    Lines(Bytes),
    /// The token expired: this last line, then the end.
    Expired(Bytes),
}

impl Cursor {
    /// Time left before the token expires, if it does.
    fn time_left(&self) -> Option<Duration> {
        self.expires_at
            .map(|at| (at - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO))
    }

    /// The next chunk of lines: events, or a heartbeat when idle too long,
    /// or the closing line once the token expired.
    async fn next_chunk(&mut self) -> Result<Chunk, ApiError> {
        loop {
            if self.time_left().is_some_and(|left| left.is_zero()) {
                let line = serde_json::json!({
                    "closed": "token-expired",
                    "code": ErrorCode::TokenExpired,
                    "message": "the token expired; reconnect with a fresh token and from = position + 1",
                    "position": self.next.saturating_sub(1),
                });
                return Ok(Chunk::Expired(Bytes::from(format!("{line}\n"))));
            }
            let batch = self.state.platform.events.read_all(self.next, 200).await?;
            if let Some(last) = batch.last() {
                self.next = last.position + 1;
                let mut out = Vec::new();
                for record in batch.iter().filter(|r| r.tenant == self.tenant) {
                    if !self.internal && authz::is_internal_comment(record) {
                        continue;
                    }
                    // The case as it is now decides, as for its detail.
                    let case = self
                        .state
                        .cases
                        .current(&*self.state.platform.events, &self.tenant, record.case_id)
                        .await?;
                    if !case.is_some_and(|c| self.visible.admits(&Resource::of(&c))) {
                        continue;
                    }
                    serde_json::to_writer(&mut out, &event_to_json(record)).map_err(|e| ApiError::internal(&e))?;
                    out.push(b'\n');
                }
                if !out.is_empty() {
                    self.last_line = Instant::now();
                    return Ok(Chunk::Lines(Bytes::from(out)));
                }
                continue;
            }
            let until_heartbeat = self.heartbeat.saturating_sub(self.last_line.elapsed());
            if until_heartbeat.is_zero() {
                self.last_line = Instant::now();
                let line =
                    serde_json::json!({"heartbeat": chrono::Utc::now(), "position": self.next.saturating_sub(1)});
                return Ok(Chunk::Lines(Bytes::from(format!("{line}\n"))));
            }
            let mut wait = until_heartbeat.min(self.poll);
            if let Some(left) = self.time_left() {
                wait = wait.min(left);
            }
            match &mut self.head {
                Some(rx) => {
                    let _ = tokio::time::timeout(wait, rx.changed()).await;
                }
                None => tokio::time::sleep(wait).await,
            }
        }
    }
}

/// Live NDJSON stream of CloudEvents; each line carries its `position`.
/// Idle streams get `{"heartbeat": <time>, "position": <last>}` lines.
#[utoipa::path(
    get, path = "/api/v1/events", tag = "events", params(StreamParams),
    responses((status = 200, description = "application/x-ndjson: one CloudEvent per line; when the token expires, a last line `{\"closed\": \"token-expired\", \"position\": <last>}` and the end", content_type = "application/x-ndjson"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody, description = "`CW-TOO-MANY-STREAMS`: this caller holds stream.max_per_principal streams already")),
    security(("bearer" = []))
)]
#[get("/events")]
pub async fn stream(state: Data<AppState>, auth: Auth, params: Query<StreamParams>) -> Result<HttpResponse, ApiError> {
    authz::require(&state, &auth, Action::EventsStream).await?;
    let max = state.platform.config.stream.max_per_principal;
    let slot = state
        .streams
        .take((auth.tenant.clone(), auth.sub.clone()), max)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::TooManyStreams,
                format!("you hold {max} open streams already; close one first"),
            )
        })?;
    let visible = authz::filter(&state, &auth).await?;
    let internal = authz::allowed(&state, &auth, authz::READ_INTERNAL).await?;
    let config = &state.platform.config.stream;
    let next = match params.from {
        Some(from) => from.max(1),
        None => state.platform.events.head().await? + 1,
    };
    let heartbeat = Duration::from_secs(params.heartbeat.unwrap_or(config.heartbeat_secs).clamp(1, 300));
    let cursor = Cursor {
        head: state.platform.events.watch_head(),
        poll: Duration::from_millis(config.poll_ms),
        state: state.get_ref().clone(),
        tenant: auth.tenant.clone(),
        visible,
        internal,
        next,
        heartbeat,
        last_line: Instant::now(),
        expires_at: auth.expires_at.and_then(|exp| chrono::DateTime::from_timestamp(exp, 0)),
        _slot: slot,
    };
    // The state is None once the closing line went out: the stream ends.
    let body = futures::stream::unfold(Some(cursor), |cursor| async move {
        let mut cursor = cursor?;
        match cursor.next_chunk().await {
            Ok(Chunk::Lines(bytes)) => Some((Ok(bytes), Some(cursor))),
            Ok(Chunk::Expired(bytes)) => Some((Ok(bytes), None)),
            Err(e) => Some((Err(e), Some(cursor))),
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}
