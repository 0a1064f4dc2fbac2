//! The command consumer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable as _};

use casewire_domain::types::TenantId;
use casewire_domain::{Case, ErrorCode, EventMeta};
use casewire_ports::envelope::event_to_json;
use casewire_ports::{
    Append, BusMessage, ClaimResult, CommandEnvelope, CommandOutcome, CommandRecord, CommandStatus, EventRecord,
    NewEvent, OutcomeStatus, Rejection, StoreError, Topic,
};
use casewire_runtime::Platform;
use casewire_runtime::consumer::{Failure, consume_batches};
use chrono::{SubsecRound as _, Utc};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use casewire_application::{CaseCache, decide, decide_on};

/// The consumer group every engine instance joins.
pub const GROUP: &str = "case-engine";

/// Why handling a message stopped short.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bus(#[from] casewire_ports::BusError),
    /// The message is not a command; it goes to the dead-letter topic.
    #[error("not a command: {0}")]
    Unreadable(String),
}

impl EngineError {
    /// Whether waiting may fix it (an unreachable store or bus): such
    /// failures are retried forever instead of dead-lettering the command.
    pub fn is_transient(&self) -> bool {
        match self {
            EngineError::Store(StoreError::Unavailable(_))
            | EngineError::Bus(casewire_ports::BusError::Unavailable(_)) => true,
            EngineError::Store(StoreError::Conflict { .. } | StoreError::Corrupt(_) | StoreError::Backend(_))
            | EngineError::Bus(casewire_ports::BusError::Closed | casewire_ports::BusError::Backend(_))
            | EngineError::Unreadable(_) => false,
        }
    }
}

/// What a batch of commands sends once it is decided: every event record
/// in the order it was appended, and every outcome. Published together,
/// one bus write per topic per batch; the commit comes after, so a crash
/// before the publish redelivers the batch and the command log's outbox
/// (the events found by command) sends them then.
#[derive(Debug, Default)]
pub struct Outbox {
    events: Vec<EventRecord>,
    outcomes: Vec<(String, Vec<u8>)>,
    /// The trace context of each command's span, sent along with the
    /// events it caused (empty when traces are off).
    traces: std::collections::HashMap<Uuid, String>,
}

/// Decides commands. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Engine {
    platform: Platform,
    cache: Arc<CaseCache>,
}

impl Engine {
    /// An engine over the platform's ports.
    pub fn new(platform: Platform) -> Self {
        Engine {
            platform,
            cache: Arc::default(),
        }
    }

    /// Sends what the outbox holds: both topics at once, one wait for the
    /// broker instead of two in a row. An outcome may so arrive before its
    /// events; nothing reads one as a promise about the other (a waiting
    /// API reads the projection until it shows the revision), and if the
    /// events' send fails the batch is redelivered and the outbox sends
    /// them again before the offset moves.
    pub async fn flush(&self, outbox: Outbox) -> Result<(), EngineError> {
        let messages: Vec<_> = outbox
            .events
            .iter()
            .map(|r| {
                (
                    r.case_id.to_string(),
                    serde_json::to_vec(&event_to_json(r)).unwrap_or_default(),
                    outbox.traces.get(&r.command_id).cloned(),
                )
            })
            .collect();
        let bus = &self.platform.bus;
        tokio::try_join!(
            bus.publish_traced(Topic::Events, messages),
            bus.publish(Topic::Outcomes, outbox.outcomes)
        )?;
        Ok(())
    }

    async fn finish(
        &self,
        outbox: &mut Outbox,
        env: &CommandEnvelope,
        status: OutcomeStatus,
        revision: Option<u64>,
        error: Option<Rejection>,
    ) -> Result<CommandOutcome, EngineError> {
        let (outcome, record) = self.conclude(outbox, env, status, revision, error).await?;
        if let Some(record) = record {
            self.platform.reads.finish_command(&record).await?;
        }
        Ok(outcome)
    }

    /// Everything of [`finish`](Self::finish) but the command log write:
    /// the outcome goes to the outbox, and the record to write (none for a
    /// cancelled command) is returned, so a batch writes them all at once.
    async fn conclude(
        &self,
        outbox: &mut Outbox,
        env: &CommandEnvelope,
        status: OutcomeStatus,
        revision: Option<u64>,
        error: Option<Rejection>,
    ) -> Result<(CommandOutcome, Option<CommandRecord>), EngineError> {
        let outcome = CommandOutcome {
            command_id: env.command_id,
            case_id: env.case_id,
            tenant: env.tenant.clone(),
            status,
            revision,
            error: error.clone(),
        };
        if status != OutcomeStatus::Processed
            && let casewire_domain::CaseCommand::Attach(attach) = &env.command
        {
            // The API pinned the file when it accepted the attach; a file
            // no case took must become sweepable again.
            self.platform
                .reads
                .unpin_file(&env.tenant, attach.file_id, Utc::now())
                .await?;
        }
        let record = (status != OutcomeStatus::Cancelled).then(|| CommandRecord {
            id: env.command_id,
            tenant: env.tenant.clone(),
            case_id: env.case_id,
            command_type: env.command.name().to_owned(),
            status: CommandStatus::from(status),
            actor: env.actor.clone(),
            accepted_at: env.issued_at,
            finished_at: Some(Utc::now()),
            revision,
            error,
        });
        outbox.outcomes.push((env.command_id.to_string(), outcome.to_json()));
        metrics::counter!("casewire_commands_handled_total", "outcome" => format!("{status:?}").to_lowercase())
            .increment(1);
        Ok((outcome, record))
    }

    /// Handles one command to its outcome and publishes it. Safe to call
    /// again for the same command: a repeat never decides twice.
    pub async fn handle(&self, env: &CommandEnvelope) -> Result<CommandOutcome, EngineError> {
        let mut outbox = Outbox::default();
        let outcome = self.decide_into(&mut outbox, env).await?;
        self.flush(outbox).await?;
        Ok(outcome)
    }

    /// Decides one command to its outcome, leaving what it sends in
    /// `outbox`.
    async fn decide_into(&self, outbox: &mut Outbox, env: &CommandEnvelope) -> Result<CommandOutcome, EngineError> {
        let reads = &self.platform.reads;
        let events = &self.platform.events;
        match reads.claim_command(env.command_id).await? {
            ClaimResult::Cancelled => {
                tracing::info!("Skipped a cancelled command");
                return self.finish(outbox, env, OutcomeStatus::Cancelled, None, None).await;
            }
            ClaimResult::Finished(record) => {
                // Decided before; its events may not have reached the bus.
                let caused = events.find_by_command(env.command_id).await?;
                outbox.events.extend(caused);
                let status = match record.status {
                    CommandStatus::Rejected => OutcomeStatus::Rejected,
                    CommandStatus::Cancelled => OutcomeStatus::Cancelled,
                    CommandStatus::Pending | CommandStatus::Processing | CommandStatus::Processed => {
                        OutcomeStatus::Processed
                    }
                };
                return self.finish(outbox, env, status, record.revision, record.error).await;
            }
            ClaimResult::Claimed | ClaimResult::Unknown => {}
        }
        let retries = self.platform.config.engine.max_conflict_retries;
        let mut attempt = 0;
        loop {
            let decided = decide(&**events, &**reads, &self.cache, env).await?;
            // The outbox, checked on every attempt and after the case was
            // loaded: events already caused by this command mean it was
            // decided, before a crash or, during a rebalance, by another
            // engine holding the same command. They are published, never
            // decided again. Any append by that other engine happened either
            // before this look (and is found) or after our load (and makes
            // our append conflict, so we come back here).
            let caused = events.find_by_command(env.command_id).await?;
            if let Some(last) = caused.last() {
                tracing::warn!(
                    events = caused.len(),
                    "Found the events of a command decided elsewhere or before a restart"
                );
                let revision = last.revision;
                outbox.events.extend(caused);
                return self
                    .finish(outbox, env, OutcomeStatus::Processed, Some(revision), None)
                    .await;
            }
            let decided = match decided {
                Ok(d) => d,
                Err(rejection) => {
                    tracing::info!(code = rejection.code().as_str(), reason = %rejection, "Rejected a command");
                    return self
                        .finish(
                            outbox,
                            env,
                            OutcomeStatus::Rejected,
                            None,
                            Some(Rejection::from(&rejection)),
                        )
                        .await;
                }
            };
            let now = Utc::now();
            let new: Vec<NewEvent> = decided
                .events
                .iter()
                .map(|e| NewEvent::from_domain(e, now, &env.actor, env.command_id, env.correlation_id))
                .collect();
            match events.append(&env.tenant, env.case_id, decided.revision(), new).await {
                Ok(records) => {
                    metrics::counter!("casewire_events_appended_total").increment(records.len() as u64);
                    let revision = records.last().map(|r| r.revision);
                    outbox.events.extend(records);
                    return self.finish(outbox, env, OutcomeStatus::Processed, revision, None).await;
                }
                Err(StoreError::Conflict { expected, actual }) if attempt < retries => {
                    attempt += 1;
                    tracing::info!(expected, actual, attempt, "Revision conflict; reloading the case");
                }
                Err(StoreError::Conflict { .. }) => {
                    let rejection = Rejection::new(ErrorCode::Conflict, "the case kept changing; try again")
                        .with_details(serde_json::json!({"attempts": attempt + 1}));
                    return self
                        .finish(outbox, env, OutcomeStatus::Rejected, None, Some(rejection))
                        .await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Ends a command whose message went to the dead-letter topic: rejected
    /// with `CW-DEAD-LETTERED`, its outcome published, so a waiting client
    /// gets an answer and its case is not held behind an unfinished command.
    /// A message that is not even a command names no command to end.
    pub async fn dead_lettered(&self, msg: &BusMessage, reason: &str) {
        let Ok(env) = CommandEnvelope::from_json(&msg.payload) else {
            return;
        };
        // The reason is an internal error (store or broker messages): it
        // goes to the log and the dead-letter headers, never to the client,
        // like any other 500.
        let rejection = Rejection::new(
            ErrorCode::DeadLettered,
            "the command could not be handled and was set aside for an operator; nothing was changed",
        );
        tracing::error!(command_id = %env.command_id, case_id = %env.case_id, reason, "Dead-lettered a command; rejecting it");
        // The failure was not transient, but this write may meet an outage
        // that began since: try a few times, then leave it to the log.
        let finish_and_send = || async {
            let mut outbox = Outbox::default();
            self.finish(
                &mut outbox,
                &env,
                OutcomeStatus::Rejected,
                None,
                Some(rejection.clone()),
            )
            .await?;
            self.flush(outbox).await
        };
        let recorded = finish_and_send
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(100))
                    .with_max_times(4),
            )
            .notify(|e, _| tracing::warn!(error = %e, "Could not record a dead-lettered command; retrying"))
            .await;
        if let Err(e) = recorded {
            tracing::error!(command_id = %env.command_id, error = %e, "A dead-lettered command stays unfinished in the command log");
        }
    }

    /// Handles one bus message; a message that is not a command is
    /// `Unreadable`, and the consumer loop dead-letters it at once.
    pub async fn handle_message(&self, msg: &BusMessage) -> Result<(), EngineError> {
        self.handle_batch(std::slice::from_ref(msg)).await
    }

    /// Handles a batch of bus messages in order, then publishes all their
    /// events and outcomes at once. Any failure fails the whole batch; the
    /// consumer loop then retries it, or hands it over one by one, and a
    /// command decided before the failure is found by its events then.
    pub async fn handle_batch(&self, msgs: &[BusMessage]) -> Result<(), EngineError> {
        let envelopes = msgs
            .iter()
            .map(|m| CommandEnvelope::from_json(&m.payload).map_err(|e| EngineError::Unreadable(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        // A span per command, each a child of the API's span for it (from
        // the message's trace context), and the context its events carry on.
        let spans: Vec<tracing::Span> = msgs
            .iter()
            .zip(&envelopes)
            .map(|(msg, env)| {
                let span = tracing::info_span!(
                    "command",
                    case_id = %env.case_id,
                    command_id = %env.command_id,
                    correlation_id = %env.correlation_id,
                    command = env.command.name()
                );
                casewire_runtime::telemetry::follow(&span, msg.traceparent.as_deref());
                span
            })
            .collect();
        let traces: std::collections::HashMap<Uuid, String> = envelopes
            .iter()
            .zip(&spans)
            .filter_map(|(env, span)| {
                span.in_scope(casewire_runtime::telemetry::traceparent)
                    .map(|t| (env.command_id, t))
            })
            .collect();
        let mut outbox = Outbox {
            traces: traces.clone(),
            ..Outbox::default()
        };
        if envelopes.len() > 1 && self.decide_batch(&mut outbox, &envelopes).await? {
            return self.flush(outbox).await;
        }
        // Rejections the batch recorded are found final one by one, and
        // their outcomes announced again from there.
        let mut outbox = Outbox {
            traces,
            ..Outbox::default()
        };
        for (env, span) in envelopes.iter().zip(spans) {
            self.decide_into(&mut outbox, env).instrument(span).await?;
        }
        self.flush(outbox).await
    }

    /// Decides a batch of fresh commands with one claim, one append and one
    /// finish transaction (where the stores batch): each decided in memory
    /// against the case as the batch's earlier commands left it. `false`
    /// when the batch is not that plain case (a command twice, a redelivered
    /// or cancelled one, events already caused by one, a revision
    /// conflict): then nothing of it was appended (its rejections may be
    /// recorded), and the caller takes the commands one by one, with a
    /// fresh outbox, outbox checks and all.
    async fn decide_batch(&self, outbox: &mut Outbox, envs: &[CommandEnvelope]) -> Result<bool, EngineError> {
        let ids: Vec<Uuid> = envs.iter().map(|e| e.command_id).collect();
        // A command twice in one batch (a replayed dead letter, a producer
        // without idempotence): only one by one does the second find the
        // first finished.
        if ids.iter().collect::<std::collections::HashSet<_>>().len() != ids.len() {
            return Ok(false);
        }
        let claims = self.platform.reads.claim_commands(&ids).await?;
        if claims
            .iter()
            .any(|c| !matches!(c, ClaimResult::Claimed | ClaimResult::Unknown))
        {
            return Ok(false);
        }
        let Some(plan) = self.plan(envs).await? else {
            return Ok(false);
        };
        // The rejections are recorded first: were anything after this to
        // fail, a retry must find them final, not decide them again after
        // the batch's later commands (whose events may be stored by then).
        let mut rejections: Vec<_> = plan.rejections.into_iter().collect();
        rejections.sort_by_key(|(i, _)| *i);
        let mut rejected = Vec::with_capacity(rejections.len());
        for (i, rejection) in rejections {
            let (_, record) = self
                .conclude(outbox, &envs[i], OutcomeStatus::Rejected, None, Some(rejection))
                .await?;
            rejected.extend(record);
        }
        self.platform.reads.finish_commands(&rejected).await?;
        let appended = match self.platform.events.append_batch(plan.appends).await {
            Ok(appended) => appended,
            Err(StoreError::Conflict { .. }) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        let mut revisions = vec![None; envs.len()];
        for (i, part) in plan.owners.iter().zip(appended) {
            metrics::counter!("casewire_events_appended_total").increment(part.len() as u64);
            revisions[*i] = part.last().map(|r| r.revision);
            outbox.events.extend(part);
        }
        let mut records = Vec::with_capacity(plan.owners.len());
        for i in plan.owners {
            let (_, record) = self
                .conclude(outbox, &envs[i], OutcomeStatus::Processed, revisions[i], None)
                .await?;
            records.extend(record);
        }
        self.platform.reads.finish_commands(&records).await?;
        Ok(true)
    }

    /// Decides each command of a batch against the state the batch's
    /// earlier commands left its case in; `None` if one of them has
    /// caused events already (decided before a crash or elsewhere).
    async fn plan(&self, envs: &[CommandEnvelope]) -> Result<Option<Plan>, EngineError> {
        let (events, reads) = (&self.platform.events, &self.platform.reads);
        let mut states: HashMap<(TenantId, Uuid), Option<Case>> = HashMap::new();
        let mut plan = Plan::default();
        for (i, env) in envs.iter().enumerate() {
            let key = (env.tenant.clone(), env.case_id);
            let case = match states.remove(&key) {
                Some(state) => state,
                None => self.cache.current(&**events, &env.tenant, env.case_id).await?,
            };
            // After the load, as in `decide_into`: an append of this
            // command by another engine either happened before (found
            // here) or comes after the load (and our append conflicts).
            if !events.find_by_command(env.command_id).await?.is_empty() {
                return Ok(None);
            }
            let decided = match decide_on(case.clone(), &**reads, &self.cache, env).await? {
                Ok(decided) => decided,
                Err(rejection) => {
                    tracing::info!(command_id = %env.command_id, code = rejection.code().as_str(), reason = %rejection, "Rejected a command");
                    plan.rejections.insert(i, Rejection::from(&rejection));
                    states.insert(key, case);
                    continue;
                }
            };
            // As stored (`NewEvent::from_domain` keeps microseconds), so the
            // state folded here is the state a reload would give.
            let now = Utc::now().trunc_subsecs(6);
            let expected = decided.revision();
            let mut next = decided.case;
            for (n, event) in decided.events.iter().enumerate() {
                let meta = EventMeta {
                    case_id: env.case_id,
                    tenant: &env.tenant,
                    revision: expected + 1 + n as u64,
                    time: now,
                    actor: &env.actor,
                };
                next = Case::fold(next, &meta, event);
            }
            states.insert(key, next);
            plan.appends.push(Append {
                tenant: env.tenant.clone(),
                case_id: env.case_id,
                expected,
                events: decided
                    .events
                    .iter()
                    .map(|e| NewEvent::from_domain(e, now, &env.actor, env.command_id, env.correlation_id))
                    .collect(),
            });
            plan.owners.push(i);
        }
        Ok(Some(plan))
    }
}

/// What a batch will append and reject.
#[derive(Default)]
struct Plan {
    appends: Vec<Append>,
    /// The command (its index in the batch) of each append.
    owners: Vec<usize>,
    rejections: HashMap<usize, Rejection>,
}

/// Runs the engine until `shutdown`: one consumer in the `case-engine`
/// group, handling its partitions' commands in order, a batch at a time,
/// which makes it the single writer of every case it owns.
pub async fn run(platform: Platform, shutdown: CancellationToken) -> anyhow::Result<()> {
    let engine = Engine::new(platform.clone());
    let max_batch = platform.config.bus.max_batch;
    consume_batches(
        &platform,
        GROUP,
        Topic::Commands,
        shutdown,
        max_batch,
        |batch| {
            let engine = engine.clone();
            async move {
                match engine.handle_batch(&batch).await {
                    Ok(()) => Ok(()),
                    Err(e @ EngineError::Unreadable(_)) => Err(Failure::Poison(e.to_string())),
                    Err(e) if e.is_transient() => Err(Failure::Transient(e.to_string())),
                    Err(e) => Err(Failure::Permanent(e.to_string())),
                }
            }
        },
        |msg, reason| {
            let engine = engine.clone();
            async move { engine.dead_lettered(&msg, &reason).await }
        },
    )
    .await
}
