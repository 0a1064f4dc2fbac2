//! The EventStore contract suite and the read-side ones (a named test per
//! behaviour, in one module per port) against a MongoDB-wire server
//! (`tests/run` starts SecantusDB and sets
//! `CASEWIRE_TEST_MONGODB=mongodb://host:port/`), plus what only this
//! adapter has: holes in the global order, counter repair, awkward keys.
//! Each test uses its own database, so runs never see each other's data.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use casewire_mongodb::{MongoEventStore, MongoReadStore, MongoSettings};
use casewire_ports::{EventStore, NewEvent, StoreError};
use mongodb::bson::doc;
use uuid::Uuid;

use casewire_ports::contract::skip;

/// Settings for a fresh database, or `None` (after saying why) without a server.
fn settings() -> Option<MongoSettings> {
    let Ok(url) = std::env::var("CASEWIRE_TEST_MONGODB") else {
        skip("set CASEWIRE_TEST_MONGODB=mongodb://host:port/ (tests/run starts SecantusDB and sets it)");
        return None;
    };
    let mut s = MongoSettings::new(url);
    s.database = format!("contract_{}", Uuid::now_v7().simple());
    Some(s)
}

fn event(command_id: Uuid, data: serde_json::Value) -> NewEvent {
    NewEvent {
        id: Uuid::now_v7(),
        event_type: "casewire.case.tagged.v1".into(),
        data,
        time: chrono::Utc::now(),
        actor: "contract".into(),
        command_id,
        correlation_id: command_id,
    }
}

#[tokio::test]
async fn passes_the_event_store_contract() {
    let Some(s) = settings() else { return };
    let db = casewire_mongodb::connect(&s).await.unwrap();
    let store = MongoEventStore::open(&db, &s).await.unwrap();
    casewire_ports::contract::event_store_contract(Arc::new(store)).await;
}

/// A read store on a database of its own, or `None` (after saying why)
/// without a server.
async fn fresh_read_store() -> Option<Arc<MongoReadStore>> {
    let s = settings()?;
    let db = casewire_mongodb::connect(&s).await.unwrap();
    Some(Arc::new(MongoReadStore::open(&db, &s).await.unwrap()))
}

/// The tenant of the tests below.
fn t() -> casewire_domain::types::TenantId {
    casewire_domain::types::TenantId::parse("t").unwrap()
}

casewire_ports::read_store_contract!(fresh_read_store);

#[tokio::test]
async fn readers_wait_at_a_young_hole_and_step_over_an_old_one() {
    let Some(mut s) = settings() else { return };
    s.gap_grace = Duration::from_secs(600);
    let db = casewire_mongodb::connect(&s).await.unwrap();
    let patient = MongoEventStore::open(&db, &s).await.unwrap();
    let case = Uuid::now_v7();
    let first = patient
        .append(&t(), case, 0, vec![event(Uuid::now_v7(), serde_json::json!({}))])
        .await
        .unwrap();
    // A writer that allocated a position and has not inserted yet (or died).
    db.collection::<mongodb::bson::Document>("counters")
        .update_one(doc! {"_id": "position"}, doc! {"$inc": {"seq": 1_i64}})
        .await
        .unwrap();
    let after = patient
        .append(&t(), case, 1, vec![event(Uuid::now_v7(), serde_json::json!({}))])
        .await
        .unwrap();
    assert_eq!(after[0].position, first[0].position + 2, "the hole is between them");

    let seen = patient.read_all(first[0].position, 10).await.unwrap();
    assert_eq!(seen.len(), 1, "a young hole stops the reader: {seen:?}");
    assert!(patient.read_all(first[0].position + 1, 10).await.unwrap().is_empty());
    assert_eq!(patient.head().await.unwrap(), after[0].position);

    s.gap_grace = Duration::ZERO;
    let hasty = MongoEventStore::open(&db, &s).await.unwrap();
    let seen = hasty.read_all(first[0].position, 10).await.unwrap();
    assert_eq!(
        seen.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![first[0].position, after[0].position],
        "an old hole is stepped over"
    );
}

#[tokio::test]
async fn a_lost_race_leaves_no_partial_commit() {
    let Some(s) = settings() else { return };
    let db = casewire_mongodb::connect(&s).await.unwrap();
    let store = MongoEventStore::open(&db, &s).await.unwrap();
    let case = Uuid::now_v7();
    let c1 = Uuid::now_v7();
    store
        .append(&t(), case, 0, vec![event(c1, serde_json::json!({"n": 1}))])
        .await
        .unwrap();
    // Three events whose second collides (revision 2 exists after this).
    let c2 = Uuid::now_v7();
    store
        .append(&t(), case, 1, vec![event(c2, serde_json::json!({"n": 2}))])
        .await
        .unwrap();
    let c3 = Uuid::now_v7();
    let err = store
        .append(
            &t(),
            case,
            1,
            vec![
                event(c3, serde_json::json!({})),
                event(c3, serde_json::json!({})),
                event(c3, serde_json::json!({})),
            ],
        )
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::Conflict { expected: 1, actual: 2 });
    assert!(
        store.find_by_command(c3).await.unwrap().is_empty(),
        "nothing of the loser is stored"
    );
    assert_eq!(store.load(&t(), case).await.unwrap().len(), 2);
}

#[tokio::test]
async fn data_keeps_keys_and_numbers_that_bson_updates_refuse() {
    let Some(s) = settings() else { return };
    let db = casewire_mongodb::connect(&s).await.unwrap();
    let store = MongoEventStore::open(&db, &s).await.unwrap();
    let data = serde_json::json!({
        "$where": "x", "a.b": {"$gt": 1}, "big": u64::MAX, "float": 1.5, "exp": 1e300, "nested": [null, true, "ü"]
    });
    let case = Uuid::now_v7();
    store
        .append(&t(), case, 0, vec![event(Uuid::now_v7(), data.clone())])
        .await
        .unwrap();
    assert_eq!(store.load(&t(), case).await.unwrap()[0].data, data);
}

#[tokio::test]
async fn reopening_repairs_a_counter_that_is_behind() {
    let Some(s) = settings() else { return };
    let db = casewire_mongodb::connect(&s).await.unwrap();
    let store = MongoEventStore::open(&db, &s).await.unwrap();
    let first = store
        .append(
            &t(),
            Uuid::now_v7(),
            0,
            vec![event(Uuid::now_v7(), serde_json::json!({}))],
        )
        .await
        .unwrap();
    // A restore of the events without the counters.
    db.collection::<mongodb::bson::Document>("counters")
        .delete_many(doc! {})
        .await
        .unwrap();
    let store = MongoEventStore::open(&db, &s).await.unwrap();
    let next = store
        .append(
            &t(),
            Uuid::now_v7(),
            0,
            vec![event(Uuid::now_v7(), serde_json::json!({}))],
        )
        .await
        .unwrap();
    assert_eq!(next[0].position, first[0].position + 1);
}

#[tokio::test]
async fn a_server_that_never_answers_is_unavailable_after_the_operation_timeout() {
    // It accepts connections and says nothing: server selection alone would
    // wait its whole (here long) timeout, the operation bound does not.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let mut s = MongoSettings::new(format!("mongodb://{addr}/?directConnection=true"));
    s.server_selection_timeout = Duration::from_secs(60);
    s.connect_timeout = Duration::from_secs(60);
    s.operation_timeout = Duration::from_millis(300);
    let db = casewire_mongodb::connect(&s).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(20), MongoEventStore::open(&db, &s)).await {
        Ok(Err(StoreError::Unavailable(why))) => assert!(why.contains("300 ms"), "{why}"),
        Ok(other) => panic!("expected Unavailable, got {other:?}"),
        Err(_) => panic!("the operation was not bounded"),
    }
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_not_a_failure() {
    // A port nothing listens on: the error must say "try later" (503).
    let mut s = MongoSettings::new("mongodb://127.0.0.1:9/?directConnection=true");
    s.server_selection_timeout = Duration::from_millis(300);
    let db = casewire_mongodb::connect(&s).await.unwrap();
    match MongoEventStore::open(&db, &s).await {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_schedulers_never_claim_the_same_case() {
    use casewire_ports::SlaSchedule;
    let Some(s) = settings() else { return };
    let db = casewire_mongodb::connect(&s).await.unwrap();
    let store = Arc::new(MongoReadStore::open(&db, &s).await.unwrap());
    // Only the fields a claim reads: the scheduler's, not a whole case.
    let due = casewire_ports::projection::sortable_time(chrono::Utc::now() - chrono::Duration::minutes(1));
    let cases: Vec<_> = (0..60)
        .map(|_| {
            let id = Uuid::now_v7();
            doc! {"_id": format!("t:{id}"), "tenant": "t", "id": id.to_string(), "slaNextAt": &due}
        })
        .collect();
    db.collection::<mongodb::bson::Document>("cases")
        .insert_many(cases)
        .await
        .unwrap();
    let until = chrono::Utc::now() + chrono::Duration::minutes(10);
    let schedulers = (0..4).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = store.claim_sla(chrono::Utc::now(), until, 7).await.unwrap();
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|c| c.case_id));
            }
        })
    });
    let mut all = Vec::new();
    for s in schedulers {
        all.extend(s.await.unwrap());
    }
    let distinct: std::collections::HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 60, "every due case claimed once");
    assert_eq!(distinct.len(), 60, "no case claimed twice");
}

#[tokio::test]
async fn an_older_layout_is_dropped_so_every_case_gets_its_due_time_sort_value() {
    let Some(s) = settings() else { return };
    let db = casewire_mongodb::connect(&s).await.unwrap();
    MongoReadStore::open(&db, &s).await.unwrap();
    // A case projected by version 3, which had no `slaDue`.
    db.collection::<mongodb::bson::Document>("checkpoints")
        .update_one(doc! {"_id": "layout:projections"}, doc! {"$set": {"version": 3_i64}})
        .await
        .unwrap();
    db.collection::<mongodb::bson::Document>("cases")
        .insert_one(doc! {"_id": "t:old", "tenant": "t"})
        .await
        .unwrap();
    MongoReadStore::open(&db, &s).await.unwrap();
    let left = db
        .collection::<mongodb::bson::Document>("cases")
        .count_documents(doc! {})
        .await
        .unwrap();
    assert_eq!(left, 0, "rebuilt by the projector from the log");
}
