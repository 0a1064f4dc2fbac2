//! Tasks: work on a case, done by a person (a human task, with a form for
//! its output) or by a worker (an external task on a topic, fetched and
//! locked, Camunda 7 style). A task lives inside its case, and every change
//! to it is an event of the case, so tasks get history, `asOf`, replay and
//! the event stream like everything else.
//!
//! The rules need the time (lock expiry, retry timeout): the caller passes
//! it in as [`crate::Decision::now`], and the events carry absolute times,
//! so a replay folds to the same state whenever it runs.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::case::{Case, Decision, EventMeta};
use crate::error::DomainError;
use crate::event::CaseEvent;
use crate::types::{QueueName, UserRef};

/// Tasks a case may hold, ended ones included: the case stays a bounded size.
pub const MAX_TASKS: usize = 500;
/// The longest lock a worker may take (Camunda has no bound; a day is
/// plenty, and a lost worker's task comes back within it).
pub const MAX_LOCK_MS: u64 = 24 * 3_600_000;
const MAX_NAME: usize = 200;
const MAX_TEXT: usize = 20_000;
const MAX_TOPIC: usize = 200;
const MAX_WORKER: usize = 200;
/// Variables and outputs are JSON objects of at most this many bytes.
const MAX_VARIABLES_BYTES: usize = 256 * 1024;

/// Who does the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum TaskKind {
    /// A person, in the portal or through the API.
    Human,
    /// A worker that fetches and locks tasks of a topic.
    External,
}

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum TaskState {
    /// Waiting: for a person to claim it, or for a worker to lock it.
    Created,
    /// A person has taken it (human tasks).
    Claimed,
    Completed,
    Cancelled,
    /// A worker reported a business error (Camunda's BPMN error); the task
    /// ends, and the definition's automation may react to the code.
    Errored,
}

impl TaskState {
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            TaskState::Created => "created",
            TaskState::Claimed => "claimed",
            TaskState::Completed => "completed",
            TaskState::Cancelled => "cancelled",
            TaskState::Errored => "errored",
        }
    }

    /// Whether the task has ended.
    pub fn is_ended(&self) -> bool {
        matches!(self, TaskState::Completed | TaskState::Cancelled | TaskState::Errored)
    }
}

/// A worker's lock on an external task. It stays after it expires: the
/// worker that took the most recent lock may still complete the task
/// until another worker locks it (Camunda's rule).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskLock {
    pub worker_id: String,
    pub expires_at: DateTime<Utc>,
}

/// What the last failure said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskFailure {
    pub message: Option<String>,
    pub details: Option<String>,
    pub at: DateTime<Utc>,
}

/// An open incident: the task ran out of retries and waits for a person
/// to set them again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Incident {
    pub message: Option<String>,
    pub at: DateTime<Utc>,
}

/// A business error a worker raised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskErrorRaised {
    pub task_id: Uuid,
    pub worker_id: String,
    pub error_code: String,
    pub error_message: Option<String>,
    #[schema(value_type = Object)]
    pub variables: Value,
}

/// A task of a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub id: Uuid,
    pub kind: TaskKind,
    pub name: String,
    pub description: Option<String>,
    pub state: TaskState,
    /// Human tasks: the JSON Schema the output must satisfy.
    #[schema(value_type = Option<Object>)]
    pub form: Option<Value>,
    /// Human tasks: the queue whose members may claim it.
    #[schema(value_type = Option<String>)]
    pub queue: Option<QueueName>,
    /// Human tasks: who claimed it, or the one person it is for.
    pub assignee: Option<String>,
    pub due: Option<DateTime<Utc>>,
    /// External tasks: the topic workers subscribe to.
    pub topic: Option<String>,
    /// External tasks: the input variables.
    #[schema(value_type = Object)]
    pub variables: Value,
    /// External tasks: higher first when a worker asks for priority.
    pub priority: i64,
    /// External tasks: retries left, once a worker has set them.
    pub retries: Option<u32>,
    pub lock: Option<TaskLock>,
    /// External tasks: not fetchable before this time (a retry timeout).
    pub retry_at: Option<DateTime<Utc>>,
    pub failure: Option<TaskFailure>,
    pub incident: Option<Incident>,
    pub error: Option<TaskErrorRaised>,
    /// What the person or worker returned.
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
    /// The event that made an automation rule create it, if one did.
    pub cause: Option<Uuid>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub ended_by: Option<String>,
    pub ended_at: Option<DateTime<Utc>>,
}

impl Task {
    /// Whether a worker may lock it at `now`: waiting, no incident, past
    /// any retry timeout, and not locked by anyone (or the lock expired).
    pub fn is_lockable(&self, now: DateTime<Utc>) -> bool {
        self.kind == TaskKind::External
            && self.state == TaskState::Created
            && self.incident.is_none()
            && self.retry_at.is_none_or(|t| t <= now)
            && self.lock.as_ref().is_none_or(|l| l.expires_at <= now)
    }

    /// Whether `worker` holds a lock that has not expired at `now`.
    pub fn is_locked_by_other(&self, worker: &str, now: DateTime<Utc>) -> bool {
        self.lock
            .as_ref()
            .is_some_and(|l| l.worker_id != worker && l.expires_at > now)
    }
}

// --- Commands ---------------------------------------------------------------

/// Create a task on the case: a human one (`form`, `queue`, `assignee`,
/// `due`) or an external one (`topic`, `variables`, `priority`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTask {
    /// Chosen by the API when absent, so a redelivered command keeps it.
    #[serde(default)]
    pub task_id: Option<Uuid>,
    pub kind: TaskKind,
    /// 1 to 200 characters once trimmed.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 20000)]
    pub description: Option<String>,
    /// Human tasks: a JSON Schema for the output (it must compile).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub form: Option<Value>,
    #[serde(default)]
    pub queue: Option<QueueName>,
    #[serde(default)]
    pub assignee: Option<UserRef>,
    #[serde(default)]
    pub due: Option<DateTime<Utc>>,
    /// External tasks: required.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub topic: Option<String>,
    /// External tasks: a JSON object (at most 256 KiB).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub variables: Option<Value>,
    #[serde(default)]
    pub priority: i64,
    /// The event an automation rule reacted to (set by the engine only).
    #[serde(default)]
    pub cause: Option<Uuid>,
}

/// Names one task of the case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskRef {
    pub task_id: Uuid,
}

/// Give a human task to a person (or take it from one: `assignee` null).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssignTask {
    pub task_id: Uuid,
    pub assignee: Option<UserRef>,
}

/// Complete a task. A human task's output is validated against its form;
/// an external task is completed by the worker that locked it last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompleteTask {
    pub task_id: Uuid,
    /// External tasks: the worker.
    #[serde(default)]
    pub worker_id: Option<String>,
    /// A JSON object (at most 256 KiB).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
}

/// Cancel a task that has not ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CancelTask {
    pub task_id: Uuid,
    #[serde(default)]
    pub reason: Option<String>,
}

/// Lock an external task for a worker (fetch-and-lock, or `lock`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LockTask {
    pub task_id: Uuid,
    pub worker_id: String,
    /// Milliseconds, 1 to 86,400,000.
    pub lock_duration: u64,
}

/// Extend the lock the worker holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExtendTaskLock {
    pub task_id: Uuid,
    pub worker_id: String,
    /// Milliseconds from now, 1 to 86,400,000.
    pub new_duration: u64,
}

/// A worker could not do the task: retries left, and when to try again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FailTask {
    pub task_id: Uuid,
    pub worker_id: String,
    #[serde(default)]
    pub error_message: Option<String>,
    #[serde(default)]
    pub error_details: Option<String>,
    /// Retries left; 0 raises an incident.
    pub retries: u32,
    /// Milliseconds before the task may be fetched again.
    #[serde(default)]
    pub retry_timeout: u64,
}

/// A worker reports a business error (Camunda's `bpmnError`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RaiseTaskError {
    pub task_id: Uuid,
    pub worker_id: String,
    /// 1 to 64 characters.
    pub error_code: String,
    #[serde(default)]
    pub error_message: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub variables: Option<Value>,
}

/// Set an external task's retries; on a task with an incident, this
/// resolves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetTaskRetries {
    pub task_id: Uuid,
    pub retries: u32,
}

// --- Events -----------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskCreated {
    pub task_id: Uuid,
    pub kind: TaskKind,
    pub name: String,
    pub description: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub form: Option<Value>,
    #[schema(value_type = Option<String>)]
    pub queue: Option<QueueName>,
    pub assignee: Option<String>,
    pub due: Option<DateTime<Utc>>,
    pub topic: Option<String>,
    #[schema(value_type = Object)]
    pub variables: Value,
    pub priority: i64,
    pub cause: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskAssigned {
    pub task_id: Uuid,
    /// `None`: nobody has it now.
    pub assignee: Option<String>,
    pub previous: Option<String>,
    /// Whether the task is claimed after this (a claim, not a hand-over
    /// of an unclaimed task to its one person).
    pub claimed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskCompleted {
    pub task_id: Uuid,
    pub worker_id: Option<String>,
    #[schema(value_type = Object)]
    pub output: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskCancelled {
    pub task_id: Uuid,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskLocked {
    pub task_id: Uuid,
    pub worker_id: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskUnlocked {
    pub task_id: Uuid,
    pub previous: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskFailed {
    pub task_id: Uuid,
    pub worker_id: String,
    pub error_message: Option<String>,
    pub error_details: Option<String>,
    pub retries: u32,
    pub retry_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IncidentRaised {
    pub task_id: Uuid,
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskRetriesSet {
    pub task_id: Uuid,
    pub retries: u32,
    /// The task had an incident, which this resolves.
    pub incident_resolved: bool,
}

// --- Rules ------------------------------------------------------------------

fn text(field: &str, value: &str, max: usize) -> Result<String, DomainError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    if v.chars().count() > max {
        return Err(DomainError::invalid(field, format!("must be at most {max} characters")));
    }
    Ok(v.to_owned())
}

fn object(field: &str, value: Option<&Value>) -> Result<Value, DomainError> {
    match value {
        None | Some(Value::Null) => Ok(Value::Object(Default::default())),
        Some(v @ Value::Object(_)) => {
            if serde_json::to_vec(v).map_or(0, |b| b.len()) > MAX_VARIABLES_BYTES {
                return Err(DomainError::invalid(field, "must be at most 256 KiB of JSON"));
            }
            Ok(v.clone())
        }
        Some(_) => Err(DomainError::invalid(field, "must be a JSON object")),
    }
}

fn duration(field: &str, ms: u64) -> Result<Duration, DomainError> {
    if ms == 0 || ms > MAX_LOCK_MS {
        return Err(DomainError::invalid(field, format!("must be 1 to {MAX_LOCK_MS} ms")));
    }
    Ok(Duration::milliseconds(ms as i64))
}

fn worker(id: &str) -> Result<String, DomainError> {
    text("workerId", id, MAX_WORKER)
}

impl Case {
    /// The task, or why there is none.
    pub fn task(&self, id: Uuid) -> Result<&Task, DomainError> {
        self.tasks
            .iter()
            .find(|t| t.id == id)
            .ok_or_else(|| DomainError::UnknownTask(id.to_string()))
    }

    /// The task if it has not ended.
    fn live_task(&self, id: Uuid) -> Result<&Task, DomainError> {
        let task = self.task(id)?;
        if task.state.is_ended() {
            return Err(DomainError::TaskState {
                task: id.to_string(),
                state: task.state.as_str().into(),
            });
        }
        Ok(task)
    }

    /// The external task if it has not ended.
    fn live_external(&self, id: Uuid) -> Result<&Task, DomainError> {
        let task = self.live_task(id)?;
        if task.kind != TaskKind::External {
            return Err(DomainError::invalid("taskId", "is a human task, not an external one"));
        }
        Ok(task)
    }

    /// The external task, checked to be locked last by `worker` (Camunda
    /// answers 400 otherwise; here it is `CW-TASK-LOCKED`).
    fn held_by(&self, id: Uuid, worker: &str) -> Result<&Task, DomainError> {
        let task = self.live_external(id)?;
        match &task.lock {
            Some(l) if l.worker_id == worker => Ok(task),
            Some(l) => Err(DomainError::TaskLocked {
                task: id.to_string(),
                worker: Some(l.worker_id.clone()),
            }),
            None => Err(DomainError::TaskLocked {
                task: id.to_string(),
                worker: None,
            }),
        }
    }

    pub(crate) fn create_task(&self, c: &CreateTask) -> Result<CaseEvent, DomainError> {
        let task_id = c.task_id.ok_or_else(|| DomainError::invalid("taskId", "is required"))?;
        if self.tasks.iter().any(|t| t.id == task_id) {
            return Err(DomainError::NoChange(format!("task {task_id} already exists")));
        }
        if self.tasks.len() >= MAX_TASKS {
            return Err(DomainError::limit("tasks", MAX_TASKS));
        }
        let name = text("name", &c.name, MAX_NAME)?;
        let description = match c.description.as_deref().map(str::trim) {
            Some(d) if d.chars().count() > MAX_TEXT => {
                return Err(DomainError::invalid("description", "must be at most 20000 characters"));
            }
            Some("") | None => None,
            Some(d) => Some(d.to_owned()),
        };
        let variables = object("variables", c.variables.as_ref())?;
        let (topic, form) = match c.kind {
            TaskKind::External => {
                let topic = c
                    .topic
                    .as_deref()
                    .ok_or_else(|| DomainError::invalid("topic", "an external task needs a topic"))?;
                if c.form.is_some() || c.queue.is_some() || c.assignee.is_some() {
                    return Err(DomainError::invalid(
                        "kind",
                        "form, queue and assignee are for human tasks",
                    ));
                }
                (Some(text("topic", topic, MAX_TOPIC)?), None)
            }
            TaskKind::Human => {
                if c.topic.is_some() {
                    return Err(DomainError::invalid("topic", "is for external tasks"));
                }
                if let Some(form) = &c.form {
                    jsonschema::validator_for(form)
                        .map_err(|e| DomainError::invalid("form", format!("is not a usable JSON Schema: {e}")))?;
                }
                (None, c.form.clone())
            }
        };
        Ok(CaseEvent::TaskCreated(TaskCreated {
            task_id,
            kind: c.kind,
            name,
            description,
            form,
            queue: c.queue.clone(),
            assignee: c.assignee.as_ref().map(|a| a.as_str().to_owned()),
            due: c.due,
            topic,
            variables,
            priority: c.priority,
            cause: c.cause,
        }))
    }

    pub(crate) fn claim_task(&self, c: &TaskRef, ctx: &Decision<'_>) -> Result<CaseEvent, DomainError> {
        let task = self.live_task(c.task_id)?;
        if task.kind != TaskKind::Human {
            return Err(DomainError::invalid(
                "taskId",
                "is an external task; workers lock those",
            ));
        }
        if task.state == TaskState::Claimed {
            return match task.assignee.as_deref() {
                Some(a) if a == ctx.actor => Err(DomainError::NoChange("you have claimed the task already".into())),
                _ => Err(DomainError::TaskState {
                    task: c.task_id.to_string(),
                    state: "claimed".into(),
                }),
            };
        }
        // A task meant for one person is theirs to claim.
        if let Some(a) = task.assignee.as_deref().filter(|a| *a != ctx.actor) {
            return Err(DomainError::TaskLocked {
                task: c.task_id.to_string(),
                worker: Some(a.to_owned()),
            });
        }
        Ok(CaseEvent::TaskAssigned(TaskAssigned {
            task_id: c.task_id,
            assignee: Some(ctx.actor.to_owned()),
            previous: task.assignee.clone(),
            claimed: true,
        }))
    }

    pub(crate) fn unclaim_task(&self, c: &TaskRef) -> Result<CaseEvent, DomainError> {
        let task = self.live_task(c.task_id)?;
        if task.state != TaskState::Claimed {
            return Err(DomainError::NoChange("the task is not claimed".into()));
        }
        Ok(CaseEvent::TaskAssigned(TaskAssigned {
            task_id: c.task_id,
            assignee: None,
            previous: task.assignee.clone(),
            claimed: false,
        }))
    }

    pub(crate) fn assign_task(&self, c: &AssignTask) -> Result<CaseEvent, DomainError> {
        let task = self.live_task(c.task_id)?;
        if task.kind != TaskKind::Human {
            return Err(DomainError::invalid(
                "taskId",
                "is an external task; workers lock those",
            ));
        }
        let assignee = c.assignee.as_ref().map(|a| a.as_str().to_owned());
        if assignee == task.assignee {
            return Err(DomainError::NoChange("the task has that assignee already".into()));
        }
        Ok(CaseEvent::TaskAssigned(TaskAssigned {
            task_id: c.task_id,
            claimed: assignee.is_some() && task.state == TaskState::Claimed,
            assignee,
            previous: task.assignee.clone(),
        }))
    }

    pub(crate) fn complete_task(&self, c: &CompleteTask, ctx: &Decision<'_>) -> Result<CaseEvent, DomainError> {
        let output = object("output", c.output.as_ref())?;
        let task = self.live_task(c.task_id)?;
        match task.kind {
            TaskKind::External => {
                let worker_id = worker(c.worker_id.as_deref().unwrap_or(""))?;
                self.held_by(c.task_id, &worker_id)?;
                Ok(CaseEvent::TaskCompleted(TaskCompleted {
                    task_id: c.task_id,
                    worker_id: Some(worker_id),
                    output,
                }))
            }
            TaskKind::Human => {
                if let Some(a) = task.assignee.as_deref().filter(|a| *a != ctx.actor) {
                    return Err(DomainError::TaskLocked {
                        task: c.task_id.to_string(),
                        worker: Some(a.to_owned()),
                    });
                }
                if let Some(form) = &task.form {
                    validate_output(form, &output)?;
                }
                Ok(CaseEvent::TaskCompleted(TaskCompleted {
                    task_id: c.task_id,
                    worker_id: None,
                    output,
                }))
            }
        }
    }

    pub(crate) fn cancel_task(&self, c: &CancelTask) -> Result<CaseEvent, DomainError> {
        self.live_task(c.task_id)?;
        let reason = c.reason.as_deref().map(str::trim).filter(|r| !r.is_empty());
        if reason.is_some_and(|r| r.chars().count() > MAX_TEXT) {
            return Err(DomainError::invalid("reason", "must be at most 20000 characters"));
        }
        Ok(CaseEvent::TaskCancelled(TaskCancelled {
            task_id: c.task_id,
            reason: reason.map(str::to_owned),
        }))
    }

    pub(crate) fn lock_task(&self, c: &LockTask, ctx: &Decision<'_>) -> Result<CaseEvent, DomainError> {
        let worker_id = worker(&c.worker_id)?;
        let lock = duration("lockDuration", c.lock_duration)?;
        let task = self.live_external(c.task_id)?;
        if task.is_locked_by_other(&worker_id, ctx.now) {
            return Err(DomainError::TaskLocked {
                task: c.task_id.to_string(),
                worker: task.lock.as_ref().map(|l| l.worker_id.clone()),
            });
        }
        if task.incident.is_some() {
            return Err(DomainError::TaskState {
                task: c.task_id.to_string(),
                state: "incident".into(),
            });
        }
        Ok(CaseEvent::TaskLocked(TaskLocked {
            task_id: c.task_id,
            worker_id,
            expires_at: ctx.now + lock,
        }))
    }

    pub(crate) fn extend_task_lock(&self, c: &ExtendTaskLock, ctx: &Decision<'_>) -> Result<CaseEvent, DomainError> {
        let worker_id = worker(&c.worker_id)?;
        let lock = duration("newDuration", c.new_duration)?;
        let task = self.held_by(c.task_id, &worker_id)?;
        // An expired lock can not be extended: another worker may have
        // fetched the task in the meantime (Camunda refuses it too).
        if task.lock.as_ref().is_some_and(|l| l.expires_at <= ctx.now) {
            return Err(DomainError::TaskLocked {
                task: c.task_id.to_string(),
                worker: None,
            });
        }
        Ok(CaseEvent::TaskLockExtended(TaskLocked {
            task_id: c.task_id,
            worker_id,
            expires_at: ctx.now + lock,
        }))
    }

    pub(crate) fn unlock_task(&self, c: &TaskRef) -> Result<CaseEvent, DomainError> {
        let task = self.live_external(c.task_id)?;
        let Some(lock) = &task.lock else {
            return Err(DomainError::NoChange("the task is not locked".into()));
        };
        Ok(CaseEvent::TaskUnlocked(TaskUnlocked {
            task_id: c.task_id,
            previous: Some(lock.worker_id.clone()),
        }))
    }

    pub(crate) fn fail_task(&self, c: &FailTask, ctx: &Decision<'_>) -> Result<Vec<CaseEvent>, DomainError> {
        let worker_id = worker(&c.worker_id)?;
        self.held_by(c.task_id, &worker_id)?;
        let clip = |s: &Option<String>| s.as_deref().map(|m| m.chars().take(MAX_TEXT).collect::<String>());
        let retry_at = (c.retry_timeout > 0)
            .then(|| duration("retryTimeout", c.retry_timeout))
            .transpose()?
            .map(|d| ctx.now + d);
        let mut events = vec![CaseEvent::TaskFailed(TaskFailed {
            task_id: c.task_id,
            worker_id,
            error_message: clip(&c.error_message),
            error_details: clip(&c.error_details),
            retries: c.retries,
            retry_at,
        })];
        if c.retries == 0 {
            events.push(CaseEvent::IncidentRaised(IncidentRaised {
                task_id: c.task_id,
                message: clip(&c.error_message),
            }));
        }
        Ok(events)
    }

    pub(crate) fn raise_task_error(&self, c: &RaiseTaskError) -> Result<CaseEvent, DomainError> {
        let worker_id = worker(&c.worker_id)?;
        let error_code = text("errorCode", &c.error_code, 64)?;
        let variables = object("variables", c.variables.as_ref())?;
        self.held_by(c.task_id, &worker_id)?;
        Ok(CaseEvent::TaskErrorRaised(TaskErrorRaised {
            task_id: c.task_id,
            worker_id,
            error_code,
            error_message: c.error_message.as_deref().map(|m| m.chars().take(MAX_TEXT).collect()),
            variables,
        }))
    }

    pub(crate) fn set_task_retries(&self, c: &SetTaskRetries) -> Result<CaseEvent, DomainError> {
        let task = self.live_external(c.task_id)?;
        if task.retries == Some(c.retries) && task.incident.is_none() {
            return Err(DomainError::NoChange(format!(
                "the task has {} retries already",
                c.retries
            )));
        }
        Ok(CaseEvent::TaskRetriesSet(TaskRetriesSet {
            task_id: c.task_id,
            retries: c.retries,
            incident_resolved: task.incident.is_some() && c.retries > 0,
        }))
    }

    /// Folds a task event into the state; `false` when the event is not a
    /// task event.
    pub(crate) fn apply_task(&mut self, meta: &EventMeta<'_>, event: &CaseEvent) -> bool {
        let id = match event {
            CaseEvent::TaskCreated(e) => {
                self.tasks.push(Task {
                    id: e.task_id,
                    kind: e.kind,
                    name: e.name.clone(),
                    description: e.description.clone(),
                    state: TaskState::Created,
                    form: e.form.clone(),
                    queue: e.queue.clone(),
                    assignee: e.assignee.clone(),
                    due: e.due,
                    topic: e.topic.clone(),
                    variables: e.variables.clone(),
                    priority: e.priority,
                    retries: None,
                    lock: None,
                    retry_at: None,
                    failure: None,
                    incident: None,
                    error: None,
                    output: None,
                    cause: e.cause,
                    created_by: meta.actor.to_owned(),
                    created_at: meta.time,
                    ended_by: None,
                    ended_at: None,
                });
                return true;
            }
            CaseEvent::TaskAssigned(e) => e.task_id,
            CaseEvent::TaskCompleted(e) => e.task_id,
            CaseEvent::TaskCancelled(e) => e.task_id,
            CaseEvent::TaskLocked(e) | CaseEvent::TaskLockExtended(e) => e.task_id,
            CaseEvent::TaskUnlocked(e) => e.task_id,
            CaseEvent::TaskFailed(e) => e.task_id,
            CaseEvent::IncidentRaised(e) => e.task_id,
            CaseEvent::TaskErrorRaised(e) => e.task_id,
            CaseEvent::TaskRetriesSet(e) => e.task_id,
            _ => return false,
        };
        if let Some(task) = self.tasks.iter_mut().find(|t| t.id == id) {
            task.apply(meta, event);
        }
        true
    }
}

impl Task {
    fn end(&mut self, meta: &EventMeta<'_>, state: TaskState) {
        self.state = state;
        self.ended_by = Some(meta.actor.to_owned());
        self.ended_at = Some(meta.time);
    }

    fn apply(&mut self, meta: &EventMeta<'_>, event: &CaseEvent) {
        match event {
            CaseEvent::TaskAssigned(e) => {
                self.assignee = e.assignee.clone();
                self.state = if e.claimed {
                    TaskState::Claimed
                } else {
                    TaskState::Created
                };
            }
            CaseEvent::TaskCompleted(e) => {
                self.output = Some(e.output.clone());
                self.lock = None;
                self.end(meta, TaskState::Completed);
            }
            CaseEvent::TaskCancelled(_) => {
                self.lock = None;
                self.end(meta, TaskState::Cancelled);
            }
            CaseEvent::TaskLocked(e) | CaseEvent::TaskLockExtended(e) => {
                self.lock = Some(TaskLock {
                    worker_id: e.worker_id.clone(),
                    expires_at: e.expires_at,
                });
            }
            CaseEvent::TaskUnlocked(_) => self.lock = None,
            CaseEvent::TaskFailed(e) => {
                // The worker keeps the task until the retry time, as in
                // Camunda: it may still complete it, nobody else may lock it.
                self.lock = Some(TaskLock {
                    worker_id: e.worker_id.clone(),
                    expires_at: e.retry_at.unwrap_or(meta.time),
                });
                self.retries = Some(e.retries);
                self.retry_at = e.retry_at;
                self.failure = Some(TaskFailure {
                    message: e.error_message.clone(),
                    details: e.error_details.clone(),
                    at: meta.time,
                });
            }
            CaseEvent::IncidentRaised(e) => {
                self.incident = Some(Incident {
                    message: e.message.clone(),
                    at: meta.time,
                });
            }
            CaseEvent::TaskErrorRaised(e) => {
                self.lock = None;
                self.error = Some(e.clone());
                self.end(meta, TaskState::Errored);
            }
            CaseEvent::TaskRetriesSet(e) => {
                self.retries = Some(e.retries);
                if e.retries > 0 {
                    self.incident = None;
                    self.retry_at = None;
                }
            }
            _ => {}
        }
    }
}

fn validate_output(form: &Value, output: &Value) -> Result<(), DomainError> {
    let validator = jsonschema::validator_for(form)
        .map_err(|e| DomainError::invalid("form", format!("the task's form does not compile: {e}")))?;
    crate::definition::check_against(&validator, output)
}
