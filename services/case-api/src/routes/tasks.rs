//! Tasks under their case: create one, and claim, hand over, complete or
//! cancel it. Each is a command of the case, so it is authorized, decided
//! and answered like every other (202, or the case with `Prefer: wait`).
//! Workers use the Camunda-compatible `/engine-rest/external-task` API.

use actix_web::web::{Data, Path, Query};
use actix_web::{HttpRequest, HttpResponse, get, post};
use casewire_domain::CaseCommand;
use casewire_domain::task::{AssignTask, CancelTask, CompleteTask, CreateTask, SetTaskRetries, TaskRef};
use casewire_domain::types::{QueueName, UserRef};
use casewire_domain::{TaskKind, TaskState};
use casewire_ports::{TaskItem, TaskQuery};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::IntoParams;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Auth;
use crate::authz;
use crate::body::Body;
use crate::error::{ApiError, ErrorBody, json_body, required_json};
use crate::routes::cases::{CaseRef, task};
use crate::state::AppState;
use crate::submit::Accepted;

/// Who a human task goes to; `null` takes it from whoever has it.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskAssignee {
    pub assignee: Option<UserRef>,
}

/// A human task's output, validated against its form.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskOutput {
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
}

/// Why a task is cancelled.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskCancellation {
    #[serde(default)]
    pub reason: Option<String>,
}

/// An external task's retries; more than 0 resolves its incident.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskRetries {
    pub retries: u32,
}

/// Create a human or external task on the case; the answer names its
/// `taskId` (chosen when the body has none).
#[utoipa::path(
    post, path = "/api/v1/cases/{id}/tasks", tag = "tasks", request_body = CreateTask,
    params(("id" = CaseRef, Path, description = "Case id or key"), ("Prefer" = Option<String>, Header, description = "`wait=N` (RFC 7240)")),
    responses(
        (status = 202, body = Accepted), (status = 200, description = "Done (with Prefer: wait)", body = casewire_domain::Case),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[post("/cases/{id}/tasks")]
pub async fn create_task(
    state: Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    id: Path<String>,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let payload: CreateTask = required_json(&body)?;
    task(&state, &auth, &req, &id, CaseCommand::CreateTask(payload)).await
}

/// Generates one endpoint on `/cases/{id}/tasks/{taskId}/...`.
macro_rules! task_action {
    ($name:ident, $route:literal, $doc:literal, $body:ty, $parse:ident, |$t:ident, $b:ident| $command:expr) => {
        #[doc = $doc]
        #[utoipa::path(
            post, path = concat!("/api/v1", $route), tag = "tasks", request_body = $body,
            params(
                ("id" = CaseRef, Path, description = "Case id or key"),
                ("taskId" = Uuid, Path, description = "Task id"),
                ("Prefer" = Option<String>, Header, description = "`wait=N` (RFC 7240)")
            ),
            responses(
                (status = 202, body = Accepted), (status = 200, description = "Done (with Prefer: wait)", body = casewire_domain::Case),
                (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
                (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)
            ),
            security(("bearer" = []))
        )]
        #[post($route)]
        pub async fn $name(
            state: Data<AppState>,
            auth: Auth,
            req: HttpRequest,
            path: Path<(String, Uuid)>,
            body: Body,
        ) -> Result<HttpResponse, ApiError> {
            let (id, $t) = path.into_inner();
            let $b: $body = $parse(&body)?;
            task(&state, &auth, &req, &id, $command).await
        }
    };
}

/// An empty body: the action needs nothing but the task.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoBody {}

task_action!(
    claim_task,
    "/cases/{id}/tasks/{taskId}/claim",
    "Claim a human task: it becomes yours.",
    NoBody,
    json_body,
    |task_id, _b| CaseCommand::ClaimTask(TaskRef { task_id })
);
task_action!(
    unclaim_task,
    "/cases/{id}/tasks/{taskId}/unclaim",
    "Give a claimed human task back.",
    NoBody,
    json_body,
    |task_id, _b| CaseCommand::UnclaimTask(TaskRef { task_id })
);
task_action!(
    assign_task,
    "/cases/{id}/tasks/{taskId}/assign",
    "Give a human task to a person, or take it from them (`assignee` null).",
    TaskAssignee,
    required_json,
    |task_id, b| CaseCommand::AssignTask(AssignTask {
        task_id,
        assignee: b.assignee
    })
);
task_action!(
    complete_task,
    "/cases/{id}/tasks/{taskId}/complete",
    "Complete a human task with output that fits its form.",
    TaskOutput,
    json_body,
    |task_id, b| CaseCommand::CompleteTask(CompleteTask {
        task_id,
        worker_id: None,
        output: b.output
    })
);
task_action!(
    cancel_task,
    "/cases/{id}/tasks/{taskId}/cancel",
    "Cancel a task that has not ended.",
    TaskCancellation,
    json_body,
    |task_id, b| CaseCommand::CancelTask(CancelTask {
        task_id,
        reason: b.reason
    })
);
task_action!(
    set_task_retries,
    "/cases/{id}/tasks/{taskId}/retries",
    "Set an external task's retries; above 0 this resolves its incident.",
    TaskRetries,
    required_json,
    |task_id, b| CaseCommand::SetTaskRetries(SetTaskRetries {
        task_id,
        retries: b.retries
    })
);

/// Filters of the task inbox. Lists are comma-separated.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TaskParams {
    /// A user name, or `me`.
    pub assignee: Option<String>,
    /// The queue a human task is for.
    pub queue: Option<String>,
    /// `created`, `claimed`, `completed`, `cancelled`, `errored`; default
    /// `created,claimed` (what is still to do).
    pub state: Option<String>,
    /// `human` or `external`.
    pub kind: Option<String>,
    /// External tasks of this topic.
    pub topic: Option<String>,
    /// 1 to 500, default 100.
    pub limit: Option<usize>,
}

/// The tasks in the inbox.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskList {
    pub items: Vec<TaskItem>,
}

fn parse_one<T: serde::de::DeserializeOwned>(field: &str, raw: &str) -> Result<T, ApiError> {
    serde_json::from_value(Value::String(raw.trim().to_owned()))
        .map_err(|_| ApiError::bad_parameter(format!("{field}: unknown value '{}'", raw.trim())))
}

fn task_query(auth: &Auth, p: TaskParams) -> Result<TaskQuery, ApiError> {
    let limit = p.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_parameter("limit: must be 1 to 500"));
    }
    let states = match p.state.as_deref() {
        None => vec![TaskState::Created, TaskState::Claimed],
        Some(raw) => raw
            .split(',')
            .map(|s| parse_one::<TaskState>("state", s))
            .collect::<Result<_, _>>()?,
    };
    Ok(TaskQuery {
        assignee: p.assignee.map(|a| if a == "me" { auth.name.clone() } else { a }),
        queue: p
            .queue
            .map(|q| QueueName::parse(q).map_err(|e| ApiError::bad_parameter(e.to_string())))
            .transpose()?,
        states: Some(states),
        kind: p.kind.map(|k| parse_one::<TaskKind>("kind", &k)).transpose()?,
        topics: p.topic.map(|t| vec![t]),
        limit,
        ..TaskQuery::default()
    })
}

/// The task inbox: tasks of the cases you may see, highest priority first.
#[utoipa::path(
    get, path = "/api/v1/tasks", tag = "tasks", params(TaskParams),
    responses((status = 200, body = TaskList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/tasks")]
pub async fn list_tasks(
    state: Data<AppState>,
    auth: Auth,
    params: Query<TaskParams>,
) -> Result<HttpResponse, ApiError> {
    let mut query = task_query(&auth, params.into_inner())?;
    // Tasks are internal work, like internal comments: a requester sees none.
    if !authz::allowed(&state, &auth, authz::READ_INTERNAL).await? {
        return Ok(HttpResponse::Ok().json(TaskList { items: Vec::new() }));
    }
    query.visible = Some(authz::filter(&state, &auth).await?.clauses);
    let items = state.platform.reads.list_tasks(&auth.tenant, &query).await?;
    Ok(HttpResponse::Ok().json(TaskList { items }))
}
