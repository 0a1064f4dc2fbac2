//! Contract of `MailQuarantine`: one named test per behaviour.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use uuid::Uuid;

use super::fresh_tenant;
use crate::quarantine::{Held, MailQuarantine};

/// Every behaviour of the mail quarantine as a `#[tokio::test]`.
#[macro_export]
macro_rules! quarantine_contract {
    ($factory:path) => {
        $crate::__contract_tests!($factory, quarantine:
            held_mail_is_listed_newest_first,
            holding_the_same_mail_twice_keeps_the_first,
            a_tenant_sees_only_its_own_held_mail,
            held_mail_is_narrowed_by_mailbox_and_limit,
            forgotten_mail_is_gone,
        );
    };
}

fn held(tenant: &casewire_domain::types::TenantId, mailbox: &str, secs: i64, reason: &str) -> Held {
    let id = Uuid::now_v7();
    Held {
        id,
        tenant: tenant.clone(),
        mailbox: mailbox.into(),
        reason: reason.into(),
        message: format!("held: {reason}"),
        from: Some("someone@example.com".into()),
        subject: Some(format!("mail {secs}")),
        size: 1234,
        sha256: "ab".repeat(32),
        held_at: Utc.timestamp_opt(1_800_000_000 + secs, 0).single().expect("time"),
        blob: format!("quarantine/{tenant}/{id}"),
        case_id: None,
    }
}

pub async fn held_mail_is_listed_newest_first<S: MailQuarantine + ?Sized>(store: Arc<S>) {
    let t = fresh_tenant();
    let (a, b) = (
        held(&t, "support", 1, "too-big"),
        held(&t, "support", 2, "blocked-attachment"),
    );
    assert!(store.hold(&a).await.unwrap());
    assert!(store.hold(&b).await.unwrap());
    let all = store.held(&t, None, 10).await.unwrap();
    assert_eq!(all, vec![b, a.clone()]);
    assert_eq!(store.held_one(&t, a.id).await.unwrap(), Some(a));
}

pub async fn holding_the_same_mail_twice_keeps_the_first<S: MailQuarantine + ?Sized>(store: Arc<S>) {
    let t = fresh_tenant();
    let first = held(&t, "support", 1, "too-big");
    let again = Held {
        reason: "unreadable".into(),
        ..first.clone()
    };
    assert!(store.hold(&first).await.unwrap());
    assert!(!store.hold(&again).await.unwrap(), "the second hold is no new entry");
    assert_eq!(store.held(&t, None, 10).await.unwrap(), vec![first]);
}

pub async fn a_tenant_sees_only_its_own_held_mail<S: MailQuarantine + ?Sized>(store: Arc<S>) {
    let (t, other) = (fresh_tenant(), fresh_tenant());
    let mine = held(&t, "support", 1, "too-big");
    store.hold(&mine).await.unwrap();
    assert!(store.held(&other, None, 10).await.unwrap().is_empty());
    assert_eq!(store.held_one(&other, mine.id).await.unwrap(), None);
    assert!(!store.forget(&other, mine.id).await.unwrap(), "nor forgets it");
    assert_eq!(store.held_one(&t, mine.id).await.unwrap(), Some(mine));
}

pub async fn held_mail_is_narrowed_by_mailbox_and_limit<S: MailQuarantine + ?Sized>(store: Arc<S>) {
    let t = fresh_tenant();
    for i in 0..3 {
        store.hold(&held(&t, "support", i, "too-big")).await.unwrap();
    }
    let sales = held(&t, "sales", 10, "unknown-sender");
    store.hold(&sales).await.unwrap();
    assert_eq!(store.held(&t, Some("sales"), 10).await.unwrap(), vec![sales]);
    assert_eq!(store.held(&t, Some("support"), 10).await.unwrap().len(), 3);
    let two = store.held(&t, None, 2).await.unwrap();
    assert_eq!(two.len(), 2);
    assert_eq!(two[0].mailbox, "sales", "newest first");
}

pub async fn forgotten_mail_is_gone<S: MailQuarantine + ?Sized>(store: Arc<S>) {
    let t = fresh_tenant();
    let a = held(&t, "support", 1, "too-big");
    store.hold(&a).await.unwrap();
    assert!(store.forget(&t, a.id).await.unwrap());
    assert!(!store.forget(&t, a.id).await.unwrap(), "once");
    assert_eq!(store.held_one(&t, a.id).await.unwrap(), None);
    assert!(store.held(&t, None, 10).await.unwrap().is_empty());
}
