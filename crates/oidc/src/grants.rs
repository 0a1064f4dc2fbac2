//! The dev issuer's authorization code flow with PKCE (RFC 6749 §4.1, RFC
//! 7636 with `S256` only), and its refresh tokens: what a browser login to
//! the portal goes through in dev mode, as it would at Keycloak. Codes
//! live for a minute and are used once; refresh tokens are opaque, rotate
//! on every use and live for `REFRESH_TTL`. Both are kept in memory: the
//! dev issuer runs in one process, and a restart only logs people out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// How long an authorization code may be redeemed.
pub const CODE_TTL: Duration = Duration::from_secs(60);
/// How long a refresh token may be used.
pub const REFRESH_TTL: Duration = Duration::from_secs(8 * 3600);

/// What the authorization endpoint was asked for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct AuthRequest {
    pub response_type: String,
    pub client_id: String,
    pub redirect_uri: String,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub code_challenge_method: String,
}

/// Why a request or a grant is refused, as OAuth names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantError {
    /// `invalid_request`, `invalid_grant`, `unsupported_response_type`, ...
    pub error: &'static str,
    pub description: String,
}

fn refuse(error: &'static str, description: impl Into<String>) -> GrantError {
    GrantError {
        error,
        description: description.into(),
    }
}

/// A redirect URI the dev issuer sends codes to: `http(s)` on a loopback
/// host, where it runs itself (it is never exposed beyond loopback).
pub fn is_loopback_redirect(uri: &str) -> bool {
    let Ok(url) = url::Url::parse(uri) else { return false };
    matches!(url.scheme(), "http" | "https")
        && url.fragment().is_none()
        && match url.host() {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        }
}

impl AuthRequest {
    /// Checks what can be checked before anyone logs in. A bad redirect
    /// URI is never redirected to (the caller shows the error instead).
    pub fn check(&self) -> Result<(), GrantError> {
        if !is_loopback_redirect(&self.redirect_uri) {
            return Err(refuse(
                "invalid_request",
                "redirect_uri must be an http(s) URL on a loopback host",
            ));
        }
        if self.response_type != "code" {
            return Err(refuse(
                "unsupported_response_type",
                "only response_type=code is offered",
            ));
        }
        if self.code_challenge_method != "S256" {
            return Err(refuse("invalid_request", "code_challenge_method must be S256 (PKCE)"));
        }
        let c = &self.code_challenge;
        if !(43..=128).contains(&c.len()) || !c.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)) {
            return Err(refuse(
                "invalid_request",
                "code_challenge must be 43 to 128 URL-safe characters",
            ));
        }
        if self.client_id.is_empty() || self.client_id.len() > 200 {
            return Err(refuse("invalid_request", "client_id is required"));
        }
        Ok(())
    }
}

/// `BASE64URL(SHA256(verifier))`, the S256 challenge of a verifier.
pub fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A fresh unguessable token (256 bits, URL-safe).
fn fresh() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[derive(Debug)]
struct Code {
    username: String,
    request: AuthRequest,
    expires: Instant,
}

#[derive(Debug)]
struct Refresh {
    username: String,
    client_id: String,
    expires: Instant,
}

/// Who a redeemed code or refresh token is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    pub username: String,
    pub nonce: Option<String>,
}

/// The codes and refresh tokens handed out.
#[derive(Debug, Default)]
pub struct Grants {
    codes: Mutex<HashMap<String, Code>>,
    refresh: Mutex<HashMap<String, Refresh>>,
}

impl Grants {
    /// A code for `username`, who logged in for `request` (checked).
    pub fn issue_code(&self, username: &str, request: &AuthRequest) -> String {
        let code = fresh();
        let now = Instant::now();
        if let Ok(mut codes) = self.codes.lock() {
            codes.retain(|_, c| c.expires > now);
            codes.insert(
                code.clone(),
                Code {
                    username: username.to_owned(),
                    request: request.clone(),
                    expires: now + CODE_TTL,
                },
            );
        }
        code
    }

    /// Redeems a code: once, in time, by the client it was issued to, for
    /// the same redirect URI, with the verifier of its challenge.
    pub fn redeem_code(
        &self,
        code: &str,
        client_id: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<Granted, GrantError> {
        // Removed before it is checked: a wrong attempt spends it too.
        let found = self.codes.lock().ok().and_then(|mut c| c.remove(code));
        let c = found
            .filter(|c| c.expires > Instant::now())
            .ok_or_else(|| refuse("invalid_grant", "the code is unknown, used or expired"))?;
        if c.request.client_id != client_id || c.request.redirect_uri != redirect_uri {
            return Err(refuse(
                "invalid_grant",
                "the code was issued to another client or redirect_uri",
            ));
        }
        if s256(verifier) != c.request.code_challenge {
            return Err(refuse(
                "invalid_grant",
                "the code_verifier does not match the code_challenge",
            ));
        }
        Ok(Granted {
            username: c.username,
            nonce: c.request.nonce,
        })
    }

    /// A refresh token for `username` at `client_id`.
    pub fn issue_refresh(&self, username: &str, client_id: &str) -> String {
        let token = fresh();
        let now = Instant::now();
        if let Ok(mut refresh) = self.refresh.lock() {
            refresh.retain(|_, r| r.expires > now);
            refresh.insert(
                token.clone(),
                Refresh {
                    username: username.to_owned(),
                    client_id: client_id.to_owned(),
                    expires: now + REFRESH_TTL,
                },
            );
        }
        token
    }

    /// Uses a refresh token (once: the caller issues the next one).
    pub fn redeem_refresh(&self, token: &str, client_id: &str) -> Result<Granted, GrantError> {
        let found = self.refresh.lock().ok().and_then(|mut r| r.remove(token));
        let r = found
            .filter(|r| r.expires > Instant::now() && r.client_id == client_id)
            .ok_or_else(|| {
                refuse(
                    "invalid_grant",
                    "the refresh token is unknown, used, expired or another client's",
                )
            })?;
        Ok(Granted {
            username: r.username,
            nonce: None,
        })
    }

    /// Ends a session: the refresh token no longer works.
    pub fn revoke(&self, token: &str) {
        if let Ok(mut r) = self.refresh.lock() {
            r.remove(token);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

    fn request() -> AuthRequest {
        AuthRequest {
            response_type: "code".into(),
            client_id: "casewire-portal".into(),
            redirect_uri: "http://127.0.0.1:8080/auth/callback".into(),
            state: Some("xyz".into()),
            scope: Some("openid".into()),
            nonce: Some("n-1".into()),
            code_challenge: s256(VERIFIER),
            code_challenge_method: "S256".into(),
        }
    }

    #[test]
    fn the_rfc_7636_example_challenge() {
        assert_eq!(s256(VERIFIER), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn a_code_is_redeemed_once_with_its_verifier_client_and_redirect() {
        let g = Grants::default();
        let r = request();
        let code = g.issue_code("alice", &r);
        let granted = g.redeem_code(&code, &r.client_id, &r.redirect_uri, VERIFIER).unwrap();
        assert_eq!(
            granted,
            Granted {
                username: "alice".into(),
                nonce: Some("n-1".into())
            }
        );
        assert_eq!(
            g.redeem_code(&code, &r.client_id, &r.redirect_uri, VERIFIER)
                .unwrap_err()
                .error,
            "invalid_grant"
        );
        let code = g.issue_code("alice", &r);
        assert!(
            g.redeem_code(&code, &r.client_id, &r.redirect_uri, "wrong-verifier")
                .is_err()
        );
        assert!(
            g.redeem_code(&code, &r.client_id, &r.redirect_uri, VERIFIER).is_err(),
            "a wrong try spends it"
        );
        let code = g.issue_code("alice", &r);
        assert!(g.redeem_code(&code, "other", &r.redirect_uri, VERIFIER).is_err());
        let code = g.issue_code("alice", &r);
        assert!(
            g.redeem_code(&code, &r.client_id, "http://127.0.0.1:1/x", VERIFIER)
                .is_err()
        );
    }

    #[test]
    fn requests_without_pkce_or_to_a_foreign_redirect_are_refused() {
        assert_eq!(request().check(), Ok(()));
        let mut r = request();
        r.code_challenge_method = "plain".into();
        assert!(r.check().unwrap_err().description.contains("S256"));
        let mut r = request();
        r.redirect_uri = "https://evil.example/cb".into();
        assert!(r.check().is_err());
        let mut r = request();
        r.response_type = "token".into();
        assert_eq!(r.check().unwrap_err().error, "unsupported_response_type");
        for ok in ["http://localhost:3000/cb", "http://[::1]:80/cb", "https://127.0.0.2/cb"] {
            assert!(is_loopback_redirect(ok), "{ok}");
        }
        for bad in [
            "http://127.0.0.1.evil.example/cb",
            "javascript:alert(1)",
            "http://localhost/cb#frag",
            "ftp://127.0.0.1/",
        ] {
            assert!(!is_loopback_redirect(bad), "{bad}");
        }
    }

    #[test]
    fn refresh_tokens_rotate_and_stay_with_their_client() {
        let g = Grants::default();
        let t = g.issue_refresh("bob", "casewire-portal");
        assert!(g.redeem_refresh(&t, "another").is_err(), "and that spent it");
        let t = g.issue_refresh("bob", "casewire-portal");
        assert_eq!(g.redeem_refresh(&t, "casewire-portal").unwrap().username, "bob");
        assert!(g.redeem_refresh(&t, "casewire-portal").is_err(), "used once");
        let t = g.issue_refresh("bob", "casewire-portal");
        g.revoke(&t);
        assert!(g.redeem_refresh(&t, "casewire-portal").is_err(), "revoked at logout");
    }
}
