//! The built-in task worker (`casewire.command`, `casewire.email`,
//! `casewire.http`) against a real SMTP server (aiosmtpd) and a webhook
//! endpoint that checks signatures with the `standardwebhooks` package. It
//! is a client of the API with the `integration` demo user's rights, so
//! the attacker's cases come first: a command that role may not give, a
//! recipient who is not the requester, a URL off the allow-list.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use casewire::embedded::Services;
use casewire_e2e::notify::{Receiver, SmtpSink};
use casewire_e2e::ws::python;
use casewire_e2e::{TestApp, complaint, eventually};
use casewire_runtime::config::SecretUrl;
use serde_json::{Value, json};
use uuid::Uuid;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Opens a case (requester dave@example.com) as carol.
async fn open(app: &TestApp) -> String {
    let mut body = complaint("Kettle leaks");
    body["requester"] = json!({"name": "Dave", "email": "dave@example.com"});
    let r = app.client("carol").post_wait("/api/v1/cases", &body).await.unwrap();
    assert_eq!(r.status.as_u16(), 201, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

/// Gives the case an external task on `topic`.
async fn task(app: &TestApp, case: &str, topic: &str, variables: Value) -> Uuid {
    let id = Uuid::now_v7();
    let r = app
        .client("carol")
        .post_wait(
            &format!("/api/v1/cases/{case}/tasks"),
            &json!({"taskId": id, "kind": "external", "name": topic, "topic": topic, "variables": variables}),
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    id
}

async fn case_of(app: &TestApp, case: &str) -> Value {
    app.client("carol")
        .get(&format!("/api/v1/cases/{case}"))
        .await
        .unwrap()
        .body
}

fn find(case: &Value, id: Uuid) -> Value {
    casewire_e2e::task_in(case, id)
}

/// Waits until the task is completed or has an incident; returns it.
async fn settled(app: &TestApp, case: &str, id: Uuid) -> Value {
    let done = eventually(Duration::from_secs(30), || async {
        let t = find(&case_of(app, case).await, id);
        (t["state"] == "completed" || !t["incident"].is_null()).then_some(t)
    })
    .await;
    match done {
        Some(t) => t,
        None => panic!("task {id} never settled: {}", find(&case_of(app, case).await, id)),
    }
}

#[tokio::test]
async fn a_command_task_is_issued_as_the_worker_once_and_a_forbidden_one_is_an_incident() {
    let app = TestApp::spawn().await;
    let case = open(&app).await;
    // The integration role may not prioritize: the policy says no to the
    // worker as it would to any caller, and a person gets an incident.
    let denied = task(
        &app,
        &case,
        "casewire.command",
        json!({"command": "case.prioritize", "data": {"priority": "urgent"}}),
    )
    .await;
    let t = settled(&app, &case, denied).await;
    assert_eq!(t["state"], "created", "{t}");
    assert_eq!(t["retries"], 0, "{t}");
    let why = t["incident"]["message"].as_str().unwrap();
    assert!(why.contains("CW-FORBIDDEN"), "{why}");
    // A task may not open cases or drive tasks.
    let opener = task(
        &app,
        &case,
        "casewire.command",
        json!({"command": "task.complete", "data": {}}),
    )
    .await;
    let t = settled(&app, &case, opener).await;
    assert!(
        t["incident"]["message"].as_str().unwrap().contains("can not be issued"),
        "{t}"
    );

    let tag = task(
        &app,
        &case,
        "casewire.command",
        json!({"command": "case.tag", "data": {"tag": "from-worker"}}),
    )
    .await;
    let t = settled(&app, &case, tag).await;
    assert_eq!(t["state"], "completed", "{t}");
    let detail = case_of(&app, &case).await;
    assert_eq!(detail["priority"], "normal");
    assert!(
        detail["tags"].as_array().unwrap().contains(&json!("from-worker")),
        "{detail}"
    );
    // The command ran once, as the worker's service account, with the id
    // the task gives it (the same on every attempt).
    let history = app
        .client("carol")
        .get(&format!("/api/v1/cases/{case}/history"))
        .await
        .unwrap()
        .body;
    let tagged: Vec<&Value> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"].as_str().is_some_and(|t| t.contains(".tagged.")))
        .collect();
    assert_eq!(tagged.len(), 1, "{history}");
    let command = t["output"]["commandId"].as_str().unwrap();
    let record = app
        .client("carol")
        .get(&format!("/api/v1/commands/{command}"))
        .await
        .unwrap();
    assert_eq!(record.body["actor"], "intake", "{}", record.body);
    app.stop().await;
}

#[tokio::test]
async fn an_email_task_writes_to_the_requester_and_never_to_anyone_else() {
    let Some(python) = python() else { return };
    let smtp = SmtpSink::start(&python).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = casewire_e2e::test_config(dir.path());
    config.notify.smtp_url = Some(SecretUrl::new(smtp.url()));
    // Notifications off: every e-mail the sink gets is the worker's.
    let services = Services {
        notify: false,
        ..Services::default()
    };
    let app = TestApp::start_with(dir, config, services, true).await;
    let case = open(&app).await;
    let relay = task(
        &app,
        &case,
        "casewire.email",
        json!({"to": "mallory@evil.example", "subject": "hi", "text": "{{ case.title }}"}),
    )
    .await;
    let t = settled(&app, &case, relay).await;
    assert!(
        t["incident"]["message"].as_str().unwrap().contains("email_domains"),
        "{t}"
    );

    let mail = task(
        &app,
        &case,
        "casewire.email",
        json!({"subject": "[{{ case.key }}] we are on it", "text": "Dear {{ case.requester.name }}, {{ variables.note }}",
               "note": "<b>soon</b>"}),
    )
    .await;
    let t = settled(&app, &case, mail).await;
    assert_eq!(t["state"], "completed", "{t}");
    assert_eq!(t["output"]["sentTo"], "dave@example.com");
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let data = messages[0]["data"].as_str().unwrap();
    assert!(data.contains("we are on it"), "{data}");
    assert!(data.contains(&format!("Message-ID: <task-{mail}@")), "{data}");
    assert!(data.contains("Auto-Submitted: auto-generated"), "{data}");
    let text = messages[0]["text"].as_str().unwrap();
    assert!(text.contains("Dear Dave, <b>soon</b>"), "{text}");
    let html = messages[0]["html"].as_str().unwrap();
    assert!(
        html.contains("Dear Dave, &lt;b&gt;soon") && !html.contains("<b>"),
        "the HTML part escapes: {html}"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_http_task_calls_only_allow_listed_urls_signed_and_retries_a_5xx() {
    let Some(python) = python() else { return };
    let receiver = Receiver::start(&python).await;
    receiver.set_secrets(&[SECRET]);
    let allowed = format!("http://127.0.0.1:{}/", receiver.port);
    let app = TestApp::spawn_configured(|c| {
        c.task_worker.http_allow = vec![allowed.clone()];
        c.task_worker.http_secret = Some(SecretUrl::new(SECRET));
        // The receiver is on loopback.
        c.task_worker.allow_private_targets = true;
        c.task_worker.retry_ms = 300;
    })
    .await;
    let case = open(&app).await;
    let off_list = task(&app, &case, "casewire.http", json!({"url": "http://127.0.0.2:9/x"})).await;
    let smuggled = task(
        &app,
        &case,
        "casewire.http",
        json!({"url": format!("http://127.0.0.1:{}@example.com/hook", receiver.port)}),
    )
    .await;
    for id in [off_list, smuggled] {
        let t = settled(&app, &case, id).await;
        assert!(t["incident"]["message"].as_str().unwrap().contains("http_allow"), "{t}");
    }
    assert!(receiver.received().is_empty());

    // The endpoint is down at first: a failure with a retry left, then
    // the call again, signed with the same webhook-id.
    receiver.set_status(503);
    let call = task(
        &app,
        &case,
        "casewire.http",
        json!({"url": receiver.url(), "body": {"hello": "world"}}),
    )
    .await;
    eventually(Duration::from_secs(20), || async {
        (!receiver.received().is_empty()).then_some(())
    })
    .await
    .unwrap();
    receiver.set_status(200);
    let t = settled(&app, &case, call).await;
    assert_eq!(t["state"], "completed", "{t}");
    assert_eq!(t["output"]["status"], 200);
    let got = receiver.received();
    assert!(got.len() >= 2, "{got:?}");
    for r in &got {
        assert_eq!(r["verified"], true, "{r}");
        assert_eq!(r["id"], call.to_string());
        assert_eq!(r["body"], json!({"hello": "world"}));
    }
    app.stop().await;
}

#[tokio::test]
async fn the_demo_claims_settlement_rule_is_worked_by_the_built_in_worker() {
    let app = TestApp::spawn().await;
    let bob = app.client("bob");
    let r = bob
        .post_wait(
            "/api/v1/cases",
            &json!({"definition": "insurance-claim", "title": "Storm took the roof",
                    "data": {"policyNumber": "POL-12345678", "lossType": "storm", "lossDate": "2026-11-30"}}),
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    for stage in ["assessment", "decision", "settlement"] {
        let r = bob
            .post_wait(&format!("/api/v1/cases/{id}/stage"), &json!({"stage": stage}))
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{stage}: {}", r.body);
    }
    let task = eventually(Duration::from_secs(30), || async {
        let c = bob.get(&format!("/api/v1/cases/{id}")).await.unwrap().body;
        let tagged = c["tags"].as_array().unwrap().contains(&json!("payment-run"));
        let task = c["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["topic"] == "casewire.command" && t["state"] == "completed")
            .cloned();
        task.filter(|_| tagged)
    })
    .await
    .expect("the payment-run task is completed and the claim tagged");
    assert_eq!(task["createdBy"], "automation:1");
    assert_eq!(task["endedBy"], "intake");
    app.stop().await;
}
