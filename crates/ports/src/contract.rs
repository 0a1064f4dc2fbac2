//! Contract suites: one per port, generic over the adapter. Every adapter's
//! tests call these with a fresh instance (its own database, bucket or topic
//! prefix), so the same behaviour is asserted of SQLite, Kafka and MongoDB.
//! They panic with a message on the first broken promise.

// These are test suites shipped as library code: a panic is the report.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use casewire_domain::command::{Requester, Visibility};
use casewire_domain::types::EmailAddress;
use casewire_domain::{Case, CaseDefinition, CaseStatus, Comment};
use chrono::{TimeZone, Utc};
use uuid::Uuid;

use crate::*;

/// Says why an infra-backed test did not run, for tests that need a
/// server (`tests/run` starts them). Under `tests/run`
/// (`CASEWIRE_REQUIRE_INFRA=1`) a missing service is a failure instead.
pub fn skip(reason: &str) {
    use std::io::Write;
    assert!(
        std::env::var_os("CASEWIRE_REQUIRE_INFRA").is_none(),
        "required infrastructure missing: {reason}"
    );
    // Written to the handle, not through eprintln!, which libtest captures.
    let _ = writeln!(std::io::stderr(), "SKIPPED: {reason}");
}

fn new_event(command_id: Uuid, n: u32) -> NewEvent {
    NewEvent {
        id: Uuid::now_v7(),
        event_type: "casewire.case.tagged.v1".into(),
        data: serde_json::json!({"tag": format!("t{n}")}),
        time: Utc::now(),
        actor: "contract".into(),
        command_id,
        correlation_id: command_id,
    }
}

/// The `EventStore` promises.
pub async fn event_store_contract<S: EventStore>(store: Arc<S>) {
    let tenant = "contract";
    let case = Uuid::now_v7();
    let other = Uuid::now_v7();
    let c1 = Uuid::now_v7();
    let start = store.head().await.expect("head");

    let first = store
        .append(tenant, case, 0, vec![new_event(c1, 1), new_event(c1, 2)])
        .await
        .expect("append to a new stream");
    assert_eq!(
        first.iter().map(|e| e.revision).collect::<Vec<_>>(),
        vec![1, 2],
        "revisions count from 1"
    );
    assert!(
        first[0].position > start && first[1].position > first[0].position,
        "positions increase"
    );

    // A stale writer loses and writes nothing.
    match store.append(tenant, case, 1, vec![new_event(Uuid::now_v7(), 3)]).await {
        Err(StoreError::Conflict { expected: 1, actual: 2 }) => {}
        other => panic!("expected a conflict at revision 2, got {other:?}"),
    }
    match store.append(tenant, case, 0, vec![new_event(Uuid::now_v7(), 3)]).await {
        Err(StoreError::Conflict { .. }) => {}
        other => panic!("expected a conflict when re-opening a stream, got {other:?}"),
    }
    assert_eq!(
        store.load(tenant, case).await.expect("load").len(),
        2,
        "a conflict appends nothing"
    );

    let c2 = Uuid::now_v7();
    store
        .append(tenant, other, 0, vec![new_event(c2, 9)])
        .await
        .expect("append other");
    let c3 = Uuid::now_v7();
    store
        .append(tenant, case, 2, vec![new_event(c3, 3)])
        .await
        .expect("append after reload");

    let stream = store.load(tenant, case).await.expect("load");
    assert_eq!(stream.iter().map(|e| e.revision).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(stream[0].data, serde_json::json!({"tag": "t1"}), "data round-trips");
    assert_eq!(stream[0].command_id, c1);
    assert!(
        store.load("another-tenant", case).await.expect("load").is_empty(),
        "streams are scoped by tenant"
    );
    assert!(store.load(tenant, Uuid::now_v7()).await.expect("load").is_empty());

    let all = store.read_all(start + 1, 100).await.expect("read_all");
    assert_eq!(all.len(), 4, "read_all sees every event since the start");
    assert!(
        all.windows(2).all(|w| w[0].position < w[1].position),
        "read_all is in position order"
    );
    let from = all[2].position;
    let tail = store.read_all(from, 100).await.expect("read_all from");
    assert_eq!(tail.first().map(|e| e.position), Some(from), "from is inclusive");
    assert_eq!(
        store.read_all(start + 1, 1).await.expect("limit").len(),
        1,
        "limit is honoured"
    );
    assert_eq!(store.head().await.expect("head"), all[3].position);

    let caused = store.find_by_command(c1).await.expect("find_by_command");
    assert_eq!(caused.iter().map(|e| e.revision).collect::<Vec<_>>(), vec![1, 2]);
    assert!(store.find_by_command(Uuid::now_v7()).await.expect("find").is_empty());

    // Keys: sequential per (tenant, prefix), never twice under concurrency.
    let prefix = format!("K{}", &Uuid::now_v7().simple().to_string()[..4].to_uppercase());
    assert_eq!(store.allocate_key(tenant, &prefix).await.expect("key"), 1);
    assert_eq!(store.allocate_key(tenant, &prefix).await.expect("key"), 2);
    assert_eq!(
        store.allocate_key("another-tenant", &prefix).await.expect("key"),
        1,
        "keys are per tenant"
    );
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        let prefix = prefix.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for _ in 0..25 {
                got.push(store.allocate_key(tenant, &prefix).await.expect("key"));
            }
            got
        }));
    }
    let mut seen = HashSet::new();
    for t in tasks {
        for n in t.await.expect("join") {
            assert!(seen.insert(n), "key number {n} allocated twice");
        }
    }
    assert_eq!(seen.len(), 200);
    assert_eq!(seen.iter().min(), Some(&3));
    assert_eq!(seen.iter().max(), Some(&202), "no gaps under concurrency");

    // A prefix whose first numbers are taken concurrently: the counter is
    // created by a race, and still no number is lost or given twice.
    let fresh = format!("N{}", &Uuid::now_v7().simple().to_string()[..4].to_uppercase());
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        let fresh = fresh.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for _ in 0..5 {
                got.push(store.allocate_key(tenant, &fresh).await.expect("key"));
            }
            got
        }));
    }
    let mut taken = Vec::new();
    for t in tasks {
        taken.extend(t.await.expect("join"));
    }
    taken.sort_unstable();
    assert_eq!(
        taken,
        (1..=40).collect::<Vec<u64>>(),
        "a new prefix counts 1..40 under concurrency"
    );

    // Concurrent appends at the same revision: exactly one wins.
    let racy = Uuid::now_v7();
    let mut tasks = Vec::new();
    for n in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.append(tenant, racy, 0, vec![new_event(Uuid::now_v7(), n)]).await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.expect("join") {
            Ok(_) => wins += 1,
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!(wins, 1, "exactly one concurrent writer wins");
    store.ping().await.expect("ping");
}

fn case(tenant: &str, n: u32, revision: u64) -> Case {
    let created =
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap_or_default() + chrono::Duration::minutes(n.into());
    Case {
        id: Uuid::now_v7(),
        tenant: tenant.into(),
        key: format!("CON-{n:06}"),
        definition_id: if n.is_multiple_of(2) {
            "even".into()
        } else {
            "odd".into()
        },
        definition_version: 1,
        title: format!(
            "Case number {n} about {}",
            if n.is_multiple_of(3) { "printers" } else { "invoices" }
        ),
        description: "contract".into(),
        data: serde_json::json!({"n": n}),
        stage: if n.is_multiple_of(4) {
            "done".into()
        } else {
            "new".into()
        },
        status: CaseStatus::Open,
        priority: if n.is_multiple_of(5) {
            "high".into()
        } else {
            "normal".into()
        },
        queue: if n < 10 { "support".into() } else { "billing".into() },
        assignee: (n % 2 == 1).then(|| "alice".to_owned()),
        requester: n.is_multiple_of(3).then(|| Requester {
            name: None,
            email: EmailAddress::parse(format!("r{}@example.com", n % 2)).expect("email"),
        }),
        tags: if n.is_multiple_of(3) {
            vec!["hardware".into(), "vip".into()]
        } else {
            vec![]
        },
        links: vec![],
        comments: vec![],
        attachments: vec![],
        resolution: None,
        confidential: n.is_multiple_of(5),
        created_by: if n.is_multiple_of(4) {
            "dave".into()
        } else {
            "contract".into()
        },
        created_at: Some(created),
        updated_at: Some(created + chrono::Duration::seconds(i64::from(n % 7))),
        closed_at: None,
        revision,
    }
}

fn record_for(c: &Case) -> EventRecord {
    EventRecord {
        id: Uuid::now_v7(),
        position: c.revision,
        tenant: c.tenant.clone(),
        case_id: c.id,
        revision: c.revision,
        event_type: "casewire.case.tagged.v1".into(),
        data: serde_json::json!({"tag": "x"}),
        time: c.updated_at.unwrap_or_default(),
        actor: "contract".into(),
        command_id: Uuid::now_v7(),
        correlation_id: Uuid::now_v7(),
    }
}

async fn all_pages<S: ReadStore>(store: &S, tenant: &str, mut q: CaseQuery) -> Vec<CaseSummary> {
    let mut out = Vec::new();
    loop {
        let page = store.list_cases(tenant, &q).await.expect("list");
        assert!(page.items.len() <= q.limit, "a page holds at most limit items");
        out.extend(page.items);
        match page.next_cursor {
            Some(c) => q.after = Some(Cursor::decode(&c).expect("cursor decodes")),
            None => return out,
        }
    }
}

/// The `ReadStore` promises.
pub async fn read_store_contract<S: ReadStore>(store: Arc<S>) {
    let tenant = format!("t-{}", Uuid::now_v7().simple());
    let cases: Vec<Case> = (0..20).map(|n| case(&tenant, n, 1)).collect();
    for c in &cases {
        assert!(
            store.apply_case(c, &record_for(c)).await.expect("apply"),
            "a new case applies"
        );
    }
    // Idempotency by revision: a replayed or older state is ignored.
    let mut stale = cases[1].clone();
    stale.title = "stale".into();
    assert!(
        !store.apply_case(&stale, &record_for(&stale)).await.expect("apply"),
        "same revision is ignored"
    );
    let mut newer = cases[1].clone();
    newer.revision = 2;
    newer.title = "Renamed invoices case".into();
    assert!(store.apply_case(&newer, &record_for(&newer)).await.expect("apply"));
    let got = store.get_case(&tenant, newer.id).await.expect("get").expect("exists");
    assert_eq!(got, newer, "the detail round-trips whole");
    assert_eq!(
        store
            .get_case_by_key(&tenant, &newer.key)
            .await
            .expect("by key")
            .map(|c| c.id),
        Some(newer.id)
    );
    assert!(
        store.get_case("other-tenant", newer.id).await.expect("get").is_none(),
        "details are scoped by tenant"
    );
    assert_eq!(store.timeline(&tenant, newer.id).await.expect("timeline").len(), 2);
    assert!(
        store
            .timeline("other-tenant", newer.id)
            .await
            .expect("timeline")
            .is_empty()
    );

    let q = |f: fn(&mut CaseQuery)| {
        let mut q = CaseQuery {
            limit: 50,
            ..CaseQuery::default()
        };
        f(&mut q);
        q
    };
    let count = |q: CaseQuery| {
        let store = store.clone();
        let tenant = tenant.clone();
        async move { all_pages(&*store, &tenant, q).await.len() }
    };
    assert_eq!(count(q(|_| {})).await, 20);
    assert_eq!(count(q(|q| q.stage = Some("done".into()))).await, 5);
    assert_eq!(count(q(|q| q.queue = Some("support".into()))).await, 10);
    assert_eq!(count(q(|q| q.assignee = Some("alice".into()))).await, 10);
    assert_eq!(count(q(|q| q.priority = Some("high".into()))).await, 4);
    assert_eq!(count(q(|q| q.tag = Some("vip".into()))).await, 7);
    assert_eq!(count(q(|q| q.definition = Some("even".into()))).await, 10);
    assert_eq!(count(q(|q| q.status = Some("open".into()))).await, 20);
    assert_eq!(count(q(|q| q.text = Some("printers".into()))).await, 7);
    assert_eq!(
        count(q(|q| q.text = Some("print".into()))).await,
        7,
        "text matches word prefixes"
    );
    assert_eq!(
        count(q(|q| q.text = Some("renamed invoices".into()))).await,
        1,
        "every word must match"
    );
    assert_eq!(
        count(q(|q| q.text = Some("\"unbalanced OR (".into()))).await,
        0,
        "query syntax is not interpreted"
    );
    assert_eq!(
        count(q(|q| {
            q.queue = Some("billing".into());
            q.tag = Some("hardware".into());
        }))
        .await,
        3,
        "filters combine"
    );
    assert_eq!(
        all_pages(&*store, "other-tenant-x", q(|_| {})).await.len(),
        0,
        "lists are scoped by tenant"
    );

    // Visibility clauses: the list shows exactly the cases the same clauses
    // admit in memory (which is how streams filter), so a list and a stream
    // can never disagree.
    let current: Vec<Case> = cases
        .iter()
        .map(|c| if c.id == newer.id { newer.clone() } else { c.clone() })
        .collect();
    let clause_sets: Vec<Vec<Clause>> = vec![
        vec![Clause::default()],
        vec![],
        vec![Clause {
            queue: Some(vec!["support".into()]),
            confidential: Some(false),
            ..Clause::default()
        }],
        vec![
            Clause {
                queue: Some(vec!["billing".into(), "nowhere".into()]),
                ..Clause::default()
            },
            Clause {
                assignee: Some("alice".into()),
                ..Clause::default()
            },
        ],
        vec![
            Clause {
                requester: Some("r0@example.com".into()),
                confidential: Some(false),
                ..Clause::default()
            },
            Clause {
                created_by: Some("dave".into()),
                confidential: Some(false),
                ..Clause::default()
            },
        ],
        vec![Clause {
            confidential: Some(true),
            ..Clause::default()
        }],
        // Definition access groups narrow a clause to some definitions.
        vec![Clause {
            queue: Some(vec!["support".into(), "billing".into()]),
            definition: Some(vec!["even".into()]),
            ..Clause::default()
        }],
        vec![
            Clause {
                definition: Some(vec![]),
                ..Clause::default()
            },
            Clause {
                definition: Some(vec!["odd".into(), "unknown".into()]),
                confidential: Some(false),
                ..Clause::default()
            },
        ],
    ];
    for clauses in clause_sets {
        let mut query = q(|_| {});
        query.limit = 4;
        query.visible = Some(clauses.clone());
        let mut got: Vec<Uuid> = all_pages(&*store, &tenant, query).await.iter().map(|c| c.id).collect();
        got.sort();
        let mut want: Vec<Uuid> = current
            .iter()
            .filter(|c| clauses.iter().any(|cl| cl.matches(&Resource::of(c))))
            .map(|c| c.id)
            .collect();
        want.sort();
        assert_eq!(got, want, "the list admits what {clauses:?} admit");
    }
    let mut confidential_only = q(|q| q.queue = Some("support".into()));
    confidential_only.visible = Some(vec![Clause {
        confidential: Some(true),
        ..Clause::default()
    }]);
    assert_eq!(count(confidential_only).await, 2, "clauses combine with filters");

    // Internal comments are searchable only where the caller may read them.
    let mut commented = newer.clone();
    commented.revision = 3;
    for (body, visibility) in [
        ("zanzibar note", Visibility::Internal),
        ("quokka reply", Visibility::Public),
    ] {
        commented.comments.push(Comment {
            id: Uuid::now_v7(),
            parent_id: None,
            body: body.into(),
            visibility,
            author: "alice".into(),
            at: Utc::now(),
        });
    }
    assert!(
        store
            .apply_case(&commented, &record_for(&commented))
            .await
            .expect("apply")
    );
    for (word, public_only, expected) in [
        ("zanzibar", false, 1),
        ("zanzibar", true, 0),
        ("quokka", true, 1),
        ("renamed", true, 1),
    ] {
        let mut query = q(|_| {});
        query.text = Some(word.into());
        query.public_text_only = public_only;
        assert_eq!(
            count(query).await,
            expected,
            "search for {word}, public only: {public_only}"
        );
    }

    // Paging: small pages cover everything exactly once, in order.
    for (sort, descending) in [
        (SortKey::UpdatedAt, true),
        (SortKey::CreatedAt, false),
        (SortKey::Key, false),
    ] {
        let mut query = q(|_| {});
        query.limit = 3;
        query.sort = sort;
        query.descending = descending;
        let items = all_pages(&*store, &tenant, query).await;
        assert_eq!(items.len(), 20, "paging by {sort:?} covers every case");
        let ids: HashSet<_> = items.iter().map(|c| c.id).collect();
        assert_eq!(ids.len(), 20, "paging by {sort:?} repeats nothing");
        let values: Vec<_> = items.iter().map(|c| (c.sort_value(sort), c.id)).collect();
        let mut sorted = values.clone();
        sorted.sort();
        if descending {
            sorted.reverse();
        }
        assert_eq!(values, sorted, "paging by {sort:?} keeps the order");
    }

    // Definitions: each put is a new version.
    let def = CaseDefinition::parse_yaml(
        "id: contract\nname: Contract\nkeyPrefix: CON\nstages: [{id: new}]\ninitialStage: new\npriorities: [{id: normal}]\ndefaultPriority: normal\ndefaultQueue: support\n",
    )
    .expect("definition");
    let v1 = store.put_definition(&tenant, &def).await.expect("put");
    let mut changed = def.clone();
    changed.name = "Contract v2".into();
    let v2 = store.put_definition(&tenant, &changed).await.expect("put");
    assert_eq!((v1.version, v2.version), (1, 2));
    assert_eq!(
        store
            .get_definition(&tenant, "contract", None)
            .await
            .expect("get")
            .map(|d| d.name),
        Some("Contract v2".into())
    );
    assert_eq!(
        store
            .get_definition(&tenant, "contract", Some(1))
            .await
            .expect("get")
            .map(|d| d.version),
        Some(1)
    );
    assert!(
        store
            .get_definition("other-tenant", "contract", None)
            .await
            .expect("get")
            .is_none()
    );
    assert_eq!(
        store.list_definitions(&tenant).await.expect("list").len(),
        1,
        "the list shows the newest version only"
    );

    // Checkpoints.
    let consumer = format!("contract-{}", Uuid::now_v7());
    assert_eq!(store.checkpoint(&consumer).await.expect("checkpoint"), None);
    store.save_checkpoint(&consumer, 41).await.expect("save");
    store.save_checkpoint(&consumer, 42).await.expect("save");
    assert_eq!(store.checkpoint(&consumer).await.expect("checkpoint"), Some(42));

    // Command log: pending -> processing -> processed; cancel only while pending.
    let record = |status| CommandRecord {
        id: Uuid::now_v7(),
        tenant: tenant.clone(),
        case_id: Uuid::now_v7(),
        command_type: "case.assign".into(),
        status,
        actor: "alice".into(),
        accepted_at: Utc::now(),
        finished_at: None,
        revision: None,
        error: None,
    };
    let a = record(CommandStatus::Pending);
    store.insert_command(&a).await.expect("insert");
    assert_eq!(
        store.get_command(a.id).await.expect("get").map(|r| r.status),
        Some(CommandStatus::Pending)
    );
    assert_eq!(store.claim_command(a.id).await.expect("claim"), ClaimResult::Claimed);
    assert_eq!(
        store.claim_command(a.id).await.expect("claim"),
        ClaimResult::Claimed,
        "redelivery claims again"
    );
    assert!(matches!(
        store.cancel_command(a.id).await.expect("cancel"),
        CancelResult::NotPending(_)
    ));
    let mut done = a.clone();
    done.status = CommandStatus::Processed;
    done.revision = Some(3);
    done.finished_at = Some(Utc::now());
    store.finish_command(&done).await.expect("finish");
    match store.claim_command(a.id).await.expect("claim") {
        ClaimResult::Finished(r) => assert_eq!((r.status, r.revision), (CommandStatus::Processed, Some(3))),
        other => panic!("expected Finished, got {other:?}"),
    }
    assert!(
        !store
            .has_unfinished_commands(&tenant, a.case_id)
            .await
            .expect("unfinished"),
        "finished does not count"
    );
    let b = record(CommandStatus::Pending);
    store.insert_command(&b).await.expect("insert");
    assert!(
        matches!(store.cancel_command(b.id).await.expect("cancel"), CancelResult::Cancelled(r) if r.status == CommandStatus::Cancelled)
    );
    assert_eq!(store.claim_command(b.id).await.expect("claim"), ClaimResult::Cancelled);
    assert_eq!(
        store.cancel_command(Uuid::now_v7()).await.expect("cancel"),
        CancelResult::NotFound
    );
    assert_eq!(
        store.claim_command(Uuid::now_v7()).await.expect("claim"),
        ClaimResult::Unknown
    );
    let c = record(CommandStatus::Rejected);
    store
        .finish_command(&c)
        .await
        .expect("finish an unknown command inserts it");
    assert_eq!(
        store.get_command(c.id).await.expect("get").map(|r| r.status),
        Some(CommandStatus::Rejected)
    );

    store.reset_projections().await.expect("reset");
    assert_eq!(
        all_pages(&*store, &tenant, q(|_| {})).await.len(),
        0,
        "reset clears the case list"
    );
    assert!(
        store.timeline(&tenant, newer.id).await.expect("timeline").is_empty(),
        "reset clears the timeline"
    );
    assert!(
        store
            .get_definition(&tenant, "contract", None)
            .await
            .expect("get")
            .is_some(),
        "reset keeps definitions"
    );
    store.ping().await.expect("ping");
}

async fn next_within(sub: &mut Box<dyn Subscription>) -> BusMessage {
    tokio::time::timeout(Duration::from_secs(20), sub.next())
        .await
        .expect("a message within 20 s")
        .expect("next")
}

/// The `Bus` promises. Give it a bus of its own (fresh topics or prefix).
pub async fn bus_contract<B: Bus>(bus: Arc<B>) {
    let group = format!("contract-{}", Uuid::now_v7());
    let mut sub = bus
        .subscribe(Some(&group), Topic::Commands, StartFrom::Earliest)
        .await
        .expect("subscribe");
    let mut live = bus
        .subscribe(None, Topic::Commands, StartFrom::Latest)
        .await
        .expect("subscribe latest");
    let messages: Vec<(String, Vec<u8>)> = (0..10)
        .map(|n| ("case-a".to_owned(), format!("m{n}").into_bytes()))
        .collect();
    bus.publish(Topic::Commands, messages).await.expect("publish");
    bus.publish(Topic::Events, vec![("case-a".into(), b"event".to_vec())])
        .await
        .expect("publish");

    let mut got = Vec::new();
    for _ in 0..10 {
        let m = next_within(&mut sub).await;
        assert_eq!(m.topic, Topic::Commands, "topics are isolated");
        assert_eq!(m.key, "case-a");
        got.push(m);
    }
    let payloads: Vec<_> = got
        .iter()
        .map(|m| String::from_utf8_lossy(&m.payload).to_string())
        .collect();
    assert_eq!(
        payloads,
        (0..10).map(|n| format!("m{n}")).collect::<Vec<_>>(),
        "one key keeps its order"
    );
    assert_eq!(
        String::from_utf8_lossy(&next_within(&mut live).await.payload),
        "m0",
        "a Latest reader sees new messages"
    );

    // Commit the first four; a new consumer of the group resumes at the fifth.
    sub.commit(&got[3]).await.expect("commit");
    drop(sub);
    let mut again = bus
        .subscribe(Some(&group), Topic::Commands, StartFrom::Earliest)
        .await
        .expect("resubscribe");
    let m = next_within(&mut again).await;
    assert_eq!(
        String::from_utf8_lossy(&m.payload),
        "m4",
        "uncommitted messages are delivered again"
    );
    // Commit everything; nothing is left for the group.
    sub = again;
    let mut last = m;
    for _ in 5..10 {
        last = next_within(&mut sub).await;
    }
    sub.commit(&last).await.expect("commit");
    drop(sub);
    let mut after = bus
        .subscribe(Some(&group), Topic::Commands, StartFrom::Earliest)
        .await
        .expect("resubscribe");
    bus.publish(Topic::Commands, vec![("case-b".into(), b"fresh".to_vec())])
        .await
        .expect("publish");
    assert_eq!(
        String::from_utf8_lossy(&next_within(&mut after).await.payload),
        "fresh",
        "committed messages stay handled"
    );

    // Another group starts from the beginning on its own.
    let mut other = bus
        .subscribe(Some(&format!("{group}-other")), Topic::Commands, StartFrom::Earliest)
        .await
        .expect("subscribe");
    assert_eq!(
        String::from_utf8_lossy(&next_within(&mut other).await.payload),
        "m0",
        "groups are independent"
    );
    bus.ping().await.expect("ping");
}

/// The `BlobStore` promises. Give it a store of its own (fresh directory,
/// bucket or key prefix). The large body is 11 MiB + 17 bytes, so an S3
/// adapter configured with 5 MiB parts (the S3 minimum) goes through a
/// three-part multipart upload, its abort paths included. The expected
/// SHA-256 values are constants computed outside Rust, so the adapter's
/// hashing is checked against an independent implementation.
pub async fn blob_store_contract<S: BlobStore>(store: Arc<S>) {
    use bytes::Bytes;
    use futures::StreamExt;

    const EMPTY_SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const SMALL: &[u8] = b"hello, blob\n";
    const SMALL_SHA: &str = "392033f3c6621200e3f594e2fb7f2ea2b6d1e13801d75d5c6203ce9507de4965";
    const LARGE_LEN: usize = 11 * 1024 * 1024 + 17;
    const LARGE_SHA: &str = "c7529d6f507684aa3580473d89a9bf8963fe902c87ba1efe5dc90d55c3c164b2";
    const WRONG_SHA: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    // xorshift64: incompressible, deterministic, and cheap to reproduce
    // (`python3` computed LARGE_SHA from the same generator).
    fn large_body() -> Vec<u8> {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut out = Vec::with_capacity(LARGE_LEN + 8);
        while out.len() < LARGE_LEN {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.truncate(LARGE_LEN);
        out
    }

    // Odd chunk sizes (and an empty chunk) so that part boundaries fall
    // inside chunks.
    fn chunked(data: &[u8], chunk: usize) -> ByteStream {
        let mut items: Vec<Result<Bytes, BlobError>> = data
            .chunks(chunk.max(1))
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        items.insert(items.len().min(1), Ok(Bytes::new()));
        Box::pin(futures::stream::iter(items))
    }

    // `data` and then the error, without the rest.
    fn failing(data: &[u8], chunk: usize, error: BlobError) -> ByteStream {
        let items: Vec<Result<Bytes, BlobError>> = data
            .chunks(chunk)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .chain(std::iter::once(Err(error)))
            .collect();
        Box::pin(futures::stream::iter(items))
    }

    async fn read_all(read: BlobRead) -> Vec<u8> {
        let mut body = read.body;
        let mut out = Vec::new();
        while let Some(chunk) = body.next().await {
            out.extend_from_slice(&chunk.expect("body chunk"));
        }
        out
    }

    async fn assert_absent<S: BlobStore>(store: &S, key: &str, why: &str) {
        assert_eq!(store.head(key).await.expect("head"), None, "{why}: head finds nothing");
        match store.get(key, None).await {
            Err(BlobError::NotFound) => {}
            other => panic!("{why}: expected NotFound from get, got {other:?}"),
        }
    }

    let run = Uuid::now_v7().simple().to_string();
    let key = |name: &str| format!("contract-{run}/{name}");
    let large = large_body();
    let size = LARGE_LEN as u64;

    store.ping().await.expect("ping");
    assert_absent(&*store, &key("never-written"), "a missing key").await;

    // Empty body.
    let empty_key = key("empty");
    let info = store
        .put(&empty_key, "application/octet-stream", chunked(&[], 1), Some(EMPTY_SHA))
        .await
        .expect("put empty");
    assert_eq!(
        info,
        BlobInfo {
            key: empty_key.clone(),
            size: 0,
            content_type: "application/octet-stream".into(),
            sha256: EMPTY_SHA.into(),
        }
    );
    assert_eq!(store.head(&empty_key).await.expect("head"), Some(info.clone()));
    let read = store.get(&empty_key, None).await.expect("get empty");
    assert_eq!(read.info, info);
    assert_eq!(read.range, None);
    assert!(read_all(read).await.is_empty(), "an empty blob reads empty");
    match store
        .get(&empty_key, Some(ByteRange::From { start: 0, end: None }))
        .await
    {
        Err(BlobError::InvalidRange { size: 0 }) => {}
        other => panic!("an empty blob has no ranges, got {other:?}"),
    }

    // Small body, content type kept, no expected checksum.
    let small_key = key("small.txt");
    let content_type = "text/plain; charset=utf-8";
    let info = store
        .put(&small_key, content_type, chunked(SMALL, 5), None)
        .await
        .expect("put small");
    assert_eq!(
        info,
        BlobInfo {
            key: small_key.clone(),
            size: SMALL.len() as u64,
            content_type: content_type.into(),
            sha256: SMALL_SHA.into(),
        },
        "put reports the size and the SHA-256 it computed"
    );
    assert_eq!(store.head(&small_key).await.expect("head"), Some(info.clone()));
    let read = store.get(&small_key, None).await.expect("get small");
    assert_eq!(read.info, info, "get reports the same info as put");
    assert_eq!(read_all(read).await, SMALL);

    // Large body (multipart on S3), with the right expected checksum.
    let large_key = key("large.bin");
    let info = store
        .put(&large_key, "application/pdf", chunked(&large, 100_003), Some(LARGE_SHA))
        .await
        .expect("put large");
    assert_eq!((info.size, info.sha256.as_str()), (size, LARGE_SHA));
    assert_eq!(info.content_type, "application/pdf");
    assert_eq!(store.head(&large_key).await.expect("head"), Some(info.clone()));
    let read = store.get(&large_key, None).await.expect("get large");
    assert_eq!(read.info, info);
    assert!(
        read_all(read).await == large,
        "the large body round-trips byte for byte"
    );

    // Ranges, inclusive like HTTP; one crosses the 5 MiB part boundary.
    let five = 5 * 1024 * 1024;
    let cases = [
        (ByteRange::From { start: 0, end: Some(9) }, (0, 9)),
        (
            ByteRange::From {
                start: five - 3,
                end: Some(five + 2),
            },
            (five - 3, five + 2),
        ),
        (
            ByteRange::From {
                start: size - 10,
                end: None,
            },
            (size - 10, size - 1),
        ),
        (
            ByteRange::From {
                start: size - 5,
                end: Some(size + 1000),
            },
            (size - 5, size - 1),
        ),
        (ByteRange::Suffix(10), (size - 10, size - 1)),
        (ByteRange::Suffix(size + 100), (0, size - 1)),
        (ByteRange::From { start: 7, end: Some(7) }, (7, 7)),
    ];
    for (range, (start, end)) in cases {
        let read = store.get(&large_key, Some(range)).await.expect("get range");
        assert_eq!(read.range, Some((start, end)), "served range of {range:?}");
        assert_eq!(read.info, info, "a ranged read reports the whole blob's info");
        let got = read_all(read).await;
        assert!(
            got == large[start as usize..=end as usize],
            "{range:?}: expected {} bytes from {start}, got {} bytes",
            end - start + 1,
            got.len()
        );
    }
    let read = store
        .get(
            &small_key,
            Some(ByteRange::From {
                start: 7,
                end: Some(10),
            }),
        )
        .await
        .expect("range of small");
    assert_eq!(read_all(read).await, b"blob");
    for range in [
        ByteRange::From { start: size, end: None },
        ByteRange::From {
            start: size + 10,
            end: Some(size + 20),
        },
    ] {
        match store.get(&large_key, Some(range)).await {
            Err(BlobError::InvalidRange { size: s }) => assert_eq!(s, size, "InvalidRange carries the size"),
            other => panic!("{range:?} starts past the end, got {other:?}"),
        }
    }

    // A wrong checksum stores nothing, small (single request) or large (multipart).
    for (name, data) in [("bad-small", SMALL), ("bad-large", &large[..])] {
        let k = key(name);
        match store
            .put(&k, "text/plain", chunked(data, 65_537), Some(WRONG_SHA))
            .await
        {
            Err(BlobError::ChecksumMismatch { expected, actual }) => {
                assert_eq!(expected, WRONG_SHA);
                let want = if data.len() == SMALL.len() {
                    SMALL_SHA
                } else {
                    LARGE_SHA
                };
                assert_eq!(actual, want, "the mismatch reports the computed SHA-256");
            }
            other => panic!("{name}: expected ChecksumMismatch, got {other:?}"),
        }
        assert_absent(&*store, &k, name).await;
    }

    // A stream failing midway: its error comes back and nothing is stored
    // (once within the first part, once after two full 5 MiB parts).
    for (name, cut) in [("cut-early", 1000), ("cut-late", 10 * 1024 * 1024 + 5)] {
        let k = key(name);
        let refused = BlobError::Refused(format!("{name} by the feeder"));
        match store
            .put(&k, "text/plain", failing(&large[..cut], 65_536, refused.clone()), None)
            .await
        {
            Err(e) => assert_eq!(e, refused, "{name}: the stream's own error is returned"),
            Ok(info) => panic!("{name}: a failing stream was stored as {info:?}"),
        }
        assert_absent(&*store, &k, name).await;
    }

    // Delete: gone afterwards, and idempotent.
    store.delete(&small_key).await.expect("delete");
    assert_absent(&*store, &small_key, "a deleted key").await;
    store.delete(&small_key).await.expect("deleting twice is fine");
    store
        .delete(&key("never-written"))
        .await
        .expect("deleting a missing key is fine");
    assert!(
        store.head(&large_key).await.expect("head").is_some(),
        "delete removes only its key"
    );
    for k in [&empty_key, &large_key] {
        store.delete(k).await.expect("delete");
        assert_absent(&*store, k, "a deleted key").await;
    }

    // Presigning: a backend has both URLs or neither.
    let get = store
        .presign_get(&large_key, Duration::from_secs(60), Some("report.pdf"))
        .await
        .expect("presign_get");
    let put = store
        .presign_put(&key("direct"), "text/plain", Duration::from_secs(60))
        .await
        .expect("presign_put");
    assert_eq!(
        get.is_some(),
        put.is_some(),
        "presign_get and presign_put agree: {get:?} / {put:?}"
    );
    store.ping().await.expect("ping");
}
