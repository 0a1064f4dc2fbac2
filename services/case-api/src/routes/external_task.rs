//! `/engine-rest/external-task`: Camunda 7's external-task API, so that
//! Camunda's own clients (e.g. `camunda-external-task-client-js`) work
//! external tasks of cases unmodified. A case is Camunda's process
//! instance (`processInstanceId` is the case id, `businessKey` its key) and
//! its definition the process definition.
//!
//! Every change is a command of the case (`task.lock`, `task.complete`,
//! ...) decided by the engine, so two workers never hold the same task and
//! locks survive restarts; this module only translates. Tenancy comes
//! from the token, never from `tenantIdIn`, and a worker sees only tasks
//! of cases the policy shows it and lets it work (`task.external`).
//!
//! Camunda's clients read a body only when `Content-Type` is exactly
//! `application/json`, so every JSON answer here is sent with exactly that.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::web::{Data, Path, Query};
use actix_web::{HttpResponse, get, post};
use casewire_camunda::variables::typed_variables;
use casewire_domain::task::{CompleteTask, ExtendTaskLock, FailTask, LockTask, MAX_LOCK_MS, RaiseTaskError, TaskRef};
use casewire_domain::{CaseCommand, ErrorCode, Task, TaskKind, TaskState};
use casewire_ports::{TaskItem, TaskQuery};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::Auth;
use crate::authz;
use crate::body::Body;
use crate::error::ApiError;
use crate::state::AppState;
use crate::submit::submit_and_wait;

/// Camunda's bound on a long poll.
const MAX_ASYNC_RESPONSE_MS: u64 = 1_800_000;
/// How long a lock, complete or failure waits for the engine's decision.
const DECIDE_WAIT: Duration = Duration::from_secs(10);
/// How often a long poll looks again while nothing is fetchable.
const POLL_EVERY: Duration = Duration::from_millis(100);

// --- Errors and dates in Camunda's shape ------------------------------------

/// An error as Camunda answers it: `{type, message, code}`.
struct EngineError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl EngineError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        EngineError {
            status,
            kind,
            message: message.into(),
        }
    }

    fn not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "RestException",
            format!("External task with id {id} does not exist"),
        )
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidRequestException", message)
    }

    /// Casewire's rejection in Camunda's terms: what Camunda answers 404
    /// for (unknown or ended tasks: Camunda deletes ended ones) is 404,
    /// a wrong worker or bad input 400, anything else keeps its status.
    fn from_api(e: ApiError, id: &str, verb: &str, worker: &str) -> Self {
        match e.code {
            ErrorCode::NotFound | ErrorCode::UnknownTask | ErrorCode::TaskState => Self::not_found(id),
            ErrorCode::TaskLocked => {
                let owner = e.details["heldBy"].as_str().unwrap_or("null").to_owned();
                Self::new(
                    StatusCode::BAD_REQUEST,
                    "RestException",
                    format!(
                        "External Task {id} cannot be {verb} by worker '{worker}'. It is locked by worker '{owner}'."
                    ),
                )
            }
            ErrorCode::Validation | ErrorCode::MalformedJson | ErrorCode::BadParameter | ErrorCode::SchemaViolation => {
                Self::new(StatusCode::BAD_REQUEST, "RestException", e.message)
            }
            ErrorCode::Forbidden => Self::new(StatusCode::FORBIDDEN, "AuthorizationException", e.message),
            code => Self::new(
                StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "ProcessEngineException",
                e.message,
            ),
        }
    }

    fn response(&self) -> HttpResponse {
        json_response(
            self.status,
            &json!({"type": self.kind, "message": self.message, "code": Value::Null}),
        )
    }
}

impl From<ApiError> for EngineError {
    fn from(e: ApiError) -> Self {
        Self::from_api(e, "", "handled", "")
    }
}

/// JSON with `Content-Type: application/json` and nothing after it.
fn json_response(status: StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(("content-type", "application/json"))
        .body(body.to_string())
}

fn answer(result: Result<HttpResponse, EngineError>) -> HttpResponse {
    result.unwrap_or_else(|e| e.response())
}

fn camunda_date(t: DateTime<Utc>) -> String {
    casewire_camunda::variables::date(t)
}

/// Camunda typed variables as one JSON object; a file variable is a 400.
fn plain_variables(typed: Option<&Value>) -> Result<Value, EngineError> {
    casewire_camunda::variables::plain_variables(typed).map_err(|e| EngineError::bad_request(e.to_string()))
}

// --- The task as Camunda shows it -------------------------------------------

fn task_dto(item: &TaskItem, tenant: &str) -> Value {
    let (task, case) = (&item.task, &item.case);
    let lock = task.lock.as_ref();
    // After a failure Camunda keeps the worker and holds the task until
    // the retry time; so does this view.
    let expires = task.retry_at.or(lock.map(|l| l.expires_at));
    json!({
        "activityId": task.name,
        "activityInstanceId": task.id,
        "errorMessage": task.failure.as_ref().and_then(|f| f.message.clone()),
        "executionId": task.id,
        "id": task.id,
        "lockExpirationTime": expires.map(camunda_date),
        "createTime": camunda_date(task.created_at),
        "processDefinitionId": format!("{}:{}", case.definition_id, case.id),
        "processDefinitionKey": case.definition_id,
        "processDefinitionVersionTag": Value::Null,
        "processInstanceId": case.id,
        "retries": task.retries,
        "suspended": false,
        "workerId": lock.map(|l| l.worker_id.clone()),
        "topicName": task.topic,
        "tenantId": tenant,
        "priority": task.priority,
        "businessKey": case.key.as_str(),
    })
}

fn locked_dto(item: &TaskItem, tenant: &str, worker: &str, expires: DateTime<Utc>, names: Option<&[String]>) -> Value {
    let mut dto = task_dto(item, tenant);
    dto["workerId"] = json!(worker);
    dto["lockExpirationTime"] = json!(camunda_date(expires));
    dto["errorDetails"] = json!(item.task.failure.as_ref().and_then(|f| f.details.clone()));
    dto["variables"] = typed_variables(&item.task.variables, names);
    dto["extensionProperties"] = json!({});
    dto
}

/// The policy's filter for the cases whose tasks the caller may see: none
/// for a caller who may not read internal work (a requester), since tasks
/// are internal like internal comments.
async fn task_filter(state: &AppState, auth: &Auth) -> Result<casewire_ports::VisibilityFilter, EngineError> {
    let mut filter = authz::filter(state, auth).await?;
    if !authz::allowed(state, auth, authz::READ_INTERNAL).await? {
        filter.clauses.clear();
    }
    Ok(filter)
}

/// The external task `id` if the caller may see its case.
async fn find(state: &AppState, auth: &Auth, id: &str) -> Result<TaskItem, EngineError> {
    let task_id: Uuid = id.parse().map_err(|_| EngineError::not_found(id))?;
    let visible = task_filter(state, auth).await?;
    let query = TaskQuery {
        task_id: Some(task_id),
        kind: Some(TaskKind::External),
        visible: Some(visible.clauses),
        limit: 1,
        ..TaskQuery::default()
    };
    let found = state
        .platform
        .reads
        .list_tasks(&auth.tenant, &query)
        .await
        .map_err(ApiError::from)?;
    found.into_iter().next().ok_or_else(|| EngineError::not_found(id))
}

// --- fetchAndLock -------------------------------------------------------------

/// One topic of a fetch.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FetchTopic {
    topic_name: String,
    #[serde(default)]
    lock_duration: Option<i64>,
    #[serde(default)]
    variables: Option<Vec<String>>,
    #[serde(default)]
    business_key: Option<String>,
    #[serde(default)]
    tenant_id_in: Option<Vec<String>>,
    #[serde(default)]
    process_definition_key: Option<String>,
}

/// `POST /external-task/fetchAndLock`. Unknown fields are ignored, as
/// Camunda does.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FetchAndLock {
    worker_id: Option<String>,
    #[serde(default)]
    max_tasks: Option<i64>,
    #[serde(default)]
    use_priority: Option<bool>,
    #[serde(default)]
    async_response_timeout: Option<i64>,
    #[serde(default)]
    topics: Vec<FetchTopic>,
}

/// What a fetch asks for, checked.
struct Fetch {
    worker: String,
    max: usize,
    topics: Vec<FetchTopic>,
    wait: Duration,
}

fn check_fetch(body: FetchAndLock, tenant: &str) -> Result<Fetch, EngineError> {
    let worker = body
        .worker_id
        .filter(|w| !w.trim().is_empty())
        .ok_or_else(|| EngineError::bad_request("workerId is null"))?;
    let wait = body.async_response_timeout.unwrap_or(0);
    if wait < 0 || wait as u64 > MAX_ASYNC_RESPONSE_MS {
        return Err(EngineError::bad_request(format!(
            "The asynchronous response timeout cannot be set to a value greater than {MAX_ASYNC_RESPONSE_MS} milliseconds"
        )));
    }
    for topic in &body.topics {
        let lock = topic.lock_duration.unwrap_or(0);
        if lock <= 0 || lock as u64 > MAX_LOCK_MS {
            return Err(EngineError::bad_request(format!(
                "lockDuration of topic '{}' must be 1 to {MAX_LOCK_MS} ms",
                topic.topic_name
            )));
        }
    }
    // Tenancy is the token's: a topic that names tenants but not the
    // caller's asks for nothing here.
    let topics = body
        .topics
        .into_iter()
        .filter(|t| t.tenant_id_in.as_ref().is_none_or(|ts| ts.iter().any(|x| x == tenant)))
        .collect();
    Ok(Fetch {
        worker,
        max: body.max_tasks.unwrap_or(10).clamp(0, 100) as usize,
        topics,
        wait: Duration::from_millis(wait as u64),
    })
}

/// Fetch and lock up to `maxTasks` external tasks of the topics, waiting
/// up to `asyncResponseTimeout` ms for one to come.
#[post("/external-task/fetchAndLock")]
pub async fn fetch_and_lock(state: Data<AppState>, auth: Auth, body: Body) -> HttpResponse {
    answer(fetch_and_lock_inner(&state, &auth, &body).await)
}

async fn fetch_and_lock_inner(state: &AppState, auth: &Auth, body: &[u8]) -> Result<HttpResponse, EngineError> {
    let request: FetchAndLock =
        serde_json::from_slice(body).map_err(|e| EngineError::bad_request(format!("invalid request body: {e}")))?;
    let use_priority = request.use_priority.unwrap_or(false);
    let fetch = check_fetch(request, auth.tenant.as_str())?;
    let deadline = Instant::now() + fetch.wait;
    loop {
        let locked = lock_some(state, auth, &fetch, use_priority).await?;
        if !locked.is_empty() || fetch.max == 0 || Instant::now() >= deadline {
            return Ok(json_response(StatusCode::OK, &Value::Array(locked)));
        }
        tokio::time::sleep(POLL_EVERY.min(deadline.saturating_duration_since(Instant::now()))).await;
    }
}

/// Locks what it can now, up to the fetch's maximum.
async fn lock_some(
    state: &AppState,
    auth: &Auth,
    fetch: &Fetch,
    use_priority: bool,
) -> Result<Vec<Value>, EngineError> {
    let mut out = Vec::new();
    if fetch.max == 0 || fetch.topics.is_empty() {
        return Ok(out);
    }
    let visible = task_filter(state, auth).await?;
    let query = TaskQuery {
        kind: Some(TaskKind::External),
        topics: Some(fetch.topics.iter().map(|t| t.topic_name.clone()).collect()),
        lockable_at: Some(Utc::now()),
        visible: Some(visible.clauses),
        // Room for tasks another worker takes first.
        limit: fetch.max * 4,
        ..TaskQuery::default()
    };
    let mut candidates = state
        .platform
        .reads
        .list_tasks(&auth.tenant, &query)
        .await
        .map_err(ApiError::from)?;
    if !use_priority {
        candidates.sort_by_key(|c| (c.task.created_at, c.task.id));
    }
    let wanted: Vec<(TaskItem, &FetchTopic)> = candidates
        .into_iter()
        .filter_map(|item| {
            let topic = fetch
                .topics
                .iter()
                .find(|t| item.task.topic.as_ref() == Some(&t.topic_name))?;
            let other_key = topic.business_key.as_ref().is_some_and(|k| k != item.case.key.as_str());
            let other_definition = topic
                .process_definition_key
                .as_ref()
                .is_some_and(|k| *k != item.case.definition_id);
            (!other_key && !other_definition).then_some((item, topic))
        })
        .take(fetch.max)
        .collect();
    // The locks are asked for together: each waits for the engine, and
    // one after another they would cost a round trip each.
    let locks = wanted
        .iter()
        .map(|(item, topic)| try_lock(state, auth, item, topic, &fetch.worker));
    for locked in futures::future::join_all(locks).await {
        if let Some(dto) = locked? {
            out.push(dto);
        }
    }
    Ok(out)
}

/// Locks one task; `None` when another worker was faster or the policy
/// does not let the caller work the case.
async fn try_lock(
    state: &AppState,
    auth: &Auth,
    item: &TaskItem,
    topic: &FetchTopic,
    worker: &str,
) -> Result<Option<Value>, EngineError> {
    let lock_ms = topic.lock_duration.unwrap_or(0).max(1) as u64;
    let command = CaseCommand::LockTask(LockTask {
        task_id: item.task.id,
        worker_id: worker.to_owned(),
        lock_duration: lock_ms,
    });
    let started = Utc::now();
    match submit_and_wait(state, auth, item.case.id, command, DECIDE_WAIT).await {
        Ok(_) => {
            let expires = started + chrono::Duration::milliseconds(lock_ms as i64);
            let locked = locked_dto(item, auth.tenant.as_str(), worker, expires, topic.variables.as_deref());
            Ok(Some(locked))
        }
        Err(e)
            if matches!(
                e.code,
                ErrorCode::TaskLocked | ErrorCode::TaskState | ErrorCode::Forbidden
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

// --- Reads --------------------------------------------------------------------

/// `GET /external-task` filters that Casewire answers.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListParams {
    topic_name: Option<String>,
    worker_id: Option<String>,
    process_instance_id: Option<Uuid>,
    locked: Option<bool>,
    not_locked: Option<bool>,
    with_retries_left: Option<bool>,
    no_retries_left: Option<bool>,
    max_results: Option<usize>,
}

fn list_keeps(p: &ListParams, t: &Task, now: DateTime<Utc>) -> bool {
    let locked = t.lock.as_ref().is_some_and(|l| l.expires_at > now);
    p.worker_id
        .as_ref()
        .is_none_or(|w| t.lock.as_ref().is_some_and(|l| l.worker_id == *w))
        && (p.locked != Some(true) || locked)
        && (p.not_locked != Some(true) || !locked)
        && (p.with_retries_left != Some(true) || t.retries.is_none_or(|r| r > 0))
        && (p.no_retries_left != Some(true) || t.retries == Some(0))
}

/// The waiting external tasks of the cases the caller may see.
#[get("/external-task")]
pub async fn list(state: Data<AppState>, auth: Auth, params: Query<ListParams>) -> HttpResponse {
    answer(list_inner(&state, &auth, &params).await)
}

async fn list_inner(state: &AppState, auth: &Auth, p: &ListParams) -> Result<HttpResponse, EngineError> {
    let visible = task_filter(state, auth).await?;
    let query = TaskQuery {
        kind: Some(TaskKind::External),
        states: Some(vec![TaskState::Created]),
        topics: p.topic_name.clone().map(|t| vec![t]),
        case_id: p.process_instance_id,
        visible: Some(visible.clauses),
        limit: p.max_results.unwrap_or(1000).clamp(1, 1000),
        ..TaskQuery::default()
    };
    let now = Utc::now();
    let items = state
        .platform
        .reads
        .list_tasks(&auth.tenant, &query)
        .await
        .map_err(ApiError::from)?;
    let dtos: Vec<Value> = items
        .iter()
        .filter(|i| list_keeps(p, &i.task, now))
        .map(|i| task_dto(i, auth.tenant.as_str()))
        .collect();
    Ok(json_response(StatusCode::OK, &Value::Array(dtos)))
}

/// One external task; an ended one no longer exists, as in Camunda.
#[get("/external-task/{id}")]
pub async fn get_one(state: Data<AppState>, auth: Auth, id: Path<String>) -> HttpResponse {
    answer(
        async {
            let item = find(&state, &auth, &id).await?;
            if item.task.state.is_ended() {
                return Err(EngineError::not_found(&id));
            }
            Ok(json_response(StatusCode::OK, &task_dto(&item, auth.tenant.as_str())))
        }
        .await,
    )
}

// --- A worker's verbs -----------------------------------------------------------

/// The body of complete, failure, bpmnError, lock and extendLock: every
/// field any of them takes. Unknown fields are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerBody {
    worker_id: Option<String>,
    variables: Option<Value>,
    local_variables: Option<Value>,
    error_message: Option<String>,
    error_details: Option<String>,
    retries: Option<i64>,
    retry_timeout: Option<i64>,
    error_code: Option<String>,
    lock_duration: Option<i64>,
    new_duration: Option<i64>,
}

fn worker_body(body: &[u8]) -> Result<WorkerBody, EngineError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(WorkerBody::default());
    }
    serde_json::from_slice(body).map_err(|e| EngineError::bad_request(format!("invalid request body: {e}")))
}

fn required_worker(b: &WorkerBody) -> Result<String, EngineError> {
    b.worker_id
        .clone()
        .filter(|w| !w.trim().is_empty())
        .ok_or_else(|| EngineError::bad_request("workerId is null"))
}

fn positive(field: &str, v: Option<i64>) -> Result<u64, EngineError> {
    match v {
        Some(ms) if ms > 0 => Ok(ms as u64),
        _ => Err(EngineError::bad_request(format!("{field} is not greater than 0"))),
    }
}

/// What a verb becomes: the command, and the words of Camunda's
/// wrong-worker message.
fn verb_command(verb: &str, task_id: Uuid, b: &WorkerBody) -> Result<(CaseCommand, &'static str, String), EngineError> {
    let worker = || required_worker(b);
    Ok(match verb {
        "complete" => {
            let mut output = plain_variables(b.variables.as_ref())?;
            if let (Value::Object(o), Value::Object(local)) =
                (&mut output, plain_variables(b.local_variables.as_ref())?)
            {
                o.extend(local);
            }
            let w = worker()?;
            let c = CompleteTask {
                task_id,
                worker_id: Some(w.clone()),
                output: Some(output),
            };
            (CaseCommand::CompleteTask(c), "completed", w)
        }
        "failure" => {
            let w = worker()?;
            let (retries, timeout) = (b.retries.unwrap_or(0), b.retry_timeout.unwrap_or(0));
            if retries < 0 || timeout < 0 {
                return Err(EngineError::bad_request(
                    "retries and retryTimeout must not be negative",
                ));
            }
            let c = FailTask {
                task_id,
                worker_id: w.clone(),
                error_message: b.error_message.clone(),
                error_details: b.error_details.clone(),
                retries: u32::try_from(retries).unwrap_or(u32::MAX),
                retry_timeout: timeout as u64,
            };
            (CaseCommand::FailTask(c), "reported", w)
        }
        "bpmnError" => {
            let w = worker()?;
            let code = b
                .error_code
                .clone()
                .ok_or_else(|| EngineError::bad_request("errorCode is null"))?;
            let c = RaiseTaskError {
                task_id,
                worker_id: w.clone(),
                error_code: code,
                error_message: b.error_message.clone(),
                variables: Some(plain_variables(b.variables.as_ref())?),
            };
            (CaseCommand::RaiseTaskError(c), "reported", w)
        }
        "lock" => {
            let w = worker()?;
            let c = LockTask {
                task_id,
                worker_id: w.clone(),
                lock_duration: positive("lockDuration", b.lock_duration)?,
            };
            (CaseCommand::LockTask(c), "locked", w)
        }
        "extendLock" => {
            let w = worker()?;
            let c = ExtendTaskLock {
                task_id,
                worker_id: w.clone(),
                new_duration: positive("newDuration", b.new_duration)?,
            };
            (CaseCommand::ExtendTaskLock(c), "extended", w)
        }
        "unlock" => (CaseCommand::UnlockTask(TaskRef { task_id }), "unlocked", String::new()),
        _ => return Err(EngineError::not_found(&task_id.to_string())),
    })
}

/// `POST /external-task/{id}/{verb}`: complete, failure, bpmnError, lock,
/// extendLock or unlock; 204 when done.
#[post("/external-task/{id}/{verb}")]
pub async fn act(state: Data<AppState>, auth: Auth, path: Path<(String, String)>, body: Body) -> HttpResponse {
    let (id, verb) = path.into_inner();
    answer(act_inner(&state, &auth, &id, &verb, &body).await)
}

async fn act_inner(
    state: &AppState,
    auth: &Auth,
    id: &str,
    verb: &str,
    body: &[u8],
) -> Result<HttpResponse, EngineError> {
    let item = find(state, auth, id).await?;
    let b = worker_body(body)?;
    let (command, words, worker) = verb_command(verb, item.task.id, &b)?;
    // Unlocking a task nobody holds is done already (Camunda answers 204),
    // for a caller the policy lets work it.
    if matches!(command, CaseCommand::UnlockTask(_)) && item.task.lock.is_none() {
        let case = authz::current_case(state, &auth.tenant, item.case.id).await?;
        authz::authorize(state, auth, casewire_ports::Action::TaskExternal, &case).await?;
        return Ok(HttpResponse::NoContent().finish());
    }
    submit_and_wait(state, auth, item.case.id, command, DECIDE_WAIT)
        .await
        .map_err(|e| EngineError::from_api(e, id, words, &worker))?;
    Ok(HttpResponse::NoContent().finish())
}
