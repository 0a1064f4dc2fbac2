//! Accepting commands: early validation against the current state (so an
//! obviously invalid command is a 4xx now, not a rejection later), key
//! allocation for `open`, the command log entry, the publish, and the
//! optional wait for the outcome.

use std::time::{Duration, Instant};

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use casewire_application::{decide, decide_on};
use casewire_domain::command::FileFacts;
use casewire_domain::types::{CaseKey, TenantId};
use casewire_domain::{Case, CaseCommand, ErrorCode};
use casewire_oidc::Principal;
use casewire_ports::Action;
use casewire_ports::event_store::replay;
use casewire_ports::{
    CommandEnvelope, CommandRecord, CommandStatus, FileState, OutcomeStatus, Rejection, Resource, Topic,
};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use tracing::Instrument;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::authz;
use crate::error::ApiError;
use crate::state::AppState;

/// The answer to an accepted command.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    pub command_id: Uuid,
    pub case_id: Uuid,
    /// The allocated human key, for `case.open`.
    #[schema(value_type = Option<String>)]
    pub key: Option<CaseKey>,
    /// The new task's id, for `task.create`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<Uuid>,
    pub status: CommandStatus,
}

/// Reads `Prefer: wait=N` (RFC 7240), capped by the configured maximum.
pub fn preferred_wait(req: &HttpRequest, max_secs: u64) -> Option<Duration> {
    req.headers()
        .get_all("prefer")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .filter_map(|p| p.trim().strip_prefix("wait="))
        .filter_map(|n| n.trim().parse::<u64>().ok())
        .next()
        .map(|n| Duration::from_secs(n.min(max_secs)))
}

/// A placeholder key for the early check of `open`; the real one is
/// allocated only once the command passed, so rejected opens burn no key.
const PROBE_KEY: &str = "XX-000000";

/// Submits a command and answers the HTTP request for it.
pub async fn submit(
    state: &AppState,
    principal: &Principal,
    req: &HttpRequest,
    case_id: Uuid,
    command: CaseCommand,
    command_id: Option<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let command_id = command_id.unwrap_or_else(Uuid::now_v7);
    let span = tracing::info_span!("submit", case_id = %case_id, command_id = %command_id, command = command.name());
    submit_in_span(state, principal, req, case_id, command, command_id)
        .instrument(span)
        .await
}

async fn submit_in_span(
    state: &AppState,
    principal: &Principal,
    req: &HttpRequest,
    case_id: Uuid,
    command: CaseCommand,
    command_id: Uuid,
) -> Result<HttpResponse, ApiError> {
    let correlation_id = req
        .headers()
        .get("x-correlation-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(command_id);
    let wait = preferred_wait(req, state.platform.config.api.max_wait_secs);
    let submitted = accept(state, principal, case_id, command, command_id, correlation_id, wait).await?;
    answer(state, principal, submitted).await
}

/// Submits a command for a caller that is not answering with the case
/// (the external-task API): waits up to `wait` for its outcome, and gives
/// the revision it made, or the rejection as the error.
pub async fn submit_and_wait(
    state: &AppState,
    principal: &Principal,
    case_id: Uuid,
    command: CaseCommand,
    wait: Duration,
) -> Result<u64, ApiError> {
    let command_id = Uuid::now_v7();
    let span = tracing::info_span!("submit", case_id = %case_id, command_id = %command_id, command = command.name());
    let submitted = accept(state, principal, case_id, command, command_id, command_id, Some(wait))
        .instrument(span)
        .await?;
    decided(submitted.outcome, command_id, wait)
}

/// The revision a decided command left, or its rejection.
fn decided(outcome: Option<Finished>, command_id: Uuid, wait: Duration) -> Result<u64, ApiError> {
    match outcome {
        Some((OutcomeStatus::Processed, revision, _)) => Ok(revision.unwrap_or(0)),
        Some((OutcomeStatus::Rejected, _, Some(rejection))) => Err(ApiError::from_rejection(&rejection)),
        Some((OutcomeStatus::Rejected, _, None)) => Err(ApiError::new(ErrorCode::Rejected, "rejected")),
        Some((OutcomeStatus::Cancelled, _, _)) => Err(ApiError::new(ErrorCode::Cancelled, "the command was cancelled")),
        None => Err(ApiError::new(
            ErrorCode::Unavailable,
            format!(
                "command {command_id} was accepted but not decided within {} s",
                wait.as_secs()
            ),
        )),
    }
}

/// [`submit_and_wait`] with a command id derived from the input (a mail, a
/// delivery), which a retry sends again: a command already decided answers
/// with its outcome and is not sent again, one still pending is waited
/// for, a new one is accepted. A race of two first tries is settled by the
/// command log and the engine, which decide an id once.
pub async fn submit_once(
    state: &AppState,
    principal: &Principal,
    case_id: Uuid,
    command: CaseCommand,
    command_id: Uuid,
    wait: Duration,
) -> Result<u64, ApiError> {
    let span = tracing::info_span!("submit", case_id = %case_id, command_id = %command_id, command = command.name());
    if let Some(known) = state.platform.reads.get_command(command_id).await? {
        if known.tenant != principal.tenant || known.case_id != case_id {
            return Err(ApiError::new(ErrorCode::Conflict, "that command id is taken"));
        }
        let status = match known.status {
            CommandStatus::Processed => Some(OutcomeStatus::Processed),
            CommandStatus::Rejected => Some(OutcomeStatus::Rejected),
            CommandStatus::Cancelled => Some(OutcomeStatus::Cancelled),
            CommandStatus::Pending | CommandStatus::Processing => None,
        };
        if let Some(status) = status {
            return decided(Some((status, known.revision, known.error)), command_id, wait);
        }
        let deadline = Instant::now() + wait;
        let waiter = state.waiters.register(command_id);
        let outcome = wait_for_outcome(state, command_id, waiter, deadline)
            .instrument(span)
            .await?;
        return decided(outcome, command_id, wait);
    }
    let submitted = accept(state, principal, case_id, command, command_id, command_id, Some(wait))
        .instrument(span)
        .await?;
    decided(submitted.outcome, command_id, wait)
}

/// A command accepted, and its outcome when the caller waited for one.
struct Submitted {
    accepted: Accepted,
    tenant: TenantId,
    is_open: bool,
    wait: Option<Duration>,
    /// When the wait for the outcome (and for the case to show it) ends.
    deadline: Instant,
    outcome: Option<Finished>,
}

/// Checks, decides early, records and publishes a command, then waits for
/// its outcome up to `wait`.
async fn accept(
    state: &AppState,
    principal: &Principal,
    case_id: Uuid,
    mut command: CaseCommand,
    command_id: Uuid,
    correlation_id: Uuid,
    wait: Option<Duration>,
) -> Result<Submitted, ApiError> {
    let platform = &state.platform;
    // Ids the domain needs are fixed here, so a redelivery decides the same.
    if let CaseCommand::Comment(c) = &mut command {
        c.comment_id.get_or_insert_with(Uuid::now_v7);
    }
    let task_id = match &mut command {
        CaseCommand::CreateTask(c) => {
            // Only the engine's automation names a causing event.
            c.cause = None;
            Some(*c.task_id.get_or_insert_with(Uuid::now_v7))
        }
        _ => None,
    };
    let is_open = matches!(command, CaseCommand::Open(_));
    let authorized = authorize_command(state, principal, case_id, &command).await?;
    // Whether a comment is the requester's is the server's to say: SLA
    // clocks take it as a reply rather than a response.
    if let CaseCommand::Comment(c) = &mut command {
        c.by_requester = authorized
            .as_ref()
            .and_then(|case| case.requester.as_ref())
            .zip(principal.email.as_deref())
            .is_some_and(|(r, email)| r.email.as_str().eq_ignore_ascii_case(email));
    }
    let attaching = match &mut command {
        CaseCommand::Attach(attach) => {
            attach.file = Some(file_to_attach(state, principal, attach.file_id).await?);
            Some(attach.file_id)
        }
        _ => None,
    };

    let mut envelope = CommandEnvelope {
        command_id,
        case_id,
        tenant: principal.tenant.clone(),
        actor: principal.name.clone(),
        correlation_id,
        // A probe key that did not parse would make the domain refuse the
        // open ("no key was allocated"), never a panic.
        case_key: is_open.then(|| CaseKey::parse(PROBE_KEY).ok()).flatten(),
        issued_at: Utc::now(),
        command,
    };
    // A rejection that hangs on the case's state is only given now if no
    // earlier command of the case is still in flight: a client that
    // pipelines "move to triage" and "move to investigating" must not have
    // the second judged against the state before the first. The decision is
    // taken again once nothing is in flight, because the in-flight command
    // may have finished between the first decision and that look. (An open
    // can only fail that way when the case exists: final.)
    let mut decided = match authorized {
        Some(case) => decide_on(Some(case), &*platform.reads, &state.cases, &envelope).await?,
        None => decide(&*platform.events, &*platform.reads, &state.cases, &envelope).await?,
    };
    let mut deferred = false;
    if let Err(e) = &decided
        && !is_open
        && e.depends_on_state()
    {
        if platform
            .reads
            .has_unfinished_commands(&envelope.tenant, case_id)
            .await?
        {
            tracing::debug!(reason = %e, "Deferred a state-dependent check to the engine");
            deferred = true;
        } else {
            decided = decide(&*platform.events, &*platform.reads, &state.cases, &envelope).await?;
        }
    }
    let prefix = match decided {
        Ok(decided) => Some(decided.definition.key_prefix.clone()),
        Err(_) if deferred => None,
        Err(e) => return Err(e.into()),
    };
    if let (true, Some(prefix)) = (is_open, &prefix) {
        let n = platform.events.allocate_key(&envelope.tenant, prefix.as_str()).await?;
        envelope.case_key = Some(CaseKey::new(prefix, n));
    }
    // Pinned only once the decision passed: a refused attach keeps nothing
    // from the sweeper. (The engine unpins one it rejects later.)
    if let Some(file_id) = attaching
        && !platform.reads.pin_file(&envelope.tenant, file_id).await?
    {
        return Err(no_such_file());
    }
    platform
        .reads
        .insert_command(&CommandRecord::pending(&envelope))
        .await?;
    let waiter = wait.map(|_| state.waiters.register(command_id));
    if let Err(e) = platform
        .bus
        .publish_traced(
            Topic::Commands,
            vec![(
                case_id.to_string(),
                envelope.to_json(),
                casewire_runtime::telemetry::traceparent(),
            )],
        )
        .await
    {
        state.waiters.forget(command_id);
        if let Some(file_id) = attaching {
            let _ = platform.reads.unpin_file(&envelope.tenant, file_id, Utc::now()).await;
        }
        // Never accepted: record why, so GET /commands/{id} does not say pending forever.
        let _ = platform
            .reads
            .finish_command(&CommandRecord {
                id: command_id,
                tenant: envelope.tenant.clone(),
                case_id,
                command_type: envelope.command.name().to_owned(),
                status: CommandStatus::Rejected,
                actor: envelope.actor.clone(),
                accepted_at: envelope.issued_at,
                finished_at: Some(Utc::now()),
                revision: None,
                error: Some(Rejection::new(
                    ErrorCode::Unavailable,
                    "the command bus was unavailable",
                )),
            })
            .await;
        return Err(e.into());
    }
    metrics::counter!("casewire_commands_accepted_total", "type" => envelope.command.name()).increment(1);
    tracing::info!("Accepted a command");

    let accepted = Accepted {
        command_id,
        case_id,
        key: envelope.case_key.clone().filter(|_| is_open),
        task_id,
        status: CommandStatus::Pending,
    };
    let deadline = Instant::now() + wait.unwrap_or_default();
    let outcome = match waiter {
        Some(waiter) => wait_for_outcome(state, command_id, waiter, deadline).await?,
        None => None,
    };
    Ok(Submitted {
        accepted,
        tenant: envelope.tenant,
        is_open,
        wait,
        deadline,
        outcome,
    })
}

/// The HTTP answer: 202 with the command, or with `Prefer: wait` the case
/// as the command left it (or its rejection).
async fn answer(state: &AppState, principal: &Principal, submitted: Submitted) -> Result<HttpResponse, ApiError> {
    let Submitted {
        accepted,
        tenant,
        is_open,
        wait,
        deadline,
        outcome,
    } = submitted;
    let (Some(wait), Some(outcome)) = (wait, outcome) else {
        return Ok(accepted_response(&accepted));
    };
    let case_id = accepted.case_id;
    match outcome {
        (OutcomeStatus::Processed, revision, _) => {
            let mut case = visible_case(state, &tenant, case_id, revision.unwrap_or(0), deadline).await?;
            // The command may have taken the case out of the caller's sight
            // (routed away, opened confidential): then only the outcome.
            let resource = Resource::of(&case);
            if !authz::decide(state, principal, Action::CaseRead, Some(&resource))
                .await?
                .visible
            {
                return Ok(accepted_response(&Accepted {
                    status: CommandStatus::Processed,
                    ..accepted
                }));
            }
            if !authz::decide(state, principal, authz::READ_INTERNAL, Some(&resource))
                .await?
                .allow
            {
                authz::hide_internal_comments(&mut case);
            }
            let status = if is_open { StatusCode::CREATED } else { StatusCode::OK };
            let mut res = HttpResponse::build(status);
            res.insert_header(("Preference-Applied", format!("wait={}", wait.as_secs())))
                .insert_header((header::ETAG, format!("\"{}\"", case.revision)));
            if is_open {
                res.insert_header((header::LOCATION, format!("/api/v1/cases/{case_id}")));
            }
            Ok(res.json(case))
        }
        (OutcomeStatus::Rejected, _, error) => Err(match error {
            Some(rejection) => ApiError::from_rejection(&rejection),
            None => ApiError::new(ErrorCode::Rejected, "rejected"),
        }),
        (OutcomeStatus::Cancelled, _, _) => Err(ApiError::new(ErrorCode::Cancelled, "the command was cancelled")),
    }
}

/// Unknown, unreadable and unattachable files are one and the same 422, so
/// attaching can not probe for files.
fn no_such_file() -> ApiError {
    ApiError::new(ErrorCode::Validation, "fileId: no such file").with_details(serde_json::json!({"field": "fileId"}))
}

/// The facts of a file the caller may attach: one they may read whose
/// bytes are complete and not being swept. It is pinned later, once the
/// command passed its checks.
async fn file_to_attach(state: &AppState, principal: &Principal, file_id: Uuid) -> Result<FileFacts, ApiError> {
    let file = state
        .platform
        .reads
        .get_file(&principal.tenant, file_id)
        .await?
        .ok_or_else(no_such_file)?;
    if !crate::routes::files::may_read(state, principal, &file).await?
        || !matches!(file.state, FileState::Uploaded | FileState::Pinned)
    {
        return Err(no_such_file());
    }
    Ok(FileFacts {
        name: file.name,
        content_type: file.content_type,
        size: file.size,
        sha256: file.sha256,
    })
}

/// How long a command for a case whose `open` is still in flight waits for
/// the case to exist, so that it can be authorized against it.
const PENDING_OPEN_WAIT: Duration = Duration::from_secs(5);

/// The case a command is for, waiting for a pipelined `open` to land: a
/// command is only ever authorized against the case's real state.
async fn case_for_command(state: &AppState, tenant: &TenantId, case_id: Uuid) -> Result<Case, ApiError> {
    let deadline = Instant::now() + PENDING_OPEN_WAIT;
    // Woken by appends where the store tells (embedded), else by a timer.
    let mut head = state.platform.events.watch_head();
    loop {
        if let Some(head) = head.as_mut() {
            head.borrow_and_update();
        }
        match authz::current_case(state, tenant, case_id).await {
            Ok(case) => return Ok(case),
            Err(e) if e.code != ErrorCode::NotFound => return Err(e),
            Err(not_found) => {
                if !state.platform.reads.has_unfinished_commands(tenant, case_id).await? {
                    // The open may have finished between the two looks; its
                    // events are stored before it is marked finished, so a
                    // second look is final.
                    return authz::current_case(state, tenant, case_id).await.map_err(|_| not_found);
                }
                if Instant::now() >= deadline {
                    return Err(ApiError::new(
                        ErrorCode::CasePending,
                        "the case is still being opened; retry shortly",
                    ));
                }
                let closed = match head.as_mut() {
                    // A rejected open appends nothing: look again after a
                    // while even without an append.
                    Some(head) => matches!(
                        tokio::time::timeout(Duration::from_millis(25), head.changed()).await,
                        Ok(Err(_))
                    ),
                    None => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        false
                    }
                };
                if closed {
                    head = None;
                }
            }
        }
    }
}

/// Asks the policy whether the caller may issue `command`: 404 when the case
/// is not visible to them, 403 `CW-FORBIDDEN` when the action is denied.
/// Returns the case it authorized against (none for an open), so the
/// early check decides on the same state without loading it again.
async fn authorize_command(
    state: &AppState,
    principal: &Principal,
    case_id: Uuid,
    command: &CaseCommand,
) -> Result<Option<Case>, ApiError> {
    let action = Action::of(command);
    let CaseCommand::Open(open) = command else {
        let case = case_for_command(state, &principal.tenant, case_id).await?;
        authz::authorize(state, principal, action, &case).await?;
        if let CaseCommand::Link(link) = command {
            // Linking to a case you can not see would confirm it exists.
            let target = authz::current_case(state, &principal.tenant, link.target).await;
            let visible = match &target {
                Ok(t) => {
                    authz::decide(state, principal, Action::CaseRead, Some(&Resource::of(t)))
                        .await?
                        .visible
                }
                Err(_) => false,
            };
            if !visible {
                return Err(ApiError::new(ErrorCode::Validation, "target: no such case")
                    .with_details(serde_json::json!({"field": "target"})));
            }
        }
        return Ok(Some(case));
    };
    // The case to be: where it will live and who it will be for.
    let definition = state
        .platform
        .reads
        .get_definition(&principal.tenant, &open.definition, None)
        .await?;
    let Some(definition) = definition else {
        // Can never succeed, and definitions are no secret: the domain's
        // 422 says more than a 403 would.
        return Ok(None);
    };
    let resource = Resource {
        tenant: principal.tenant.clone(),
        queue: open.queue.as_ref().unwrap_or(&definition.default_queue).clone(),
        assignee: None,
        requester: open.requester.as_ref().map(|r| r.email.as_str().to_owned()),
        created_by: principal.name.clone(),
        definition: open.definition.clone(),
        stage: definition.initial_stage,
        confidential: open.confidential,
    };
    if authz::decide(state, principal, action, Some(&resource)).await?.allow {
        Ok(None)
    } else {
        Err(authz::forbidden(action))
    }
}

fn accepted_response(accepted: &Accepted) -> HttpResponse {
    HttpResponse::Accepted()
        .insert_header((header::LOCATION, format!("/api/v1/commands/{}", accepted.command_id)))
        .json(accepted)
}

type Finished = (OutcomeStatus, Option<u64>, Option<Rejection>);

/// Waits for the outcome on the bus; the command log is checked too, so an
/// outcome published before we listened is not missed.
async fn wait_for_outcome(
    state: &AppState,
    command_id: Uuid,
    mut waiter: tokio::sync::oneshot::Receiver<casewire_ports::CommandOutcome>,
    deadline: Instant,
) -> Result<Option<Finished>, ApiError> {
    let mut poll = tokio::time::interval(Duration::from_millis(250));
    poll.tick().await;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            state.waiters.forget(command_id);
            return Ok(None);
        }
        tokio::select! {
            outcome = &mut waiter => {
                if let Ok(o) = outcome {
                    return Ok(Some((o.status, o.revision, o.error)));
                }
                // The sender went away; fall back to polling the log.
                waiter = state.waiters.register(command_id);
            }
            _ = poll.tick() => {
                if let Some(rec) = state.platform.reads.get_command(command_id).await? {
                    let status = match rec.status {
                        CommandStatus::Processed => Some(OutcomeStatus::Processed),
                        CommandStatus::Rejected => Some(OutcomeStatus::Rejected),
                        CommandStatus::Cancelled => Some(OutcomeStatus::Cancelled),
                        CommandStatus::Pending | CommandStatus::Processing => None,
                    };
                    if let Some(status) = status {
                        state.waiters.forget(command_id);
                        return Ok(Some((status, rec.revision, rec.error)));
                    }
                }
            }
            _ = tokio::time::sleep(remaining) => {}
        }
    }
}

/// The case once the projection shows `revision`, so a client that got
/// 200/201 can read its own write; falls back to the event store.
async fn visible_case(
    state: &AppState,
    tenant: &TenantId,
    id: Uuid,
    revision: u64,
    deadline: Instant,
) -> Result<Case, ApiError> {
    let reads = &state.platform.reads;
    loop {
        if let Some(case) = reads.get_case(tenant, id).await?
            && case.revision >= revision
        {
            return Ok(case);
        }
        if Instant::now() >= deadline {
            let events = state.platform.events.load(tenant, id).await?;
            return replay(&events, None)?.ok_or_else(|| ApiError::not_found("case"));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
