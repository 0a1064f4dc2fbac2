//! Sessions: the person's tokens stay on the server, the browser holds an
//! opaque id in an `HttpOnly`, `SameSite=Lax` cookie (`Secure` outside
//! loopback), and every form carries the session's CSRF token. Kept in
//! memory: a restart logs people out, and several replicas need sticky
//! sessions until a shared store backs them.

use std::collections::HashMap;
use std::sync::Mutex;

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite};
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};

/// The session cookie's name.
pub const COOKIE: &str = "cw_session";
/// A session unused this long is gone.
const IDLE: i64 = 8 * 3600;

/// One logged-in person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub username: String,
    pub realm: String,
    pub access: String,
    pub access_expires: DateTime<Utc>,
    pub refresh: Option<String>,
    pub id_token: Option<String>,
    /// The token every form of this session must carry.
    pub csrf: String,
    pub last_seen: DateTime<Utc>,
    /// Whether the API lets this person filter by SLA (staff), once asked.
    pub sla_filter: Option<bool>,
}

/// A fresh unguessable token (256 bits, URL-safe).
pub fn fresh_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The sessions of this process.
#[derive(Debug, Default)]
pub struct Sessions {
    inner: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Stores a new session; returns its id.
    pub fn insert(&self, session: Session) -> String {
        let id = fresh_token();
        if let Ok(mut all) = self.inner.lock() {
            let cutoff = Utc::now() - Duration::seconds(IDLE);
            all.retain(|_, s| s.last_seen > cutoff);
            all.insert(id.clone(), session);
        }
        id
    }

    /// The session of `id`, if it is alive (and now seen).
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut all = self.inner.lock().ok()?;
        let s = all.get_mut(id)?;
        if s.last_seen < Utc::now() - Duration::seconds(IDLE) {
            all.remove(id);
            return None;
        }
        s.last_seen = Utc::now();
        Some(s.clone())
    }

    /// Replaces a session's state (new tokens after a refresh).
    pub fn update(&self, id: &str, session: Session) {
        if let Ok(mut all) = self.inner.lock()
            && let Some(s) = all.get_mut(id)
        {
            *s = session;
        }
    }

    /// Whether `id` is a live session, without counting this as a use
    /// (an open live stream does not keep an idle session alive).
    pub fn alive(&self, id: &str) -> bool {
        let cutoff = Utc::now() - Duration::seconds(IDLE);
        self.inner
            .lock()
            .is_ok_and(|all| all.get(id).is_some_and(|s| s.last_seen > cutoff))
    }

    /// Ends a session.
    pub fn remove(&self, id: &str) -> Option<Session> {
        self.inner.lock().ok()?.remove(id)
    }
}

/// The cookie that carries a session id.
pub fn cookie(id: &str, secure: bool) -> Cookie<'static> {
    Cookie::build(COOKIE, id.to_owned())
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .finish()
}

/// The cookie that removes it.
pub fn removal(secure: bool) -> Cookie<'static> {
    let mut c = cookie("", secure);
    c.make_removal();
    c
}

/// The request's session id and session, if it has a live one.
pub fn of(sessions: &Sessions, req: &HttpRequest) -> Option<(String, Session)> {
    let id = req.cookie(COOKIE)?.value().to_owned();
    sessions.get(&id).map(|s| (id, s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session {
            username: "alice".into(),
            realm: "casewire".into(),
            access: "a".into(),
            access_expires: Utc::now(),
            refresh: None,
            id_token: None,
            csrf: fresh_token(),
            last_seen: Utc::now(),
            sla_filter: None,
        }
    }

    #[test]
    fn a_session_lives_until_removed_or_idle() {
        let s = Sessions::default();
        let id = s.insert(session());
        assert_eq!(s.get(&id).map(|x| x.username), Some("alice".into()));
        assert!(s.get("forged").is_none());
        assert!(s.alive(&id) && !s.alive("forged"));
        assert!(s.remove(&id).is_some());
        assert!(s.get(&id).is_none());
        assert!(!s.alive(&id));
        let mut old = session();
        old.last_seen = Utc::now() - Duration::seconds(IDLE + 1);
        let id = s.insert(old);
        assert!(s.get(&id).is_none(), "idle too long");
    }

    #[test]
    fn the_cookie_is_http_only_lax_and_secure_when_asked() {
        let c = cookie("x", true);
        assert_eq!(
            (c.http_only(), c.secure(), c.same_site()),
            (Some(true), Some(true), Some(SameSite::Lax))
        );
        assert_eq!(cookie("x", false).secure(), Some(false));
    }
}
