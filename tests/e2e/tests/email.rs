//! E-mail to case through the inbound webhook (`POST /api/v1/inbound/email`),
//! with mail shaped like real clients' (`tests/email/corpus`): a mail opens
//! a case; the same mail again changes nothing; replies join their case by
//! `In-Reply-To` alone, `References` alone, the subject tag alone and a plus
//! address alone; a stranger's reply opens a linked case; a bounce marks
//! its recipient; what can not be taken is refused with its reason. The
//! attacker's cases first: only integrations deliver mail, and only to
//! their own tenant's mailboxes.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use casewire_e2e::{TestApp, eventually};
use casewire_runtime::config::MailboxConfig;
use serde_json::{Value, json};

fn corpus(name: &str) -> String {
    let path = format!("{}/../email/corpus/{name}", env!("CARGO_MANIFEST_DIR"));
    String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned()
}

async fn app() -> TestApp {
    TestApp::spawn_configured(mailbox).await
}

fn mailbox(c: &mut casewire_runtime::Config) {
    {
        c.email.mailboxes = vec![MailboxConfig {
            data: json!({"channel": "email", "product": "unknown"}),
            ..MailboxConfig::new("support", "casewire", "support@casewire.example", "customer-complaint")
        }];
    }
}

/// Delivers `raw` as `user`; the status and the answer.
async fn deliver(app: &TestApp, user: &str, raw: &str) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/inbound/email?mailbox=support", app.url()))
        .bearer_auth(app.client(user).token())
        .header("content-type", "message/rfc822")
        .body(raw.to_owned())
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn taken(app: &TestApp, raw: &str) -> Value {
    let (status, body) = deliver(app, "intake", raw).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn case(app: &TestApp, id: &str) -> Value {
    app.client("carol")
        .get(&format!("/api/v1/cases/{id}"))
        .await
        .unwrap()
        .body
}

async fn history_len(app: &TestApp, id: &str) -> usize {
    let h = app
        .client("carol")
        .get(&format!("/api/v1/cases/{id}/history"))
        .await
        .unwrap()
        .body;
    h["items"].as_array().unwrap().len()
}

/// A plain reply from `from` with extra header lines.
fn reply(from: &str, id: &str, headers: &str, subject: &str) -> String {
    format!(
        "From: {from}\r\nTo: support@casewire.example\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n{headers}\
         Date: Tue, 1 Dec 2026 14:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nStill broken.\r\n\r\n\
         On Tue, 1 Dec 2026, Support wrote:\r\n> old\r\n"
    )
}

/// Opens a case from the Gmail-shaped mail; its id and the case once the
/// projection shows its comment.
async fn first_mail(app: &TestApp) -> (String, Value) {
    let got = taken(app, &corpus("gmail-new.eml")).await;
    assert_eq!(got["outcome"], "case", "{got}");
    assert_eq!(got["threadedBy"], "new");
    let id = got["caseId"].as_str().unwrap().to_owned();
    let c = eventually(Duration::from_secs(10), || async {
        let c = case(app, &id).await;
        (c["comments"].as_array().is_some_and(|a| !a.is_empty())).then_some(c)
    })
    .await
    .unwrap();
    (id, c)
}

#[tokio::test]
async fn only_integrations_deliver_mail_and_only_to_their_tenants_mailboxes() {
    let app = app().await;
    let mail = corpus("gmail-new.eml");
    for user in ["alice", "dave", "erin"] {
        let (status, body) = deliver(&app, user, &mail).await;
        assert_eq!(status, 403, "{user}: {body}");
    }
    // An admin of another tenant: the mailbox is not theirs.
    let (status, body) = deliver(&app, "gina", &mail).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("CW-NOT-FOUND")), "{body}");
    let list = app.client("carol").get("/api/v1/cases").await.unwrap().body;
    assert_eq!(list["items"].as_array().unwrap().len(), 0, "nothing was opened");
    app.stop().await;
}

#[tokio::test]
async fn a_mail_opens_a_case_and_the_same_mail_again_changes_nothing() {
    let app = app().await;
    let (id, c) = first_mail(&app).await;
    assert_eq!(c["title"], "My kettle leaks");
    assert_eq!(c["requester"]["email"], "dave.miller@gmail.example");
    let comment = &c["comments"][0];
    assert_eq!(comment["author"], "dave.miller@gmail.example");
    assert_eq!(comment["visibility"], "public");
    assert!(comment["body"].as_str().unwrap().contains("leaks from the base"));
    assert_eq!(c["mail"]["participants"], json!(["dave.miller@gmail.example"]));
    let names: Vec<&str> = c["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["original.eml"]);
    let before = history_len(&app, &id).await;

    // A webhook retry, and the same mail fetched from another mailbox.
    let again = taken(&app, &corpus("gmail-new.eml")).await;
    assert_eq!(again["caseId"], id.as_str());
    let other_box = format!("Delivered-To: sales@casewire.example\r\n{}", corpus("gmail-new.eml"));
    assert_eq!(taken(&app, &other_box).await["caseId"], id.as_str());
    assert_eq!(history_len(&app, &id).await, before, "no event twice");
    // A different mail that reuses the Message-ID is a mail of its own.
    let reused = corpus("gmail-new.eml").replace("Could you replace it?", "Or refund it?");
    let other = taken(&app, &reused).await;
    assert_ne!(other["caseId"], id.as_str());
    app.stop().await;
}

#[tokio::test]
async fn a_reply_joins_its_case_by_in_reply_to_alone() {
    let app = app().await;
    let (id, _) = first_mail(&app).await;
    let ours = format!("In-Reply-To: <case-{id}.c9@casewire.local>\r\n");
    let got = taken(
        &app,
        &reply("dave.miller@gmail.example", "r1@gmail.example", &ours, "Re: kettle"),
    )
    .await;
    assert_eq!(
        (got["caseId"].as_str(), got["threadedBy"].as_str()),
        (Some(id.as_str()), Some("in-reply-to")),
        "{got}"
    );
    let c = case(&app, &id).await;
    assert_eq!(c["comments"].as_array().unwrap().len(), 2);
    assert_eq!(
        c["comments"][1]["body"], "Still broken.",
        "the quoted history is trimmed"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_reply_joins_its_case_by_references_alone() {
    let app = app().await;
    let (id, _) = first_mail(&app).await;
    // The customer's own earlier Message-ID, found in the index.
    let refs = "References: <unrelated@x.example> <CAF4x8s1m+Qa9w7aGmail0001@mail.gmail.example>\r\n";
    let got = taken(
        &app,
        &reply("dave.miller@gmail.example", "r2@gmail.example", refs, "more"),
    )
    .await;
    assert_eq!(
        (got["caseId"].as_str(), got["threadedBy"].as_str()),
        (Some(id.as_str()), Some("references")),
        "{got}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_reply_joins_its_case_by_the_subject_tag_alone() {
    let app = app().await;
    let (id, c) = first_mail(&app).await;
    let subject = format!("AW: [{}] My kettle leaks", c["key"].as_str().unwrap());
    let raw = reply("dave.miller@gmail.example", "r3@gmail.example", "", &subject);
    let got = taken(&app, &raw).await;
    assert_eq!(
        (got["caseId"].as_str(), got["threadedBy"].as_str()),
        (Some(id.as_str()), Some("subject-tag")),
        "{got}"
    );

    // The case is closed; the same reply delivered again (a retry) still
    // answers as the first time did, and opens nothing.
    for (path, body) in [("resolve", json!({"resolution": "replaced"})), ("close", json!({}))] {
        let r = app
            .client("carol")
            .post_wait(&format!("/api/v1/cases/{id}/{path}"), &body)
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{path}: {}", r.body);
    }
    let again = taken(&app, &raw).await;
    assert_eq!(again, got);
    let list = app.client("carol").get("/api/v1/cases").await.unwrap().body;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "no second case");
    app.stop().await;
}

#[tokio::test]
async fn a_reply_joins_its_case_by_a_plus_address_alone() {
    let app = app().await;
    let (id, c) = first_mail(&app).await;
    let key = c["key"].as_str().unwrap().to_ascii_lowercase();
    let raw = reply("dave.miller@gmail.example", "r4@gmail.example", "", "hello").replace(
        "To: support@casewire.example",
        &format!("To: support+{key}@casewire.example"),
    );
    let got = taken(&app, &raw).await;
    assert_eq!(
        (got["caseId"].as_str(), got["threadedBy"].as_str()),
        (Some(id.as_str()), Some("plus-address")),
        "{got}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_strangers_reply_opens_a_linked_case_and_an_auto_reply_is_marked() {
    let app = app().await;
    let (id, c) = first_mail(&app).await;
    let subject = format!("Re: [{}] My kettle leaks", c["key"].as_str().unwrap());
    let got = taken(&app, &reply("mallory@evil.example", "r5@evil.example", "", &subject)).await;
    assert_eq!(got["outcome"], "case", "{got}");
    assert_eq!(got["linkedTo"], id.as_str());
    let new = case(&app, got["caseId"].as_str().unwrap()).await;
    assert_eq!(new["links"][0]["target"], id.as_str(), "{new}");
    assert_eq!(
        case(&app, &id).await["comments"].as_array().unwrap().len(),
        1,
        "nothing joined the first case"
    );

    let ooo = corpus("out-of-office.eml").replace(
        "<case-01a23847-9f22-705b-bd9a-bbc5c5ef6a9a.c2@casewire.local>",
        &format!("<case-{id}.c2@casewire.local>"),
    );
    let ooo = ooo.replace(
        "From: Dave Miller <dave@example.com>",
        "From: Dave Miller <dave.miller@gmail.example>",
    );
    let got = taken(&app, &ooo).await;
    assert_eq!(got["caseId"], id.as_str());
    assert_eq!(got["noAutoReply"], "Auto-Submitted");

    // Our own mail coming back opens nothing (it would mail itself).
    let echo = reply("support@casewire.example", "echo1@casewire.example", "", "Fwd: hello");
    let got = taken(&app, &echo).await;
    assert_eq!(
        (got["outcome"].as_str(), got["caseId"].as_str()),
        (Some("ignored"), None),
        "{got}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_bounce_marks_the_recipient_and_is_no_comment() {
    let app = app().await;
    let (id, _) = first_mail(&app).await;
    let dsn = corpus("dsn-bounce.eml").replace("01a23847-9f22-705b-bd9a-bbc5c5ef6a9a", &id);
    let got = taken(&app, &dsn).await;
    assert_eq!(
        (got["outcome"].as_str(), got["caseId"].as_str()),
        (Some("bounce"), Some(id.as_str())),
        "{got}"
    );
    let c = case(&app, &id).await;
    assert_eq!(c["mail"]["undeliverable"], json!(["gone@example.com"]));
    assert_eq!(c["comments"].as_array().unwrap().len(), 1);
    assert_eq!(taken(&app, &dsn).await["outcome"], "bounce", "again: the same answer");
    app.stop().await;
}

#[tokio::test]
async fn what_can_not_be_taken_is_refused_with_its_reason_and_attachments_are_kept() {
    let app = app().await;
    for (file, reason) in [
        ("dangerous-attachment.eml", "blocked-attachment"),
        ("malformed.eml", ""),
    ] {
        let (status, body) = deliver(&app, "intake", &corpus(file)).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("CW-MAIL-QUARANTINED")),
            "{file}: {body}"
        );
        if !reason.is_empty() {
            assert_eq!(body["details"]["reason"], reason);
        }
    }
    let got = taken(&app, &corpus("outlook-reply-with-receipt.eml")).await;
    let c = case(&app, got["caseId"].as_str().unwrap()).await;
    let mut names: Vec<&str> = c["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["original.eml", "receipt.pdf", "winmail.dat"]);
    assert!(c["comments"][0]["body"].as_str().unwrap().contains("München"));
    app.stop().await;
}

#[tokio::test]
async fn a_public_comment_is_a_threaded_reply_and_its_answer_comes_back_to_the_case() {
    let Some(python) = casewire_e2e::ws::python() else {
        return;
    };
    let smtp = casewire_e2e::notify::SmtpSink::start(&python).await;
    let url = smtp.url();
    let app = TestApp::spawn_configured(|c| {
        mailbox(c);
        c.notify.smtp_url = Some(casewire_runtime::config::SecretUrl::new(url));
    })
    .await;
    let (id, c) = first_mail(&app).await;
    let key = c["key"].as_str().unwrap().to_owned();
    // The new case is acknowledged, as a machine's answer to that mail.
    let ack = eventually(Duration::from_secs(20), || async {
        smtp.to("dave.miller@gmail.example").into_iter().next()
    })
    .await
    .expect("the acknowledgement reaches the sender");
    let ack = ack["data"].as_str().unwrap().to_owned();
    for line in [
        "Auto-Submitted: auto-replied".to_owned(),
        "In-Reply-To: <CAF4x8s1m+Qa9w7aGmail0001@mail.gmail.example>".to_owned(),
        format!("Message-ID: <case-{id}.ack@casewire.local>"),
        format!("Subject: Re: [{key}] My kettle leaks"),
        "From: support@casewire.example".to_owned(),
    ] {
        assert!(ack.lines().any(|l| l == line), "no '{line}' in {ack}");
    }
    let ack_text = smtp.to("dave.miller@gmail.example")[0]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        ack_text.contains(&format!("Your complaint is case {key}")),
        "the definition's own wording: {ack_text}"
    );
    let r = app
        .client("carol")
        .post_wait(
            &format!("/api/v1/cases/{id}/comments"),
            // The comment goes with a file of the case: the reply carries it.
            &json!({"body": "We will send a new kettle.", "visibility": "public",
                "attachments": [c["attachments"][0]["fileId"]]}),
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    let sent = eventually(Duration::from_secs(20), || async {
        let all = smtp.to("dave.miller@gmail.example");
        all.into_iter().find(|m| {
            m["data"]
                .as_str()
                .unwrap()
                .contains(&format!("Message-ID: <case-{id}.c"))
        })
    })
    .await
    .expect("the reply reaches the requester");
    let data = sent["data"].as_str().unwrap();
    let header = |name: &str| {
        data.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} in {data}"))
            .to_owned()
    };
    assert_eq!(header("From"), "support@casewire.example");
    assert_eq!(header("Subject"), format!("Re: [{key}] My kettle leaks"));
    assert_eq!(header("In-Reply-To"), "<CAF4x8s1m+Qa9w7aGmail0001@mail.gmail.example>");
    assert!(
        header("References").contains(&format!("<case-{id}@casewire.local>")),
        "{data}"
    );
    let message_id = header("Message-ID");
    assert!(message_id.starts_with(&format!("<case-{id}.c")), "{message_id}");
    assert!(
        !data.contains("Auto-Submitted"),
        "a person's reply is not automatic: {data}"
    );
    assert!(sent["text"].as_str().unwrap().contains("We will send a new kettle."));
    let file = c["attachments"][0]["name"].as_str().unwrap();
    assert!(
        data.contains("Content-Disposition: attachment") && data.contains(file),
        "the comment's file is attached: {data}"
    );

    // The requester answers that mail: In-Reply-To names it, and so the case.
    let answer = reply(
        "dave.miller@gmail.example",
        "r9@gmail.example",
        &format!("In-Reply-To: {message_id}\r\n"),
        &format!("Re: Re: [{key}] My kettle leaks"),
    );
    let got = taken(&app, &answer).await;
    assert_eq!(
        (got["caseId"].as_str(), got["threadedBy"].as_str()),
        (Some(id.as_str()), Some("in-reply-to")),
        "{got}"
    );
    // What went out is on the timeline with its headers.
    let sent_events = eventually(Duration::from_secs(10), || async {
        let h = app
            .client("carol")
            .get(&format!("/api/v1/cases/{id}/history"))
            .await
            .unwrap()
            .body;
        let sent: Vec<Value> = h["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"].as_str().is_some_and(|t| t.contains("email-sent")))
            .cloned()
            .collect();
        (sent.len() == 2).then_some(sent)
    })
    .await
    .expect("the acknowledgement and the reply are recorded on the case");
    let all = Value::Array(sent_events).to_string();
    assert!(all.contains(&format!("case-{id}.ack@casewire.local")), "{all}");
    assert!(all.contains(&message_id[1..message_id.len() - 1]), "{all}");
    assert!(
        all.contains("dave.miller@gmail.example") && all.contains("original.eml"),
        "{all}"
    );
    // The requester's own mail is not mailed back to them, and a reply
    // to a case is not acknowledged: the acknowledgement and the comment.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(smtp.to("dave.miller@gmail.example").len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn held_mail_is_for_admins_to_read_release_into_a_case_or_drop() {
    use reqwest::Method;
    let app = app().await;
    let raw = corpus("dangerous-attachment.eml");
    let (_, first) = deliver(&app, "intake", &raw).await;
    let held = first["details"]["quarantineId"].as_str().unwrap().to_owned();
    let (_, again) = deliver(&app, "intake", &raw).await;
    assert_eq!(again["details"]["quarantineId"], held.as_str(), "held once");
    let (_, junk) = deliver(&app, "intake", &corpus("malformed.eml")).await;
    let junk = junk["details"]["quarantineId"].as_str().unwrap().to_owned();

    // The attacker's side first: the integration that delivers mail, a
    // worker and another tenant's admin see none of it.
    for user in ["intake", "alice", "dave"] {
        let r = app.client(user).get("/api/v1/inbound/quarantine").await.unwrap();
        assert_eq!(r.status, 403, "{user}: {}", r.body);
    }
    let gina = app.client("gina");
    assert_eq!(
        gina.get("/api/v1/inbound/quarantine").await.unwrap().body["items"],
        json!([])
    );
    let path = format!("/api/v1/inbound/quarantine/{held}");
    assert_eq!(gina.get(&path).await.unwrap().status, 404);
    let r = gina
        .send(Method::POST, &format!("{path}/release"), None, None)
        .await
        .unwrap();
    assert_eq!(r.status, 404, "another tenant's release finds nothing");

    let carol = app.client("carol");
    let list = carol.get("/api/v1/inbound/quarantine").await.unwrap().body;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{list}");
    let entry = items.iter().find(|i| i["id"] == held.as_str()).unwrap();
    assert_eq!(
        (entry["reason"].as_str(), entry["mailbox"].as_str()),
        (Some("blocked-attachment"), Some("support"))
    );
    assert!(entry["from"].as_str().is_some_and(|f| f.contains('@')), "{entry}");
    let bytes = reqwest::Client::new()
        .get(format!("{}{path}/raw", app.url()))
        .bearer_auth(carol.token())
        .send()
        .await
        .unwrap();
    assert_eq!(bytes.headers()["content-type"], "message/rfc822");
    assert_eq!(bytes.bytes().await.unwrap(), raw.as_bytes(), "kept whole");

    // Released: the admin vouches for the attachment; the mail is a case.
    let r = carol
        .send(Method::POST, &format!("{path}/release"), None, None)
        .await
        .unwrap();
    assert_eq!(
        (r.status.as_u16(), r.body["outcome"].as_str()),
        (200, Some("case")),
        "{}",
        r.body
    );
    let c = case(&app, r.body["caseId"].as_str().unwrap()).await;
    assert!(
        c["attachments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"].as_str().unwrap().ends_with(".exe")),
        "{c}"
    );
    assert_eq!(carol.get(&path).await.unwrap().status, 404, "gone once released");

    // Still unreadable: it stays held until dropped.
    let junk_path = format!("/api/v1/inbound/quarantine/{junk}");
    let r = carol
        .send(Method::POST, &format!("{junk_path}/release"), None, None)
        .await
        .unwrap();
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(carol.get(&junk_path).await.unwrap().status, 200);
    let r = carol.send(Method::DELETE, &junk_path, None, None).await.unwrap();
    assert_eq!(r.status, 204);
    assert_eq!(
        carol.get("/api/v1/inbound/quarantine").await.unwrap().body["items"],
        json!([])
    );
    app.stop().await;
}

#[tokio::test]
async fn a_mailbox_may_hold_a_strangers_reply_until_an_admin_lets_it_join() {
    let app = TestApp::spawn_configured(|c| {
        mailbox(c);
        c.email.mailboxes[0].strangers = casewire_runtime::config::Strangers::Hold;
    })
    .await;
    let (id, c) = first_mail(&app).await;
    let subject = format!("Re: [{}] My kettle leaks", c["key"].as_str().unwrap());
    let got = taken(&app, &reply("mallory@evil.example", "r9@evil.example", "", &subject)).await;
    assert_eq!(
        (
            got["outcome"].as_str(),
            got["linkedTo"].as_str(),
            got["caseId"].as_str()
        ),
        (Some("held"), Some(id.as_str()), None),
        "{got}"
    );
    let again = taken(&app, &reply("mallory@evil.example", "r9@evil.example", "", &subject)).await;
    assert_eq!(again["quarantineId"], got["quarantineId"]);
    assert_eq!(
        case(&app, &id).await["comments"].as_array().unwrap().len(),
        1,
        "nothing joined"
    );

    let carol = app.client("carol");
    let held = carol
        .get("/api/v1/inbound/quarantine?mailbox=support")
        .await
        .unwrap()
        .body;
    assert_eq!(held["items"][0]["reason"], "unknown-sender", "{held}");
    assert_eq!(held["items"][0]["caseId"], id.as_str());
    let release = format!(
        "/api/v1/inbound/quarantine/{}/release",
        got["quarantineId"].as_str().unwrap()
    );
    let r = carol.send(reqwest::Method::POST, &release, None, None).await.unwrap();
    assert_eq!(
        (
            r.body["outcome"].as_str(),
            r.body["caseId"].as_str(),
            r.body["threadedBy"].as_str()
        ),
        (Some("comment"), Some(id.as_str()), Some("subject-tag")),
        "{}",
        r.body
    );
    let joined = eventually(Duration::from_secs(10), || async {
        let c = case(&app, &id).await;
        (c["comments"].as_array().unwrap().len() == 2).then_some(c)
    })
    .await;
    assert!(joined.is_some(), "the released reply is a comment of the case");
    app.stop().await;
}

#[tokio::test]
async fn a_reply_the_mail_server_refuses_is_recorded_on_the_case_and_not_retried() {
    let Some(python) = casewire_e2e::ws::python() else {
        return;
    };
    let smtp = casewire_e2e::notify::SmtpSink::start(&python).await;
    let url = smtp.url();
    let app = TestApp::spawn_configured(|c| {
        mailbox(c);
        c.notify.smtp_url = Some(casewire_runtime::config::SecretUrl::new(url));
    })
    .await;
    let got = taken(
        &app,
        &reply("rejected@nowhere.example", "x1@nowhere.example", "", "Help"),
    )
    .await;
    let id = got["caseId"].as_str().unwrap().to_owned();
    // The acknowledgement is refused (550): the case says so.
    let bounced = eventually(Duration::from_secs(30), || async {
        let c = case(&app, &id).await;
        (c["mail"]["undeliverable"] == json!(["rejected@nowhere.example"])).then_some(c)
    })
    .await
    .expect("the refused reply marks the address undeliverable");
    assert_eq!(bounced["comments"].as_array().unwrap().len(), 1, "and is no comment");
    let history = app
        .client("carol")
        .get(&format!("/api/v1/cases/{id}/history"))
        .await
        .unwrap()
        .body;
    let event = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"].as_str().is_some_and(|t| t.contains("email-bounced")))
        .unwrap_or_else(|| panic!("no email-bounced in {history}"))
        .clone();
    let text = event.to_string();
    assert!(text.contains("550"), "the server's answer is kept: {text}");
    assert!(text.contains(&format!("case-{id}.ack@")), "{text}");
    // A public comment now goes to nobody, rather than failing again.
    let r = app
        .client("carol")
        .post_wait(
            &format!("/api/v1/cases/{id}/comments"),
            &json!({"body": "Hello?", "visibility": "public"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        smtp.messages().is_empty(),
        "nothing was accepted for the refused address"
    );
    app.stop().await;
}
