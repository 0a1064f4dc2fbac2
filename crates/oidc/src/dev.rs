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

/// The roles Keycloak gives every user of a realm besides their own, so
/// that the dev tokens look like a real realm's (and rules keyed on "exactly
/// one role" are caught in dev as they would be in production).
pub fn keycloak_default_roles(realm: &str) -> [String; 3] {
    [
        format!("default-roles-{realm}"),
        "offline_access".to_owned(),
        "uma_authorization".to_owned(),
    ]
}

/// The tenant whose realm is the dev issuer's main one (`casewire token`,
/// the banner).
pub const DEV_REALM: &str = "casewire";

/// The embedded OIDC issuer: one realm per demo tenant
/// (`<realms>/casewire`, `<realms>/globex`), all signed with one key, since
/// an issuer is bound to one tenant.
#[derive(Clone)]
pub struct DevIssuer {
    realms: String,
    audience: String,
    kid: String,
    encoding: EncodingKey,
    jwks: Value,
}

impl std::fmt::Debug for DevIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevIssuer")
            .field("realms", &self.realms)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Where the key lives inside a data dir.
pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("dev-issuer-key.pem")
}

/// Writes `bytes` to a new file readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Narrows a key file that others can read (written by an older release,
/// or copied) to its owner.
fn keep_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "The dev issuer key was readable by others; narrowing it to 0600");
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

impl DevIssuer {
    /// Loads the key from `data_dir`, creating it on first use (mode 0600).
    /// `realms` is the base URL of the realms (`http://host/dev-auth/realms`).
    pub fn load_or_create(data_dir: &Path, realms: &str, audience: &str) -> Result<Self, DevIssuerError> {
        let path = key_path(data_dir);
        let err = |message: String| DevIssuerError::Key {
            path: path.clone(),
            message,
        };
        let key = if path.exists() {
            keep_private(&path).map_err(|e| err(e.to_string()))?;
            let pem = std::fs::read_to_string(&path).map_err(|e| err(e.to_string()))?;
            RsaPrivateKey::from_pkcs8_pem(&pem).map_err(|e| err(e.to_string()))?
        } else {
            std::fs::create_dir_all(data_dir).map_err(|e| err(e.to_string()))?;
            let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).map_err(|e| err(e.to_string()))?;
            let pem = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| err(e.to_string()))?;
            // Write then rename, so a crash never leaves half a key behind.
            let tmp = path.with_extension("pem.tmp");
            write_private(&tmp, pem.as_bytes()).map_err(|e| err(e.to_string()))?;
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
            realms: realms.trim_end_matches('/').to_owned(),
            audience: audience.to_owned(),
            kid,
            encoding,
            jwks,
        })
    }

    /// The `iss` of the main realm's tokens.
    pub fn issuer(&self) -> String {
        self.issuer_for(DEV_REALM)
    }

    /// The base URL of the realms.
    pub fn realms(&self) -> &str {
        &self.realms
    }

    /// The `iss` of a tenant's tokens.
    pub fn issuer_for(&self, tenant: &str) -> String {
        format!("{}/{tenant}", self.realms)
    }

    /// The tenants (realms) the demo users belong to.
    pub fn tenants() -> Vec<&'static str> {
        let mut tenants: Vec<&str> = DEMO_USERS.iter().map(|u| u.tenant).collect();
        tenants.sort_unstable();
        tenants.dedup();
        tenants
    }

    /// The public keys.
    pub fn jwks(&self) -> &Value {
        &self.jwks
    }

    /// The discovery document of a tenant's realm, Keycloak-shaped.
    pub fn discovery(&self, tenant: &str) -> Value {
        let issuer = self.issuer_for(tenant);
        json!({
            "issuer": issuer,
            "jwks_uri": format!("{issuer}/protocol/openid-connect/certs"),
            "token_endpoint": format!("{issuer}/protocol/openid-connect/token"),
            "authorization_endpoint": format!("{issuer}/protocol/openid-connect/auth"),
            "end_session_endpoint": format!("{issuer}/protocol/openid-connect/logout"),
            "grant_types_supported": ["password", "authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code"],
            "scopes_supported": ["openid", "profile", "email"],
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
        let mut roles: Vec<String> = user.roles.iter().map(|r| (*r).to_owned()).collect();
        roles.extend(keycloak_default_roles(user.tenant));
        let claims = json!({
            "iss": self.issuer_for(user.tenant),
            "sub": format!("dev-{}", user.username),
            "aud": self.audience,
            "azp": self.audience,
            "iat": now,
            "nbf": now,
            "exp": now + ttl_secs,
            "preferred_username": user.username,
            "realm_access": {"roles": roles},
            "groups": user.groups,
            "tenant": user.tenant,
            "email": user.email,
            "email_verified": true,
        });
        self.sign(&claims)
    }

    /// Signs an ID token for a demo user and the client that logged them
    /// in (its `aud`), with the login request's `nonce`.
    pub fn id_token_for(
        &self,
        username: &str,
        client_id: &str,
        nonce: Option<&str>,
        ttl_secs: i64,
    ) -> Result<String, DevIssuerError> {
        let user = Self::user(username).ok_or_else(|| DevIssuerError::UnknownUser(username.to_owned()))?;
        let now = Utc::now().timestamp();
        let mut claims = json!({
            "iss": self.issuer_for(user.tenant),
            "sub": format!("dev-{}", user.username),
            "aud": client_id,
            "azp": client_id,
            "typ": "ID",
            "iat": now,
            "exp": now + ttl_secs,
            "auth_time": now,
            "preferred_username": user.username,
            "email": user.email,
            "email_verified": true,
            "tenant": user.tenant,
        });
        if let Some(n) = nonce {
            claims["nonce"] = json!(n);
        }
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

    const REALMS: &str = "http://127.0.0.1:1/dev-auth/realms";
    const ISS: &str = "http://127.0.0.1:1/dev-auth/realms/casewire";

    fn verifier(issuer: &DevIssuer) -> JwksVerifier {
        let v = JwksVerifier::new(
            DevIssuer::tenants()
                .into_iter()
                .map(|t| TrustedIssuer {
                    issuer: issuer.issuer_for(t),
                    audiences: vec!["casewire".into()],
                    jwks_uri: None,
                    tenant: None,
                })
                .collect(),
            ClaimMapping::default(),
            Duration::from_secs(5),
        );
        for t in DevIssuer::tenants() {
            v.seed(&issuer.issuer_for(t), issuer.jwks()).unwrap();
        }
        v
    }

    #[tokio::test]
    async fn tokens_verify_and_bad_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let issuer = DevIssuer::load_or_create(dir.path(), REALMS, "casewire").unwrap();
        let v = verifier(&issuer);
        let p = v.verify(&issuer.token_for("alice", 60).unwrap()).await.unwrap();
        assert_eq!((p.name.as_str(), p.tenant.as_str()), ("alice", "casewire"));
        assert_eq!(
            p.roles,
            vec![
                "case-worker",
                "default-roles-casewire",
                "offline_access",
                "uma_authorization"
            ],
            "Keycloak's default roles ride along"
        );
        assert_eq!(p.email.as_deref(), Some("alice@casewire.example"));
        let g = v.verify(&issuer.token_for("gina", 60).unwrap()).await.unwrap();
        assert_eq!(g.tenant, "globex", "gina's realm is her tenant");

        let now = Utc::now().timestamp();
        let base = json!({"iss": ISS, "sub": "x", "aud": "casewire", "exp": now + 60, "tenant": "casewire"});
        // A claim naming another tenant than the realm's is refused.
        let mut other_tenant = base.clone();
        other_tenant["tenant"] = json!("globex");
        assert!(matches!(
            v.verify(&issuer.sign(&other_tenant).unwrap()).await,
            Err(AuthError::TenantMismatch { .. })
        ));
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
        let forged = json!({"iss": ISS, "sub": "root", "aud": "casewire", "exp": now + 60, "tenant": "casewire"});
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
        let first = DevIssuer::load_or_create(dir.path(), REALMS, "casewire").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(key_path(dir.path())).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "the key is its owner's alone");
            std::fs::set_permissions(key_path(dir.path()), std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let token = first.token_for("bob", 60).unwrap();
        let second = DevIssuer::load_or_create(dir.path(), REALMS, "casewire").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(key_path(dir.path())).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "a key readable by others is narrowed on load");
        }
        assert_eq!(first.jwks(), second.jwks());
        assert!(verifier(&second).verify(&token).await.is_ok());
        assert!(matches!(
            second.token_for("mallory", 60),
            Err(DevIssuerError::UnknownUser(_))
        ));
    }
}
