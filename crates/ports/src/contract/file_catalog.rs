//! The `FileCatalog` promises, one function per behaviour: uploads, pins,
//! case links, the sweeper's claims of unattached files and the retention
//! rule's claims of detached ones.
//!
//! The claims take files of every tenant; each test has a store of its own,
//! so what a claim returns is only that test's.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::{fresh_tenant, tenant_id};
use crate::{FileCatalog, FileRecord, FileState};
use casewire_domain::types::TenantId;

/// One named test per behaviour below, on a fresh store from `factory`.
#[macro_export]
macro_rules! file_catalog_contract {
    ($factory:path) => {
        $crate::__contract_tests!($factory, file_catalog:
            a_file_round_trips,
            files_are_scoped_by_tenant,
            pinning_twice_is_fine,
            pinning_an_unknown_file_fails,
            pinning_is_scoped_by_tenant,
            links_are_added_and_removed_idempotently,
            the_last_unlink_stamps_detached_at,
            linking_pins_an_uploaded_file,
            the_sweeper_claims_only_old_unpinned_files,
            a_file_claimed_by_the_sweeper_can_not_be_pinned,
            a_sweep_that_died_is_claimed_again,
            deleting_a_file_is_idempotent,
            the_sweeper_leaves_young_and_pinned_files,
            a_pending_upload_can_not_be_pinned,
            completing_a_pending_upload_replaces_it_once,
            a_pending_upload_never_completed_is_swept,
            unpinning_gives_a_file_no_case_held_a_fresh_ttl,
            unpinning_keeps_a_file_a_case_holds,
            unpinning_keeps_a_file_a_case_held,
            unpinning_refuses_a_file_not_pinned,
            unpinning_is_scoped_by_tenant,
            an_unpinned_file_gets_a_whole_ttl,
            the_purge_claims_only_files_detached_before_the_cutoff,
            a_file_claimed_for_purging_can_not_be_pinned,
            a_purge_that_died_is_claimed_again,
            a_purged_file_keeps_its_record,
        );
    };
}

/// Cut to microseconds, as every store keeps times.
fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).expect("a representable time")
}

fn tenant() -> TenantId {
    fresh_tenant()
}

/// An uploaded file of `tenant`, uploaded `age_minutes` ago.
fn file(tenant: &TenantId, age_minutes: i64) -> FileRecord {
    FileRecord {
        id: Uuid::now_v7(),
        tenant: tenant.clone(),
        name: "Scan 1 (final).pdf".into(),
        content_type: "application/pdf".into(),
        size: 5_000_000_000,
        sha256: "ab".repeat(32),
        uploaded_by: "alice".into(),
        uploaded_at: micros(Utc::now() - Duration::minutes(age_minutes)),
        cases: vec![],
        state: FileState::Uploaded,
        detached_at: None,
    }
}

/// `file(tenant, age_minutes)`, inserted.
async fn inserted<S: FileCatalog>(store: &S, tenant: &TenantId, age_minutes: i64) -> FileRecord {
    let f = file(tenant, age_minutes);
    store.insert_file(&f).await.expect("insert");
    f
}

/// An old file, inserted and pinned.
async fn pinned<S: FileCatalog>(store: &S, tenant: &TenantId) -> FileRecord {
    let f = inserted(store, tenant, 120).await;
    assert!(store.pin_file(tenant, f.id).await.expect("pin"));
    f
}

/// A pinned file attached to a case and detached again `minutes_ago`.
async fn detached<S: FileCatalog>(store: &S, tenant: &TenantId, minutes_ago: i64) -> FileRecord {
    let f = pinned(store, tenant).await;
    let (case, at) = (Uuid::now_v7(), micros(Utc::now() - Duration::minutes(minutes_ago)));
    store.link_file(tenant, f.id, case, true, at).await.expect("link");
    store.link_file(tenant, f.id, case, false, at).await.expect("unlink");
    f
}

async fn state_of<S: FileCatalog>(store: &S, tenant: &TenantId, id: Uuid) -> Option<FileState> {
    store.get_file(tenant, id).await.expect("get").map(|f| f.state)
}

/// The sweeper's cutoff: files uploaded more than an hour ago are due.
fn cutoff() -> DateTime<Utc> {
    Utc::now() - Duration::minutes(60)
}

/// What the sweeper claims now, by id.
async fn sweep<S: FileCatalog>(store: &S) -> Vec<Uuid> {
    let claimed = store.claim_unattached_files(cutoff(), 100).await.expect("claim");
    claimed.iter().map(|f| f.id).collect()
}

/// What the retention rule claims now, by id.
async fn purge<S: FileCatalog>(store: &S) -> Vec<Uuid> {
    let claimed = store.claim_detached_files(cutoff(), 100).await.expect("claim");
    claimed.iter().map(|f| f.id).collect()
}

/// A record reads back exactly as inserted.
pub async fn a_file_round_trips<S: FileCatalog>(store: Arc<S>) {
    let t = tenant();
    let old = inserted(&*store, &t, 120).await;
    assert_eq!(store.get_file(&t, old.id).await.expect("get"), Some(old), "round trip");
}

/// Another tenant does not find it.
pub async fn files_are_scoped_by_tenant<S: FileCatalog>(store: Arc<S>) {
    let old = inserted(&*store, &tenant(), 120).await;
    assert_eq!(
        store.get_file(&tenant_id("other"), old.id).await.expect("get"),
        None,
        "scoped by tenant"
    );
}

/// Pinning is idempotent.
pub async fn pinning_twice_is_fine<S: FileCatalog>(store: Arc<S>) {
    let t = tenant();
    let f = pinned(&*store, &t).await;
    assert!(store.pin_file(&t, f.id).await.expect("pin"), "pinning twice is fine");
    assert_eq!(state_of(&*store, &t, f.id).await, Some(FileState::Pinned));
}

/// There is nothing to pin without a record.
pub async fn pinning_an_unknown_file_fails<S: FileCatalog>(store: Arc<S>) {
    assert!(
        !store.pin_file(&tenant(), Uuid::now_v7()).await.expect("pin"),
        "no such file"
    );
}

/// Another tenant can not pin it.
pub async fn pinning_is_scoped_by_tenant<S: FileCatalog>(store: Arc<S>) {
    let f = inserted(&*store, &tenant(), 120).await;
    assert!(
        !store.pin_file(&tenant_id("other"), f.id).await.expect("pin"),
        "not across tenants"
    );
}

/// Repeated adds and removes of links change nothing more.
pub async fn links_are_added_and_removed_idempotently<S: FileCatalog>(store: Arc<S>) {
    let t = tenant();
    let f = pinned(&*store, &t).await;
    let (case_a, case_b) = (Uuid::now_v7(), Uuid::now_v7());
    let at = micros(Utc::now());
    for (case, attached) in [(case_a, true), (case_a, true), (case_b, true), (case_a, false)] {
        store.link_file(&t, f.id, case, attached, at).await.expect("link");
    }
    let got = store.get_file(&t, f.id).await.expect("get").expect("exists");
    assert_eq!(
        (got.cases, got.state, got.detached_at),
        (vec![case_b], FileState::Pinned, None)
    );
}

/// Removing the last link records when (the retention rule's clock).
pub async fn the_last_unlink_stamps_detached_at<S: FileCatalog>(store: Arc<S>) {
    let t = tenant();
    let f = pinned(&*store, &t).await;
    let (case_a, case_b) = (Uuid::now_v7(), Uuid::now_v7());
    let at = micros(Utc::now());
    for (case, attached) in [(case_a, true), (case_b, true), (case_a, false), (case_b, false)] {
        store.link_file(&t, f.id, case, attached, at).await.expect("link");
    }
    let got = store.get_file(&t, f.id).await.expect("get").expect("exists");
    assert_eq!((got.cases.is_empty(), got.detached_at), (true, Some(at)));
}

/// An attachment is a pin, even if the API's pin was lost.
pub async fn linking_pins_an_uploaded_file<S: FileCatalog>(store: Arc<S>) {
    let t = tenant();
    let f = inserted(&*store, &t, 120).await;
    let at = micros(Utc::now());
    store.link_file(&t, f.id, Uuid::now_v7(), true, at).await.expect("link");
    assert_eq!(state_of(&*store, &t, f.id).await, Some(FileState::Pinned));
    assert!(!sweep(&*store).await.contains(&f.id), "an attached file is not swept");
}

/// The sweeper claims only old, unpinned files.
pub async fn the_sweeper_claims_only_old_unpinned_files<S: FileCatalog>(store: Arc<S>) {
    let t = tenant();
    let old = inserted(&*store, &t, 120).await;
    inserted(&*store, &t, 0).await;
    pinned(&*store, &t).await;
    assert_eq!(sweep(&*store).await, vec![old.id], "old and unpinned only");
}

/// A file the sweeper claimed can no longer be pinned.
pub async fn a_file_claimed_by_the_sweeper_can_not_be_pinned<S: FileCatalog>(store: Arc<S>) {
    let t = tenant();
    let old = inserted(&*store, &t, 120).await;
    sweep(&*store).await;
    assert!(!store.pin_file(&t, old.id).await.expect("pin"), "too late to pin");
    assert_eq!(state_of(&*store, &t, old.id).await, Some(FileState::Sweeping));
}

/// A sweep that died before removing is claimed again.
pub async fn a_sweep_that_died_is_claimed_again<S: FileCatalog>(store: Arc<S>) {
    let old = inserted(&*store, &tenant(), 120).await;
    sweep(&*store).await;
    assert!(sweep(&*store).await.contains(&old.id));
}

/// A deleted record is gone, and deleting it again is fine.
pub async fn deleting_a_file_is_idempotent<S: FileCatalog>(store: Arc<S>) {
    let t = tenant();
    let old = inserted(&*store, &t, 120).await;
    sweep(&*store).await;
    store.delete_file(&t, old.id).await.expect("delete");
    store.delete_file(&t, old.id).await.expect("delete again");
    assert_eq!(store.get_file(&t, old.id).await.expect("get"), None);
    assert!(!sweep(&*store).await.contains(&old.id), "a deleted file is not claimed");
}

/// Young and pinned files are never claimed, however often the sweeper runs.
pub async fn the_sweeper_leaves_young_and_pinned_files<S: FileCatalog>(store: Arc<S>) {
    let t = tenant();
    let young = inserted(&*store, &t, 0).await;
    let kept = pinned(&*store, &t).await;
    for _ in 0..2 {
        assert!(sweep(&*store).await.is_empty(), "nothing of ours is sweepable");
    }
    assert_eq!(state_of(&*store, &t, young.id).await, Some(FileState::Uploaded));
    assert_eq!(state_of(&*store, &t, kept.id).await, Some(FileState::Pinned));
}

/// A presigned upload's record, pending, uploaded `age_minutes` ago.
async fn pending_upload<S: FileCatalog>(store: &S, tenant: &TenantId, age_minutes: i64) -> FileRecord {
    let mut pending = file(tenant, age_minutes);
    pending.state = FileState::Pending;
    store.insert_file(&pending).await.expect("insert");
    pending
}

/// No pin before the bytes are confirmed.
pub async fn a_pending_upload_can_not_be_pinned<S: FileCatalog>(store: Arc<S>) {
    let t = tenant();
    let pending = pending_upload(&*store, &t, 0).await;
    assert!(
        !store.pin_file(&t, pending.id).await.expect("pin"),
        "no pin before the bytes"
    );
}

/// Completing replaces the pending record with the completed one, once.
pub async fn completing_a_pending_upload_replaces_it_once<S: FileCatalog>(store: Arc<S>) {
    let t = tenant();
    let pending = pending_upload(&*store, &t, 0).await;
    let mut done = pending.clone();
    done.state = FileState::Uploaded;
    done.size = 42;
    assert!(store.complete_file(&done).await.expect("complete"));
    assert!(!store.complete_file(&done).await.expect("complete"), "only once");
    assert_eq!(store.get_file(&t, pending.id).await.expect("get"), Some(done));
}

/// A presigned upload never completed is swept like an unattached file.
pub async fn a_pending_upload_never_completed_is_swept<S: FileCatalog>(store: Arc<S>) {
    let stale = pending_upload(&*store, &tenant(), 120).await;
    assert!(
        sweep(&*store).await.contains(&stale.id),
        "a pending upload never completed is swept"
    );
}

/// A rejected attach gives its pin back: the file is `uploaded` again, as
/// if uploaded at that moment.
pub async fn unpinning_gives_a_file_no_case_held_a_fresh_ttl<S: FileCatalog>(store: Arc<S>) {
    let t = tenant();
    let lonely = pinned(&*store, &t).await;
    let at = micros(Utc::now());
    assert!(store.unpin_file(&t, lonely.id, at).await.expect("unpin"));
    let got = store.get_file(&t, lonely.id).await.expect("get").expect("exists");
    assert_eq!((got.state, got.uploaded_at), (FileState::Uploaded, at), "a fresh TTL");
}

/// A file a case holds stays pinned.
pub async fn unpinning_keeps_a_file_a_case_holds<S: FileCatalog>(store: Arc<S>) {
    let t = tenant();
    let held = pinned(&*store, &t).await;
    let at = micros(Utc::now());
    store
        .link_file(&t, held.id, Uuid::now_v7(), true, at)
        .await
        .expect("link");
    assert!(
        !store.unpin_file(&t, held.id, at).await.expect("unpin"),
        "a case holds it"
    );
    assert_eq!(state_of(&*store, &t, held.id).await, Some(FileState::Pinned));
}

/// A file a case held stays pinned: the case's history names it.
pub async fn unpinning_keeps_a_file_a_case_held<S: FileCatalog>(store: Arc<S>) {
    let t = tenant();
    let was_held = detached(&*store, &t, 0).await;
    let at = micros(Utc::now());
    assert!(
        !store.unpin_file(&t, was_held.id, at).await.expect("unpin"),
        "a case held it"
    );
    assert_eq!(state_of(&*store, &t, was_held.id).await, Some(FileState::Pinned));
}

/// There is no pin to give back on a file never pinned.
pub async fn unpinning_refuses_a_file_not_pinned<S: FileCatalog>(store: Arc<S>) {
    let t = tenant();
    let unpinned = inserted(&*store, &t, 120).await;
    let at = micros(Utc::now());
    assert!(
        !store.unpin_file(&t, unpinned.id, at).await.expect("unpin"),
        "not pinned"
    );
}

/// Another tenant can not unpin it.
pub async fn unpinning_is_scoped_by_tenant<S: FileCatalog>(store: Arc<S>) {
    let t = tenant();
    let lonely = pinned(&*store, &t).await;
    let at = micros(Utc::now());
    assert!(
        !store
            .unpin_file(&tenant_id("other"), lonely.id, at)
            .await
            .expect("unpin"),
        "not across tenants"
    );
    assert_eq!(state_of(&*store, &t, lonely.id).await, Some(FileState::Pinned));
}

/// With its fresh upload time, the sweeper leaves an unpinned file a whole
/// TTL, while an old upload never pinned is due.
pub async fn an_unpinned_file_gets_a_whole_ttl<S: FileCatalog>(store: Arc<S>) {
    let t = tenant();
    let lonely = pinned(&*store, &t).await;
    let unpinned = inserted(&*store, &t, 120).await;
    assert!(
        store
            .unpin_file(&t, lonely.id, micros(Utc::now()))
            .await
            .expect("unpin")
    );
    let claimed = sweep(&*store).await;
    assert!(!claimed.contains(&lonely.id), "not yet");
    assert!(claimed.contains(&unpinned.id), "the old unpinned one is due");
}

/// The retention rule claims pinned files no case has held since before
/// the cutoff, and nothing else.
pub async fn the_purge_claims_only_files_detached_before_the_cutoff<S: FileCatalog>(store: Arc<S>) {
    let t = tenant();
    let due = detached(&*store, &t, 120).await;
    detached(&*store, &t, 0).await;
    let held = pinned(&*store, &t).await;
    let at = micros(Utc::now() - Duration::minutes(120));
    store
        .link_file(&t, held.id, Uuid::now_v7(), true, at)
        .await
        .expect("link");
    inserted(&*store, &t, 120).await;
    assert_eq!(purge(&*store).await, vec![due.id], "detached long enough only");
    assert_eq!(state_of(&*store, &t, due.id).await, Some(FileState::Purging));
}

/// A file claimed for purging can no longer be pinned.
pub async fn a_file_claimed_for_purging_can_not_be_pinned<S: FileCatalog>(store: Arc<S>) {
    let t = tenant();
    let due = detached(&*store, &t, 120).await;
    purge(&*store).await;
    assert!(!store.pin_file(&t, due.id).await.expect("pin"), "too late to pin");
    assert_eq!(state_of(&*store, &t, due.id).await, Some(FileState::Purging));
}

/// A purge that died before finishing is claimed again.
pub async fn a_purge_that_died_is_claimed_again<S: FileCatalog>(store: Arc<S>) {
    let due = detached(&*store, &tenant(), 120).await;
    purge(&*store).await;
    assert!(purge(&*store).await.contains(&due.id));
}

/// A purged file's record stays (the case history names it), and it is
/// claimed no more.
pub async fn a_purged_file_keeps_its_record<S: FileCatalog>(store: Arc<S>) {
    let t = tenant();
    let due = detached(&*store, &t, 120).await;
    purge(&*store).await;
    store.mark_purged(&t, due.id).await.expect("mark purged");
    assert_eq!(state_of(&*store, &t, due.id).await, Some(FileState::Purged));
    assert!(purge(&*store).await.is_empty(), "a purged file is finished");
    assert!(sweep(&*store).await.is_empty(), "and never swept");
}
