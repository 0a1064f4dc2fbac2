//! The case API end to end, over HTTP, against the embedded runtime.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use casewire::embedded::Services;
use casewire_e2e::{TestApp, complaint, eventually};
use reqwest::Method;
use serde_json::{Value, json};

async fn open_waiting(app: &TestApp, title: &str) -> Value {
    let r = app
        .client("alice")
        .post_wait("/api/v1/cases", &complaint(title))
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 201, "{}", r.body);
    r.body
}

#[tokio::test]
async fn an_opened_case_is_listed_quickly_and_survives_a_restart() {
    let app = TestApp::spawn().await;
    let alice = app.client("alice");
    let started = Instant::now();
    let r = alice.post("/api/v1/cases", &complaint("Kettle leaks")).await.unwrap();
    assert_eq!(r.status.as_u16(), 202, "{}", r.body);
    let id = r.body["caseId"].as_str().unwrap().to_owned();
    assert_eq!(r.body["key"], "CMP-000001");
    assert!(r.body["commandId"].is_string());
    let listed = eventually(Duration::from_secs(10), || {
        let alice = alice.clone();
        let id = id.clone();
        async move {
            let page = alice.get("/api/v1/cases").await.ok()?;
            page.body["items"]
                .as_array()?
                .iter()
                .any(|c| c["id"] == id.as_str())
                .then_some(())
        }
    })
    .await;
    assert!(listed.is_some(), "the case shows up in the list");
    println!("visible in the list after {:?}", started.elapsed());
    alice
        .post_wait(&format!("/api/v1/cases/{id}/assign"), &json!({"assignee": "bob"}))
        .await
        .unwrap();
    alice
        .post_wait(&format!("/api/v1/cases/{id}/comments"), &json!({"body": "On it"}))
        .await
        .unwrap();

    let dir = app.stop().await;
    let app = TestApp::start_in(dir, Services::default(), false).await;
    let alice = app.client("alice");
    let case = alice.get(&format!("/api/v1/cases/{id}")).await.unwrap();
    assert_eq!(case.status.as_u16(), 200);
    assert_eq!(case.body["assignee"], "bob");
    let history = alice.get(&format!("/api/v1/cases/{id}/history")).await.unwrap();
    let types: Vec<&str> = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "casewire.case.opened.v1",
            "casewire.case.assigned.v1",
            "casewire.case.comment-added.v1"
        ]
    );
    // Keys keep counting after a restart.
    let next = app
        .client("alice")
        .post("/api/v1/cases", &complaint("Second"))
        .await
        .unwrap();
    assert_eq!(next.body["key"], "CMP-000002");
    app.stop().await;
}

#[tokio::test]
async fn every_command_works_over_rest() {
    let app = TestApp::spawn().await;
    let c = app.client("alice");
    let case = open_waiting(&app, "Espresso machine leaks").await;
    let id = case["id"].as_str().unwrap().to_owned();
    let key = case["key"].as_str().unwrap().to_owned();
    let other = open_waiting(&app, "Related case").await;
    let step = |path: &str, body: Value| {
        let (c, path) = (c.clone(), format!("/api/v1/cases/{key}{path}"));
        async move {
            let r = c.post_wait(&path, &body).await.unwrap();
            assert_eq!(r.status.as_u16(), 200, "{path}: {}", r.body);
            r.body
        }
    };
    let s = step("/details", json!({"title": "Espresso machine leaks water", "data": {"channel": "phone", "product": "Espresso Pro", "amountClaimed": 120}})).await;
    assert_eq!(s["title"], "Espresso machine leaks water");
    assert_eq!(s["data"]["amountClaimed"], 120);
    assert_eq!(step("/assign", json!({"assignee": "bob"})).await["assignee"], "bob");
    assert_eq!(step("/unassign", json!({})).await["assignee"], Value::Null);
    assert_eq!(step("/route", json!({"queue": "support"})).await["queue"], "support");
    assert_eq!(step("/stage", json!({"stage": "triage"})).await["stage"], "triage");
    assert_eq!(
        step("/priority", json!({"priority": "urgent"})).await["priority"],
        "urgent"
    );
    let s = step("/comments", json!({"body": "Customer called", "visibility": "public"})).await;
    let parent = s["comments"][0]["id"].as_str().unwrap().to_owned();
    let s = step("/comments", json!({"body": "Reply", "parentId": parent})).await;
    assert_eq!(s["comments"][1]["parentId"], parent.as_str());
    assert_eq!(s["comments"][1]["visibility"], "internal");
    assert_eq!(step("/tags", json!({"tag": "Refund"})).await["tags"], json!(["refund"]));
    let r = c
        .send(
            Method::DELETE,
            &format!("/api/v1/cases/{id}/tags/refund"),
            None,
            Some(5),
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    assert_eq!(r.body["tags"], json!([]));
    let s = step("/links", json!({"target": other["id"], "relation": "duplicates"})).await;
    assert_eq!(s["links"][0]["relation"], "duplicates");
    let s = step("/resolve", json!({"resolution": "refunded", "note": "Refund sent"})).await;
    assert_eq!(
        (s["status"].as_str(), s["resolution"]["code"].as_str()),
        (Some("resolved"), Some("refunded"))
    );
    assert_eq!(step("/close", json!({})).await["status"], "closed");
    let s = step("/reopen", json!({"reason": "Refund bounced"})).await;
    assert_eq!(s["status"], "open");
    assert_eq!(s["revision"], 15);
    let history = c.get(&format!("/api/v1/cases/{id}/history")).await.unwrap();
    assert_eq!(history.body["items"].as_array().unwrap().len(), 15);
    app.stop().await;
}

#[tokio::test]
async fn invalid_commands_get_their_4xx_codes() {
    let app = TestApp::spawn().await;
    let c = app.client("alice");
    let case = open_waiting(&app, "Toaster").await;
    let id = case["id"].as_str().unwrap().to_owned();
    c.post_wait(&format!("/api/v1/cases/{id}/assign"), &json!({"assignee": "alice"}))
        .await
        .unwrap();
    let closed = open_waiting(&app, "Closed one").await;
    let closed_id = closed["id"].as_str().unwrap();
    for (path, body) in [
        ("/stage", json!({"stage": "rejected"})),
        ("/resolve", json!({"resolution": "unfounded"})),
        ("/close", json!({})),
    ] {
        let r = c
            .post_wait(&format!("/api/v1/cases/{closed_id}{path}"), &body)
            .await
            .unwrap();
        assert!(r.status.is_success(), "{path}: {}", r.body);
    }
    let missing = uuid::Uuid::now_v7();
    let cases: Vec<(&str, String, Value, u16, &str)> = vec![
        (
            "transition not allowed",
            format!("/cases/{id}/stage"),
            json!({"stage": "done"}),
            409,
            "CW-TRANSITION-NOT-ALLOWED",
        ),
        (
            "unknown stage",
            format!("/cases/{id}/stage"),
            json!({"stage": "nirvana"}),
            422,
            "CW-UNKNOWN-STAGE",
        ),
        (
            "schema violation",
            format!("/cases/{id}/details"),
            json!({"data": {"channel": "fax", "product": "x"}}),
            422,
            "CW-SCHEMA-VIOLATION",
        ),
        (
            "current assignee again",
            format!("/cases/{id}/assign"),
            json!({"assignee": "alice"}),
            409,
            "CW-NO-CHANGE",
        ),
        (
            "unknown priority",
            format!("/cases/{id}/priority"),
            json!({"priority": "asap"}),
            422,
            "CW-UNKNOWN-PRIORITY",
        ),
        (
            "unknown parent comment",
            format!("/cases/{id}/comments"),
            json!({"body": "x", "parentId": missing}),
            422,
            "CW-UNKNOWN-COMMENT",
        ),
        (
            "empty comment",
            format!("/cases/{id}/comments"),
            json!({"body": "  "}),
            422,
            "CW-VALIDATION",
        ),
        (
            "bad tag",
            format!("/cases/{id}/tags"),
            json!({"tag": "two words"}),
            422,
            "CW-VALIDATION",
        ),
        (
            "bad queue",
            format!("/cases/{id}/route"),
            json!({"queue": ""}),
            422,
            "CW-VALIDATION",
        ),
        (
            "unknown resolution",
            format!("/cases/{id}/resolve"),
            json!({"resolution": "magic"}),
            422,
            "CW-UNKNOWN-RESOLUTION",
        ),
        (
            "close an open case",
            format!("/cases/{id}/close"),
            json!({}),
            409,
            "CW-CASE-NOT-RESOLVED",
        ),
        (
            "reopen an open case",
            format!("/cases/{id}/reopen"),
            json!({}),
            409,
            "CW-CASE-ALREADY-OPEN",
        ),
        (
            "link to itself",
            format!("/cases/{id}/links"),
            json!({"target": id}),
            422,
            "CW-VALIDATION",
        ),
        (
            "change a closed case",
            format!("/cases/{closed_id}/comments"),
            json!({"body": "late"}),
            409,
            "CW-CASE-CLOSED",
        ),
        (
            "missing case",
            format!("/cases/{missing}/assign"),
            json!({"assignee": "bob"}),
            404,
            "CW-NOT-FOUND",
        ),
        (
            "unknown key",
            "/cases/CMP-999999/assign".into(),
            json!({"assignee": "bob"}),
            404,
            "CW-NOT-FOUND",
        ),
        (
            "unknown field",
            format!("/cases/{id}/assign"),
            json!({"assignee": "bob", "force": true}),
            422,
            "CW-VALIDATION",
        ),
        (
            "wrong type",
            format!("/cases/{id}/assign"),
            json!({"assignee": 42}),
            422,
            "CW-VALIDATION",
        ),
        (
            "missing field",
            format!("/cases/{id}/assign"),
            json!({}),
            422,
            "CW-VALIDATION",
        ),
        (
            "unknown definition",
            "/cases".into(),
            json!({"definition": "nope", "title": "x"}),
            422,
            "CW-VALIDATION",
        ),
        (
            "open with schema violation",
            "/cases".into(),
            json!({"definition": "customer-complaint", "title": "x", "data": {}}),
            422,
            "CW-SCHEMA-VIOLATION",
        ),
        (
            "bad e-mail",
            "/cases".into(),
            json!({"definition": "customer-complaint", "title": "x", "data": {"channel": "web", "product": "p"}, "requester": {"email": "nope"}}),
            422,
            "CW-VALIDATION",
        ),
        (
            "generic: unknown type",
            "/commands".into(),
            json!({"type": "case.destroy", "caseId": id, "data": {}}),
            422,
            "CW-VALIDATION",
        ),
        (
            "generic: no case id",
            "/commands".into(),
            json!({"type": "case.assign", "data": {"assignee": "bob"}}),
            422,
            "CW-VALIDATION",
        ),
    ];
    for (what, path, body, status, code) in cases {
        let r = c.post(&format!("/api/v1{path}"), &body).await.unwrap();
        assert_eq!(
            (r.status.as_u16(), r.body["code"].as_str()),
            (status, Some(code)),
            "{what}: {}",
            r.body
        );
        assert!(
            r.body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what} has a message"
        );
        assert!(r.body["details"].is_object(), "{what} has details");
    }

    // Raw bodies and query strings.
    let http = reqwest::Client::new();
    let token = app.app.token("alice").unwrap();
    let url = |p: &str| format!("{}/api/v1{p}", app.url());
    let raw = |method: Method, path: String, body: Vec<u8>| {
        http.request(method, url(&path))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
    };
    let huge = format!(
        "{{\"definition\":\"customer-complaint\",\"title\":\"{}\"}}",
        "x".repeat(2 * 1024 * 1024)
    );
    let requests: Vec<(Method, String, Vec<u8>, u16, &str)> = vec![
        (
            Method::POST,
            "/cases".into(),
            b"{\"definition\": ".to_vec(),
            400,
            "CW-MALFORMED-JSON",
        ),
        (Method::POST, "/cases".into(), Vec::new(), 400, "CW-MALFORMED-JSON"),
        (
            Method::POST,
            "/cases".into(),
            huge.into_bytes(),
            413,
            "CW-PAYLOAD-TOO-LARGE",
        ),
        (
            Method::GET,
            "/cases?cursor=bm9wZQ".into(),
            Vec::new(),
            400,
            "CW-BAD-CURSOR",
        ),
        (
            Method::GET,
            "/cases?sort=color".into(),
            Vec::new(),
            400,
            "CW-BAD-PARAMETER",
        ),
        (
            Method::GET,
            "/cases?limit=100000".into(),
            Vec::new(),
            400,
            "CW-BAD-PARAMETER",
        ),
        (
            Method::GET,
            "/cases?limit=abc".into(),
            Vec::new(),
            400,
            "CW-BAD-PARAMETER",
        ),
        (
            Method::GET,
            "/cases?colour=red".into(),
            Vec::new(),
            400,
            "CW-BAD-PARAMETER",
        ),
        (
            Method::GET,
            format!("/cases/{id}?asOf=yesterday"),
            Vec::new(),
            400,
            "CW-BAD-PARAMETER",
        ),
        (Method::GET, "/nothing-here".into(), Vec::new(), 404, "CW-NOT-FOUND"),
        (
            Method::GET,
            format!("/commands/{missing}"),
            Vec::new(),
            404,
            "CW-NOT-FOUND",
        ),
    ];
    for (method, path, body, status, code) in requests {
        let what = format!("{method} {path}");
        let r = raw(method, path, body).send().await.unwrap();
        let got = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        assert_eq!((got, body["code"].as_str()), (status, Some(code)), "{what}: {body}");
    }

    // Nothing of the rejected commands was written.
    let history = c.get(&format!("/api/v1/cases/{id}/history")).await.unwrap();
    assert_eq!(
        history.body["items"].as_array().unwrap().len(),
        2,
        "only open and assign happened"
    );
    app.stop().await;
}

#[tokio::test]
async fn tokens_are_required_and_checked() {
    let app = TestApp::spawn().await;
    let url = format!("{}/api/v1/cases", app.url());
    let http = reqwest::Client::new();
    let issuer = app.app.api.dev_issuer.clone().unwrap();
    let now = chrono::Utc::now().timestamp();
    let claims = |patch: Value| {
        let mut c =
            json!({"iss": issuer.issuer(), "sub": "x", "aud": "casewire", "exp": now + 60, "tenant": "casewire"});
        for (k, v) in patch.as_object().unwrap() {
            c[k] = v.clone();
        }
        issuer.sign(&c).unwrap()
    };
    let good = issuer.token_for("alice", 60).unwrap();
    let mut tampered: Vec<String> = good.split('.').map(str::to_owned).collect();
    tampered[2] = tampered[2].chars().rev().collect();
    let bad_tokens = [
        ("expired", claims(json!({"exp": now - 3600}))),
        ("not yet valid", claims(json!({"nbf": now + 3600}))),
        ("wrong audience", claims(json!({"aud": "someone-else"}))),
        (
            "unknown issuer",
            claims(json!({"iss": "http://127.0.0.1:1/realms/evil"})),
        ),
        ("tampered", tampered.join(".")),
        ("garbage", "not-a-jwt".to_owned()),
        // The casewire realm's key, a claim naming the other tenant.
        ("another tenant's claim", claims(json!({"tenant": "globex"}))),
    ];
    for (what, token) in bad_tokens {
        let r = http.get(&url).bearer_auth(token).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "{what}");
        assert!(r.headers().contains_key("www-authenticate"), "{what}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "CW-UNAUTHENTICATED", "{what}");
    }
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401, "no token");
    let r = http
        .get(&url)
        .header("authorization", "Basic YTpi")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "wrong scheme");
    let r = http.get(&url).bearer_auth(&good).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // The dev issuer's endpoints, Keycloak-shaped.
    let realm = format!("{}/dev-auth/realms/casewire", app.url());
    let disco: Value = http
        .get(format!("{realm}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(disco["issuer"], issuer.issuer());
    let jwks: Value = http
        .get(disco["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["alg"], "RS256");
    let client = casewire::client::Client::login(&app.url(), "bob", "bob").await.unwrap();
    assert_eq!(client.get("/api/v1/cases").await.unwrap().status.as_u16(), 200);
    let wrong = http
        .post(disco["token_endpoint"].as_str().unwrap())
        .form(&[("grant_type", "password"), ("username", "bob"), ("password", "guess")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    // A realm serves its own tenant's users only, and only the demo
    // tenants are realms.
    let other_realm = http
        .post(disco["token_endpoint"].as_str().unwrap())
        .form(&[("grant_type", "password"), ("username", "gina"), ("password", "gina")])
        .send()
        .await
        .unwrap();
    assert_eq!(other_realm.status().as_u16(), 401, "gina is globex's");
    let gina = casewire::client::Client::login(&app.url(), "gina", "gina")
        .await
        .unwrap();
    let r = gina.get("/api/v1/cases").await.unwrap();
    assert_eq!(r.status.as_u16(), 200, "from the globex realm: {}", r.body);
    let nowhere = http
        .get(format!(
            "{}/dev-auth/realms/initech/.well-known/openid-configuration",
            app.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(nowhere.status().as_u16(), 404);
    app.stop().await;
}

#[tokio::test]
async fn as_of_returns_the_earlier_state_and_etags_work() {
    let app = TestApp::spawn().await;
    let c = app.client("alice");
    let case = open_waiting(&app, "Washing machine").await;
    let id = case["id"].as_str().unwrap().to_owned();
    let before = case["createdAt"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let after_open = chrono::Utc::now().to_rfc3339();
    tokio::time::sleep(Duration::from_millis(20)).await;
    c.post_wait(&format!("/api/v1/cases/{id}/assign"), &json!({"assignee": "bob"}))
        .await
        .unwrap();
    c.post_wait(&format!("/api/v1/cases/{id}/stage"), &json!({"stage": "triage"}))
        .await
        .unwrap();

    let then = c
        .get(&format!("/api/v1/cases/{id}?asOf={}", urlencode(&after_open)))
        .await
        .unwrap();
    assert_eq!(then.status.as_u16(), 200, "{}", then.body);
    assert_eq!(
        (
            then.body["assignee"].clone(),
            then.body["stage"].clone(),
            then.body["revision"].clone()
        ),
        (Value::Null, json!("new"), json!(1))
    );
    let at_creation = c
        .get(&format!("/api/v1/cases/{id}?asOf={}", urlencode(&before)))
        .await
        .unwrap();
    assert_eq!(at_creation.body["revision"], 1, "asOf includes events at that instant");
    let too_early = c
        .get(&format!("/api/v1/cases/{id}?asOf=2000-01-01T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(too_early.status.as_u16(), 404);

    let now = c.get(&format!("/api/v1/cases/{id}")).await.unwrap();
    assert_eq!(now.body["stage"], "triage");
    assert_eq!(now.etag.as_deref(), Some("\"3\""));
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{}/api/v1/cases/{id}", app.url()))
        .bearer_auth(app.app.token("alice").unwrap())
        .header("if-none-match", "\"3\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 304);
    let r = http
        .get(format!("{}/api/v1/cases/{id}", app.url()))
        .bearer_auth(app.app.token("alice").unwrap())
        .header("if-none-match", "\"2\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    app.stop().await;
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

async fn next_line(
    stream: &mut (impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    buf: &mut Vec<u8>,
) -> Value {
    use futures::StreamExt;
    loop {
        if let Some(i) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            return serde_json::from_slice(&line).unwrap();
        }
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("a line within 10 s")
            .unwrap()
            .unwrap();
        buf.extend_from_slice(&chunk);
    }
}

#[tokio::test]
async fn the_event_stream_is_live_resumable_and_beats() {
    let app = TestApp::spawn().await;
    let http = reqwest::Client::new();
    let token = app.app.token("alice").unwrap();
    let res = http
        .get(format!("{}/api/v1/events?heartbeat=1", app.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers()["content-type"], "application/x-ndjson");
    let mut stream = Box::pin(res.bytes_stream());
    let mut buf = Vec::new();
    // Idle: a heartbeat comes first.
    let beat = next_line(&mut stream, &mut buf).await;
    assert!(beat["heartbeat"].is_string(), "{beat}");

    let case = open_waiting(&app, "Streamed").await;
    let id = case["id"].as_str().unwrap();
    app.client("alice")
        .post_wait(&format!("/api/v1/cases/{id}/tags"), &json!({"tag": "live"}))
        .await
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let line = next_line(&mut stream, &mut buf).await;
        if line["specversion"] == "1.0" {
            seen.push(line);
        }
    }
    assert_eq!(seen[0]["type"], "casewire.case.opened.v1");
    assert_eq!(seen[0]["subject"], id);
    assert_eq!(seen[0]["tenant"], "casewire");
    assert_eq!(seen[0]["revision"], 1);
    assert_eq!(seen[0]["actor"], "alice");
    assert!(seen[0]["causationid"].is_string() && seen[0]["correlationid"].is_string());
    assert_eq!(seen[1]["type"], "casewire.case.tagged.v1");
    let second = seen[1]["position"].as_u64().unwrap();
    drop(stream);

    // Resume from the second event's position.
    let res = http
        .get(format!("{}/api/v1/events?from={second}", app.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let mut stream = Box::pin(res.bytes_stream());
    let mut buf = Vec::new();
    let first = next_line(&mut stream, &mut buf).await;
    assert_eq!(first["position"].as_u64(), Some(second));
    assert_eq!(first["id"], seen[1]["id"]);
    app.stop().await;
}

#[tokio::test]
async fn prefer_wait_returns_the_case_or_the_rejection() {
    // The engine starts late, so both commands pass the API's early check
    // and the second one is rejected by the engine.
    let app = TestApp::spawn_with(Services {
        engine: false,
        projector: true,
        ws: true,
        notify: true,
        worker: true,
    })
    .await;
    let c = app.client("alice");
    let opened = c.post("/api/v1/cases", &complaint("Waiting game")).await.unwrap();
    let id = opened.body["caseId"].as_str().unwrap().to_owned();
    let engine = app.start_engine();
    let case = eventually(Duration::from_secs(10), || {
        let c = c.clone();
        let id = id.clone();
        async move {
            c.get(&format!("/api/v1/cases/{id}"))
                .await
                .ok()
                .filter(|r| r.status.as_u16() == 200)
        }
    })
    .await
    .expect("the case is opened");
    assert_eq!(case.body["revision"], 1);
    engine.stop().await;

    let first = c
        .post(&format!("/api/v1/cases/{id}/assign"), &json!({"assignee": "bob"}))
        .await
        .unwrap();
    assert_eq!(first.status.as_u16(), 202);
    let waiting = {
        let c = c.clone();
        let id = id.clone();
        tokio::spawn(async move {
            c.post_wait(&format!("/api/v1/cases/{id}/assign"), &json!({"assignee": "bob"}))
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let engine = app.start_engine();
    let rejected = waiting.await.unwrap();
    assert_eq!(rejected.status.as_u16(), 409, "{}", rejected.body);
    assert_eq!(rejected.body["code"], "CW-NO-CHANGE");

    let ok = c
        .post_wait(&format!("/api/v1/cases/{id}/assign"), &json!({"assignee": "carol"}))
        .await
        .unwrap();
    assert_eq!(ok.status.as_u16(), 200);
    assert_eq!(ok.body["assignee"], "carol");
    assert_eq!(ok.body["revision"], 3);
    engine.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn commands_can_be_tracked_and_cancelled_only_while_pending() {
    let app = TestApp::spawn_with(Services {
        engine: false,
        projector: true,
        ws: true,
        notify: true,
        worker: true,
    })
    .await;
    let c = app.client("alice");
    let r = c.post("/api/v1/cases", &complaint("Never to be")).await.unwrap();
    let command = r.body["commandId"].as_str().unwrap().to_owned();
    let status = c.get(&format!("/api/v1/commands/{command}")).await.unwrap();
    assert_eq!(status.body["status"], "pending");
    let cancelled = c
        .post(&format!("/api/v1/commands/{command}/cancel"), &json!({}))
        .await
        .unwrap();
    assert_eq!(cancelled.status.as_u16(), 200, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "cancelled");
    let again = c
        .post(&format!("/api/v1/commands/{command}/cancel"), &json!({}))
        .await
        .unwrap();
    assert_eq!(
        (again.status.as_u16(), again.body["code"].as_str()),
        (409, Some("CW-NOT-PENDING"))
    );
    // Another tenant's user can not see it: bob is in the same tenant, so
    // check the 404 with an unknown id instead.
    let unknown = c
        .post(&format!("/api/v1/commands/{}/cancel", uuid::Uuid::now_v7()), &json!({}))
        .await
        .unwrap();
    assert_eq!(unknown.status.as_u16(), 404);

    // A generic command with a client-chosen id; resending it is harmless.
    let opened = c.post("/api/v1/cases", &complaint("Generic target")).await.unwrap();
    let case_id = opened.body["caseId"].as_str().unwrap().to_owned();
    let engine = app.start_engine();
    let case_key = opened.body["key"].as_str().unwrap().to_owned();
    eventually(Duration::from_secs(10), || {
        let c = c.clone();
        let case_id = case_id.clone();
        async move {
            c.get(&format!("/api/v1/cases/{case_id}"))
                .await
                .ok()
                .filter(|r| r.status.as_u16() == 200)
        }
    })
    .await
    .expect("opened");
    let command_id = uuid::Uuid::now_v7();
    let body = json!({"commandId": command_id, "caseId": case_key, "type": "case.assign", "data": {"assignee": "bob"}});
    let first = c.post("/api/v1/commands", &body).await.unwrap();
    assert_eq!(first.status.as_u16(), 202, "{}", first.body);
    let processed = eventually(Duration::from_secs(10), || {
        let c = c.clone();
        async move {
            let r = c.get(&format!("/api/v1/commands/{command_id}")).await.ok()?;
            (r.body["status"] == "processed").then_some(r.body)
        }
    })
    .await
    .expect("processed");
    assert_eq!(processed["revision"], 2);
    assert_eq!(processed["type"], "case.assign");
    let resent = c.post("/api/v1/commands", &body).await.unwrap();
    assert_eq!(
        (resent.status.as_u16(), resent.body["status"].as_str()),
        (202, Some("processed"))
    );
    let late = c
        .post(&format!("/api/v1/commands/{command_id}/cancel"), &json!({}))
        .await
        .unwrap();
    assert_eq!(late.status.as_u16(), 409);
    let history = c.get(&format!("/api/v1/cases/{case_id}/history")).await.unwrap();
    assert_eq!(
        history.body["items"].as_array().unwrap().len(),
        2,
        "the resent command ran once"
    );
    // The cancelled open never created its case.
    let cancelled_case = r.body["caseId"].as_str().unwrap();
    assert!(
        app.app
            .platform
            .events
            .load(&app.app.platform.config.default_tenant, cancelled_case.parse().unwrap())
            .await
            .unwrap()
            .is_empty()
    );
    engine.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn the_list_filters_searches_and_pages_over_http() {
    let app = TestApp::spawn().await;
    let alice = app.client("alice");
    for n in 0..7 {
        let mut body = complaint(&format!(
            "Complaint number {n} about {}",
            if n % 2 == 0 { "kettles" } else { "toasters" }
        ));
        if n < 3 {
            body["tags"] = json!(["vip"]);
        }
        let r = alice.post_wait("/api/v1/cases", &body).await.unwrap();
        if n % 3 == 0 {
            alice
                .post_wait(
                    &format!("/api/v1/cases/{}/assign", r.body["id"].as_str().unwrap()),
                    &json!({"assignee": "alice"}),
                )
                .await
                .unwrap();
        }
    }
    let count = |q: &str| {
        let alice = alice.clone();
        let q = q.to_owned();
        async move {
            let mut n = 0;
            let mut path = format!("/api/v1/cases?limit=2&{q}");
            loop {
                let r = alice.get(&path).await.unwrap();
                assert_eq!(r.status.as_u16(), 200, "{q}: {}", r.body);
                n += r.body["items"].as_array().unwrap().len();
                match r.body["nextCursor"].as_str() {
                    Some(c) => path = format!("/api/v1/cases?limit=2&{q}&cursor={c}"),
                    None => return n,
                }
            }
        }
    };
    assert_eq!(count("").await, 7);
    assert_eq!(count("assignee=me").await, 3);
    assert_eq!(count("tag=vip").await, 3);
    assert_eq!(count("q=toast").await, 3);
    assert_eq!(count("q=kettles&tag=vip").await, 2);
    assert_eq!(
        count("stage=new&status=open&queue=complaints&priority=normal&definition=customer-complaint").await,
        7
    );
    assert_eq!(count("sort=key").await, 7);
    let first = alice.get("/api/v1/cases?sort=key&limit=1").await.unwrap();
    assert_eq!(first.body["items"][0]["key"], "CMP-000001");
    app.stop().await;
}

#[tokio::test]
async fn definitions_import_as_new_versions() {
    let app = TestApp::spawn().await;
    let carol = app.client("carol");
    let yaml = casewire::DEMO_DEFINITIONS[0]
        .1
        .replace("name: Customer complaint", "name: Customer complaint (v2)");
    let r = carol.import_definition(&yaml).await.unwrap();
    assert_eq!((r.status.as_u16(), r.body["version"].as_u64()), (201, Some(2)));
    let v1 = carol
        .get("/api/v1/definitions/customer-complaint?version=1")
        .await
        .unwrap();
    assert_eq!(v1.body["name"], "Customer complaint");
    let latest = carol.get("/api/v1/definitions/customer-complaint").await.unwrap();
    assert_eq!(latest.body["name"], "Customer complaint (v2)");
    let list = carol.get("/api/v1/definitions").await.unwrap();
    assert_eq!(list.body["items"].as_array().unwrap().len(), 3);
    let bad = carol.import_definition("id: x\nname: X\n").await.unwrap();
    assert_eq!(
        (bad.status.as_u16(), bad.body["code"].as_str()),
        (422, Some("CW-INVALID-DEFINITION"))
    );
    // A message template that does not render, or names no kind, is refused
    // at import rather than failing each message later.
    for (broken, names) in [
        ("{{ case.key ", "templates.received"),
        ("{{ body | nosuchfilter }}", "templates.received"),
    ] {
        let yaml = casewire::DEMO_DEFINITIONS[0]
            .1
            .replace("Thank you for telling us.", broken);
        let r = carol.import_definition(&yaml).await.unwrap();
        assert_eq!(r.body["code"], "CW-INVALID-DEFINITION", "{broken}: {}", r.body);
        assert!(r.body["message"].as_str().unwrap().contains(names), "{}", r.body);
    }
    let yaml = casewire::DEMO_DEFINITIONS[0]
        .1
        .replace("    received:\n", "    receivd:\n");
    let r = carol.import_definition(&yaml).await.unwrap();
    assert!(
        r.body["message"].as_str().unwrap().contains("'receivd' is not a kind"),
        "{}",
        r.body
    );
    let missing = carol.get("/api/v1/definitions/nope").await.unwrap();
    assert_eq!(missing.status.as_u16(), 404);
    // New cases use the newest version; existing cases keep theirs.
    let case = open_waiting(&app, "Versioned").await;
    assert_eq!(case["definitionVersion"], 2);
    app.stop().await;
}

const ROUTES: &[(&str, &str)] = &[
    ("post", "/api/v1/cases"),
    ("get", "/api/v1/cases"),
    ("get", "/api/v1/cases/{id}"),
    ("get", "/api/v1/cases/{id}/history"),
    ("post", "/api/v1/cases/{id}/details"),
    ("post", "/api/v1/cases/{id}/assign"),
    ("post", "/api/v1/cases/{id}/unassign"),
    ("post", "/api/v1/cases/{id}/route"),
    ("post", "/api/v1/cases/{id}/stage"),
    ("post", "/api/v1/cases/{id}/priority"),
    ("post", "/api/v1/cases/{id}/comments"),
    ("post", "/api/v1/cases/{id}/tags"),
    ("delete", "/api/v1/cases/{id}/tags/{tag}"),
    ("post", "/api/v1/cases/{id}/links"),
    ("post", "/api/v1/cases/{id}/resolve"),
    ("post", "/api/v1/cases/{id}/close"),
    ("post", "/api/v1/cases/{id}/reopen"),
    ("post", "/api/v1/commands"),
    ("get", "/api/v1/commands/{id}"),
    ("post", "/api/v1/commands/{id}/cancel"),
    ("get", "/api/v1/commands/description"),
    ("get", "/api/v1/events/description"),
    ("get", "/api/v1/openapi.json"),
    ("get", "/api/v1/definitions"),
    ("post", "/api/v1/definitions"),
    ("get", "/api/v1/definitions/{id}"),
    ("get", "/api/v1/events"),
    ("post", "/api/v1/cases/{id}/attachments"),
    ("delete", "/api/v1/cases/{id}/attachments/{fileId}"),
    ("post", "/api/v1/files"),
    ("get", "/api/v1/files/{id}"),
    ("head", "/api/v1/files/{id}"),
    ("get", "/api/v1/files/{id}/info"),
    ("get", "/api/v1/files/{id}/url"),
    ("post", "/api/v1/files/uploads"),
    ("post", "/api/v1/files/uploads/{id}/complete"),
    ("get", "/api/v1/me/preferences"),
    ("put", "/api/v1/me/preferences"),
    ("get", "/api/v1/me/notifications"),
    ("post", "/api/v1/me/notifications/{id}/read"),
    ("post", "/api/v1/me/notifications/read-all"),
    ("put", "/api/v1/cases/{id}/watch"),
    ("delete", "/api/v1/cases/{id}/watch"),
    ("get", "/api/v1/webhooks"),
    ("post", "/api/v1/webhooks"),
    ("delete", "/api/v1/webhooks/{id}"),
    ("post", "/api/v1/webhooks/{id}/rotate"),
    ("get", "/api/v1/webhooks/{id}/deliveries"),
    ("get", "/api/v1/tasks"),
    ("post", "/api/v1/cases/{id}/tasks"),
    ("post", "/api/v1/cases/{id}/tasks/{taskId}/claim"),
    ("post", "/api/v1/cases/{id}/tasks/{taskId}/unclaim"),
    ("post", "/api/v1/cases/{id}/tasks/{taskId}/assign"),
    ("post", "/api/v1/cases/{id}/tasks/{taskId}/complete"),
    ("post", "/api/v1/cases/{id}/tasks/{taskId}/cancel"),
    ("post", "/api/v1/cases/{id}/tasks/{taskId}/retries"),
    ("post", "/api/v1/inbound/email"),
    ("get", "/api/v1/inbound/quarantine"),
    ("get", "/api/v1/inbound/quarantine/{id}"),
    ("get", "/api/v1/inbound/quarantine/{id}/raw"),
    ("post", "/api/v1/inbound/quarantine/{id}/release"),
    ("delete", "/api/v1/inbound/quarantine/{id}"),
    ("get", "/api/v1/calendars"),
    ("post", "/api/v1/calendars"),
    ("get", "/api/v1/calendars/{id}"),
    ("post", "/api/v1/calendars/{id}/holidays"),
    ("get", "/api/v1/cases/{id}/sla"),
    ("get", "/api/v1/cases/{id}/permissions"),
    ("get", "/api/v1/stats/cases"),
];

#[tokio::test]
async fn openapi_and_descriptions_cover_every_endpoint() {
    let app = TestApp::spawn().await;
    let http = reqwest::Client::new();
    let doc: Value = http
        .get(format!("{}/api/v1/openapi.json", app.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{}", doc["openapi"]);
    let paths = doc["paths"].as_object().unwrap();
    for (method, path) in ROUTES {
        let op = &paths.get(*path).unwrap_or_else(|| panic!("{path} is not documented"))[*method];
        assert!(op.is_object(), "{method} {path} is not documented");
        assert!(
            op["responses"].as_object().is_some_and(|r| !r.is_empty()),
            "{method} {path} has no responses"
        );
    }
    let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(
        documented,
        ROUTES.len(),
        "every documented operation is in the list above"
    );
    // Every $ref resolves.
    let text = doc.to_string();
    for r in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = &r[..r.find('"').unwrap()];
        assert!(doc["components"]["schemas"][name].is_object(), "dangling $ref {name}");
    }
    std::fs::write(app.dir.path().join("openapi.json"), &text).unwrap();

    let commands: Value = http
        .get(format!("{}/api/v1/commands/description", app.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(commands.as_object().unwrap().len(), 32);
    assert_eq!(
        commands["task.lock"]["required"],
        json!(["taskId", "workerId", "lockDuration"])
    );
    assert_eq!(commands["case.attach"]["required"], json!(["fileId"]));
    assert_eq!(commands["case.assign"]["required"], json!(["assignee"]));
    assert!(!commands.to_string().contains("$ref"), "descriptions stand alone");
    let events: Value = http
        .get(format!("{}/api/v1/events/description", app.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(events["casewire.case.opened.v1"]["properties"]["key"].is_object());
    assert!(events["casewire.case.incident-raised.v1"]["properties"]["taskId"].is_object());
    assert!(events["casewire.case.email-received.v1"]["properties"]["threadedBy"].is_object());
    assert_eq!(
        commands["case.recordBounce"]["required"],
        json!(["messageId", "recipients"])
    );
    assert_eq!(
        commands["case.recordSla"]["required"],
        json!(["metric", "cycle", "threshold", "at", "goal"])
    );
    assert!(events["casewire.case.sla-breached.v1"]["properties"]["threshold"].is_object());
    app.stop().await;
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = TestApp::spawn().await;
    open_waiting(&app, "Measured").await;
    let http = reqwest::Client::new();
    let mgmt = app.app.management_url();
    assert_eq!(
        http.get(format!("{mgmt}/health/live"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    let ready: Value = http
        .get(format!("{mgmt}/health/ready"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "up");
    assert_eq!(ready["checks"]["eventStore"]["status"], "up");
    let metrics = http
        .get(format!("{mgmt}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("casewire_commands_accepted_total"), "{metrics}");
    assert!(metrics.contains("casewire_http_request_duration_seconds"));
    // The management endpoints are not on the API port.
    let r = http.get(format!("{}/health/live", app.url())).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    app.stop().await;
}

#[tokio::test]
async fn pipelined_commands_are_judged_after_the_ones_before_them() {
    // With the engine stopped, commands pile up: a state-dependent check
    // must not judge the second stage move against the state before the first.
    let app = TestApp::spawn_with(Services {
        engine: false,
        projector: true,
        ws: true,
        notify: true,
        worker: true,
    })
    .await;
    let c = app.client("alice");
    let opened = c.post("/api/v1/cases", &complaint("Pipelined")).await.unwrap();
    let id = opened.body["caseId"].as_str().unwrap().to_owned();
    let engine = app.start_engine();
    let open_done = eventually(Duration::from_secs(10), || {
        let c = c.clone();
        let id = id.clone();
        async move {
            c.get(&format!("/api/v1/cases/{id}"))
                .await
                .ok()
                .filter(|r| r.status.as_u16() == 200)
        }
    })
    .await;
    assert!(open_done.is_some());
    engine.stop().await;

    let mut accepted = Vec::new();
    for (path, body) in [
        ("/stage", json!({"stage": "triage"})),
        ("/stage", json!({"stage": "investigating"})),
        ("/tags", json!({"tag": "pipelined"})),
        ("/tags/pipelined", Value::Null),
    ] {
        let r = if body.is_null() {
            c.send(Method::DELETE, &format!("/api/v1/cases/{id}{path}"), None, None)
                .await
                .unwrap()
        } else {
            c.post(&format!("/api/v1/cases/{id}{path}"), &body).await.unwrap()
        };
        assert_eq!(r.status.as_u16(), 202, "{path}: {}", r.body);
        accepted.push(r.body["commandId"].as_str().unwrap().to_owned());
    }
    // A command wrong in itself is still refused at once.
    let r = c
        .post(&format!("/api/v1/cases/{id}/stage"), &json!({"stage": "nirvana"}))
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 422);

    let engine = app.start_engine();
    for command in &accepted {
        let done = eventually(Duration::from_secs(10), || {
            let c = c.clone();
            let command = command.clone();
            async move {
                let r = c.get(&format!("/api/v1/commands/{command}")).await.ok()?;
                (r.body["status"] == "processed").then_some(())
            }
        })
        .await;
        assert!(done.is_some(), "command {command} processed");
    }
    let case = c.get(&format!("/api/v1/cases/{id}")).await.unwrap();
    assert_eq!(case.body["stage"], "investigating");
    assert_eq!(case.body["tags"], json!([]));
    assert_eq!(case.body["revision"], 5);
    engine.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn a_comment_says_whether_the_requester_wrote_it_whatever_the_caller_claims() {
    let app = TestApp::spawn().await;
    let dave = app.client("dave");
    let mut open = complaint("My kettle");
    open["requester"] = json!({"email": "dave@example.com"});
    let r = app.client("carol").post_wait("/api/v1/cases", &open).await.unwrap();
    assert_eq!(r.status.as_u16(), 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/cases/{id}/comments");
    let r = dave
        .post_wait(
            &path,
            &json!({"body": "Any news?", "visibility": "public", "byRequester": false}),
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    let r = app
        .client("carol")
        .post_wait(
            &path,
            &json!({"body": "Soon.", "visibility": "public", "byRequester": true}),
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    let history = app
        .client("carol")
        .get(&format!("/api/v1/cases/{id}/history"))
        .await
        .unwrap();
    let comments: Vec<(String, bool)> = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"].as_str().is_some_and(|t| t.contains("comment-added")))
        .map(|e| {
            (
                e["data"]["body"].as_str().unwrap_or_default().to_owned(),
                e["data"]["byRequester"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    assert_eq!(
        comments,
        [("Any news?".to_owned(), true), ("Soon.".to_owned(), false)],
        "{}",
        history.body
    );
    app.stop().await;
}

#[tokio::test]
async fn stats_count_only_the_cases_the_caller_may_see() {
    let app = TestApp::spawn().await;
    let carol = app.client("carol");
    let mut his = complaint("Dave's kettle");
    his["requester"] = json!({"email": "dave@example.com"});
    let his = carol.post_wait("/api/v1/cases", &his).await.unwrap().body;
    for title in ["Toaster", "Blender"] {
        carol.post_wait("/api/v1/cases", &complaint(title)).await.unwrap();
    }
    let r = carol
        .post_wait(
            &format!("/api/v1/cases/{}/resolve", his["id"].as_str().unwrap()),
            &json!({"resolution": "refunded"}),
        )
        .await
        .unwrap();
    assert!(r.status.is_success(), "{}", r.body);

    let staff = app.client("alice").get("/api/v1/stats/cases?days=7").await.unwrap();
    assert_eq!(staff.status.as_u16(), 200, "{}", staff.body);
    let s = &staff.body;
    assert_eq!((s["total"].as_u64(), s["open"].as_u64()), (Some(3), Some(2)), "{s}");
    assert_eq!(s["openByQueue"][0], json!({"label": "complaints", "count": 2}));
    let today = s["days"].as_array().unwrap().last().unwrap();
    assert_eq!(
        (today["created"].as_u64(), today["resolved"].as_u64()),
        (Some(3), Some(1)),
        "{s}"
    );
    assert_eq!(s["days"].as_array().unwrap().len(), 7);
    assert_eq!(s["truncated"], false);

    let dave = app.client("dave").get("/api/v1/stats/cases").await.unwrap();
    assert_eq!(
        (dave.body["total"].as_u64(), dave.body["open"].as_u64()),
        (Some(1), Some(0)),
        "only his own case"
    );

    for bad in ["days=0", "days=400", "color=red"] {
        let r = app
            .client("alice")
            .get(&format!("/api/v1/stats/cases?{bad}"))
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 400, "{bad}: {}", r.body);
    }
    app.stop().await;
}
