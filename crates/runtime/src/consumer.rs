//! The consumer loop every service runs: take what the subscription holds
//! (a batch), handle it, retry with backoff while handling fails, isolate
//! and park a poison message in the dead-letter topic, then commit. One implementation, so the engine and
//! the projector (and later services) agree on what "at least once, never
//! stuck" means.

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder as _, ExponentialBuilder};
use futures::FutureExt as _;

use casewire_ports::{BusMessage, StartFrom, Topic};
use tokio_util::sync::CancellationToken;

use crate::Platform;

/// Why a handler did not finish a message.
#[derive(Debug)]
pub enum Failure {
    /// Waiting may fix it (a store or broker is unreachable): retried forever.
    Transient(String),
    /// Retried `bus.max_attempts` times, then dead-lettered.
    Permanent(String),
    /// The message can never be handled (unreadable): dead-lettered at once.
    Poison(String),
}

/// Consumes `topic` as consumer group `group` until `shutdown`, handing
/// each message to `handle`: [`consume_batches`] with batches of one.
pub async fn consume<F, Fut, D, DFut>(
    platform: &Platform,
    group: &str,
    topic: Topic,
    shutdown: CancellationToken,
    mut handle: F,
    dead_lettered: D,
) -> anyhow::Result<()>
where
    F: FnMut(BusMessage) -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
    D: FnMut(BusMessage, String) -> DFut,
    DFut: Future<Output = ()>,
{
    let one = |mut batch: Vec<BusMessage>| {
        let msg = batch.pop();
        let handled = msg.map(&mut handle);
        async move {
            match handled {
                Some(fut) => fut.await,
                None => Ok(()),
            }
        }
    };
    consume_batches(platform, group, topic, shutdown, 1, one, dead_lettered).await
}

/// Consumes `topic` as consumer group `group` until `shutdown`, handing
/// `handle` what the subscription holds, up to `max_batch` messages at a
/// time, in order. A batch is committed only once it was handled; a
/// commit refused after a rebalance is logged, because the new owner of
/// the partition gets the messages again and handling is idempotent.
///
/// A batch that fails transiently is retried whole with backoff. One that
/// fails otherwise is handed over again one message at a time, so that a
/// poison message is isolated: it is retried up to `bus.max_attempts`
/// times, then parked in the dead-letter topic, and `dead_lettered` gets it
/// with the reason, so the service can end what the message started (the
/// engine rejects the command) before the commit.
pub async fn consume_batches<F, Fut, D, DFut>(
    platform: &Platform,
    group: &str,
    topic: Topic,
    shutdown: CancellationToken,
    max_batch: usize,
    mut handle: F,
    mut dead_lettered: D,
) -> anyhow::Result<()>
where
    F: FnMut(Vec<BusMessage>) -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
    D: FnMut(BusMessage, String) -> DFut,
    DFut: Future<Output = ()>,
{
    let mut sub = platform.bus.subscribe(Some(group), topic, StartFrom::Earliest).await?;
    tracing::info!(group, topic = topic.name(), max_batch, "Consumer started");
    loop {
        let first = tokio::select! {
            _ = shutdown.cancelled() => break,
            msg = sub.next() => msg?,
        };
        let batch = drain(&mut *sub, first, max_batch).await?;
        let whole = match handle(batch.clone()).await {
            Ok(()) => Ok(()),
            Err(failure) if batch.len() == 1 => {
                let msg = &batch[0];
                let run = Run {
                    platform,
                    group,
                    shutdown: &shutdown,
                };
                if !run
                    .one_by_one(&mut handle, &mut dead_lettered, msg, Some(failure))
                    .await?
                {
                    return Ok(());
                }
                Ok(())
            }
            Err(Failure::Transient(reason)) => retry_transient(group, &shutdown, &mut handle, &batch, reason).await,
            Err(Failure::Permanent(reason) | Failure::Poison(reason)) => Err(reason),
        };
        if let Err(reason) = whole {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            tracing::warn!(group, error = %reason, messages = batch.len(), "A batch failed; handling its messages one by one");
            let run = Run {
                platform,
                group,
                shutdown: &shutdown,
            };
            for msg in &batch {
                if !run.one_by_one(&mut handle, &mut dead_lettered, msg, None).await? {
                    return Ok(());
                }
            }
        }
        commit(&mut *sub, group, &batch).await;
    }
    tracing::info!(group, "Consumer stopped");
    Ok(())
}

/// `first` and whatever else the subscription holds right now, up to `max`.
async fn drain(
    sub: &mut dyn casewire_ports::Subscription,
    first: BusMessage,
    max: usize,
) -> anyhow::Result<Vec<BusMessage>> {
    let mut batch = vec![first];
    while batch.len() < max {
        // `next` is cancel-safe: a message not ready now stays for later.
        match sub.next().now_or_never() {
            Some(msg) => batch.push(msg?),
            None => break,
        }
    }
    Ok(batch)
}

/// Commits the last message of each partition in the batch.
async fn commit(sub: &mut dyn casewire_ports::Subscription, group: &str, batch: &[BusMessage]) {
    let mut last: Vec<&BusMessage> = Vec::new();
    for msg in batch {
        match last.iter_mut().find(|m| m.partition == msg.partition) {
            Some(slot) => *slot = msg,
            None => last.push(msg),
        }
    }
    for msg in last {
        if let Err(e) = sub.commit(msg).await {
            tracing::warn!(group, error = %e, "Could not commit a handled message");
        }
    }
}

fn delays() -> impl Iterator<Item = Duration> {
    // Jittered, so consumers that failed together do not retry together.
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .without_max_times()
        .build()
}

/// Retries a batch while it fails transiently; `Err` once it fails
/// otherwise (or shutdown came first).
async fn retry_transient<F, Fut>(
    group: &str,
    shutdown: &CancellationToken,
    handle: &mut F,
    batch: &[BusMessage],
    mut reason: String,
) -> Result<(), String>
where
    F: FnMut(Vec<BusMessage>) -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    let mut delays = delays();
    for attempt in 1.. {
        let backoff = delays.next().unwrap_or(Duration::from_secs(5));
        tracing::warn!(group, error = %reason, attempt, messages = batch.len(), retry_in_ms = backoff.as_millis() as u64, "Handling failed; retrying");
        tokio::select! {
            _ = shutdown.cancelled() => return Err("shutting down".into()),
            _ = tokio::time::sleep(backoff) => {}
        }
        match handle(batch.to_vec()).await {
            Ok(()) => return Ok(()),
            Err(Failure::Transient(r)) => reason = r,
            Err(Failure::Permanent(r) | Failure::Poison(r)) => return Err(r),
        }
    }
    Err(reason)
}

/// What handling one message on its own needs to know.
struct Run<'a> {
    platform: &'a Platform,
    group: &'a str,
    shutdown: &'a CancellationToken,
}

impl Run<'_> {
    /// Handles one message until it is handled or dead-lettered, counting
    /// `failed` (the failure it already had) as its first attempt; `false`
    /// when shutdown came first.
    async fn one_by_one<F, Fut, D, DFut>(
        &self,
        handle: &mut F,
        dead_lettered: &mut D,
        msg: &BusMessage,
        mut failed: Option<Failure>,
    ) -> anyhow::Result<bool>
    where
        F: FnMut(Vec<BusMessage>) -> Fut,
        Fut: Future<Output = Result<(), Failure>>,
        D: FnMut(BusMessage, String) -> DFut,
        DFut: Future<Output = ()>,
    {
        let (platform, group) = (self.platform, self.group);
        let max_attempts = platform.config.bus.max_attempts;
        let mut delays = delays();
        let mut attempt = 1;
        loop {
            let result = match failed.take() {
                Some(failure) => Err(failure),
                None => handle(vec![msg.clone()]).await,
            };
            let reason = match result {
                Ok(()) => return Ok(true),
                Err(Failure::Poison(reason)) => {
                    platform.bus.dead_letter(msg, &reason).await?;
                    dead_letter_counted(group, msg);
                    dead_lettered(msg.clone(), reason).await;
                    return Ok(true);
                }
                Err(Failure::Permanent(reason)) if attempt >= max_attempts => {
                    let reason = format!("failed {attempt} times: {reason}");
                    platform.bus.dead_letter(msg, &reason).await?;
                    dead_letter_counted(group, msg);
                    dead_lettered(msg.clone(), reason).await;
                    return Ok(true);
                }
                Err(Failure::Permanent(reason) | Failure::Transient(reason)) => reason,
            };
            let backoff = delays.next().unwrap_or(Duration::from_secs(5));
            tracing::warn!(group, error = %reason, attempt, retry_in_ms = backoff.as_millis() as u64, "Handling a message failed; retrying");
            tokio::select! {
                _ = self.shutdown.cancelled() => return Ok(false),
                _ = tokio::time::sleep(backoff) => {}
            }
            attempt += 1;
        }
    }
}

/// Counts a dead-lettered message (`casewire_dead_letters_total`): the
/// dead-letter topic's growth, by the group that gave up and the topic.
fn dead_letter_counted(group: &str, msg: &BusMessage) {
    metrics::counter!("casewire_dead_letters_total", "group" => group.to_owned(), "topic" => msg.topic.name())
        .increment(1);
}
