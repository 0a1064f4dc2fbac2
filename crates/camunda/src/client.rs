//! A client of the external-task API (`/engine-rest/external-task`) and of
//! the rest of the Case API, with a service account's bearer token: the
//! built-in task worker and mailbox reader use it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::variables::{plain_variables, typed_variables};

/// What went wrong talking to the API.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The API was not reached or did not answer in time.
    #[error("{0}")]
    Transport(String),
    /// The API answered with an error.
    #[error("HTTP {status}: {message}")]
    Api { status: u16, message: String, body: Value },
    /// No token could be had.
    #[error("getting a token: {0}")]
    Token(String),
    /// The answer was not what the protocol says.
    #[error("unexpected answer: {0}")]
    Protocol(String),
}

impl ClientError {
    /// Whether trying again later may work (the API or the identity
    /// provider was down, busy or slow), rather than never.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Transport(_) | ClientError::Token(_) => true,
            ClientError::Api { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            ClientError::Protocol(_) => false,
        }
    }

    /// The API's stable error code (`CW-...`), if it gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { body, .. } => body["code"].as_str(),
            _ => None,
        }
    }
}

/// Where bearer tokens come from.
#[async_trait::async_trait]
pub trait TokenSource: Send + Sync + std::fmt::Debug {
    /// A token that is valid now.
    async fn token(&self) -> Result<String, ClientError>;
    /// Forgets a cached token (the API said 401).
    fn invalidate(&self) {}
}

/// A service account: the OAuth `client_credentials` grant, with the token
/// kept until shortly before it expires.
#[derive(Debug)]
pub struct ClientCredentials {
    http: reqwest::Client,
    token_url: String,
    client_id: String,
    secret: String,
    cached: Mutex<Option<(String, Instant)>>,
}

impl ClientCredentials {
    pub fn new(token_url: &str, client_id: &str, secret: &str) -> Self {
        ClientCredentials {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            token_url: token_url.to_owned(),
            client_id: client_id.to_owned(),
            secret: secret.to_owned(),
            cached: Mutex::new(None),
        }
    }

    fn cached(&self) -> Option<String> {
        let guard = self.cached.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        guard
            .as_ref()
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(t, _)| t.clone())
    }
}

#[async_trait::async_trait]
impl TokenSource for ClientCredentials {
    async fn token(&self) -> Result<String, ClientError> {
        if let Some(token) = self.cached() {
            return Ok(token);
        }
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.secret.as_str()),
        ];
        let res = self
            .http
            .post(&self.token_url)
            .form(&form)
            .send()
            .await
            .map_err(|e| ClientError::Token(format!("{}: {e}", self.token_url)))?;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        let Some(token) = body["access_token"].as_str().filter(|_| status.is_success()) else {
            let why = body["error_description"]
                .as_str()
                .or(body["error"].as_str())
                .unwrap_or("");
            return Err(ClientError::Token(format!("{}: HTTP {status} {why}", self.token_url)));
        };
        // Renewed a little before it expires, so a request never carries a
        // token that lapses on the way.
        let ttl = body["expires_in"].as_u64().unwrap_or(60);
        let until = Instant::now() + Duration::from_secs(ttl - (ttl / 5).min(30));
        *self.cached.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((token.to_owned(), until));
        Ok(token.to_owned())
    }

    fn invalidate(&self) {
        *self.cached.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

/// A fetched and locked external task, variables in plain JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct LockedTask {
    pub id: String,
    pub topic_name: String,
    /// The case id.
    pub process_instance_id: String,
    /// The case key.
    pub business_key: Option<String>,
    /// `None` until a failure set them.
    pub retries: Option<i64>,
    pub variables: Value,
}

impl LockedTask {
    fn from_dto(dto: &Value) -> Result<LockedTask, ClientError> {
        let text = |field: &str| {
            dto[field]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| ClientError::Protocol(format!("a task without '{field}'")))
        };
        Ok(LockedTask {
            id: text("id")?,
            topic_name: text("topicName")?,
            process_instance_id: text("processInstanceId")?,
            business_key: dto["businessKey"].as_str().map(str::to_owned),
            retries: dto["retries"].as_i64(),
            variables: plain_variables(Some(&dto["variables"])).map_err(|e| ClientError::Protocol(e.to_string()))?,
        })
    }
}

/// A request body.
#[derive(Debug, Clone, Copy)]
enum Payload<'a> {
    Json(&'a Value),
    /// Content type and bytes.
    Raw(&'a str, &'a [u8]),
}

/// The client.
#[derive(Debug, Clone)]
pub struct ExternalTaskClient {
    http: reqwest::Client,
    base: String,
    tokens: Arc<dyn TokenSource>,
}

impl ExternalTaskClient {
    /// A client of the API at `base` (`http://case-api:8080`).
    pub fn new(base: &str, tokens: Arc<dyn TokenSource>) -> Self {
        ExternalTaskClient {
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            base: base.trim_end_matches('/').to_owned(),
            tokens,
        }
    }

    /// One request with the token; a 401 gets one more try with a new token
    /// (the old one may have been revoked or expired early).
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Payload<'_>>,
        headers: &[(&str, String)],
        timeout: Duration,
    ) -> Result<(StatusCode, Value), ClientError> {
        let mut retried = false;
        loop {
            let token = self.tokens.token().await?;
            let mut req = self
                .http
                .request(method.clone(), format!("{}{path}", self.base))
                .bearer_auth(token)
                .timeout(timeout);
            for (name, value) in headers {
                req = req.header(*name, value);
            }
            match body {
                Some(Payload::Json(json)) => req = req.json(json),
                Some(Payload::Raw(content_type, bytes)) => {
                    req = req.header("content-type", content_type).body(bytes.to_vec());
                }
                None => {}
            }
            let res = req
                .send()
                .await
                .map_err(|e| ClientError::Transport(format!("{method} {path}: {e}")))?;
            let status = res.status();
            if status == StatusCode::UNAUTHORIZED && !retried {
                self.tokens.invalidate();
                retried = true;
                continue;
            }
            let text = res.text().await.unwrap_or_default();
            let value = serde_json::from_str(&text).unwrap_or(Value::Null);
            return Ok((status, value));
        }
    }

    /// A request that must succeed (2xx).
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<Value, ClientError> {
        let (status, value) = self.send(method, path, body.map(Payload::Json), &[], timeout).await?;
        if status.is_success() {
            Ok(value)
        } else {
            Err(api_error(status, value))
        }
    }

    /// Fetches and locks up to `max_tasks` tasks of `topics` (name, lock
    /// in ms), waiting up to `wait_ms` for one to exist.
    pub async fn fetch_and_lock(
        &self,
        worker_id: &str,
        max_tasks: u32,
        wait_ms: u64,
        topics: &[(&str, u64)],
    ) -> Result<Vec<LockedTask>, ClientError> {
        let topics: Vec<Value> = topics
            .iter()
            .map(|(name, lock)| json!({"topicName": name, "lockDuration": lock}))
            .collect();
        let body = json!({
            "workerId": worker_id, "maxTasks": max_tasks, "usePriority": true,
            "asyncResponseTimeout": wait_ms, "topics": topics,
        });
        let timeout = Duration::from_millis(wait_ms) + Duration::from_secs(30);
        let value = self
            .call(
                Method::POST,
                "/engine-rest/external-task/fetchAndLock",
                Some(&body),
                timeout,
            )
            .await?;
        let Value::Array(tasks) = value else {
            return Err(ClientError::Protocol("fetchAndLock did not answer a list".into()));
        };
        tasks.iter().map(LockedTask::from_dto).collect()
    }

    async fn verb(&self, id: &str, verb: &str, body: &Value) -> Result<(), ClientError> {
        let path = format!("/engine-rest/external-task/{id}/{verb}");
        self.call(Method::POST, &path, Some(body), Duration::from_secs(30))
            .await
            .map(|_| ())
    }

    /// Completes a task with output variables (plain JSON).
    pub async fn complete(&self, id: &str, worker_id: &str, variables: &Value) -> Result<(), ClientError> {
        let body = json!({"workerId": worker_id, "variables": typed_variables(variables, None)});
        self.verb(id, "complete", &body).await
    }

    /// Reports a failure; at 0 `retries` the task gets an incident.
    pub async fn failure(
        &self,
        id: &str,
        worker_id: &str,
        message: &str,
        details: &str,
        retries: u32,
        retry_timeout_ms: u64,
    ) -> Result<(), ClientError> {
        let body = json!({
            "workerId": worker_id, "errorMessage": message, "errorDetails": details,
            "retries": retries, "retryTimeout": retry_timeout_ms,
        });
        self.verb(id, "failure", &body).await
    }

    /// A call to the rest of the API (`/api/v1/...`), answered whatever its
    /// status; `wait_secs` asks for the command's outcome (`Prefer: wait`).
    pub async fn api(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        wait_secs: Option<u64>,
    ) -> Result<(StatusCode, Value), ClientError> {
        let headers: Vec<(&str, String)> = wait_secs.map(|s| ("prefer", format!("wait={s}"))).into_iter().collect();
        let timeout = Duration::from_secs(30 + wait_secs.unwrap_or(0));
        self.send(method, path, body.map(Payload::Json), &headers, timeout)
            .await
    }

    /// A POST of raw bytes (a mail to `/api/v1/inbound/email`), answered
    /// whatever its status.
    pub async fn post_bytes(
        &self,
        path: &str,
        content_type: &str,
        bytes: &[u8],
        timeout: Duration,
    ) -> Result<(StatusCode, Value), ClientError> {
        self.send(
            Method::POST,
            path,
            Some(Payload::Raw(content_type, bytes)),
            &[],
            timeout,
        )
        .await
    }
}

/// An error answer: Casewire's `{code, message}` or Camunda's `{type, message}`.
pub fn api_error(status: StatusCode, body: Value) -> ClientError {
    let message = body["message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    ClientError::Api {
        status: status.as_u16(),
        message,
        body,
    }
}
