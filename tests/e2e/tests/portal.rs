//! The portal over HTTP as a browser sees it (no JavaScript needed): the
//! sign-in through the dev issuer's code flow with PKCE, the session
//! cookie, the case list as the person's own API call, CSRF on logout, and
//! the end of the session. The browser-driven suite builds on these.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use casewire_e2e::{TestApp, complaint};
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::json;

/// A browser: cookies kept, redirects followed by hand so each is seen.
struct Browser {
    http: reqwest::Client,
    base: String,
}

impl Browser {
    fn new(app: &TestApp) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .cookie_store(true)
                .build()
                .unwrap(),
            base: app.url(),
        }
    }

    fn absolute(&self, location: &str) -> String {
        if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            location.to_owned()
        }
    }

    /// GETs `url` and follows redirects; returns the last response.
    async fn open(&self, url: &str) -> reqwest::Response {
        let mut url = self.absolute(url);
        for _ in 0..10 {
            let r = self.http.get(&url).send().await.unwrap();
            if r.status() != StatusCode::FOUND {
                return r;
            }
            url = self.absolute(r.headers()["location"].to_str().unwrap());
        }
        panic!("too many redirects");
    }

    /// Signs in as `user` from the portal's front page.
    async fn sign_in(&self, user: &str) -> String {
        // Two realms in the demo: the portal asks which one first.
        let choice = self.open("/").await;
        assert_eq!(choice.status(), StatusCode::OK);
        assert!(choice.url().path().ends_with("/auth/login"), "{}", choice.url());
        let html = choice.text().await.unwrap();
        assert!(html.contains("/auth/login?realm=globex"), "{html}");
        let login = self.open("/auth/login?realm=casewire").await;
        assert_eq!(login.status(), StatusCode::OK);
        let page_url = login.url().clone();
        assert!(page_url.path().ends_with("/protocol/openid-connect/auth"), "{page_url}");
        let html = login.text().await.unwrap();
        assert!(html.contains("Sign in to casewire"), "the dev issuer's page");
        let mut form: Vec<(String, String)> = page_url.query_pairs().into_owned().collect();
        form.push(("username".into(), user.into()));
        form.push(("password".into(), user.into()));
        let r = self.http.post(page_url.as_str()).form(&form).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FOUND, "a code for the portal");
        let callback = r.headers()["location"].to_str().unwrap().to_owned();
        assert!(callback.contains("/auth/callback?code="), "{callback}");
        let r = self.http.get(&callback).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FOUND);
        let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(cookie.starts_with("cw_session="), "{cookie}");
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
            "{cookie}"
        );
        assert!(!cookie.contains("Secure"), "plain HTTP on loopback: {cookie}");
        let list = self.open(r.headers()["location"].to_str().unwrap()).await;
        assert_eq!(list.status(), StatusCode::OK);
        list.text().await.unwrap()
    }
}

fn csrf(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[at..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn sign_in_see_your_cases_and_sign_out() {
    let app = TestApp::spawn().await;
    let carol = app.client("carol");
    let mut mine = complaint("Kettle leaks for dave");
    mine["requester"] = json!({"email": "dave@example.com"});
    let r = carol.post_wait("/api/v1/cases", &mine).await.unwrap();
    assert_eq!(r.status.as_u16(), 201, "{}", r.body);
    let dave_key = r.body["key"].as_str().unwrap().to_owned();
    let r = carol
        .post_wait("/api/v1/cases", &complaint("Someone else's toaster"))
        .await
        .unwrap();
    let other_key = r.body["key"].as_str().unwrap().to_owned();

    let alice = Browser::new(&app);
    let html = alice.sign_in("alice").await;
    assert!(
        html.contains(&dave_key) && html.contains(&other_key),
        "alice works the complaints queue"
    );
    assert!(html.contains("alice · casewire"));

    let dave = Browser::new(&app);
    let html = dave.sign_in("dave").await;
    assert!(html.contains(&dave_key), "his own case");
    assert!(!html.contains(&other_key), "and nobody else's");

    // Logout needs the session's CSRF token.
    let forged = alice
        .http
        .post(format!("{}/auth/logout", app.url()))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(alice.open("/cases").await.status(), StatusCode::OK, "still signed in");
    let token = csrf(&html_of(&alice).await);
    let out = alice
        .http
        .post(format!("{}/auth/logout", app.url()))
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::FOUND);
    let to = out.headers()["location"].to_str().unwrap();
    assert!(
        to.contains("/protocol/openid-connect/logout?post_logout_redirect_uri="),
        "ends at the issuer: {to}"
    );
    let after = alice.http.get(format!("{}/cases", app.url())).send().await.unwrap();
    assert_eq!(after.status(), StatusCode::FOUND, "signed out: back to the sign-in");
    app.stop().await;
}

async fn html_of(b: &Browser) -> String {
    b.open("/cases").await.text().await.unwrap()
}

#[tokio::test]
async fn a_forged_or_unknown_session_and_a_replayed_callback_get_nothing() {
    let app = TestApp::spawn().await;
    let http = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
    let r = http
        .get(format!("{}/cases", app.url()))
        .header("cookie", "cw_session=forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(r.headers()["location"], "/auth/login");
    let r = http
        .get(format!("{}/auth/callback?code=x&state=unknown", app.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "a state the portal did not issue");
    assert!(r.headers().get("set-cookie").is_none());
    let r = http
        .get(format!("{}/auth/callback?error=access_denied", app.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // The API's own paths are not the portal's.
    let r = http.get(format!("{}/api/v1/cases", app.url())).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

/// Posts a form of the portal as `b`; the response is not followed.
async fn submit(b: &Browser, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    b.http
        .post(format!("{}{path}", b.base))
        .form(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_detail_offers_what_the_policy_allows_and_shows_what_it_refuses() {
    let app = TestApp::spawn().await;
    let mut open = complaint("Toaster on fire");
    open["requester"] = json!({"email": "dave@example.com"});
    let r = app.client("carol").post_wait("/api/v1/cases", &open).await.unwrap();
    let id = r.body["id"].as_str().unwrap().to_owned();
    let path = format!("/cases/{id}");

    let alice = Browser::new(&app);
    alice.sign_in("alice").await;
    let html = alice.open(&path).await.text().await.unwrap();
    assert!(html.contains("Toaster on fire") && html.contains("Add comment") && html.contains("Move to stage"));
    let token = csrf(&html);
    let r = submit(
        &alice,
        &format!("{path}/comment"),
        &[
            ("csrf", &token),
            ("body", "Checked the serial: recalled model"),
            ("visibility", "internal"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "back to the case");
    let r = submit(
        &alice,
        &format!("{path}/stage"),
        &[("csrf", &token), ("stage", "triage")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let html = alice.open(&path).await.text().await.unwrap();
    assert!(
        html.contains("Checked the serial: recalled model") && html.contains("internal"),
        "her comment, marked internal"
    );
    assert!(html.contains("<dd>triage</dd>"), "moved");
    assert!(html.contains("comment-added"), "the timeline");

    let dave = Browser::new(&app);
    dave.sign_in("dave").await;
    let html = dave.open(&path).await.text().await.unwrap();
    assert!(html.contains("Toaster on fire"));
    assert!(
        !html.contains("recalled model"),
        "no internal comment anywhere in the HTML"
    );
    assert!(
        !html.contains("Staff only") && html.contains("Everyone on the case"),
        "public comments only"
    );
    assert!(!html.contains("Move to stage"), "no stage button for a requester");
    // Tried anyway: the API's refusal, shown on the case, not a broken page.
    let r = submit(
        &dave,
        &format!("{path}/stage"),
        &[("csrf", &csrf(&html)), ("stage", "investigating")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("CW-FORBIDDEN") && page.contains("Toaster on fire"),
        "{page}"
    );
    let r = submit(
        &dave,
        &format!("{path}/comment"),
        &[("csrf", "stale"), ("body", "x"), ("visibility", "public")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "a form without the session's token");

    let erin = Browser::new(&app);
    erin.sign_in("erin").await;
    let html = erin.open(&path).await.text().await.unwrap();
    assert!(html.contains("Toaster on fire"));
    assert!(
        !html.contains("Add comment") && !html.contains("Move to stage"),
        "a viewer gets no action"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_new_case_from_the_form_the_schema_makes() {
    let app = TestApp::spawn().await;
    let alice = Browser::new(&app);
    alice.sign_in("alice").await;
    let html = alice.open("/new").await.text().await.unwrap();
    assert!(html.contains("href=\"/new/customer-complaint\""), "{html}");
    let html = alice.open("/new/customer-complaint").await.text().await.unwrap();
    assert!(
        html.contains("name=\"data.channel\"") && html.contains("<option value=\"web\""),
        "an enum is a choice"
    );
    assert!(
        html.contains("pattern=\"[A-Z]{2}-[0-9]{6}\""),
        "the browser checks the order number's pattern"
    );
    assert!(
        html.contains("name=\"data.amountClaimed\" type=\"number\""),
        "a number input"
    );
    let token = csrf(&html);
    let typed = |order: &'static str| {
        vec![
            ("csrf", token.clone()),
            ("title", "Kettle K200 stopped heating".to_owned()),
            ("priority", "high".to_owned()),
            ("data.channel", "web".to_owned()),
            ("data.product", "Kettle K200".to_owned()),
            ("data.orderNumber", order.to_owned()),
            ("data.amountClaimed", "12.5".to_owned()),
            ("data.remedy", String::new()),
        ]
    };
    // The server checks again: a bad order number is the API's 422, on
    // the form, with what was typed kept.
    let r = alice
        .http
        .post(format!("{}/new/customer-complaint", app.url()))
        .form(&typed("bad"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let again = r.text().await.unwrap();
    assert!(
        again.contains("CW-") && again.contains("value=\"Kettle K200 stopped heating\""),
        "{again}"
    );
    let r = alice
        .http
        .post(format!("{}/new/customer-complaint", app.url()))
        .form(&typed("AB-123456"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap_or_default()
    );
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    let html = alice.open(&to).await.text().await.unwrap();
    assert!(
        html.contains("Kettle K200 stopped heating")
            && html.contains("<dd>12.5</dd>")
            && html.contains("<dd>high</dd>"),
        "{html}"
    );
    let r = alice
        .http
        .post(format!("{}/new/customer-complaint", app.url()))
        .form(&[("csrf", "stale"), ("title", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    app.stop().await;
}

#[tokio::test]
async fn a_case_worked_end_to_end_in_the_portal() {
    let app = TestApp::spawn().await;
    let mut open = complaint("Blender noise");
    open["requester"] = json!({"email": "dave@example.com"});
    let r = app.client("carol").post_wait("/api/v1/cases", &open).await.unwrap();
    let path = format!("/cases/{}", r.body["id"].as_str().unwrap());
    let alice = Browser::new(&app);
    alice.sign_in("alice").await;
    let step = async |form: &[(&str, &str)]| {
        let html = alice.open(&path).await.text().await.unwrap();
        let token = csrf(&html);
        let mut full: Vec<(&str, &str)> = vec![("csrf", token.as_str())];
        full.extend_from_slice(form);
        let r = submit(&alice, &format!("{path}/do"), &full).await;
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "{form:?}: {}",
            r.text().await.unwrap_or_default()
        );
        alice.open(&path).await.text().await.unwrap()
    };
    let html = alice.open(&path).await.text().await.unwrap();
    assert!(
        html.contains("Assign to me") && html.contains("SLA") && html.contains("first-response"),
        "clocks for staff"
    );
    let html = step(&[("action", "assign-me")]).await;
    assert!(html.contains("<dd>alice</dd>") && html.contains("Unassign"));
    let html = step(&[("action", "priority"), ("value", "urgent")]).await;
    assert!(html.contains("<dd>urgent</dd>"));
    let html = step(&[("action", "resolve"), ("value", "refunded"), ("note", "Refund sent")]).await;
    assert!(
        html.contains("<dd>resolved</dd>") && html.contains(">Close<") && html.contains(">Reopen<"),
        "{html}"
    );
    let html = step(&[("action", "close")]).await;
    assert!(html.contains("<dd>closed</dd>"));
    let html = step(&[("action", "reopen")]).await;
    assert!(html.contains("<dd>open</dd>"));
    let dave = Browser::new(&app);
    dave.sign_in("dave").await;
    let html = dave.open(&path).await.text().await.unwrap();
    assert!(
        !html.contains("first-response") && !html.contains("Assign to me"),
        "no clocks, no staff actions for a requester"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_task_inbox_claims_and_completes_through_the_tasks_form() {
    let app = TestApp::spawn().await;
    let carol = app.client("carol");
    let r = carol
        .post_wait("/api/v1/cases", &complaint("Needs a callback"))
        .await
        .unwrap();
    let case = r.body["id"].as_str().unwrap().to_owned();
    let task = json!({"kind": "human", "name": "Call the customer back", "queue": "complaints",
        "form": {"type": "object", "required": ["reached"],
                 "properties": {"reached": {"type": "boolean"}, "minutes": {"type": "integer", "minimum": 0}}}});
    let r = carol
        .post_wait(&format!("/api/v1/cases/{case}/tasks"), &task)
        .await
        .unwrap();
    assert!(r.status.is_success(), "{}", r.body);

    let alice = Browser::new(&app);
    alice.sign_in("alice").await;
    let html = alice.open("/tasks").await.text().await.unwrap();
    assert!(
        html.contains("Call the customer back") && html.contains(">Claim<"),
        "unclaimed in her queue: {html}"
    );
    let claim_at = html.find("/claim\"").unwrap();
    let action = &html[html[..claim_at].rfind("action=\"").unwrap() + 8..claim_at + 6];
    let r = submit(&alice, action, &[("csrf", &csrf(&html))]).await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap_or_default()
    );
    let html = alice.open("/tasks").await.text().await.unwrap();
    assert!(
        html.contains("name=\"out.reached\"") && html.contains(">Complete<"),
        "hers now, with its form"
    );
    let complete = action.replace("/claim", "/complete");
    // The API checks the output against the task's schema.
    let r = submit(&alice, &complete, &[("csrf", &csrf(&html)), ("out.minutes", "-3")]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("CW-"), "the reason on the inbox");
    let r = submit(
        &alice,
        &complete,
        &[("csrf", &csrf(&html)), ("out.reached", "true"), ("out.minutes", "7")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let html = alice.open("/tasks").await.text().await.unwrap();
    assert!(!html.contains("Call the customer back"), "done: off the inbox");
    let detail = app
        .client("carol")
        .get(&format!("/api/v1/cases/{case}"))
        .await
        .unwrap()
        .body;
    assert_eq!(
        detail["tasks"][0]["output"],
        json!({"reached": true, "minutes": 7}),
        "{detail}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_board_moves_a_card_and_a_refused_move_says_why() {
    let app = TestApp::spawn().await;
    let mut open = complaint("Board card");
    open["requester"] = json!({"email": "dave@example.com"});
    let r = app.client("carol").post_wait("/api/v1/cases", &open).await.unwrap();
    let id = r.body["id"].as_str().unwrap().to_owned();
    let alice = Browser::new(&app);
    alice.sign_in("alice").await;
    let html = alice.open("/board").await.text().await.unwrap();
    assert!(html.contains("href=\"/board/customer-complaint\""));
    let html = alice.open("/board/customer-complaint").await.text().await.unwrap();
    assert!(
        html.contains(&format!("data-case=\"{id}\"")) && html.contains("data-stage=\"new\""),
        "a card in New"
    );
    let script = html
        .split("script src=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    assert!(
        script.starts_with("/assets/board.") && script.ends_with(".js"),
        "{script}"
    );
    let js = alice.open(&script).await;
    assert!(
        js.headers()["cache-control"].to_str().unwrap().contains("immutable"),
        "named by its hash: cached for good"
    );
    assert!(js.text().await.unwrap().contains("dragstart"));
    let token = csrf(&html);
    // Dropped on a column the definition does not allow from New: the
    // script gets the API's reason as JSON, and the card stays.
    let r = alice
        .http
        .post(format!("{}/board/customer-complaint/move", app.url()))
        .header("accept", "application/json")
        .form(&[("csrf", token.as_str()), ("case", id.as_str()), ("stage", "closed-won")])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    let why: serde_json::Value = r.json().await.unwrap();
    assert!(why["code"].as_str().unwrap().starts_with("CW-"), "{why}");
    let r = alice
        .http
        .post(format!("{}/board/customer-complaint/move", app.url()))
        .header("accept", "application/json")
        .form(&[("csrf", token.as_str()), ("case", id.as_str()), ("stage", "triage")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = alice.open("/board/customer-complaint").await.text().await.unwrap();
    assert!(
        html.contains(&format!("data-case=\"{id}\" data-stage=\"triage\"")),
        "moved to Triage"
    );
    // A requester's move, by form: refused by the policy, shown on the board.
    let dave = Browser::new(&app);
    dave.sign_in("dave").await;
    let html = dave.open("/board/customer-complaint").await.text().await.unwrap();
    assert!(
        html.contains("draggable=\"false\"") && !html.contains("form class=\"move\""),
        "no move offered to a requester"
    );
    let r = submit(
        &dave,
        "/board/customer-complaint/move",
        &[("csrf", &csrf(&html)), ("case", &id), ("stage", "investigating")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("CW-FORBIDDEN"));
    app.stop().await;
}

/// Reads `/live` until an event for `until` arrives: the events' data lines.
async fn live_until(
    stream: &mut (impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    until: &str,
) -> Vec<(u64, serde_json::Value)> {
    use futures::StreamExt;
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let events: Vec<(u64, serde_json::Value)> = text
            .split("\n\n")
            .filter(|m| m.contains("event: case"))
            .map(|m| {
                let id = m.lines().find_map(|l| l.strip_prefix("id: ")).unwrap().parse().unwrap();
                let data = m.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
                (id, serde_json::from_str(data).unwrap())
            })
            .collect();
        if events.iter().any(|(_, e)| e["case"] == until) {
            return events;
        }
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("the event within 20 s")
            .expect("the stream stays open")
            .unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

#[tokio::test]
async fn the_live_stream_tells_a_person_only_of_what_they_may_see() {
    let app = TestApp::spawn().await;
    let carol = app.client("carol");
    let mut his = complaint("Kettle hums for dave");
    his["requester"] = json!({"email": "dave@example.com"});
    let his = carol.post_wait("/api/v1/cases", &his).await.unwrap().body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = carol
        .post_wait("/api/v1/cases", &complaint("Not dave's"))
        .await
        .unwrap()
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let anonymous = reqwest::get(format!("{}/live", app.url())).await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    let dave = Browser::new(&app);
    dave.sign_in("dave").await;
    let live = dave.http.get(format!("{}/live", app.url())).send().await.unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    assert!(
        live.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut stream = live.bytes_stream();

    let alice = app.client("alice");
    let comment = |visibility: &str, body: &str| json!({"body": body, "visibility": visibility});
    for (case, c) in [
        (&his, comment("internal", "secret 5T")),
        (&other, comment("public", "other 6U")),
        (&his, comment("public", "hello 7V")),
    ] {
        let r = alice
            .post_wait(&format!("/api/v1/cases/{case}/comments"), &c)
            .await
            .unwrap();
        assert!(r.status.is_success(), "{}", r.body);
    }
    let events = live_until(&mut stream, &his).await;
    assert_eq!(events.len(), 1, "only the public comment on his own case: {events:?}");
    let (position, event) = &events[0];
    assert!(event["type"].as_str().unwrap().contains("comment"), "{event}");
    assert_eq!(
        event.as_object().unwrap().len(),
        2,
        "the case and the type, never the data: {event}"
    );
    drop(stream);

    // A browser that reconnects resumes after the last id it saw.
    let again = dave
        .http
        .get(format!("{}/live", app.url()))
        .header("Last-Event-ID", (position - 1).to_string())
        .send()
        .await
        .unwrap();
    let replayed = live_until(&mut again.bytes_stream(), &his).await;
    assert_eq!(replayed[0].0, *position, "the same event again, from its position");

    let token = csrf(&html_of(&dave).await);
    let out = submit(&dave, "/auth/logout", &[("csrf", token.as_str())]).await;
    assert_eq!(out.status(), StatusCode::FOUND);
    let after = dave.http.get(format!("{}/live", app.url())).send().await.unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED, "signed out: no stream");
    app.stop().await;
}

/// A complaint carol opens, and alice signed in: her browser, the case's
/// page in the portal, and the case.
async fn alice_on_a_complaint(app: &TestApp, title: &str) -> (Browser, String, serde_json::Value) {
    let case = app
        .client("carol")
        .post_wait("/api/v1/cases", &complaint(title))
        .await
        .unwrap()
        .body;
    let path = format!("/cases/{}", case["id"].as_str().unwrap());
    let alice = Browser::new(app);
    alice.sign_in("alice").await;
    (alice, path, case)
}

/// A browser's multipart body with one file part.
fn multipart(name: &str, content_type: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----casewire-test-boundary-41";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: {content_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn files_tags_and_links_from_the_detail_page() {
    let app = TestApp::spawn().await;
    let carol = app.client("carol");
    let case = carol
        .post_wait("/api/v1/cases", &complaint("Cracked lid"))
        .await
        .unwrap()
        .body;
    let other = carol
        .post_wait("/api/v1/cases", &complaint("Same lid"))
        .await
        .unwrap()
        .body;
    let path = format!("/cases/{}", case["id"].as_str().unwrap());
    let alice = Browser::new(&app);
    alice.sign_in("alice").await;
    let html = alice.open(&path).await.text().await.unwrap();
    assert!(html.contains("enctype=\"multipart/form-data\"") && html.contains("Add tag"));
    let token = csrf(&html);
    let upload = async |token: &str, name: &str, ty: &str, bytes: &[u8], json: bool| {
        let (content_type, body) = multipart(name, ty, bytes);
        let mut r = alice
            .http
            .post(format!("{}{path}/attachments?csrf={token}", app.url()))
            .header("Content-Type", content_type)
            .body(body);
        if json {
            r = r.header("Accept", "application/json");
        }
        r.send().await.unwrap()
    };
    let png = [b"\x89PNG\r\n\x1a\n".as_slice(), &[0u8; 64]].concat();
    let r = upload("forged", "lid.png", "image/png", &png, true).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "the CSRF token guards uploads too");
    let r = upload(&token, "lid.png", "image/png", b"not a png", true).await;
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let why: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        why["code"], "CW-CONTENT-MISMATCH",
        "the API's reason, for the script to show"
    );
    let r = upload(&token, "lid.png", "image/png", &png, false).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", r.text().await.unwrap());

    let html = alice.open(&path).await.text().await.unwrap();
    let at = html.find("/files/").expect("the file on the page") + 7;
    let file = html[at..at + 36].to_owned();
    assert!(
        html.contains(&format!("<img src=\"/files/{file}?inline=1\" alt=\"lid.png\"")),
        "an image is shown"
    );
    let shown = alice.open(&format!("/files/{file}?inline=1")).await;
    assert_eq!(shown.headers()["content-type"], "image/png");
    assert!(
        shown.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("inline")
    );
    assert!(
        shown.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox")
    );
    assert_eq!(shown.bytes().await.unwrap().as_ref(), png.as_slice());
    let saved = alice.open(&format!("/files/{file}")).await;
    assert!(
        saved.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );

    // Someone the case is not shown to gets no bytes.
    let dave = Browser::new(&app);
    dave.sign_in("dave").await;
    assert_eq!(
        dave.open(&format!("/files/{file}")).await.status(),
        StatusCode::NOT_FOUND
    );

    // Tags and links by form; the link takes the other case's key.
    for form in [
        vec![("action", "tag"), ("value", "lid")],
        vec![
            ("action", "link"),
            ("relation", "duplicates"),
            ("value", other["key"].as_str().unwrap()),
        ],
    ] {
        let mut full = vec![("csrf", token.as_str())];
        full.extend(form);
        let r = submit(&alice, &format!("{path}/do"), &full).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", r.text().await.unwrap());
    }
    let html = alice.open(&path).await.text().await.unwrap();
    assert!(
        html.contains("<li>lid ") && html.contains(other["id"].as_str().unwrap()),
        "the tag and the link"
    );
    let r = submit(
        &alice,
        &format!("{path}/do"),
        &[("csrf", token.as_str()), ("action", "untag:lid")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let html = alice.open(&path).await.text().await.unwrap();
    assert!(!html.contains("<li>lid "), "the tag is gone");
    app.stop().await;
}

#[tokio::test]
async fn comments_are_safe_markdown_in_threads() {
    let app = TestApp::spawn().await;
    let (alice, path, _) = alice_on_a_complaint(&app, "Lid squeaks").await;
    let token = csrf(&alice.open(&path).await.text().await.unwrap());
    let body = "**Checked** the lid <script>alert(1)</script> [x](javascript:alert(2))";
    let form = [("csrf", token.as_str()), ("body", body), ("visibility", "public")];
    assert_eq!(
        submit(&alice, &format!("{path}/comment"), &form).await.status(),
        StatusCode::SEE_OTHER
    );
    let html = alice.open(&path).await.text().await.unwrap();
    assert!(html.contains("<strong>Checked</strong>"), "Markdown rendered");
    assert!(
        !html.contains("<script>alert") && !html.contains("javascript:alert"),
        "nothing runs"
    );
    let at = html.find("name=\"parent\" value=\"").expect("a reply form") + 21;
    let parent = html[at..at + 36].to_owned();
    let form = [
        ("csrf", token.as_str()),
        ("body", "A reply _here_"),
        ("visibility", "public"),
        ("parent", parent.as_str()),
    ];
    assert_eq!(
        submit(&alice, &format!("{path}/comment"), &form).await.status(),
        StatusCode::SEE_OTHER
    );
    let case = app.client("alice").get(&format!("/api/v1{path}")).await.unwrap().body;
    assert_eq!(
        case["comments"][1]["parentId"],
        parent.as_str(),
        "the reply is in the thread"
    );
    let html = alice.open(&path).await.text().await.unwrap();
    let replies = html.find("class=\"replies\"").expect("a thread");
    assert!(
        html[replies..].contains("A reply <em>here</em>"),
        "the reply under its comment"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_dashboard_counts_what_its_reader_may_see() {
    let app = TestApp::spawn().await;
    let carol = app.client("carol");
    let mut his = complaint("Dave's grill");
    his["requester"] = json!({"email": "dave@example.com"});
    carol.post_wait("/api/v1/cases", &his).await.unwrap();
    for title in ["Fan", "Iron", "Lamp"] {
        carol.post_wait("/api/v1/cases", &complaint(title)).await.unwrap();
    }
    let alice = Browser::new(&app);
    alice.sign_in("alice").await;
    let html = alice.open("/dashboard").await.text().await.unwrap();
    assert!(html.contains("<strong>4</strong> open"), "alice works the queue");
    assert!(html.matches("<svg role=\"img\"").count() >= 5, "a chart per figure");
    assert!(
        html.contains("<td>complaints</td><td>4</td>"),
        "the figures as a table too"
    );
    let dave = Browser::new(&app);
    dave.sign_in("dave").await;
    let html = dave.open("/dashboard").await.text().await.unwrap();
    assert!(
        html.contains("<strong>1</strong> open"),
        "dave counts his own case only"
    );
    app.stop().await;
}

#[tokio::test]
async fn list_views_filters_and_saved_views() {
    let app = TestApp::spawn().await;
    let carol = app.client("carol");
    let mut ids = Vec::new();
    for title in ["Unassigned fan", "Assigned iron"] {
        ids.push(carol.post_wait("/api/v1/cases", &complaint(title)).await.unwrap().body["id"].clone());
    }
    let r = app
        .client("alice")
        .post_wait(
            &format!("/api/v1/cases/{}/assign", ids[1].as_str().unwrap()),
            &json!({"assignee": "alice"}),
        )
        .await
        .unwrap();
    assert!(r.status.is_success(), "{}", r.body);
    let alice = Browser::new(&app);
    let html = alice.sign_in("alice").await;
    assert!(
        html.contains("Unassigned in my queues") && html.contains("name=\"sla\""),
        "staff get the SLA filter"
    );
    let html = alice
        .open("/cases?unassigned=true&status=open")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Unassigned fan") && !html.contains("Assigned iron"),
        "the unassigned view"
    );
    let html = alice.open("/cases?assignee=me&status=open").await.text().await.unwrap();
    assert!(
        !html.contains("Unassigned fan") && html.contains("Assigned iron"),
        "my open cases"
    );

    let token = csrf(&html);
    let form = [
        ("csrf", token.as_str()),
        ("name", "Irons"),
        ("query", "q=iron&status=open"),
    ];
    let r = submit(&alice, "/views", &form).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.starts_with("cw_views_") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let html = alice.open("/cases").await.text().await.unwrap();
    assert!(
        html.contains("href=\"/cases?q=iron&amp;status=open\"") && html.contains(">Irons<"),
        "the saved view"
    );
    let r = submit(&alice, "/views", &[("csrf", token.as_str()), ("name", "Irons")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        !alice.open("/cases").await.text().await.unwrap().contains(">Irons<"),
        "removed"
    );
    let forged = submit(&alice, "/views", &[("csrf", "forged"), ("name", "X"), ("query", "")]).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);

    let dave = Browser::new(&app);
    let html = dave.sign_in("dave").await;
    assert!(
        !html.contains("name=\"sla\"") && !html.contains("SLA breached"),
        "no SLA filter for a requester"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_cases_tasks_are_worked_on_its_page_and_it_is_assigned_by_name() {
    let app = TestApp::spawn().await;
    let carol = app.client("carol");
    let mut open = complaint("Callback on the page");
    open["requester"] = json!({"email": "dave@example.com"});
    let case = carol.post_wait("/api/v1/cases", &open).await.unwrap().body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let task = json!({"kind": "human", "name": "Ring back", "queue": "complaints",
        "form": {"type": "object", "properties": {"reached": {"type": "boolean"}}}});
    let r = carol
        .post_wait(&format!("/api/v1/cases/{case}/tasks"), &task)
        .await
        .unwrap();
    assert!(r.status.is_success(), "{}", r.body);
    let path = format!("/cases/{case}");

    let dave = Browser::new(&app);
    dave.sign_in("dave").await;
    let html = dave.open(&path).await.text().await.unwrap();
    assert!(
        !html.contains("Ring back") && !html.contains(">Claim<"),
        "tasks are staff work: the API shows a requester none"
    );

    let alice = Browser::new(&app);
    alice.sign_in("alice").await;
    let html = alice.open(&path).await.text().await.unwrap();
    let claim_at = html.find("/claim\"").expect("a claim button on the case");
    let action = html[html[..claim_at].rfind("action=\"").unwrap() + 8..claim_at + 6].to_owned();
    let token = csrf(&html);
    let r = submit(&alice, &action, &[("csrf", token.as_str()), ("back", "case")]).await;
    assert_eq!(r.headers()["location"], path.as_str(), "back to the case");
    let html = alice.open(&path).await.text().await.unwrap();
    assert!(html.contains("name=\"out.reached\""), "her task's form on the case");
    let complete = action.replace("/claim", "/complete");
    let form = [("csrf", token.as_str()), ("back", "case"), ("out.reached", "true")];
    assert_eq!(submit(&alice, &complete, &form).await.status(), StatusCode::SEE_OTHER);

    let form = [("csrf", token.as_str()), ("action", "assign"), ("value", "bob")];
    assert_eq!(
        submit(&alice, &format!("{path}/do"), &form).await.status(),
        StatusCode::SEE_OTHER
    );
    let detail = app.client("alice").get(&format!("/api/v1{path}")).await.unwrap().body;
    assert_eq!(
        (detail["assignee"].as_str(), detail["tasks"][0]["state"].as_str()),
        (Some("bob"), Some("completed"))
    );
    app.stop().await;
}

#[tokio::test]
async fn the_details_are_edited_through_the_form_the_schema_makes() {
    let app = TestApp::spawn().await;
    let (alice, path, case) = alice_on_a_complaint(&app, "Edit me").await;
    let html = alice.open(&path).await.text().await.unwrap();
    assert!(
        html.contains("Edit details") && html.contains("name=\"data.product\""),
        "the schema's fields"
    );
    let token = csrf(&html);
    let product = case["data"]["product"].as_str().unwrap_or("Kettle K200").to_owned();
    let form = |channel: &'static str, title: &'static str| {
        vec![
            ("csrf".to_owned(), token.clone()),
            ("title".to_owned(), title.to_owned()),
            ("description".to_owned(), "Now with details".to_owned()),
            ("data.channel".to_owned(), channel.to_owned()),
            ("data.product".to_owned(), product.clone()),
        ]
    };
    let send = async |f: Vec<(String, String)>| {
        alice
            .http
            .post(format!("{}{path}/details", app.url()))
            .form(&f)
            .send()
            .await
            .unwrap()
    };
    // Not a channel the schema knows: the API's refusal on the page.
    let r = send(form("pigeon", "Edited")).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("CW-SCHEMA-VIOLATION"));
    let r = send(form("web", "Edited in the portal")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", r.text().await.unwrap());
    let after = app.client("alice").get(&format!("/api/v1{path}")).await.unwrap().body;
    assert_eq!(after["title"], "Edited in the portal");
    assert_eq!(after["data"]["channel"], "web");
    assert_eq!(after["description"], "Now with details");

    let dave = Browser::new(&app);
    dave.sign_in("dave").await;
    let viewer = dave.open(&path).await;
    assert!(
        !viewer.text().await.unwrap().contains("Edit details"),
        "not offered to who may not"
    );
    app.stop().await;
}

#[tokio::test]
async fn every_form_refuses_a_forged_csrf_token_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (alice, path, case) = alice_on_a_complaint(&app, "Kettle hums").await;
    let id = case["id"].as_str().unwrap();
    let carol = app.client("carol");
    let task = json!({"kind": "human", "name": "Check the kettle", "queue": "complaints"});
    let r = carol
        .post_wait(&format!("/api/v1/cases/{id}/tasks"), &task)
        .await
        .unwrap();
    assert!(r.status.is_success(), "{}", r.body);
    let task = carol.get(&format!("/api/v1/cases/{id}")).await.unwrap().body["tasks"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = carol.get(&format!("/api/v1/cases/{id}")).await.unwrap().body;
    let tasks = format!("/tasks/{id}/{task}");
    let forms: Vec<(String, Vec<(&str, &str)>)> = vec![
        (format!("{path}/comment"), vec![("body", "x"), ("visibility", "public")]),
        (format!("{path}/stage"), vec![("stage", "triage")]),
        (format!("{path}/do"), vec![("action", "assign-me")]),
        (format!("{path}/do"), vec![("action", "untag:lid")]),
        (format!("{path}/details"), vec![("title", "Renamed")]),
        (
            "/board/customer-complaint/move".into(),
            vec![("case", id), ("stage", "triage")],
        ),
        ("/new/customer-complaint".into(), vec![("title", "Forged")]),
        (format!("{tasks}/claim"), vec![]),
        (format!("{tasks}/complete"), vec![]),
        ("/views".into(), vec![("name", "Forged"), ("query", "")]),
        ("/auth/logout".into(), vec![]),
    ];
    for (target, fields) in &forms {
        let mut form = vec![("csrf", "forged")];
        form.extend(fields.iter().copied());
        let r = submit(&alice, target, &form).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{target}");
        assert!(r.text().await.unwrap().contains("stale"), "{target} says why");
    }
    let upload = alice
        .http
        .post(format!("{}{path}/attachments?csrf=forged", app.url()))
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), StatusCode::FORBIDDEN);

    let after = carol.get(&format!("/api/v1/cases/{id}")).await.unwrap().body;
    assert_eq!(after["revision"], before["revision"], "no command reached the case");
    let list = carol.get("/api/v1/cases?q=Forged").await.unwrap().body;
    assert_eq!(
        list["items"].as_array().map(Vec::len),
        Some(0),
        "no case was opened: {list}"
    );
    let list = alice.open("/cases").await.text().await.unwrap();
    assert!(list.contains("Kettle hums"), "still signed in");
    app.stop().await;
}
