//! The hub: one reader of the event log per process, and the fan-out of
//! each event to every socket of its tenant.
//!
//! Events are read from the event store in position order (`read_all`,
//! which never skips a position a slower writer still fills), not taken
//! from the bus: the bus only says when to look. A position then means the
//! same to every socket, to the NDJSON stream and to a resuming client,
//! whatever partition an event travelled on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use casewire_application::{CaseCache, is_internal_comment};
use casewire_domain::Case;
use casewire_domain::types::TenantId;
use casewire_ports::envelope::event_to_json;
use casewire_ports::{EventRecord, Resource, StartFrom, Topic};
use casewire_runtime::Platform;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

/// Events read per look at the store.
const READ_BATCH: usize = 500;

/// One event, prepared once for every socket.
#[derive(Debug)]
pub struct Delivery {
    pub position: u64,
    pub tenant: TenantId,
    /// The case as it was when the hub sent the event, with its policy
    /// resource; `None` when it could not be read (then it goes nowhere).
    pub case: Option<(Case, Resource)>,
    /// Whether only callers allowed internal comments may see it.
    pub internal: bool,
    /// The CloudEvent, serialised once.
    pub json: Box<str>,
}

impl Delivery {
    /// Prepares `record`, with the case as `case` shows it now.
    pub fn new(record: &EventRecord, case: Option<Case>) -> Delivery {
        Delivery {
            position: record.position,
            tenant: record.tenant.clone(),
            case: case.map(|c| {
                let resource = Resource::of(&c);
                (c, resource)
            }),
            internal: is_internal_comment(record),
            json: serde_json::to_string(&event_to_json(record))
                .unwrap_or_default()
                .into_boxed_str(),
        }
    }
}

/// What the hub hands a socket.
#[derive(Debug, Clone)]
pub enum Push {
    /// An event of the socket's tenant, to be judged and filtered.
    Event(Arc<Delivery>),
    /// A new in-app notification of the socket's user (its JSON).
    Notification(Arc<str>),
}

/// A socket's place in the hub.
#[derive(Debug)]
pub struct Registration {
    pub id: u64,
    /// Every event up to here was sent before the socket registered; the
    /// queue starts after it.
    pub position: u64,
    pub rx: mpsc::Receiver<Push>,
    /// Set when the queue overflowed: the hub dropped the socket.
    pub behind: Arc<AtomicBool>,
}

#[derive(Debug)]
struct Entry {
    tenant: TenantId,
    user: String,
    tx: mpsc::Sender<Push>,
    behind: Arc<AtomicBool>,
}

#[derive(Debug, Default)]
struct Inner {
    /// The last position fanned out.
    position: u64,
    sockets: HashMap<u64, Entry>,
    next_id: u64,
}

/// The fan-out.
#[derive(Debug)]
pub struct Hub {
    inner: Mutex<Inner>,
    /// Events queued per socket before it counts as behind.
    buffer: usize,
}

impl Hub {
    /// A hub whose first event will be the one after `position`.
    pub fn new(position: u64, buffer: usize) -> Hub {
        Hub {
            inner: Mutex::new(Inner {
                position,
                ..Inner::default()
            }),
            buffer: buffer.max(1),
        }
    }

    /// The last position fanned out.
    pub fn position(&self) -> u64 {
        self.inner.lock().map_or(0, |i| i.position)
    }

    /// Adds a socket of `user` of `tenant`. Taken under the same lock as
    /// the fan-out, so the socket gets every event after the returned
    /// position, and none before.
    pub fn register(&self, tenant: TenantId, user: &str) -> Registration {
        let (tx, rx) = mpsc::channel(self.buffer);
        let behind = Arc::new(AtomicBool::new(false));
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.next_id += 1;
        let id = inner.next_id;
        inner.sockets.insert(
            id,
            Entry {
                tenant,
                user: user.to_owned(),
                tx,
                behind: behind.clone(),
            },
        );
        Registration {
            id,
            position: inner.position,
            rx,
            behind,
        }
    }

    /// Removes a socket.
    pub fn unregister(&self, id: u64) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.sockets.remove(&id);
        }
    }

    /// Hands each event to every socket of its tenant. A socket whose queue
    /// is full is dropped and flagged: one slow client never slows the
    /// others, and never makes the hub hold more than `buffer` per socket.
    pub fn publish(&self, deliveries: Vec<Arc<Delivery>>) {
        let Some(last) = deliveries.last().map(|d| d.position) else {
            return;
        };
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut dropped = Vec::new();
        for d in &deliveries {
            for (id, entry) in inner.sockets.iter().filter(|(_, e)| e.tenant == d.tenant) {
                if entry.tx.try_send(Push::Event(d.clone())).is_err() {
                    entry.behind.store(true, Ordering::Release);
                    dropped.push(*id);
                }
            }
            for id in dropped.drain(..) {
                inner.sockets.remove(&id);
                metrics::counter!("casewire_ws_behind_total").increment(1);
            }
        }
        inner.position = inner.position.max(last);
    }
}

impl Hub {
    /// Hands a notification to every socket of its user.
    pub fn notify_user(&self, tenant: &TenantId, user: &str, json: Arc<str>) {
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut dropped = Vec::new();
        for (id, entry) in inner
            .sockets
            .iter()
            .filter(|(_, e)| e.tenant == *tenant && e.user == user)
        {
            if entry.tx.try_send(Push::Notification(json.clone())).is_err() {
                entry.behind.store(true, Ordering::Release);
                dropped.push(*id);
            }
        }
        for id in dropped {
            inner.sockets.remove(&id);
        }
    }
}

/// Pushes new in-app notifications (`casewire.notifications`, every
/// process reads them all) to their users' sockets.
pub async fn notifications(platform: Platform, hub: Arc<Hub>, shutdown: CancellationToken) {
    follow(&platform, Topic::Notifications, &shutdown, |payload| {
        let Ok(item) = serde_json::from_slice::<casewire_ports::InboxItem>(payload) else {
            tracing::debug!("Ignored an unreadable notification");
            return;
        };
        hub.notify_user(&item.tenant, &item.user, String::from_utf8_lossy(payload).into());
    })
    .await;
}

/// Reads `topic` as a private reader from now on, handing each payload to
/// `on_message`, resubscribing after a lost bus, until `shutdown`.
async fn follow(platform: &Platform, topic: Topic, shutdown: &CancellationToken, mut on_message: impl FnMut(&[u8])) {
    loop {
        let sub = tokio::select! {
            _ = shutdown.cancelled() => return,
            sub = platform.bus.subscribe(None, topic, StartFrom::Latest) => sub,
        };
        let mut sub = match sub {
            Ok(sub) => sub,
            Err(e) => {
                tracing::warn!(error = %e, topic = topic.name(), "Could not listen on the bus; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        loop {
            let msg = tokio::select! {
                _ = shutdown.cancelled() => return,
                msg = sub.next() => msg,
            };
            match msg {
                Ok(msg) => on_message(&msg.payload),
                Err(e) => {
                    tracing::warn!(error = %e, topic = topic.name(), "Lost the bus; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
}

/// Reads the log from the hub's position on and fans it out, until
/// `shutdown`. Woken by appends where the store tells (embedded), else by
/// every message on `casewire.events` (a private reader: each process
/// needs every event, whichever partition it is on), and by a timer.
pub async fn tail(
    platform: Platform,
    hub: Arc<Hub>,
    cases: Arc<CaseCache>,
    poll: Duration,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let events = platform.events.clone();
    let mut head = events.watch_head();
    let wake = Arc::new(Notify::new());
    if head.is_none() {
        tokio::spawn(listen(platform.clone(), wake.clone(), shutdown.clone()));
    }
    let mut next = hub.position() + 1;
    loop {
        if shutdown.is_cancelled() {
            return Ok(());
        }
        match read(&platform, &cases, next).await {
            Ok(batch) if !batch.is_empty() => {
                next = batch.last().map_or(next, |d| d.position + 1);
                hub.publish(batch);
                continue;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, position = next, "Reading the event log failed; will retry"),
        }
        let changed = async {
            match head.as_mut() {
                Some(rx) => {
                    if rx.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
                None => wake.notified().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = changed => {}
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

/// The next events from `next`, each with its case as it is now.
async fn read(platform: &Platform, cases: &CaseCache, next: u64) -> anyhow::Result<Vec<Arc<Delivery>>> {
    let batch = platform.events.read_all(next, READ_BATCH).await?;
    let mut out = Vec::with_capacity(batch.len());
    for record in &batch {
        let case = cases.current(&*platform.events, &record.tenant, record.case_id).await?;
        out.push(Arc::new(Delivery::new(record, case)));
    }
    Ok(out)
}

/// Turns messages on `casewire.events` into wake-ups of the tail.
async fn listen(platform: Platform, wake: Arc<Notify>, shutdown: CancellationToken) {
    follow(&platform, Topic::Events, &shutdown, |_| wake.notify_one()).await;
}
#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(name: &str) -> TenantId {
        TenantId::parse(name).unwrap_or_else(|e| panic!("{e}"))
    }

    fn at(position: u64, of: &str) -> Arc<Delivery> {
        Arc::new(Delivery {
            position,
            tenant: tenant(of),
            case: None,
            internal: false,
            json: "{}".into(),
        })
    }

    fn drain(rx: &mut mpsc::Receiver<Push>) -> Vec<u64> {
        let mut out = Vec::new();
        while let Ok(p) = rx.try_recv() {
            if let Push::Event(d) = p {
                out.push(d.position);
            }
        }
        out
    }

    #[test]
    fn a_socket_gets_every_event_after_its_registration_and_none_before() {
        let hub = Hub::new(10, 16);
        hub.publish(vec![at(11, "acme"), at(12, "acme")]);
        let mut r = hub.register(tenant("acme"), "ann");
        assert_eq!(r.position, 12);
        hub.publish(vec![at(13, "acme")]);
        assert_eq!(drain(&mut r.rx), vec![13]);
    }

    #[test]
    fn events_go_only_to_sockets_of_their_tenant() {
        let hub = Hub::new(0, 16);
        let mut acme = hub.register(tenant("acme"), "ann");
        let mut globex = hub.register(tenant("globex"), "gus");
        hub.publish(vec![at(1, "acme"), at(2, "globex"), at(3, "acme")]);
        assert_eq!(drain(&mut acme.rx), vec![1, 3]);
        assert_eq!(drain(&mut globex.rx), vec![2]);
        assert_eq!(hub.position(), 3);
    }

    #[test]
    fn a_full_queue_drops_only_that_socket_and_flags_it() {
        let hub = Hub::new(0, 2);
        let mut slow = hub.register(tenant("acme"), "ann");
        let mut fast = hub.register(tenant("acme"), "ann");
        for p in 1..=5 {
            hub.publish(vec![at(p, "acme")]);
            // The fast one keeps up; the slow one reads nothing.
            assert_eq!(drain(&mut fast.rx), vec![p]);
        }
        assert!(slow.behind.load(Ordering::Acquire));
        assert!(!fast.behind.load(Ordering::Acquire));
        // What it had queued is still there, then the end: never more than the buffer.
        assert_eq!(drain(&mut slow.rx), vec![1, 2]);
        assert!(slow.rx.is_closed());
        hub.unregister(fast.id);
        hub.publish(vec![at(6, "acme")]);
        assert!(drain(&mut fast.rx).is_empty());
    }

    #[test]
    fn a_notification_reaches_only_its_users_sockets() {
        let hub = Hub::new(0, 4);
        let mut ann = hub.register(tenant("acme"), "ann");
        let mut bob = hub.register(tenant("acme"), "bob");
        let mut other_ann = hub.register(tenant("globex"), "ann");
        hub.notify_user(&tenant("acme"), "ann", "{}".into());
        assert!(matches!(ann.rx.try_recv(), Ok(Push::Notification(_))));
        assert!(bob.rx.try_recv().is_err());
        assert!(
            other_ann.rx.try_recv().is_err(),
            "another tenant's ann is another person"
        );
    }
}
