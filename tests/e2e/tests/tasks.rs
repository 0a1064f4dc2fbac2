//! Tasks of a case end to end, over HTTP, against the embedded runtime:
//! who may touch them first, then the human and external lifecycles.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use casewire_e2e::{TestApp, complaint};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

async fn open_waiting(app: &TestApp, title: &str) -> Value {
    let r = app
        .client("alice")
        .post_wait("/api/v1/cases", &complaint(title))
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 201, "{}", r.body);
    r.body
}

fn police_report(id: Uuid) -> Value {
    json!({
        "taskId": id, "kind": "human", "name": "Collect police report",
        "form": {"type": "object", "required": ["reportNumber"],
                 "properties": {"reportNumber": {"type": "string", "minLength": 3}}}
    })
}

fn fraud_score(id: Uuid) -> Value {
    json!({"taskId": id, "kind": "external", "name": "Fraud score", "topic": "fraud-score",
           "variables": {"amount": 1200}, "priority": 5})
}

fn task_of(case: &Value, id: Uuid) -> Value {
    casewire_e2e::task_in(case, id)
}

async fn generic(app: &TestApp, user: &str, case: &str, kind: &str, data: Value) -> casewire::client::Reply {
    app.client(user)
        .send(
            Method::POST,
            "/api/v1/commands",
            Some(&json!({"type": kind, "caseId": case, "data": data})),
            Some(5),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn nobody_outside_the_case_touches_its_tasks() {
    let app = TestApp::spawn().await;
    let case = open_waiting(&app, "Kettle leaks").await;
    let id = case["id"].as_str().unwrap().to_owned();
    let task = Uuid::now_v7();
    let path = format!("/api/v1/cases/{id}/tasks");
    // A requester who is not the case's, and a worker of another tenant,
    // do not learn that the case exists.
    for user in ["dave", "hank", "gina"] {
        let r = app.client(user).post(&path, &police_report(task)).await.unwrap();
        assert_eq!(r.status.as_u16(), 404, "{user}: {}", r.body);
    }
    // A viewer sees the case but may not work on it.
    let r = app.client("erin").post(&path, &police_report(task)).await.unwrap();
    assert_eq!(r.status.as_u16(), 403, "{}", r.body);
    assert_eq!(r.body["code"], "CW-FORBIDDEN");
    // An integration creates tasks and works external ones, but does not
    // claim people's work.
    let r = app
        .client("intake")
        .post_wait(&path, &police_report(task))
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    let r = app
        .client("intake")
        .post(&format!("{path}/{task}/claim"), &json!({}))
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 403, "{}", r.body);
    // The engine's causation field is not the client's to set.
    let mut forged = fraud_score(Uuid::now_v7());
    forged["cause"] = json!(Uuid::now_v7());
    let r = app.client("alice").post_wait(&path, &forged).await.unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    let forged_id: Uuid = forged["taskId"].as_str().unwrap().parse().unwrap();
    assert_eq!(task_of(&r.body, forged_id)["cause"], Value::Null);
    app.stop().await;
}

#[tokio::test]
async fn a_human_task_is_claimed_and_completed_with_output_that_fits_its_form() {
    let app = TestApp::spawn().await;
    let case = open_waiting(&app, "Bike stolen").await;
    let key = case["key"].as_str().unwrap().to_owned();
    let base = format!("/api/v1/cases/{key}/tasks");
    // Without a taskId the API picks one and says which.
    let mut body = police_report(Uuid::nil());
    body.as_object_mut().unwrap().remove("taskId");
    let r = app.client("alice").post(&base, &body).await.unwrap();
    assert_eq!(r.status.as_u16(), 202, "{}", r.body);
    let task: Uuid = r.body["taskId"].as_str().unwrap().parse().unwrap();
    let claim = app
        .client("alice")
        .post_wait(&format!("{base}/{task}/claim"), &json!({}))
        .await
        .unwrap();
    assert_eq!(claim.status.as_u16(), 200, "{}", claim.body);
    let t = task_of(&claim.body, task);
    assert_eq!(
        (t["state"].as_str(), t["assignee"].as_str()),
        (Some("claimed"), Some("alice"))
    );
    // Bob may work the case, but the task is Alice's now.
    let r = app
        .client("bob")
        .post_wait(
            &format!("{base}/{task}/complete"),
            &json!({"output": {"reportNumber": "PR-77"}}),
        )
        .await
        .unwrap();
    assert_eq!(
        (r.status.as_u16(), r.body["code"].as_str()),
        (409, Some("CW-TASK-LOCKED")),
        "{}",
        r.body
    );
    let r = app
        .client("alice")
        .post_wait(
            &format!("{base}/{task}/complete"),
            &json!({"output": {"reportNumber": 7}}),
        )
        .await
        .unwrap();
    assert_eq!(
        (r.status.as_u16(), r.body["code"].as_str()),
        (422, Some("CW-SCHEMA-VIOLATION")),
        "{}",
        r.body
    );
    let done = app
        .client("alice")
        .post_wait(
            &format!("{base}/{task}/complete"),
            &json!({"output": {"reportNumber": "PR-77"}}),
        )
        .await
        .unwrap();
    assert_eq!(done.status.as_u16(), 200, "{}", done.body);
    let t = task_of(&done.body, task);
    assert_eq!(t["state"], "completed");
    assert_eq!(t["output"], json!({"reportNumber": "PR-77"}));
    // An unknown task is a 404 of its own; an ended one refuses more work.
    let r = app
        .client("alice")
        .post_wait(&format!("{base}/{}/claim", Uuid::now_v7()), &json!({}))
        .await
        .unwrap();
    assert_eq!(
        (r.status.as_u16(), r.body["code"].as_str()),
        (404, Some("CW-UNKNOWN-TASK")),
        "{}",
        r.body
    );
    let r = app
        .client("bob")
        .post_wait(&format!("{base}/{task}/cancel"), &json!({}))
        .await
        .unwrap();
    assert_eq!(
        (r.status.as_u16(), r.body["code"].as_str()),
        (409, Some("CW-TASK-STATE")),
        "{}",
        r.body
    );
    // The task's life is in the case's history.
    let id = case["id"].as_str().unwrap();
    let history = app
        .client("alice")
        .get(&format!("/api/v1/cases/{id}/history"))
        .await
        .unwrap();
    let types: Vec<&str> = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    for t in ["task-created", "task-assigned", "task-completed"] {
        assert!(
            types.iter().any(|x| x.contains(t)),
            "{t} is not in the history: {types:?}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn retries_to_zero_raise_an_incident_that_setting_retries_resolves() {
    let app = TestApp::spawn().await;
    let case = open_waiting(&app, "Suspicious claim").await;
    let id = case["id"].as_str().unwrap().to_owned();
    let task = Uuid::now_v7();
    let r = generic(&app, "intake", &id, "task.create", fraud_score(task)).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    let r = generic(
        &app,
        "intake",
        &id,
        "task.lock",
        json!({"taskId": task, "workerId": "w1", "lockDuration": 60000}),
    )
    .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    assert_eq!(task_of(&r.body, task)["lock"]["workerId"], "w1");
    // Another worker can not take it, nor finish it.
    let r = generic(
        &app,
        "intake",
        &id,
        "task.lock",
        json!({"taskId": task, "workerId": "w2", "lockDuration": 60000}),
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), r.body["code"].as_str()),
        (409, Some("CW-TASK-LOCKED")),
        "{}",
        r.body
    );
    let r = generic(
        &app,
        "intake",
        &id,
        "task.fail",
        json!({"taskId": task, "workerId": "w1", "errorMessage": "scoring down", "retries": 0}),
    )
    .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    let t = task_of(&r.body, task);
    assert_eq!(t["incident"]["message"], "scoring down");
    assert_eq!(t["retries"], 0);
    // A worker's integration token may not resolve incidents; a worker of
    // the queue may.
    let retries = format!("/api/v1/cases/{id}/tasks/{task}/retries");
    let r = app
        .client("intake")
        .post_wait(&retries, &json!({"retries": 2}))
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 403, "{}", r.body);
    let r = app
        .client("alice")
        .post_wait(&retries, &json!({"retries": 2}))
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    let t = task_of(&r.body, task);
    assert_eq!((t["incident"].clone(), t["retries"].clone()), (Value::Null, json!(2)));
    app.stop().await;
}

#[tokio::test]
async fn the_inbox_and_the_camunda_api_agree_on_state() {
    let app = TestApp::spawn().await;
    let case = open_waiting(&app, "Parcel lost").await;
    let id = case["id"].as_str().unwrap().to_owned();
    let (human, external) = (Uuid::now_v7(), Uuid::now_v7());
    for (user, body) in [("alice", police_report(human)), ("intake", fraud_score(external))] {
        let r = app
            .client(user)
            .post_wait(&format!("/api/v1/cases/{id}/tasks"), &body)
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    }
    let inbox = |user: &'static str, query: &'static str| {
        let c = app.client(user);
        async move {
            let r = c.get(&format!("/api/v1/tasks{query}")).await.unwrap();
            assert_eq!(r.status.as_u16(), 200, "{query}: {}", r.body);
            r.body["items"].as_array().unwrap().clone()
        }
    };
    assert!(inbox("alice", "?assignee=me").await.is_empty());
    let r = app
        .client("alice")
        .post_wait(&format!("/api/v1/cases/{id}/tasks/{human}/claim"), &json!({}))
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    let mine = inbox("alice", "?assignee=me").await;
    assert_eq!(mine.len(), 1);
    assert_eq!(
        (mine[0]["task"]["state"].as_str(), mine[0]["case"]["id"].as_str()),
        (Some("claimed"), Some(id.as_str()))
    );
    // Nobody outside sees any of it.
    assert!(inbox("hank", "").await.is_empty());
    assert!(inbox("dave", "").await.is_empty());
    // The external task: waiting in both views, then locked in both.
    let waiting = inbox("alice", "?kind=external&topic=fraud-score").await;
    assert_eq!(waiting.len(), 1);
    let camunda = app.client("intake");
    let r = camunda
        .send(
            Method::POST,
            "/engine-rest/external-task/fetchAndLock",
            Some(&json!({"workerId": "w1", "maxTasks": 1,
                         "topics": [{"topicName": "fraud-score", "lockDuration": 60000}]})),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.body[0]["id"], external.to_string(), "{}", r.body);
    let locked = inbox("alice", "?kind=external").await;
    let one = camunda
        .get(&format!("/engine-rest/external-task/{external}"))
        .await
        .unwrap();
    assert_eq!(locked[0]["task"]["lock"]["workerId"], "w1");
    assert_eq!(one.body["workerId"], "w1");
    let r = camunda
        .send(
            Method::POST,
            &format!("/engine-rest/external-task/{external}/complete"),
            Some(&json!({"workerId": "w1", "variables": {"score": {"type": "Double", "value": 0.4}}})),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 204, "{}", r.body);
    let done = inbox("alice", "?kind=external&state=completed").await;
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["task"]["output"], json!({"score": 0.4}));
    assert!(inbox("alice", "?kind=external").await.is_empty(), "nothing left to do");
    let gone = camunda
        .get(&format!("/engine-rest/external-task/{external}"))
        .await
        .unwrap();
    assert_eq!(gone.status.as_u16(), 404);
    // Bad filters are 400s, not empty lists.
    let r = app.client("alice").get("/api/v1/tasks?state=open").await.unwrap();
    assert_eq!(r.status.as_u16(), 400, "{}", r.body);
    app.stop().await;
}

#[tokio::test]
async fn a_requester_reads_their_case_without_its_tasks() {
    let app = TestApp::spawn().await;
    let dave = app.client("dave");
    let r = dave.post_wait("/api/v1/cases", &complaint("My kettle")).await.unwrap();
    assert_eq!(r.status.as_u16(), 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let r = app
        .client("intake")
        .post_wait(&format!("/api/v1/cases/{id}/tasks"), &fraud_score(Uuid::now_v7()))
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    assert_eq!(r.body["tasks"].as_array().unwrap().len(), 1, "staff see the task");
    let mine = dave.get(&format!("/api/v1/cases/{id}")).await.unwrap();
    assert_eq!(mine.status.as_u16(), 200, "{}", mine.body);
    assert_eq!(mine.body["tasks"], json!([]), "{}", mine.body);
    let history = dave.get(&format!("/api/v1/cases/{id}/history")).await.unwrap();
    assert!(!history.body.to_string().contains("task-created"), "{}", history.body);
    let inbox = dave.get("/api/v1/tasks?kind=external").await.unwrap();
    assert_eq!(inbox.body["items"], json!([]), "{}", inbox.body);
    let camunda = dave.get("/engine-rest/external-task").await.unwrap();
    assert_eq!(camunda.body, json!([]), "{}", camunda.body);
    app.stop().await;
}
