//! The BlobStore contract against a real S3 server that checks signatures
//! (`tests/run` starts Garage and sets `CASEWIRE_TEST_S3` =
//! `s3://bucket?endpoint=http://127.0.0.1:P&region=garage&path_style=true`
//! plus `CASEWIRE_TEST_S3_ACCESS_KEY` / `CASEWIRE_TEST_S3_SECRET_KEY`), plus
//! what only S3 has: presigned URLs on the public endpoint, no dangling
//! multipart uploads, and prompt `Unavailable` errors from a dead server
//! (those two need no server and always run). Each test uses its own key
//! prefix, so runs never see each other's objects.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use casewire_blob::{S3BlobStore, S3Settings};
use casewire_ports::contract::skip;
use casewire_ports::{BlobError, BlobStore, ByteStream};
use futures::StreamExt;
use secrecy::SecretString;
use sha2::{Digest, Sha256};

const MIB: usize = 1024 * 1024;

/// Settings for a fresh prefix with 5 MiB parts, or `None` (after saying
/// why) without a server.
fn settings() -> Option<S3Settings> {
    let Ok(url) = std::env::var("CASEWIRE_TEST_S3") else {
        skip(
            "set CASEWIRE_TEST_S3=s3://bucket?endpoint=... and CASEWIRE_TEST_S3_ACCESS_KEY/_SECRET_KEY (tests/run starts Garage and sets them)",
        );
        return None;
    };
    let mut s = S3Settings::from_url(&url).expect("CASEWIRE_TEST_S3 parses");
    if let (Ok(key), Ok(secret)) = (
        std::env::var("CASEWIRE_TEST_S3_ACCESS_KEY"),
        std::env::var("CASEWIRE_TEST_S3_SECRET_KEY"),
    ) {
        s.access_key = Some(key);
        s.secret_key = Some(SecretString::from(secret));
    }
    s.prefix = format!("test-{}/", uuid::Uuid::now_v7().simple());
    s.part_size = 5 * MIB;
    Some(s)
}

fn body_of(data: &[u8], chunk: usize) -> ByteStream {
    let items: Vec<Result<Bytes, BlobError>> = data.chunks(chunk).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    Box::pin(futures::stream::iter(items))
}

fn noise(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn sha(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

async fn read_all(read: casewire_ports::BlobRead) -> Vec<u8> {
    let mut out = Vec::new();
    let mut body = read.body;
    while let Some(chunk) = body.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

/// Objects and unfinished multipart uploads under the store's prefix.
async fn leftovers(store: &S3BlobStore, prefix: &str) -> (Vec<String>, Vec<String>) {
    let objects = store
        .client()
        .list_objects_v2()
        .bucket(store.bucket())
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    let uploads = store
        .client()
        .list_multipart_uploads()
        .bucket(store.bucket())
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    (
        objects
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect(),
        uploads
            .uploads()
            .iter()
            .filter_map(|u| u.key().map(str::to_owned))
            .collect(),
    )
}

#[tokio::test]
async fn passes_the_blob_store_contract() {
    let Some(s) = settings() else { return };
    let prefix = s.prefix.clone();
    let store = Arc::new(S3BlobStore::connect(s).await.unwrap());
    casewire_ports::contract::blob_store_contract(store.clone()).await;
    assert_eq!(
        leftovers(&store, &prefix).await,
        (vec![], vec![]),
        "every key was deleted and every failed multipart upload aborted"
    );
}

#[tokio::test]
async fn a_multipart_body_without_an_announced_hash_gets_its_hash() {
    let Some(s) = settings() else { return };
    let store = S3BlobStore::connect(s).await.unwrap();
    let data = noise(11 * MIB + 3);
    let info = store
        .put("t/big", "video/mp4", body_of(&data, 1_000_003), None)
        .await
        .unwrap();
    assert_eq!(
        (info.size, info.sha256.as_str()),
        (data.len() as u64, sha(&data).as_str())
    );
    let head = store.head("t/big").await.unwrap().unwrap();
    assert_eq!(head, info, "the hash was stored after completion, content type kept");
    assert!(read_all(store.get("t/big", None).await.unwrap()).await == data);
    store.delete("t/big").await.unwrap();
}

#[tokio::test]
async fn failed_multipart_uploads_leave_nothing_behind() {
    let Some(s) = settings() else { return };
    let prefix = s.prefix.clone();
    let store = S3BlobStore::connect(s).await.unwrap();
    let data = noise(11 * MIB);

    let wrong = "f".repeat(64);
    let r = store
        .put("t/mismatch", "text/plain", body_of(&data, 65_536), Some(&wrong))
        .await;
    assert!(matches!(r, Err(BlobError::ChecksumMismatch { .. })), "{r:?}");

    let mut items: Vec<Result<Bytes, BlobError>> = data
        .chunks(MIB)
        .take(7)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    items.push(Err(BlobError::Refused("not a PDF after all".into())));
    let r = store
        .put("t/refused", "text/plain", Box::pin(futures::stream::iter(items)), None)
        .await;
    assert_eq!(r.unwrap_err(), BlobError::Refused("not a PDF after all".into()));
    assert_eq!(
        leftovers(&store, &prefix).await,
        (vec![], vec![]),
        "aborted on the spot"
    );

    // A client that goes away after one part was sent: the dropped put
    // aborts its upload from a background task.
    let first: Vec<Result<Bytes, BlobError>> = vec![Ok(Bytes::from(data[..6 * MIB].to_vec()))];
    let stalled: ByteStream = Box::pin(futures::stream::iter(first).chain(futures::stream::pending()));
    let put = store.put("t/stalled", "text/plain", stalled, None);
    assert!(tokio::time::timeout(Duration::from_secs(3), put).await.is_err());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = leftovers(&store, &prefix).await;
        if left == (vec![], vec![]) {
            break;
        }
        assert!(Instant::now() < deadline, "still there after a dropped put: {left:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn presigned_urls_use_the_public_endpoint_and_work() {
    let Some(mut s) = settings() else { return };
    let endpoint = s.endpoint.clone().expect("the test URL names an endpoint");
    assert!(
        endpoint.contains("127.0.0.1"),
        "the test server is reached as 127.0.0.1: {endpoint}"
    );
    // The same server under another name: the host differs, the URL still works.
    s.public_endpoint = Some(endpoint.replace("127.0.0.1", "localhost"));
    let internal = S3BlobStore::connect(with_public_endpoint(&s, None)).await.unwrap();
    let store = S3BlobStore::connect(s).await.unwrap();
    let http = reqwest::Client::new();

    store
        .put("t/report", "application/pdf", body_of(b"%PDF-1.7 tiny", 4), None)
        .await
        .unwrap();
    let url = store
        .presign_get("t/report", Duration::from_secs(300), Some("Q3 r\u{e9}sum\u{e9}.pdf"))
        .await
        .unwrap()
        .expect("S3 presigns");
    let parsed = url::Url::parse(&url).unwrap();
    assert_eq!(parsed.host_str(), Some("localhost"), "{url}");
    assert!(!url.contains("127.0.0.1"), "the internal host never leaks: {url}");
    let internal_url = internal
        .presign_get("t/report", Duration::from_secs(300), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(url::Url::parse(&internal_url).unwrap().host_str(), Some("127.0.0.1"));

    let response = http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    let disposition = response
        .headers()
        .get("content-disposition")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(
        disposition.starts_with("attachment; filename=\"Q3 r_sum_.pdf\"")
            && disposition.contains("filename*=UTF-8''Q3%20r%C3%A9sum%C3%A9.pdf"),
        "{disposition}"
    );
    assert_eq!(response.bytes().await.unwrap(), &b"%PDF-1.7 tiny"[..]);

    // The server checks the signature: a tampered URL is refused.
    let tampered = url.replace("t/report", "t/other");
    assert_eq!(http.get(&tampered).send().await.unwrap().status(), 403);

    // Presigned PUT: the content type is part of the signature.
    let put_url = store
        .presign_put("t/direct", "text/csv", Duration::from_secs(300))
        .await
        .unwrap()
        .expect("S3 presigns");
    assert_eq!(url::Url::parse(&put_url).unwrap().host_str(), Some("localhost"));
    let wrong_type = http
        .put(&put_url)
        .header("content-type", "text/html")
        .body("a,b\n1,2\n")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), 403, "another content type breaks the signature");
    let ok = http
        .put(&put_url)
        .header("content-type", "text/csv")
        .body("a,b\n1,2\n")
        .send()
        .await
        .unwrap();
    assert!(ok.status().is_success(), "{}", ok.status());
    let head = store.head("t/direct").await.unwrap().expect("uploaded");
    assert_eq!((head.size, head.content_type.as_str()), (8, "text/csv"));
    assert_eq!(head.sha256, "", "nobody hashed a direct upload");
    assert_eq!(
        read_all(store.get("t/direct", None).await.unwrap()).await,
        b"a,b\n1,2\n"
    );
    for key in ["t/report", "t/direct"] {
        store.delete(key).await.unwrap();
    }
}

fn with_public_endpoint(s: &S3Settings, public: Option<String>) -> S3Settings {
    let mut copy = s.clone();
    copy.public_endpoint = public;
    copy
}

#[tokio::test]
async fn wrong_credentials_are_refused_not_unavailable() {
    let Some(mut s) = settings() else { return };
    s.access_key = Some(
        s.access_key
            .clone()
            .unwrap_or_else(|| "GK000000000000000000000000".into()),
    );
    s.secret_key = Some(SecretString::from("0".repeat(64)));
    let store = S3BlobStore::connect(s).await.unwrap();
    for r in [
        store.ping().await.map(|_| ()),
        store.put("t/x", "text/plain", body_of(b"x", 1), None).await.map(|_| ()),
        store.head("t/x").await.map(|_| ()),
    ] {
        assert!(matches!(r, Err(BlobError::Backend(_))), "{r:?}");
    }
}

#[tokio::test]
async fn a_missing_bucket_is_reported_as_such() {
    let Some(mut s) = settings() else { return };
    s.bucket = format!("missing-{}", uuid::Uuid::now_v7().simple());
    let store = S3BlobStore::connect(s).await.unwrap();
    match store.ping().await {
        Err(BlobError::Backend(msg)) => assert!(msg.contains("does not exist"), "{msg}"),
        other => panic!("expected a Backend error, got {other:?}"),
    }
}

/// Settings for a server at `endpoint` that will not answer; static
/// credentials so that the AWS chain (IMDS) is not consulted.
fn dead_settings(endpoint: String) -> S3Settings {
    let mut s = S3Settings::new("casewire");
    s.endpoint = Some(endpoint);
    s.region = "garage".into();
    s.path_style = true;
    s.access_key = Some("GK0123456789abcdef01234567".into());
    s.secret_key = Some(SecretString::from("x".repeat(64)));
    s
}

async fn assert_all_unavailable(store: &S3BlobStore, within: Duration) {
    let started = Instant::now();
    let results = [
        ("ping", store.ping().await.map(|_| ())),
        ("head", store.head("t/x").await.map(|_| ())),
        ("get", store.get("t/x", None).await.map(|_| ())),
        (
            "put",
            store.put("t/x", "text/plain", body_of(b"x", 1), None).await.map(|_| ()),
        ),
        ("delete", store.delete("t/x").await),
    ];
    for (op, r) in results {
        assert!(matches!(r, Err(BlobError::Unavailable(_))), "{op}: {r:?}");
    }
    assert!(started.elapsed() < within, "took {:?}", started.elapsed());
}

#[tokio::test]
async fn a_refused_connection_is_unavailable_promptly() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let store = S3BlobStore::connect(dead_settings(format!("http://127.0.0.1:{port}")))
        .await
        .unwrap();
    assert_all_unavailable(&store, Duration::from_secs(30)).await;
}

#[tokio::test]
async fn a_silent_server_is_unavailable_after_the_operation_timeout() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let mut s = dead_settings(format!("http://127.0.0.1:{port}"));
    s.operation_timeout = Duration::from_secs(1);
    let store = S3BlobStore::connect(s).await.unwrap();
    assert_all_unavailable(&store, Duration::from_secs(15)).await;
    hold.abort();
}

/// Without credentials in the settings, the standard AWS chain supplies
/// them (here `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`). The test runs
/// itself as a child process with that environment, as a test may not
/// change its own.
#[tokio::test]
async fn credentials_come_from_the_aws_environment() {
    if std::env::var_os("CASEWIRE_BLOB_CHAIN_CHILD").is_some() {
        let url = std::env::var("CASEWIRE_TEST_S3").unwrap();
        let url = format!("{url}&prefix=test-{}/", uuid::Uuid::now_v7().simple());
        let store = casewire_blob::open(&url, &casewire_blob::OpenOptions::default())
            .await
            .unwrap();
        store.ping().await.unwrap();
        let info = store
            .put("t/env", "text/plain", body_of(b"env", 3), None)
            .await
            .unwrap();
        assert_eq!(info.size, 3);
        store.delete("t/env").await.unwrap();
        return;
    }
    let Some(s) = settings() else { return };
    let (Some(key), Some(secret)) = (s.access_key, s.secret_key) else {
        skip("CASEWIRE_TEST_S3_ACCESS_KEY/_SECRET_KEY are not set");
        return;
    };
    use secrecy::ExposeSecret;
    let out = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "credentials_come_from_the_aws_environment", "--nocapture"])
        .env("CASEWIRE_BLOB_CHAIN_CHILD", "1")
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", secret.expose_secret())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `tenant_buckets=true`: each tenant's files in its own bucket. `tests/run`
/// creates `<prefix>-casewire` and `<prefix>-globex` (no `-initech`) and
/// sets `CASEWIRE_TEST_S3_TENANT_BUCKETS=<prefix>`.
#[tokio::test]
async fn tenant_buckets_keep_each_tenant_in_its_own_bucket() {
    let Some(mut s) = settings() else { return };
    let Ok(bucket_prefix) = std::env::var("CASEWIRE_TEST_S3_TENANT_BUCKETS") else {
        skip("set CASEWIRE_TEST_S3_TENANT_BUCKETS=<p> with buckets <p>-casewire and <p>-globex (tests/run does)");
        return;
    };
    let shared_bucket = s.bucket.clone();
    let prefix = s.prefix.clone();
    s.bucket = bucket_prefix.clone();
    s.tenant_buckets = true;
    let store = S3BlobStore::connect(s).await.unwrap();
    store
        .ping()
        .await
        .expect("up, though no bucket is named <prefix> itself");

    for tenant in ["casewire", "globex"] {
        let body = format!("{tenant}'s contract");
        store
            .put(
                &format!("{tenant}/contract"),
                "text/plain",
                body_of(body.as_bytes(), 3),
                None,
            )
            .await
            .unwrap();
    }
    // Seen with the plain SDK: each object in its tenant's bucket, under the
    // key prefix, without the tenant in its key.
    for tenant in ["casewire", "globex"] {
        let listed = store
            .client()
            .list_objects_v2()
            .bucket(format!("{bucket_prefix}-{tenant}"))
            .prefix(&prefix)
            .send()
            .await
            .unwrap();
        let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
        assert_eq!(keys, vec![format!("{prefix}contract")], "{tenant}");
        let read = read_all(store.get(&format!("{tenant}/contract"), None).await.unwrap()).await;
        assert_eq!(read, format!("{tenant}'s contract").as_bytes());
    }
    // A presigned URL names the tenant's bucket, and the server honours it.
    let url = store
        .presign_get("globex/contract", Duration::from_secs(60), None)
        .await
        .unwrap()
        .expect("S3 presigns");
    let path = url::Url::parse(&url).unwrap().path().to_owned();
    assert_eq!(path, format!("/{bucket_prefix}-globex/{prefix}contract"));
    let fetched = reqwest::get(&url).await.unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.bytes().await.unwrap(), &b"globex's contract"[..]);

    // A tenant whose bucket the operator has not created: an error naming
    // the bucket, and nothing written anywhere else.
    let missing = format!("{bucket_prefix}-initech");
    match store
        .put("initech/contract", "text/plain", body_of(b"x", 1), None)
        .await
    {
        Err(BlobError::Backend(msg)) => assert!(msg.contains(&missing), "{msg}"),
        other => panic!("expected an error naming {missing}, got {other:?}"),
    }
    // An upload big enough for multipart fails the same way, up front.
    match store
        .put("initech/big", "text/plain", body_of(&noise(6 * MIB), MIB), None)
        .await
    {
        Err(BlobError::Backend(msg)) => assert!(msg.contains(&missing), "{msg}"),
        other => panic!("expected an error naming {missing}, got {other:?}"),
    }
    // Nothing of either failed put, nor of the good ones, went to the
    // shared bucket; the tenants' buckets hold only their own object, and
    // no multipart upload was left open.
    let shared = store
        .client()
        .list_objects_v2()
        .bucket(&shared_bucket)
        .prefix(&prefix)
        .send()
        .await
        .unwrap();
    assert!(shared.contents().is_empty(), "nothing went to the shared bucket");
    for tenant in ["casewire", "globex"] {
        let bucket = format!("{bucket_prefix}-{tenant}");
        let listed = store
            .client()
            .list_objects_v2()
            .bucket(&bucket)
            .prefix(&prefix)
            .send()
            .await
            .unwrap();
        assert_eq!(listed.contents().len(), 1, "{bucket}");
        let uploads = store
            .client()
            .list_multipart_uploads()
            .bucket(&bucket)
            .prefix(&prefix)
            .send()
            .await
            .unwrap();
        assert!(uploads.uploads().is_empty(), "{bucket}: {:?}", uploads.uploads());
    }

    for tenant in ["casewire", "globex"] {
        store.delete(&format!("{tenant}/contract")).await.unwrap();
        assert_eq!(store.head(&format!("{tenant}/contract")).await.unwrap(), None);
    }
}
