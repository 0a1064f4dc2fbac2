//! Files over HTTP on the embedded platform (local-disk storage): uploads
//! with checksums, limits and sniffing, ranged downloads, attachments
//! through events, access by the case policy, and the sweeper.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use casewire_e2e::{TestApp, complaint, eventually};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Uploads `bytes` as `user`; returns the status and the JSON answer.
async fn upload(
    app: &TestApp,
    user: &str,
    name: &str,
    content_type: &str,
    bytes: Vec<u8>,
    checksum: Option<String>,
) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/api/v1/files", app.url()))
        .bearer_auth(app.app.token(user).unwrap())
        .header("content-type", content_type)
        .header("x-file-name", name)
        .body(bytes);
    if let Some(c) = checksum {
        req = req.header("x-checksum-sha256", c);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn get(app: &TestApp, user: &str, path: &str, range: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .get(format!("{}{path}", app.url()))
        .bearer_auth(app.app.token(user).unwrap());
    if let Some(r) = range {
        req = req.header("range", r);
    }
    req.send().await.unwrap()
}

fn stored_files(app: &TestApp) -> usize {
    let root = app.dir.path().join("files");
    walk(&root)
}

fn walk(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| if e.path().is_dir() { walk(&e.path()) } else { 1 })
        .sum()
}

#[tokio::test]
async fn uploads_are_checked_and_downloads_ranged() {
    let app = TestApp::spawn().await;
    let body: Vec<u8> = (0..100_000u32)
        .flat_map(|n| format!("line {n}\n").into_bytes())
        .collect();
    let sum = hex_sha256(&body);
    let (status, file) = upload(
        &app,
        "alice",
        "notes.txt",
        "text/plain",
        body.clone(),
        Some(sum.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{file}");
    assert_eq!(
        (file["size"].as_u64(), file["sha256"].as_str()),
        (Some(body.len() as u64), Some(sum.as_str()))
    );
    assert_eq!(
        (file["uploadedBy"].as_str(), file["state"].as_str()),
        (Some("alice"), Some("uploaded"))
    );
    let path = format!("/api/v1/files/{}", file["id"].as_str().unwrap());

    let whole = get(&app, "alice", &path, None).await;
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.headers()["content-type"], "text/plain");
    assert!(
        whole.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("notes.txt")
    );
    assert_eq!(whole.bytes().await.unwrap().as_ref(), body.as_slice());
    for (range, start, end) in [
        ("bytes=10-19", 10, 19),
        ("bytes=-5", body.len() - 5, body.len() - 1),
        ("bytes=600000-", 600_000, body.len() - 1),
    ] {
        let part = get(&app, "alice", &path, Some(range)).await;
        assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            part.headers()["content-range"].to_str().unwrap(),
            format!("bytes {start}-{end}/{}", body.len())
        );
        assert_eq!(part.bytes().await.unwrap().as_ref(), &body[start..=end], "{range}");
    }
    let past = get(&app, "alice", &path, Some("bytes=99999999-")).await;
    assert_eq!(past.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let head = reqwest::Client::new()
        .head(format!("{}{path}", app.url()))
        .bearer_auth(app.app.token("alice").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["content-length"], body.len().to_string().as_str());

    // Refusals leave nothing behind.
    let before = stored_files(&app);
    let bad_sum = hex_sha256(b"something else");
    let (status, err) = upload(&app, "alice", "x.txt", "text/plain", body.clone(), Some(bad_sum)).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("CW-CHECKSUM-MISMATCH"))
    );
    let (status, err) = upload(
        &app,
        "alice",
        "fake.png",
        "image/png",
        b"not a png at all".to_vec(),
        None,
    )
    .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("CW-CONTENT-MISMATCH")),
        "{err}"
    );
    let (status, err) = upload(&app, "alice", "x.exe", "application/x-msdownload", b"MZ".to_vec(), None).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("CW-UNSUPPORTED-MEDIA-TYPE"))
    );
    let png = [b"\x89PNG\r\n\x1a\n".as_slice(), &[0u8; 64]].concat();
    let (status, err) = upload(&app, "alice", "real.png", "text/plain", png.clone(), None).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("CW-CONTENT-MISMATCH"))
    );
    let (status, _) = upload(&app, "alice", "real.png", "image/png", png, None).await;
    assert_eq!(status, StatusCode::CREATED, "a real PNG declared as one is fine");
    assert_eq!(
        stored_files(&app),
        before + 2,
        "only the accepted upload added files (blob + its sidecar)"
    );
    let (status, _) = upload(&app, "erin", "v.txt", "text/plain", b"viewer".to_vec(), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "viewers do not upload");
    let presign = get(&app, "alice", &format!("{path}/url"), None).await;
    assert_eq!(
        presign.status(),
        StatusCode::NOT_IMPLEMENTED,
        "local disk has no presigned URLs"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_file_follows_the_policy_of_its_case() {
    let app = TestApp::spawn().await;
    let (status, file) = upload(&app, "alice", "photo.txt", "text/plain", b"evidence".to_vec(), None).await;
    assert_eq!(status, StatusCode::CREATED);
    let file_id = file["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/files/{file_id}");
    // Before it is attached, the file is its uploader's alone.
    assert_eq!(get(&app, "alice", &path, None).await.status(), StatusCode::OK);
    for user in ["bob", "carol", "erin", "gina"] {
        assert_eq!(
            get(&app, user, &path, None).await.status(),
            StatusCode::NOT_FOUND,
            "{user}"
        );
    }
    // Nobody else can attach it (it is not theirs to see).
    let alice = app.client("alice");
    let case = alice
        .post_wait("/api/v1/cases", &complaint("With a file"))
        .await
        .unwrap()
        .body;
    let case_id = case["id"].as_str().unwrap();
    let r = app
        .client("bob")
        .post_wait(
            &format!("/api/v1/cases/{case_id}/attachments"),
            &json!({"fileId": file_id}),
        )
        .await
        .unwrap();
    assert_eq!(
        (r.status.as_u16(), r.body["code"].as_str()),
        (422, Some("CW-VALIDATION")),
        "{}",
        r.body
    );

    let r = alice
        .post_wait(
            &format!("/api/v1/cases/{case_id}/attachments"),
            &json!({"fileId": file_id}),
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    let attachment = &r.body["attachments"][0];
    assert_eq!(
        (attachment["name"].as_str(), attachment["size"].as_u64()),
        (Some("photo.txt"), Some(8))
    );
    assert_eq!(attachment["sha256"], file["sha256"]);
    let history = alice
        .get(&format!("/api/v1/cases/{case_id}/history"))
        .await
        .unwrap()
        .body;
    assert!(
        history["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "casewire.case.attachment-added.v1")
    );
    let info = eventually(Duration::from_secs(5), || {
        let alice = alice.clone();
        let path = format!("{path}/info");
        async move {
            let info = alice.get(&path).await.unwrap().body;
            (info["cases"].as_array().is_some_and(|c| !c.is_empty())).then_some(info)
        }
    })
    .await
    .expect("the projector links the file to the case");
    assert_eq!(
        (info["cases"][0].as_str(), info["state"].as_str()),
        (Some(case_id), Some("pinned"))
    );

    // Now whoever sees the case reads the file; nobody else, in any tenant.
    for (user, want) in [
        ("bob", StatusCode::OK),
        ("carol", StatusCode::OK),
        ("erin", StatusCode::OK),
        ("dave", StatusCode::NOT_FOUND),
        ("gina", StatusCode::NOT_FOUND),
    ] {
        assert_eq!(get(&app, user, &path, None).await.status(), want, "{user}");
    }
    // A viewer may not detach; the worker may. The file stays in the history.
    let r = app
        .client("erin")
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/cases/{case_id}/attachments/{file_id}"),
            None,
            Some(5),
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 403);
    let r = alice
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/cases/{case_id}/attachments/{file_id}"),
            None,
            Some(5),
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    assert_eq!(r.body["attachments"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn the_sweeper_removes_what_no_case_holds_and_nothing_else() {
    let app = TestApp::spawn_configured(|c| {
        c.storage.unattached_ttl_secs = 1;
        c.storage.sweep_every_secs = 1;
        c.storage.max_upload_bytes = 64 * 1024;
    })
    .await;
    let (_, loose) = upload(&app, "alice", "loose.txt", "text/plain", b"loose".to_vec(), None).await;
    let (_, kept) = upload(&app, "alice", "kept.txt", "text/plain", b"kept".to_vec(), None).await;
    let alice = app.client("alice");
    let case = alice
        .post_wait("/api/v1/cases", &complaint("Keeps a file"))
        .await
        .unwrap()
        .body;
    let r = alice
        .post_wait(
            &format!("/api/v1/cases/{}/attachments", case["id"].as_str().unwrap()),
            &json!({"fileId": kept["id"]}),
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    let loose_path = format!("/api/v1/files/{}", loose["id"].as_str().unwrap());
    let gone = eventually(Duration::from_secs(10), || {
        let app = &app;
        let path = loose_path.clone();
        async move { (get(app, "alice", &path, None).await.status() == StatusCode::NOT_FOUND).then_some(()) }
    })
    .await;
    assert!(gone.is_some(), "the unattached file is swept");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let kept_path = format!("/api/v1/files/{}", kept["id"].as_str().unwrap());
    let res = get(&app, "alice", &kept_path, None).await;
    assert_eq!(res.status(), StatusCode::OK, "an attached file is never swept");
    assert_eq!(res.bytes().await.unwrap().as_ref(), b"kept");
    assert_eq!(stored_files(&app), 2, "one blob and its sidecar remain");
    // The size limit, while we are here.
    let (status, err) = upload(&app, "alice", "big.txt", "text/plain", vec![b'a'; 65 * 1024], None).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("CW-PAYLOAD-TOO-LARGE"))
    );
    app.stop().await;
}

/// The test S3 server (Garage, started by tests/run), or `None` after
/// saying why.
fn s3() -> Option<(String, String, String)> {
    let (Ok(url), Ok(key), Ok(secret)) = (
        std::env::var("CASEWIRE_TEST_S3"),
        std::env::var("CASEWIRE_TEST_S3_ACCESS_KEY"),
        std::env::var("CASEWIRE_TEST_S3_SECRET_KEY"),
    ) else {
        casewire_ports::contract::skip(
            "set CASEWIRE_TEST_S3=s3://bucket?endpoint=... and CASEWIRE_TEST_S3_ACCESS_KEY/_SECRET_KEY (tests/run starts Garage)",
        );
        return None;
    };
    Some((url, key, secret))
}

/// The storage URL of a test: its own prefix, the credentials, and the
/// endpoint given (a proxy in front of the server, or the server).
fn s3_storage(url: &str, key: &str, secret: &str, endpoint: Option<&str>, public: &str) -> String {
    let mut url = url.to_owned();
    if let Some(e) = endpoint {
        let start = url.find("endpoint=").unwrap() + "endpoint=".len();
        let end = url[start..].find('&').map_or(url.len(), |i| start + i);
        url.replace_range(start..end, e);
    }
    format!(
        "{url}&access_key={key}&secret_key={secret}&prefix=e2e-{}/&public_endpoint={public}&operation_timeout_ms=5000",
        uuid::Uuid::now_v7().simple()
    )
}

fn endpoint_of(url: &str) -> String {
    let start = url.find("endpoint=").unwrap() + "endpoint=".len();
    let end = url[start..].find('&').map_or(url.len(), |i| start + i);
    url[start..end].to_owned()
}

#[tokio::test]
async fn on_s3_presigned_urls_use_the_public_endpoint() {
    let Some((url, key, secret)) = s3() else { return };
    // The same server under another name, as a public endpoint would be.
    let public = endpoint_of(&url).replace("127.0.0.1", "localhost");
    let storage = s3_storage(&url, &key, &secret, None, &public);
    let app = TestApp::spawn_configured(|c| c.storage.url = casewire_runtime::config::SecretUrl::new(storage)).await;
    let body: Vec<u8> = (0..3_000_000u32).map(|n| (n % 251) as u8).collect();
    let (status, file) = upload(
        &app,
        "alice",
        "scan.bin",
        "application/octet-stream",
        body.clone(),
        Some(hex_sha256(&body)),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{file}");
    let path = format!("/api/v1/files/{}", file["id"].as_str().unwrap());
    let part = get(&app, "alice", &path, Some("bytes=1000-1999")).await;
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.bytes().await.unwrap().as_ref(), &body[1000..2000]);

    let presigned: Value = get(&app, "alice", &format!("{path}/url"), None)
        .await
        .json()
        .await
        .unwrap();
    let link = presigned["url"].as_str().unwrap();
    let host = reqwest::Url::parse(link).unwrap().host_str().unwrap().to_owned();
    assert_eq!(
        host, "localhost",
        "the public endpoint, never the internal host: {link}"
    );
    let fetched = reqwest::get(link).await.unwrap();
    assert_eq!(fetched.status(), StatusCode::OK, "a plain HTTP client fetches it");
    assert_eq!(fetched.bytes().await.unwrap().as_ref(), body.as_slice());
    // Others get no URL for a file they can not see.
    assert_eq!(
        get(&app, "bob", &format!("{path}/url"), None).await.status(),
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

/// A TCP proxy to `target` whose connections can be cut at once.
struct Cuttable {
    addr: std::net::SocketAddr,
    cut: tokio_util::sync::CancellationToken,
}

async fn cuttable_proxy(target: String) -> Cuttable {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cut = tokio_util::sync::CancellationToken::new();
    let stop = cut.clone();
    tokio::spawn(async move {
        loop {
            let (mut inbound, _) = tokio::select! {
                _ = stop.cancelled() => return,
                accepted = listener.accept() => accepted.unwrap(),
            };
            let (target, stop) = (target.clone(), stop.clone());
            tokio::spawn(async move {
                let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                    return;
                };
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                }
            });
        }
    });
    Cuttable { addr, cut }
}

#[tokio::test]
async fn an_s3_outage_during_an_upload_is_a_503_and_leaves_no_record() {
    let Some((url, key, secret)) = s3() else { return };
    let target = endpoint_of(&url).trim_start_matches("http://").to_owned();
    let proxy = cuttable_proxy(target).await;
    let endpoint = format!("http://{}", proxy.addr);
    let storage = s3_storage(&url, &key, &secret, Some(&endpoint), &endpoint);
    let app = TestApp::spawn_configured(|c| c.storage.url = casewire_runtime::config::SecretUrl::new(storage)).await;
    // A 40 MB body sent slowly enough that the cut lands midway.
    let file_id = uuid::Uuid::now_v7();
    let chunks = futures::stream::iter(0..40).then(|_| async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok::<_, std::io::Error>(vec![7u8; 1 << 20])
    });
    let cut = proxy.cut.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(800)).await;
        cut.cancel();
    });
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/files", app.url()))
        .bearer_auth(app.app.token("alice").unwrap())
        .header("content-type", "application/octet-stream")
        .header("x-file-name", "cut.bin")
        .header("x-file-id", file_id.to_string())
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await;
    // The API answers 503 (or, if it answered before reading the whole body,
    // the client may see the connection end); either way nothing is kept.
    if let Ok(res) = res {
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("CW-UNAVAILABLE")),
            "{body}"
        );
    }
    let record = app
        .app
        .platform
        .reads
        .get_file(&app.app.platform.config.default_tenant, file_id)
        .await
        .unwrap();
    assert_eq!(record, None, "no record of a file whose bytes were not stored");
    assert_eq!(
        get(&app, "alice", &format!("/api/v1/files/{file_id}/info"), None)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

#[tokio::test]
async fn on_s3_a_presigned_upload_is_checked_when_completed() {
    let Some((url, key, secret)) = s3() else { return };
    let public = endpoint_of(&url).replace("127.0.0.1", "localhost");
    let storage = s3_storage(&url, &key, &secret, None, &public);
    let app = TestApp::spawn_configured(|c| c.storage.url = casewire_runtime::config::SecretUrl::new(storage)).await;
    let alice = app.client("alice");
    let ask = alice
        .post(
            "/api/v1/files/uploads",
            &json!({"name": "form.pdf", "contentType": "application/pdf"}),
        )
        .await
        .unwrap();
    assert_eq!(ask.status.as_u16(), 201, "{}", ask.body);
    let link = ask.body["url"].as_str().unwrap();
    assert_eq!(
        reqwest::Url::parse(link).unwrap().host_str(),
        Some("localhost"),
        "{link}"
    );
    let id = ask.body["fileId"].as_str().unwrap();
    let complete = format!("/api/v1/files/uploads/{id}/complete");
    let early = alice.post(&complete, &json!({})).await.unwrap();
    assert_eq!(
        (early.status.as_u16(), early.body["code"].as_str()),
        (409, Some("CW-UPLOAD-MISSING"))
    );
    assert_eq!(
        get(&app, "alice", &format!("/api/v1/files/{id}"), None).await.status(),
        StatusCode::NOT_FOUND,
        "not readable before it is complete"
    );
    let pdf = [b"%PDF-1.7\n".as_slice(), &[b'x'; 5000]].concat();
    let put = reqwest::Client::new()
        .put(link)
        .header("content-type", "application/pdf")
        .body(pdf.clone())
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.text().await.unwrap());
    // Only the uploader completes it.
    assert_eq!(
        app.client("bob")
            .post(&complete, &json!({}))
            .await
            .unwrap()
            .status
            .as_u16(),
        404
    );
    let done = alice.post(&complete, &json!({})).await.unwrap();
    assert_eq!(done.status.as_u16(), 200, "{}", done.body);
    assert_eq!(
        (done.body["size"].as_u64(), done.body["sha256"].as_str()),
        (Some(pdf.len() as u64), Some(hex_sha256(&pdf).as_str()))
    );
    assert_eq!(
        alice.post(&complete, &json!({})).await.unwrap().status.as_u16(),
        404,
        "once"
    );
    let back = get(&app, "alice", &format!("/api/v1/files/{id}"), None).await;
    assert_eq!(back.bytes().await.unwrap().as_ref(), pdf.as_slice());

    // The URL is spent at complete: a PUT with it afterwards (it is still
    // within its lifetime, S3 can not revoke it) changes nothing a case
    // would attach.
    let case = alice
        .post_wait("/api/v1/cases", &complaint("Presigned"))
        .await
        .unwrap()
        .body;
    let attached = alice
        .post_wait(
            &format!("/api/v1/cases/{}/attachments", case["id"].as_str().unwrap()),
            &json!({"fileId": id}),
        )
        .await
        .unwrap();
    assert_eq!(attached.status.as_u16(), 200, "{}", attached.body);
    let evil = [b"%PDF-1.7\n".as_slice(), b"swapped after the attach"].concat();
    let _ = reqwest::Client::new()
        .put(link)
        .header("content-type", "application/pdf")
        .body(evil)
        .send()
        .await
        .unwrap();
    let back = get(&app, "alice", &format!("/api/v1/files/{id}"), None).await;
    assert_eq!(
        back.bytes().await.unwrap().as_ref(),
        pdf.as_slice(),
        "the attached bytes stay"
    );
    let info = alice.get(&format!("/api/v1/files/{id}/info")).await.unwrap();
    assert_eq!(info.body["sha256"].as_str(), Some(hex_sha256(&pdf).as_str()));

    // Bytes that are not what was declared are refused and deleted.
    let ask = alice
        .post(
            "/api/v1/files/uploads",
            &json!({"name": "fake.pdf", "contentType": "application/pdf"}),
        )
        .await
        .unwrap();
    let (link, id) = (ask.body["url"].as_str().unwrap(), ask.body["fileId"].as_str().unwrap());
    reqwest::Client::new()
        .put(link)
        .header("content-type", "application/pdf")
        .body("not a pdf")
        .send()
        .await
        .unwrap();
    let refused = alice
        .post(&format!("/api/v1/files/uploads/{id}/complete"), &json!({}))
        .await
        .unwrap();
    assert_eq!(
        (refused.status.as_u16(), refused.body["code"].as_str()),
        (415, Some("CW-CONTENT-MISMATCH"))
    );
    let again = alice
        .post(&format!("/api/v1/files/uploads/{id}/complete"), &json!({}))
        .await
        .unwrap();
    assert_eq!(again.status.as_u16(), 409, "the refused bytes are gone: {}", again.body);
    app.stop().await;
}

#[tokio::test]
async fn the_retention_rule_purges_bytes_of_removed_attachments_and_keeps_history() {
    let app = TestApp::spawn_configured(|c| {
        c.storage.sweep_every_secs = 1;
        c.storage.purge_detached_after_secs = Some(1);
    })
    .await;
    let (_, file) = upload(&app, "alice", "old.txt", "text/plain", b"old bytes".to_vec(), None).await;
    let (_, held) = upload(&app, "alice", "held.txt", "text/plain", b"still held".to_vec(), None).await;
    let alice = app.client("alice");
    let case = alice
        .post_wait("/api/v1/cases", &complaint("Retention"))
        .await
        .unwrap()
        .body;
    let case_id = case["id"].as_str().unwrap();
    for f in [&file, &held] {
        let r = alice
            .post_wait(
                &format!("/api/v1/cases/{case_id}/attachments"),
                &json!({"fileId": f["id"]}),
            )
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    }
    let r = alice
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/cases/{case_id}/attachments/{}", file["id"].as_str().unwrap()),
            None,
            Some(5),
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    let path = format!("/api/v1/files/{}", file["id"].as_str().unwrap());
    let gone = eventually(Duration::from_secs(15), || {
        let (app, path) = (&app, path.clone());
        async move { (get(app, "alice", &path, None).await.status() == StatusCode::GONE).then_some(()) }
    })
    .await;
    assert!(gone.is_some(), "the detached file's bytes are purged");
    let info: Value = get(&app, "alice", &path, None).await.json().await.unwrap();
    assert_eq!(
        (info["code"].as_str(), info["details"]["state"].as_str()),
        (Some("CW-GONE"), Some("purged"))
    );
    let history = alice
        .get(&format!("/api/v1/cases/{case_id}/history"))
        .await
        .unwrap()
        .body;
    let added = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "casewire.case.attachment-added.v1")
        .count();
    assert_eq!(added, 2, "the history still names both files");
    let held_path = format!("/api/v1/files/{}", held["id"].as_str().unwrap());
    let still = get(&app, "bob", &held_path, None).await;
    assert_eq!(still.status(), StatusCode::OK, "a file a case holds is never purged");
    assert_eq!(still.bytes().await.unwrap().as_ref(), b"still held");
    app.stop().await;
}

#[tokio::test]
async fn a_multipart_form_uploads_like_headers_do() {
    let app = TestApp::spawn().await;
    let boundary = "casewire-boundary-1234";
    let file_id = uuid::Uuid::now_v7();
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"fileId\"\r\n\r\n{file_id}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"from-a-form.txt\"\r\n\
         Content-Type: text/plain\r\n\r\nhello from a form\r\n--{boundary}--\r\n"
    );
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/files", app.url()))
        .bearer_auth(app.app.token("alice").unwrap())
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let file: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{file}");
    assert_eq!(file["id"], file_id.to_string());
    assert_eq!(
        (file["name"].as_str(), file["contentType"].as_str()),
        (Some("from-a-form.txt"), Some("text/plain"))
    );
    assert_eq!(file["sha256"], hex_sha256(b"hello from a form"));
    let back = get(&app, "alice", &format!("/api/v1/files/{file_id}"), None).await;
    assert_eq!(back.bytes().await.unwrap().as_ref(), b"hello from a form");
    // A form without its file part, or with an unknown field, is a 400.
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/files", app.url()))
        .bearer_auth(app.app.token("alice").unwrap())
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"color\"\r\n\r\nred\r\n--{boundary}--\r\n"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    app.stop().await;
}

#[tokio::test]
async fn a_refused_attach_pins_nothing_and_one_rejected_later_unpins() {
    // No engine yet: commands queue up, so the API defers a check that
    // hangs on an earlier command, and the engine rejects it later.
    let app = TestApp::spawn_with(casewire::embedded::Services {
        engine: false,
        projector: true,
        ws: true,
        notify: true,
        worker: true,
    })
    .await;
    let alice = app.client("alice");
    let state_of = |id: String| {
        let alice = alice.clone();
        async move {
            let info = alice.get(&format!("/api/v1/files/{id}/info")).await.unwrap();
            info.body["state"].as_str().unwrap_or_default().to_owned()
        }
    };
    let engine = app.start_engine();
    let case = alice.post_wait("/api/v1/cases", &complaint("Pins")).await.unwrap().body;
    let case_id = case["id"].as_str().unwrap().to_owned();
    for (path, body) in [("resolve", json!({"resolution": "refunded"})), ("close", json!({}))] {
        let r = alice
            .post_wait(&format!("/api/v1/cases/{case_id}/{path}"), &body)
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{path}: {}", r.body);
    }

    // Refused at once: a closed case takes no attachments.
    let (_, early) = upload(&app, "alice", "early.txt", "text/plain", b"early".to_vec(), None).await;
    let early_id = early["id"].as_str().unwrap().to_owned();
    let r = alice
        .post_wait(
            &format!("/api/v1/cases/{case_id}/attachments"),
            &json!({"fileId": early_id}),
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 409, "{}", r.body);
    assert_eq!(state_of(early_id).await, "uploaded", "a refused attach pins nothing");

    // Accepted while a reopen, a resolve and a close are in flight,
    // rejected by the engine: the pin is given back.
    engine.stop().await;
    for (path, body) in [
        ("reopen", json!({})),
        ("resolve", json!({"resolution": "refunded"})),
        ("close", json!({})),
    ] {
        let r = alice
            .post(&format!("/api/v1/cases/{case_id}/{path}"), &body)
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 202, "{path}: {}", r.body);
    }
    let (_, late) = upload(&app, "alice", "late.txt", "text/plain", b"late".to_vec(), None).await;
    let late_id = late["id"].as_str().unwrap().to_owned();
    let r = alice
        .post(
            &format!("/api/v1/cases/{case_id}/attachments"),
            &json!({"fileId": late_id}),
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 202, "deferred to the engine: {}", r.body);
    let command = r.body["commandId"].as_str().unwrap().to_owned();
    assert_eq!(state_of(late_id.clone()).await, "pinned", "pinned while in flight");
    let engine = app.start_engine();
    let outcome = eventually(Duration::from_secs(20), || {
        let (alice, command) = (alice.clone(), command.clone());
        async move {
            let r = alice.get(&format!("/api/v1/commands/{command}")).await.unwrap();
            (r.body["status"] != "pending" && r.body["status"] != "processing").then_some(r.body)
        }
    })
    .await
    .expect("the attach was decided");
    assert_eq!(outcome["status"], "rejected", "{outcome}");
    assert_eq!(state_of(late_id).await, "uploaded", "the engine gave the pin back");
    engine.stop().await;
    app.stop().await;
}
