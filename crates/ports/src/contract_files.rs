//! The `ReadStore` promises about file records (uploads, pins, case links
//! and the sweeper's claims), run against every read-store adapter.

// A test suite shipped as library code: a panic is the report.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;

use chrono::{Duration, Utc};
use uuid::Uuid;

use crate::{FileRecord, FileState, ReadStore};

fn file(tenant: &str, age_minutes: i64) -> FileRecord {
    FileRecord {
        id: Uuid::now_v7(),
        tenant: tenant.into(),
        name: "Scan 1 (final).pdf".into(),
        content_type: "application/pdf".into(),
        size: 5_000_000_000,
        sha256: "ab".repeat(32),
        uploaded_by: "alice".into(),
        // Microseconds, as every store keeps them.
        uploaded_at: chrono::DateTime::from_timestamp_micros(
            (Utc::now() - Duration::minutes(age_minutes)).timestamp_micros(),
        )
        .unwrap(),
        cases: vec![],
        state: FileState::Uploaded,
        detached_at: None,
    }
}

/// File records: round trip, tenancy, pins, links and sweeping.
pub async fn file_records_contract<S: ReadStore>(store: Arc<S>) {
    let tenant = format!("t-{}", Uuid::now_v7().simple());
    let old = file(&tenant, 120);
    let young = file(&tenant, 0);
    let pinned = file(&tenant, 120);
    for f in [&old, &young, &pinned] {
        store.insert_file(f).await.expect("insert");
    }
    assert_eq!(
        store.get_file(&tenant, old.id).await.unwrap(),
        Some(old.clone()),
        "round trip"
    );
    assert_eq!(store.get_file("other", old.id).await.unwrap(), None, "scoped by tenant");
    assert!(store.pin_file(&tenant, pinned.id).await.unwrap());
    assert!(
        store.pin_file(&tenant, pinned.id).await.unwrap(),
        "pinning twice is fine"
    );
    assert!(!store.pin_file(&tenant, Uuid::now_v7()).await.unwrap(), "no such file");
    assert!(!store.pin_file("other", pinned.id).await.unwrap(), "not across tenants");

    // Links: idempotent adds and removes; the last removal stamps detachedAt.
    let (case_a, case_b) = (Uuid::now_v7(), Uuid::now_v7());
    let at = chrono::DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap();
    for (case, attached) in [(case_a, true), (case_a, true), (case_b, true), (case_a, false)] {
        store.link_file(&tenant, pinned.id, case, attached, at).await.unwrap();
    }
    let got = store.get_file(&tenant, pinned.id).await.unwrap().unwrap();
    assert_eq!(
        (got.cases.clone(), got.state, got.detached_at),
        (vec![case_b], FileState::Pinned, None)
    );
    store.link_file(&tenant, pinned.id, case_b, false, at).await.unwrap();
    let got = store.get_file(&tenant, pinned.id).await.unwrap().unwrap();
    assert_eq!((got.cases.is_empty(), got.detached_at), (true, Some(at)));

    // The sweeper claims only old, unpinned files; a claimed file can not be pinned.
    let cutoff = Utc::now() - Duration::minutes(60);
    let claimed = store.claim_unattached_files(cutoff, 100).await.unwrap();
    let ids: Vec<Uuid> = claimed.iter().filter(|f| f.tenant == tenant).map(|f| f.id).collect();
    assert_eq!(ids, vec![old.id], "old and unpinned only");
    assert!(!store.pin_file(&tenant, old.id).await.unwrap(), "too late to pin");
    assert_eq!(
        store.get_file(&tenant, old.id).await.unwrap().unwrap().state,
        FileState::Sweeping
    );
    // A sweep that died before removing is claimed again.
    let again = store.claim_unattached_files(cutoff, 100).await.unwrap();
    assert!(again.iter().any(|f| f.id == old.id));
    store.delete_file(&tenant, old.id).await.unwrap();
    store.delete_file(&tenant, old.id).await.unwrap();
    assert_eq!(store.get_file(&tenant, old.id).await.unwrap(), None);
    let after = store.claim_unattached_files(cutoff, 100).await.unwrap();
    assert!(
        !after.iter().any(|f| f.tenant == tenant),
        "nothing else of ours is sweepable"
    );
    assert!(store.get_file(&tenant, young.id).await.unwrap().is_some());

    // Presigned uploads: pending until completed, once; never pinned before.
    let mut pending = file(&tenant, 0);
    pending.state = FileState::Pending;
    store.insert_file(&pending).await.unwrap();
    assert!(
        !store.pin_file(&tenant, pending.id).await.unwrap(),
        "no pin before the bytes"
    );
    let mut done = pending.clone();
    done.state = FileState::Uploaded;
    done.size = 42;
    assert!(store.complete_file(&done).await.unwrap());
    assert!(!store.complete_file(&done).await.unwrap(), "only once");
    assert_eq!(store.get_file(&tenant, pending.id).await.unwrap(), Some(done));
    let mut stale = file(&tenant, 120);
    stale.state = FileState::Pending;
    store.insert_file(&stale).await.unwrap();
    let swept = store.claim_unattached_files(cutoff, 100).await.unwrap();
    assert!(
        swept.iter().any(|f| f.id == stale.id),
        "a pending upload never completed is swept"
    );
}

/// A rejected attach gives its pin back: a pinned file no case ever held is
/// `uploaded` again with a fresh upload time; a file a case holds, or held,
/// stays pinned.
pub async fn unpinning_frees_only_files_no_case_held<S: ReadStore>(store: Arc<S>) {
    let tenant = format!("t-{}", Uuid::now_v7().simple());
    let (lonely, held, was_held, unpinned) = (
        file(&tenant, 120),
        file(&tenant, 120),
        file(&tenant, 120),
        file(&tenant, 120),
    );
    for f in [&lonely, &held, &was_held, &unpinned] {
        store.insert_file(f).await.unwrap();
    }
    for f in [&lonely, &held, &was_held] {
        assert!(store.pin_file(&tenant, f.id).await.unwrap());
    }
    let at = chrono::DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap();
    let case = Uuid::now_v7();
    store.link_file(&tenant, held.id, case, true, at).await.unwrap();
    store.link_file(&tenant, was_held.id, case, true, at).await.unwrap();
    store.link_file(&tenant, was_held.id, case, false, at).await.unwrap();

    assert!(store.unpin_file(&tenant, lonely.id, at).await.unwrap());
    let got = store.get_file(&tenant, lonely.id).await.unwrap().unwrap();
    assert_eq!((got.state, got.uploaded_at), (FileState::Uploaded, at), "a fresh TTL");
    assert!(
        !store.unpin_file(&tenant, held.id, at).await.unwrap(),
        "a case holds it"
    );
    assert!(
        !store.unpin_file(&tenant, was_held.id, at).await.unwrap(),
        "a case held it"
    );
    assert!(!store.unpin_file(&tenant, unpinned.id, at).await.unwrap(), "not pinned");
    assert!(
        !store.unpin_file("other", lonely.id, at).await.unwrap(),
        "not across tenants"
    );
    for f in [&held, &was_held] {
        assert_eq!(
            store.get_file(&tenant, f.id).await.unwrap().unwrap().state,
            FileState::Pinned
        );
    }
    // With its fresh upload time, the sweeper leaves it a whole TTL.
    let cutoff = Utc::now() - Duration::minutes(60);
    let claimed = store.claim_unattached_files(cutoff, 100).await.unwrap();
    assert!(!claimed.iter().any(|f| f.id == lonely.id), "not yet");
    assert!(
        claimed.iter().any(|f| f.id == unpinned.id),
        "the old unpinned one is due"
    );
}
