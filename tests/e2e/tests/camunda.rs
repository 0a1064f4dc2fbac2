//! Camunda's own external-task client (`camunda-external-task-client-js`,
//! from npm, unmodified) works external tasks of cases through
//! `/engine-rest/external-task`: extend a lock and complete with variables,
//! fail with retries into an incident, raise a BPMN error, lock and
//! unlock. `tests/run` installs the client under `tests/camunda` and sets
//! `CASEWIRE_TEST_CAMUNDA_CLIENT` to that directory.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use casewire_e2e::{TestApp, complaint};
use casewire_ports::contract::skip;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

fn client_dir() -> Option<String> {
    let Ok(dir) = std::env::var("CASEWIRE_TEST_CAMUNDA_CLIENT") else {
        skip("set CASEWIRE_TEST_CAMUNDA_CLIENT to tests/camunda with its node_modules (tests/run installs it)");
        return None;
    };
    Some(dir)
}

/// Opens a case and gives it an external task on `fraud-score` whose
/// `mode` variable tells the worker what to do.
async fn case_with_task(app: &TestApp, mode: &str) -> (String, Uuid) {
    let r = app
        .client("alice")
        .post_wait("/api/v1/cases", &complaint(&format!("Claim for {mode}")))
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 201, "{}", r.body);
    let case = r.body["id"].as_str().unwrap().to_owned();
    let task = Uuid::now_v7();
    let r = app
        .client("intake")
        .post_wait(
            &format!("/api/v1/cases/{case}/tasks"),
            &json!({"taskId": task, "kind": "external", "name": "Fraud score", "topic": "fraud-score",
                    "variables": {"mode": mode, "amount": 1200}}),
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    (case, task)
}

async fn task_of(app: &TestApp, case: &str, id: Uuid) -> Value {
    let r = app.client("alice").get(&format!("/api/v1/cases/{case}")).await.unwrap();
    casewire_e2e::task_in(&r.body, id)
}

#[tokio::test]
async fn camundas_js_client_works_external_tasks_unmodified() {
    let Some(dir) = client_dir() else { return };
    let app = TestApp::spawn().await;
    let mut tasks = Vec::new();
    for mode in ["complete", "fail-twice", "bpmn", "unlock"] {
        tasks.push((mode, case_with_task(&app, mode).await));
    }
    let token = app.client("intake").token().to_owned();
    let out = tokio::time::timeout(
        Duration::from_secs(90),
        tokio::process::Command::new("node")
            .arg(format!("{dir}/worker.mjs"))
            .env("BASE_URL", format!("{}/engine-rest", app.url()))
            .env("TOKEN", token)
            .env("EXPECT", "4")
            .env("DEADLINE_MS", "60000")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the worker finished within 90 s")
    .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "worker failed:\n{stdout}\n{stderr}");
    assert!(!stdout.contains("\"error\""), "a call failed:\n{stdout}");

    let state = |mode: &str| tasks.iter().find(|(m, _)| *m == mode).unwrap().1.clone();
    let (case, id) = state("complete");
    let t = task_of(&app, &case, id).await;
    assert_eq!(t["state"], "completed", "{t}");
    assert_eq!(t["output"], json!({"score": 0.3, "verdict": {"ok": true}}));
    let (case, id) = state("fail-twice");
    let t = task_of(&app, &case, id).await;
    assert_eq!(
        (t["retries"].clone(), t["state"].clone()),
        (json!(0), json!("created")),
        "{t}"
    );
    assert_eq!(t["incident"]["message"], "scoring service still down");
    assert_eq!(t["failure"]["details"], "HTTP 503");
    // The Camunda view agrees: retries 0 and the error message.
    let r = app
        .client("intake")
        .get(&format!("/engine-rest/external-task/{id}"))
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    assert_eq!(
        (r.body["retries"].clone(), r.body["processInstanceId"].clone()),
        (json!(0), json!(case))
    );
    let (case, id) = state("bpmn");
    let t = task_of(&app, &case, id).await;
    assert_eq!(
        (t["state"].as_str(), t["error"]["errorCode"].as_str()),
        (Some("errored"), Some("suspected-fraud"))
    );
    assert_eq!(t["error"]["variables"], json!({"score": 0.97}));
    let (case, id) = state("unlock");
    let t = task_of(&app, &case, id).await;
    assert_eq!(
        (t["state"].as_str(), t["output"]["after"].as_str()),
        (Some("completed"), Some("unlock"))
    );
    // Ended tasks no longer exist for Camunda's API.
    let r = app
        .client("intake")
        .get(&format!("/engine-rest/external-task/{id}"))
        .await
        .unwrap();
    assert_eq!(
        (r.status.as_u16(), r.body["type"].as_str()),
        (404, Some("RestException"))
    );
    app.stop().await;
}

#[tokio::test]
async fn fetch_and_lock_speaks_camundas_rules() {
    let app = TestApp::spawn().await;
    let (case, task) = case_with_task(&app, "complete").await;
    let intake = app.client("intake");
    let fetch = |worker: &str, timeout: u64| {
        json!({"workerId": worker, "maxTasks": 5, "usePriority": true, "asyncResponseTimeout": timeout,
               "topics": [{"topicName": "fraud-score", "lockDuration": 30000, "variables": ["mode"]}]})
    };
    let r = intake
        .send(
            Method::POST,
            "/engine-rest/external-task/fetchAndLock",
            Some(&fetch("w1", 0)),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    let got = r.body.as_array().unwrap();
    assert_eq!(got.len(), 1, "{}", r.body);
    assert_eq!(got[0]["id"], task.to_string());
    assert_eq!(got[0]["processInstanceId"], case);
    assert_eq!(
        got[0]["variables"],
        json!({"mode": {"type": "String", "value": "complete", "valueInfo": {}}})
    );
    // Locked: a second worker gets nothing, after waiting its long poll out.
    let r = intake
        .send(
            Method::POST,
            "/engine-rest/external-task/fetchAndLock",
            Some(&fetch("w2", 300)),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.body, json!([]));
    // The wrong worker may not complete it: 400 with Camunda's words.
    let r = intake
        .send(
            Method::POST,
            &format!("/engine-rest/external-task/{task}/complete"),
            Some(&json!({"workerId": "w2"})),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 400, "{}", r.body);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("It is locked by worker 'w1'"),
        "{}",
        r.body
    );
    // Unknown ids are 404; a long poll above 30 minutes is 400.
    let r = intake
        .send(
            Method::POST,
            &format!("/engine-rest/external-task/{}/complete", Uuid::now_v7()),
            Some(&json!({"workerId": "w1"})),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 404, "{}", r.body);
    let r = intake
        .send(
            Method::POST,
            "/engine-rest/external-task/fetchAndLock",
            Some(&fetch("w1", 1_800_001)),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 400, "{}", r.body);
    // Another tenant's worker sees nothing, whatever tenantIdIn says.
    let mut other = fetch("w3", 0);
    other["topics"][0]["tenantIdIn"] = json!(["casewire"]);
    let r = app
        .client("hank")
        .send(
            Method::POST,
            "/engine-rest/external-task/fetchAndLock",
            Some(&other),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.body, json!([]), "{}", r.body);
    let r = app
        .client("hank")
        .get(&format!("/engine-rest/external-task/{task}"))
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 404);
    // Unlocking is a worker's verb: a viewer may not, even where it would
    // change nothing.
    let unlock = format!("/engine-rest/external-task/{task}/unlock");
    for expected in [204, 204] {
        let r = intake.send(Method::POST, &unlock, None, None).await.unwrap();
        assert_eq!(r.status.as_u16(), expected, "{}", r.body);
    }
    let r = app
        .client("erin")
        .send(Method::POST, &unlock, None, None)
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 403, "{}", r.body);
    app.stop().await;
}

#[tokio::test]
async fn a_long_poll_answers_when_a_task_arrives() {
    let app = TestApp::spawn().await;
    let url = app.url();
    let token = app.client("intake").token().to_owned();
    let poll = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let r = casewire::client::Client::new(&url, &token)
            .send(
                Method::POST,
                "/engine-rest/external-task/fetchAndLock",
                Some(&json!({"workerId": "w1", "maxTasks": 1, "asyncResponseTimeout": 20000,
                             "topics": [{"topicName": "fraud-score", "lockDuration": 10000}]})),
                None,
            )
            .await
            .unwrap();
        (r, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, task) = case_with_task(&app, "complete").await;
    let (r, waited) = poll.await.unwrap();
    assert_eq!(r.body[0]["id"], task.to_string(), "{}", r.body);
    assert!(
        waited < Duration::from_secs(20),
        "answered when the task came, not at the timeout"
    );
    app.stop().await;
}

/// Where the workers find the API: a restart moves it to a new port.
type Endpoint = std::sync::Arc<std::sync::RwLock<(String, String)>>;

/// A worker: fetch and lock up to 10, complete each with its own name,
/// until `stop`; connection errors (the API restarting) are waited out.
async fn race_worker(name: &'static str, endpoint: Endpoint, stop: tokio_util::sync::CancellationToken) -> usize {
    let mut completed = 0;
    while !stop.is_cancelled() {
        let (url, token) = endpoint.read().unwrap().clone();
        let c = casewire::client::Client::new(&url, &token);
        let fetch = json!({"workerId": name, "maxTasks": 10, "asyncResponseTimeout": 500,
                           "topics": [{"topicName": "race", "lockDuration": 20000}]});
        let Ok(r) = c
            .send(
                Method::POST,
                "/engine-rest/external-task/fetchAndLock",
                Some(&fetch),
                None,
            )
            .await
        else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        for task in r.body.as_array().cloned().unwrap_or_default() {
            let id = task["id"].as_str().unwrap_or_default();
            let body = json!({"workerId": name, "variables": {"by": {"type": "String", "value": name}}});
            if let Ok(r) = c
                .send(
                    Method::POST,
                    &format!("/engine-rest/external-task/{id}/complete"),
                    Some(&body),
                    None,
                )
                .await
                && r.status.as_u16() == 204
            {
                completed += 1;
            }
        }
    }
    completed
}

#[tokio::test]
async fn two_workers_complete_each_task_exactly_once_across_an_api_restart() {
    const CASES: usize = 10;
    const PER_CASE: usize = 100;
    let app = TestApp::spawn().await;
    let mut cases = Vec::new();
    for n in 0..CASES {
        let r = app
            .client("alice")
            .post_wait("/api/v1/cases", &complaint(&format!("Race {n}")))
            .await
            .unwrap();
        cases.push(r.body["id"].as_str().unwrap().to_owned());
    }
    let intake = app.client("intake");
    for case in &cases {
        for _ in 0..PER_CASE {
            let body = json!({"kind": "external", "name": "Race", "topic": "race"});
            let r = intake
                .post(&format!("/api/v1/cases/{case}/tasks"), &body)
                .await
                .unwrap();
            assert_eq!(r.status.as_u16(), 202, "{}", r.body);
        }
    }
    let endpoint: Endpoint = std::sync::Arc::new(std::sync::RwLock::new((app.url(), intake.token().to_owned())));
    let stop = tokio_util::sync::CancellationToken::new();
    let workers: Vec<_> = ["w1", "w2"]
        .into_iter()
        .map(|w| tokio::spawn(race_worker(w, endpoint.clone(), stop.clone())))
        .collect();
    // Restart the whole platform (API, engine, projector) once some tasks
    // are done and others in flight.
    let done = |app: &TestApp| {
        let c = app.client("alice");
        async move {
            let r = c
                .get("/api/v1/tasks?kind=external&state=completed&limit=500")
                .await
                .unwrap();
            r.body["items"].as_array().map_or(0, Vec::len)
        }
    };
    let app = {
        let limit = std::time::Instant::now() + Duration::from_secs(120);
        while done(&app).await < 200 {
            assert!(std::time::Instant::now() < limit, "the workers made no progress");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let dir = app.stop().await;
        let app = TestApp::start_in(dir, casewire::embedded::Services::default(), false).await;
        *endpoint.write().unwrap() = (app.url(), app.client("intake").token().to_owned());
        app
    };
    // Every task completed, each by exactly one worker, exactly once.
    let limit = std::time::Instant::now() + Duration::from_secs(300);
    let mut completed_tasks;
    loop {
        let mut open = 0;
        completed_tasks = 0;
        for case in &cases {
            let r = app.client("alice").get(&format!("/api/v1/cases/{case}")).await.unwrap();
            for t in r.body["tasks"].as_array().unwrap() {
                match t["state"].as_str() {
                    Some("completed") => completed_tasks += 1,
                    _ => open += 1,
                }
            }
        }
        if open == 0 || std::time::Instant::now() > limit {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.cancel();
    let mut reported = 0;
    for w in workers {
        reported += w.await.unwrap();
    }
    assert_eq!(completed_tasks, CASES * PER_CASE, "every task completed");
    for case in &cases {
        let history = app
            .client("alice")
            .get(&format!("/api/v1/cases/{case}/history"))
            .await
            .unwrap();
        let completions = history.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"].as_str().is_some_and(|t| t.contains("task-completed")))
            .count();
        assert_eq!(completions, PER_CASE, "one completion per task, none doubled");
    }
    // A worker told 204 completed it; one that lost the race was told so.
    assert!(
        reported <= CASES * PER_CASE,
        "{reported} completions reported for {} tasks",
        CASES * PER_CASE
    );
    app.stop().await;
}
