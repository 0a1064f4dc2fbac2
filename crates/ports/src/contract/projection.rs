//! The `CaseProjection` promises, one function per behaviour. Most start
//! from `seeded`: twenty cases of a fresh tenant whose fields are spread
//! so that every filter selects a known number of them.

use std::collections::HashSet;
use std::sync::Arc;

use casewire_domain::command::{Requester, Visibility};
use casewire_domain::task::{Incident, TaskLock};
use casewire_domain::types::{CaseKey, EmailAddress, QueueName, Tag, TenantId};
use casewire_domain::{Case, CaseStatus, Comment, Task, TaskKind, TaskState};
use chrono::{TimeZone, Utc};
use uuid::Uuid;

use super::{fresh_tenant, tenant_id};
use crate::{CaseProjection, CaseQuery, CaseSummary, Clause, Cursor, EventRecord, Resource, SortKey, TaskQuery};

/// One named test per behaviour below, on a fresh store from `factory`.
#[macro_export]
macro_rules! case_projection_contract {
    ($factory:path) => {
        $crate::__contract_tests!($factory, projection:
            a_new_case_applies_and_reads_back_whole,
            a_same_or_older_revision_is_ignored,
            a_newer_revision_replaces_the_case,
            a_case_is_found_by_its_key,
            details_are_scoped_by_tenant,
            the_timeline_has_one_entry_per_applied_revision,
            a_batch_stores_each_cases_last_state_and_every_timeline_entry,
            a_batch_leaves_newer_stored_states_alone,
            bulk_timeline_entries_read_back_in_order_and_a_repeat_changes_nothing,
            bulk_states_are_listed_and_searchable,
            bulk_states_never_replace_a_newer_one,
            timelines_are_scoped_by_tenant,
            the_list_shows_every_case_of_the_tenant,
            lists_filter_by_stage,
            lists_filter_by_queue,
            lists_filter_by_assignee,
            lists_filter_unassigned_cases,
            lists_filter_by_priority,
            lists_filter_by_tag,
            lists_filter_by_definition,
            lists_filter_by_status,
            list_filters_combine,
            lists_are_scoped_by_tenant,
            full_text_matches_whole_words,
            full_text_matches_word_prefixes,
            full_text_requires_every_word,
            full_text_syntax_is_not_interpreted,
            visibility_clauses_match_clause_matches_in_memory,
            visibility_clauses_combine_with_filters,
            internal_comments_are_found_by_full_search,
            public_search_leaves_internal_comments_out,
            public_search_finds_public_comments_and_fields,
            pages_by_update_time_descending_cover_every_case_once_in_order,
            pages_by_creation_time_cover_every_case_once_in_order,
            pages_by_key_cover_every_case_once_in_order,
            reset_clears_the_case_list,
            reset_clears_the_timeline,
            tasks_are_found_by_topic_and_state,
            lockable_tasks_leave_out_locked_retrying_and_incident_ones,
            tasks_are_found_by_id_and_assignee,
            task_lists_follow_the_visibility_clauses,
            task_lists_are_scoped_by_tenant,
            a_message_id_finds_its_case_in_its_tenant_only,
            a_message_id_follows_the_newest_state_of_its_case,
            a_task_list_follows_the_newest_state_of_its_case,
        );
    };
}

/// Case `n` of twenty: stage "done" for multiples of 4 (5 cases), queue
/// "support" below 10 (10), assignee alice for odd numbers (10), priority
/// "high" and confidential for multiples of 5 (4), tags and "printers" in
/// the title for multiples of 3 (7), definition "even" for even numbers (10).
pub(crate) fn case(tenant: &TenantId, n: u32, revision: u64) -> Case {
    let created =
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap_or_default() + chrono::Duration::minutes(n.into());
    Case {
        id: Uuid::now_v7(),
        tenant: tenant.clone(),
        key: CaseKey::parse(format!("CON-{n:06}")).expect("key"),
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
        queue: QueueName::parse(if n < 10 { "support" } else { "billing" }).expect("queue"),
        assignee: (n % 2 == 1).then(|| "alice".to_owned()),
        requester: n.is_multiple_of(3).then(|| Requester {
            name: None,
            email: EmailAddress::parse(format!("r{}@example.com", n % 2)).expect("email"),
        }),
        tags: if n.is_multiple_of(3) {
            vec![Tag::parse("hardware").expect("tag"), Tag::parse("vip").expect("tag")]
        } else {
            vec![]
        },
        links: vec![],
        comments: vec![],
        attachments: vec![],
        tasks: vec![],
        mail: Default::default(),
        sla: Vec::new(),
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

pub(crate) fn record_for(c: &Case) -> EventRecord {
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

/// A fresh tenant holding the twenty cases of [`case`], at revision 1.
async fn seeded<S: CaseProjection>(store: &S) -> (TenantId, Vec<Case>) {
    let tenant = fresh_tenant();
    let cases: Vec<Case> = (0..20).map(|n| case(&tenant, n, 1)).collect();
    for c in &cases {
        assert!(
            store.apply_case(c, &record_for(c)).await.expect("apply"),
            "a new case applies"
        );
    }
    (tenant, cases)
}

/// `c` at revision 2 with a title the seed has nowhere else, applied.
async fn apply_renamed<S: CaseProjection>(store: &S, c: &Case) -> Case {
    let mut newer = c.clone();
    newer.revision = 2;
    newer.title = "Renamed invoices case".into();
    assert!(
        store.apply_case(&newer, &record_for(&newer)).await.expect("apply"),
        "a newer revision applies"
    );
    newer
}

fn queue(name: &str) -> QueueName {
    QueueName::parse(name).expect("queue")
}

/// A list query with room for every seeded case on one page.
fn query(f: impl FnOnce(&mut CaseQuery)) -> CaseQuery {
    let mut q = CaseQuery {
        limit: 50,
        ..CaseQuery::default()
    };
    f(&mut q);
    q
}

/// Every page of a list, following the cursors.
async fn all_pages<S: CaseProjection>(store: &S, tenant: &TenantId, mut q: CaseQuery) -> Vec<CaseSummary> {
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

/// How many seeded cases `f`'s query lists.
async fn count<S: CaseProjection>(store: &S, tenant: &TenantId, f: impl FnOnce(&mut CaseQuery)) -> usize {
    all_pages(store, tenant, query(f)).await.len()
}

/// A new case applies, and its detail reads back exactly as applied.
pub async fn a_new_case_applies_and_reads_back_whole<S: CaseProjection>(store: Arc<S>) {
    let (tenant, cases) = seeded(&*store).await;
    let got = store.get_case(&tenant, cases[3].id).await.expect("get");
    assert_eq!(got.as_ref(), Some(&cases[3]), "the detail round-trips whole");
}

/// Idempotency by revision: a replayed or older state is ignored.
pub async fn a_same_or_older_revision_is_ignored<S: CaseProjection>(store: Arc<S>) {
    let (tenant, cases) = seeded(&*store).await;
    let mut stale = cases[1].clone();
    stale.title = "stale".into();
    assert!(
        !store.apply_case(&stale, &record_for(&stale)).await.expect("apply"),
        "same revision is ignored"
    );
    let newer = apply_renamed(&*store, &cases[1]).await;
    assert!(
        !store.apply_case(&stale, &record_for(&stale)).await.expect("apply"),
        "an older revision is ignored"
    );
    let got = store.get_case(&tenant, newer.id).await.expect("get");
    assert_eq!(got, Some(newer), "an ignored state changes nothing");
}

/// A newer revision replaces the whole detail.
pub async fn a_newer_revision_replaces_the_case<S: CaseProjection>(store: Arc<S>) {
    let (tenant, cases) = seeded(&*store).await;
    let newer = apply_renamed(&*store, &cases[1]).await;
    let got = store.get_case(&tenant, newer.id).await.expect("get").expect("exists");
    assert_eq!(got, newer, "the detail round-trips whole");
}

/// The detail is found by its human key too.
pub async fn a_case_is_found_by_its_key<S: CaseProjection>(store: Arc<S>) {
    let (tenant, cases) = seeded(&*store).await;
    let newer = apply_renamed(&*store, &cases[1]).await;
    let found = store.get_case_by_key(&tenant, &newer.key).await.expect("by key");
    assert_eq!(found.map(|c| c.id), Some(newer.id));
    assert!(
        store
            .get_case_by_key(&tenant, &CaseKey::parse("NOPE-000001").expect("key"))
            .await
            .expect("by key")
            .is_none(),
        "an unknown key finds nothing"
    );
}

/// Another tenant finds no detail, by id or by key.
pub async fn details_are_scoped_by_tenant<S: CaseProjection>(store: Arc<S>) {
    let (_, cases) = seeded(&*store).await;
    let c = &cases[1];
    assert!(
        store
            .get_case(&tenant_id("other-tenant"), c.id)
            .await
            .expect("get")
            .is_none(),
        "details are scoped by tenant"
    );
    assert!(
        store
            .get_case_by_key(&tenant_id("other-tenant"), &c.key)
            .await
            .expect("by key")
            .is_none(),
        "keys are scoped by tenant"
    );
}

/// Each applied revision adds its event to the timeline; an ignored one does not.
pub async fn the_timeline_has_one_entry_per_applied_revision<S: CaseProjection>(store: Arc<S>) {
    let (tenant, cases) = seeded(&*store).await;
    let replayed = cases[1].clone();
    assert!(
        !store
            .apply_case(&replayed, &record_for(&replayed))
            .await
            .expect("apply")
    );
    let newer = apply_renamed(&*store, &cases[1]).await;
    let timeline = store.timeline(&tenant, newer.id).await.expect("timeline");
    assert_eq!(timeline.iter().map(|e| e.revision).collect::<Vec<_>>(), vec![1, 2]);
}

/// A batch of several revisions of one case and one of another: every
/// timeline entry, and each case as of its last revision.
pub async fn a_batch_stores_each_cases_last_state_and_every_timeline_entry<S: CaseProjection>(store: Arc<S>) {
    let tenant = fresh_tenant();
    let first = case(&tenant, 1, 1);
    let states: Vec<Case> = (1..=3)
        .map(|revision| {
            let mut c = first.clone();
            c.revision = revision;
            c.title = format!("Title at revision {revision}");
            c
        })
        .collect();
    let other = case(&tenant, 2, 1);
    let mut batch: Vec<(Case, EventRecord)> = states.iter().map(|c| (c.clone(), record_for(c))).collect();
    batch.insert(1, (other.clone(), record_for(&other)));
    let applied = store.apply_cases(&batch).await.expect("apply a batch");
    assert_eq!(applied, vec![true; 4], "every entry belongs to a state that applied");
    let stored = store
        .get_case(&tenant, states[2].id)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!((stored.revision, stored.title.as_str()), (3, "Title at revision 3"));
    let timeline = store.timeline(&tenant, states[0].id).await.expect("timeline");
    assert_eq!(timeline.iter().map(|e| e.revision).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert!(store.get_case(&tenant, other.id).await.expect("get").is_some());
}

/// A batch older than what is stored changes no state, and says so.
pub async fn a_batch_leaves_newer_stored_states_alone<S: CaseProjection>(store: Arc<S>) {
    let tenant = fresh_tenant();
    let newest = case(&tenant, 1, 3);
    assert!(store.apply_case(&newest, &record_for(&newest)).await.expect("apply"));
    let older: Vec<(Case, EventRecord)> = (1..=2)
        .map(|revision| {
            let mut c = newest.clone();
            c.revision = revision;
            c.title = "Stale".into();
            let record = record_for(&c);
            (c, record)
        })
        .collect();
    assert_eq!(store.apply_cases(&older).await.expect("apply"), vec![false, false]);
    let stored = store.get_case(&tenant, newest.id).await.expect("get").expect("stored");
    assert_eq!((stored.revision, stored.title.as_str()), (3, newest.title.as_str()));
    assert_eq!(
        store.apply_cases(&[]).await.expect("an empty batch"),
        Vec::<bool>::new()
    );
}

/// `add_timeline` takes entries in any order and ignores those already
/// stored; the timeline reads them back by revision.
pub async fn bulk_timeline_entries_read_back_in_order_and_a_repeat_changes_nothing<S: CaseProjection>(store: Arc<S>) {
    let tenant = fresh_tenant();
    let first = case(&tenant, 1, 1);
    let entries: Vec<EventRecord> = [3, 1, 2]
        .into_iter()
        .map(|revision| {
            let mut c = first.clone();
            c.revision = revision;
            record_for(&c)
        })
        .collect();
    store.add_timeline(&entries).await.expect("add");
    store.add_timeline(&entries[..2]).await.expect("add again");
    store.add_timeline(&[]).await.expect("add nothing");
    let timeline = store.timeline(&tenant, first.id).await.expect("timeline");
    assert_eq!(timeline.iter().map(|e| e.revision).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(timeline[1].id, entries[2].id, "the entry of revision 2 as added");
}

/// Cases written by `put_cases` are read back, listed, filtered by tag
/// and found by their text, like applied ones.
pub async fn bulk_states_are_listed_and_searchable<S: CaseProjection>(store: Arc<S>) {
    let tenant = fresh_tenant();
    let cases: Vec<Case> = (0..20).map(|n| case(&tenant, n, 4)).collect();
    store.put_cases(&cases).await.expect("put");
    store.put_cases(&[]).await.expect("put nothing");
    let stored = store
        .get_case(&tenant, cases[3].id)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(stored, cases[3]);
    assert_eq!(count(&*store, &tenant, |_| {}).await, 20);
    assert_eq!(count(&*store, &tenant, |q| q.text = Some("printers".into())).await, 7);
    assert_eq!(
        count(&*store, &tenant, |q| q.tag = Some(Tag::parse("vip").expect("tag"))).await,
        count(&*store, &tenant, |q| q.text = Some("printers".into())).await,
        "the tagged cases are the printer ones"
    );
}

/// `put_cases` writes a state only over an older one.
pub async fn bulk_states_never_replace_a_newer_one<S: CaseProjection>(store: Arc<S>) {
    let tenant = fresh_tenant();
    let newest = case(&tenant, 1, 3);
    assert!(store.apply_case(&newest, &record_for(&newest)).await.expect("apply"));
    let mut older = newest.clone();
    older.revision = 2;
    older.title = "Stale".into();
    let mut fresh = case(&tenant, 2, 1);
    store.put_cases(&[older, fresh.clone()]).await.expect("put");
    let stored = store.get_case(&tenant, newest.id).await.expect("get").expect("stored");
    assert_eq!((stored.revision, stored.title.as_str()), (3, newest.title.as_str()));
    fresh.revision = 2;
    fresh.title = "Moved on".into();
    store.put_cases(&[fresh.clone()]).await.expect("put newer");
    let stored = store.get_case(&tenant, fresh.id).await.expect("get").expect("stored");
    assert_eq!((stored.revision, stored.title.as_str()), (2, "Moved on"));
}

/// Another tenant sees no timeline.
pub async fn timelines_are_scoped_by_tenant<S: CaseProjection>(store: Arc<S>) {
    let (_, cases) = seeded(&*store).await;
    let timeline = store
        .timeline(&tenant_id("other-tenant"), cases[1].id)
        .await
        .expect("timeline");
    assert!(timeline.is_empty());
}

/// Without filters the list holds every case of the tenant.
pub async fn the_list_shows_every_case_of_the_tenant<S: CaseProjection>(store: Arc<S>) {
    let (tenant, _) = seeded(&*store).await;
    assert_eq!(count(&*store, &tenant, |_| {}).await, 20);
}

/// `stage` filters.
pub async fn lists_filter_by_stage<S: CaseProjection>(store: Arc<S>) {
    let (tenant, _) = seeded(&*store).await;
    assert_eq!(count(&*store, &tenant, |q| q.stage = Some("done".into())).await, 5);
}

/// `queue` filters.
pub async fn lists_filter_by_queue<S: CaseProjection>(store: Arc<S>) {
    let (tenant, _) = seeded(&*store).await;
    assert_eq!(count(&*store, &tenant, |q| q.queue = Some(queue("support"))).await, 10);
}

/// `assignee` filters.
pub async fn lists_filter_by_assignee<S: CaseProjection>(store: Arc<S>) {
    let (tenant, _) = seeded(&*store).await;
    assert_eq!(count(&*store, &tenant, |q| q.assignee = Some("alice".into())).await, 10);
}

/// `unassigned` keeps the cases without an assignee.
pub async fn lists_filter_unassigned_cases<S: CaseProjection>(store: Arc<S>) {
    let (tenant, _) = seeded(&*store).await;
    assert_eq!(count(&*store, &tenant, |q| q.unassigned = true).await, 10);
    let both = count(&*store, &tenant, |q| {
        q.unassigned = true;
        q.queue = Some(queue("support"));
    })
    .await;
    assert_eq!(both, 5, "with the other filters");
}

/// `priority` filters.
pub async fn lists_filter_by_priority<S: CaseProjection>(store: Arc<S>) {
    let (tenant, _) = seeded(&*store).await;
    assert_eq!(count(&*store, &tenant, |q| q.priority = Some("high".into())).await, 4);
}

/// `tag` filters.
pub async fn lists_filter_by_tag<S: CaseProjection>(store: Arc<S>) {
    let (tenant, _) = seeded(&*store).await;
    assert_eq!(
        count(&*store, &tenant, |q| q.tag = Some(Tag::parse("vip").expect("tag"))).await,
        7
    );
}

/// `definition` filters.
pub async fn lists_filter_by_definition<S: CaseProjection>(store: Arc<S>) {
    let (tenant, _) = seeded(&*store).await;
    assert_eq!(
        count(&*store, &tenant, |q| q.definition = Some("even".into())).await,
        10
    );
}

/// `status` filters.
pub async fn lists_filter_by_status<S: CaseProjection>(store: Arc<S>) {
    let (tenant, _) = seeded(&*store).await;
    assert_eq!(count(&*store, &tenant, |q| q.status = Some("open".into())).await, 20);
}

/// Filters combine with AND.
pub async fn list_filters_combine<S: CaseProjection>(store: Arc<S>) {
    let (tenant, _) = seeded(&*store).await;
    let n = count(&*store, &tenant, |q| {
        q.queue = Some(queue("billing"));
        q.tag = Some(Tag::parse("hardware").expect("tag"));
    })
    .await;
    assert_eq!(n, 3, "filters combine");
}

/// Another tenant lists nothing.
pub async fn lists_are_scoped_by_tenant<S: CaseProjection>(store: Arc<S>) {
    seeded(&*store).await;
    assert_eq!(
        count(&*store, &tenant_id("other-tenant-x"), |_| {}).await,
        0,
        "lists are scoped by tenant"
    );
}

/// `q` finds whole words.
pub async fn full_text_matches_whole_words<S: CaseProjection>(store: Arc<S>) {
    let (tenant, _) = seeded(&*store).await;
    assert_eq!(count(&*store, &tenant, |q| q.text = Some("printers".into())).await, 7);
}

/// `q` finds words by their beginning, on every adapter.
pub async fn full_text_matches_word_prefixes<S: CaseProjection>(store: Arc<S>) {
    let (tenant, _) = seeded(&*store).await;
    assert_eq!(
        count(&*store, &tenant, |q| q.text = Some("print".into())).await,
        7,
        "text matches word prefixes"
    );
}

/// Every word of `q` must match.
pub async fn full_text_requires_every_word<S: CaseProjection>(store: Arc<S>) {
    let (tenant, cases) = seeded(&*store).await;
    apply_renamed(&*store, &cases[1]).await;
    assert_eq!(
        count(&*store, &tenant, |q| q.text = Some("renamed invoices".into())).await,
        1,
        "every word must match"
    );
}

/// Quotes, operators and parentheses in `q` are text, never query syntax.
pub async fn full_text_syntax_is_not_interpreted<S: CaseProjection>(store: Arc<S>) {
    let (tenant, _) = seeded(&*store).await;
    assert_eq!(
        count(&*store, &tenant, |q| q.text = Some("\"unbalanced OR (".into())).await,
        0,
        "query syntax is not interpreted"
    );
}

/// The clause sets [`visibility_clauses_match_clause_matches_in_memory`]
/// tries: the empty clause, no clause, and each field alone and combined.
fn clause_sets() -> Vec<Vec<Clause>> {
    let clause = Clause::default;
    vec![
        vec![clause()],
        vec![],
        vec![Clause {
            queue: Some(vec!["support".into()]),
            confidential: Some(false),
            ..clause()
        }],
        vec![
            Clause {
                queue: Some(vec!["billing".into(), "nowhere".into()]),
                ..clause()
            },
            Clause {
                assignee: Some("alice".into()),
                ..clause()
            },
        ],
        vec![
            Clause {
                requester: Some("r0@example.com".into()),
                confidential: Some(false),
                ..clause()
            },
            Clause {
                created_by: Some("dave".into()),
                confidential: Some(false),
                ..clause()
            },
        ],
        vec![Clause {
            confidential: Some(true),
            ..clause()
        }],
        // Definition access groups narrow a clause to some definitions.
        vec![Clause {
            queue: Some(vec!["support".into(), "billing".into()]),
            definition: Some(vec!["even".into()]),
            ..clause()
        }],
        vec![
            Clause {
                definition: Some(vec![]),
                ..clause()
            },
            Clause {
                definition: Some(vec!["odd".into(), "unknown".into()]),
                confidential: Some(false),
                ..clause()
            },
        ],
    ]
}

/// The list shows exactly the cases the same clauses admit in memory
/// (which is how streams filter), so a list and a stream can never
/// disagree. Every clause set is tried before the test fails, and the
/// failure names each set that disagreed.
pub async fn visibility_clauses_match_clause_matches_in_memory<S: CaseProjection>(store: Arc<S>) {
    let (tenant, cases) = seeded(&*store).await;
    let mut disagreements = Vec::new();
    for clauses in clause_sets() {
        let mut q = query(|q| q.limit = 4);
        q.visible = Some(clauses.clone());
        let mut got: Vec<Uuid> = all_pages(&*store, &tenant, q).await.iter().map(|c| c.id).collect();
        got.sort();
        let mut want: Vec<Uuid> = cases
            .iter()
            .filter(|c| clauses.iter().any(|cl| cl.matches(&Resource::of(c))))
            .map(|c| c.id)
            .collect();
        want.sort();
        if got != want {
            disagreements.push(format!("{clauses:?}: listed {got:?}, admitted {want:?}"));
        }
    }
    assert!(
        disagreements.is_empty(),
        "the list must admit what the clauses admit:\n{}",
        disagreements.join("\n")
    );
}

/// Visibility clauses and filters both apply.
pub async fn visibility_clauses_combine_with_filters<S: CaseProjection>(store: Arc<S>) {
    let (tenant, _) = seeded(&*store).await;
    let n = count(&*store, &tenant, |q| {
        q.queue = Some(queue("support"));
        q.visible = Some(vec![Clause {
            confidential: Some(true),
            ..Clause::default()
        }]);
    })
    .await;
    assert_eq!(n, 2, "clauses combine with filters");
}

/// A seeded tenant whose case 1 is renamed and holds an internal comment
/// ("zanzibar note") and a public one ("quokka reply").
async fn with_comments<S: CaseProjection>(store: &S) -> TenantId {
    let (tenant, cases) = seeded(store).await;
    let mut commented = apply_renamed(store, &cases[1]).await;
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
            attachments: vec![],
        });
    }
    assert!(
        store
            .apply_case(&commented, &record_for(&commented))
            .await
            .expect("apply")
    );
    tenant
}

/// How many cases a search for `word` finds, public text only or all of it.
async fn search<S: CaseProjection>(store: &S, tenant: &TenantId, word: &str, public_only: bool) -> usize {
    count(store, tenant, |q| {
        q.text = Some(word.into());
        q.public_text_only = public_only;
    })
    .await
}

/// Whoever may read internal comments finds their words.
pub async fn internal_comments_are_found_by_full_search<S: CaseProjection>(store: Arc<S>) {
    let tenant = with_comments(&*store).await;
    assert_eq!(
        search(&*store, &tenant, "zanzibar", false).await,
        1,
        "search for zanzibar, public only: false"
    );
}

/// The public index leaves internal comments out, so their words can not be probed.
pub async fn public_search_leaves_internal_comments_out<S: CaseProjection>(store: Arc<S>) {
    let tenant = with_comments(&*store).await;
    assert_eq!(
        search(&*store, &tenant, "zanzibar", true).await,
        0,
        "search for zanzibar, public only: true"
    );
}

/// The public index still holds public comments and the case's own fields.
pub async fn public_search_finds_public_comments_and_fields<S: CaseProjection>(store: Arc<S>) {
    let tenant = with_comments(&*store).await;
    for word in ["quokka", "renamed"] {
        assert_eq!(
            search(&*store, &tenant, word, true).await,
            1,
            "search for {word}, public only: true"
        );
    }
}

/// Small pages cover every case exactly once, in the sort order.
async fn assert_paging<S: CaseProjection>(store: &S, sort: SortKey, descending: bool) {
    let (tenant, _) = seeded(store).await;
    let q = query(|q| {
        q.limit = 3;
        q.sort = sort;
        q.descending = descending;
    });
    let items = all_pages(store, &tenant, q).await;
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

/// Paging by update time, newest first.
pub async fn pages_by_update_time_descending_cover_every_case_once_in_order<S: CaseProjection>(store: Arc<S>) {
    assert_paging(&*store, SortKey::UpdatedAt, true).await;
}

/// Paging by creation time, oldest first.
pub async fn pages_by_creation_time_cover_every_case_once_in_order<S: CaseProjection>(store: Arc<S>) {
    assert_paging(&*store, SortKey::CreatedAt, false).await;
}

/// Paging by key.
pub async fn pages_by_key_cover_every_case_once_in_order<S: CaseProjection>(store: Arc<S>) {
    assert_paging(&*store, SortKey::Key, false).await;
}

/// A reset empties the case list (replay refills it).
pub async fn reset_clears_the_case_list<S: CaseProjection>(store: Arc<S>) {
    let (tenant, cases) = seeded(&*store).await;
    store.reset_projections().await.expect("reset");
    assert_eq!(count(&*store, &tenant, |_| {}).await, 0, "reset clears the case list");
    assert!(
        store.get_case(&tenant, cases[0].id).await.expect("get").is_none(),
        "reset clears the details"
    );
}

/// A reset empties the timelines.
pub async fn reset_clears_the_timeline<S: CaseProjection>(store: Arc<S>) {
    let (tenant, cases) = seeded(&*store).await;
    let newer = apply_renamed(&*store, &cases[1]).await;
    store.reset_projections().await.expect("reset");
    assert!(
        store.timeline(&tenant, newer.id).await.expect("timeline").is_empty(),
        "reset clears the timeline"
    );
}

// --- Tasks ------------------------------------------------------------------

fn task(kind: TaskKind, topic: Option<&str>, priority: i64) -> Task {
    Task {
        id: Uuid::now_v7(),
        kind,
        name: "contract task".into(),
        description: None,
        state: TaskState::Created,
        form: None,
        queue: None,
        assignee: None,
        due: None,
        topic: topic.map(str::to_owned),
        variables: serde_json::json!({}),
        priority,
        retries: None,
        lock: None,
        retry_at: None,
        failure: None,
        incident: None,
        error: None,
        output: None,
        cause: None,
        created_by: "contract".into(),
        created_at: Utc::now(),
        ended_by: None,
        ended_at: None,
    }
}

/// The seeded cases, where case `n` holds an external task of topic
/// `score` (priority `n`) and, for even `n`, a human task for alice.
async fn seeded_with_tasks<S: CaseProjection>(store: &S) -> (TenantId, Vec<Case>) {
    let tenant = fresh_tenant();
    let mut cases = Vec::new();
    for n in 0..20u32 {
        let mut c = case(&tenant, n, 1);
        c.tasks.push(task(TaskKind::External, Some("score"), i64::from(n)));
        if n.is_multiple_of(2) {
            let mut human = task(TaskKind::Human, None, 0);
            human.assignee = Some("alice".into());
            c.tasks.push(human);
        }
        assert!(store.apply_case(&c, &record_for(&c)).await.expect("apply"));
        cases.push(c);
    }
    (tenant, cases)
}

fn tasks_query(f: impl FnOnce(&mut TaskQuery)) -> TaskQuery {
    let mut q = TaskQuery {
        limit: 100,
        ..TaskQuery::default()
    };
    f(&mut q);
    q
}

/// Tasks are found by topic and state, highest priority first.
pub async fn tasks_are_found_by_topic_and_state<S: CaseProjection>(store: Arc<S>) {
    let (tenant, _) = seeded_with_tasks(&*store).await;
    let got = store
        .list_tasks(
            &tenant,
            &tasks_query(|q| {
                q.topics = Some(vec!["score".into()]);
                q.states = Some(vec![TaskState::Created]);
                q.limit = 5;
            }),
        )
        .await
        .expect("list");
    let priorities: Vec<i64> = got.iter().map(|t| t.task.priority).collect();
    assert_eq!(priorities, vec![19, 18, 17, 16, 15], "the five highest, in order");
    let none = store
        .list_tasks(&tenant, &tasks_query(|q| q.topics = Some(vec!["other".into()])))
        .await
        .expect("list");
    assert!(none.is_empty());
}

/// A lockable query leaves out tasks locked until later, waiting out a
/// retry timeout, or with an incident; an expired lock is lockable.
pub async fn lockable_tasks_leave_out_locked_retrying_and_incident_ones<S: CaseProjection>(store: Arc<S>) {
    let tenant = fresh_tenant();
    let now = Utc::now();
    let mut c = case(&tenant, 1, 1);
    let free = task(TaskKind::External, Some("score"), 0);
    let mut locked = task(TaskKind::External, Some("score"), 0);
    locked.lock = Some(TaskLock {
        worker_id: "w".into(),
        expires_at: now + chrono::Duration::minutes(5),
    });
    let mut expired = task(TaskKind::External, Some("score"), 0);
    expired.lock = Some(TaskLock {
        worker_id: "w".into(),
        expires_at: now - chrono::Duration::minutes(5),
    });
    let mut retrying = task(TaskKind::External, Some("score"), 0);
    retrying.retry_at = Some(now + chrono::Duration::minutes(5));
    let mut incident = task(TaskKind::External, Some("score"), 0);
    incident.incident = Some(Incident { message: None, at: now });
    let mut done = task(TaskKind::External, Some("score"), 0);
    done.state = TaskState::Completed;
    c.tasks = vec![free.clone(), locked, expired.clone(), retrying, incident, done];
    store.apply_case(&c, &record_for(&c)).await.expect("apply");
    let mut got: Vec<Uuid> = store
        .list_tasks(&tenant, &tasks_query(|q| q.lockable_at = Some(now)))
        .await
        .expect("list")
        .iter()
        .map(|t| t.task.id)
        .collect();
    got.sort();
    let mut want = vec![free.id, expired.id];
    want.sort();
    assert_eq!(got, want);
}

/// A task is found by its id alone, and human tasks by their assignee.
pub async fn tasks_are_found_by_id_and_assignee<S: CaseProjection>(store: Arc<S>) {
    let (tenant, cases) = seeded_with_tasks(&*store).await;
    let wanted = &cases[7].tasks[0];
    let got = store
        .list_tasks(&tenant, &tasks_query(|q| q.task_id = Some(wanted.id)))
        .await
        .expect("list");
    assert_eq!(got.len(), 1);
    assert_eq!((&got[0].task, got[0].case.id), (wanted, cases[7].id));
    let alices = store
        .list_tasks(&tenant, &tasks_query(|q| q.assignee = Some("alice".into())))
        .await
        .expect("list");
    assert_eq!(alices.len(), 10);
    assert!(alices.iter().all(|t| t.task.kind == TaskKind::Human));
}

/// Only tasks of cases the clauses admit are listed.
pub async fn task_lists_follow_the_visibility_clauses<S: CaseProjection>(store: Arc<S>) {
    let (tenant, cases) = seeded_with_tasks(&*store).await;
    for clauses in clause_sets() {
        let mut got: Vec<Uuid> = store
            .list_tasks(
                &tenant,
                &tasks_query(|q| {
                    q.kind = Some(TaskKind::External);
                    q.visible = Some(clauses.clone());
                }),
            )
            .await
            .expect("list")
            .iter()
            .map(|t| t.case.id)
            .collect();
        got.sort();
        let mut want: Vec<Uuid> = cases
            .iter()
            .filter(|c| clauses.iter().any(|cl| cl.matches(&Resource::of(c))))
            .map(|c| c.id)
            .collect();
        want.sort();
        assert_eq!(got, want, "{clauses:?}");
    }
}

/// Another tenant's tasks are never listed.
pub async fn task_lists_are_scoped_by_tenant<S: CaseProjection>(store: Arc<S>) {
    let (_, cases) = seeded_with_tasks(&*store).await;
    let other = fresh_tenant();
    let got = store
        .list_tasks(&other, &tasks_query(|q| q.task_id = Some(cases[0].tasks[0].id)))
        .await
        .expect("list");
    assert!(got.is_empty());
}

/// A newer state of the case replaces its tasks in the lists.
pub async fn a_task_list_follows_the_newest_state_of_its_case<S: CaseProjection>(store: Arc<S>) {
    let (tenant, cases) = seeded_with_tasks(&*store).await;
    let mut newer = cases[3].clone();
    newer.revision = 2;
    newer.tasks[0].state = TaskState::Completed;
    store.apply_case(&newer, &record_for(&newer)).await.expect("apply");
    let open = store
        .list_tasks(
            &tenant,
            &tasks_query(|q| {
                q.task_id = Some(newer.tasks[0].id);
                q.states = Some(vec![TaskState::Created]);
            }),
        )
        .await
        .expect("list");
    assert!(open.is_empty(), "the completed task is no longer waiting");
    let done = store
        .list_tasks(&tenant, &tasks_query(|q| q.states = Some(vec![TaskState::Completed])))
        .await
        .expect("list");
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].task.state, TaskState::Completed);
}

/// A case with the given Message-IDs seen.
fn case_with_mail(tenant: &TenantId, n: u32, ids: &[&str]) -> Case {
    let mut c = case(tenant, n, 1);
    c.mail.message_ids = ids.iter().map(|s| (*s).to_owned()).collect();
    c
}

/// A reply's Message-IDs find the case that saw one of them, and only in
/// the tenant asked about.
pub async fn a_message_id_finds_its_case_in_its_tenant_only<S: CaseProjection>(store: Arc<S>) {
    let tenant = fresh_tenant();
    let other = fresh_tenant();
    let a = case_with_mail(&tenant, 1, &["a1@x", "a2@x"]);
    let b = case_with_mail(&tenant, 2, &["b1@x"]);
    let foreign = case_with_mail(&other, 3, &["f1@x"]);
    for c in [&a, &b, &foreign] {
        assert!(store.apply_case(c, &record_for(c)).await.expect("apply"));
    }
    let find = |t: &TenantId, ids: &[&str]| {
        let ids: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
        let store = store.clone();
        let t = t.clone();
        async move { store.case_by_message_id(&t, &ids).await.expect("find") }
    };
    assert_eq!(find(&tenant, &["nope@x", "a2@x"]).await, Some(a.id));
    assert_eq!(find(&tenant, &["b1@x"]).await, Some(b.id));
    assert_eq!(
        find(&tenant, &["f1@x"]).await,
        None,
        "another tenant's mail is not found"
    );
    assert_eq!(find(&tenant, &[]).await, None);
}

/// A Message-ID seen later is found once the newer state is applied.
pub async fn a_message_id_follows_the_newest_state_of_its_case<S: CaseProjection>(store: Arc<S>) {
    let tenant = fresh_tenant();
    let c = case_with_mail(&tenant, 1, &["m1@x"]);
    store.apply_case(&c, &record_for(&c)).await.expect("apply");
    let mut newer = c.clone();
    newer.revision = 2;
    newer.mail.message_ids.push("m2@x".into());
    store.apply_case(&newer, &record_for(&newer)).await.expect("apply");
    let found = store
        .case_by_message_id(&tenant, &["m2@x".to_owned()])
        .await
        .expect("find");
    assert_eq!(found, Some(c.id));
    let first = store
        .case_by_message_id(&tenant, &["m1@x".to_owned()])
        .await
        .expect("find");
    assert_eq!(first, Some(c.id));
}
