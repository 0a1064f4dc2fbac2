//! The REST API, called with the session's own token: the portal can do
//! and see exactly what the person can through the API, no more.

use reqwest::StatusCode;
use serde_json::Value;

use crate::Portal;
use crate::session::Session;

/// `GET path` (with its query) as the session's person.
pub async fn get(portal: &Portal, s: &Session, path: &str) -> anyhow::Result<(StatusCode, Value)> {
    let r = portal
        .http
        .get(format!("{}{path}", portal.bases().map_or("", |b| b.api_base.as_str())))
        .bearer_auth(&s.access)
        .send()
        .await?;
    let status = r.status();
    let body = r.json().await.unwrap_or(Value::Null);
    Ok((status, body))
}

/// `POST path` with a JSON body as the session's person, waiting (up to 5
/// s) for the command's outcome, so the page that follows shows it.
pub async fn post(portal: &Portal, s: &Session, path: &str, body: &Value) -> anyhow::Result<(StatusCode, Value)> {
    let r = portal
        .http
        .post(format!("{}{path}", portal.bases().map_or("", |b| b.api_base.as_str())))
        .bearer_auth(&s.access)
        .header("Prefer", "wait=5")
        .json(body)
        .send()
        .await?;
    let status = r.status();
    let body = r.json().await.unwrap_or(Value::Null);
    Ok((status, body))
}
