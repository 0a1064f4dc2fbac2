//! The dev issuer's browser login: the authorization code flow with PKCE
//! (S256), as the portal drives it and as Keycloak offers it. Codes are
//! used once and bound to client, redirect URI and verifier; redirects go
//! to loopback only; refresh tokens rotate and end at logout; a user of
//! one realm never logs in to another.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use casewire_e2e::TestApp;
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::Value;

const VERIFIER: &str = "a-verifier-of-at-least-43-characters-0123456789";
const CLIENT: &str = "casewire-portal";

fn challenge() -> String {
    casewire_oidc::grants::s256(VERIFIER)
}

struct Flow {
    http: reqwest::Client,
    realm: String,
    redirect: String,
}

impl Flow {
    fn new(app: &TestApp, realm: &str) -> Flow {
        Flow {
            http: reqwest::Client::builder().redirect(Policy::none()).build().unwrap(),
            realm: format!("{}/dev-auth/realms/{realm}", app.url()),
            redirect: format!("{}/auth/callback", app.url()),
        }
    }

    fn params(&self, redirect: &str) -> Vec<(&'static str, String)> {
        vec![
            ("response_type", "code".into()),
            ("client_id", CLIENT.into()),
            ("redirect_uri", redirect.into()),
            ("state", "s-1".into()),
            ("nonce", "n-1".into()),
            ("scope", "openid".into()),
            ("code_challenge", challenge()),
            ("code_challenge_method", "S256".into()),
        ]
    }

    /// Posts the login form; the response is not followed.
    async fn login(&self, user: &str, password: &str) -> reqwest::Response {
        let mut form = self.params(&self.redirect);
        form.push(("username", user.into()));
        form.push(("password", password.into()));
        self.http
            .post(format!("{}/protocol/openid-connect/auth", self.realm))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    async fn token(&self, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}/protocol/openid-connect/token", self.realm))
            .form(form)
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap())
    }

    /// Logs in and returns the code from the redirect.
    async fn code(&self, user: &str) -> String {
        let r = self.login(user, user).await;
        assert_eq!(r.status(), StatusCode::FOUND);
        let to = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
        assert!(to.as_str().starts_with(&self.redirect), "{to}");
        let q: std::collections::HashMap<_, _> = to.query_pairs().into_owned().collect();
        assert_eq!(q["state"], "s-1", "the state comes back");
        q["code"].clone()
    }

    async fn exchange(&self, code: &str, verifier: &str) -> (StatusCode, Value) {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", CLIENT),
            ("redirect_uri", &self.redirect),
            ("code_verifier", verifier),
        ])
        .await
    }
}

#[tokio::test]
async fn a_browser_logs_in_with_a_code_and_pkce_refreshes_and_logs_out() {
    let app = TestApp::spawn().await;
    let flow = Flow::new(&app, "casewire");
    let doc: Value = flow
        .http
        .get(format!("{}/.well-known/openid-configuration", flow.realm))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["code_challenge_methods_supported"], serde_json::json!(["S256"]));
    let page = flow
        .http
        .get(doc["authorization_endpoint"].as_str().unwrap())
        .query(&flow.params(&flow.redirect))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Sign in to casewire") && html.contains("name=\"password\""));

    let wrong = flow.login("alice", "nope").await;
    assert_eq!(wrong.status(), StatusCode::OK, "the page again, no redirect");
    assert!(wrong.text().await.unwrap().contains("wrong password"));
    let other_realm = flow.login("gina", "gina").await;
    assert_eq!(other_realm.status(), StatusCode::OK, "globex's user is not casewire's");

    let code = flow.code("alice").await;
    let (status, tokens) = flow.exchange(&code, VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    for field in ["access_token", "id_token", "refresh_token"] {
        assert!(tokens[field].is_string(), "{field} in {tokens}");
    }
    let api = reqwest::Client::new()
        .get(format!("{}/api/v1/cases", app.url()))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::OK, "the API takes the code flow's token");
    let (status, again) = flow.exchange(&code, VERIFIER).await;
    assert_eq!(
        (status, again["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let code = flow.code("alice").await;
    let (status, body) = flow
        .exchange(&code, "a-different-verifier-of-43-characters-000000")
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );

    let refresh = tokens["refresh_token"].as_str().unwrap();
    let refresh_form = |t: &str| -> [(&'static str, String); 3] {
        [
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", t.to_owned()),
            ("client_id", CLIENT.to_owned()),
        ]
    };
    let owned = refresh_form(refresh);
    let form: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, renewed) = flow.token(&form).await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    let (status, _) = flow.token(&form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a refresh token works once");

    let next = renewed["refresh_token"].as_str().unwrap();
    let ended = flow
        .http
        .post(format!("{}/protocol/openid-connect/logout", flow.realm))
        .form(&[("refresh_token", next), ("client_id", CLIENT)])
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), StatusCode::NO_CONTENT, "back-channel logout");
    let out = flow
        .http
        .get(format!("{}/protocol/openid-connect/logout", flow.realm))
        .query(&[("post_logout_redirect_uri", flow.redirect.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::FOUND);
    let owned = refresh_form(next);
    let form: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(flow.token(&form).await.0, StatusCode::BAD_REQUEST, "logged out");
    app.stop().await;
}

#[tokio::test]
async fn no_code_goes_to_a_foreign_redirect_or_without_pkce() {
    let app = TestApp::spawn().await;
    let flow = Flow::new(&app, "casewire");
    let ask = |params: Vec<(&'static str, String)>| {
        let (http, realm) = (flow.http.clone(), flow.realm.clone());
        async move {
            http.get(format!("{realm}/protocol/openid-connect/auth"))
                .query(&params)
                .send()
                .await
                .unwrap()
        }
    };
    let evil = ask(flow.params("https://evil.example/callback")).await;
    assert_eq!(evil.status(), StatusCode::BAD_REQUEST);
    assert!(evil.headers().get("location").is_none(), "never redirected there");
    let mut plain = flow.params(&flow.redirect);
    plain.retain(|(k, _)| *k != "code_challenge_method");
    plain.push(("code_challenge_method", "plain".into()));
    assert_eq!(ask(plain).await.status(), StatusCode::BAD_REQUEST);
    let mut implicit = flow.params(&flow.redirect);
    implicit[0].1 = "token".into();
    assert_eq!(ask(implicit).await.status(), StatusCode::BAD_REQUEST);
    let out = flow
        .http
        .get(format!("{}/protocol/openid-connect/logout", flow.realm))
        .query(&[("post_logout_redirect_uri", "https://evil.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::BAD_REQUEST, "no open redirect at logout");
    app.stop().await;
}
