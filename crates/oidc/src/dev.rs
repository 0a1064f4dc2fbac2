//! The dev issuer: an RSA signing key kept in the data dir (so tokens stay
//! valid across restarts), a JWKS and discovery document, and demo users.
//! It exists so that a newcomer needs no Keycloak; the runtime refuses to
//! start it outside dev mode.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use chrono::Utc;
use jsonwebtoken::{EncodingKey, Header, encode};
use rsa::RsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

/// A demo login of the dev issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoUser {
    pub username: &'static str,
    pub password: &'static str,
    pub roles: &'static [&'static str],
    pub groups: &'static [&'static str],
    pub tenant: &'static str,
    pub email: &'static str,
    pub description: &'static str,
}

/// The demo users. Passwords equal user names: this is dev mode. Two
/// tenants, so a newcomer can see that nothing crosses them.
pub const DEMO_USERS: &[DemoUser] = &[
    DemoUser {
        username: "alice",
        password: "alice",
        roles: &["case-worker"],
        groups: &["/queues/support", "/queues/complaints"],
        tenant: "casewire",
        email: "alice@casewire.example",
        description: "case worker, queues support and complaints",
    },
    DemoUser {
        username: "bob",
        password: "bob",
        roles: &["case-manager"],
        groups: &["/queues/support", "/queues/claims", "/queues/complaints", "/queues/it"],
        tenant: "casewire",
        email: "bob@casewire.example",
        description: "case manager, all queues",
    },
    DemoUser {
        username: "carol",
        password: "carol",
        roles: &["case-admin"],
        groups: &[],
        tenant: "casewire",
        email: "carol@casewire.example",
        description: "case admin",
    },
    DemoUser {
        username: "dave",
        password: "dave",
        roles: &["requester"],
        groups: &[],
        tenant: "casewire",
        email: "dave@example.com",
        description: "requester, dave@example.com",
    },
    DemoUser {
        username: "erin",
        password: "erin",
        roles: &["case-viewer"],
        groups: &[],
        tenant: "casewire",
        email: "erin@casewire.example",
        description: "case viewer",
    },
    DemoUser {
        username: "intake",
        password: "intake",
        roles: &["integration"],
        groups: &[],
        tenant: "casewire",
        email: "intake@casewire.example",
        description: "integration",
    },
    DemoUser {
        username: "gina",
        password: "gina",
        roles: &["case-admin"],
        groups: &[],
        tenant: "globex",
        email: "gina@globex.example",
        description: "case admin, tenant globex",
    },
    DemoUser {
        username: "hank",
        password: "hank",
        roles: &["case-worker"],
        groups: &["/queues/support"],
        tenant: "globex",
        email: "hank@globex.example",
        description: "case worker, tenant globex",
    },
];

/// Why the dev issuer could not start or sign.
#[derive(Debug, thiserror::Error)]
pub enum DevIssuerError {
    #[error("dev issuer key {path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("unknown demo user '{0}'")]
    UnknownUser(String),
    #[error("signing failed: {0}")]
    Sign(String),
}

/// The embedded OIDC issuer.
#[derive(Clone)]
pub struct DevIssuer {
    issuer: String,
    audience: String,
    kid: String,
    encoding: EncodingKey,
    jwks: Value,
}

impl std::fmt::Debug for DevIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevIssuer")
            .field("issuer", &self.issuer)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Where the key lives inside a data dir.
pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("dev-issuer-key.pem")
}

impl DevIssuer {
    /// Loads the key from `data_dir`, creating it on first use.
    pub fn load_or_create(data_dir: &Path, issuer: &str, audience: &str) -> Result<Self, DevIssuerError> {
        let path = key_path(data_dir);
        let err = |message: String| DevIssuerError::Key {
            path: path.clone(),
            message,
        };
        let key = if path.exists() {
            let pem = std::fs::read_to_string(&path).map_err(|e| err(e.to_string()))?;
            RsaPrivateKey::from_pkcs8_pem(&pem).map_err(|e| err(e.to_string()))?
        } else {
            std::fs::create_dir_all(data_dir).map_err(|e| err(e.to_string()))?;
            let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).map_err(|e| err(e.to_string()))?;
            let pem = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| err(e.to_string()))?;
            // Write then rename, so a crash never leaves half a key behind.
            let tmp = path.with_extension("pem.tmp");
            std::fs::write(&tmp, pem.as_bytes()).map_err(|e| err(e.to_string()))?;
            std::fs::rename(&tmp, &path).map_err(|e| err(e.to_string()))?;
            key
        };
        let pem = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| err(e.to_string()))?;
        let encoding = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| err(e.to_string()))?;
        let b64 = |b: Vec<u8>| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let n = b64(key.n().to_bytes_be());
        let e = b64(key.e().to_bytes_be());
        // The kid is derived from the modulus, so it is stable per key.
        let kid = format!("dev-{}", &n[..16]);
        let jwks = json!({"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e}]});
        Ok(DevIssuer {
            issuer: issuer.trim_end_matches('/').to_owned(),
            audience: audience.to_owned(),
            kid,
            encoding,
            jwks,
        })
    }

    /// The `iss` of its tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The public keys.
    pub fn jwks(&self) -> &Value {
        &self.jwks
    }

    /// The discovery document, Keycloak-shaped.
    pub fn discovery(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{}/protocol/openid-connect/certs", self.issuer),
            "token_endpoint": format!("{}/protocol/openid-connect/token", self.issuer),
            "grant_types_supported": ["password"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
        })
    }

    /// Looks up a demo user.
    pub fn user(username: &str) -> Option<&'static DemoUser> {
        DEMO_USERS.iter().find(|u| u.username == username)
    }

    /// Signs an access token for a demo user, valid for `ttl_secs`.
    pub fn token_for(&self, username: &str, ttl_secs: i64) -> Result<String, DevIssuerError> {
        let user = Self::user(username).ok_or_else(|| DevIssuerError::UnknownUser(username.to_owned()))?;
        let now = Utc::now().timestamp();
        let claims = json!({
            "iss": self.issuer,
            "sub": format!("dev-{}", user.username),
            "aud": self.audience,
            "azp": self.audience,
            "iat": now,
            "nbf": now,
            "exp": now + ttl_secs,
            "preferred_username": user.username,
            "realm_access": {"roles": user.roles},
            "groups": user.groups,
            "tenant": user.tenant,
            "email": user.email,
        });
        self.sign(&claims)
    }

    /// Signs arbitrary claims with the dev key (tests use it for bad tokens).
    pub fn sign(&self, claims: &Value) -> Result<String, DevIssuerError> {
        let mut header = Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        encode(&header, claims, &self.encoding).map_err(|e| DevIssuerError::Sign(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuthError, ClaimMapping, JwksVerifier, TrustedIssuer};
    use std::time::Duration;

    const ISS: &str = "http://127.0.0.1:1/dev-auth/realms/casewire";

    fn verifier(issuer: &DevIssuer) -> JwksVerifier {
        let v = JwksVerifier::new(
            vec![TrustedIssuer {
                issuer: ISS.into(),
                audiences: vec!["casewire".into()],
                jwks_uri: None,
            }],
            ClaimMapping::default(),
            Duration::from_secs(5),
        );
        v.seed(ISS, issuer.jwks()).unwrap();
        v
    }

    #[tokio::test]
    async fn tokens_verify_and_bad_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let issuer = DevIssuer::load_or_create(dir.path(), ISS, "casewire").unwrap();
        let v = verifier(&issuer);
        let p = v.verify(&issuer.token_for("alice", 60).unwrap()).await.unwrap();
        assert_eq!((p.name.as_str(), p.tenant.as_str()), ("alice", "casewire"));
        assert_eq!(p.roles, vec!["case-worker"]);

        let now = Utc::now().timestamp();
        let base = json!({"iss": ISS, "sub": "x", "aud": "casewire", "exp": now + 60, "tenant": "t"});
        let with = |k: &str, val: Value| {
            let mut c = base.clone();
            c[k] = val;
            issuer.sign(&c).unwrap()
        };
        assert!(matches!(
            v.verify(&with("exp", json!(now - 600))).await,
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(
            v.verify(&with("nbf", json!(now + 600))).await,
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(
            v.verify(&with("aud", json!("other"))).await,
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(
            v.verify(&with("iss", json!("http://evil/realms/x"))).await,
            Err(AuthError::UntrustedIssuer(_))
        ));
        // Tampered payload: signature no longer matches.
        let good = issuer.sign(&base).unwrap();
        let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
        let forged = json!({"iss": ISS, "sub": "root", "aud": "casewire", "exp": now + 60, "tenant": "t"});
        parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged.to_string());
        assert!(matches!(v.verify(&parts.join(".")).await, Err(AuthError::Invalid(_))));
        // alg=none and HS256 are refused before any key is looked at.
        let none = format!(
            "{}.{}.",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k"}"#),
            parts[1]
        );
        assert!(v.verify(&none).await.is_err());
        let hs = encode(
            &Header::new(jsonwebtoken::Algorithm::HS256),
            &base,
            &EncodingKey::from_secret(b"secret"),
        )
        .unwrap();
        assert!(matches!(v.verify(&hs).await, Err(AuthError::Algorithm(_))));
        assert!(matches!(v.verify("garbage").await, Err(AuthError::Malformed(_))));
    }

    #[tokio::test]
    async fn the_key_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let first = DevIssuer::load_or_create(dir.path(), ISS, "casewire").unwrap();
        let token = first.token_for("bob", 60).unwrap();
        let second = DevIssuer::load_or_create(dir.path(), ISS, "casewire").unwrap();
        assert_eq!(first.jwks(), second.jwks());
        assert!(verifier(&second).verify(&token).await.is_ok());
        assert!(matches!(
            second.token_for("mallory", 60),
            Err(DevIssuerError::UnknownUser(_))
        ));
    }
}
