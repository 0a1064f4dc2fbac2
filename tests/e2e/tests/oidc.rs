//! The API with tokens from a real OpenID provider in Keycloak's shape
//! (tests/oidc/provider.mjs, started by tests/run): the realms `casewire`
//! and `globex` are trusted beside the dev issuer, `initech` is not. Every
//! bad token is a 401 `CW-UNAUTHENTICATED`; good ones are authorized by the
//! policy like dev tokens.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use casewire::client::Client;
use casewire_e2e::TestApp;
use casewire_oidc::TrustedIssuer;
use casewire_ports::contract::skip;
use serde_json::{Value, json};

fn base() -> Option<String> {
    let Ok(url) = std::env::var("CASEWIRE_TEST_OIDC") else {
        skip("set CASEWIRE_TEST_OIDC=http://127.0.0.1:PORT (tests/run starts tests/oidc/provider.mjs and sets it)");
        return None;
    };
    Some(url.trim_end_matches('/').to_owned())
}

async fn token(base: &str, realm: &str, client: &str, form: &[(&str, &str)]) -> String {
    casewire_e2e::provider_token(base, realm, client, form).await
}

async fn user_token(base: &str, realm: &str, client: &str, user: &str) -> String {
    token(
        base,
        realm,
        client,
        &[("grant_type", "password"), ("username", user), ("password", user)],
    )
    .await
}

#[tokio::test]
async fn the_api_takes_keycloak_shaped_tokens_and_refuses_bad_ones() {
    let Some(base) = base() else { return };
    let app = TestApp::spawn_configured(|c| {
        // No leeway, so the 1-second token below expires promptly.
        c.auth.leeway_secs = 0;
        c.auth.issuers = vec![
            TrustedIssuer {
                issuer: format!("{base}/realms/casewire"),
                audiences: vec!["casewire".into()],
                jwks_uri: None,
                tenant: None,
            },
            TrustedIssuer {
                issuer: format!("{base}/realms/globex"),
                audiences: vec!["casewire".into()],
                jwks_uri: None,
                tenant: None,
            },
        ];
    })
    .await;
    let as_token = |t: &str| Client::new(&app.url(), t);

    // A user of the casewire realm works like the dev issuer's alice.
    let alice = as_token(&user_token(&base, "casewire", "casewire-tests", "alice").await);
    let opened = alice
        .post_wait(
            "/api/v1/cases",
            &json!({"definition": "customer-complaint", "title": "Via Keycloak", "queue": "support",
                    "data": {"channel": "email", "product": "Kettle K200"}}),
        )
        .await
        .unwrap();
    assert_eq!(opened.status.as_u16(), 201, "{}", opened.body);
    assert_eq!(opened.body["createdBy"], "alice", "preferred_username is the actor");
    let id = opened.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        alice.get(&format!("/api/v1/cases/{id}")).await.unwrap().status.as_u16(),
        200
    );

    // A service account (client_credentials) is an actor too.
    let bot = as_token(&token(&base, "casewire", "intake-bot", &[("grant_type", "client_credentials")]).await);
    let tagged = bot
        .post_wait(&format!("/api/v1/cases/{id}/tags"), &json!({"tag": "from-bot"}))
        .await
        .unwrap();
    assert_eq!(tagged.status.as_u16(), 200, "{}", tagged.body);
    let history = alice.get(&format!("/api/v1/cases/{id}/history")).await.unwrap();
    let actors: Vec<&str> = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["actor"].as_str())
        .collect();
    assert!(actors.contains(&"service-account-intake-bot"), "{actors:?}");

    // The requester of the realm sees nothing they did not ask for.
    let dave = as_token(&user_token(&base, "casewire", "casewire-tests", "dave").await);
    assert_eq!(
        dave.get(&format!("/api/v1/cases/{id}")).await.unwrap().status.as_u16(),
        404
    );

    // A trusted realm that maps to another tenant: the case does not exist there.
    let gina = as_token(&user_token(&base, "globex", "casewire-tests", "gina").await);
    let r = gina.get(&format!("/api/v1/cases/{id}")).await.unwrap();
    assert_eq!(r.status.as_u16(), 404, "{}", r.body);
    assert_eq!(gina.get("/api/v1/cases").await.unwrap().body["items"], json!([]));

    // Bad tokens: every one is 401, and says so with a stable code.
    let good = user_token(&base, "casewire", "casewire-tests", "alice").await;
    let parts: Vec<&str> = good.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["realm_access"]["roles"] = json!(["case-admin"]);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let mut none_header = header.clone();
    none_header["alg"] = json!("none");
    let alg_none = format!("{}.{}.", URL_SAFE_NO_PAD.encode(none_header.to_string()), parts[1]);
    let mut hs_header = header.clone();
    hs_header["alg"] = json!("HS256");
    let alg_hs = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(hs_header.to_string()),
        parts[1],
        parts[2]
    );
    let untrusted = user_token(&base, "initech", "casewire-tests", "ivy").await;
    let short = user_token(&base, "casewire", "short-lived", "alice").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for (what, bad) in [
        ("tampered payload", tampered.as_str()),
        ("alg none", alg_none.as_str()),
        ("alg HS256", alg_hs.as_str()),
        ("untrusted issuer", untrusted.as_str()),
        ("expired", short.as_str()),
        ("not a JWT", "garbage"),
    ] {
        let r = as_token(bad).get("/api/v1/cases").await.unwrap();
        assert_eq!(
            (r.status.as_u16(), r.body["code"].as_str()),
            (401, Some("CW-UNAUTHENTICATED")),
            "{what}: {}",
            r.body
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused() {
    let Some(base) = base() else { return };
    let app = TestApp::spawn_configured(|c| {
        c.auth.issuers = vec![TrustedIssuer {
            issuer: format!("{base}/realms/casewire"),
            audiences: vec!["another-api".into()],
            jwks_uri: None,
            tenant: None,
        }];
    })
    .await;
    let t = user_token(&base, "casewire", "casewire-tests", "alice").await;
    let r = Client::new(&app.url(), &t).get("/api/v1/cases").await.unwrap();
    assert_eq!(r.status.as_u16(), 401, "{}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains("audience"), "{}", r.body);
    app.stop().await;
}
