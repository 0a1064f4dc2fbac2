//! notify-publisher: turns events into notifications people can control —
//! in-app inbox, e-mail over SMTP, signed webhooks — exactly once per
//! event, recipient and channel.
//!
//! # Layout
//! - [`plan`]: consumer group `notify-publisher` on `casewire.events`;
//!   rules → policy check → preferences → deliveries, recorded by key
//!   before anything is sent.
//! - [`send`]: the due deliveries out (inbox, SMTP via lettre, webhooks
//!   signed per Standard Webhooks), with retries, backoff and the delivery
//!   log.

pub mod plan;
pub mod send;

use std::sync::Arc;

use casewire_application::{AccessCache, CaseCache};
use casewire_notify::mail::Mailer;
use casewire_ports::StoreError;
use casewire_ports::envelope::event_from_json;
use casewire_runtime::Platform;
use casewire_runtime::consumer::{Failure, consume_batches};
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::plan::{PlanError, Planner};
use crate::send::Sender;

/// The consumer group.
pub const GROUP: &str = "notify-publisher";

/// The time, so tests can move it (quiet hours, digests, retries).
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The SMTP transport `notify.smtp_url` names, if any.
fn smtp(platform: &Platform) -> anyhow::Result<Option<Mailer>> {
    let Some(url) = &platform.config.notify.smtp_url else {
        tracing::info!("No SMTP server (notify.smtp_url): notifications go in-app and to webhooks only");
        return Ok(None);
    };
    let mailer =
        Mailer::from_url(url.expose()).map_err(|e| anyhow::anyhow!("notify.smtp_url {}: {e}", url.masked()))?;
    Ok(Some(mailer))
}

fn failure(e: PlanError) -> Failure {
    match e {
        PlanError::Store(StoreError::Unavailable(m)) | PlanError::Policy(m) => Failure::Transient(m),
        PlanError::Store(e) => Failure::Permanent(e.to_string()),
    }
}

/// Where links in messages point: `notify.link_base`, else the API's
/// public URL (the case resource), else its bind address.
pub fn link_base(platform: &Platform, api_url: Option<&str>) -> String {
    let cfg = &platform.config;
    cfg.notify
        .link_base
        .clone()
        .or_else(|| api_url.map(|u| format!("{}/api/v1", u.trim_end_matches('/'))))
        .or_else(|| {
            cfg.api
                .public_url
                .as_ref()
                .map(|u| format!("{}/api/v1", u.trim_end_matches('/')))
        })
        .unwrap_or_else(|| format!("http://{}/api/v1", cfg.api.bind))
}

/// Runs the publisher with the wall clock until `shutdown`.
pub async fn run(platform: Platform, shutdown: CancellationToken) -> anyhow::Result<()> {
    let links = link_base(&platform, None);
    run_with(platform, Arc::new(SystemClock), links, shutdown).await
}

/// Runs the publisher with `clock`, linking to `link_base`, until `shutdown`.
pub async fn run_with(
    platform: Platform,
    clock: Arc<dyn Clock>,
    link_base: String,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let planner = Arc::new(Planner {
        link_base,
        policy: platform.policy(&shutdown)?,
        access: AccessCache::default(),
        cases: CaseCache::default(),
        platform: platform.clone(),
    });
    let timeout = std::time::Duration::from_millis(platform.config.notify.webhook_timeout_ms);
    let sender = Sender {
        platform: platform.clone(),
        clock: clock.clone(),
        http: reqwest::Client::builder()
            .timeout(timeout)
            // A redirect could lead to an address the SSRF check refused.
            .redirect(reqwest::redirect::Policy::none())
            .build()?,
        smtp: smtp(&platform)?,
        blobs: platform.blobs().await?,
    };
    let wake = Arc::new(tokio::sync::Notify::new());
    let sending = tokio::spawn(send::run(sender, wake.clone(), shutdown.clone()));
    let max_batch = platform.config.bus.max_batch;
    let consumed = consume_batches(
        &platform,
        GROUP,
        casewire_ports::Topic::Events,
        shutdown,
        max_batch,
        |batch| {
            let (planner, platform, clock, wake) = (planner.clone(), platform.clone(), clock.clone(), wake.clone());
            async move {
                let records = batch
                    .iter()
                    .map(|msg| event_from_json(&msg.payload))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| Failure::Poison(format!("not an event: {e}")))?;
                let spans = casewire_runtime::telemetry::event_spans(GROUP, &batch, &records);
                let deliveries = planner.plan(&records, clock.now()).await.map_err(failure)?;
                let planned = deliveries.len();
                let new = platform
                    .notifications
                    .record(deliveries, vec![])
                    .await
                    .map_err(|e| failure(PlanError::Store(e)))?;
                metrics::counter!("casewire_notifications_planned_total").increment(new as u64);
                if new > 0 {
                    tracing::debug!(planned, new, "Planned notifications");
                    wake.notify_one();
                }
                drop(spans);
                Ok(())
            }
        },
        |_, _| async {},
    )
    .await;
    let _ = sending.await;
    consumed
}
