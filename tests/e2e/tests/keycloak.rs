//! The attacker's matrix: tokens of the Keycloak-shaped provider
//! (tests/oidc/provider.mjs) as a real realm issues them — every user with
//! Keycloak's default roles, a requester whose profile has no e-mail, one
//! whose unverified address is another person's, a manager nobody put in a
//! queue group, and a token whose `tenant` claim names another tenant —
//! against every way to reach a case: detail, list, history, a command and
//! the NDJSON stream. Each row was a hole before; the expectations are
//! written by hand, and the README's table is this table. The cases are
//! complaints, whose definition names access groups (view: complaints and
//! support; work: complaints), and a ticket of a definition that names none.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashSet};

use casewire::client::Client;
use casewire_e2e::{TestApp, is_internal_comment, streamed_cases};
use casewire_oidc::TrustedIssuer;
use casewire_ports::contract::skip;
use serde_json::{Value, json};

use Access::{Hidden, Read, Work};
use casewire_e2e::Access;

/// The cases every row is tried on, all in queue support.
const CASES: [&str; 4] = [
    "dave's complaint",
    "dave's complaint, confidential",
    "norah's own complaint",
    "a ticket (no access groups)",
];

/// (user, what the token is, access to each of CASES, reads internal comments).
const MATRIX: &[(&str, &str, [Access; 4], bool)] = &[
    (
        "dave",
        "requester with default roles, verified e-mail",
        [Read, Hidden, Hidden, Hidden],
        false,
    ),
    (
        "norah",
        "requester without an e-mail claim",
        [Hidden, Hidden, Read, Hidden],
        false,
    ),
    (
        "mallory",
        "requester, unverified e-mail of dave",
        [Hidden, Hidden, Hidden, Hidden],
        false,
    ),
    (
        "mona",
        "case-manager without queue groups",
        [Hidden, Hidden, Hidden, Read],
        true,
    ),
    (
        "alice",
        "case-worker, queues support + complaints",
        [Work, Hidden, Work, Work],
        true,
    ),
    (
        "sam",
        "case-worker, queue support only (a view group, not a work group)",
        [Read, Hidden, Read, Work],
        true,
    ),
];

/// A definition without access groups.
const TICKET: &str = "id: ticket\nname: Ticket\nkeyPrefix: TKT\nstages: [{id: new}, {id: done}]\ninitialStage: new\ntransitions: {new: [done]}\nterminalStages: [done]\npriorities: [{id: normal}]\ndefaultPriority: normal\ndefaultQueue: support\n";

fn base() -> Option<String> {
    let Ok(url) = std::env::var("CASEWIRE_TEST_OIDC") else {
        skip("set CASEWIRE_TEST_OIDC=http://127.0.0.1:PORT (tests/run starts tests/oidc/provider.mjs and sets it)");
        return None;
    };
    Some(url.trim_end_matches('/').to_owned())
}

async fn user_token(base: &str, user: &str) -> String {
    casewire_e2e::provider_token(
        base,
        "casewire",
        "casewire-tests",
        &[("grant_type", "password"), ("username", user), ("password", user)],
    )
    .await
}

async fn spawn(base: &str) -> TestApp {
    spawn_with(base, |_| {}).await
}

/// A platform that trusts the provider's realms `casewire` and `globex`,
/// with `configure` applied too.
async fn spawn_with(base: &str, configure: impl FnOnce(&mut casewire_runtime::Config)) -> TestApp {
    let trust = |realm: &str| TrustedIssuer {
        issuer: format!("{base}/realms/{realm}"),
        audiences: vec!["casewire".into()],
        jwks_uri: None,
        tenant: None,
    };
    TestApp::spawn_configured(|c| {
        c.auth.issuers = vec![trust("casewire"), trust("globex")];
        configure(c);
    })
    .await
}

/// Opens a complaint in queue support (where alice works) and comments on
/// it internally and publicly as the admin.
async fn open(app: &TestApp, opener: &Client, title: &str, extra: Value) -> String {
    let mut body = json!({
        "definition": "customer-complaint", "title": title, "queue": "support",
        "data": {"channel": "email", "product": "Kettle K200"},
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = opener.post_wait("/api/v1/cases", &body).await.unwrap();
    assert_eq!(r.status.as_u16(), 201, "{title}: {}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    for (text, visibility) in [("internal note", "internal"), ("public answer", "public")] {
        let r = app
            .client("carol")
            .post_wait(
                &format!("/api/v1/cases/{id}/comments"),
                &json!({"body": text, "visibility": visibility}),
            )
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    }
    id
}

#[tokio::test]
async fn keycloak_shaped_tokens_see_exactly_what_the_policy_allows() {
    let Some(base) = base() else { return };
    let app = spawn(&base).await;
    let dave_requester = json!({"requester": {"name": "Dave", "email": "dave@example.com"}});
    let bob = app.client("bob");
    let norah = Client::new(&app.url(), &user_token(&base, "norah").await);
    // Norah opens a case herself; it names no requester address at all.
    let r = app.client("carol").import_definition(TICKET).await.unwrap();
    assert_eq!(r.status.as_u16(), 201, "{}", r.body);
    let ids = [
        open(&app, &bob, CASES[0], dave_requester.clone()).await,
        open(&app, &bob, CASES[1], {
            let mut v = dave_requester.clone();
            v["confidential"] = json!(true);
            v
        })
        .await,
        open(&app, &norah, CASES[2], json!({})).await,
        open(&app, &bob, CASES[3], json!({"definition": "ticket", "data": {}})).await,
    ];

    let mut cells = 0;
    let mut tagged: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut table = Vec::new();
    for &(user, what, access, reads_internal) in MATRIX {
        let token = user_token(&base, user).await;
        let c = Client::new(&app.url(), &token);
        let list = c.get("/api/v1/cases?limit=100").await.unwrap();
        assert_eq!(list.status.as_u16(), 200, "{user}: list {}", list.body);
        let listed: HashSet<String> = list.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect();
        let (streamed, events) = streamed_cases(&app.url(), &token).await;
        let mut row = vec![user.to_owned(), what.to_owned()];
        for ((case, id), expected) in CASES.iter().zip(&ids).zip(access) {
            let cell = format!("{user} on {case}");
            let tag = format!("by-{user}");
            if casewire_e2e::assert_cell(&c, &cell, id, expected, (&listed, &streamed), &tag, reads_internal).await {
                tagged.entry(id.clone()).or_default().push(tag);
            }
            cells += 5;
            row.push(expected.label().to_owned());
        }
        let internal_streamed = events.iter().any(is_internal_comment);
        assert_eq!(
            internal_streamed, reads_internal,
            "{user}: internal comments in the stream"
        );
        table.push(row);
    }

    // Trudy's token is the casewire realm's, with a claim naming globex.
    let trudy = Client::new(&app.url(), &user_token(&base, "trudy").await);
    for path in ["/api/v1/cases".to_owned(), format!("/api/v1/cases/{}", ids[0])] {
        let r = trudy.get(&path).await.unwrap();
        assert_eq!(
            (r.status.as_u16(), r.body["code"].as_str()),
            (401, Some("CW-UNAUTHENTICATED")),
            "{path}: {}",
            r.body
        );
        assert!(r.body["message"].as_str().unwrap().contains("tenant"), "{}", r.body);
    }
    let mut row = vec!["trudy".to_owned(), "casewire realm, `tenant: globex` claim".to_owned()];
    row.extend(CASES.iter().map(|_| "401".to_owned()));
    table.push(row);

    // Nothing refused was written.
    for id in &ids {
        let case = app
            .client("carol")
            .get(&format!("/api/v1/cases/{id}"))
            .await
            .unwrap()
            .body;
        let mut got: Vec<String> = case["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_owned())
            .collect();
        got.sort();
        let mut want = tagged.get(id).cloned().unwrap_or_default();
        want.sort();
        assert_eq!(got, want, "only allowed commands changed {id}");
    }
    assert_eq!(cells, MATRIX.len() * CASES.len() * 5);
    println!("keycloak matrix: {cells} cells asserted, plus trudy's 401s");
    println!("| user | token | {} |", CASES.join(" | "));
    println!("|---|---|---|---|---|---|");
    for row in table {
        println!("| {} |", row.join(" | "));
    }
    app.stop().await;
}

/// The ways in that this change added, with tokens as Keycloak issues
/// them: the inbound mail webhook takes mail only from the integration's
/// service account of the mailbox's tenant (every user with default roles
/// is refused, another realm's admin finds no mailbox), and Camunda's
/// fetch-and-lock hands tasks to that account only: a requester who may
/// read the case and a manager without groups lock nothing.
#[tokio::test]
async fn keycloak_shaped_tokens_deliver_mail_and_lock_tasks_only_as_the_integration() {
    let Some(base) = base() else { return };
    let app = spawn_with(&base, |c| {
        c.email.mailboxes = vec![casewire_runtime::config::MailboxConfig {
            data: json!({"channel": "email", "product": "unknown"}),
            ..casewire_runtime::config::MailboxConfig::new(
                "support",
                "casewire",
                "support@casewire.example",
                "customer-complaint",
            )
        }];
    })
    .await;
    let mail = "From: Dave <dave@example.com>\r\nTo: support@casewire.example\r\nSubject: Kettle leaks\r\n\
                Message-ID: <kc-1@example.com>\r\n\r\nIt leaks.\r\n";
    let http = reqwest::Client::new();
    let deliver = |token: String| {
        let (http, url) = (
            http.clone(),
            format!("{}/api/v1/inbound/email?mailbox=support", app.url()),
        );
        async move {
            let r = http.post(url).bearer_auth(token).body(mail).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    for (user, _, _, _) in MATRIX {
        let (status, body) = deliver(user_token(&base, user).await).await;
        assert_eq!(status, 403, "{user}: {body}");
    }
    let gina = casewire_e2e::provider_token(
        &base,
        "globex",
        "casewire-tests",
        &[("grant_type", "password"), ("username", "gina"), ("password", "gina")],
    )
    .await;
    let (status, body) = deliver(gina.clone()).await;
    assert_eq!(status, 404, "another tenant's admin: {body}");
    let bot =
        casewire_e2e::provider_token(&base, "casewire", "intake-bot", &[("grant_type", "client_credentials")]).await;
    let (status, body) = deliver(bot.clone()).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("case")), "{body}");
    let case = body["caseId"].as_str().unwrap().to_owned();

    // The quarantine is an admin's: neither the delivering service account
    // nor a requester reads it, and another realm's admin sees none of it.
    let quarantine = |token: String| {
        let url = format!("{}/api/v1/inbound/quarantine", app.url());
        let http = http.clone();
        async move {
            let r = http.get(url).bearer_auth(token).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    for (who, token) in [("intake-bot", bot.clone()), ("dave", user_token(&base, "dave").await)] {
        let (status, body) = quarantine(token).await;
        assert_eq!(status, 403, "{who}: {body}");
    }
    let (status, body) = quarantine(gina.clone()).await;
    assert_eq!(
        (status, &body["items"]),
        (200, &json!([])),
        "another tenant's admin: {body}"
    );
    // A case's SLA clocks are staff's: its requester reads the case, not them.
    let dave_sla = Client::new(&app.url(), &user_token(&base, "dave").await)
        .get(&format!("/api/v1/cases/{case}/sla"))
        .await
        .unwrap();
    assert_eq!(dave_sla.status.as_u16(), 403, "{}", dave_sla.body);
    // Nor may he filter or sort the list by them; what he may do on his
    // case is a requester's, and another realm's admin does not see it.
    let dave = Client::new(&app.url(), &user_token(&base, "dave").await);
    for query in ["sla=breached", "sort=slaDue"] {
        let r = dave.get(&format!("/api/v1/cases?{query}")).await.unwrap();
        assert_eq!(r.status.as_u16(), 403, "dave ?{query}: {}", r.body);
    }
    let perms = dave.get(&format!("/api/v1/cases/{case}/permissions")).await.unwrap();
    assert_eq!(perms.status.as_u16(), 200, "{}", perms.body);
    let actions: Vec<&str> = perms.body["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(actions.contains(&"case.read"), "{actions:?}");
    for staff in [
        "case.assign",
        "case.comment.internal",
        "case.comment.read.internal",
        "case.moveToStage",
    ] {
        assert!(!actions.contains(&staff), "dave may not {staff}: {actions:?}");
    }
    let r = Client::new(&app.url(), &gina)
        .get(&format!("/api/v1/cases/{case}/permissions"))
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 404, "another realm's admin: {}", r.body);

    let task = app
        .client("carol")
        .post_wait(
            &format!("/api/v1/cases/{case}/tasks"),
            &json!({"kind": "external", "name": "Score", "topic": "kc-score"}),
        )
        .await
        .unwrap();
    assert_eq!(task.status.as_u16(), 200, "{}", task.body);
    let fetch = |token: String| {
        let (http, url) = (
            http.clone(),
            format!("{}/engine-rest/external-task/fetchAndLock", app.url()),
        );
        async move {
            let body = json!({"workerId": "kc", "maxTasks": 5,
                              "topics": [{"topicName": "kc-score", "lockDuration": 60000}]});
            let r = http.post(url).bearer_auth(token).json(&body).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // Dave may read the case (he is its requester) but tasks are internal work.
    let dave = user_token(&base, "dave").await;
    assert_eq!(
        Client::new(&app.url(), &dave)
            .get(&format!("/api/v1/cases/{case}"))
            .await
            .unwrap()
            .status
            .as_u16(),
        200
    );
    for user in ["dave", "mona", "norah"] {
        let (status, body) = fetch(user_token(&base, user).await).await;
        assert!(
            status == 403 || body == json!([]),
            "{user} locked a task: {status} {body}"
        );
    }
    let (status, body) = fetch(bot).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body.as_array().map(Vec::len),
        Some(1),
        "the integration locks it: {body}"
    );
    app.stop().await;
}
