//! Contract of `NotificationStore`: one named test per behaviour.

use std::sync::Arc;

use casewire_domain::types::TenantId;
use chrono::{TimeZone, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::notification::{
    Channel, Delivery, DeliveryState, InboxItem, NotificationStore, Person, Preferences, WebhookAttempt,
    WebhookSubscription,
};

/// Every behaviour of the notification store as a `#[tokio::test]`.
#[macro_export]
macro_rules! notification_store_contract {
    ($factory:path) => {
        $crate::__contract_tests!($factory, notification:
            a_delivery_key_is_recorded_once,
            only_due_pending_deliveries_are_handed_out,
            sent_retried_and_dead_deliveries_keep_their_story,
            pending_digest_items_are_found_per_recipient,
            the_inbox_pages_newest_first_and_counts_unread,
            marking_read_touches_only_the_callers_items,
            preferences_round_trip_and_default_to_none,
            people_are_upserted_per_tenant,
            watchers_come_and_go,
            webhooks_keep_their_secrets_apart_and_log_attempts,
            planned_deliveries_are_counted_per_recipient_kind_and_time,
        );
    };
}

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).expect("tenant")
}

fn at(secs: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + secs, 0).single().expect("time")
}

fn delivery(key: &str, recipient: &str, not_before: i64) -> Delivery {
    Delivery {
        key: key.to_owned(),
        tenant: tenant("acme"),
        channel: Channel::Email,
        recipient: recipient.to_owned(),
        address: Some(format!("{recipient}@example.com")),
        case_id: Uuid::now_v7(),
        event_id: Uuid::now_v7(),
        kind: "assigned".into(),
        payload: json!({"subject": "s"}),
        not_before: at(not_before),
        digest: false,
        attempts: 0,
        state: DeliveryState::Pending,
        last_error: None,
        created_at: at(0),
        sent_at: None,
    }
}

fn item(user: &str, secs: i64) -> InboxItem {
    InboxItem {
        id: Uuid::now_v7(),
        tenant: tenant("acme"),
        user: user.to_owned(),
        case_id: Uuid::now_v7(),
        event_id: Uuid::now_v7(),
        kind: "assigned".into(),
        title: format!("at {secs}"),
        body: String::new(),
        created_at: at(secs),
        read_at: None,
    }
}

/// Recording the same key twice plans it once: redelivery never doubles.
pub async fn a_delivery_key_is_recorded_once<S: NotificationStore>(store: Arc<S>) {
    let k = format!("k-{}", Uuid::now_v7());
    assert_eq!(
        store
            .record(vec![delivery(&k, "ann", 0)], vec![])
            .await
            .expect("record"),
        1
    );
    let mut again = delivery(&k, "ann", 0);
    again.payload = json!({"subject": "changed"});
    assert_eq!(store.record(vec![again], vec![]).await.expect("record"), 0);
    let stored = store.delivery(&k).await.expect("read").expect("stored");
    assert_eq!(stored.payload["subject"], "s", "the first plan stands");
}

/// `due` returns pending deliveries whose time has come, oldest first.
pub async fn only_due_pending_deliveries_are_handed_out<S: NotificationStore>(store: Arc<S>) {
    let p = Uuid::now_v7();
    let (a, b, c) = (format!("{p}-a"), format!("{p}-b"), format!("{p}-c"));
    store
        .record(
            vec![
                delivery(&a, "ann", 20),
                delivery(&b, "ann", 10),
                delivery(&c, "ann", 500),
            ],
            vec![],
        )
        .await
        .expect("record");
    let due: Vec<String> = store
        .due(at(30), 100)
        .await
        .expect("due")
        .into_iter()
        .map(|d| d.key)
        .filter(|k| k.starts_with(&p.to_string()))
        .collect();
    assert_eq!(due, vec![b.clone(), a.clone()]);
    store.mark_sent(std::slice::from_ref(&b), at(31)).await.expect("sent");
    let due: Vec<String> = store
        .due(at(30), 100)
        .await
        .expect("due")
        .into_iter()
        .map(|d| d.key)
        .collect();
    assert!(!due.contains(&b) && due.contains(&a));
}

/// Sent, retried and dead deliveries record attempts, times and errors.
pub async fn sent_retried_and_dead_deliveries_keep_their_story<S: NotificationStore>(store: Arc<S>) {
    let k = format!("story-{}", Uuid::now_v7());
    store
        .record(vec![delivery(&k, "ann", 0)], vec![])
        .await
        .expect("record");
    store.retry(&k, at(60), "connection refused").await.expect("retry");
    let d = store.delivery(&k).await.expect("read").expect("stored");
    assert_eq!((d.attempts, d.not_before, d.state), (1, at(60), DeliveryState::Pending));
    assert_eq!(d.last_error.as_deref(), Some("connection refused"));
    assert!(store.due(at(59), 100).await.expect("due").iter().all(|x| x.key != k));
    store.mark_dead(&k, "gone").await.expect("dead");
    let d = store.delivery(&k).await.expect("read").expect("stored");
    assert_eq!(d.state, DeliveryState::Dead);
    assert!(
        store
            .due(at(10_000), 1000)
            .await
            .expect("due")
            .iter()
            .all(|x| x.key != k)
    );
}

/// A recipient's pending items of a channel, due or not, for a digest.
pub async fn pending_digest_items_are_found_per_recipient<S: NotificationStore>(store: Arc<S>) {
    let who = format!("digest-{}", Uuid::now_v7().simple());
    let p = Uuid::now_v7();
    store
        .record(
            vec![
                delivery(&format!("{p}-1"), &who, 10),
                delivery(&format!("{p}-2"), &who, 9999),
                delivery(&format!("{p}-3"), "other", 10),
            ],
            vec![],
        )
        .await
        .expect("record");
    let mine = store
        .pending_for(&tenant("acme"), &who, Channel::Email)
        .await
        .expect("pending");
    assert_eq!(mine.len(), 2);
    assert!(
        store
            .pending_for(&tenant("acme"), &who, Channel::InApp)
            .await
            .expect("pending")
            .is_empty()
    );
}

/// The inbox is newest first, paged by the last item seen, with the unread count.
pub async fn the_inbox_pages_newest_first_and_counts_unread<S: NotificationStore>(store: Arc<S>) {
    let user = format!("u-{}", Uuid::now_v7().simple());
    let items: Vec<InboxItem> = (0..5).map(|i| item(&user, i)).collect();
    store.record(vec![], items.clone()).await.expect("record");
    // Recording again adds nothing (the ids are the same).
    store.record(vec![], items.clone()).await.expect("record");
    let (page, unread) = store.inbox(&tenant("acme"), &user, None, 2).await.expect("inbox");
    assert_eq!(unread, 5);
    assert_eq!(
        page.iter().map(|i| i.title.as_str()).collect::<Vec<_>>(),
        ["at 4", "at 3"]
    );
    let (page, _) = store
        .inbox(&tenant("acme"), &user, Some(page[1].id), 10)
        .await
        .expect("inbox");
    assert_eq!(
        page.iter().map(|i| i.title.as_str()).collect::<Vec<_>>(),
        ["at 2", "at 1", "at 0"]
    );
    let (page, _) = store.inbox(&tenant("globex"), &user, None, 10).await.expect("inbox");
    assert!(page.is_empty(), "inboxes are per tenant");
}

/// One item, then all; never another user's.
pub async fn marking_read_touches_only_the_callers_items<S: NotificationStore>(store: Arc<S>) {
    let (me, other) = (
        format!("me-{}", Uuid::now_v7().simple()),
        format!("o-{}", Uuid::now_v7().simple()),
    );
    let mine: Vec<InboxItem> = (0..3).map(|i| item(&me, i)).collect();
    store.record(vec![], mine.clone()).await.expect("record");
    store.record(vec![], vec![item(&other, 1)]).await.expect("record");
    assert_eq!(
        store
            .mark_read(&tenant("acme"), &me, Some(mine[0].id), at(9))
            .await
            .expect("read"),
        1
    );
    // Another user's id does nothing for me.
    let theirs = store.inbox(&tenant("acme"), &other, None, 1).await.expect("inbox").0[0].id;
    assert_eq!(
        store
            .mark_read(&tenant("acme"), &me, Some(theirs), at(9))
            .await
            .expect("read"),
        0
    );
    assert_eq!(
        store.mark_read(&tenant("acme"), &me, None, at(10)).await.expect("read"),
        2
    );
    let (page, unread) = store.inbox(&tenant("acme"), &me, None, 10).await.expect("inbox");
    assert_eq!(unread, 0);
    assert!(page.iter().all(|i| i.read_at.is_some()));
    assert_eq!(
        store.inbox(&tenant("acme"), &other, None, 10).await.expect("inbox").1,
        1
    );
}

/// What was put comes back; nobody's are defaults.
pub async fn preferences_round_trip_and_default_to_none<S: NotificationStore>(store: Arc<S>) {
    let user = format!("p-{}", Uuid::now_v7().simple());
    assert_eq!(store.preferences(&tenant("acme"), &user).await.expect("read"), None);
    let prefs = Preferences {
        time_zone: "Europe/Berlin".into(),
        digest_minutes: Some(60),
        muted_cases: vec![Uuid::now_v7()],
        ..Preferences::default()
    };
    store
        .put_preferences(&tenant("acme"), &user, &prefs)
        .await
        .expect("put");
    assert_eq!(
        store.preferences(&tenant("acme"), &user).await.expect("read"),
        Some(prefs)
    );
    assert_eq!(store.preferences(&tenant("globex"), &user).await.expect("read"), None);
}

/// The directory keeps the newest sighting per tenant and name.
pub async fn people_are_upserted_per_tenant<S: NotificationStore>(store: Arc<S>) {
    let name = format!("n-{}", Uuid::now_v7().simple());
    let mut person = Person {
        tenant: tenant("acme"),
        username: name.clone(),
        sub: "s".into(),
        email: Some("a@example.com".into()),
        roles: vec!["case-worker".into()],
        groups: vec!["/queues/support".into()],
        seen_at: at(0),
    };
    store.upsert_person(&person).await.expect("upsert");
    person.groups.push("/queues/claims".into());
    store.upsert_person(&person).await.expect("upsert");
    assert_eq!(
        store.person(&tenant("acme"), &name).await.expect("read"),
        Some(person.clone())
    );
    assert!(store.people(&tenant("acme")).await.expect("people").contains(&person));
    assert_eq!(store.person(&tenant("globex"), &name).await.expect("read"), None);
}

/// Watching twice is once; unwatching removes.
pub async fn watchers_come_and_go<S: NotificationStore>(store: Arc<S>) {
    let case = Uuid::now_v7();
    store.watch(&tenant("acme"), case, "bob", true).await.expect("watch");
    store.watch(&tenant("acme"), case, "bob", true).await.expect("watch");
    store.watch(&tenant("acme"), case, "ann", true).await.expect("watch");
    assert_eq!(
        store.watchers(&tenant("acme"), case).await.expect("read"),
        ["ann", "bob"]
    );
    store.watch(&tenant("acme"), case, "bob", false).await.expect("unwatch");
    assert_eq!(store.watchers(&tenant("acme"), case).await.expect("read"), ["ann"]);
    assert!(store.watchers(&tenant("globex"), case).await.expect("read").is_empty());
}

/// Secrets are stored (never serialised with the record), attempts logged newest first.
pub async fn webhooks_keep_their_secrets_apart_and_log_attempts<S: NotificationStore>(store: Arc<S>) {
    let t = tenant(&format!("w{}", &Uuid::now_v7().simple().to_string()[20..]));
    let sub = WebhookSubscription {
        id: Uuid::now_v7(),
        tenant: t.clone(),
        url: "https://hooks.example.com/x".into(),
        events: vec![],
        secrets: vec!["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()],
        enabled: true,
        disabled_reason: None,
        created_by: "carol".into(),
        created_at: at(0),
    };
    assert!(!serde_json::to_string(&sub).expect("json").contains("whsec_"));
    store.put_webhook(&sub).await.expect("put");
    assert_eq!(store.webhooks(&t).await.expect("list"), vec![sub.clone()]);
    for attempt in 1..=3 {
        store
            .log_attempt(&WebhookAttempt {
                subscription: sub.id,
                message_id: "msg".into(),
                attempt,
                at: at(i64::from(attempt)),
                status: Some(500),
                error: None,
            })
            .await
            .expect("log");
    }
    let log = store.attempts(sub.id, 2).await.expect("attempts");
    assert_eq!(log.iter().map(|a| a.attempt).collect::<Vec<_>>(), [3, 2]);
    assert!(store.delete_webhook(&t, sub.id).await.expect("delete"));
    assert!(!store.delete_webhook(&t, sub.id).await.expect("delete"));
    assert!(store.webhooks(&t).await.expect("list").is_empty());
}

/// What a rate limit counts: a recipient's deliveries of one kind since a
/// time, whatever became of them.
pub async fn planned_deliveries_are_counted_per_recipient_kind_and_time<S: NotificationStore>(store: Arc<S>) {
    let who = format!("{}@example.com", Uuid::now_v7().simple());
    let mut plans = Vec::new();
    for (i, (kind, secs)) in [("received", 10), ("received", 20), ("received", 30), ("comment", 25)]
        .into_iter()
        .enumerate()
    {
        let mut d = delivery(&format!("{who}-{i}"), &who, 0);
        d.kind = kind.into();
        d.created_at = at(secs);
        plans.push(d);
    }
    let mut someone_else = delivery(&format!("{who}-other"), "bob", 0);
    someone_else.kind = "received".into();
    someone_else.created_at = at(30);
    plans.push(someone_else);
    store.record(plans, vec![]).await.expect("record");
    store.mark_sent(&[format!("{who}-0")], at(11)).await.expect("sent");
    let count = |kind: &'static str, since: i64| {
        let (store, who) = (store.clone(), who.clone());
        async move {
            store
                .planned_since(&tenant("acme"), &who, kind, at(since))
                .await
                .expect("count")
        }
    };
    assert_eq!(count("received", 0).await, 3, "sent or not");
    assert_eq!(count("received", 20).await, 2, "from the time on");
    assert_eq!(count("comment", 0).await, 1);
    assert_eq!(count("resolved", 0).await, 0);
    let other = store
        .planned_since(&tenant("other"), &who, "received", at(0))
        .await
        .expect("count");
    assert_eq!(other, 0, "per tenant");
}
