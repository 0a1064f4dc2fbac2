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
    /// Let this many appends through, then append one more and fail as a
    /// process that died right after it would.
    CrashAfterAppends(usize),
}

/// The real event store, with faults injected into `append` (tests only:
/// production code carries no crash hooks).
struct FaultyEvents {
    inner: Arc<dyn EventStore>,
    fault: Mutex<Fault>,
    /// Batched appends passed whole to the store (without a fault set).
    batches: std::sync::atomic::AtomicUsize,
}

impl FaultyEvents {
    fn wrap(platform: &mut Platform, fault: Fault) -> Arc<FaultyEvents> {
        let faulty = Arc::new(FaultyEvents {
            inner: platform.events.clone(),
            fault: Mutex::new(fault),
            batches: std::sync::atomic::AtomicUsize::new(0),
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
            Fault::CrashAfterAppends(0) => {
                self.set(Fault::CrashAfterAppend);
                self.append(tenant, case_id, expected, events).await
            }
            Fault::CrashAfterAppends(n) => {
                self.set(Fault::CrashAfterAppends(n - 1));
                self.inner.append(tenant, case_id, expected, events).await
            }
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
    async fn append_batch(&self, batch: Vec<casewire_ports::Append>) -> Result<Vec<Vec<EventRecord>>, StoreError> {
        if *self.fault.lock().unwrap() != Fault::None {
            // One by one, so the fault can strike in the middle.
            let mut out = Vec::new();
            for part in batch {
                out.push(
                    self.append(&part.tenant, part.case_id, part.expected, part.events)
                        .await?,
                );
            }
            return Ok(out);
        }
        self.batches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.append_batch(batch).await
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
        attachments: vec![],
        by_requester: false,
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

/// Publishes commands and takes them back as one engine would, in one batch.
async fn publish_and_take(platform: &Platform, commands: &[CommandEnvelope]) -> Vec<casewire_ports::BusMessage> {
    let messages = commands.iter().map(|c| (c.case_id.to_string(), c.to_json())).collect();
    platform.bus.publish(Topic::Commands, messages).await.unwrap();
    let mut sub = platform
        .bus
        .subscribe(
            Some(casewire_case_engine::engine::GROUP),
            Topic::Commands,
            StartFrom::Earliest,
        )
        .await
        .unwrap();
    let mut batch = Vec::new();
    while batch.len() < commands.len() {
        batch.push(sub.next().await.unwrap());
    }
    batch
}

/// Runs a fresh engine until every command has an outcome; returns them.
async fn run_until_outcomes(platform: &Platform, commands: &[CommandEnvelope]) -> Vec<CommandOutcome> {
    let mut outcomes = platform
        .bus
        .subscribe(None, Topic::Outcomes, StartFrom::Earliest)
        .await
        .unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let engine = tokio::spawn(casewire_case_engine::run(platform.clone(), shutdown.clone()));
    let mut seen: Vec<CommandOutcome> = Vec::new();
    while !commands
        .iter()
        .all(|c| seen.iter().any(|o| o.command_id == c.command_id))
    {
        let m = tokio::time::timeout(Duration::from_secs(20), outcomes.next())
            .await
            .expect("every command gets an outcome")
            .unwrap();
        seen.push(CommandOutcome::from_json(&m.payload).unwrap());
    }
    shutdown.cancel();
    engine.await.unwrap().unwrap();
    seen
}

#[tokio::test]
async fn a_crash_in_the_middle_of_a_batch_gives_exactly_one_decision_per_command() {
    let dir = tempfile::tempdir().unwrap();
    let mut platform = platform(dir.path()).await;
    // Three cases, an open and two comments each: nine commands, one batch.
    let mut commands = Vec::new();
    for n in 1..=3 {
        let case_id = Uuid::now_v7();
        commands.push(envelope(case_id, open(), Some(&format!("TKT-00000{n}"))));
        commands.push(envelope(case_id, comment(1), None));
        commands.push(envelope(case_id, comment(2), None));
    }
    let batch = publish_and_take(&platform, &commands).await;

    // The engine dies after the fifth append of the batch: five commands
    // decided (and finished in the command log), nothing published, the
    // batch not committed.
    FaultyEvents::wrap(&mut platform, Fault::CrashAfterAppends(4));
    let doomed = Engine::new(platform.clone());
    assert!(
        doomed.handle_batch(&batch).await.is_err(),
        "the simulated crash surfaces"
    );
    let stored_before: usize = {
        let mut n = 0;
        for c in commands.iter().step_by(3) {
            n += platform.events.load(&tenant(), c.case_id).await.unwrap().len();
        }
        n
    };
    assert_eq!(stored_before, 5, "five decisions were stored before the crash");
    assert!(
        drain(&platform, Topic::Events).await.is_empty(),
        "nothing was published"
    );

    // A fresh engine gets the whole uncommitted batch again.
    let outcomes = run_until_outcomes(&platform, &commands).await;
    assert!(
        outcomes.iter().all(|o| o.status == OutcomeStatus::Processed),
        "{outcomes:?}"
    );
    let mut stored = Vec::new();
    for c in commands.iter().step_by(3) {
        let stream = platform.events.load(&tenant(), c.case_id).await.unwrap();
        let revisions: Vec<u64> = stream.iter().map(|e| e.revision).collect();
        assert_eq!(revisions, vec![1, 2, 3], "one decision per command, gapless");
        stored.extend(stream.into_iter().map(|e| e.id));
    }
    let mut published: Vec<Uuid> = drain(&platform, Topic::Events)
        .await
        .iter()
        .map(|p| event_from_json(p).unwrap().id)
        .collect();
    published.sort();
    stored.sort();
    assert_eq!(published, stored, "each stored event published exactly once");
    for c in &commands {
        let record = platform.reads.get_command(c.command_id).await.unwrap().unwrap();
        assert_eq!(record.status, CommandStatus::Processed, "{record:?}");
    }
}

#[tokio::test]
async fn a_poison_message_in_a_batch_is_parked_and_the_rest_go_through() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform(dir.path()).await;
    let case_id = Uuid::now_v7();
    let first = envelope(case_id, open(), Some("TKT-000001"));
    let last = envelope(case_id, comment(1), None);
    let messages = vec![
        (case_id.to_string(), first.to_json()),
        (case_id.to_string(), b"{not a command".to_vec()),
        (case_id.to_string(), last.to_json()),
    ];
    platform.bus.publish(Topic::Commands, messages).await.unwrap();
    let outcomes = run_until_outcomes(&platform, &[first.clone(), last.clone()]).await;
    assert!(
        outcomes.iter().all(|o| o.status == OutcomeStatus::Processed),
        "{outcomes:?}"
    );
    assert_eq!(platform.events.load(&tenant(), case_id).await.unwrap().len(), 2);
    let parked = drain(&platform, Topic::Dlq).await;
    assert_eq!(parked, vec![b"{not a command".to_vec()], "only the poison is parked");
}

#[tokio::test]
async fn a_batch_is_decided_in_memory_and_appended_in_one_go() {
    let dir = tempfile::tempdir().unwrap();
    let mut platform = platform(dir.path()).await;
    let counted = FaultyEvents::wrap(&mut platform, Fault::None);
    // Three cases, an open and two comments each, and an open of a case
    // that exists (rejected): ten commands, taken as one batch.
    let mut commands = Vec::new();
    for n in 1..=3 {
        let case_id = Uuid::now_v7();
        commands.push(envelope(case_id, open(), Some(&format!("TKT-00000{n}"))));
        commands.push(envelope(case_id, comment(1), None));
        commands.push(envelope(case_id, comment(2), None));
    }
    let again = envelope(commands[0].case_id, open(), Some("TKT-000009"));
    commands.insert(4, again.clone());
    let batch = publish_and_take(&platform, &commands).await;
    Engine::new(platform.clone()).handle_batch(&batch).await.unwrap();

    assert_eq!(
        counted.batches.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one append for the batch"
    );
    for c in commands.iter().filter(|c| c.command_id != again.command_id).step_by(3) {
        let stream = platform.events.load(&tenant(), c.case_id).await.unwrap();
        let revisions: Vec<u64> = stream.iter().map(|e| e.revision).collect();
        assert_eq!(revisions, vec![1, 2, 3], "each against the state the one before left");
    }
    let rejected = platform.reads.get_command(again.command_id).await.unwrap().unwrap();
    assert_eq!(rejected.status, CommandStatus::Rejected, "{rejected:?}");
    let published = drain(&platform, Topic::Events).await;
    assert_eq!(published.len(), 9, "every event once");
    let outcomes = drain(&platform, Topic::Outcomes).await;
    assert_eq!(outcomes.len(), 10, "an outcome per command");
}

#[tokio::test]
async fn a_command_twice_in_one_batch_is_decided_once() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform(dir.path()).await;
    let case_id = Uuid::now_v7();
    let open = envelope(case_id, open(), Some("TKT-000001"));
    let twice = envelope(case_id, comment(1), None);
    let batch = publish_and_take(&platform, &[open, twice.clone(), twice.clone()]).await;
    Engine::new(platform.clone()).handle_batch(&batch).await.unwrap();
    let stream = platform.events.load(&tenant(), case_id).await.unwrap();
    assert_eq!(stream.len(), 2, "the open and one comment");
    let record = platform.reads.get_command(twice.command_id).await.unwrap().unwrap();
    assert_eq!(record.status, CommandStatus::Processed, "{record:?}");
}
