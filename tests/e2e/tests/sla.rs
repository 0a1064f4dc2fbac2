//! Business calendars and a case's SLA clocks over the API: calendars are
//! imported per tenant, in versions, by those who may import definitions;
//! a case's clocks count on its definition's calendar (the newest version,
//! so an edit moves open clocks), are met by a staff response, and are
//! shown to staff only.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use casewire_e2e::{TestApp, complaint};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

const ALWAYS: &str = "id: test-office\nname: Test office\ntimeZone: UTC\nhours:\n  mon: [\"00:00-24:00\"]\n  tue: [\"00:00-24:00\"]\n  wed: [\"00:00-24:00\"]\n  thu: [\"00:00-24:00\"]\n  fri: [\"00:00-24:00\"]\n  sat: [\"00:00-24:00\"]\n  sun: [\"00:00-24:00\"]\n";

async fn post_calendar(app: &TestApp, user: &str, yaml: &str) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/calendars", app.url()))
        .bearer_auth(app.client(user).token())
        .header("content-type", "application/yaml")
        .body(yaml.to_owned())
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

fn clock<'a>(sla: &'a Value, metric: &str) -> &'a Value {
    sla["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["metric"] == metric)
        .unwrap_or_else(|| panic!("no {metric} clock in {sla}"))
}

#[tokio::test]
async fn calendars_are_the_tenants_and_only_importers_change_them() {
    let app = TestApp::spawn().await;
    let (status, body) = post_calendar(&app, "alice", ALWAYS).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("CW-FORBIDDEN")), "{body}");
    let (status, body) = post_calendar(&app, "carol", &ALWAYS.replace("UTC", "Mars/Olympus")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("CW-INVALID-DEFINITION")),
        "{body}"
    );
    assert!(body["message"].as_str().unwrap().contains("IANA"), "{body}");
    let (status, body) = post_calendar(&app, "carol", &ALWAYS.replace("00:00-24:00", "9-5")).await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = post_calendar(&app, "carol", ALWAYS).await;
    assert_eq!((status, body["version"].as_u64()), (201, Some(1)), "{body}");
    let (_, v2) = post_calendar(&app, "carol", &format!("{ALWAYS}holidays: [2026-12-25]\n")).await;
    assert_eq!(v2["version"], 2);
    let alice = app.client("alice");
    let list = alice.get("/api/v1/calendars").await.unwrap().body;
    let mine: Vec<&Value> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"] == "test-office")
        .collect();
    assert_eq!(mine.len(), 1, "the newest version only: {list}");
    assert_eq!(mine[0]["holidays"], json!(["2026-12-25"]));
    assert!(
        list["items"].as_array().unwrap().iter().any(|c| c["id"] == "office"),
        "the demo's"
    );
    let v1 = alice.get("/api/v1/calendars/test-office?version=1").await.unwrap().body;
    assert_eq!(v1["holidays"], json!([]));
    let gina = app.client("gina");
    assert_eq!(gina.get("/api/v1/calendars").await.unwrap().body["items"], json!([]));
    assert_eq!(gina.get("/api/v1/calendars/test-office").await.unwrap().status, 404);
    app.stop().await;
}

#[tokio::test]
async fn a_cases_clocks_count_on_its_calendar_and_a_staff_response_meets_the_first() {
    let app = TestApp::spawn().await;
    let carol = app.client("carol");
    // The demo complaint, its clocks on a calendar the tenant has not imported yet.
    let yaml = casewire::DEMO_DEFINITIONS[0]
        .1
        .replace("calendar: office", "calendar: test-office")
        .replace("warnAt: 80%", "warnAt: 50%");
    let r = carol.import_definition(&yaml).await.unwrap();
    assert_eq!(r.status.as_u16(), 201, "{}", r.body);
    let mut open = complaint("SLA");
    open["requester"] = json!({"email": "dave@example.com"});
    let r = carol.post_wait("/api/v1/cases", &open).await.unwrap();
    assert_eq!(r.status.as_u16(), 201, "{}", r.body);
    let (id, created) = (r.body["id"].as_str().unwrap().to_owned(), time(&r.body["createdAt"]));
    let path = format!("/api/v1/cases/{id}/sla");
    let alice = app.client("alice");
    let missing = alice.get(&path).await.unwrap().body;
    assert_eq!(
        (missing["calendar"].as_str(), missing["calendarMissing"].as_bool()),
        (Some("test-office"), Some(true)),
        "{missing}"
    );

    post_calendar(&app, "carol", ALWAYS).await;
    let sla = alice.get(&path).await.unwrap().body;
    assert_eq!(
        (sla["calendarVersion"].as_u64(), sla["calendarMissing"].as_bool()),
        (Some(1), Some(false)),
        "{sla}"
    );
    let first = clock(&sla, "first-response");
    // The demo's normal priority: first response 10h, resolution 50h.
    assert_eq!(first["goal"], 10 * 3600, "{first}");
    assert_eq!(time(&first["dueAt"]), created + Duration::hours(10), "{first}");
    assert_eq!(time(&first["warnAt"]), created + Duration::hours(5), "{first}");
    assert_eq!(
        (first["breached"].as_bool(), first["paused"].as_bool()),
        (Some(false), Some(false))
    );
    assert!(first["remaining"].as_i64().unwrap() > 10 * 3600 - 60, "{first}");
    assert_eq!(clock(&sla, "resolution")["goal"], 50 * 3600);

    // A requester sees the case, not its clocks.
    assert_eq!(app.client("dave").get(&path).await.unwrap().status, 403);

    // A public comment by staff meets the first response.
    let r = alice
        .post_wait(
            &format!("/api/v1/cases/{id}/comments"),
            &json!({"body": "On it.", "visibility": "public"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    let sla = alice.get(&path).await.unwrap().body;
    let first = clock(&sla, "first-response");
    assert!(first["metAt"].is_string() && first["dueAt"].is_null(), "{first}");
    app.stop().await;
}
