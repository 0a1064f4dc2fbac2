//! The engine's promises around crashes and concurrency, against the real
//! embedded stores: a crash between append and publish followed by
//! redelivery gives exactly the events of one decision; redelivering a
//! finished command never decides twice; concurrent writers of one case
//! reload and retry until every command is in, with gapless revisions.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use casewire_case_engine::Engine;
use casewire_domain::CaseCommand;
use casewire_domain::command::{CommentOnCase, OpenCase, Visibility};
use casewire_domain::types::{CaseKey, TenantId};
use casewire_ports::envelope::event_from_json;
use casewire_ports::{
    CommandEnvelope, CommandOutcome, CommandRecord, CommandStatus, EventRecord, EventStore, NewEvent, OutcomeStatus,
    StartFrom, StoreError, Topic,
};
use casewire_runtime::{Config, Platform};
use chrono::Utc;
use uuid::Uuid;

const DEF: &str = "id: ticket\nname: Ticket\nkeyPrefix: TKT\nstages: [{id: new}, {id: done}]\ninitialStage: new\ntransitions: {new: [done]}\nterminalStages: [done]\npriorities: [{id: normal}]\ndefaultPriority: normal\ndefaultQueue: support\n";

/// The tenant every command of these tests is for.
fn tenant() -> TenantId {
    TenantId::parse("casewire").unwrap()
}

async fn platform(dir: &std::path::Path) -> Platform {
    let config = Config {
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    let platform = Platform::open(config).await.unwrap();
    let def = casewire_domain::CaseDefinition::parse_yaml(DEF).unwrap();
    platform.reads.put_definition(&tenant(), &def).await.unwrap();
    platform
}

/// What the faulty event store does to the next appends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    /// Append, then fail as a process that died right after would.
    CrashAfterAppend,
    /// Fail every append with an error that waiting does not cure.
    BrokenAppends,
}

/// The real event store, with faults injected into `append` (tests only:
/// production code carries no crash hooks).
struct FaultyEvents {
    inner: Arc<dyn EventStore>,
    fault: Mutex<Fault>,
}

impl FaultyEvents {
    fn wrap(platform: &mut Platform, fault: Fault) -> Arc<FaultyEvents> {
        let faulty = Arc::new(FaultyEvents {
            inner: platform.events.clone(),
            fault: Mutex::new(fault),
        });
        platform.events = faulty.clone();
        faulty
    }

    fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
    }
}

#[async_trait]
impl EventStore for FaultyEvents {
    async fn append(
        &self,
        tenant: &TenantId,
        case_id: Uuid,
        expected: u64,
        events: Vec<NewEvent>,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let fault = *self.fault.lock().unwrap();
        match fault {
            Fault::None => self.inner.append(tenant, case_id, expected, events).await,
            Fault::CrashAfterAppend => {
                self.set(Fault::None);
                self.inner.append(tenant, case_id, expected, events).await?;
                Err(StoreError::Backend("simulated crash after the append".into()))
            }
            Fault::BrokenAppends => Err(StoreError::Backend("the disk is on fire".into())),
        }
    }
    async fn load_after(&self, tenant: &TenantId, case_id: Uuid, after: u64) -> Result<Vec<EventRecord>, StoreError> {
        self.inner.load_after(tenant, case_id, after).await
    }
    async fn read_all(&self, from: u64, limit: usize) -> Result<Vec<EventRecord>, StoreError> {
        self.inner.read_all(from, limit).await
    }
    async fn find_by_command(&self, command_id: Uuid) -> Result<Vec<EventRecord>, StoreError> {
        self.inner.find_by_command(command_id).await
    }
    async fn head(&self) -> Result<u64, StoreError> {
        self.inner.head().await
    }
    async fn allocate_key(&self, tenant: &TenantId, prefix: &str) -> Result<u64, StoreError> {
        self.inner.allocate_key(tenant, prefix).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
}

fn envelope(case_id: Uuid, command: CaseCommand, key: Option<&str>) -> CommandEnvelope {
    let id = Uuid::now_v7();
    CommandEnvelope {
        command_id: id,
        case_id,
        tenant: tenant(),
        actor: "alice".into(),
        correlation_id: id,
        case_key: key.map(|k| CaseKey::parse(k).unwrap()),
        issued_at: Utc::now(),
        command,
    }
}

fn open() -> CaseCommand {
    CaseCommand::Open(OpenCase {
        definition: "ticket".into(),
        title: "Printer on fire".into(),
        description: None,
        data: serde_json::json!({}),
        priority: None,
        queue: None,
        requester: None,
        tags: vec![],
        confidential: false,
    })
}

fn comment(n: usize) -> CaseCommand {
    CaseCommand::Comment(CommentOnCase {
        comment_id: Some(Uuid::now_v7()),
        parent_id: None,
        body: format!("comment {n}"),
        visibility: Visibility::Internal,
    })
}

/// Drains a topic from the start with a private group.
async fn drain(platform: &Platform, topic: Topic) -> Vec<Vec<u8>> {
    let mut sub = platform
        .bus
        .subscribe(Some(&format!("drain-{}", Uuid::now_v7())), topic, StartFrom::Earliest)
        .await
        .unwrap();
    let mut out = Vec::new();
    while let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(300), sub.next()).await {
        out.push(m.payload);
    }
    out
}

#[tokio::test]
async fn a_crash_between_append_and_publish_gives_exactly_one_decision() {
    let dir = tempfile::tempdir().unwrap();
    let mut platform = platform(dir.path()).await;
    let case_id = Uuid::now_v7();
    let env = envelope(case_id, open(), Some("TKT-000001"));
    platform
        .bus
        .publish(Topic::Commands, vec![(case_id.to_string(), env.to_json())])
        .await
        .unwrap();

    // First engine: takes the command, appends, "dies" before publishing
    // and before committing the command's offset.
    FaultyEvents::wrap(&mut platform, Fault::CrashAfterAppend);
    let doomed = Engine::new(platform.clone());
    let mut sub = platform
        .bus
        .subscribe(
            Some(casewire_case_engine::engine::GROUP),
            Topic::Commands,
            StartFrom::Earliest,
        )
        .await
        .unwrap();
    let msg = sub.next().await.unwrap();
    assert!(
        doomed.handle_message(&msg).await.is_err(),
        "the simulated crash surfaces"
    );
    drop(sub);
    assert_eq!(
        platform.events.load(&tenant(), case_id).await.unwrap().len(),
        1,
        "the append happened"
    );
    assert!(
        drain(&platform, Topic::Events).await.is_empty(),
        "nothing was published"
    );

    // A fresh engine gets the uncommitted command again.
    let shutdown = tokio_util::sync::CancellationToken::new();
    let engine = tokio::spawn(casewire_case_engine::run(platform.clone(), shutdown.clone()));
    let mut outcomes = platform
        .bus
        .subscribe(None, Topic::Outcomes, StartFrom::Earliest)
        .await
        .unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(10), outcomes.next())
        .await
        .unwrap()
        .unwrap();
    let outcome = CommandOutcome::from_json(&outcome.payload).unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Processed);
    assert_eq!(outcome.revision, Some(1));
    shutdown.cancel();
    engine.await.unwrap().unwrap();

    let stored = platform.events.load(&tenant(), case_id).await.unwrap();
    assert_eq!(stored.len(), 1, "no second decision");
    let published: Vec<_> = drain(&platform, Topic::Events)
        .await
        .iter()
        .map(|p| event_from_json(p).unwrap())
        .collect();
    assert_eq!(published.len(), 1, "the recovered event was published once");
    assert_eq!(published[0].id, stored[0].id, "the very event that was stored");
    let record = platform.reads.get_command(env.command_id).await.unwrap().unwrap();
    assert_eq!(record.revision, Some(1));
}

#[tokio::test]
async fn redelivering_a_finished_command_never_decides_twice() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform(dir.path()).await;
    let engine = Engine::new(platform.clone());
    let case_id = Uuid::now_v7();
    engine
        .handle(&envelope(case_id, open(), Some("TKT-000001")))
        .await
        .unwrap();
    let env = envelope(case_id, comment(1), None);
    let first = engine.handle(&env).await.unwrap();
    let again = engine.handle(&env).await.unwrap();
    assert_eq!(first.status, OutcomeStatus::Processed);
    assert_eq!(again.status, OutcomeStatus::Processed);
    assert_eq!(again.revision, first.revision);
    assert_eq!(platform.events.load(&tenant(), case_id).await.unwrap().len(), 2);

    // A rejected command stays rejected, with its reason, on redelivery.
    let bad = envelope(case_id, open(), Some("TKT-000002"));
    let rejected = engine.handle(&bad).await.unwrap();
    assert_eq!(rejected.status, OutcomeStatus::Rejected);
    assert_eq!(rejected.error.as_ref().unwrap().code.as_str(), "CW-CONFLICT");
    let again = engine.handle(&bad).await.unwrap();
    assert_eq!(again.status, OutcomeStatus::Rejected);
    assert_eq!(again.error, rejected.error);
}

#[tokio::test]
async fn concurrent_writers_of_one_case_reload_and_retry() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform(dir.path()).await;
    let case_id = Uuid::now_v7();
    Engine::new(platform.clone())
        .handle(&envelope(case_id, open(), Some("TKT-000001")))
        .await
        .unwrap();
    // Four engines deciding comments on the same case at the same time:
    // stale revisions conflict, reload and retry.
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let engine = Engine::new(platform.clone());
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for n in 0..10 {
                outcomes.push(
                    engine
                        .handle(&envelope(case_id, comment(worker * 100 + n), None))
                        .await
                        .unwrap(),
                );
            }
            outcomes
        }));
    }
    let outcomes: Vec<CommandOutcome> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .flat_map(Result::unwrap)
        .collect();
    assert!(
        outcomes.iter().all(|o| o.status == OutcomeStatus::Processed),
        "{outcomes:?}"
    );
    let stream = platform.events.load(&tenant(), case_id).await.unwrap();
    assert_eq!(stream.len(), 41);
    let revisions: Vec<u64> = stream.iter().map(|e| e.revision).collect();
    assert_eq!(revisions, (1..=41).collect::<Vec<_>>(), "gapless, no duplicates");
}

#[tokio::test]
async fn a_dead_lettered_command_ends_rejected_and_does_not_hold_its_case() {
    let dir = tempfile::tempdir().unwrap();
    let mut platform = platform(dir.path()).await;
    let mut config = (*platform.config).clone();
    config.bus.max_attempts = 2;
    platform.config = Arc::new(config);
    let faulty = FaultyEvents::wrap(&mut platform, Fault::None);
    let engine = Engine::new(platform.clone());
    let case_id = Uuid::now_v7();
    engine
        .handle(&envelope(case_id, open(), Some("TKT-000001")))
        .await
        .unwrap();

    // A comment accepted by the API (pending in the command log), whose
    // every append fails for a reason waiting does not cure.
    faulty.set(Fault::BrokenAppends);
    let env = envelope(case_id, comment(1), None);
    platform
        .reads
        .insert_command(&CommandRecord {
            id: env.command_id,
            tenant: env.tenant.clone(),
            case_id: env.case_id,
            command_type: env.command.name().to_owned(),
            status: CommandStatus::Pending,
            actor: env.actor.clone(),
            accepted_at: env.issued_at,
            finished_at: None,
            revision: None,
            error: None,
        })
        .await
        .unwrap();
    let mut outcomes = platform
        .bus
        .subscribe(None, Topic::Outcomes, StartFrom::Latest)
        .await
        .unwrap();
    platform
        .bus
        .publish(Topic::Commands, vec![(case_id.to_string(), env.to_json())])
        .await
        .unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(casewire_case_engine::run(platform.clone(), shutdown.clone()));
    let outcome = tokio::time::timeout(Duration::from_secs(20), outcomes.next())
        .await
        .expect("an outcome, not silence")
        .unwrap();
    let outcome = CommandOutcome::from_json(&outcome.payload).unwrap();
    assert_eq!(outcome.command_id, env.command_id);
    assert_eq!(outcome.status, OutcomeStatus::Rejected);
    let error = outcome.error.unwrap();
    assert_eq!(error.code.as_str(), "CW-DEAD-LETTERED", "{error:?}");
    // The internal cause goes to the log, never to the client.
    let shown = serde_json::to_string(&error).unwrap();
    assert!(!shown.contains("disk is on fire"), "{shown}");
    assert!(error.message.contains("set aside for an operator"), "{shown}");
    let record = platform.reads.get_command(env.command_id).await.unwrap().unwrap();
    assert_eq!(record.status, CommandStatus::Rejected, "the command log says it ended");
    assert_eq!(
        drain(&platform, Topic::Dlq).await.len(),
        1,
        "the message is parked for an operator"
    );

    // The case is not stuck: the next command goes through.
    faulty.set(Fault::None);
    let next = envelope(case_id, comment(2), None);
    platform
        .bus
        .publish(Topic::Commands, vec![(case_id.to_string(), next.to_json())])
        .await
        .unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(20), outcomes.next())
        .await
        .unwrap()
        .unwrap();
    let outcome = CommandOutcome::from_json(&outcome.payload).unwrap();
    assert_eq!(
        (outcome.command_id, outcome.status),
        (next.command_id, OutcomeStatus::Processed)
    );
    assert_eq!(platform.events.load(&tenant(), case_id).await.unwrap().len(), 2);
    shutdown.cancel();
    running.await.unwrap().unwrap();
}
