//! `JwksVerifier` against a real, certified OpenID provider: panva's
//! oidc-provider run by `tests/oidc/provider.mjs` with Keycloak-shaped
//! realms (`<base>/realms/<realm>`, discovery, `.../protocol/openid-connect/
//! {token,certs}`). `tests/run` starts one and sets `CASEWIRE_TEST_OIDC` to
//! its base URL, and `CASEWIRE_TEST_OIDC_SCRIPT` to the script, from which
//! the key-rotation and rate-limit tests start providers of their own.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use casewire_oidc::{AuthError, ClaimMapping, JwksVerifier, Principal, TrustedIssuer};
use casewire_ports::contract::skip;
use serde_json::{Value, json};

/// The shared provider's base URL, or `None` (after saying why) without one.
fn base() -> Option<String> {
    let Ok(url) = std::env::var("CASEWIRE_TEST_OIDC") else {
        skip("set CASEWIRE_TEST_OIDC=http://127.0.0.1:PORT (tests/run starts tests/oidc/provider.mjs and sets it)");
        return None;
    };
    Some(url.trim_end_matches('/').to_owned())
}

/// The provider script, for tests that need a provider of their own.
fn script() -> Option<String> {
    let Ok(path) = std::env::var("CASEWIRE_TEST_OIDC_SCRIPT") else {
        skip("set CASEWIRE_TEST_OIDC_SCRIPT=<repo>/tests/oidc/provider.mjs (tests/run sets it)");
        return None;
    };
    Some(path)
}

fn issuer(base: &str, realm: &str) -> String {
    format!("{base}/realms/{realm}")
}

/// A verifier trusting `issuers` for `audience`, keys found by discovery.
fn verifier(issuers: &[&str], audience: &str, leeway: Duration) -> JwksVerifier {
    let trusted = issuers
        .iter()
        .map(|i| TrustedIssuer {
            issuer: (*i).to_owned(),
            audiences: vec![audience.to_owned()],
            jwks_uri: None,
            tenant: None,
        })
        .collect();
    JwksVerifier::new(trusted, ClaimMapping::default(), leeway)
}

fn casewire_verifier(iss: &str) -> JwksVerifier {
    verifier(&[iss], "casewire", Duration::from_secs(5))
}

/// An access token from the issuer's token endpoint; `client`'s secret is
/// `<client>-secret`, as provider.mjs defines it.
async fn token(iss: &str, client: &str, form: &[(&str, &str)]) -> String {
    let res = reqwest::Client::new()
        .post(format!("{iss}/protocol/openid-connect/token"))
        .basic_auth(client, Some(format!("{client}-secret")))
        .form(form)
        .send()
        .await
        .expect("the token endpoint answers");
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert!(
        status.is_success(),
        "token request for {client} at {iss}: {status} {body}"
    );
    body["access_token"].as_str().expect("an access_token").to_owned()
}

/// Resource-owner password grant (passwords equal user names).
async fn user_token(iss: &str, client: &str, user: &str) -> String {
    token(
        iss,
        client,
        &[("grant_type", "password"), ("username", user), ("password", user)],
    )
    .await
}

async fn service_token(iss: &str, client: &str) -> String {
    token(iss, client, &[("grant_type", "client_credentials")]).await
}

fn decode_part(token: &str, i: usize) -> Value {
    let part = token.split('.').nth(i).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn encode_part(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

fn kid_of(token: &str) -> String {
    decode_part(token, 0)["kid"].as_str().unwrap().to_owned()
}

/// `token` with its header replaced, payload and signature kept.
fn with_header(token: &str, header: &Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    format!("{}.{}.{}", encode_part(header), parts[1], parts[2])
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A provider process of the test's own, killed when dropped (also when
/// the test panics).
struct OwnProvider {
    child: Child,
    base: String,
}

impl OwnProvider {
    fn start(script: &str, port: u16, key: &Path) -> OwnProvider {
        let log = key.with_extension("log");
        let mut child = Command::new(std::env::var("CASEWIRE_TEST_NODE").unwrap_or_else(|_| "node".into()))
            .arg(script)
            .args(["--port", &port.to_string(), "--key"])
            .arg(key)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("node runs (install Node.js 20 or later)");
        let stdout = child.stdout.take().unwrap();
        let provider = OwnProvider {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let (ready, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("oidc-provider listening on ") {
                    let _ = ready.send(());
                }
            }
        });
        if ready_rx.recv_timeout(Duration::from_secs(30)).is_err() {
            panic!(
                "{script} did not start on port {port}:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        provider
    }
}

impl Drop for OwnProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn the_provider_is_shaped_like_keycloak() {
    let Some(base) = base() else { return };
    let iss = issuer(&base, "casewire");
    let doc: Value = reqwest::get(format!("{iss}/.well-known/openid-configuration"))
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], json!(iss));
    assert_eq!(doc["jwks_uri"], json!(format!("{iss}/protocol/openid-connect/certs")));
    assert_eq!(
        doc["token_endpoint"],
        json!(format!("{iss}/protocol/openid-connect/token"))
    );
    let grants = doc["grant_types_supported"].as_array().unwrap();
    assert!(grants.contains(&json!("password")) && grants.contains(&json!("client_credentials")));
    // The token the tests rely on: a JWT access token for audience casewire.
    let t = user_token(&iss, "casewire-tests", "alice").await;
    let (header, claims) = (decode_part(&t, 0), decode_part(&t, 1));
    assert_eq!(header["alg"], "RS256");
    assert_eq!(
        (claims["iss"].as_str(), claims["aud"].as_str()),
        (Some(iss.as_str()), Some("casewire"))
    );
}

#[tokio::test]
async fn a_user_token_maps_to_a_principal() {
    let Some(base) = base() else { return };
    let iss = issuer(&base, "casewire");
    let v = casewire_verifier(&iss);

    let alice = v
        .verify(&user_token(&iss, "casewire-tests", "alice").await)
        .await
        .unwrap();
    assert_eq!(alice.name, "alice");
    assert_eq!(
        alice.roles,
        vec![
            "case-worker",
            "default-roles-casewire",
            "offline_access",
            "uma_authorization"
        ],
        "Keycloak's default roles come with every user"
    );
    assert_eq!(alice.groups, vec!["/queues/support", "/queues/complaints"]);
    assert_eq!(alice.tenant, "casewire");
    assert_eq!(alice.email.as_deref(), Some("alice@casewire.example"));
    assert_eq!(alice.issuer, iss);
    assert!(
        !alice.sub.is_empty() && alice.sub != "alice",
        "sub is the provider's subject id"
    );

    let bob = v
        .verify(&user_token(&iss, "casewire-tests", "bob").await)
        .await
        .unwrap();
    assert!(bob.name == "bob" && bob.has_role("case-manager"), "{bob:?}");
    assert_eq!(bob.groups.len(), 4, "bob works every queue");
    let dave = v
        .verify(&user_token(&iss, "casewire-tests", "dave").await)
        .await
        .unwrap();
    assert!(dave.has_role("requester"));
    assert_eq!(dave.email.as_deref(), Some("dave@example.com"));
    let norah = v
        .verify(&user_token(&iss, "casewire-tests", "norah").await)
        .await
        .unwrap();
    assert_eq!(norah.email, None, "a profile without an address");
    let mallory = v
        .verify(&user_token(&iss, "casewire-tests", "mallory").await)
        .await
        .unwrap();
    assert_eq!(mallory.email, None, "an unverified address is no address");
}

#[tokio::test]
async fn a_tenant_claim_that_disagrees_with_the_realm_is_refused() {
    let Some(base) = base() else { return };
    let iss = issuer(&base, "casewire");
    let trudy = user_token(&iss, "casewire-tests", "trudy").await;
    assert_eq!(
        decode_part(&trudy, 1)["tenant"],
        "globex",
        "the token claims another tenant"
    );
    let err = casewire_verifier(&iss).verify(&trudy).await.unwrap_err();
    assert_eq!(
        err,
        AuthError::TenantMismatch {
            claimed: "globex".into(),
            issuer_tenant: "casewire".into()
        }
    );
}

#[tokio::test]
async fn an_es256_token_verifies() {
    let Some(base) = base() else { return };
    let iss = issuer(&base, "casewire");
    let t = user_token(&iss, "casewire-es256", "alice").await;
    assert_eq!(decode_part(&t, 0)["alg"], "ES256");
    let p = casewire_verifier(&iss).verify(&t).await.unwrap();
    assert_eq!((p.name.as_str(), p.tenant.as_str()), ("alice", "casewire"));
}

#[tokio::test]
async fn a_client_credentials_token_is_a_service_account() {
    let Some(base) = base() else { return };
    let iss = issuer(&base, "casewire");
    let p: Principal = casewire_verifier(&iss)
        .verify(&service_token(&iss, "intake-bot").await)
        .await
        .unwrap();
    assert_eq!(p.name, "service-account-intake-bot");
    assert!(
        p.has_role("integration") && p.has_role("default-roles-casewire"),
        "{p:?}"
    );
    assert!(p.groups.is_empty());
    assert_eq!(p.email, None);
    assert_eq!(p.tenant, "casewire");
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let Some(base) = base() else { return };
    let iss = issuer(&base, "casewire");
    // Client short-lived's access tokens live one second.
    let t = service_token(&iss, "short-lived").await;
    let claims = decode_part(&t, 1);
    let exp = claims["exp"].as_u64().unwrap();
    assert_eq!(exp - claims["iat"].as_u64().unwrap(), 1);
    // jsonwebtoken refuses only once now > exp + leeway (whole seconds).
    loop {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        if now > exp {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let err = verifier(&[&iss], "casewire", Duration::ZERO)
        .verify(&t)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, AuthError::Invalid(m) if m.contains("Expired")),
        "{err:?}"
    );
    // The same token within a generous leeway: it was refused for its age only.
    let p = verifier(&[&iss], "casewire", Duration::from_secs(60))
        .verify(&t)
        .await
        .unwrap();
    assert_eq!(p.name, "service-account-short-lived");
}

#[tokio::test]
async fn a_remembered_token_is_refused_once_it_expires() {
    let Some(base) = base() else { return };
    let iss = issuer(&base, "casewire");
    let v = verifier(&[&iss], "casewire", Duration::ZERO);
    // The token lives one second: verify it within that second, so the
    // verifier remembers it (a slow start just takes another token).
    let mut remembered = None;
    for _ in 0..5 {
        let t = service_token(&iss, "short-lived").await;
        if v.verify(&t).await.is_ok() {
            remembered = Some(t);
            break;
        }
    }
    let t = remembered.expect("a one-second token verified within its second");
    let exp = decode_part(&t, 1)["exp"].as_u64().unwrap();
    loop {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        if now > exp {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let err = v.verify(&t).await.unwrap_err();
    assert!(
        matches!(&err, AuthError::Invalid(m) if m.contains("Expired")),
        "the same verifier checks it in full again: {err:?}"
    );
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused() {
    let Some(base) = base() else { return };
    let iss = issuer(&base, "casewire");
    let t = user_token(&iss, "casewire-tests", "alice").await;
    let err = verifier(&[&iss], "other", Duration::from_secs(5))
        .verify(&t)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, AuthError::Invalid(m) if m.contains("audience")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_tampered_payload_is_refused() {
    let Some(base) = base() else { return };
    let iss = issuer(&base, "casewire");
    let v = casewire_verifier(&iss);
    let t = user_token(&iss, "casewire-tests", "alice").await;
    assert!(v.verify(&t).await.is_ok(), "the untouched token verifies");

    let mut claims = decode_part(&t, 1);
    claims["realm_access"]["roles"] = json!(["case-admin"]);
    let parts: Vec<&str> = t.split('.').collect();
    let forged = format!("{}.{}.{}", parts[0], encode_part(&claims), parts[2]);
    let err = v.verify(&forged).await.unwrap_err();
    assert!(matches!(err, AuthError::Invalid(_)), "{err:?}");
}

#[tokio::test]
async fn tokens_under_another_algorithm_are_refused() {
    let Some(base) = base() else { return };
    let iss = issuer(&base, "casewire");
    let v = casewire_verifier(&iss);
    let t = user_token(&iss, "casewire-tests", "alice").await;
    let kid = kid_of(&t);
    let claims = decode_part(&t, 1);

    // HS256 keyed with the issuer's public modulus: the classic confusion
    // of a public key for an HMAC secret.
    let jwks: Value = reqwest::get(format!("{iss}/protocol/openid-connect/certs"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let n = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == json!(kid))
        .unwrap()["n"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid.clone());
    let hs = jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(n.as_bytes())).unwrap();
    assert_eq!(v.verify(&hs).await.unwrap_err(), AuthError::Algorithm("HS256".into()));

    // alg none with an empty signature; jsonwebtoken does not even parse it.
    let none = format!(
        "{}.{}.",
        encode_part(&json!({"alg": "none", "typ": "JWT", "kid": kid})),
        encode_part(&claims)
    );
    let err = v.verify(&none).await.unwrap_err();
    assert!(
        matches!(err, AuthError::Malformed(_) | AuthError::Algorithm(_)),
        "{err:?}"
    );

    // The RSA key's kid under ES256: the key's algorithm decides, not the header.
    let es = with_header(&t, &json!({"alg": "ES256", "typ": "at+jwt", "kid": kid}));
    let err = v.verify(&es).await.unwrap_err();
    assert!(matches!(err, AuthError::Algorithm(_)), "{err:?}");
}

#[tokio::test]
async fn realms_are_trusted_one_by_one_and_carry_their_tenant() {
    let Some(base) = base() else { return };
    let (casewire, globex) = (issuer(&base, "casewire"), issuer(&base, "globex"));
    let gina = user_token(&globex, "casewire-tests", "gina").await;

    let err = casewire_verifier(&casewire).verify(&gina).await.unwrap_err();
    assert_eq!(err, AuthError::UntrustedIssuer(globex.clone()));

    let both = verifier(&[&casewire, &globex], "casewire", Duration::from_secs(5));
    let p = both.verify(&gina).await.unwrap();
    assert_eq!((p.name.as_str(), p.tenant.as_str()), ("gina", "globex"));
    assert!(p.has_role("case-admin") && p.has_role("default-roles-globex"), "{p:?}");
    assert_eq!(p.issuer, globex);
    let alice = both
        .verify(&user_token(&casewire, "casewire-tests", "alice").await)
        .await
        .unwrap();
    assert_eq!(alice.tenant, "casewire");
}

#[tokio::test]
async fn a_rotated_key_is_fetched_and_the_dropped_one_stops_verifying() {
    let Some(script) = script() else { return };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let first = OwnProvider::start(&script, port, &dir.path().join("k1.json"));
    let iss = issuer(&first.base, "casewire");
    // No pause between fetches, so the unknown kid after the restart is
    // fetched at once; the pause itself is the rate-limit test's business.
    let v = casewire_verifier(&iss).with_min_refresh(Duration::ZERO);
    let old = user_token(&iss, "casewire-tests", "alice").await;
    assert_eq!(v.verify(&old).await.unwrap().name, "alice");
    drop(first);

    // Same issuer URL, a new key file: the provider now signs and publishes only k2.
    let second = OwnProvider::start(&script, port, &dir.path().join("k2.json"));
    let new = user_token(&iss, "casewire-tests", "bob").await;
    assert_ne!(kid_of(&new), kid_of(&old), "a new key id after the rotation");
    assert_eq!(
        v.verify(&new).await.unwrap().name,
        "bob",
        "the same verifier learns the new key"
    );
    assert_eq!(
        v.verify(&old).await.unwrap_err(),
        AuthError::UnknownKey(kid_of(&old)),
        "the refetched JWKS replaced the keys, so the dropped key no longer verifies"
    );
    drop(second);
}

#[tokio::test]
async fn unknown_kids_do_not_each_fetch_the_keys() {
    let Some(script) = script() else { return };
    let dir = tempfile::tempdir().unwrap();
    let provider = OwnProvider::start(&script, free_port(), &dir.path().join("k.json"));
    let iss = issuer(&provider.base, "casewire");
    let genuine = user_token(&iss, "casewire-tests", "alice").await;
    let limited = casewire_verifier(&iss); // the default pause between fetches
    let eager = casewire_verifier(&iss).with_min_refresh(Duration::from_millis(100));
    limited.verify(&genuine).await.unwrap();
    eager.verify(&genuine).await.unwrap();
    // With the provider gone, any fetch would fail as Unavailable: an
    // UnknownKey answer proves that no fetch was made.
    drop(provider);

    let started = Instant::now();
    for _ in 0..50 {
        let kid = uuid::Uuid::now_v7().to_string();
        let garbage = with_header(&genuine, &json!({"alg": "RS256", "typ": "at+jwt", "kid": kid}));
        assert_eq!(limited.verify(&garbage).await.unwrap_err(), AuthError::UnknownKey(kid));
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(
        limited.verify(&genuine).await.unwrap().name,
        "alice",
        "cached keys still serve"
    );

    // The control: past its pause, an unknown kid does make a fetch.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let garbage = with_header(&genuine, &json!({"alg": "RS256", "typ": "at+jwt", "kid": "nope"}));
    let err = eager.verify(&garbage).await.unwrap_err();
    assert!(matches!(err, AuthError::Unavailable(_)), "{err:?}");
}
