//! The built-in task worker (`casewire serve task-worker`): it fetches and
//! locks external tasks over the Camunda-compatible API, as any user's
//! worker does, and works three topics:
//!
//! - `casewire.email`: an e-mail from a template, through the
//!   notification publisher's mailer;
//! - `casewire.http`: a signed call of an allow-listed HTTP endpoint;
//! - `casewire.command`: a case command from the task's variables.
//!
//! Being a client of the API, it holds only its service account's rights:
//! the policy decides what it may see and do, as for everyone else. A
//! handler's outcome is a completion, a failure that is retried with
//! backoff, or an incident (retries 0) for what retrying cannot fix.

mod command;
mod email;
mod http;

use std::sync::Arc;
use std::time::Duration;

use casewire_camunda::{ClientError, ExternalTaskClient, LockedTask};
use casewire_notify::mail::Mailer;
use casewire_runtime::config::{NotifyConfig, TaskWorkerConfig};
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub use casewire_camunda::client::ClientCredentials;

/// The topics it works.
pub const EMAIL_TOPIC: &str = "casewire.email";
pub const HTTP_TOPIC: &str = "casewire.http";
pub const COMMAND_TOPIC: &str = "casewire.command";
pub const TOPICS: [&str; 3] = [EMAIL_TOPIC, HTTP_TOPIC, COMMAND_TOPIC];

/// What a handler made of a task.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Done; complete with these output variables.
    Done(Value),
    /// Failed, may work later: a failure with one retry less.
    Retry(String),
    /// Failed, will never work as it stands: an incident, for a person.
    Incident(String),
}

/// A worker, ready to run.
#[derive(Debug)]
pub struct Worker {
    pub client: ExternalTaskClient,
    pub id: String,
    pub config: TaskWorkerConfig,
    /// The `From`, `Message-ID` domain and SMTP server of e-mails.
    pub mail: NotifyConfig,
    pub mailer: Option<Mailer>,
}

impl Worker {
    /// A worker with the API client and the mailer of `notify` (none
    /// without `notify.smtp_url`: e-mail tasks then wait and retry).
    pub fn new(client: ExternalTaskClient, config: TaskWorkerConfig, notify: NotifyConfig) -> anyhow::Result<Worker> {
        let mailer = match &notify.smtp_url {
            Some(url) => Some(
                Mailer::from_url(url.expose()).map_err(|e| anyhow::anyhow!("notify.smtp_url {}: {e}", url.masked()))?,
            ),
            None => None,
        };
        let id = config.worker_id.clone().unwrap_or_else(default_worker_id);
        Ok(Worker {
            client,
            id,
            config,
            mail: notify,
            mailer,
        })
    }
}

/// `casewire-<host>-<pid>`: unique per process, readable in the task API.
fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "local".into());
    format!("casewire-{host}-{}", std::process::id())
}

/// Fetches and works tasks until `shutdown`; then lets the tasks in hand
/// finish (up to 30 s) so no lock is left to expire.
pub async fn run(worker: Arc<Worker>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let slots = Arc::new(Semaphore::new(worker.config.max_tasks as usize));
    let topics: Vec<(&str, u64)> = TOPICS.iter().map(|t| (*t, worker.config.lock_ms)).collect();
    tracing::info!(worker = %worker.id, topics = ?TOPICS, "Task worker started");
    let mut backoff = Duration::from_millis(500);
    loop {
        // Wait for a free slot; ask for as many tasks as there are slots.
        let first = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = slots.clone().acquire_owned() => permit?,
        };
        let free = u32::try_from(slots.available_permits() + 1).unwrap_or(1);
        let fetched = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = worker.client.fetch_and_lock(&worker.id, free, worker.config.poll_ms, &topics) => r,
        };
        drop(first);
        let tasks = match fetched {
            Ok(tasks) => {
                backoff = Duration::from_millis(500);
                tasks
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "Fetching tasks failed");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        for task in tasks {
            let permit = slots.clone().acquire_owned().await?;
            let worker = worker.clone();
            let span = tracing::info_span!("task", case_id = %task.process_instance_id, task_id = %task.id, topic = %task.topic_name);
            tokio::spawn(
                async move {
                    work(&worker, task).await;
                    drop(permit);
                }
                .instrument(span),
            );
        }
    }
    let all = worker.config.max_tasks;
    if tokio::time::timeout(Duration::from_secs(30), slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("Stopped with tasks still in hand; their locks will expire");
    }
    tracing::info!(worker = %worker.id, "Task worker stopped");
    Ok(())
}

/// Handles one task and reports its outcome.
async fn work(worker: &Worker, task: LockedTask) {
    let outcome = match task.topic_name.as_str() {
        EMAIL_TOPIC => email::handle(worker, &task).await,
        HTTP_TOPIC => http::handle(worker, &task).await,
        COMMAND_TOPIC => command::handle(worker, &task).await,
        other => Outcome::Incident(format!("the built-in worker has no handler for topic '{other}'")),
    };
    let label = match &outcome {
        Outcome::Done(_) => "completed",
        Outcome::Retry(_) => "retried",
        Outcome::Incident(_) => "incident",
    };
    metrics::counter!("casewire_task_worker_tasks_total", "topic" => task.topic_name.clone(), "outcome" => label)
        .increment(1);
    let reported = report(worker, &task, outcome).await;
    if let Err(e) = reported {
        // The lock may have been lost (expired, the task cancelled): the
        // task is someone else's now, and our outcome is refused.
        tracing::warn!(error = %e, "Reporting a task's outcome failed");
    }
}

async fn report(worker: &Worker, task: &LockedTask, outcome: Outcome) -> Result<(), ClientError> {
    let client = &worker.client;
    match outcome {
        Outcome::Done(output) => {
            tracing::info!("Task completed");
            client.complete(&task.id, &worker.id, &output).await
        }
        Outcome::Retry(why) => {
            let max = i64::from(worker.config.retries);
            let left = u32::try_from((task.retries.unwrap_or(max) - 1).max(0)).unwrap_or(0);
            let failures = worker.config.retries.saturating_sub(left).saturating_sub(1);
            let delay = retry_delay(worker.config.retry_ms, failures);
            tracing::warn!(error = %why, retries_left = left, retry_in_ms = delay, "Task failed");
            client.failure(&task.id, &worker.id, &why, &why, left, delay).await
        }
        Outcome::Incident(why) => {
            tracing::warn!(error = %why, "Task failed for good; raising an incident");
            client.failure(&task.id, &worker.id, &why, &why, 0, 0).await
        }
    }
}

/// `base`, doubled per failure so far, capped at an hour.
fn retry_delay(base_ms: u64, failures: u32) -> u64 {
    base_ms.saturating_mul(1 << failures.min(16)).min(3_600_000)
}

/// The case a task belongs to, as the worker's service account sees it.
async fn case_of(worker: &Worker, task: &LockedTask) -> Result<Value, Outcome> {
    let path = format!("/api/v1/cases/{}", task.process_instance_id);
    match worker.client.api(reqwest::Method::GET, &path, None, None).await {
        Ok((status, case)) if status.is_success() => Ok(case),
        Ok((status, body)) if status.as_u16() == 403 || status.as_u16() == 404 => Err(Outcome::Incident(format!(
            "the worker may not read case {}: {}",
            task.process_instance_id,
            body["message"].as_str().unwrap_or("not visible")
        ))),
        Ok((status, body)) => Err(Outcome::Retry(format!(
            "reading the case: HTTP {status} {}",
            body["message"]
        ))),
        Err(e) => Err(Outcome::Retry(format!("reading the case: {e}"))),
    }
}

/// A required string variable.
fn text_var<'a>(task: &'a LockedTask, name: &str) -> Result<&'a str, Outcome> {
    task.variables[name]
        .as_str()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| Outcome::Incident(format!("the task has no string variable '{name}'")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_and_stop_at_an_hour() {
        assert_eq!(retry_delay(10_000, 0), 10_000);
        assert_eq!(retry_delay(10_000, 2), 40_000);
        assert_eq!(retry_delay(10_000, 30), 3_600_000);
    }
}
