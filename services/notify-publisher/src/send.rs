//! Sending: due deliveries go out — into the inbox, by e-mail (digests as
//! one message), or to a webhook, signed — and are marked sent, retried
//! with exponential backoff and jitter, or given up. A crash between a
//! send and its mark sends it again with the same `webhook-id` and
//! `Message-ID`, by which receivers recognise a repeat.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use casewire_domain::CaseCommand;
use casewire_domain::email::{RecordBounce, RecordEmailSent};
use casewire_notify::mail::{Auto, MailError, Mailer, Outgoing};
use casewire_notify::render::{Rendered, ReplyHeaders, render_digest};
use casewire_notify::webhook::{check_target, signature_header};
use casewire_ports::envelope::CommandEnvelope;
use casewire_ports::{BlobStore, Channel, Delivery, InboxItem, NotificationStore, StoreError, Topic, WebhookAttempt};
use casewire_runtime::Platform;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::Clock;

/// Deliveries handled per look.
const PER_PASS: usize = 200;

/// What went wrong with one send.
enum SendError {
    /// Try again later.
    Retry(String),
    /// Never going to work (410, a refused target, no address).
    Give(String),
}

/// The sender.
pub struct Sender {
    pub platform: Platform,
    pub clock: Arc<dyn Clock>,
    pub http: reqwest::Client,
    pub smtp: Option<Mailer>,
    /// Where the files replies carry are read from.
    pub blobs: Arc<dyn BlobStore>,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

/// What of an outgoing message its record on the case keeps.
struct SentHeaders {
    to: String,
    subject: String,
}

impl SentHeaders {
    fn of(out: &Outgoing<'_>) -> SentHeaders {
        SentHeaders {
            to: out.to.to_ascii_lowercase(),
            subject: out.message.subject.chars().take(998).collect(),
        }
    }
}

/// A command the publisher issues about a delivery's case; its id derives
/// from the delivery and `what`, so issuing it again is the same command.
fn about(d: &Delivery, what: &str, command: CaseCommand) -> CommandEnvelope {
    CommandEnvelope {
        command_id: Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("{}:{what}", d.key).as_bytes()),
        case_id: d.case_id,
        tenant: d.tenant.clone(),
        actor: "notify-publisher".into(),
        correlation_id: d.event_id,
        case_key: None,
        issued_at: Utc::now(),
        command,
    }
}

/// A stable id from a delivery key (inbox ids, `Message-ID`s).
fn digest_of(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..16])
}

impl Sender {
    fn store(&self) -> &dyn NotificationStore {
        &*self.platform.notifications
    }

    /// One pass over what is due; returns how many were handled.
    pub async fn pass(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let due = self.store().due(now, PER_PASS).await?;
        let mut done: HashSet<String> = HashSet::new();
        for d in &due {
            if done.contains(&d.key) {
                continue;
            }
            let (keys, result) = match d.channel {
                Channel::InApp => (vec![d.key.clone()], self.inbox(d).await),
                Channel::Email if d.digest => self.digest(d, now).await?,
                Channel::Email => (vec![d.key.clone()], self.email(d, std::slice::from_ref(d)).await),
                Channel::Webhook => (vec![d.key.clone()], self.webhook(d, now).await),
            };
            self.conclude(d, &keys, result, now).await?;
            done.extend(keys);
        }
        Ok(done.len())
    }

    async fn conclude(
        &self,
        d: &Delivery,
        keys: &[String],
        result: Result<(), SendError>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let channel = d.channel.as_str();
        match result {
            Ok(()) => {
                metrics::counter!("casewire_notifications_sent_total", "channel" => channel)
                    .increment(keys.len() as u64);
                self.store().mark_sent(keys, now).await
            }
            Err(SendError::Give(why)) => {
                metrics::counter!("casewire_notifications_dead_total", "channel" => channel)
                    .increment(keys.len() as u64);
                tracing::warn!(key = %d.key, channel, reason = %why, "Gave up a notification");
                self.undeliverable_reply(d, &why).await?;
                for k in keys {
                    self.store().mark_dead(k, &why).await?;
                }
                Ok(())
            }
            Err(SendError::Retry(why)) => {
                metrics::counter!("casewire_notifications_failed_total", "channel" => channel).increment(1);
                let limit =
                    chrono::Duration::hours(i64::try_from(self.platform.config.notify.retry_hours).unwrap_or(24));
                for k in keys {
                    if now - d.created_at > limit {
                        let why = format!("retried for {limit}: {why}");
                        self.undeliverable_reply(d, &why).await?;
                        self.store().mark_dead(k, &why).await?;
                    } else {
                        self.store().retry(k, now + backoff(d.attempts), &why).await?;
                    }
                }
                tracing::info!(key = %d.key, channel, attempts = d.attempts + 1, reason = %why, "A notification will be retried");
                Ok(())
            }
        }
    }

    /// The files a reply carries, read from the blob store, in order, up to
    /// `notify.max_attachment_bytes`; those past it are named in `text`.
    /// A file that can not be read now is a retry, not a reply without it.
    async fn reply_files(
        &self,
        d: &Delivery,
        reply: &ReplyHeaders,
        text: &mut String,
    ) -> Result<Vec<(String, String, Vec<u8>)>, SendError> {
        let budget = self.platform.config.notify.max_attachment_bytes;
        let (mut used, mut out, mut left_out) = (0u64, Vec::new(), Vec::new());
        for f in &reply.files {
            if used + f.size > budget {
                left_out.push(format!("- {} ({} bytes)", f.name, f.size));
                continue;
            }
            let read = self
                .blobs
                .get(&casewire_ports::blob::file_key(&d.tenant, f.id), None)
                .await
                .map_err(|e| SendError::Retry(format!("reading {}: {e}", f.name)))?;
            let chunks: Vec<bytes::Bytes> = read
                .body
                .try_collect()
                .await
                .map_err(|e| SendError::Retry(format!("reading {}: {e}", f.name)))?;
            used += f.size;
            out.push((f.name.clone(), f.content_type.clone(), chunks.concat()));
        }
        if !left_out.is_empty() {
            text.push_str("\nToo big to send by e-mail; they are on the case:\n");
            text.push_str(&left_out.join("\n"));
            text.push('\n');
        }
        Ok(out)
    }

    /// A reply on a mail case that can not be delivered is a bounce of that
    /// case (`case.recordBounce`): the timeline shows why, and no further
    /// reply waits on the address. Issued before the delivery is marked
    /// dead, with an id derived from the delivery, so a crash between the
    /// two issues the same command again, which the engine runs once.
    async fn undeliverable_reply(&self, d: &Delivery, why: &str) -> Result<(), StoreError> {
        let reply = serde_json::from_value::<Rendered>(d.payload.clone())
            .ok()
            .and_then(|m| m.reply);
        let (Some(reply), Some(to), Channel::Email) = (reply, d.address.clone(), d.channel) else {
            return Ok(());
        };
        let envelope = about(
            d,
            "undeliverable",
            CaseCommand::RecordBounce(RecordBounce {
                message_id: format!("undeliverable.{}", reply.message_id),
                recipients: vec![to.to_ascii_lowercase()],
                status: None,
                diagnostic: Some(why.chars().take(1000).collect()),
                original_message_id: Some(reply.message_id),
            }),
        );
        tracing::warn!(case_id = %d.case_id, command_id = %envelope.command_id, reason = %why,
            "A reply could not be delivered; recording it on the case");
        self.platform
            .issue(&envelope)
            .await
            .map_err(|e| StoreError::Unavailable(format!("recording an undeliverable reply: {e}")))
    }

    async fn inbox(&self, d: &Delivery) -> Result<(), SendError> {
        let message: Rendered =
            serde_json::from_value(d.payload.clone()).map_err(|e| SendError::Give(format!("unreadable: {e}")))?;
        let item = InboxItem {
            // The same key always makes the same item: a repeat adds nothing.
            id: Uuid::new_v5(&Uuid::NAMESPACE_OID, d.key.as_bytes()),
            tenant: d.tenant.clone(),
            user: d.recipient.clone(),
            case_id: d.case_id,
            event_id: d.event_id,
            kind: d.kind.clone(),
            title: message.subject,
            body: message.text,
            created_at: d.created_at,
            read_at: None,
        };
        self.store()
            .record(vec![], vec![item.clone()])
            .await
            .map_err(|e| SendError::Retry(e.to_string()))?;
        // The WebSocket pushes it to the user's open sockets. Best effort:
        // the inbox has it either way.
        let push = serde_json::to_vec(&item).unwrap_or_default();
        if let Err(e) = self
            .platform
            .bus
            .publish(Topic::Notifications, vec![(item.user.clone(), push)])
            .await
        {
            tracing::debug!(error = %e, "Could not announce an in-app notification");
        }
        Ok(())
    }

    /// The recipient's digest items that are due, as one e-mail.
    async fn digest(
        &self,
        d: &Delivery,
        now: DateTime<Utc>,
    ) -> Result<(Vec<String>, Result<(), SendError>), StoreError> {
        let items: Vec<Delivery> = self
            .store()
            .pending_for(&d.tenant, &d.recipient, Channel::Email)
            .await?
            .into_iter()
            .filter(|i| i.digest && i.not_before <= now)
            .collect();
        let keys = items.iter().map(|i| i.key.clone()).collect();
        Ok((keys, self.email(d, &items).await))
    }

    /// One e-mail to `d`'s address: `items` rendered, or their digest.
    async fn email(&self, d: &Delivery, items: &[Delivery]) -> Result<(), SendError> {
        let Some(smtp) = &self.smtp else {
            return Err(SendError::Retry(
                "no SMTP server is configured (notify.smtp_url)".into(),
            ));
        };
        let rendered: Vec<Rendered> = items
            .iter()
            .filter_map(|i| serde_json::from_value(i.payload.clone()).ok())
            .collect();
        let mut message = match rendered.as_slice() {
            [one] => one.clone(),
            many => render_digest(many).map_err(|e| SendError::Give(e.to_string()))?,
        };
        let files = match &message.reply {
            Some(reply) => self.reply_files(d, reply, &mut message.text).await?,
            None => Vec::new(),
        };
        let names: Vec<String> = files.iter().map(|f| f.0.clone()).collect();
        let keys: Vec<&str> = items.iter().map(|i| i.key.as_str()).collect();
        let out = self.outgoing(d, &message, &keys, files);
        let sent = SentHeaders::of(&out);
        smtp.send(out).await.map_err(|e| match e {
            MailError::Permanent(m) => SendError::Give(m),
            MailError::Transient(m) => SendError::Retry(m),
        })?;
        if let Some(reply) = &message.reply {
            self.record_sent(d, reply, sent, names).await;
        }
        Ok(())
    }

    /// The message as it goes out: a reply in the case's conversation, or a
    /// notification from `notify.from`.
    fn outgoing<'a>(
        &'a self,
        d: &'a Delivery,
        message: &'a Rendered,
        keys: &[&str],
        files: Vec<(String, String, Vec<u8>)>,
    ) -> Outgoing<'a> {
        let cfg = &self.platform.config.notify;
        // Every message of a case threads under one root.
        let root = format!("<case-{}@{}>", d.case_id, cfg.message_id_domain);
        let to = d.address.as_deref().unwrap_or_default();
        match &message.reply {
            // A person's answer to mail of the case, in that conversation.
            Some(reply) => Outgoing {
                from: &reply.from,
                to,
                message,
                message_id: format!("<{}>", reply.message_id),
                references: match &reply.in_reply_to {
                    Some(parent) => format!("{root} <{parent}>"),
                    None => root,
                },
                in_reply_to: reply.in_reply_to.as_ref().map(|p| format!("<{p}>")),
                cc: reply.cc.clone(),
                automatic: reply.automatic.then_some(Auto::Replied),
                files,
            },
            None => Outgoing {
                from: &cfg.from,
                to,
                message,
                message_id: format!("<{}@{}>", digest_of(&keys.join(" ")), cfg.message_id_domain),
                references: root,
                in_reply_to: None,
                cc: Vec::new(),
                automatic: Some(Auto::Generated),
                files: Vec::new(),
            },
        }
    }

    /// Records a reply that went out on its case (`case.recordEmailSent`),
    /// with an id derived from the delivery. Best effort: the mail is sent
    /// and must not be sent again for want of its record, so a failure
    /// here is logged, not retried.
    async fn record_sent(&self, d: &Delivery, reply: &ReplyHeaders, sent: SentHeaders, files: Vec<String>) {
        let envelope = about(
            d,
            "sent",
            CaseCommand::RecordEmailSent(RecordEmailSent {
                comment_id: reply.comment_id,
                message_id: reply.message_id.clone(),
                in_reply_to: reply.in_reply_to.clone(),
                from: reply.from.clone(),
                to: vec![sent.to],
                cc: reply.cc.clone(),
                subject: sent.subject,
                automatic: reply.automatic,
                files,
            }),
        );
        if let Err(e) = self.platform.issue(&envelope).await {
            metrics::counter!("casewire_mail_sent_unrecorded_total").increment(1);
            tracing::warn!(case_id = %d.case_id, error = %e, "A reply went out but could not be recorded on its case");
        }
    }

    /// One signed POST to a webhook; a 410 disables the subscription.
    async fn webhook(&self, d: &Delivery, now: DateTime<Utc>) -> Result<(), SendError> {
        let subs = self
            .store()
            .webhooks(&d.tenant)
            .await
            .map_err(|e| SendError::Retry(e.to_string()))?;
        let Some(mut sub) = subs.into_iter().find(|s| s.id.to_string() == d.recipient) else {
            return Err(SendError::Give("the subscription was deleted".into()));
        };
        if !sub.enabled {
            return Err(SendError::Give("the subscription is disabled".into()));
        }
        let allow = self.platform.config.notify.allow_private_targets;
        check_target(&sub.url, allow)
            .await
            .map_err(|e| SendError::Give(e.to_string()))?;
        let body = serde_json::to_vec(&d.payload).unwrap_or_default();
        let timestamp = now.timestamp();
        let signature =
            signature_header(&sub.secrets, &d.key, timestamp, &body).map_err(|e| SendError::Give(e.to_string()))?;
        let response = self
            .http
            .post(&sub.url)
            .header("content-type", "application/json")
            .header("webhook-id", &d.key)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        let (status, error) = match &response {
            Ok(r) => (Some(r.status().as_u16()), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let attempt = WebhookAttempt {
            subscription: sub.id,
            message_id: d.key.clone(),
            attempt: d.attempts + 1,
            at: now,
            status,
            error: error.clone(),
        };
        self.store()
            .log_attempt(&attempt)
            .await
            .map_err(|e| SendError::Retry(e.to_string()))?;
        match status {
            Some(200..=299) => Ok(()),
            Some(410) => {
                sub.enabled = false;
                sub.disabled_reason = Some(format!("the endpoint answered 410 Gone at {now}"));
                self.store()
                    .put_webhook(&sub)
                    .await
                    .map_err(|e| SendError::Retry(e.to_string()))?;
                tracing::warn!(subscription = %sub.id, url = %sub.url, "A webhook answered 410; disabled it");
                Err(SendError::Give("410 Gone: the subscription is disabled".into()))
            }
            Some(code) => Err(SendError::Retry(format!("HTTP {code}"))),
            None => Err(SendError::Retry(error.unwrap_or_default())),
        }
    }
}

/// 5 s, 10 s, 20 s ... capped at an hour, each ±20 %, so endpoints that
/// failed together are not retried together.
pub fn backoff(attempts: u32) -> chrono::Duration {
    let base = 5.0 * 2f64.powi(i32::try_from(attempts.min(20)).unwrap_or(20));
    let capped = base.min(3600.0);
    let jitter = 0.8 + rand::random::<f64>() * 0.4;
    chrono::Duration::milliseconds((capped * jitter * 1000.0) as i64)
}

/// Sends what is due until `shutdown`, every `notify.send_every_ms` or
/// when woken.
pub async fn run(sender: Sender, wake: Arc<tokio::sync::Notify>, shutdown: tokio_util::sync::CancellationToken) {
    let every = Duration::from_millis(sender.platform.config.notify.send_every_ms.max(10));
    loop {
        loop {
            match sender.pass().await {
                Ok(n) if n >= PER_PASS => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "Sending notifications failed; will retry");
                    break;
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(every) => {}
        }
    }
}
