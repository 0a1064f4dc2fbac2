//! Bearer token verification against trusted issuers' JWKS.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::{ClaimMapping, Principal};

/// Why a token was refused. All of them answer 401; the message is for logs
/// and for the client's `message` field.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("no bearer token")]
    Missing,
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("token issuer '{0}' is not trusted")]
    UntrustedIssuer(String),
    #[error("token algorithm {0} is not accepted")]
    Algorithm(String),
    #[error("token signing key '{0}' is unknown to the issuer")]
    UnknownKey(String),
    #[error("token rejected: {0}")]
    Invalid(String),
    #[error("token lacks subject or issuer claims")]
    Claims,
    #[error("token names tenant '{claimed}', but its issuer serves tenant '{issuer_tenant}'")]
    TenantMismatch { claimed: String, issuer_tenant: String },
    #[error("issuer '{0}' is bound to no tenant (set its tenant, or use a .../realms/<realm> URL)")]
    NoTenant(String),
    #[error("identity provider unreachable: {0}")]
    Unavailable(String),
}

/// An issuer whose tokens we accept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedIssuer {
    /// Exact `iss` value, e.g. `https://kc.example/realms/acme`.
    pub issuer: String,
    /// Accepted audiences (`aud`, or `azp` when `aud` is absent).
    pub audiences: Vec<String>,
    /// Where the keys are; discovered from the issuer when `None`.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// The tenant of every token this issuer signs; when `None`, the realm
    /// of a Keycloak-style URL (`.../realms/<realm>`). One issuer serves
    /// one tenant: a `tenant` claim that disagrees is refused.
    #[serde(default)]
    pub tenant: Option<String>,
}

impl TrustedIssuer {
    /// The tenant this issuer's tokens belong to, if it has one.
    pub fn tenant(&self) -> Option<&str> {
        self.tenant
            .as_deref()
            .or_else(|| crate::principal::realm_of(&self.issuer))
    }
}

#[derive(Default)]
struct IssuerKeys {
    keys: HashMap<String, (DecodingKey, Algorithm)>,
    last_fetch: Option<Instant>,
}

/// Tokens remembered as verified, per process. A Keycloak access token
/// lives minutes, so this holds every active user's several times over.
const VERIFIED_TOKENS: usize = 8192;

/// Tokens that verified, with the principal they map to, each until its
/// `exp`. An RS256 signature check costs tens of microseconds and every
/// request carries one; a client sends the same token until it expires.
type VerifiedTokens = Mutex<lru::LruCache<String, Arc<Principal>>>;

/// Verifies bearer tokens. Cheap to clone.
#[derive(Clone)]
pub struct JwksVerifier {
    issuers: Arc<Vec<TrustedIssuer>>,
    cache: Arc<Mutex<HashMap<String, IssuerKeys>>>,
    verified: Arc<VerifiedTokens>,
    /// One lock per issuer: concurrent misses on one issuer fetch once, and
    /// a slow issuer does not hold up the others' refreshes.
    refresh_locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    http: reqwest::Client,
    mapping: ClaimMapping,
    leeway: u64,
    min_refresh: Duration,
}

impl std::fmt::Debug for JwksVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksVerifier")
            .field("issuers", &self.issuers)
            .finish_non_exhaustive()
    }
}

fn algorithm_of(jwk: &jsonwebtoken::jwk::Jwk) -> Option<Algorithm> {
    use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve};
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => Some(Algorithm::ES256),
        AlgorithmParameters::EllipticCurve(_)
        | AlgorithmParameters::OctetKey(_)
        | AlgorithmParameters::OctetKeyPair(_) => None,
    }
}

impl JwksVerifier {
    /// A verifier trusting `issuers`. `leeway` applies to exp and nbf.
    pub fn new(issuers: Vec<TrustedIssuer>, mapping: ClaimMapping, leeway: Duration) -> Self {
        JwksVerifier {
            issuers: Arc::new(issuers),
            cache: Arc::default(),
            verified: Arc::new(Mutex::new(lru::LruCache::new(
                std::num::NonZeroUsize::new(VERIFIED_TOKENS).unwrap_or(std::num::NonZeroUsize::MIN),
            ))),
            refresh_locks: Arc::default(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            mapping,
            leeway: leeway.as_secs(),
            min_refresh: Duration::from_secs(10),
        }
    }

    /// Sets the least time between two key fetches of one issuer, which
    /// stops garbage tokens with random `kid`s from hammering the issuer.
    pub fn with_min_refresh(mut self, interval: Duration) -> Self {
        self.min_refresh = interval;
        self
    }

    /// Installs keys without fetching (the embedded dev issuer's own keys).
    pub fn seed(&self, issuer: &str, jwks: &Value) -> Result<(), AuthError> {
        let keys = Self::parse_jwks(jwks)?;
        if let Ok(mut cache) = self.cache.lock() {
            let entry = cache.entry(issuer.to_owned()).or_default();
            entry.keys.extend(keys);
        }
        Ok(())
    }

    fn parse_jwks(jwks: &Value) -> Result<HashMap<String, (DecodingKey, Algorithm)>, AuthError> {
        let set: JwkSet =
            serde_json::from_value(jwks.clone()).map_err(|e| AuthError::Unavailable(format!("bad JWKS: {e}")))?;
        let mut out = HashMap::new();
        for jwk in &set.keys {
            let (Some(kid), Some(alg)) = (jwk.common.key_id.clone(), algorithm_of(jwk)) else {
                continue;
            };
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                out.insert(kid, (key, alg));
            }
        }
        Ok(out)
    }

    fn cached(&self, issuer: &str, kid: &str) -> Option<(DecodingKey, Algorithm)> {
        let cache = self.cache.lock().ok()?;
        cache.get(issuer)?.keys.get(kid).cloned()
    }

    async fn refresh(&self, trusted: &TrustedIssuer) -> Result<(), AuthError> {
        let lock = self
            .refresh_locks
            .lock()
            .map(|mut locks| locks.entry(trusted.issuer.clone()).or_default().clone())
            .unwrap_or_default();
        let _guard = lock.lock().await;
        let recently = self
            .cache
            .lock()
            .ok()
            .and_then(|c| c.get(&trusted.issuer).and_then(|k| k.last_fetch))
            .is_some_and(|t| t.elapsed() < self.min_refresh);
        if recently {
            return Ok(());
        }
        let result = self.fetch(trusted).await;
        if let Ok(mut cache) = self.cache.lock() {
            let entry = cache.entry(trusted.issuer.clone()).or_default();
            entry.last_fetch = Some(Instant::now());
            if let Ok(keys) = &result {
                // Replace, so keys the issuer dropped stop verifying, and
                // forget what they verified.
                let dropped = entry.keys.keys().any(|kid| !keys.contains_key(kid));
                entry.keys = keys.clone();
                if dropped && let Ok(mut verified) = self.verified.lock() {
                    verified.clear();
                }
            }
        }
        result.map(|_| ())
    }

    async fn get_json(&self, url: &str) -> Result<Value, AuthError> {
        let unavailable = |e: reqwest::Error| AuthError::Unavailable(format!("{url}: {e}"));
        let res = self.http.get(url).send().await.map_err(unavailable)?;
        res.error_for_status()
            .map_err(unavailable)?
            .json()
            .await
            .map_err(unavailable)
    }

    async fn fetch(&self, trusted: &TrustedIssuer) -> Result<HashMap<String, (DecodingKey, Algorithm)>, AuthError> {
        let jwks_uri = match &trusted.jwks_uri {
            Some(u) => u.clone(),
            None => {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    trusted.issuer.trim_end_matches('/')
                );
                let doc = self.get_json(&url).await?;
                doc.get("jwks_uri")
                    .and_then(Value::as_str)
                    .ok_or_else(|| AuthError::Unavailable(format!("{url} has no jwks_uri")))?
                    .to_owned()
            }
        };
        let jwks = self.get_json(&jwks_uri).await?;
        tracing::info!(issuer = %trusted.issuer, jwks_uri = %jwks_uri, "Fetched the issuer's signing keys");
        Self::parse_jwks(&jwks)
    }

    /// Verifies a bearer token and maps its claims; a token that verified
    /// before is answered from memory until its `exp`.
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        if let Some(principal) = self.remembered(token) {
            return Ok(principal);
        }
        let principal = self.verify_now(token).await?;
        if let Ok(mut verified) = self.verified.lock() {
            verified.put(token.to_owned(), Arc::new(principal.clone()));
        }
        Ok(principal)
    }

    /// The principal of a token verified before, if it has not expired.
    fn remembered(&self, token: &str) -> Option<Principal> {
        let mut verified = self.verified.lock().ok()?;
        let principal = verified.get(token)?.clone();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        // Strictly before `exp`: at expiry the full check decides, leeway
        // and all, and tells the client why.
        if principal.expires_at.is_some_and(|exp| exp > 0 && now < exp as u64) {
            Some((*principal).clone())
        } else {
            verified.pop(token);
            None
        }
    }

    async fn verify_now(&self, token: &str) -> Result<Principal, AuthError> {
        let header = decode_header(token).map_err(|e| AuthError::Malformed(e.to_string()))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(AuthError::Algorithm(format!("{:?}", header.alg)));
        }
        let kid = header
            .kid
            .clone()
            .ok_or_else(|| AuthError::Malformed("no kid in header".into()))?;
        // Read iss before verifying only to pick the issuer's keys; the
        // signature check below covers it.
        let unverified = unverified_claims(token)?;
        let iss = unverified
            .get("iss")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let trusted = self
            .issuers
            .iter()
            .find(|t| t.issuer == iss)
            .ok_or_else(|| AuthError::UntrustedIssuer(iss.clone()))?;
        let (key, alg) = match self.cached(&iss, &kid) {
            Some(k) => k,
            None => {
                self.refresh(trusted).await?;
                self.cached(&iss, &kid)
                    .ok_or_else(|| AuthError::UnknownKey(kid.clone()))?
            }
        };
        if alg != header.alg {
            return Err(AuthError::Algorithm(format!("{:?} with a {:?} key", header.alg, alg)));
        }
        let mut validation = Validation::new(alg);
        validation.leeway = self.leeway;
        validation.validate_nbf = true;
        validation.set_issuer(&[&trusted.issuer]);
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        let data = decode::<Value>(token, &key, &validation).map_err(|e| AuthError::Invalid(e.to_string()))?;
        check_audience(&data.claims, &trusted.audiences)?;
        let tenant = trusted
            .tenant()
            .ok_or_else(|| AuthError::NoTenant(trusted.issuer.clone()))?;
        Principal::from_claims(&data.claims, &self.mapping, tenant).map_err(|e| match e {
            crate::ClaimsError::Missing => AuthError::Claims,
            crate::ClaimsError::TenantMismatch { claimed, issuer_tenant } => {
                AuthError::TenantMismatch { claimed, issuer_tenant }
            }
            crate::ClaimsError::InvalidTenant(e) => AuthError::Invalid(e),
        })
    }
}

fn unverified_claims(token: &str) -> Result<Value, AuthError> {
    use base64::Engine as _;
    let payload = token
        .split('.')
        .nth(1)
        .ok_or_else(|| AuthError::Malformed("not a JWT".into()))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|e| AuthError::Malformed(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| AuthError::Malformed(e.to_string()))
}

/// `aud` (string or list) must contain an accepted audience; Keycloak access
/// tokens often carry only `azp`, which is then checked instead.
fn check_audience(claims: &Value, accepted: &[String]) -> Result<(), AuthError> {
    let found: Vec<&str> = match claims.get("aud") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => claims.get("azp").and_then(Value::as_str).into_iter().collect(),
    };
    if found.iter().any(|a| accepted.iter().any(|x| x == a)) {
        Ok(())
    } else {
        Err(AuthError::Invalid(format!("audience {found:?} is not accepted")))
    }
}
