//! The BlobStore contract on local disk, plus what only this adapter has:
//! key checks against escaping the root, no leftovers after failed writes,
//! and the sidecar.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use casewire_blob::{FileBlobStore, OpenOptions};
use casewire_ports::{BlobError, BlobStore, ByteStream};
use futures::StreamExt as _;

fn body(parts: Vec<Result<Bytes, BlobError>>) -> ByteStream {
    Box::pin(futures::stream::iter(parts))
}

/// Every file under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path: PathBuf = entry.unwrap().path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                out.push(path.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[tokio::test]
async fn passes_the_blob_store_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileBlobStore::open(dir.path().join("blobs")).await.unwrap();
    casewire_ports::contract::blob_store_contract(Arc::new(store)).await;
    // Every key was deleted at the end; only empty directories may remain.
    assert_eq!(files(&dir.path().join("blobs")), Vec::<String>::new(), "no leftovers");
}

#[tokio::test]
async fn keys_cannot_escape_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let store = FileBlobStore::open(&root).await.unwrap();
    for key in [
        "../outside",
        "a/../../outside",
        "/tmp/abs",
        "a//b",
        "a/",
        "",
        "./a",
        "t/.hidden",
        "t/x.meta.json",
    ] {
        let put = store
            .put(key, "text/plain", body(vec![Ok(Bytes::from_static(b"x"))]), None)
            .await;
        assert!(matches!(put, Err(BlobError::Backend(_))), "put {key:?}: {put:?}");
        assert!(
            matches!(store.get(key, None).await, Err(BlobError::Backend(_))),
            "get {key:?}"
        );
        assert!(
            matches!(store.head(key).await, Err(BlobError::Backend(_))),
            "head {key:?}"
        );
        assert!(
            matches!(store.delete(key).await, Err(BlobError::Backend(_))),
            "delete {key:?}"
        );
    }
    assert_eq!(files(dir.path()), Vec::<String>::new(), "nothing was written anywhere");
}

#[tokio::test]
async fn failed_writes_leave_no_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileBlobStore::open(dir.path()).await.unwrap();
    let wrong = "0".repeat(64);
    let r = store
        .put(
            "t/a",
            "text/plain",
            body(vec![Ok(Bytes::from_static(b"abc"))]),
            Some(&wrong),
        )
        .await;
    assert!(matches!(r, Err(BlobError::ChecksumMismatch { .. })), "{r:?}");
    let r = store
        .put(
            "t/b",
            "text/plain",
            body(vec![
                Ok(Bytes::from_static(b"abc")),
                Err(BlobError::TooLarge { limit: 3 }),
            ]),
            None,
        )
        .await;
    assert_eq!(r.unwrap_err(), BlobError::TooLarge { limit: 3 });
    assert_eq!(files(dir.path()), Vec::<String>::new(), "no temporary files remain");
}

#[tokio::test]
async fn a_dropped_put_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileBlobStore::open(dir.path()).await.unwrap();
    // A stream that yields once and then never again: the client stalled.
    let stalled: ByteStream =
        Box::pin(futures::stream::iter(vec![Ok(Bytes::from_static(b"partial"))]).chain(futures::stream::pending()));
    let put = store.put("t/stalled", "text/plain", stalled, None);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), put).await.is_err(),
        "put never ends"
    );
    // The future was dropped by the timeout: the client went away.
    assert_eq!(files(dir.path()), Vec::<String>::new());
    assert_eq!(store.head("t/stalled").await.unwrap(), None);
}

#[tokio::test]
async fn the_sidecar_holds_the_metadata_and_the_blob_file_the_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileBlobStore::open(dir.path()).await.unwrap();
    let info = store
        .put(
            "tenant/0198",
            "image/png",
            body(vec![Ok(Bytes::from_static(b"png bytes"))]),
            None,
        )
        .await
        .unwrap();
    assert_eq!(files(dir.path()), vec!["tenant/0198", "tenant/0198.meta.json"]);
    assert_eq!(std::fs::read(dir.path().join("tenant/0198")).unwrap(), b"png bytes");
    let side: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("tenant/0198.meta.json")).unwrap()).unwrap();
    assert_eq!(
        side,
        serde_json::json!({"content_type": "image/png", "sha256": info.sha256, "size": 9})
    );
    // A sidecar left by a crash before the blob's rename is not a blob.
    std::fs::write(dir.path().join("tenant/orphan.meta.json"), side.to_string()).unwrap();
    assert_eq!(store.head("tenant/orphan").await.unwrap(), None);
    assert!(matches!(
        store.get("tenant/orphan", None).await,
        Err(BlobError::NotFound)
    ));
    // A key below a stored blob is simply absent.
    assert_eq!(store.head("tenant/0198/child").await.unwrap(), None);
    // Presigning is not a thing on disk.
    assert_eq!(
        store
            .presign_get("tenant/0198", Duration::from_secs(9), None)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn ping_fails_when_the_root_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let store = FileBlobStore::open(&root).await.unwrap();
    store.ping().await.unwrap();
    std::fs::remove_dir(&root).unwrap();
    std::fs::write(&root, b"a file where the root was").unwrap();
    assert!(matches!(store.ping().await, Err(BlobError::Unavailable(_))));
}

#[tokio::test]
async fn open_picks_the_adapter_by_scheme() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().join("via-url").display());
    let store = casewire_blob::open(&url, &OpenOptions::default()).await.unwrap();
    store.ping().await.unwrap();
    assert!(dir.path().join("via-url").is_dir(), "the root is created");
    for bad in ["file://host/x", "ftp://x/y", "relative/path", "s3://"] {
        assert!(
            matches!(
                casewire_blob::open(bad, &OpenOptions::default()).await,
                Err(BlobError::Backend(_))
            ),
            "{bad} must be refused"
        );
    }
}
