//! `casewire.http`: one call of an HTTP endpoint. Variables: `url`
//! (required; it must start with a prefix in `task_worker.http_allow`),
//! `method` (`POST`, the default, `PUT`, `PATCH` or `GET`) and `body` (any
//! JSON; default the case's id and key, the task's id and its variables).
//! Calls are signed like webhooks (Standard Webhooks, `webhook-id` = the
//! task id, so a repeat is recognisable) with `task_worker.http_secret`.
//! The host is resolved and checked before the call and the call goes to
//! the checked addresses (no DNS rebinding), without following redirects.
//! 2xx completes with `status` and `response`; 408, 429, 5xx and network
//! errors are retried; any other answer is an incident.

use std::time::Duration;

use casewire_camunda::LockedTask;
use casewire_notify::webhook::{check_target, signature_header};
use reqwest::Method;
use serde_json::{Value, json};

use crate::{Outcome, Worker, text_var};

/// The most of a response body kept as output.
const MAX_RESPONSE: usize = 64 * 1024;

pub(crate) async fn handle(worker: &Worker, task: &LockedTask) -> Outcome {
    match call(worker, task).await {
        Ok(output) => Outcome::Done(output),
        Err(outcome) => outcome,
    }
}

fn allowed(worker: &Worker, url: &str) -> Result<url::Url, Outcome> {
    let parsed = url::Url::parse(url).map_err(|e| Outcome::Incident(format!("url '{url}': {e}")))?;
    // Compared on the parsed form, so `https://ok.example@evil/` or a
    // `..` can not pass for an allowed prefix.
    let normal = parsed.as_str();
    let ok = worker
        .config
        .http_allow
        .iter()
        .filter_map(|p| url::Url::parse(p).ok())
        .any(|p| normal.starts_with(p.as_str()) && parsed.username().is_empty() && parsed.password().is_none());
    if ok {
        Ok(parsed)
    } else {
        Err(Outcome::Incident(format!(
            "'{url}' is not allowed by task_worker.http_allow"
        )))
    }
}

fn method(task: &LockedTask) -> Result<Method, Outcome> {
    match task.variables["method"]
        .as_str()
        .unwrap_or("POST")
        .to_ascii_uppercase()
        .as_str()
    {
        "POST" => Ok(Method::POST),
        "PUT" => Ok(Method::PUT),
        "PATCH" => Ok(Method::PATCH),
        "GET" => Ok(Method::GET),
        other => Err(Outcome::Incident(format!(
            "method '{other}' is not one of POST, PUT, PATCH, GET"
        ))),
    }
}

async fn call(worker: &Worker, task: &LockedTask) -> Result<Value, Outcome> {
    let url = allowed(worker, text_var(task, "url")?)?;
    let method = method(task)?;
    let Some(secret) = &worker.config.http_secret else {
        return Err(Outcome::Incident(
            "task_worker.http_secret is not set; calls are always signed".into(),
        ));
    };
    let addrs = check_target(url.as_str(), worker.config.allow_private_targets)
        .await
        .map_err(|e| Outcome::Incident(e.to_string()))?;
    let body = match &task.variables["body"] {
        Value::Null => json!({
            "case": {"id": task.process_instance_id, "key": task.business_key},
            "task": task.id, "variables": task.variables,
        }),
        other => other.clone(),
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let timestamp = chrono::Utc::now().timestamp();
    let signature = signature_header(&[secret.expose().to_owned()], &task.id, timestamp, &bytes)
        .map_err(|e| Outcome::Incident(format!("task_worker.http_secret: {e}")))?;
    let host = url.host_str().unwrap_or_default().to_owned();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_millis(worker.config.http_timeout_ms))
        .resolve_to_addrs(&host, &addrs)
        .build()
        .map_err(|e| Outcome::Retry(e.to_string()))?;
    let mut req = http
        .request(method.clone(), url.clone())
        .header("webhook-id", &task.id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature);
    if method != Method::GET {
        req = req.header("content-type", "application/json").body(bytes);
    }
    let res = req
        .send()
        .await
        .map_err(|e| Outcome::Retry(format!("{method} {url}: {e}")))?;
    let status = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    let response = if text.len() > MAX_RESPONSE {
        Value::String(text.chars().take(MAX_RESPONSE).collect())
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text.clone()))
    };
    match status {
        200..=299 => Ok(json!({"status": status, "response": response})),
        408 | 429 | 500..=599 => Err(Outcome::Retry(format!("{method} {url}: HTTP {status}"))),
        _ => Err(Outcome::Incident(format!(
            "{method} {url}: HTTP {status} {}",
            truncate(&text)
        ))),
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(300).collect()
}
