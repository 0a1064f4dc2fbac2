//! The REST API, called with the session's own token: the portal can do
//! and see exactly what the person can through the API, no more.

use reqwest::StatusCode;
use serde_json::Value;

use crate::Portal;
use crate::session::Session;

/// Sends a request to the API: its status and JSON body (`null` when the
/// body is not JSON), or why it could not be sent.
pub async fn send(request: reqwest::RequestBuilder) -> anyhow::Result<(StatusCode, Value)> {
    let r = request.send().await?;
    let status = r.status();
    Ok((status, r.json().await.unwrap_or(Value::Null)))
}

/// A request to the API at `path` with the session's token.
pub fn to_api(portal: &Portal, s: &Session, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    let base = portal.bases().map_or("", |b| b.api_base.as_str());
    portal
        .http
        .request(method, format!("{base}{path}"))
        .bearer_auth(&s.access)
}

/// `GET path` (with its query) as the session's person.
pub async fn get(portal: &Portal, s: &Session, path: &str) -> anyhow::Result<(StatusCode, Value)> {
    send(to_api(portal, s, reqwest::Method::GET, path)).await
}

/// `POST path` with a JSON body as the session's person, waiting (up to 5
/// s) for the command's outcome, so the page that follows shows it.
pub async fn post(portal: &Portal, s: &Session, path: &str, body: &Value) -> anyhow::Result<(StatusCode, Value)> {
    send(
        to_api(portal, s, reqwest::Method::POST, path)
            .header("Prefer", "wait=5")
            .json(body),
    )
    .await
}

/// `DELETE path` as the session's person, waiting for the outcome.
pub async fn delete(portal: &Portal, s: &Session, path: &str) -> anyhow::Result<(StatusCode, Value)> {
    send(to_api(portal, s, reqwest::Method::DELETE, path).header("Prefer", "wait=5")).await
}

/// A path segment, percent-encoded.
pub fn enc(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}

/// Why a call came to nothing: the API's refusal (its status and body,
/// with `code` and `message`), or 502 when it can not be reached.
#[derive(Debug)]
pub struct Refused {
    pub status: actix_web::http::StatusCode,
    pub body: Value,
}

impl Refused {
    /// The API's message.
    pub fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or("The API refused.")
    }

    /// In words for the page, with the stable code: "message (code)".
    pub fn reason(&self) -> String {
        match self.body["code"].as_str() {
            Some(code) => format!("{} ({code})", self.message()),
            None => self.message().to_owned(),
        }
    }
}

/// A call's body when it succeeded, or why it did not.
pub fn outcome(sent: anyhow::Result<(StatusCode, Value)>) -> Result<Value, Refused> {
    use actix_web::http::StatusCode as Http;
    match sent {
        Ok((st, body)) if st.is_success() => Ok(body),
        Ok((st, body)) => Err(Refused {
            status: Http::from_u16(st.as_u16()).unwrap_or(Http::BAD_GATEWAY),
            body,
        }),
        Err(e) => Err(Refused {
            status: Http::BAD_GATEWAY,
            body: serde_json::json!({"message": format!("The API can not be reached: {e}")}),
        }),
    }
}

/// `GET path` that must succeed: its body, or the status and message to
/// show (the API's refusal, or that it can not be reached).
pub async fn get_ok(portal: &Portal, s: &Session, path: &str) -> Result<Value, (actix_web::http::StatusCode, String)> {
    outcome(get(portal, s, path).await).map_err(|r| (r.status, r.message().to_owned()))
}
