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
