//! The automation consumer: reads `casewire.events` (group `automation`),
//! asks the case's definition which rules fire on each event
//! ([`casewire_domain::automation::fire`]) and issues their commands on
//! `casewire.commands`, as actor `automation:<depth>`.
//!
//! Exactly once without a table of its own: each command's id derives
//! from the event, the rule and the action, so a redelivered or replayed
//! event issues commands the engine has decided already, and the engine
//! never decides one twice. A chain of rules firing on events that rules
//! caused stops at [`MAX_DEPTH`] with an internal comment on the case.

use casewire_application::CaseCache;
use casewire_domain::automation::{ACTOR, Fired, MAX_DEPTH, depth_of, fire};
use casewire_domain::command::{CommentOnCase, Visibility};
use casewire_domain::{Case, CaseCommand, CaseEvent};
use casewire_ports::envelope::{CommandEnvelope, event_from_json};
use casewire_ports::{BusMessage, EventRecord, StoreError, Topic};
use casewire_runtime::Platform;
use casewire_runtime::consumer::{Failure, consume_batches};
use chrono::Utc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The consumer group of automation.
pub const GROUP: &str = "automation";

/// Runs automation until `shutdown`.
pub async fn run(platform: Platform, shutdown: CancellationToken) -> anyhow::Result<()> {
    let cache = std::sync::Arc::new(CaseCache::new(16 << 20));
    let max_batch = platform.config.bus.max_batch;
    let p = platform.clone();
    consume_batches(
        &platform,
        GROUP,
        Topic::Events,
        shutdown,
        max_batch,
        move |batch| {
            let (platform, cache) = (p.clone(), cache.clone());
            async move {
                for msg in &batch {
                    handle(&platform, &cache, msg).await?;
                }
                Ok(())
            }
        },
        |_, reason| async move {
            tracing::error!(%reason, "An event automation could not handle was dead-lettered");
        },
    )
    .await
}

fn transient(e: StoreError) -> Failure {
    Failure::Transient(e.to_string())
}

async fn handle(platform: &Platform, cache: &CaseCache, msg: &BusMessage) -> Result<(), Failure> {
    let record = event_from_json(&msg.payload).map_err(|e| Failure::Poison(e.to_string()))?;
    // An event type this version does not know fires nothing.
    let Ok(event) = record.case_event() else {
        return Ok(());
    };
    // The definition first, from the cached newest state (a case keeps its
    // definition version): most definitions have no rules, and reading the
    // case's stream for every event would cost the engine's process a read
    // of the whole history per event.
    let Some(latest) = cache
        .current(&*platform.events, &record.tenant, record.case_id)
        .await
        .map_err(transient)?
    else {
        return Ok(());
    };
    let definition = cache
        .definition(
            &*platform.reads,
            &record.tenant,
            &latest.definition_id,
            Some(latest.definition_version),
        )
        .await
        .map_err(transient)?;
    let Some(definition) = definition.filter(|d| !d.automation.is_empty()) else {
        return Ok(());
    };
    let case = if latest.revision == record.revision {
        latest
    } else {
        match case_as_of(platform, &record).await? {
            Some(case) => case,
            None => return Ok(()),
        }
    };
    let fired = fire(&definition, record.id, &event, &case);
    if fired.is_empty() {
        return Ok(());
    }
    let depth = depth_of(&record.actor);
    match depth {
        d if d < MAX_DEPTH => {
            for f in fired {
                issue(platform, &record, f, d + 1).await?;
            }
        }
        d if d == MAX_DEPTH => issue(platform, &record, depth_limit(&record, &event, &fired), d + 1).await?,
        // Past the limit (the comment above): nothing more.
        _ => {}
    }
    Ok(())
}

/// The case as `record` left it: the rules judge the event's moment, so a
/// redelivery late in the case's life fires what it fired the first time.
async fn case_as_of(platform: &Platform, record: &EventRecord) -> Result<Option<Case>, Failure> {
    let events = platform
        .events
        .load_after(&record.tenant, record.case_id, 0)
        .await
        .map_err(transient)?;
    let mut case = None;
    for e in events.iter().take_while(|e| e.revision <= record.revision) {
        let Ok(event) = e.case_event() else { continue };
        case = Case::fold(case, &e.meta(), &event);
    }
    Ok(case)
}

/// The internal comment that says a chain of rules was stopped.
fn depth_limit(record: &EventRecord, event: &CaseEvent, fired: &[Fired]) -> Fired {
    let rules: Vec<&str> = fired.iter().map(|f| f.rule.as_str()).collect();
    let command_id = Uuid::new_v5(&record.id, b"depth-limit");
    Fired {
        rule: "depth-limit".into(),
        command_id,
        command: CaseCommand::Comment(CommentOnCase {
            comment_id: Some(Uuid::new_v5(&command_id, b"comment")),
            parent_id: None,
            body: format!(
                "Automation stopped: rule(s) {} would fire on {} (revision {}) at depth {}, past the limit of {MAX_DEPTH}. \
                 A rule probably triggers itself; check the definition's automation.",
                rules.join(", "),
                event.name(),
                record.revision,
                MAX_DEPTH + 1
            ),
            visibility: Visibility::Internal,
            attachments: vec![],
            by_requester: false,
        }),
    }
}

/// Records the command in the command log (once) and sends it.
async fn issue(platform: &Platform, cause: &EventRecord, fired: Fired, depth: u32) -> Result<(), Failure> {
    let envelope = CommandEnvelope {
        command_id: fired.command_id,
        case_id: cause.case_id,
        tenant: cause.tenant.clone(),
        actor: format!("{ACTOR}:{depth}"),
        correlation_id: cause.correlation_id,
        case_key: None,
        issued_at: Utc::now(),
        command: fired.command,
    };
    tracing::info!(rule = %fired.rule, case_id = %envelope.case_id, command_id = %envelope.command_id,
        command = envelope.command.name(), "Automation issued a command");
    platform
        .issue(&envelope)
        .await
        .map_err(|e| Failure::Transient(e.to_string()))
}
