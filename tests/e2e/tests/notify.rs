//! Notifications from outside: a real SMTP server (aiosmtpd) counts the
//! e-mails, a webhook endpoint verifies signatures with the
//! `standardwebhooks` package, and a controllable clock drives quiet hours,
//! digests and a skewed timestamp. Attacker's cases: a watcher who may not
//! see the case, internal comments, another user's inbox item, a private
//! webhook target, a non-admin managing webhooks.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use casewire::client::Client;
use casewire::embedded::Services;
use casewire_e2e::notify::{Receiver, SmtpSink};
use casewire_e2e::ws::python;
use casewire_e2e::{TestApp, eventually};
use casewire_notify_publisher::Clock;
use casewire_runtime::config::SecretUrl;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// Opens a case as carol in `queue`, for requester dave@example.com.
async fn open(c: &Client, queue: &str, confidential: bool) -> String {
    let mut body = casewire_e2e::complaint("Kettle leaks");
    body["queue"] = json!(queue);
    body["confidential"] = json!(confidential);
    body["requester"] = json!({"name": "Dave", "email": "dave@example.com"});
    let r = c.post_wait("/api/v1/cases", &body).await.unwrap();
    assert_eq!(r.status.as_u16(), 201, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

async fn step(c: &Client, case: &str, path: &str, body: Value) {
    let r = c
        .post_wait(&format!("/api/v1/cases/{case}/{path}"), &body)
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{path}: {}", r.body);
}

/// Signs `user` in once, so the directory knows them.
async fn sign_in(app: &TestApp, user: &str) -> Client {
    let c = app.client(user);
    assert_eq!(c.get("/api/v1/me/preferences").await.unwrap().status.as_u16(), 200);
    c
}

async fn inbox(c: &Client) -> Value {
    c.get("/api/v1/me/notifications?limit=200").await.unwrap().body
}

/// Waits until `check` holds, then a little longer, and checks it still
/// holds (nothing more arrives).
async fn settles<F: Fn() -> bool>(what: &str, check: F) {
    let ok = eventually(Duration::from_secs(20), || async { check().then_some(()) }).await;
    assert!(ok.is_some(), "{what}: never");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(check(), "{what}: not stable");
}

fn configure(smtp: Option<&SmtpSink>, c: &mut casewire_runtime::Config) {
    c.notify.smtp_url = smtp.map(|s| SecretUrl::new(s.url()));
    c.notify.send_every_ms = 100;
}

#[tokio::test]
async fn an_assignment_reaches_the_inbox_and_the_mailbox_exactly_once() {
    let Some(py) = python() else { return };
    let sink = SmtpSink::start(&py).await;
    let app = TestApp::spawn_configured(|c| configure(Some(&sink), c)).await;
    let (alice, carol) = (sign_in(&app, "alice").await, app.client("carol"));
    let case = open(&carol, "support", false).await;
    step(&carol, &case, "assign", json!({"assignee": "alice"})).await;

    // A queue member hears of the new case, the assignee of the assignment.
    let c = alice.clone();
    let got = eventually(Duration::from_secs(20), || {
        let c = c.clone();
        async move {
            let b = inbox(&c).await;
            (b["items"].as_array().unwrap().len() == 2).then_some(b)
        }
    })
    .await
    .expect("two in-app notifications");
    let kinds: Vec<&str> = got["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["assigned", "queue"], "newest first");
    assert_eq!(got["unread"], 2);
    settles("two e-mails to alice", || sink.to("alice@casewire.example").len() == 2).await;
    let mail = &sink.to("alice@casewire.example")[0]["data"];
    let mail = mail.as_str().unwrap();
    assert!(mail.contains("Auto-Submitted: auto-generated"), "{mail}");
    assert!(
        mail.contains(&format!("References: <case-{case}@casewire.local>")),
        "{mail}"
    );
    assert!(mail.contains("Message-ID: <"), "{mail}");
    assert!(mail.contains("multipart/alternative"), "{mail}");

    // Planning the same events again (a redelivery, a replay) plans nothing.
    let platform = app.app.platform.clone();
    let records = platform.events.read_all(1, 1000).await.unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let planner = casewire_notify_publisher::plan::Planner {
        link_base: "http://x".into(),
        policy: platform.policy(&shutdown).unwrap(),
        access: casewire_application::AccessCache::default(),
        cases: casewire_application::CaseCache::default(),
        platform: platform.clone(),
    };
    let again = planner.plan(&records, Utc::now()).await.unwrap();
    assert!(!again.is_empty(), "the same deliveries are planned");
    assert_eq!(
        platform.notifications.record(again, vec![]).await.unwrap(),
        0,
        "and none is new"
    );
    settles("still two each", || sink.to("alice@casewire.example").len() == 2).await;
    assert_eq!(inbox(&alice).await["items"].as_array().unwrap().len(), 2);

    // Read one, then all; someone else can not touch alice's.
    let id = got["items"][0]["id"].as_str().unwrap().to_owned();
    let bob = app.client("bob");
    let r = bob
        .post(&format!("/api/v1/me/notifications/{id}/read"), &json!({}))
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 404, "another user's item is not found");
    let r = alice
        .post(&format!("/api/v1/me/notifications/{id}/read"), &json!({}))
        .await
        .unwrap();
    assert_eq!((r.status.as_u16(), r.body["marked"].as_u64()), (200, Some(1)));
    assert_eq!(inbox(&alice).await["unread"], 1);
    let r = alice
        .post("/api/v1/me/notifications/read-all", &json!({}))
        .await
        .unwrap();
    assert_eq!(r.body["marked"], 1);
    assert_eq!(inbox(&alice).await["unread"], 0);
    app.stop().await;
}

#[tokio::test]
async fn requesters_hear_by_email_of_public_comments_and_the_resolution_only() {
    let Some(py) = python() else { return };
    let sink = SmtpSink::start(&py).await;
    let app = TestApp::spawn_configured(|c| configure(Some(&sink), c)).await;
    let carol = app.client("carol");
    let case = open(&carol, "support", false).await;
    step(
        &carol,
        &case,
        "comments",
        json!({"body": "internal note: fraud?", "visibility": "internal"}),
    )
    .await;
    step(
        &carol,
        &case,
        "comments",
        json!({"body": "We are on it", "visibility": "public"}),
    )
    .await;
    step(
        &carol,
        &case,
        "resolve",
        json!({"resolution": "refunded", "note": "Refund sent"}),
    )
    .await;
    settles("two e-mails to the requester", || {
        sink.to("dave@example.com").len() == 2
    })
    .await;
    let all: String = sink
        .to("dave@example.com")
        .iter()
        .map(|m| m["data"].as_str().unwrap().to_owned())
        .collect();
    assert!(all.contains("We are on it") && all.contains("refunded"), "{all}");
    assert!(!all.contains("fraud"), "never an internal comment: {all}");
    app.stop().await;
}

#[tokio::test]
async fn watchers_hear_only_what_the_policy_lets_them_see() {
    let app = TestApp::spawn_configured(|c| configure(None, c)).await;
    let (alice, dave, carol) = (
        sign_in(&app, "alice").await,
        sign_in(&app, "dave").await,
        app.client("carol"),
    );
    let case = open(&carol, "support", false).await;
    let secret = open(&carol, "support", true).await;
    for (who, id, want) in [(&alice, &case, 204), (&dave, &case, 204), (&alice, &secret, 404)] {
        let r = who
            .send(reqwest::Method::PUT, &format!("/api/v1/cases/{id}/watch"), None, None)
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), want, "{}", r.body);
    }
    step(
        &carol,
        &case,
        "comments",
        json!({"body": "internal", "visibility": "internal"}),
    )
    .await;
    step(
        &carol,
        &case,
        "comments",
        json!({"body": "public", "visibility": "public"}),
    )
    .await;
    step(
        &carol,
        &secret,
        "comments",
        json!({"body": "secret", "visibility": "public"}),
    )
    .await;
    // Routed out of alice's queues: she hears nothing more, not even of the route.
    step(&carol, &case, "route", json!({"queue": "legal"})).await;
    step(
        &carol,
        &case,
        "comments",
        json!({"body": "after", "visibility": "internal"}),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let bodies = |b: &Value| -> Vec<String> {
        b["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["kind"] == "watch")
            .map(|i| i["body"].as_str().unwrap().to_owned())
            .collect()
    };
    let a = bodies(&inbox(&alice).await);
    assert_eq!(a.len(), 2, "alice: the two comments while she could see it: {a:?}");
    let d = bodies(&inbox(&dave).await);
    assert_eq!(
        d.len(),
        2,
        "dave: the public comment and the route, never internal ones: {d:?}"
    );
    assert!(d.iter().all(|b| !b.contains("internal")), "{d:?}");
    app.stop().await;
}

#[tokio::test]
async fn webhooks_are_signed_verified_elsewhere_rotated_and_disabled_by_410() {
    let Some(py) = python() else { return };
    let receiver = Receiver::start(&py).await;
    let app = TestApp::spawn_configured(|c| {
        configure(None, c);
        c.notify.allow_private_targets = true;
    })
    .await;
    let (carol, alice) = (app.client("carol"), app.client("alice"));
    let body = json!({"url": receiver.url(), "events": ["casewire.case.comment-added.v1"]});
    assert_eq!(
        alice.post("/api/v1/webhooks", &body).await.unwrap().status.as_u16(),
        403
    );
    let r = carol.post("/api/v1/webhooks", &body).await.unwrap();
    assert_eq!(r.status.as_u16(), 201, "{}", r.body);
    let (id, first) = (
        r.body["id"].as_str().unwrap().to_owned(),
        r.body["secret"].as_str().unwrap().to_owned(),
    );
    assert!(first.starts_with("whsec_"));
    let listed = carol.get("/api/v1/webhooks").await.unwrap().body;
    assert!(!listed.to_string().contains("whsec_"), "secrets are never listed");
    receiver.set_secrets(&[&first]);

    let case = open(&carol, "support", false).await;
    step(
        &carol,
        &case,
        "comments",
        json!({"body": "one", "visibility": "public"}),
    )
    .await;
    settles("one verified delivery", || receiver.received().len() == 1).await;
    let got = &receiver.received()[0];
    assert_eq!(got["verified"], true, "{got}");
    assert_eq!(got["body"]["type"], "casewire.case.comment-added.v1");

    // Rotation: both secrets sign; a receiver that knows either verifies.
    let rotated = carol
        .post(&format!("/api/v1/webhooks/{id}/rotate"), &json!({}))
        .await
        .unwrap();
    let second = rotated.body["secret"].as_str().unwrap().to_owned();
    receiver.set_secrets(&[&second]);
    step(
        &carol,
        &case,
        "comments",
        json!({"body": "two", "visibility": "public"}),
    )
    .await;
    settles("two", || receiver.received().len() == 2).await;
    receiver.set_secrets(&[&first]);
    step(
        &carol,
        &case,
        "comments",
        json!({"body": "three", "visibility": "public"}),
    )
    .await;
    settles("three", || receiver.received().len() == 3).await;
    for r in &receiver.received()[1..] {
        assert_eq!(r["verified"], true, "{r}");
        assert_eq!(
            r["signature"].as_str().unwrap().split(' ').count(),
            2,
            "two signatures: {r}"
        );
    }

    // 410 Gone disables the subscription; nothing more is sent.
    receiver.set_status(410);
    step(
        &carol,
        &case,
        "comments",
        json!({"body": "four", "visibility": "public"}),
    )
    .await;
    settles("the 410", || receiver.received().len() == 4).await;
    step(
        &carol,
        &case,
        "comments",
        json!({"body": "five", "visibility": "public"}),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.received().len(), 4, "a disabled endpoint gets nothing");
    let listed = carol.get("/api/v1/webhooks").await.unwrap().body;
    assert_eq!(listed["items"][0]["enabled"], false);
    assert!(listed["items"][0]["disabledReason"].as_str().unwrap().contains("410"));
    let log = carol
        .get(&format!("/api/v1/webhooks/{id}/deliveries"))
        .await
        .unwrap()
        .body;
    let statuses: Vec<u64> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["status"].as_u64())
        .collect();
    assert_eq!(statuses, [410, 204, 204, 204], "the delivery log, newest first");
    app.stop().await;
}

#[tokio::test]
async fn private_webhook_targets_and_bad_preferences_are_refused() {
    let app = TestApp::spawn().await;
    let carol = app.client("carol");
    for url in [
        "http://127.0.0.1:9/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x",
        "file:///etc/passwd",
    ] {
        let r = carol.post("/api/v1/webhooks", &json!({"url": url})).await.unwrap();
        assert_eq!(r.status.as_u16(), 422, "{url}: {}", r.body);
        assert_eq!(r.body["code"], "CW-VALIDATION");
    }
    let r = carol
        .post(
            "/api/v1/webhooks",
            &json!({"url": "http://example.com/x", "secret": "hunter2"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 422, "{}", r.body);
    for (prefs, field) in [
        (json!({"timeZone": "Mars/Olympus"}), "timeZone"),
        (json!({"digestMinutes": 0}), "digestMinutes"),
        (json!({"defaultChannels": ["webhook"]}), "channels"),
    ] {
        let r = carol
            .send(reqwest::Method::PUT, "/api/v1/me/preferences", Some(&prefs), None)
            .await
            .unwrap();
        assert_eq!(
            (r.status.as_u16(), r.body["details"]["field"].as_str()),
            (422, Some(field)),
            "{}",
            r.body
        );
    }
    let r = carol
        .send(
            reqwest::Method::PUT,
            "/api/v1/me/preferences",
            Some(&json!({"quietHours": {"start": "22:00", "end": "07:00"}, "timeZone": "Europe/Berlin", "extra": 1})),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 422, "unknown fields are refused: {}", r.body);
    let good = json!({"quietHours": {"start": "22:00:00", "end": "07:00:00"}, "timeZone": "Europe/Berlin", "digestMinutes": 30});
    let r = carol
        .send(reqwest::Method::PUT, "/api/v1/me/preferences", Some(&good), None)
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    let back = carol.get("/api/v1/me/preferences").await.unwrap().body;
    assert_eq!(
        (back["timeZone"].as_str(), back["digestMinutes"].as_u64()),
        (Some("Europe/Berlin"), Some(30))
    );
    app.stop().await;
}

/// A clock the test moves.
#[derive(Debug)]
struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    fn set(&self, t: DateTime<Utc>) {
        *self.0.lock().unwrap() = t;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// The platform without its notify-publisher, and one run on `clock`.
async fn with_clock(configure: impl FnOnce(&mut casewire_runtime::Config), clock: Arc<ManualClock>) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut config = casewire_e2e::test_config(dir.path());
    configure(&mut config);
    let services = Services {
        notify: false,
        ..Services::default()
    };
    let app = TestApp::start_with(dir, config, services, true).await;
    let platform = app.app.platform.clone();
    let token = app.app.shutdown.child_token();
    tokio::spawn(casewire_notify_publisher::run_with(
        platform,
        clock,
        "http://x".into(),
        token,
    ));
    app
}

fn today_at(h: u32, m: u32) -> DateTime<Utc> {
    Utc::now().date_naive().and_hms_opt(h, m, 0).unwrap().and_utc()
}

#[tokio::test]
async fn quiet_hours_defer_and_digests_group_on_a_controllable_clock() {
    let Some(py) = python() else { return };
    let sink = SmtpSink::start(&py).await;
    let clock = Arc::new(ManualClock(Mutex::new(today_at(23, 0))));
    let app = with_clock(|c| configure(Some(&sink), c), clock.clone()).await;
    let (alice, bob, carol) = (
        sign_in(&app, "alice").await,
        sign_in(&app, "bob").await,
        app.client("carol"),
    );
    let quiet =
        json!({"timeZone": "UTC", "quietHours": {"start": "22:00:00", "end": "07:00:00"}, "channels": {"queue": []}});
    assert_eq!(
        alice
            .send(reqwest::Method::PUT, "/api/v1/me/preferences", Some(&quiet), None)
            .await
            .unwrap()
            .status
            .as_u16(),
        200
    );
    let digest = json!({"digestMinutes": 60, "defaultChannels": ["email"], "channels": {"queue": []}});
    assert_eq!(
        bob.send(reqwest::Method::PUT, "/api/v1/me/preferences", Some(&digest), None)
            .await
            .unwrap()
            .status
            .as_u16(),
        200
    );

    let one = open(&carol, "support", false).await;
    step(&carol, &one, "assign", json!({"assignee": "alice"})).await;
    for _ in 0..3 {
        let id = open(&carol, "support", false).await;
        step(&carol, &id, "assign", json!({"assignee": "bob"})).await;
    }
    // 23:00, inside alice's quiet hours and before bob's digest hour.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        inbox(&alice).await["items"].as_array().unwrap().len(),
        0,
        "deferred, not sent"
    );
    assert!(sink.messages().is_empty(), "nothing yet: {:?}", sink.messages());

    // Midnight: bob's three assignments as one digest; alice still asleep.
    clock.set(today_at(23, 0) + chrono::Duration::minutes(61));
    settles("bob's digest", || sink.to("bob@casewire.example").len() == 1).await;
    let mail = sink.to("bob@casewire.example")[0]["data"].as_str().unwrap().to_owned();
    assert!(mail.contains("3 case updates"), "{mail}");
    assert!(sink.to("alice@casewire.example").is_empty());
    assert_eq!(inbox(&alice).await["items"].as_array().unwrap().len(), 0);

    // 07:00: alice's, deferred, not dropped: in-app and by e-mail.
    clock.set(today_at(23, 0) + chrono::Duration::hours(8) + chrono::Duration::minutes(1));
    settles("alice's morning", || sink.to("alice@casewire.example").len() == 1).await;
    assert_eq!(inbox(&alice).await["items"].as_array().unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_timestamp_five_minutes_off_is_refused_by_the_receiver_and_retried() {
    let Some(py) = python() else { return };
    let receiver = Receiver::start(&py).await;
    // Six minutes slow: the receiver's ±5 min window refuses the timestamp.
    let clock = Arc::new(ManualClock(Mutex::new(Utc::now() - chrono::Duration::minutes(6))));
    let app = with_clock(
        |c| {
            configure(None, c);
            c.notify.allow_private_targets = true;
        },
        clock.clone(),
    )
    .await;
    let carol = app.client("carol");
    let r = carol
        .post("/api/v1/webhooks", &json!({"url": receiver.url()}))
        .await
        .unwrap();
    receiver.set_secrets(&[r.body["secret"].as_str().unwrap()]);
    open(&carol, "support", false).await;
    settles("one refused delivery", || receiver.received().len() == 1).await;
    let got = &receiver.received()[0];
    assert_eq!(
        (got["verified"].as_bool(), got["status"].as_u64()),
        (Some(false), Some(400)),
        "{got}"
    );
    // Right again: the retry (the same webhook-id) is accepted.
    clock.set(Utc::now());
    settles("the retry", || receiver.received().len() == 2).await;
    let retry = &receiver.received()[1];
    assert_eq!(retry["verified"], true, "{retry}");
    assert_eq!(retry["id"], got["id"], "a retry keeps its webhook-id");
    app.stop().await;
}

#[tokio::test]
async fn a_definition_turns_kinds_off_or_critical_and_a_mute_silences_a_case() {
    let clock = Arc::new(ManualClock(Mutex::new(today_at(23, 0))));
    let app = with_clock(|c| configure(None, c), clock).await;
    let (alice, carol) = (sign_in(&app, "alice").await, app.client("carol"));
    // The demo complaint has notifications already (its templates).
    let yaml = casewire::DEMO_DEFINITIONS[0].1.replace(
        "\nnotifications:\n",
        "\nnotifications:\n  disabled: [queue]\n  critical: [assigned]\n",
    );
    assert_ne!(yaml, casewire::DEMO_DEFINITIONS[0].1);
    let r = carol.import_definition(&yaml).await.unwrap();
    assert_eq!(r.status.as_u16(), 201, "{}", r.body);
    let noisy = open(&carol, "support", false).await;
    let put = |prefs: Value| {
        let alice = alice.clone();
        async move {
            alice
                .send(reqwest::Method::PUT, "/api/v1/me/preferences", Some(&prefs), None)
                .await
                .unwrap()
                .status
                .as_u16()
        }
    };
    // Asleep (quiet hours now), and the noisy case muted.
    let prefs =
        json!({"timeZone": "UTC", "quietHours": {"start": "22:00:00", "end": "07:00:00"}, "mutedCases": [noisy]});
    assert_eq!(put(prefs).await, 200);
    let r = alice
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/cases/{noisy}/watch"),
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 204);
    step(
        &carol,
        &noisy,
        "comments",
        json!({"body": "muted", "visibility": "public"}),
    )
    .await;
    let urgent = open(&carol, "support", false).await;
    step(&carol, &urgent, "assign", json!({"assignee": "alice"})).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let items = inbox(&alice).await;
    let kinds: Vec<&str> = items["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["assigned"],
        "no queue (off in the definition), no watch (muted), the assignment past quiet hours"
    );
    app.stop().await;
}
