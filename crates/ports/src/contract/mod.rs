//! Contract suites: one per port, generic over the adapter. Every adapter's
//! tests call these with a fresh instance (its own database, bucket or topic
//! prefix), so the same behaviour is asserted of SQLite, Kafka and MongoDB.
//! They panic with a message on the first broken promise.
//!
//! # Layout
//! - this module: `skip`, the event store, bus and blob store suites (one
//!   function each), and [`Fixture`], what the read-side macros expect of an
//!   adapter's store factory;
//! - [`projection`], [`command_log`], [`file_catalog`], [`definitions`],
//!   [`checkpoints`]: one public function per behaviour of each read-side
//!   port, and [`read_store`] for what spans them (reset, ping). Adapters
//!   run them through `read_store_contract!(factory)` (or the macro of one
//!   port), which makes each behaviour its own named test, so a failure
//!   names the behaviour and does not hide the rest.

// These are test suites shipped as library code: a panic is the report.
#![allow(clippy::expect_used, clippy::unwrap_used)]

pub mod checkpoints;
pub mod command_log;
pub mod definitions;
pub mod file_catalog;
pub mod notification;
pub mod projection;
pub mod quarantine;
pub mod read_store;
pub mod sla;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use uuid::Uuid;

use crate::*;
use casewire_domain::types::TenantId;

/// A tenant of the suites, which write only valid ones.
pub fn tenant_id(name: &str) -> TenantId {
    TenantId::parse(name).expect("a valid tenant")
}

/// A fresh tenant, so that tests sharing a store do not meet.
pub fn fresh_tenant() -> TenantId {
    tenant_id(&format!("t-{}", Uuid::now_v7().simple()))
}

/// Says why an infra-backed test did not run, for tests that need a
/// server (`tests/run` starts them). Under `tests/run`
/// (`CASEWIRE_REQUIRE_INFRA=1`) a missing service is a failure instead.
pub fn skip(reason: &str) {
    use std::io::Write;
    assert!(
        std::env::var_os("CASEWIRE_REQUIRE_INFRA").is_none(),
        "required infrastructure missing: {reason}"
    );
    // Written to the handle, not through eprintln!, which libtest captures.
    let _ = writeln!(std::io::stderr(), "SKIPPED: {reason}");
}

/// What an adapter's store factory returns to the contract macros: a fresh
/// store, with whatever must outlive the test beside it (a temporary
/// directory), or `None` when its server is missing (the factory called
/// [`skip`], so the test passes after saying why).
pub trait Fixture {
    /// The adapter under test.
    type Store;
    /// The store to test, or `None` to skip.
    fn store(&self) -> Option<Arc<Self::Store>>;
}

impl<S> Fixture for Arc<S> {
    type Store = S;
    fn store(&self) -> Option<Arc<S>> {
        Some(self.clone())
    }
}

impl<S, G> Fixture for (Arc<S>, G) {
    type Store = S;
    fn store(&self) -> Option<Arc<S>> {
        Some(self.0.clone())
    }
}

impl<F: Fixture> Fixture for Option<F> {
    type Store = F::Store;
    fn store(&self) -> Option<Arc<F::Store>> {
        self.as_ref().and_then(Fixture::store)
    }
}

/// One `#[tokio::test]` per behaviour of `contract::<suite>`, each on a
/// fresh store from `factory` (an async fn returning a [`Fixture`]). The
/// invoking crate needs `tokio` (with its `macros` feature).
#[doc(hidden)]
#[macro_export]
macro_rules! __contract_tests {
    ($factory:path, $suite:ident: $($behaviour:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $behaviour() {
                let fixture = $factory().await;
                if let Some(store) = $crate::contract::Fixture::store(&fixture) {
                    $crate::contract::$suite::$behaviour(store).await;
                }
            }
        )+
    };
}

/// Every read-side contract as named tests, one module per port
/// (`case_projection`, `command_log`, `file_catalog`, `definition_store`,
/// `checkpoints`, and `read_store` for what spans them). `factory` is an
/// async fn of the invoking module that returns a fresh store as a
/// [`Fixture`]; the invoking crate needs `tokio` (with `macros`).
///
/// ```text
/// async fn fresh_store() -> (Arc<SqliteReadStore>, TempDir) { ... }
/// casewire_ports::read_store_contract!(fresh_store);
/// ```
#[macro_export]
macro_rules! read_store_contract {
    ($factory:ident) => {
        mod case_projection {
            $crate::case_projection_contract!(super::$factory);
        }
        mod command_log {
            $crate::command_log_contract!(super::$factory);
        }
        mod file_catalog {
            $crate::file_catalog_contract!(super::$factory);
        }
        mod definition_store {
            $crate::definition_store_contract!(super::$factory);
        }
        mod checkpoints {
            $crate::checkpoints_contract!(super::$factory);
        }
        mod read_store {
            $crate::read_store_composite_contract!(super::$factory);
        }
        mod sla_schedule {
            $crate::sla_schedule_contract!(super::$factory);
        }
    };
}

fn new_event(command_id: Uuid, n: u32) -> NewEvent {
    NewEvent {
        id: Uuid::now_v7(),
        event_type: "casewire.case.tagged.v1".into(),
        data: serde_json::json!({"tag": format!("t{n}")}),
        time: Utc::now(),
        actor: "contract".into(),
        command_id,
        correlation_id: command_id,
    }
}

/// The `EventStore` promises.
pub async fn event_store_contract<S: EventStore>(store: Arc<S>) {
    let tenant = tenant_id("contract");
    let tenant = &tenant;
    let case = Uuid::now_v7();
    let other = Uuid::now_v7();
    let c1 = Uuid::now_v7();
    let start = store.head().await.expect("head");

    let first = store
        .append(tenant, case, 0, vec![new_event(c1, 1), new_event(c1, 2)])
        .await
        .expect("append to a new stream");
    assert_eq!(
        first.iter().map(|e| e.revision).collect::<Vec<_>>(),
        vec![1, 2],
        "revisions count from 1"
    );
    assert!(
        first[0].position > start && first[1].position > first[0].position,
        "positions increase"
    );

    // A stale writer loses and writes nothing.
    match store.append(tenant, case, 1, vec![new_event(Uuid::now_v7(), 3)]).await {
        Err(StoreError::Conflict { expected: 1, actual: 2 }) => {}
        other => panic!("expected a conflict at revision 2, got {other:?}"),
    }
    match store.append(tenant, case, 0, vec![new_event(Uuid::now_v7(), 3)]).await {
        Err(StoreError::Conflict { .. }) => {}
        other => panic!("expected a conflict when re-opening a stream, got {other:?}"),
    }
    assert_eq!(
        store.load(tenant, case).await.expect("load").len(),
        2,
        "a conflict appends nothing"
    );

    let c2 = Uuid::now_v7();
    store
        .append(tenant, other, 0, vec![new_event(c2, 9)])
        .await
        .expect("append other");
    let c3 = Uuid::now_v7();
    store
        .append(tenant, case, 2, vec![new_event(c3, 3)])
        .await
        .expect("append after reload");

    let stream = store.load(tenant, case).await.expect("load");
    assert_eq!(stream.iter().map(|e| e.revision).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(stream[0].data, serde_json::json!({"tag": "t1"}), "data round-trips");
    assert_eq!(stream[0].command_id, c1);
    assert!(
        store
            .load(&tenant_id("another-tenant"), case)
            .await
            .expect("load")
            .is_empty(),
        "streams are scoped by tenant"
    );
    assert!(store.load(tenant, Uuid::now_v7()).await.expect("load").is_empty());

    let all = store.read_all(start + 1, 100).await.expect("read_all");
    assert_eq!(all.len(), 4, "read_all sees every event since the start");
    assert!(
        all.windows(2).all(|w| w[0].position < w[1].position),
        "read_all is in position order"
    );
    let from = all[2].position;
    let tail = store.read_all(from, 100).await.expect("read_all from");
    assert_eq!(tail.first().map(|e| e.position), Some(from), "from is inclusive");
    assert_eq!(
        store.read_all(start + 1, 1).await.expect("limit").len(),
        1,
        "limit is honoured"
    );
    assert_eq!(store.head().await.expect("head"), all[3].position);

    let caused = store.find_by_command(c1).await.expect("find_by_command");
    assert_eq!(caused.iter().map(|e| e.revision).collect::<Vec<_>>(), vec![1, 2]);
    assert!(store.find_by_command(Uuid::now_v7()).await.expect("find").is_empty());

    // Keys: sequential per (tenant, prefix), never twice under concurrency.
    let prefix = format!("K{}", &Uuid::now_v7().simple().to_string()[..4].to_uppercase());
    assert_eq!(store.allocate_key(tenant, &prefix).await.expect("key"), 1);
    assert_eq!(store.allocate_key(tenant, &prefix).await.expect("key"), 2);
    assert_eq!(
        store
            .allocate_key(&tenant_id("another-tenant"), &prefix)
            .await
            .expect("key"),
        1,
        "keys are per tenant"
    );
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        let (prefix, tenant) = (prefix.clone(), tenant.clone());
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for _ in 0..25 {
                got.push(store.allocate_key(&tenant, &prefix).await.expect("key"));
            }
            got
        }));
    }
    let mut seen = HashSet::new();
    for t in tasks {
        for n in t.await.expect("join") {
            assert!(seen.insert(n), "key number {n} allocated twice");
        }
    }
    assert_eq!(seen.len(), 200);
    assert_eq!(seen.iter().min(), Some(&3));
    assert_eq!(seen.iter().max(), Some(&202), "no gaps under concurrency");

    // A prefix whose first numbers are taken concurrently: the counter is
    // created by a race, and still no number is lost or given twice.
    let fresh = format!("N{}", &Uuid::now_v7().simple().to_string()[..4].to_uppercase());
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        let (fresh, tenant) = (fresh.clone(), tenant.clone());
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for _ in 0..5 {
                got.push(store.allocate_key(&tenant, &fresh).await.expect("key"));
            }
            got
        }));
    }
    let mut taken = Vec::new();
    for t in tasks {
        taken.extend(t.await.expect("join"));
    }
    taken.sort_unstable();
    assert_eq!(
        taken,
        (1..=40).collect::<Vec<u64>>(),
        "a new prefix counts 1..40 under concurrency"
    );

    // Concurrent appends at the same revision: exactly one wins.
    let racy = Uuid::now_v7();
    let mut tasks = Vec::new();
    for n in 0..4 {
        let (store, tenant) = (store.clone(), tenant.clone());
        tasks.push(tokio::spawn(async move {
            store.append(&tenant, racy, 0, vec![new_event(Uuid::now_v7(), n)]).await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.expect("join") {
            Ok(_) => wins += 1,
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!(wins, 1, "exactly one concurrent writer wins");

    // A batch: two parts for one stream chain, one for another, in order.
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let part = |case_id: Uuid, expected: u64, n: usize| crate::Append {
        tenant: tenant.clone(),
        case_id,
        expected,
        events: (0..n).map(|i| new_event(Uuid::now_v7(), i as u32)).collect(),
    };
    let out = store
        .append_batch(vec![part(a, 0, 1), part(b, 0, 1), part(a, 1, 2)])
        .await
        .expect("a batch");
    let revisions: Vec<Vec<u64>> = out.iter().map(|p| p.iter().map(|e| e.revision).collect()).collect();
    assert_eq!(revisions, vec![vec![1], vec![1], vec![2, 3]], "each part as one append");
    assert_eq!(store.load(tenant, a).await.expect("load").len(), 3);
    match store.append_batch(vec![part(a, 1, 1)]).await {
        Err(StoreError::Conflict { expected: 1, actual: 3 }) => {}
        other => panic!("expected a stale part to conflict, got {other:?}"),
    }
    assert_eq!(
        store.load(tenant, a).await.expect("load").len(),
        3,
        "and to append nothing"
    );
    store.ping().await.expect("ping");
}

async fn next_within(sub: &mut Box<dyn Subscription>) -> BusMessage {
    tokio::time::timeout(Duration::from_secs(20), sub.next())
        .await
        .expect("a message within 20 s")
        .expect("next")
}

/// The `Bus` promises. Give it a bus of its own (fresh topics or prefix).
pub async fn bus_contract<B: Bus>(bus: Arc<B>) {
    let group = format!("contract-{}", Uuid::now_v7());
    let mut sub = bus
        .subscribe(Some(&group), Topic::Commands, StartFrom::Earliest)
        .await
        .expect("subscribe");
    let mut live = bus
        .subscribe(None, Topic::Commands, StartFrom::Latest)
        .await
        .expect("subscribe latest");
    let messages: Vec<(String, Vec<u8>)> = (0..10)
        .map(|n| ("case-a".to_owned(), format!("m{n}").into_bytes()))
        .collect();
    bus.publish(Topic::Commands, messages).await.expect("publish");
    bus.publish(Topic::Events, vec![("case-a".into(), b"event".to_vec())])
        .await
        .expect("publish");

    let mut got = Vec::new();
    for _ in 0..10 {
        let m = next_within(&mut sub).await;
        assert_eq!(m.topic, Topic::Commands, "topics are isolated");
        assert_eq!(m.key, "case-a");
        got.push(m);
    }
    let payloads: Vec<_> = got
        .iter()
        .map(|m| String::from_utf8_lossy(&m.payload).to_string())
        .collect();
    assert_eq!(
        payloads,
        (0..10).map(|n| format!("m{n}")).collect::<Vec<_>>(),
        "one key keeps its order"
    );
    assert_eq!(
        String::from_utf8_lossy(&next_within(&mut live).await.payload),
        "m0",
        "a Latest reader sees new messages"
    );

    // Commit the first four; a new consumer of the group resumes at the fifth.
    sub.commit(&got[3]).await.expect("commit");
    drop(sub);
    let mut again = bus
        .subscribe(Some(&group), Topic::Commands, StartFrom::Earliest)
        .await
        .expect("resubscribe");
    let m = next_within(&mut again).await;
    assert_eq!(
        String::from_utf8_lossy(&m.payload),
        "m4",
        "uncommitted messages are delivered again"
    );
    // Commit everything; nothing is left for the group.
    sub = again;
    let mut last = m;
    for _ in 5..10 {
        last = next_within(&mut sub).await;
    }
    sub.commit(&last).await.expect("commit");
    drop(sub);
    let mut after = bus
        .subscribe(Some(&group), Topic::Commands, StartFrom::Earliest)
        .await
        .expect("resubscribe");
    bus.publish(Topic::Commands, vec![("case-b".into(), b"fresh".to_vec())])
        .await
        .expect("publish");
    assert_eq!(
        String::from_utf8_lossy(&next_within(&mut after).await.payload),
        "fresh",
        "committed messages stay handled"
    );

    // Another group starts from the beginning on its own.
    let mut other = bus
        .subscribe(Some(&format!("{group}-other")), Topic::Commands, StartFrom::Earliest)
        .await
        .expect("subscribe");
    assert_eq!(
        String::from_utf8_lossy(&next_within(&mut other).await.payload),
        "m0",
        "groups are independent"
    );
    bus.ping().await.expect("ping");
}

/// The `BlobStore` promises. Give it a store of its own (fresh directory,
/// bucket or key prefix). The large body is 11 MiB + 17 bytes, so an S3
/// adapter configured with 5 MiB parts (the S3 minimum) goes through a
/// three-part multipart upload, its abort paths included. The expected
/// SHA-256 values are constants computed outside Rust, so the adapter's
/// hashing is checked against an independent implementation.
pub async fn blob_store_contract<S: BlobStore>(store: Arc<S>) {
    use bytes::Bytes;
    use futures::StreamExt;

    const EMPTY_SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const SMALL: &[u8] = b"hello, blob\n";
    const SMALL_SHA: &str = "392033f3c6621200e3f594e2fb7f2ea2b6d1e13801d75d5c6203ce9507de4965";
    const LARGE_LEN: usize = 11 * 1024 * 1024 + 17;
    const LARGE_SHA: &str = "c7529d6f507684aa3580473d89a9bf8963fe902c87ba1efe5dc90d55c3c164b2";
    const WRONG_SHA: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    // xorshift64: incompressible, deterministic, and cheap to reproduce
    // (`python3` computed LARGE_SHA from the same generator).
    fn large_body() -> Vec<u8> {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut out = Vec::with_capacity(LARGE_LEN + 8);
        while out.len() < LARGE_LEN {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.truncate(LARGE_LEN);
        out
    }

    // Odd chunk sizes (and an empty chunk) so that part boundaries fall
    // inside chunks.
    fn chunked(data: &[u8], chunk: usize) -> ByteStream {
        let mut items: Vec<Result<Bytes, BlobError>> = data
            .chunks(chunk.max(1))
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        items.insert(items.len().min(1), Ok(Bytes::new()));
        Box::pin(futures::stream::iter(items))
    }

    // `data` and then the error, without the rest.
    fn failing(data: &[u8], chunk: usize, error: BlobError) -> ByteStream {
        let items: Vec<Result<Bytes, BlobError>> = data
            .chunks(chunk)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .chain(std::iter::once(Err(error)))
            .collect();
        Box::pin(futures::stream::iter(items))
    }

    async fn read_all(read: BlobRead) -> Vec<u8> {
        let mut body = read.body;
        let mut out = Vec::new();
        while let Some(chunk) = body.next().await {
            out.extend_from_slice(&chunk.expect("body chunk"));
        }
        out
    }

    async fn assert_absent<S: BlobStore>(store: &S, key: &str, why: &str) {
        assert_eq!(store.head(key).await.expect("head"), None, "{why}: head finds nothing");
        match store.get(key, None).await {
            Err(BlobError::NotFound) => {}
            other => panic!("{why}: expected NotFound from get, got {other:?}"),
        }
    }

    let run = Uuid::now_v7().simple().to_string();
    let key = |name: &str| format!("contract-{run}/{name}");
    let large = large_body();
    let size = LARGE_LEN as u64;

    store.ping().await.expect("ping");
    assert_absent(&*store, &key("never-written"), "a missing key").await;

    // Empty body.
    let empty_key = key("empty");
    let info = store
        .put(&empty_key, "application/octet-stream", chunked(&[], 1), Some(EMPTY_SHA))
        .await
        .expect("put empty");
    assert_eq!(
        info,
        BlobInfo {
            key: empty_key.clone(),
            size: 0,
            content_type: "application/octet-stream".into(),
            sha256: EMPTY_SHA.into(),
        }
    );
    assert_eq!(store.head(&empty_key).await.expect("head"), Some(info.clone()));
    let read = store.get(&empty_key, None).await.expect("get empty");
    assert_eq!(read.info, info);
    assert_eq!(read.range, None);
    assert!(read_all(read).await.is_empty(), "an empty blob reads empty");
    match store
        .get(&empty_key, Some(ByteRange::From { start: 0, end: None }))
        .await
    {
        Err(BlobError::InvalidRange { size: 0 }) => {}
        other => panic!("an empty blob has no ranges, got {other:?}"),
    }

    // Small body, content type kept, no expected checksum.
    let small_key = key("small.txt");
    let content_type = "text/plain; charset=utf-8";
    let info = store
        .put(&small_key, content_type, chunked(SMALL, 5), None)
        .await
        .expect("put small");
    assert_eq!(
        info,
        BlobInfo {
            key: small_key.clone(),
            size: SMALL.len() as u64,
            content_type: content_type.into(),
            sha256: SMALL_SHA.into(),
        },
        "put reports the size and the SHA-256 it computed"
    );
    assert_eq!(store.head(&small_key).await.expect("head"), Some(info.clone()));
    let read = store.get(&small_key, None).await.expect("get small");
    assert_eq!(read.info, info, "get reports the same info as put");
    assert_eq!(read_all(read).await, SMALL);

    // Large body (multipart on S3), with the right expected checksum.
    let large_key = key("large.bin");
    let info = store
        .put(&large_key, "application/pdf", chunked(&large, 100_003), Some(LARGE_SHA))
        .await
        .expect("put large");
    assert_eq!((info.size, info.sha256.as_str()), (size, LARGE_SHA));
    assert_eq!(info.content_type, "application/pdf");
    assert_eq!(store.head(&large_key).await.expect("head"), Some(info.clone()));
    let read = store.get(&large_key, None).await.expect("get large");
    assert_eq!(read.info, info);
    assert!(
        read_all(read).await == large,
        "the large body round-trips byte for byte"
    );

    // Ranges, inclusive like HTTP; one crosses the 5 MiB part boundary.
    let five = 5 * 1024 * 1024;
    let cases = [
        (ByteRange::From { start: 0, end: Some(9) }, (0, 9)),
        (
            ByteRange::From {
                start: five - 3,
                end: Some(five + 2),
            },
            (five - 3, five + 2),
        ),
        (
            ByteRange::From {
                start: size - 10,
                end: None,
            },
            (size - 10, size - 1),
        ),
        (
            ByteRange::From {
                start: size - 5,
                end: Some(size + 1000),
            },
            (size - 5, size - 1),
        ),
        (ByteRange::Suffix(10), (size - 10, size - 1)),
        (ByteRange::Suffix(size + 100), (0, size - 1)),
        (ByteRange::From { start: 7, end: Some(7) }, (7, 7)),
    ];
    for (range, (start, end)) in cases {
        let read = store.get(&large_key, Some(range)).await.expect("get range");
        assert_eq!(read.range, Some((start, end)), "served range of {range:?}");
        assert_eq!(read.info, info, "a ranged read reports the whole blob's info");
        let got = read_all(read).await;
        assert!(
            got == large[start as usize..=end as usize],
            "{range:?}: expected {} bytes from {start}, got {} bytes",
            end - start + 1,
            got.len()
        );
    }
    let read = store
        .get(
            &small_key,
            Some(ByteRange::From {
                start: 7,
                end: Some(10),
            }),
        )
        .await
        .expect("range of small");
    assert_eq!(read_all(read).await, b"blob");
    for range in [
        ByteRange::From { start: size, end: None },
        ByteRange::From {
            start: size + 10,
            end: Some(size + 20),
        },
    ] {
        match store.get(&large_key, Some(range)).await {
            Err(BlobError::InvalidRange { size: s }) => assert_eq!(s, size, "InvalidRange carries the size"),
            other => panic!("{range:?} starts past the end, got {other:?}"),
        }
    }

    // A wrong checksum stores nothing, small (single request) or large (multipart).
    for (name, data) in [("bad-small", SMALL), ("bad-large", &large[..])] {
        let k = key(name);
        match store
            .put(&k, "text/plain", chunked(data, 65_537), Some(WRONG_SHA))
            .await
        {
            Err(BlobError::ChecksumMismatch { expected, actual }) => {
                assert_eq!(expected, WRONG_SHA);
                let want = if data.len() == SMALL.len() {
                    SMALL_SHA
                } else {
                    LARGE_SHA
                };
                assert_eq!(actual, want, "the mismatch reports the computed SHA-256");
            }
            other => panic!("{name}: expected ChecksumMismatch, got {other:?}"),
        }
        assert_absent(&*store, &k, name).await;
    }

    // A stream failing midway: its error comes back and nothing is stored
    // (once within the first part, once after two full 5 MiB parts).
    for (name, cut) in [("cut-early", 1000), ("cut-late", 10 * 1024 * 1024 + 5)] {
        let k = key(name);
        let refused = BlobError::Refused(format!("{name} by the feeder"));
        match store
            .put(&k, "text/plain", failing(&large[..cut], 65_536, refused.clone()), None)
            .await
        {
            Err(e) => assert_eq!(e, refused, "{name}: the stream's own error is returned"),
            Ok(info) => panic!("{name}: a failing stream was stored as {info:?}"),
        }
        assert_absent(&*store, &k, name).await;
    }

    // Delete: gone afterwards, and idempotent.
    store.delete(&small_key).await.expect("delete");
    assert_absent(&*store, &small_key, "a deleted key").await;
    store.delete(&small_key).await.expect("deleting twice is fine");
    store
        .delete(&key("never-written"))
        .await
        .expect("deleting a missing key is fine");
    assert!(
        store.head(&large_key).await.expect("head").is_some(),
        "delete removes only its key"
    );
    for k in [&empty_key, &large_key] {
        store.delete(k).await.expect("delete");
        assert_absent(&*store, k, "a deleted key").await;
    }

    // Presigning: a backend has both URLs or neither.
    let get = store
        .presign_get(&large_key, Duration::from_secs(60), Some("report.pdf"))
        .await
        .expect("presign_get");
    let put = store
        .presign_put(&key("direct"), "text/plain", Duration::from_secs(60))
        .await
        .expect("presign_put");
    assert_eq!(
        get.is_some(),
        put.is_some(),
        "presign_get and presign_put agree: {get:?} / {put:?}"
    );
    store.ping().await.expect("ping");
}
