//! Automation rules of a definition end to end: the demo insurance claim
//! creates the tasks its rules say, once, also when every event of the
//! case is delivered again; a rule that triggers itself stops at the depth
//! limit with an internal comment.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use casewire_e2e::{TestApp, eventually};
use casewire_ports::Topic;
use serde_json::{Value, json};
use uuid::Uuid;

async fn case(app: &TestApp, user: &str, id: &str) -> Value {
    app.client(user).get(&format!("/api/v1/cases/{id}")).await.unwrap().body
}

async fn tasks_once_settled(app: &TestApp, id: &str, want: usize) -> Vec<Value> {
    eventually(Duration::from_secs(20), || async {
        let c = case(app, "bob", id).await;
        let tasks = c["tasks"].as_array().cloned().unwrap_or_default();
        (tasks.len() >= want).then_some(tasks)
    })
    .await
    .unwrap_or_else(|| panic!("{want} tasks did not appear"))
}

#[tokio::test]
async fn a_claim_gets_exactly_the_tasks_its_rules_say_even_when_events_come_again() {
    let app = TestApp::spawn().await;
    let bob = app.client("bob");
    let r = bob
        .post_wait(
            "/api/v1/cases",
            &json!({"definition": "insurance-claim", "title": "Bike stolen at the station",
                    "data": {"policyNumber": "POL-12345678", "lossType": "theft", "lossDate": "2026-11-30",
                             "estimatedAmount": 900}}),
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let key = r.body["key"].as_str().unwrap().to_owned();
    let tasks = tasks_once_settled(&app, &id, 1).await;
    assert_eq!(tasks[0]["topic"], "fraud-score");
    assert_eq!(tasks[0]["variables"]["caseKey"], key.as_str());
    assert_eq!(tasks[0]["variables"]["lossType"], "theft");
    assert_eq!(tasks[0]["createdBy"], "automation:1");
    let r = bob
        .post_wait(&format!("/api/v1/cases/{id}/stage"), &json!({"stage": "assessment"}))
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    let tasks = tasks_once_settled(&app, &id, 2).await;
    assert_eq!(tasks[1]["name"], "Collect the police report");
    assert_eq!(tasks[1]["queue"], "claims");

    // Every event of the case delivered again: no task twice.
    let platform = &app.app.platform;
    let tenant = app.app.platform.config.default_tenant.clone();
    let events = platform
        .events
        .load_after(&tenant, id.parse::<Uuid>().unwrap(), 0)
        .await
        .unwrap();
    let again: Vec<(String, Vec<u8>)> = events
        .iter()
        .map(|e| {
            (
                id.clone(),
                casewire_ports::envelope::event_to_json(e).to_string().into_bytes(),
            )
        })
        .collect();
    platform.bus.publish(Topic::Events, again).await.unwrap();
    // Embedded, the automation consumer handles them within milliseconds;
    // two seconds leave room for a loaded machine.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let c = case(&app, "bob", &id).await;
    assert_eq!(c["tasks"].as_array().unwrap().len(), 2, "{}", c["tasks"]);
    let history = bob.get(&format!("/api/v1/cases/{id}/history")).await.unwrap();
    let created = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"].as_str().is_some_and(|t| t.contains("task-created")))
        .count();
    assert_eq!(created, 2, "one task-created per rule firing");

    // A fire loss entering assessment asks for no police report.
    let r = bob
        .post_wait(
            "/api/v1/cases",
            &json!({"definition": "insurance-claim", "title": "Kitchen fire",
                    "data": {"policyNumber": "POL-87654321", "lossType": "fire", "lossDate": "2026-11-29"}}),
        )
        .await
        .unwrap();
    let fire = r.body["id"].as_str().unwrap().to_owned();
    tasks_once_settled(&app, &fire, 1).await;
    bob.post_wait(&format!("/api/v1/cases/{fire}/stage"), &json!({"stage": "assessment"}))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(case(&app, "bob", &fire).await["tasks"].as_array().unwrap().len(), 1);
    app.stop().await;
}

const PING_PONG: &str = r#"
id: ping-pong
name: A definition whose rules trigger each other
keyPrefix: PP
stages: [{ id: open }]
initialStage: open
priorities: [{ id: normal }]
defaultPriority: normal
defaultQueue: support
automation:
  - name: ping
    on: tagged
    do: [{ command: { type: case.untag, data: { tag: ball } } }]
  - name: pong
    on: untagged
    do: [{ command: { type: case.tag, data: { tag: ball } } }]
"#;

#[tokio::test]
async fn rules_that_trigger_each_other_stop_at_the_depth_limit() {
    let app = TestApp::spawn().await;
    let r = app.client("carol").import_definition(PING_PONG).await.unwrap();
    assert_eq!(r.status.as_u16(), 201, "{}", r.body);
    let alice = app.client("alice");
    let r = alice
        .post_wait("/api/v1/cases", &json!({"definition": "ping-pong", "title": "Rally"}))
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    alice
        .post_wait(&format!("/api/v1/cases/{id}/tags"), &json!({"tag": "ball"}))
        .await
        .unwrap();
    let stopped = eventually(Duration::from_secs(20), || async {
        let c = case(&app, "carol", &id).await;
        c["comments"]
            .as_array()
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c["body"].as_str().is_some_and(|b| b.contains("Automation stopped")))
            })
            .cloned()
    })
    .await
    .expect("a comment says the chain was stopped");
    assert_eq!(stopped["visibility"], "internal");
    assert_eq!(stopped["author"], "automation:4");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let c = case(&app, "carol", &id).await;
    // open, tag (alice), then untag, tag, untag by rules, then the comment.
    assert_eq!(c["revision"], 6, "{c}");
    app.stop().await;
}
