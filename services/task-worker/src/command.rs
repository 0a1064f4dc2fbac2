//! `casewire.command`: one case command from the task's variables:
//! `command` (its type, e.g. `case.tag`) and `data` (its payload). It goes
//! through `POST /api/v1/commands` as the worker's service account, so the
//! policy decides as for anyone; its `commandId` derives from the task, so
//! a repeat after a crash is the same command, not a second one. Opening
//! cases and task commands are refused: those are not a worker's to give.

use std::time::Duration;

use casewire_camunda::LockedTask;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{Outcome, Worker, text_var};

/// How long it asks the API to wait for the outcome, per look.
const WAIT_SECS: u64 = 10;

pub(crate) async fn handle(worker: &Worker, task: &LockedTask) -> Outcome {
    match issue(worker, task).await {
        Ok(output) => Outcome::Done(output),
        Err(outcome) => outcome,
    }
}

/// The command id of a task: the same for every attempt.
fn command_id(task: &LockedTask) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("casewire:task-worker:{}", task.id).as_bytes(),
    )
}

async fn issue(worker: &Worker, task: &LockedTask) -> Result<Value, Outcome> {
    let kind = text_var(task, "command")?;
    if kind == "case.open" || kind.starts_with("task.") {
        return Err(Outcome::Incident(format!("'{kind}' can not be issued by a task")));
    }
    let id = command_id(task);
    let data = match &task.variables["data"] {
        Value::Null => json!({}),
        other => other.clone(),
    };
    let body = json!({"commandId": id, "caseId": task.process_instance_id, "type": kind, "data": data});
    let (status, answer) = worker
        .client
        .api(Method::POST, "/api/v1/commands", Some(&body), Some(WAIT_SECS))
        .await
        .map_err(|e| Outcome::Retry(e.to_string()))?;
    match status.as_u16() {
        200 | 201 => Ok(json!({"commandId": id, "revision": answer["revision"]})),
        // Not decided within the wait, or a repeat of an earlier attempt.
        202 => outcome(worker, id).await,
        _ => Err(refused(status.as_u16(), &answer)),
    }
}

/// What the API's refusal means for the task: a busy case or a down
/// service is retried, anything else (403, 404, 409, 422) needs a person.
fn refused(status: u16, answer: &Value) -> Outcome {
    let code = answer["code"].as_str().unwrap_or("");
    let message = answer["message"].as_str().unwrap_or("");
    let transient = status >= 500 || status == 429 || status == 408 || code == "CW-CASE-PENDING";
    let text = format!("HTTP {status} {code}: {message}");
    if transient {
        Outcome::Retry(text)
    } else {
        Outcome::Incident(text)
    }
}

/// Looks at the command until it is decided, for up to half the lock.
async fn outcome(worker: &Worker, id: Uuid) -> Result<Value, Outcome> {
    let path = format!("/api/v1/commands/{id}");
    let deadline = tokio::time::Instant::now() + Duration::from_millis(worker.config.lock_ms / 2);
    loop {
        let (status, record) = worker
            .client
            .api(Method::GET, &path, None, None)
            .await
            .map_err(|e| Outcome::Retry(e.to_string()))?;
        if !status.is_success() {
            return Err(refused(status.as_u16(), &record));
        }
        match record["status"].as_str() {
            Some("processed") => return Ok(json!({"commandId": id, "revision": record["revision"]})),
            Some("rejected") => return Err(refused(422, &record["error"])),
            Some("cancelled") => return Err(Outcome::Incident(format!("command {id} was cancelled"))),
            _ if tokio::time::Instant::now() > deadline => {
                return Err(Outcome::Retry(format!("command {id} is not decided yet")));
            }
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}
