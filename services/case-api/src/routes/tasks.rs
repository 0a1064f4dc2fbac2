//! Tasks under their case: create one, and claim, hand over, complete or
//! cancel it. Each is a command of the case, so it is authorized, decided
//! and answered like every other (202, or the case with `Prefer: wait`).
//! Workers use the Camunda-compatible `/engine-rest/external-task` API.

use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse, post};
use casewire_domain::CaseCommand;
use casewire_domain::task::{AssignTask, CancelTask, CompleteTask, CreateTask, SetTaskRetries, TaskRef};
use casewire_domain::types::UserRef;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Auth;
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
