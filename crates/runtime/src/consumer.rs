//! The consumer loop every service runs: take a message, handle it, retry
//! with backoff while handling fails, park a poison message in the
//! dead-letter topic, then commit. One implementation, so the engine and
//! the projector (and later services) agree on what "at least once, never
//! stuck" means.

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder as _, ExponentialBuilder};

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
/// each message to `handle`. A message is committed only once it was
/// handled or dead-lettered; a commit refused after a rebalance is logged,
/// because the new owner of the partition gets the message again and
/// handling is idempotent. After a message went to the dead-letter topic,
/// `dead_lettered` gets it with the reason, so the service can end what the
/// message started (the engine rejects the command) before the commit.
pub async fn consume<F, Fut, D, DFut>(
    platform: &Platform,
    group: &str,
    topic: Topic,
    shutdown: CancellationToken,
    mut handle: F,
    mut dead_lettered: D,
) -> anyhow::Result<()>
where
    F: FnMut(BusMessage) -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
    D: FnMut(BusMessage, String) -> DFut,
    DFut: Future<Output = ()>,
{
    let mut sub = platform.bus.subscribe(Some(group), topic, StartFrom::Earliest).await?;
    let max_attempts = platform.config.bus.max_attempts;
    tracing::info!(group, topic = topic.name(), "Consumer started");
    loop {
        let msg = tokio::select! {
            _ = shutdown.cancelled() => break,
            msg = sub.next() => msg?,
        };
        // Jittered, so consumers that failed together do not retry together.
        let mut delays = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(50))
            .with_max_delay(Duration::from_secs(5))
            .with_jitter()
            .without_max_times()
            .build();
        let mut attempt = 1;
        loop {
            let reason = match handle(msg.clone()).await {
                Ok(()) => break,
                Err(Failure::Poison(reason)) => {
                    platform.bus.dead_letter(&msg, &reason).await?;
                    dead_lettered(msg.clone(), reason).await;
                    break;
                }
                Err(Failure::Permanent(reason)) if attempt >= max_attempts => {
                    let reason = format!("failed {attempt} times: {reason}");
                    platform.bus.dead_letter(&msg, &reason).await?;
                    dead_lettered(msg.clone(), reason).await;
                    break;
                }
                Err(Failure::Permanent(reason) | Failure::Transient(reason)) => reason,
            };
            let backoff = delays.next().unwrap_or(Duration::from_secs(5));
            tracing::warn!(group, error = %reason, attempt, retry_in_ms = backoff.as_millis() as u64, "Handling a message failed; retrying");
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(backoff) => {}
            }
            attempt += 1;
        }
        if let Err(e) = sub.commit(&msg).await {
            tracing::warn!(group, error = %e, "Could not commit a handled message");
        }
    }
    tracing::info!(group, "Consumer stopped");
    Ok(())
}
