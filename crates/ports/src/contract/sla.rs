//! The `SlaSchedule` promises: entries on case rows, claims that one
//! scheduler holds at a time, and the case list's SLA filter and sort.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

use super::fresh_tenant;
use super::projection::{case, record_for};
use crate::sla::{calendar_key, parse_calendar_key};
use crate::*;

/// One named test per behaviour below, on a fresh store from `factory`.
#[macro_export]
macro_rules! sla_schedule_contract {
    ($factory:path) => {
        $crate::__contract_tests!($factory, sla:
            an_entry_needs_the_cases_row,
            an_entry_reads_back_and_outlives_new_case_states,
            a_due_entry_is_claimed_once_until_its_claim_expires,
            setting_an_entry_releases_its_claim,
            claims_take_the_earliest_first_and_at_most_the_limit,
            the_list_filters_by_sla_state_at_a_time,
            the_list_sorts_by_due_time_with_cases_without_one_last,
            entries_are_found_by_the_calendar_they_were_computed_on,
        );
    };
}

fn t(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).single().unwrap_or_default() + Duration::minutes(minute)
}

/// `n` cases of a fresh tenant, projected.
async fn cases<S: CaseProjection>(store: &S, n: u32) -> (casewire_domain::types::TenantId, Vec<Uuid>) {
    let tenant = fresh_tenant();
    let mut ids = Vec::new();
    for i in 0..n {
        let c = case(&tenant, i, 1);
        store.apply_case(&c, &record_for(&c)).await.expect("apply");
        ids.push(c.id);
    }
    (tenant, ids)
}

fn entry(next: Option<i64>, due: Option<i64>, warn: Option<i64>) -> SlaEntry {
    SlaEntry {
        next_at: next.map(t),
        due_at: due.map(t),
        warn_at: warn.map(t),
        breached: false,
        calendar: None,
    }
}

/// Claims of this tenant only (other tests share the store).
async fn claim<S: SlaSchedule>(
    store: &S,
    tenant: &casewire_domain::types::TenantId,
    now: i64,
    until: i64,
) -> Vec<Uuid> {
    store
        .claim_sla(t(now), t(until), 1_000)
        .await
        .expect("claim")
        .into_iter()
        .filter(|c| &c.tenant == tenant)
        .map(|c| c.case_id)
        .collect()
}

/// A case the projector has not written yet takes no entry.
pub async fn an_entry_needs_the_cases_row<S: CaseProjection + SlaSchedule>(store: Arc<S>) {
    let tenant = fresh_tenant();
    let put = store
        .put_sla(&tenant, Uuid::now_v7(), &entry(Some(1), Some(1), None))
        .await;
    assert!(!put.expect("put"), "no row, no entry");
    assert_eq!(store.get_sla(&tenant, Uuid::now_v7()).await.expect("get"), None);
}

/// An entry reads back as set, and a newer case state keeps it.
pub async fn an_entry_reads_back_and_outlives_new_case_states<S: CaseProjection + SlaSchedule>(store: Arc<S>) {
    let (tenant, ids) = cases(&*store, 1).await;
    assert_eq!(
        store.get_sla(&tenant, ids[0]).await.expect("get"),
        Some(SlaEntry::default())
    );
    let mut e = entry(Some(10), Some(20), Some(5));
    e.breached = true;
    e.calendar = Some(calendar_key(&tenant, "office", 2));
    assert!(store.put_sla(&tenant, ids[0], &e).await.expect("put"));
    let mut newer = case(&tenant, 0, 2);
    newer.id = ids[0];
    assert!(store.apply_case(&newer, &record_for(&newer)).await.expect("apply"));
    assert_eq!(store.get_sla(&tenant, ids[0]).await.expect("get"), Some(e));
}

/// What is due is claimed by one caller; another finds it held until the
/// claim runs out, then takes it.
pub async fn a_due_entry_is_claimed_once_until_its_claim_expires<S: CaseProjection + SlaSchedule>(store: Arc<S>) {
    let (tenant, ids) = cases(&*store, 2).await;
    store
        .put_sla(&tenant, ids[0], &entry(Some(10), Some(10), None))
        .await
        .expect("put");
    store
        .put_sla(&tenant, ids[1], &entry(Some(30), Some(30), None))
        .await
        .expect("put");
    assert!(claim(&*store, &tenant, 5, 6).await.is_empty(), "nothing due at 9:05");
    assert_eq!(claim(&*store, &tenant, 10, 12).await, [ids[0]], "due at 9:10");
    assert!(claim(&*store, &tenant, 11, 13).await.is_empty(), "held until 9:12");
    assert_eq!(claim(&*store, &tenant, 12, 14).await, [ids[0]], "the claim ran out");
}

/// Setting the entry (the scheduler done with the case) ends the claim.
pub async fn setting_an_entry_releases_its_claim<S: CaseProjection + SlaSchedule>(store: Arc<S>) {
    let (tenant, ids) = cases(&*store, 1).await;
    store
        .put_sla(&tenant, ids[0], &entry(Some(10), Some(10), None))
        .await
        .expect("put");
    assert_eq!(claim(&*store, &tenant, 10, 60).await, [ids[0]]);
    store
        .put_sla(&tenant, ids[0], &entry(Some(20), Some(20), None))
        .await
        .expect("put");
    assert_eq!(
        claim(&*store, &tenant, 20, 60).await,
        [ids[0]],
        "released and due again"
    );
    store
        .put_sla(&tenant, ids[0], &entry(None, None, None))
        .await
        .expect("put");
    assert!(claim(&*store, &tenant, 999, 1_000).await.is_empty(), "no next time");
}

/// The earliest due first, and no more than asked.
pub async fn claims_take_the_earliest_first_and_at_most_the_limit<S: CaseProjection + SlaSchedule>(store: Arc<S>) {
    let (tenant, ids) = cases(&*store, 3).await;
    for (id, at) in ids.iter().zip([3, 1, 2]) {
        store
            .put_sla(&tenant, *id, &entry(Some(at), Some(at), None))
            .await
            .expect("put");
    }
    let mut got = Vec::new();
    while got.len() < 3 {
        let one = store.claim_sla(t(5), t(60), 1).await.expect("claim");
        assert!(one.len() <= 1, "at most the limit");
        assert!(!one.is_empty(), "all three are due");
        got.extend(one.into_iter().filter(|c| c.tenant == tenant).map(|c| c.case_id));
    }
    assert_eq!(got, [ids[1], ids[2], ids[0]]);
}

/// Breached: flagged, or a running clock past due; at risk: past the
/// warning only; ok: the rest, cases without clocks included.
pub async fn the_list_filters_by_sla_state_at_a_time<S: CaseProjection + SlaSchedule>(store: Arc<S>) {
    let (tenant, ids) = cases(&*store, 4).await;
    store
        .put_sla(&tenant, ids[0], &entry(Some(60), Some(60), Some(30)))
        .await
        .expect("put");
    let mut flagged = entry(None, None, None);
    flagged.breached = true;
    store.put_sla(&tenant, ids[1], &flagged).await.expect("put");
    store
        .put_sla(&tenant, ids[2], &entry(Some(90), Some(90), Some(80)))
        .await
        .expect("put");
    let list = |state, at| {
        let store = store.clone();
        let tenant = tenant.clone();
        async move {
            let q = CaseQuery {
                sla: Some((state, t(at))),
                limit: 50,
                ..CaseQuery::default()
            };
            let mut ids: Vec<Uuid> = store
                .list_cases(&tenant, &q)
                .await
                .expect("list")
                .items
                .iter()
                .map(|c| c.id)
                .collect();
            ids.sort();
            ids
        }
    };
    let sorted = |mut v: Vec<Uuid>| {
        v.sort();
        v
    };
    assert_eq!(list(SlaState::Breached, 10).await, [ids[1]]);
    assert_eq!(list(SlaState::AtRisk, 10).await, Vec::<Uuid>::new());
    assert_eq!(list(SlaState::Ok, 10).await, sorted(vec![ids[0], ids[2], ids[3]]));
    assert_eq!(list(SlaState::AtRisk, 45).await, [ids[0]]);
    assert_eq!(list(SlaState::Breached, 85).await, sorted(vec![ids[0], ids[1]]));
    assert_eq!(list(SlaState::AtRisk, 85).await, [ids[2]]);
    assert_eq!(list(SlaState::Ok, 85).await, [ids[3]]);
}

/// Sorted by the earliest due time, across pages; cases without one last.
pub async fn the_list_sorts_by_due_time_with_cases_without_one_last<S: CaseProjection + SlaSchedule>(store: Arc<S>) {
    let (tenant, ids) = cases(&*store, 5).await;
    for (id, due) in ids.iter().zip([Some(40), None, Some(10), Some(30), None]) {
        store.put_sla(&tenant, *id, &entry(due, due, None)).await.expect("put");
    }
    let mut q = CaseQuery {
        sort: SortKey::SlaDue,
        limit: 2,
        ..CaseQuery::default()
    };
    let mut got = Vec::new();
    loop {
        let page = store.list_cases(&tenant, &q).await.expect("list");
        got.extend(page.items.iter().map(|c| (c.id, c.sla_due_at)));
        match page.next_cursor {
            Some(c) => q.after = Some(Cursor::decode(&c).expect("cursor")),
            None => break,
        }
    }
    assert_eq!(got.len(), 5, "every case once");
    assert_eq!(
        got[..3],
        [(ids[2], Some(t(10))), (ids[3], Some(t(30))), (ids[0], Some(t(40)))],
        "earliest due first, with its due time"
    );
    let mut last: Vec<Uuid> = got[3..]
        .iter()
        .map(|(id, due)| {
            assert_eq!(*due, None);
            *id
        })
        .collect();
    last.sort();
    let mut want = vec![ids[1], ids[4]];
    want.sort();
    assert_eq!(last, want, "then those without a due time");
}

/// The calendars in use, and the cases computed on one of them.
pub async fn entries_are_found_by_the_calendar_they_were_computed_on<S: CaseProjection + SlaSchedule>(store: Arc<S>) {
    let (tenant, ids) = cases(&*store, 3).await;
    let v1 = calendar_key(&tenant, "office", 1);
    let v2 = calendar_key(&tenant, "office", 2);
    for (id, key) in ids.iter().zip([&v1, &v1, &v2]) {
        let mut e = entry(Some(10), Some(10), None);
        e.calendar = Some(key.clone());
        store.put_sla(&tenant, *id, &e).await.expect("put");
    }
    let keys = store.sla_calendars().await.expect("calendars");
    assert!(keys.contains(&v1) && keys.contains(&v2), "{keys:?}");
    assert_eq!(keys.iter().filter(|k| **k == v1).count(), 1, "each once");
    assert_eq!(parse_calendar_key(&v2), Some((tenant.clone(), "office".to_owned(), 2)));
    let mut on_v1: Vec<Uuid> = store
        .sla_cases_on(&v1, 10)
        .await
        .expect("on")
        .into_iter()
        .map(|c| c.case_id)
        .collect();
    on_v1.sort();
    let mut want = vec![ids[0], ids[1]];
    want.sort();
    assert_eq!(on_v1, want);
    assert_eq!(
        store.sla_cases_on(&v1, 1).await.expect("on").len(),
        1,
        "at most the limit"
    );
}
