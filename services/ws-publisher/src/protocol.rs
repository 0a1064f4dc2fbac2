//! The messages of `GET /api/v1/ws` and its close codes. Every frame is a
//! JSON text frame; the README documents the same.

use casewire_domain::Case;
use casewire_domain::types::{QueueName, Tag};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Why the server closed a socket. 4000–4999 are the application's range
/// (RFC 6455 §7.4.2); the rest are the standard ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCode {
    /// 1000: the client closed, or the server answered its close.
    Normal,
    /// 1001: the process is shutting down; reconnect and resume.
    GoingAway,
    /// 1013: this process holds `ws.max_sockets` already; try another
    /// or later.
    TryAgainLater,
    /// 4400: the first message was not `auth`, or a frame was not JSON text.
    Protocol,
    /// 4401: no token, a malformed or invalid one, or none within
    /// `ws.auth_timeout_secs`.
    Unauthenticated,
    /// 4403: the policy does not let this caller stream events, or a
    /// refresh named another subject or tenant.
    Forbidden,
    /// 4408: the token expired; reconnect with a fresh one and resume.
    TokenExpired,
    /// 4429: this caller holds `ws.max_per_principal` sockets already.
    TooManySockets,
    /// 4509: the socket fell `ws.buffer` events behind; resume after the
    /// position in the reason.
    Behind,
    /// 4500: the server could not go on (a store failed); resume later.
    ServerError,
}

impl CloseCode {
    pub fn code(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::GoingAway => 1001,
            CloseCode::TryAgainLater => 1013,
            CloseCode::Protocol => 4400,
            CloseCode::Unauthenticated => 4401,
            CloseCode::Forbidden => 4403,
            CloseCode::TokenExpired => 4408,
            CloseCode::TooManySockets => 4429,
            CloseCode::Behind => 4509,
            CloseCode::ServerError => 4500,
        }
    }

    /// The label of the `casewire_ws_closed_total` metric.
    pub fn label(self) -> &'static str {
        match self {
            CloseCode::Normal => "normal",
            CloseCode::GoingAway => "going-away",
            CloseCode::TryAgainLater => "process-full",
            CloseCode::Protocol => "protocol",
            CloseCode::Unauthenticated => "unauthenticated",
            CloseCode::Forbidden => "forbidden",
            CloseCode::TokenExpired => "token-expired",
            CloseCode::TooManySockets => "too-many-sockets",
            CloseCode::Behind => "behind",
            CloseCode::ServerError => "server-error",
        }
    }
}

/// What a client sends.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum ClientMessage {
    /// The token: the first message when the upgrade had no
    /// `Authorization` header, and later a refresh that extends the socket.
    Auth { token: String },
    /// Starts a subscription. With `after`, every visible event past that
    /// position is sent first (resume), then the live ones.
    Subscribe {
        id: String,
        #[serde(default)]
        filter: Filter,
        #[serde(default)]
        after: Option<u64>,
    },
    /// Ends a subscription.
    Unsubscribe { id: String },
}

/// Which of the visible cases a subscription follows. Every field given
/// must hold (AND); none given is every case the caller may see. They
/// match the case as it is when the event is sent.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// One case.
    #[serde(default)]
    pub case: Option<Uuid>,
    /// The cases in a queue.
    #[serde(default)]
    pub queue: Option<QueueName>,
    /// The cases assigned to the caller.
    #[serde(default)]
    pub mine: bool,
    /// The cases carrying a tag.
    #[serde(default)]
    pub tag: Option<Tag>,
}

impl Filter {
    /// Whether `case` passes; `me` is the caller's name (the assignee the
    /// API's `assignee=me` means).
    pub fn matches(&self, case: &Case, me: &str) -> bool {
        self.case.is_none_or(|id| id == case.id)
            && self.queue.as_ref().is_none_or(|q| *q == case.queue)
            && (!self.mine || case.assignee.as_deref() == Some(me))
            && self.tag.as_ref().is_none_or(|t| case.tags.contains(t))
    }
}

/// What the server sends, besides events (which are written by hand so
/// that each event is serialised once for every socket).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ServerMessage {
    /// Authenticated (or refreshed): live from `position` on.
    Ready {
        subject: String,
        tenant: String,
        /// Seconds since the epoch; the socket closes with 4408 then.
        #[serde(rename = "expiresAt")]
        expires_at: Option<i64>,
        position: u64,
    },
    /// The subscription caught up: everything up to `position` was sent,
    /// and live events follow.
    Subscribed {
        id: String,
        position: u64,
    },
    Unsubscribed {
        id: String,
    },
    /// Sent when idle: every subscription is complete up to `position`,
    /// the place to resume after.
    Heartbeat {
        position: u64,
    },
    /// A message the server could not act on; the socket stays open.
    Error {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        code: &'static str,
        message: String,
    },
}

impl ServerMessage {
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// One event for one subscription: `{"type":"event","subscription":..,
/// "position":..,"event":<CloudEvent>}`, around the event's JSON as the
/// hub serialised it once.
pub fn event_frame(subscription: &str, position: u64, event_json: &str) -> String {
    let id = serde_json::to_string(subscription).unwrap_or_default();
    format!(r#"{{"type":"event","subscription":{id},"position":{position},"event":{event_json}}}"#)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_parse_and_unknown_fields_are_refused() {
        let m: ClientMessage =
            serde_json::from_str(r#"{"type":"subscribe","id":"a","filter":{"queue":"support","mine":true},"after":7}"#)
                .unwrap_or_else(|e| panic!("{e}"));
        let ClientMessage::Subscribe { id, filter, after } = m else {
            panic!("not a subscribe")
        };
        assert_eq!((id.as_str(), after, filter.mine), ("a", Some(7), true));
        assert!(
            serde_json::from_str::<ClientMessage>(r#"{"type":"subscribe","id":"a","filter":{"stage":"x"}}"#).is_err()
        );
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"auth","token":"t","extra":1}"#).is_err());
        assert!(
            serde_json::from_str::<ClientMessage>(r#"{"type":"subscribe","id":"a","filter":{"queue":"No Such!"}}"#)
                .is_err()
        );
    }

    #[test]
    fn an_event_frame_is_json_with_the_event_inside() {
        let frame = event_frame("s\"1", 42, r#"{"id":"x"}"#);
        let v: serde_json::Value = serde_json::from_str(&frame).unwrap_or_default();
        assert_eq!(v["subscription"], "s\"1");
        assert_eq!(v["position"], 42);
        assert_eq!(v["event"]["id"], "x");
    }
}
