//! A small client of the public API, used by the demo loader, the bench and
//! the tests. It speaks plain HTTP+JSON like any integrator would.

use anyhow::Context;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// An authenticated API client.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// A response: status, headers of interest and the JSON body (`Null` when empty).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub etag: Option<String>,
    /// `Retry-After`, sent with 503.
    pub retry_after: Option<String>,
    pub body: Value,
}

impl Client {
    /// A client of `base` (e.g. `http://127.0.0.1:8080`) with a bearer token.
    pub fn new(base: &str, token: &str) -> Self {
        Client {
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .build()
                .unwrap_or_default(),
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        }
    }

    /// The bearer token it sends (for the WebSocket, which takes the same).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Fetches a dev token through the dev issuer's password grant.
    pub async fn login(base: &str, user: &str, password: &str) -> anyhow::Result<Client> {
        // Each demo tenant is a realm of its own.
        let realm = casewire_oidc::DevIssuer::user(user).map_or(casewire_oidc::dev::DEV_REALM, |u| u.tenant);
        let url = format!(
            "{}/dev-auth/realms/{realm}/protocol/openid-connect/token",
            base.trim_end_matches('/')
        );
        let res: Value = reqwest::Client::new()
            .post(&url)
            .form(&[("grant_type", "password"), ("username", user), ("password", password)])
            .send()
            .await
            .with_context(|| format!("POST {url}"))?
            .error_for_status()?
            .json()
            .await?;
        let token = res["access_token"]
            .as_str()
            .context("no access_token in the token response")?;
        Ok(Client::new(base, token))
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request; `wait` adds `Prefer: wait=N`.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        wait: Option<u64>,
    ) -> anyhow::Result<Reply> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        if let Some(w) = wait {
            req = req.header("Prefer", format!("wait={w}"));
        }
        let res = req.send().await.with_context(|| format!("{method} {path}"))?;
        let status = res.status();
        let header = |name: &str| res.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let (etag, retry_after) = (header("etag"), header("retry-after"));
        let bytes = res.bytes().await?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Ok(Reply {
            status,
            etag,
            retry_after,
            body,
        })
    }

    /// GET.
    pub async fn get(&self, path: &str) -> anyhow::Result<Reply> {
        self.send(Method::GET, path, None, None).await
    }

    /// POST a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Reply> {
        self.send(Method::POST, path, Some(body), None).await
    }

    /// POST a JSON body and wait for the outcome.
    pub async fn post_wait(&self, path: &str, body: &Value) -> anyhow::Result<Reply> {
        self.send(Method::POST, path, Some(body), Some(10)).await
    }

    /// POST a YAML definition.
    pub async fn import_definition(&self, yaml: &str) -> anyhow::Result<Reply> {
        self.post_yaml("/api/v1/definitions", yaml).await
    }

    /// POST a YAML business calendar.
    pub async fn import_calendar(&self, yaml: &str) -> anyhow::Result<Reply> {
        self.post_yaml("/api/v1/calendars", yaml).await
    }

    async fn post_yaml(&self, path: &str, yaml: &str) -> anyhow::Result<Reply> {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("content-type", "application/yaml")
            .body(yaml.to_owned())
            .send()
            .await?;
        let status = res.status();
        let body = res.json().await.unwrap_or(Value::Null);
        Ok(Reply {
            status,
            etag: None,
            retry_after: None,
            body,
        })
    }
}
