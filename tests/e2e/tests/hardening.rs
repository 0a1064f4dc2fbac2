//! Limits that keep one caller from hurting the platform or outliving its
//! rights: definition imports that would expand without bound, streams
//! that outlive their token, and more streams than a caller may hold.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use casewire_e2e::TestApp;
use futures::StreamExt;
use serde_json::Value;

/// A definition whose schema references one anchored list `refs` times.
fn alias_bomb(refs: usize) -> String {
    let (_, complaint) = casewire::DEMO_DEFINITIONS
        .iter()
        .find(|(name, _)| name.contains("complaint"))
        .unwrap();
    let refs = vec!["*l"; refs].join(",");
    complaint.replacen(
        "schema:\n",
        &format!("schema:\n  x-list: &l [a, b, c, d, e, f, g, h, i, j]\n  x-refs: [{refs}]\n"),
        1,
    )
}

#[tokio::test]
async fn a_yaml_alias_bomb_is_a_422_and_the_server_lives_on() {
    let app = TestApp::spawn_configured(|c| c.api.max_body_bytes = 2 * 1024 * 1024).await;
    let bomb = alias_bomb(400_000);
    assert!(bomb.len() > 1024 * 1024, "a 1 MiB document: {}", bomb.len());
    let carol = app.client("carol");
    let started = Instant::now();
    let r = carol.import_definition(&bomb).await.unwrap();
    println!("alias bomb of {} bytes answered in {:?}", bomb.len(), started.elapsed());
    assert_eq!(
        (r.status.as_u16(), r.body["code"].as_str()),
        (422, Some("CW-INVALID-DEFINITION")),
        "{}",
        r.body
    );
    assert!(r.body["message"].as_str().unwrap().contains("aliases"), "{}", r.body);
    // Still serving, and nothing was stored.
    let defs = carol.get("/api/v1/definitions").await.unwrap();
    assert_eq!(defs.status.as_u16(), 200);
    app.stop().await;
}

/// Reads a stream's lines until it ends or `limit` passes.
async fn lines_until_end(res: reqwest::Response, limit: Duration) -> (Vec<Value>, bool) {
    let mut stream = Box::pin(res.bytes_stream());
    let (mut buf, mut lines) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.next()).await {
            Err(_) => return (lines, false),
            Ok(None) => return (lines, true),
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk.unwrap()),
        }
        while let Some(i) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            lines.push(serde_json::from_slice(&line).unwrap());
        }
    }
}

#[tokio::test]
async fn a_stream_ends_when_its_token_expires() {
    let app = TestApp::spawn().await;
    let issuer = app.app.api.dev_issuer.clone().unwrap();
    let short = issuer.token_for("carol", 3).unwrap();
    let res = reqwest::Client::new()
        .get(format!("{}/api/v1/events?heartbeat=1", app.url()))
        .bearer_auth(&short)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let (lines, ended) = lines_until_end(res, Duration::from_secs(20)).await;
    assert!(ended, "the stream ended by itself: {lines:?}");
    let last = lines.last().unwrap();
    assert_eq!(last["closed"], "token-expired", "{last}");
    assert_eq!(last["code"], "CW-TOKEN-EXPIRED");
    assert!(last["position"].is_u64(), "where to resume: {last}");
    app.stop().await;
}

#[tokio::test]
async fn a_caller_holds_a_bounded_number_of_streams() {
    let app = TestApp::spawn_configured(|c| c.stream.max_per_principal = 2).await;
    let http = reqwest::Client::new();
    let open = |user: &str| {
        let (http, url, token) = (
            http.clone(),
            // A heartbeat far away: the slot must come back because the
            // server sees the client leave, not because a write failed.
            format!("{}/api/v1/events?heartbeat=300", app.url()),
            app.app.token(user).unwrap(),
        );
        async move { http.get(url).bearer_auth(token).send().await.unwrap() }
    };
    let first = open("alice").await;
    let second = open("alice").await;
    assert_eq!((first.status().as_u16(), second.status().as_u16()), (200, 200));
    let third = open("alice").await;
    assert_eq!(third.status().as_u16(), 429);
    let body: Value = third.json().await.unwrap();
    assert_eq!(body["code"], "CW-TOO-MANY-STREAMS", "{body}");
    assert_eq!(open("bob").await.status().as_u16(), 200, "others are not affected");
    // Closing one frees its slot as soon as the server sees the close.
    drop(first);
    let reopened = casewire_e2e::eventually(Duration::from_secs(10), || {
        let next = open("alice");
        async move { (next.await.status().as_u16() == 200).then_some(()) }
    })
    .await;
    assert!(reopened.is_some(), "a closed stream gives its slot back");
    drop(second);
    app.stop().await;
}

#[tokio::test]
async fn a_method_a_path_does_not_have_is_405_with_allow_and_the_document_declares_the_rest() {
    let app = TestApp::spawn().await;
    let http = reqwest::Client::new();
    let token = app.app.token("carol").unwrap();
    let case = format!("{}/api/v1/cases/{}", app.url(), uuid::Uuid::now_v7());
    for (method, url, allow) in [
        (reqwest::Method::POST, case.clone(), "GET"),
        (reqwest::Method::PUT, format!("{}/api/v1/cases", app.url()), "GET, POST"),
        (
            reqwest::Method::DELETE,
            format!("{}/api/v1/files/uploads", app.url()),
            "POST",
        ),
    ] {
        let r = http
            .request(method.clone(), &url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 405, "{method} {url}");
        assert_eq!(r.headers()["allow"], allow, "{method} {url}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "CW-METHOD-NOT-ALLOWED");
    }
    let r = http
        .get(format!("{}/api/v1/nowhere", app.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404, "an unknown path stays 404");

    // Every operation that needs a token declares 401 and 503; every one
    // with a body declares 413.
    let doc: Value = http
        .get(format!("{}/api/v1/openapi.json", app.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = &op["responses"];
            if op.get("security").is_some() {
                for status in ["401", "503"] {
                    assert!(responses.get(status).is_some(), "{method} {path} declares {status}");
                }
                checked += 1;
            }
            if op.get("requestBody").is_some() {
                assert!(responses.get("413").is_some(), "{method} {path} declares 413");
            }
        }
    }
    assert!(checked > 25, "{checked} secured operations");
    app.stop().await;
}
