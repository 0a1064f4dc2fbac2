//! The authorization matrix: every demo role × every way to reach a case
//! (detail, list, history, a command, the NDJSON stream, the WebSocket) × {own tenant,
//! other tenant} × {normal, confidential}, over HTTP against the embedded
//! platform with the shipped policy. The expectations are written out by
//! hand below — not derived from the policy — so a policy change that
//! widens access fails here. The README's table is this table.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use casewire::client::Client;
use casewire_e2e::TestApp;
use serde_json::{Value, json};

use Access::{Hidden, Read, Work};
use casewire_e2e::Access;

/// (user, role, normal case of own tenant, confidential case of own tenant).
/// Every case of the other tenant is `Hidden` for everyone.
const MATRIX: &[(&str, &str, Access, Access)] = &[
    ("carol", "case-admin", Work, Work),
    ("bob", "case-manager (all queues)", Work, Work),
    ("alice", "case-worker (queues support, complaints)", Work, Hidden),
    ("erin", "case-viewer", Read, Hidden),
    ("dave", "requester (own cases)", Read, Hidden),
    ("intake", "integration", Work, Hidden),
    ("gina", "case-admin of the other tenant (globex)", Work, Work),
];

const ACTIONS: [&str; 6] = ["detail", "list", "history", "command", "stream", "websocket"];

fn tenant_of(user: &str) -> &'static str {
    if user == "gina" { "globex" } else { "casewire" }
}

/// Opens a case as `who` and returns its id.
async fn open(c: &Client, title: &str, confidential: bool) -> String {
    let r = c
        .post_wait(
            "/api/v1/cases",
            &json!({
                "definition": "customer-complaint",
                "title": title,
                "queue": "support",
                "confidential": confidential,
                "requester": {"name": "Dave", "email": "Dave@Example.com"},
                "data": {"channel": "email", "product": "Kettle K200"},
            }),
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 201, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

async fn streamed_cases(app: &TestApp, user: &str) -> (HashSet<String>, Vec<Value>) {
    casewire_e2e::streamed_cases(&app.url(), &app.app.token(user).unwrap()).await
}

fn is_internal_comment(event: &Value) -> bool {
    casewire_e2e::is_internal_comment(event)
}

#[tokio::test]
async fn the_authorization_matrix_holds_over_rest_and_the_stream() {
    let app = TestApp::spawn().await;
    let python = casewire_e2e::ws::python();
    let ws_url = app.app.ws.as_ref().unwrap().url.clone();
    let (bob, gina) = (app.client("bob"), app.client("gina"));
    for (name, yaml) in casewire::DEMO_DEFINITIONS {
        let r = gina.import_definition(yaml).await.unwrap();
        assert_eq!(r.status.as_u16(), 201, "globex imports {name}: {}", r.body);
    }
    // (tenant, confidential) -> case id; opened by managers/admins, for Dave.
    let mut cases = BTreeMap::new();
    for (tenant, opener) in [("casewire", &bob), ("globex", &gina)] {
        for confidential in [false, true] {
            let title = format!("{tenant} case, confidential: {confidential}");
            cases.insert((tenant, confidential), open(opener, &title, confidential).await);
        }
    }
    // An internal and a public comment on each case, by its tenant's admin.
    for ((tenant, _), id) in &cases {
        let admin = app.client(if *tenant == "globex" { "gina" } else { "carol" });
        for (body, visibility) in [("internal note", "internal"), ("public answer", "public")] {
            let r = admin
                .post_wait(
                    &format!("/api/v1/cases/{id}/comments"),
                    &json!({"body": body, "visibility": visibility}),
                )
                .await
                .unwrap();
            assert_eq!(r.status.as_u16(), 200, "{}", r.body);
        }
    }

    let mut cells = 0;
    let mut table = Vec::new();
    let mut expected_tags: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for &(user, role, normal, confidential) in MATRIX {
        let c = app.client(user);
        let list = c.get("/api/v1/cases?limit=100").await.unwrap();
        assert_eq!(list.status.as_u16(), 200, "{user}: list");
        let listed: HashSet<String> = list.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect();
        let (streamed, events) = streamed_cases(&app, user).await;
        // The WebSocket, from position 0, through a Python client.
        let (ws_seen, ws_events) = match &python {
            Some(py) => casewire_e2e::ws::ws_cases(py, &ws_url, &app.app.token(user).unwrap()).await,
            None => (streamed.clone(), events.clone()),
        };
        let mut row = vec![user.to_owned(), role.to_owned()];
        for ((tenant, is_confidential), id) in &cases {
            let own = *tenant == tenant_of(user);
            let expected = match (own, is_confidential) {
                (false, _) => Hidden,
                (true, false) => normal,
                (true, true) => confidential,
            };
            let cell = format!("{user} on {tenant} confidential={is_confidential}");
            let tag = format!("by-{user}");
            // Requesters read public comments only, wherever comments show.
            let reads_internal = user != "dave";
            assert_eq!(ws_seen.contains(id), expected != Hidden, "{cell}: websocket");
            if casewire_e2e::assert_cell(&c, &cell, id, expected, (&listed, &streamed), &tag, reads_internal).await {
                expected_tags.entry(id.clone()).or_default().push(tag);
            }
            cells += ACTIONS.len();
            row.push(expected.label().to_owned());
        }
        let internal_streamed = events.iter().any(is_internal_comment);
        assert_eq!(
            internal_streamed,
            user != "dave",
            "{user}: internal comments in the stream"
        );
        assert_eq!(
            ws_events.iter().any(is_internal_comment),
            user != "dave",
            "{user}: internal comments over the WebSocket"
        );
        // The same events, in the same order, as the NDJSON stream.
        let ids = |evs: &[Value]| evs.iter().map(|e| e["id"].clone()).collect::<Vec<_>>();
        assert_eq!(ids(&ws_events), ids(&events), "{user}: WebSocket and stream agree");
        table.push(row);
    }
    // Nothing refused was written: each case carries exactly the tags of
    // the cells that were allowed to change it.
    for ((tenant, _), id) in &cases {
        let admin = app.client(if *tenant == "globex" { "gina" } else { "carol" });
        let case = admin.get(&format!("/api/v1/cases/{id}")).await.unwrap().body;
        let mut got: Vec<String> = case["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_owned())
            .collect();
        got.sort();
        let mut want = expected_tags.get(id).cloned().unwrap_or_default();
        want.sort();
        assert_eq!(got, want, "{tenant}: only allowed commands changed the case");
    }
    assert_eq!(cells, MATRIX.len() * ACTIONS.len() * cases.len());
    println!("authorization matrix: {cells} cells asserted");
    println!("| user | role | casewire, normal | casewire, confidential | globex, normal | globex, confidential |");
    println!("|---|---|---|---|---|---|");
    for row in table {
        println!("| {} |", row.join(" | "));
    }
    app.stop().await;
}

#[tokio::test]
async fn keys_and_lookups_never_cross_tenants() {
    let app = TestApp::spawn().await;
    let (carol, gina) = (app.client("carol"), app.client("gina"));
    for (_, yaml) in casewire::DEMO_DEFINITIONS {
        assert_eq!(gina.import_definition(yaml).await.unwrap().status.as_u16(), 201);
    }
    let ours = open(&carol, "ours", false).await;
    let theirs = open(&gina, "theirs", false).await;
    let key_of = |c: &Client, id: String| {
        let c = c.clone();
        async move { c.get(&format!("/api/v1/cases/{id}")).await.unwrap().body["key"].clone() }
    };
    // Each tenant numbers its own cases: both got the first key.
    assert_eq!(key_of(&carol, ours.clone()).await, "CMP-000001");
    assert_eq!(key_of(&gina, theirs.clone()).await, "CMP-000001");
    // The same key resolves to each caller's own case.
    assert_eq!(carol.get("/api/v1/cases/CMP-000001").await.unwrap().body["id"], ours);
    assert_eq!(gina.get("/api/v1/cases/CMP-000001").await.unwrap().body["id"], theirs);
    // Another tenant's id is a plain 404 everywhere, for commands too.
    for path in [
        format!("/api/v1/cases/{theirs}"),
        format!("/api/v1/cases/{theirs}/history"),
    ] {
        assert_eq!(carol.get(&path).await.unwrap().status.as_u16(), 404, "{path}");
    }
    let r = carol
        .post(
            "/api/v1/commands",
            &json!({"type": "case.tag", "caseId": theirs, "data": {"tag": "x"}}),
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 404, "{}", r.body);
    // Linking to a case one can not see says no more than "no such case".
    let r = carol
        .post(&format!("/api/v1/cases/{ours}/links"), &json!({"target": theirs}))
        .await
        .unwrap();
    assert_eq!(
        (r.status.as_u16(), r.body["code"].as_str()),
        (422, Some("CW-VALIDATION"))
    );
    // Definitions are per tenant, and only admins import them.
    let r = app
        .client("bob")
        .import_definition(casewire::DEMO_DEFINITIONS[0].1)
        .await
        .unwrap();
    assert_eq!(
        (r.status.as_u16(), r.body["code"].as_str()),
        (403, Some("CW-FORBIDDEN"))
    );
    app.stop().await;
}

#[tokio::test]
async fn commands_of_others_are_as_visible_as_their_case() {
    let app = TestApp::spawn().await;
    let bob = app.client("bob");
    let secret = open(&bob, "secret", true).await;
    let r = bob
        .post(&format!("/api/v1/cases/{secret}/tags"), &json!({"tag": "quiet"}))
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 202, "{}", r.body);
    let command = r.body["commandId"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/commands/{command}");
    assert_eq!(bob.get(&path).await.unwrap().status.as_u16(), 200, "own command");
    assert_eq!(
        app.client("carol").get(&path).await.unwrap().status.as_u16(),
        200,
        "admin"
    );
    for user in ["alice", "erin", "dave", "gina"] {
        let r = app.client(user).get(&path).await.unwrap();
        assert_eq!(r.status.as_u16(), 404, "{user}: {}", r.body);
        let r = app
            .client(user)
            .post(&format!("{path}/cancel"), &json!({}))
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 404, "{user}: cancel {}", r.body);
    }
    app.stop().await;
}

#[tokio::test]
async fn an_unreachable_policy_server_is_a_503_not_an_open_door() {
    // A port nobody listens on stands for an OPA server that is down.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = casewire_e2e::test_config(dir.path());
    config.policy.engine = casewire_runtime::config::PolicyEngineKind::OpaServer;
    config.policy.opa_url = Some(format!("http://{closed}"));
    config.policy.opa_timeout_ms = 500;
    let app = TestApp::start_with(dir, config, casewire::embedded::Services::default(), false).await;
    let carol = app.client("carol");
    for path in ["/api/v1/cases", "/api/v1/definitions"] {
        let r = carol.get(path).await.unwrap();
        assert_eq!(
            (r.status.as_u16(), r.body["code"].as_str()),
            (503, Some("CW-UNAVAILABLE")),
            "{path}"
        );
        assert!(r.retry_after.is_some(), "{path}: Retry-After");
    }
    let r = carol.import_definition(casewire::DEMO_DEFINITIONS[0].1).await.unwrap();
    assert_eq!(r.status.as_u16(), 503, "nothing is imported without a decision");
    app.stop().await;
}

#[tokio::test]
async fn a_changed_policy_file_takes_effect_without_a_restart() {
    let policies = tempfile::tempdir().unwrap();
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/casewire/authz.rego");
    let target = policies.path().join("authz.rego");
    std::fs::copy(&source, &target).unwrap();
    let dir = policies.path().to_owned();
    let app = TestApp::spawn_configured(|c| {
        c.policy.dir = Some(dir);
        c.policy.reload_secs = 1;
    })
    .await;
    let id = open(&app.client("bob"), "for viewers", false).await;
    let erin = app.client("erin");
    let path = format!("/api/v1/cases/{id}");
    assert_eq!(erin.get(&path).await.unwrap().status.as_u16(), 200);

    // Viewers lose sight of everything.
    let text = std::fs::read_to_string(&source).unwrap();
    let stricter = text.replace(
        "clauses contains {\"confidential\": false} if is_viewer",
        "clauses contains {\"confidential\": false} if {\n\tis_viewer\n\tfalse\n}",
    );
    assert_ne!(stricter, text, "the rule to change is in the policy");
    // A newer mtime than the first load, even on coarse-grained file systems.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    std::fs::write(&target, stricter).unwrap();
    let hidden = casewire_e2e::eventually(Duration::from_secs(10), || {
        let (erin, path) = (erin.clone(), path.clone());
        async move { (erin.get(&path).await.unwrap().status.as_u16() == 404).then_some(()) }
    })
    .await;
    assert!(hidden.is_some(), "the stricter policy is in force within seconds");

    // A broken file keeps the policy in force, and access stays decided.
    std::fs::write(&target, "package casewire.authz\n\nthis is not rego").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(erin.get(&path).await.unwrap().status.as_u16(), 404);
    assert_eq!(app.client("bob").get(&path).await.unwrap().status.as_u16(), 200);
    app.stop().await;
}

/// `GET /cases/{id}/permissions` says what each caller may do, as the
/// commands are decided: a worker works, a viewer reads, a requester
/// comments publicly; another tenant's admin does not see the case.
#[tokio::test]
async fn a_cases_permissions_are_the_policys_decisions_for_the_caller() {
    let app = TestApp::spawn().await;
    let mut open = casewire_e2e::complaint("Permissions");
    open["requester"] = json!({"email": "dave@example.com"});
    let r = app.client("carol").post_wait("/api/v1/cases", &open).await.unwrap();
    let path = format!("/api/v1/cases/{}/permissions", r.body["id"].as_str().unwrap());
    let of = |user: &'static str| {
        let (app, path) = (&app, path.clone());
        async move {
            let r = app.client(user).get(&path).await.unwrap();
            let actions: HashSet<String> = r.body["actions"]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            (r.status.as_u16(), actions)
        }
    };
    let (status, alice) = of("alice").await;
    assert_eq!(status, 200);
    for a in [
        "case.assign",
        "case.moveToStage",
        "case.comment.internal",
        "case.comment.read.internal",
    ] {
        assert!(alice.contains(a), "alice may {a}: {alice:?}");
    }
    let (_, erin) = of("erin").await;
    assert!(
        erin.contains("case.read") && !erin.contains("case.assign") && !erin.contains("case.comment.public"),
        "{erin:?}"
    );
    let (_, dave) = of("dave").await;
    assert!(
        dave.contains("case.comment.public") && !dave.contains("case.comment.internal"),
        "{dave:?}"
    );
    assert!(
        !dave.contains("case.comment.read.internal") && !dave.contains("case.moveToStage"),
        "{dave:?}"
    );
    assert_eq!(of("gina").await.0, 404, "another tenant's admin");
    app.stop().await;
}
