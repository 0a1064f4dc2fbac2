//! The WebSocket publisher from outside, through a Python `websockets`
//! client (tests/ws/driver.py): the attacker's cases first (no token, a
//! bad one, one in the URL, an expired one, another caller's refresh), then
//! resume without gaps or duplicates, a case routed away mid-stream,
//! internal comments, limits.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::time::Duration;

use casewire_e2e::TestApp;
use casewire_e2e::ws::{Frame, WsClient, python};
use serde_json::{Value, json};

fn ws_url(app: &TestApp) -> String {
    app.app.ws.as_ref().expect("the publisher runs").url.clone()
}

fn token(app: &TestApp, user: &str, secs: i64) -> String {
    app.app.api.dev_issuer.as_ref().unwrap().token_for(user, secs).unwrap()
}

/// Opens a case in queue `queue` as `who`, waiting for it; returns its id.
async fn open(app: &TestApp, who: &str, queue: &str) -> String {
    let mut body = casewire_e2e::complaint("Live case");
    body["queue"] = json!(queue);
    body["requester"] = json!({"name": "Dave", "email": "dave@example.com"});
    let r = app.client(who).post_wait("/api/v1/cases", &body).await.unwrap();
    assert_eq!(r.status.as_u16(), 201, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

async fn comment(app: &TestApp, who: &str, case: &str, body: &str, visibility: &str) {
    let r = app
        .client(who)
        .post_wait(
            &format!("/api/v1/cases/{case}/comments"),
            &json!({"body": body, "visibility": visibility}),
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
}

/// A socket of `user`, authenticated by header, past its `ready`.
async fn connect(py: &str, app: &TestApp, user: &str) -> WsClient {
    let (mut ws, first) = WsClient::connect(py, &ws_url(app), Some(&token(app, user, 3600))).await;
    assert_eq!(first, Frame::Text(json!({"type": "open"})));
    ws.expect("ready").await;
    ws
}

/// The events that arrive until the socket is quiet for a second.
async fn events(ws: &mut WsClient) -> Vec<Value> {
    ws.drain(Duration::from_secs(1))
        .await
        .into_iter()
        .filter_map(|f| match f {
            Frame::Text(v) if v["type"] == "event" => Some(v),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_socket_without_a_valid_token_never_sees_an_event() {
    let Some(py) = python() else { return };
    let app = TestApp::spawn_configured(|c| c.ws.auth_timeout_secs = 1).await;
    let url = ws_url(&app);
    open(&app, "carol", "support").await;

    // No header and no auth message: closed once the timeout passes.
    let (mut ws, _) = WsClient::connect(&py, &url, None).await;
    let (code, reason) = ws.closed(Duration::from_secs(10)).await.expect("closed");
    assert_eq!(code, 4401, "{reason}");
    assert!(reason.contains("no auth message"), "{reason}");

    // A forged token, by header and as the first message.
    let (mut ws, first) = WsClient::connect(&py, &url, Some("eyJhbGciOiJSUzI1NiJ9.e30.c2ln")).await;
    assert_eq!(first, Frame::Text(json!({"type": "open"})));
    assert_eq!(ws.closed(Duration::from_secs(10)).await.unwrap().0, 4401);
    let (mut ws, _) = WsClient::connect(&py, &url, None).await;
    ws.send(json!({"type": "auth", "token": "not-a-jwt"})).await;
    assert_eq!(ws.closed(Duration::from_secs(10)).await.unwrap().0, 4401);

    // Anything but auth first is a protocol error, even a subscribe.
    let (mut ws, _) = WsClient::connect(&py, &url, None).await;
    ws.send(json!({"type": "subscribe", "id": "a", "after": 0})).await;
    let frames = ws.drain(Duration::from_secs(5)).await;
    assert!(matches!(frames.last(), Some(Frame::Closed(4400, _))), "{frames:?}");
    assert!(
        !frames
            .iter()
            .any(|f| matches!(f, Frame::Text(v) if v["type"] == "event")),
        "no event before authentication: {frames:?}"
    );

    // A token in the URL is refused before the upgrade; so is another path.
    let t = token(&app, "carol", 3600);
    let (_, refused) = WsClient::connect(&py, &format!("{url}?access_token={t}"), None).await;
    assert!(
        matches!(refused, Frame::Refused(400, ref b) if b.contains("CW-TOKEN-IN-URL")),
        "{refused:?}"
    );
    let (_, refused) = WsClient::connect(&py, &url.replace("/api/v1/ws", "/api/v1/wss"), None).await;
    assert!(matches!(refused, Frame::Refused(404, _)), "{refused:?}");

    // An expired token is no token.
    let (mut ws, _) = WsClient::connect(&py, &url, Some(&token(&app, "carol", -120))).await;
    let (code, reason) = ws.closed(Duration::from_secs(10)).await.unwrap();
    assert_eq!(code, 4401, "{reason}");
    app.stop().await;
}

#[tokio::test]
async fn header_or_first_message_then_live_events_as_they_happen() {
    let Some(py) = python() else { return };
    let app = TestApp::spawn().await;
    let case = open(&app, "carol", "support").await;
    // By the first message, as browsers do.
    let (mut ws, _) = WsClient::connect(&py, &ws_url(&app), None).await;
    ws.send(json!({"type": "auth", "token": token(&app, "carol", 3600)}))
        .await;
    let ready = ws.expect("ready").await;
    assert_eq!(
        (ready["subject"].as_str(), ready["tenant"].as_str()),
        (Some("dev-carol"), Some("casewire"))
    );
    assert!(ready["position"].as_u64().unwrap() > 0);
    assert!(
        ws.subscribe("one", json!({"case": case}), None).await.is_empty(),
        "live only"
    );
    comment(&app, "carol", &case, "hello", "public").await;
    let got = events(&mut ws).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["subscription"], "one");
    assert_eq!(got[0]["event"]["subject"], case.as_str());
    assert_eq!(got[0]["position"], got[0]["event"]["position"]);
    // A bad message is an error, not a close.
    ws.command(json!({"raw": "{not json"})).await;
    assert_eq!(ws.expect("error").await["code"], "CW-VALIDATION");
    ws.send(json!({"type": "subscribe", "id": "one"})).await;
    assert!(ws.expect("error").await["message"].as_str().unwrap().contains("exists"));
    ws.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn a_resume_sends_every_missed_visible_event_once_then_live_ones() {
    let Some(py) = python() else { return };
    let app = TestApp::spawn().await;
    let case = open(&app, "carol", "support").await;
    let mut ws = connect(&py, &app, "carol").await;
    let first = ws.subscribe("s", json!({}), Some(0)).await;
    let seen = first.last().unwrap()["position"].as_u64().unwrap();
    ws.stop().await;
    // Missed while away: three comments; then resume after what was seen,
    // and more arrive while the catch-up runs.
    for i in 0..3 {
        comment(&app, "carol", &case, &format!("missed {i}"), "public").await;
    }
    let mut ws = connect(&py, &app, "carol").await;
    let resumed = ws.subscribe("s", json!({}), Some(seen)).await;
    let writer = {
        let c = app.client("carol");
        let case = case.clone();
        tokio::spawn(async move {
            for i in 0..5 {
                let body = json!({"body": format!("live {i}"), "visibility": "public"});
                c.post_wait(&format!("/api/v1/cases/{case}/comments"), &body)
                    .await
                    .unwrap();
            }
        })
    };
    writer.await.unwrap();
    let live = events(&mut ws).await;
    let positions: Vec<u64> = resumed
        .iter()
        .chain(&live)
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert_eq!(resumed.len(), 3, "the missed ones: {resumed:?}");
    assert_eq!(live.len(), 5, "then the live ones: {live:?}");
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "in order, once: {positions:?}"
    );
    assert!(positions[0] > seen);
    // Exactly the events the NDJSON stream has after `seen`, no more, no less.
    let (_, all) = casewire_e2e::streamed_cases(&app.url(), &token(&app, "carol", 3600)).await;
    let want: Vec<u64> = all
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .filter(|p| *p > seen)
        .collect();
    assert_eq!(positions, want);
    ws.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn a_case_routed_away_stops_reaching_the_worker_at_once() {
    let Some(py) = python() else { return };
    let app = TestApp::spawn().await;
    let case = open(&app, "carol", "support").await;
    // Alice works the support queue; her socket follows everything she sees.
    let mut alice = connect(&py, &app, "alice").await;
    alice.subscribe("mine", json!({}), None).await;
    comment(&app, "carol", &case, "before", "public").await;
    assert_eq!(events(&mut alice).await.len(), 1);
    let r = app
        .client("carol")
        .post_wait(&format!("/api/v1/cases/{case}/route"), &json!({"queue": "legal"}))
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    comment(&app, "carol", &case, "after", "public").await;
    let after = events(&mut alice).await;
    assert!(
        after.is_empty(),
        "nothing once routed away, not even the route: {after:?}"
    );
    // Her REST view agrees: the case is gone for her.
    let detail = app.client("alice").get(&format!("/api/v1/cases/{case}")).await.unwrap();
    assert_eq!(detail.status.as_u16(), 404);
    alice.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn a_requester_gets_public_comments_only_and_only_their_cases() {
    let Some(py) = python() else { return };
    let app = TestApp::spawn().await;
    let theirs = open(&app, "carol", "support").await;
    let mut other = casewire_e2e::complaint("Someone else's");
    other["requester"] = json!({"name": "Eve", "email": "eve@example.com"});
    let r = app.client("carol").post_wait("/api/v1/cases", &other).await.unwrap();
    let others = r.body["id"].as_str().unwrap().to_owned();
    let mut dave = connect(&py, &app, "dave").await;
    dave.subscribe("all", json!({}), None).await;
    for case in [&theirs, &others] {
        comment(&app, "carol", case, "internal note", "internal").await;
        comment(&app, "carol", case, "public answer", "public").await;
    }
    let got = events(&mut dave).await;
    let cases: HashSet<&str> = got.iter().filter_map(|e| e["event"]["subject"].as_str()).collect();
    assert_eq!(cases, HashSet::from([theirs.as_str()]));
    assert_eq!(got.len(), 1, "one public comment: {got:?}");
    assert_eq!(got[0]["event"]["data"]["visibility"], "public");
    dave.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn subscriptions_filter_by_queue_tag_and_assignee() {
    let Some(py) = python() else { return };
    let app = TestApp::spawn().await;
    let support = open(&app, "carol", "support").await;
    let complaints = open(&app, "carol", "complaints").await;
    let mut ws = connect(&py, &app, "alice").await;
    ws.subscribe("queue", json!({"queue": "complaints"}), None).await;
    ws.subscribe("mine", json!({"mine": true}), None).await;
    ws.subscribe("vip", json!({"tag": "vip"}), None).await;
    let c = app.client("carol");
    c.post_wait(
        &format!("/api/v1/cases/{support}/assign"),
        &json!({"assignee": "alice"}),
    )
    .await
    .unwrap();
    c.post_wait(&format!("/api/v1/cases/{complaints}/tags"), &json!({"tag": "vip"}))
        .await
        .unwrap();
    let got = events(&mut ws).await;
    let by: HashSet<(String, String)> = got
        .iter()
        .map(|e| {
            let sub = e["subscription"].as_str().unwrap().to_owned();
            (sub, e["event"]["subject"].as_str().unwrap().to_owned())
        })
        .collect();
    let want = HashSet::from([
        ("mine".to_owned(), support.clone()),
        ("queue".to_owned(), complaints.clone()),
        ("vip".to_owned(), complaints.clone()),
    ]);
    assert_eq!(by, want, "{got:?}");
    ws.send(json!({"type": "unsubscribe", "id": "vip"})).await;
    ws.expect("unsubscribed").await;
    ws.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn an_expiring_token_closes_the_socket_unless_refreshed() {
    let Some(py) = python() else { return };
    let app = TestApp::spawn().await;
    let url = ws_url(&app);
    let short = token(&app, "carol", 3);
    let (mut plain, _) = WsClient::connect(&py, &url, Some(&short)).await;
    plain.expect("ready").await;
    let (mut refreshed, _) = WsClient::connect(&py, &url, Some(&short)).await;
    refreshed.expect("ready").await;
    refreshed
        .send(json!({"type": "auth", "token": token(&app, "carol", 3600)}))
        .await;
    let ready = refreshed.expect("ready").await;
    assert!(ready["expiresAt"].as_i64().unwrap() > chrono::Utc::now().timestamp() + 3000);
    let (code, reason) = plain.closed(Duration::from_secs(15)).await.expect("closed at expiry");
    assert_eq!(code, 4408, "{reason}");
    assert!(reason.contains("resume after"), "{reason}");
    // The refreshed one lives on; a refresh as somebody else ends it.
    assert!(
        refreshed
            .next(Duration::from_millis(500))
            .await
            .is_none_or(|f| !matches!(f, Frame::Closed(..)))
    );
    refreshed
        .send(json!({"type": "auth", "token": token(&app, "alice", 3600)}))
        .await;
    assert_eq!(refreshed.closed(Duration::from_secs(10)).await.unwrap().0, 4403);
    app.stop().await;
}

#[tokio::test]
async fn sockets_are_limited_per_caller_and_per_process() {
    let Some(py) = python() else { return };
    let app = TestApp::spawn_configured(|c| {
        c.ws.max_per_principal = 2;
        c.ws.max_sockets = 3;
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(connect(&py, &app, "carol").await);
    }
    let (mut third, _) = WsClient::connect(&py, &ws_url(&app), Some(&token(&app, "carol", 3600))).await;
    assert_eq!(third.closed(Duration::from_secs(10)).await.unwrap().0, 4429);
    held.push(connect(&py, &app, "alice").await);
    let (mut fourth, _) = WsClient::connect(&py, &ws_url(&app), Some(&token(&app, "bob", 3600))).await;
    assert_eq!(fourth.closed(Duration::from_secs(10)).await.unwrap().0, 1013);
    // A closed socket gives its slot back.
    held.pop().unwrap().stop().await;
    let ok = casewire_e2e::eventually(Duration::from_secs(10), || async {
        let (mut ws, _) = WsClient::connect(&py, &ws_url(&app), Some(&token(&app, "bob", 3600))).await;
        match ws.next(Duration::from_secs(5)).await {
            Some(Frame::Text(v)) if v["type"] == "ready" => Some(()),
            _ => None,
        }
    })
    .await;
    assert!(ok.is_some(), "a freed slot is usable again");
    let metrics = reqwest::get(format!("{}/metrics", app.app.management_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("casewire_ws_closed_total"), "closes are counted");
    assert!(metrics.contains("casewire_ws_sockets"), "open sockets are a gauge");
    app.stop().await;
}

#[tokio::test]
async fn new_in_app_notifications_are_pushed_to_their_user_only() {
    let Some(py) = python() else { return };
    let app = TestApp::spawn_configured(|c| c.notify.send_every_ms = 100).await;
    let mut alice = connect(&py, &app, "alice").await;
    let mut bob = connect(&py, &app, "bob").await;
    let case = open(&app, "carol", "claims").await;
    let r = app
        .client("carol")
        .post_wait(&format!("/api/v1/cases/{case}/assign"), &json!({"assignee": "alice"}))
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    let pushed = alice.expect("notification").await;
    assert_eq!(pushed["notification"]["kind"], "assigned");
    assert_eq!(pushed["notification"]["caseId"], case.as_str());
    // Bob (manager of claims) hears of the new case in his queue, not of
    // alice's assignment.
    let bobs: Vec<Value> = bob
        .drain(Duration::from_secs(2))
        .await
        .into_iter()
        .filter_map(|f| match f {
            Frame::Text(v) if v["type"] == "notification" => Some(v),
            _ => None,
        })
        .collect();
    assert!(bobs.iter().all(|n| n["notification"]["user"] == "bob"), "{bobs:?}");
    assert!(bobs.iter().all(|n| n["notification"]["kind"] != "assigned"), "{bobs:?}");
    alice.stop().await;
    bob.stop().await;
    app.stop().await;
}
