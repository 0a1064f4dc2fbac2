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

    // Holidays from an iCalendar feed: added (a new version), or in place.
    let ics = |extra: &str| {
        format!(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\nBEGIN:VEVENT\r\nUID:a\r\nDTSTAMP:20260101T000000Z\r\n\
             SUMMARY:Boxing Day\r\n{extra}DTSTART;VALUE=DATE:20261226\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        )
    };
    let holidays = async |user: &str, path: &str, body: String| {
        let res = reqwest::Client::new()
            .post(format!("{}/api/v1/calendars/{path}", app.url()))
            .bearer_auth(app.client(user).token())
            .header("content-type", "text/calendar")
            .body(body)
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.json::<Value>().await.unwrap_or(Value::Null))
    };
    let (status, v3) = holidays("carol", "test-office/holidays", ics("")).await;
    assert_eq!((status, v3["version"].as_u64()), (201, Some(3)), "{v3}");
    assert_eq!(v3["holidays"], json!(["2026-12-25", "2026-12-26"]));
    let (status, v4) = holidays("carol", "test-office/holidays?replace=true", ics("")).await;
    assert_eq!((status, v4["holidays"].clone()), (201, json!(["2026-12-26"])), "{v4}");
    let (status, body) = holidays("carol", "test-office/holidays", ics("RRULE:FREQ=YEARLY\r\n")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("CW-INVALID-DEFINITION")),
        "{body}"
    );
    assert!(body["message"].as_str().unwrap().contains("RRULE"), "{body}");
    assert_eq!(holidays("carol", "no-such/holidays", ics("")).await.0, 404);
    assert_eq!(holidays("alice", "test-office/holidays", ics("")).await.0, 403);

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

    // The scheduler keeps the earliest due time for the list, and an
    // edited calendar moves it: with today and tomorrow holidays, the
    // 10 hours start the day after tomorrow.
    let listed_due = || async {
        let page = alice.get("/api/v1/cases?sort=slaDue&limit=200").await.unwrap().body;
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id.as_str())
            .and_then(|c| c["slaDueAt"].as_str().map(|t| t.parse::<DateTime<Utc>>().unwrap()))
    };
    let first_due = created + Duration::hours(10);
    let listed = casewire_e2e::eventually(std::time::Duration::from_secs(10), || async {
        listed_due().await.filter(|d| *d == first_due)
    })
    .await;
    assert_eq!(listed, Some(first_due), "the list's due time");
    let today = created.date_naive();
    let closed = format!("{ALWAYS}holidays: [{today}, {}]\n", today + Duration::days(1));
    assert_eq!(post_calendar(&app, "carol", &closed).await.0, 201);
    let moved = (today + Duration::days(2)).and_hms_opt(10, 0, 0).unwrap().and_utc();
    let listed = casewire_e2e::eventually(std::time::Duration::from_secs(20), || async {
        listed_due().await.filter(|d| *d == moved)
    })
    .await;
    assert_eq!(listed, Some(moved), "recomputed on the edited calendar");

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

/// The fast complaint with a rule that raises the priority on a breach.
fn fast_complaint() -> String {
    format!(
        "{}\nautomation:\n  - name: escalate-on-breach\n    on: sla-breached\n    do: [{{ command: {{ type: case.prioritize, data: {{ priority: urgent }} }} }}]\n",
        casewire_e2e::sla_fixture::fast_complaint()
    )
}

fn recorded(history: &Value, kind: &str) -> usize {
    history["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == format!("casewire.case.{kind}.v1"))
        .count()
}

async fn history(app: &TestApp, id: &str) -> Value {
    app.client("carol")
        .get(&format!("/api/v1/cases/{id}/history"))
        .await
        .unwrap()
        .body
}

async fn listed(app: &TestApp, user: &str, query: &str) -> (u16, Vec<String>) {
    let r = app.client(user).get(&format!("/api/v1/cases?{query}")).await.unwrap();
    let ids = r.body["items"]
        .as_array()
        .map(|a| a.iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect())
        .unwrap_or_default();
    (r.status.as_u16(), ids)
}

/// Warning, then the platform stops and starts again, then the breach:
/// each recorded once, late if need be; a breach raises the priority (an
/// automation rule) and tells the queue's manager; the list filters and
/// sorts by the clocks; a replay records nothing twice.
#[tokio::test]
async fn warning_and_breach_are_recorded_once_across_a_restart_and_a_replay() {
    use casewire_e2e::eventually;
    let app = TestApp::spawn().await;
    let r = app.client("carol").import_definition(&fast_complaint()).await.unwrap();
    assert_eq!(r.status.as_u16(), 201, "{}", r.body);
    // bob manages the complaints queue; signed in, the directory knows him.
    assert_eq!(
        app.client("bob").get("/api/v1/me/preferences").await.unwrap().status,
        200
    );
    let mut open = complaint("Late");
    open["requester"] = json!({"email": "dave@example.com"});
    let r = app.client("carol").post_wait("/api/v1/cases", &open).await.unwrap();
    assert_eq!(r.status.as_u16(), 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let (_, ok) = listed(&app, "carol", "sla=ok").await;
    assert!(ok.contains(&id), "in time at first");

    let warned = eventually(std::time::Duration::from_secs(20), || async {
        (recorded(&history(&app, &id).await, "sla-warning") > 0).then_some(())
    })
    .await;
    assert!(warned.is_some(), "a warning within 20 s: {}", history(&app, &id).await);
    let (_, at_risk) = listed(&app, "carol", "sla=at-risk").await;
    assert!(at_risk.contains(&id), "at risk after the warning");
    assert_eq!(
        recorded(&history(&app, &id).await, "sla-breached"),
        0,
        "not yet breached"
    );

    // Down across the goal: the breach is recorded when it is back.
    let dir = app.stop().await;
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let app = TestApp::start_in(dir, Default::default(), false).await;
    let breached = eventually(std::time::Duration::from_secs(20), || async {
        let h = history(&app, &id).await;
        (recorded(&h, "sla-breached") > 0 && recorded(&h, "prioritized") > 0).then_some(h)
    })
    .await
    .expect("breach and escalation within 20 s of the restart");
    assert_eq!(recorded(&breached, "sla-warning"), 1);
    assert_eq!(recorded(&breached, "sla-breached"), 1);
    let case = app
        .client("carol")
        .get(&format!("/api/v1/cases/{id}"))
        .await
        .unwrap()
        .body;
    assert_eq!(case["priority"], "urgent", "the rule raised it");
    let (_, list) = listed(&app, "carol", "sla=breached").await;
    assert!(list.contains(&id), "listed as breached");
    let (_, sorted) = listed(&app, "carol", "sort=slaDue&limit=200").await;
    assert_eq!(sorted.first(), Some(&id), "the most overdue first");
    assert_eq!(
        listed(&app, "dave", "sla=breached").await.0,
        403,
        "a requester may not ask"
    );
    assert_eq!(listed(&app, "dave", "sort=slaDue").await.0, 403);
    let bob = app
        .client("bob")
        .get("/api/v1/me/notifications?limit=200")
        .await
        .unwrap()
        .body;
    assert!(
        bob["items"].as_array().unwrap().iter().any(|n| n["kind"] == "sla"),
        "the queue's manager hears of the breach: {bob}"
    );

    // Replay: the projections and the schedule rebuilt, nothing recorded twice.
    let dir = app.stop().await;
    let platform = casewire_runtime::Platform::open(casewire_e2e::test_config(dir.path()))
        .await
        .unwrap();
    let report = casewire_projector::replay(&platform, 0, |_, _| {}).await.unwrap();
    casewire_case_engine::sla::resync(&platform, &report.case_ids)
        .await
        .unwrap();
    drop(platform);
    let app = TestApp::start_in(dir, Default::default(), false).await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let h = history(&app, &id).await;
    assert_eq!(
        (recorded(&h, "sla-warning"), recorded(&h, "sla-breached")),
        (1, 1),
        "once each after the replay"
    );
    // A breach stands when the goal changes: still listed as breached,
    // from the schedule the replay computed again.
    let (_, list) = listed(&app, "carol", "sla=breached").await;
    assert!(list.contains(&id), "still breached after the replay");
    app.stop().await;
}
