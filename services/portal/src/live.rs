//! Live updates: `GET /live` is a Server-Sent Events stream of "this case
//! changed" signals for the signed-in person. The portal reads the API's
//! own event stream (`/api/v1/events`) with the person's token, so the
//! policy decides which cases they hear about, exactly as for their list;
//! it passes on only the case id, the event type and the position, never
//! the event's data. The page's script then re-fetches the page (again
//! through the API) and swaps in what changed.
//!
//! The stream resumes where it left off: each message carries its
//! position as the SSE id, and a browser that reconnects sends it back as
//! `Last-Event-ID`. When the token expires the API ends its stream; the
//! portal refreshes the session's token and goes on from the same place.
//! A session that ends (sign-out, idle) ends the stream.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse, get};
use futures::{Stream, StreamExt};
use serde_json::{Value, json};

use crate::Portal;
use crate::session;

/// How long the browser waits before reconnecting (the SSE `retry`).
const RETRY_MS: u64 = 3000;
/// The API's heartbeat on an idle stream; also how often the portal sees
/// that a session ended.
const HEARTBEAT_SECS: u64 = 15;
/// The longest one upstream request may stay open; the token's expiry
/// usually ends it first.
const UPSTREAM_MAX: Duration = Duration::from_secs(12 * 3600);

type Upstream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// Why the stream could not open.
#[derive(Debug)]
enum Refused {
    /// No live session, or its token can not be refreshed.
    SignedOut,
    /// The API said no (its status and body), or can not be reached.
    Api(u16, Value),
}

/// One browser's stream.
struct Feed {
    portal: Arc<Portal>,
    session: String,
    /// The next position to ask the API for (`None`: only new events).
    from: Option<u64>,
    upstream: Option<Upstream>,
    /// Bytes of the upstream's current, unfinished line.
    partial: Vec<u8>,
    /// Messages ready for the browser.
    ready: VecDeque<Bytes>,
}

impl Feed {
    /// Opens the API's stream with the session's (refreshed) token.
    async fn connect(&mut self) -> Result<(), Refused> {
        let s = self.portal.sessions.get(&self.session).ok_or(Refused::SignedOut)?;
        let s = crate::login::access(&self.portal, &self.session, s)
            .await
            .ok_or(Refused::SignedOut)?;
        let mut path = format!("/api/v1/events?heartbeat={HEARTBEAT_SECS}");
        if let Some(from) = self.from {
            path.push_str(&format!("&from={from}"));
        }
        let r = crate::api::to_api(&self.portal, &s, reqwest::Method::GET, &path)
            .timeout(UPSTREAM_MAX)
            .send()
            .await
            .map_err(|e| Refused::Api(502, json!({"message": format!("The API can not be reached: {e}")})))?;
        if !r.status().is_success() {
            let status = r.status().as_u16();
            return Err(Refused::Api(status, r.json().await.unwrap_or(Value::Null)));
        }
        self.upstream = Some(Box::pin(r.bytes_stream()));
        self.partial.clear();
        Ok(())
    }

    /// What one line of the API's stream becomes for the browser.
    fn translate(&mut self, line: &[u8]) -> Option<Bytes> {
        let v: Value = serde_json::from_slice(line).ok()?;
        let position = v["position"].as_u64();
        if let Some(p) = position {
            self.from = Some(p + 1);
        }
        if v.get("closed").is_some() {
            // The token expired: reconnect (with a fresh one) from here.
            self.upstream = None;
            return None;
        }
        if v.get("heartbeat").is_some() {
            return Some(Bytes::from_static(b": heartbeat\n\n"));
        }
        let data = json!({"case": v["subject"], "type": v["type"]});
        Some(Bytes::from(format!(
            "id: {}\nevent: case\ndata: {data}\n\n",
            position.unwrap_or_default()
        )))
    }

    /// The complete lines in `partial`, translated, onto `ready`.
    fn drain_lines(&mut self) {
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            if let Some(msg) = self.translate(&line[..end]) {
                self.ready.push_back(msg);
            }
        }
    }

    /// The next message for the browser; `None` ends the stream (the
    /// browser reconnects after `retry` and resumes by `Last-Event-ID`).
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some(msg) = self.ready.pop_front() {
                return Some(msg);
            }
            if !self.portal.sessions.alive(&self.session) {
                return None;
            }
            if self.upstream.is_none() {
                self.connect().await.ok()?;
            }
            match self.upstream.as_mut()?.next().await {
                Some(Ok(chunk)) => {
                    self.partial.extend_from_slice(&chunk);
                    self.drain_lines();
                }
                // The API went away: the browser reconnects.
                Some(Err(_)) | None => return None,
            }
        }
    }
}

/// `GET /live`: the Server-Sent Events stream for the session's person.
#[get("/live")]
pub async fn live(portal: Data<Portal>, req: HttpRequest) -> HttpResponse {
    let Some((session, _)) = session::of(&portal.sessions, &req) else {
        return refused(Refused::SignedOut);
    };
    let from = req
        .headers()
        .get("Last-Event-ID")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|p| p + 1);
    let mut feed = Feed {
        portal: portal.into_inner(),
        session,
        from,
        upstream: None,
        partial: Vec::new(),
        ready: VecDeque::from([Bytes::from(format!("retry: {RETRY_MS}\n: live\n\n"))]),
    };
    // Opened before answering, so a refusal is a status, which the
    // browser's EventSource takes as "do not retry".
    if let Err(why) = feed.connect().await {
        return refused(why);
    }
    let body = futures::stream::unfold(feed, |mut feed| async move {
        let msg = feed.next().await?;
        Some((Ok::<_, actix_web::Error>(msg), feed))
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body)
}

fn refused(why: Refused) -> HttpResponse {
    let (status, body) = match why {
        Refused::SignedOut => (401, json!({"code": "CW-UNAUTHENTICATED", "message": "Sign in first."})),
        Refused::Api(status, body) => (status, body),
    };
    HttpResponse::build(
        actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::BAD_GATEWAY),
    )
    .insert_header(("Cache-Control", "no-store"))
    .json(body)
}
