//! One WebSocket: the upgrade, authentication, subscriptions with resume,
//! and the live events the caller may see, judged when they are sent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use casewire_application::{AccessCache, CaseCache};
use casewire_domain::types::TenantId;
use casewire_oidc::{JwksVerifier, Principal};
use casewire_ports::{Action, PolicyEngine, VisibilityFilter};
use casewire_runtime::Platform;
use casewire_runtime::config::WsConfig;
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_util::sync::CancellationToken;

use crate::hub::{Delivery, Hub, Push, Registration};
use crate::protocol::{ClientMessage, CloseCode, Filter, ServerMessage, event_frame};

/// The path of the upgrade.
pub const PATH: &str = "/api/v1/ws";

/// Largest frame a client may send; its messages are small.
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;

/// What a socket reads into at once.
const READ_BUFFER: usize = 4096;

/// How long one frame may take to go out before the client counts as dead.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// What every socket of the process shares.
pub struct Shared {
    pub platform: Platform,
    pub verifier: JwksVerifier,
    pub policy: Arc<dyn PolicyEngine>,
    pub access: AccessCache,
    pub cases: Arc<CaseCache>,
    pub hub: Arc<Hub>,
    pub config: WsConfig,
    pub shutdown: CancellationToken,
    /// Open sockets of the process, and per caller.
    pub open: AtomicUsize,
    pub per_principal: Mutex<HashMap<(TenantId, String), usize>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Why a socket ends: the code and the reason sent with it.
type Stop = (CloseCode, String);

fn stop(code: CloseCode, reason: impl Into<String>) -> Stop {
    (code, reason.into())
}

/// Holds one of the process's sockets; released on drop.
struct OpenGuard(Arc<Shared>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
        metrics::gauge!("casewire_ws_sockets").decrement(1.0);
    }
}

/// Holds one of a caller's sockets; released on drop.
struct PrincipalGuard(Arc<Shared>, (TenantId, String));

impl Drop for PrincipalGuard {
    fn drop(&mut self) {
        if let Ok(mut held) = self.0.per_principal.lock()
            && let Some(n) = held.get_mut(&self.1)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.remove(&self.1);
            }
        }
    }
}

/// The caller, as authenticated and as the policy sees them.
struct Session {
    principal: Principal,
    visible: VisibilityFilter,
    internal: bool,
    /// When the token expires.
    expires_at: Option<Instant>,
}

/// A subscription and how far it got.
struct Sub {
    id: String,
    filter: Filter,
    /// The first position it wants.
    from: u64,
}

/// Reads the bearer token of the upgrade request, refusing other paths and
/// tokens in the URL (they end up in proxy logs and browser history).
#[allow(
    clippy::result_large_err,
    reason = "the error type tungstenite's handshake callback takes"
)]
fn check_upgrade(req: &Request) -> Result<Option<String>, ErrorResponse> {
    let refuse = |status: StatusCode, code: &str, message: &str| {
        let body = serde_json::json!({"code": code, "message": message}).to_string();
        let mut res = ErrorResponse::new(Some(body));
        *res.status_mut() = status;
        res
    };
    if req.uri().path() != PATH {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            "CW-NOT-FOUND",
            "the WebSocket is at /api/v1/ws",
        ));
    }
    let query = req.uri().query().unwrap_or_default();
    if query
        .split('&')
        .any(|p| matches!(p.split('=').next(), Some("token" | "access_token")))
    {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "CW-TOKEN-IN-URL",
            "never put a token in the URL; send it in the Authorization header or as the first message",
        ));
    }
    let Some(value) = req.headers().get("authorization") else {
        return Ok(None);
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    match token {
        Some(t) => Ok(Some(t)),
        None => Err(refuse(
            StatusCode::UNAUTHORIZED,
            "CW-UNAUTHENTICATED",
            "the Authorization header must be 'Bearer <token>'",
        )),
    }
}

/// Serves one TCP connection until its socket closes.
#[allow(
    clippy::result_large_err,
    reason = "the error type tungstenite's handshake callback takes"
)]
pub async fn serve(shared: Arc<Shared>, stream: TcpStream) {
    let open = shared.open.fetch_add(1, Ordering::AcqRel) + 1;
    metrics::gauge!("casewire_ws_sockets").increment(1.0);
    let _open = OpenGuard(shared.clone());
    let mut header_token = None;
    // Small buffers: tungstenite's default 128 KiB read buffer per socket
    // would be 1.3 GB at 10,000 sockets, for clients that send a few
    // short messages.
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(Some(MAX_CLIENT_MESSAGE))
        .max_frame_size(Some(MAX_CLIENT_MESSAGE));
    let upgrade = tokio_tungstenite::accept_hdr_async_with_config(
        stream,
        |req: &Request, res: Response| {
            header_token = check_upgrade(req)?;
            Ok(res)
        },
        Some(config),
    );
    let mut ws = match tokio::time::timeout(Duration::from_secs(10), upgrade).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "WebSocket upgrade refused or failed");
            return;
        }
        Err(_) => return,
    };
    let (code, reason) = if open > shared.config.max_sockets {
        stop(
            CloseCode::TryAgainLater,
            "this process holds its most sockets; retry later",
        )
    } else {
        match session(&shared, &mut ws, header_token).await {
            Ok(()) => return,
            Err(stop) => stop,
        }
    };
    close(&mut ws, code, &reason).await;
}

/// Authenticates, takes the caller's slot and runs the socket.
async fn session(shared: &Arc<Shared>, ws: &mut WebSocketStream<TcpStream>, token: Option<String>) -> Result<(), Stop> {
    let token = match token {
        Some(t) => t,
        None => first_auth(shared, ws).await?,
    };
    let session = authenticate(shared, &token).await?;
    let key = (session.principal.tenant.clone(), session.principal.sub.clone());
    {
        let mut held = shared
            .per_principal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = held.entry(key.clone()).or_default();
        if *n >= shared.config.max_per_principal {
            return Err(stop(
                CloseCode::TooManySockets,
                format!(
                    "you hold {} sockets already; close one first",
                    shared.config.max_per_principal
                ),
            ));
        }
        *n += 1;
    }
    let _slot = PrincipalGuard(shared.clone(), key);
    let registration = shared
        .hub
        .register(session.principal.tenant.clone(), &session.principal.name);
    let id = registration.id;
    let mut conn = Conn {
        shared: shared.clone(),
        ws,
        session,
        subs: Vec::new(),
        position: registration.position,
        last_heard: Instant::now(),
    };
    let result = conn.run(registration).await;
    shared.hub.unregister(id);
    result
}

/// Waits for the `auth` message of a client that sent no header.
async fn first_auth(shared: &Shared, ws: &mut WebSocketStream<TcpStream>) -> Result<String, Stop> {
    let limit = Duration::from_secs(shared.config.auth_timeout_secs);
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next()).await.map_err(|_| {
            stop(
                CloseCode::Unauthenticated,
                format!("no auth message within {} s", limit.as_secs()),
            )
        })?;
        match frame {
            Some(Ok(Message::Text(text))) => {
                return match serde_json::from_str::<ClientMessage>(&text) {
                    Ok(ClientMessage::Auth { token }) => Ok(token),
                    _ => Err(stop(
                        CloseCode::Protocol,
                        "the first message must be {\"type\":\"auth\",\"token\":...}",
                    )),
                };
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(_)) => return Err(stop(CloseCode::Protocol, "messages are JSON text frames")),
            Some(Err(_)) | None => return Err(stop(CloseCode::Normal, "")),
        }
    }
}

/// Verifies a token and asks the policy what its holder may see: the same
/// action (`events.stream`), filter and internal-comment rule as the
/// NDJSON stream.
async fn authenticate(shared: &Shared, token: &str) -> Result<Session, Stop> {
    let principal = shared
        .verifier
        .verify(token)
        .await
        .map_err(|e| stop(CloseCode::Unauthenticated, e.to_string()))?;
    let unavailable = |e: &dyn std::fmt::Display| {
        tracing::warn!(error = %e, "The WebSocket could not ask the policy");
        stop(
            CloseCode::ServerError,
            "the policy engine is unavailable; retry shortly",
        )
    };
    let definitions = shared
        .access
        .of(&*shared.platform.reads, &principal.tenant)
        .await
        .map_err(|e| unavailable(&e))?;
    let subject = principal.subject();
    let decide = |action| shared.policy.decide(&subject, &definitions, action, None);
    if !decide(Action::EventsStream).await.map_err(|e| unavailable(&e))?.allow {
        return Err(stop(
            CloseCode::Forbidden,
            "the policy does not allow you events.stream",
        ));
    }
    let internal = decide(Action::CaseCommentReadInternal)
        .await
        .map_err(|e| unavailable(&e))?
        .allow;
    let visible = shared
        .policy
        .filter(&subject, &definitions)
        .await
        .map_err(|e| unavailable(&e))?;
    // Data never crosses tenants, whatever a policy says.
    if visible.tenant != principal.tenant {
        return Err(unavailable(&"the policy's filter names another tenant"));
    }
    // The notification directory learns of people who only use the socket.
    if let Err(e) = shared
        .platform
        .notifications
        .upsert_person(&principal.person(chrono::Utc::now()))
        .await
    {
        tracing::debug!(error = %e, "Could not record a person in the directory");
    }
    let expires_at = principal.expires_at.map(|exp| {
        let left = exp - chrono::Utc::now().timestamp();
        Instant::now() + Duration::from_secs(u64::try_from(left).unwrap_or(0))
    });
    Ok(Session {
        principal,
        visible,
        internal,
        expires_at,
    })
}

/// Sends a close frame, waiting a little for it to go out.
async fn close(ws: &mut WebSocketStream<TcpStream>, code: CloseCode, reason: &str) {
    metrics::counter!("casewire_ws_closed_total", "reason" => code.label()).increment(1);
    // A close reason is at most 123 bytes (RFC 6455 §5.5).
    let mut reason = reason.to_owned();
    while reason.len() > 123 {
        reason.pop();
    }
    let frame = CloseFrame {
        code: WsCode::from(code.code()),
        reason: Utf8Bytes::from(reason),
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), ws.close(Some(frame))).await;
}

/// A socket once authenticated.
struct Conn<'a> {
    shared: Arc<Shared>,
    ws: &'a mut WebSocketStream<TcpStream>,
    session: Session,
    subs: Vec<Sub>,
    /// Every subscription is complete up to here (the hub's events taken so far).
    position: u64,
    last_heard: Instant,
}

impl Conn<'_> {
    async fn run(&mut self, mut registration: Registration) -> Result<(), Stop> {
        self.ready().await?;
        let ping_every = Duration::from_secs(self.shared.config.ping_secs);
        let mut ping = tokio::time::interval(ping_every);
        ping.tick().await;
        loop {
            if registration.behind.load(Ordering::Acquire) {
                return Err(self.behind());
            }
            let expiry = self.session.expires_at;
            let expired = async move {
                match expiry {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.shared.shutdown.cancelled() => {
                    return Err(stop(CloseCode::GoingAway, format!("shutting down; resume after {}", self.position)));
                }
                () = expired => {
                    return Err(stop(CloseCode::TokenExpired, format!("token expired; resume after {}", self.position)));
                }
                frame = self.ws.next() => self.on_frame(frame).await?,
                delivery = registration.rx.recv() => match delivery {
                    Some(Push::Event(d)) => self.deliver(&d).await?,
                    Some(Push::Notification(json)) => {
                        self.send(Message::text(format!(r#"{{"type":"notification","notification":{json}}}"#))).await?;
                    }
                    None if registration.behind.load(Ordering::Acquire) => return Err(self.behind()),
                    None => return Err(stop(CloseCode::GoingAway, "the hub stopped")),
                },
                _ = ping.tick() => {
                    if self.last_heard.elapsed() > ping_every * 2 {
                        return Err(stop(CloseCode::GoingAway, "no answer to pings"));
                    }
                    self.send(Message::Ping(Default::default())).await?;
                    self.send_json(&ServerMessage::Heartbeat { position: self.position }).await?;
                }
            }
        }
    }

    fn behind(&self) -> Stop {
        stop(
            CloseCode::Behind,
            format!(
                "fell {} events behind; resume after {}",
                self.shared.config.buffer, self.position
            ),
        )
    }

    async fn ready(&mut self) -> Result<(), Stop> {
        let p = &self.session.principal;
        let msg = ServerMessage::Ready {
            subject: p.sub.clone(),
            tenant: p.tenant.to_string(),
            expires_at: p.expires_at,
            position: self.position,
        };
        self.send_json(&msg).await
    }

    async fn send(&mut self, message: Message) -> Result<(), Stop> {
        match tokio::time::timeout(SEND_TIMEOUT, self.ws.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(stop(CloseCode::Normal, "")),
            Err(_) => Err(stop(CloseCode::GoingAway, "the client does not read")),
        }
    }

    async fn send_json(&mut self, message: &ServerMessage) -> Result<(), Stop> {
        self.send(Message::text(message.to_text())).await
    }

    async fn error(&mut self, id: Option<String>, code: &'static str, message: String) -> Result<(), Stop> {
        self.send_json(&ServerMessage::Error { id, code, message }).await
    }

    async fn on_frame(
        &mut self,
        frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ) -> Result<(), Stop> {
        self.last_heard = Instant::now();
        let text = match frame {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => return Ok(()),
            Some(Ok(Message::Binary(_))) => {
                return self
                    .error(None, "CW-VALIDATION", "messages are JSON text frames".into())
                    .await;
            }
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return Err(stop(CloseCode::Normal, "")),
        };
        match serde_json::from_str::<ClientMessage>(&text) {
            Ok(ClientMessage::Auth { token }) => self.refresh(&token).await,
            Ok(ClientMessage::Subscribe { id, filter, after }) => self.subscribe(id, filter, after).await,
            Ok(ClientMessage::Unsubscribe { id }) => {
                self.subs.retain(|s| s.id != id);
                self.send_json(&ServerMessage::Unsubscribed { id }).await
            }
            Err(e) => self.error(None, "CW-VALIDATION", e.to_string()).await,
        }
    }

    /// A fresh token for the same caller extends the socket; the policy is
    /// asked again, since roles may have changed with it.
    async fn refresh(&mut self, token: &str) -> Result<(), Stop> {
        let fresh = authenticate(&self.shared, token).await?;
        let (old, new) = (&self.session.principal, &fresh.principal);
        if old.sub != new.sub || old.tenant != new.tenant {
            return Err(stop(
                CloseCode::Forbidden,
                "a refresh must be for the same subject and tenant",
            ));
        }
        self.session = fresh;
        self.ready().await
    }

    async fn subscribe(&mut self, id: String, filter: Filter, after: Option<u64>) -> Result<(), Stop> {
        if id.is_empty() || id.len() > 64 {
            return self
                .error(Some(id), "CW-VALIDATION", "id: 1 to 64 characters".into())
                .await;
        }
        if self.subs.iter().any(|s| s.id == id) {
            return self
                .error(Some(id), "CW-VALIDATION", "id: a subscription of that id exists".into())
                .await;
        }
        if self.subs.len() >= self.shared.config.max_subscriptions {
            let max = self.shared.config.max_subscriptions;
            return self
                .error(
                    Some(id),
                    "CW-VALIDATION",
                    format!("at most {max} subscriptions per socket"),
                )
                .await;
        }
        let from = after.map_or(self.position + 1, |a| a + 1);
        let sub = Sub { id, filter, from };
        if sub.from <= self.position {
            self.catch_up(&sub).await?;
        }
        let msg = ServerMessage::Subscribed {
            id: sub.id.clone(),
            position: self.position.max(sub.from - 1),
        };
        self.subs.push(sub);
        self.send_json(&msg).await
    }

    /// Sends `sub` what it missed: the visible events from its start up to
    /// where the live queue begins, read from the log.
    async fn catch_up(&mut self, sub: &Sub) -> Result<(), Stop> {
        let shared = self.shared.clone();
        let events = &shared.platform.events;
        let upto = self.position;
        let mut next = sub.from;
        while next <= upto {
            let batch = events.read_all(next, 500).await.map_err(|e| {
                tracing::warn!(error = %e, "Reading the log for a resume failed");
                stop(
                    CloseCode::ServerError,
                    format!("reading the log failed; resume after {}", next - 1),
                )
            })?;
            let Some(last) = batch.last().map(|r| r.position) else {
                break;
            };
            for record in batch.iter().filter(|r| r.position <= upto) {
                if record.tenant != self.session.principal.tenant {
                    continue;
                }
                let case = shared
                    .cases
                    .current(&**events, &record.tenant, record.case_id)
                    .await
                    .map_err(|_| stop(CloseCode::ServerError, "reading a case failed"))?;
                let delivery = Delivery::new(record, case);
                if self.shows(&delivery, &sub.filter) {
                    self.send(Message::text(event_frame(&sub.id, record.position, &delivery.json)))
                        .await?;
                    metrics::counter!("casewire_ws_events_sent_total").increment(1);
                }
            }
            next = last + 1;
        }
        Ok(())
    }

    /// Whether the caller may see this event, and `filter` wants it: the
    /// case as it is now, through the policy's filter, and internal
    /// comments only for those allowed them.
    fn shows(&self, d: &Delivery, filter: &Filter) -> bool {
        let Some((case, resource)) = &d.case else {
            return false;
        };
        d.tenant == self.session.principal.tenant
            && (self.session.internal || !d.internal)
            && self.session.visible.admits(resource)
            && filter.matches(case, &self.session.principal.name)
    }

    async fn deliver(&mut self, d: &Delivery) -> Result<(), Stop> {
        let frames: Vec<String> = self
            .subs
            .iter()
            .filter(|s| d.position >= s.from && self.shows(d, &s.filter))
            .map(|s| event_frame(&s.id, d.position, &d.json))
            .collect();
        for frame in frames {
            self.send(Message::text(frame)).await?;
            metrics::counter!("casewire_ws_events_sent_total").increment(1);
        }
        self.position = self.position.max(d.position);
        Ok(())
    }
}
