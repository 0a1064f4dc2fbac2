//! Planning: each event becomes deliveries — per person the rules name and
//! the policy lets see the case, per channel they chose, at the time their
//! quiet hours and digests allow — and one per matching webhook. They are
//! recorded under keys unique per (event, recipient, channel) before
//! anything is sent, so redelivery and replays plan nothing twice.

use std::collections::HashMap;
use std::sync::Arc;

use casewire_application::{AccessCache, CaseCache, is_internal_comment};
use casewire_domain::definition::MessageTemplate;
use casewire_domain::email::EmailReceived;
use casewire_domain::types::TenantId;
use casewire_domain::{Case, CaseEvent};
use casewire_notify::render::{Rendered, render, render_template};
use casewire_notify::{Recipient, intents, slot};
use casewire_ports::envelope::event_to_json;
use casewire_ports::{
    Action, Channel, Delivery, DeliveryState, EventRecord, Person, PolicyEngine, Preferences, Resource, StoreError,
    Subject,
};
use casewire_runtime::Platform;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// What planning needs besides the event.
pub struct Planner {
    pub platform: Platform,
    /// Where links in messages point: `<base>/cases/<id>`.
    pub link_base: String,
    pub policy: Arc<dyn PolicyEngine>,
    pub access: AccessCache,
    pub cases: CaseCache,
}

impl std::fmt::Debug for Planner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Planner").finish_non_exhaustive()
    }
}

/// Why planning failed: worth a retry, or not.
#[derive(Debug)]
pub enum PlanError {
    Store(StoreError),
    Policy(String),
}

impl From<StoreError> for PlanError {
    fn from(e: StoreError) -> Self {
        PlanError::Store(e)
    }
}

fn subject(p: &Person) -> Subject {
    Subject {
        sub: p.sub.clone(),
        username: p.username.clone(),
        email: p.email.clone(),
        roles: p.roles.clone(),
        groups: p.groups.clone(),
        tenant: p.tenant.clone(),
    }
}

/// The files of the case a comment goes with (those still attached).
fn comment_files(case: &Case, comment: uuid::Uuid) -> Vec<casewire_notify::render::ReplyFile> {
    let Some(c) = case.comments.iter().find(|c| c.id == comment) else {
        return Vec::new();
    };
    c.attachments
        .iter()
        .filter_map(|id| case.attachments.iter().find(|a| a.file_id == *id))
        .map(|a| casewire_notify::render::ReplyFile {
            id: a.file_id,
            name: a.name.clone(),
            content_type: a.content_type.clone(),
            size: a.size,
        })
        .collect()
}

/// The key of a delivery: one per event, recipient and channel.
pub fn key(record: &EventRecord, recipient: &str, channel: Channel) -> String {
    format!("{}:{}:{}", record.id, recipient, channel.as_str())
}

impl Planner {
    /// The deliveries of a batch of events, at `now`.
    pub async fn plan(&self, records: &[EventRecord], now: DateTime<Utc>) -> Result<Vec<Delivery>, PlanError> {
        let cfg = &self.platform.config.notify;
        let mut people: HashMap<TenantId, Vec<Person>> = HashMap::new();
        let mut out = Vec::new();
        for record in records {
            let age = now - record.time;
            if age.num_seconds() > i64::try_from(cfg.skip_older_than_secs).unwrap_or(i64::MAX) {
                metrics::counter!("casewire_notifications_skipped_total", "reason" => "old").increment(1);
                continue;
            }
            let Some(case) = self
                .cases
                .current(&*self.platform.events, &record.tenant, record.case_id)
                .await?
            else {
                continue;
            };
            if !people.contains_key(&record.tenant) {
                let known = self.platform.notifications.people(&record.tenant).await?;
                people.insert(record.tenant.clone(), known);
            }
            let known = people.get(&record.tenant).map_or(&[][..], Vec::as_slice);
            out.extend(self.for_people(record, &case, known, now).await?);
            out.extend(self.for_webhooks(record, &case, now).await?);
        }
        Ok(out)
    }

    /// The deliveries to people the rules name.
    async fn for_people(
        &self,
        record: &EventRecord,
        case: &Case,
        people: &[Person],
        now: DateTime<Utc>,
    ) -> Result<Vec<Delivery>, PlanError> {
        let cfg = &self.platform.config.notify;
        let event = record.case_event()?;
        let watchers = self
            .platform
            .notifications
            .watchers(&record.tenant, record.case_id)
            .await?;
        // The definition may turn kinds off or make them critical for its cases.
        let rules = self
            .cases
            .definition(
                &*self.platform.reads,
                &case.tenant,
                &case.definition_id,
                Some(case.definition_version),
            )
            .await?
            .map(|d| d.notifications.clone())
            .unwrap_or_default();
        let mut out = Vec::new();
        for intent in intents(&event, &record.actor, case, people, &watchers) {
            let named = |list: &[String]| list.iter().any(|k| k == intent.kind);
            if named(&cfg.disabled_kinds) || named(&rules.disabled) {
                continue;
            }
            let critical = named(&cfg.critical_kinds) || named(&rules.critical);
            let message = self.message(intent.kind, record, &event, case, rules.templates.get(intent.kind))?;
            if intent.kind == "received"
                && !self
                    .may_acknowledge(record, &intent.recipient, &message, &out, now)
                    .await?
            {
                continue;
            }
            let Some((recipient, prefs, routes)) = self.routes(&intent, record, case, people, critical).await? else {
                continue;
            };
            for (channel, address) in routes {
                let d = delivery(
                    record,
                    &recipient,
                    channel,
                    address,
                    intent.kind,
                    &message,
                    &prefs,
                    critical,
                    now,
                );
                out.push(d);
            }
        }
        Ok(out)
    }

    /// Who an intent reaches and how: a known person by their preferences
    /// (if the policy lets them hear of it and they did not mute the case),
    /// someone without an account by e-mail at once; `None` for nobody.
    async fn routes(
        &self,
        intent: &casewire_notify::Intent,
        record: &EventRecord,
        case: &Case,
        people: &[Person],
        critical: bool,
    ) -> Result<Option<(String, Preferences, Vec<(Channel, Option<String>)>)>, PlanError> {
        match &intent.recipient {
            Recipient::User(name) => {
                let Some(person) = people.iter().find(|p| &p.username == name) else {
                    tracing::debug!(user = %name, "Not notified: never seen signing in");
                    return Ok(None);
                };
                if !self.may_hear(person, record, case).await? {
                    return Ok(None);
                }
                let prefs = self
                    .platform
                    .notifications
                    .preferences(&record.tenant, name)
                    .await?
                    .unwrap_or_default();
                if !critical && prefs.muted_cases.contains(&case.id) {
                    return Ok(None);
                }
                let routes = prefs
                    .channels_for(intent.kind)
                    .iter()
                    .filter_map(|&channel| match channel {
                        Channel::InApp => Some((channel, None)),
                        Channel::Email if self.email_on() => person.email.clone().map(|a| (channel, Some(a))),
                        Channel::Email | Channel::Webhook => None,
                    })
                    .collect();
                Ok(Some((name.clone(), prefs, routes)))
            }
            // Someone without an account: e-mail, at once.
            Recipient::Address(email) if self.email_on() => Ok(Some((
                email.clone(),
                Preferences::default(),
                vec![(Channel::Email, Some(email.clone()))],
            ))),
            Recipient::Address(_) => Ok(None),
        }
    }

    fn email_on(&self) -> bool {
        self.platform.config.notify.smtp_url.is_some()
    }

    /// Whether the policy lets `person` see the case, and this event on it
    /// (internal comments need their own permission): what the REST API
    /// would show them, no more.
    async fn may_hear(&self, person: &Person, record: &EventRecord, case: &Case) -> Result<bool, PlanError> {
        if person.tenant != case.tenant {
            return Ok(false);
        }
        let definitions = self.access.of(&*self.platform.reads, &person.tenant).await?;
        let subject = subject(person);
        let resource = Resource::of(case);
        let decide = |action| self.policy.decide(&subject, &definitions, action, Some(&resource));
        let read = decide(Action::CaseRead)
            .await
            .map_err(|e| PlanError::Policy(e.to_string()))?;
        if !read.visible {
            return Ok(false);
        }
        if is_internal_comment(record) {
            let internal = decide(Action::CaseCommentReadInternal)
                .await
                .map_err(|e| PlanError::Policy(e.to_string()))?;
            return Ok(internal.allow);
        }
        Ok(true)
    }

    /// The message of `kind` about this event.
    fn message(
        &self,
        kind: &str,
        record: &EventRecord,
        event: &CaseEvent,
        case: &Case,
        template: Option<&MessageTemplate>,
    ) -> Result<Rendered, PlanError> {
        let base = &self.link_base;
        let mut ctx = json!({
            "case": {
                "key": case.key.as_str(), "title": case.title, "stage": case.stage,
                "priority": case.priority, "queue": case.queue.as_str(),
            },
            "actor": record.actor,
            "event": event.name(),
            "link": format!("{}/cases/{}", base.trim_end_matches('/'), case.id),
        });
        match event {
            CaseEvent::CommentAdded(c) => ctx["body"] = json!(c.body),
            CaseEvent::Resolved(r) => {
                ctx["resolution"] = json!(r.resolution);
                ctx["note"] = json!(r.note);
            }
            _ => {}
        }
        let mut message = match template {
            Some(t) => render_template(&t.subject, &t.text, t.html.as_deref(), &ctx),
            None => render(kind, &ctx),
        }
        .map_err(|e| PlanError::Policy(format!("rendering {kind}: {e}")))?;
        let reply = match event {
            CaseEvent::CommentAdded(c) => self.reply_headers(case, c.comment_id),
            CaseEvent::EmailReceived(mail) if kind == "received" => self.ack_headers(case, mail),
            _ => None,
        };
        if let Some(reply) = reply {
            // The tag keeps the conversation threaded in any mail client.
            let tag = format!("[{}]", case.key.as_str());
            if !message.subject.contains(&tag) {
                message.subject = casewire_email::thread::reply_subject(&case.title, case.key.as_str());
            }
            message.reply = Some(reply);
        }
        Ok(message)
    }

    /// The acknowledgement of a case opened by mail answers that mail, from
    /// its mailbox, to its sender alone, marked as a machine's answer.
    fn ack_headers(&self, case: &Case, mail: &EmailReceived) -> Option<casewire_notify::render::ReplyHeaders> {
        let cfg = &self.platform.config;
        let mailbox = cfg
            .email
            .mailboxes
            .iter()
            .find(|m| m.name == mail.mailbox && m.tenant == case.tenant.as_str())?;
        Some(casewire_notify::render::ReplyHeaders {
            from: mailbox.address.clone(),
            message_id: casewire_email::thread::message_id(case.id, "ack", &cfg.notify.message_id_domain),
            in_reply_to: Some(mail.message_id.clone()),
            cc: Vec::new(),
            automatic: true,
            files: Vec::new(),
            comment_id: None,
        })
    }

    /// Whether an acknowledgement may go: as a reply of a mailbox still
    /// configured, and at most `email.auto_reply_limit` per sender in the
    /// window (counting this batch's), so an auto-responder that answers
    /// everything and threads nothing gets a few answers, then silence.
    async fn may_acknowledge(
        &self,
        record: &EventRecord,
        recipient: &Recipient,
        message: &Rendered,
        planned: &[Delivery],
        now: DateTime<Utc>,
    ) -> Result<bool, PlanError> {
        let Recipient::Address(address) = recipient else {
            return Ok(false);
        };
        if message.reply.is_none() {
            return Ok(false);
        }
        let cfg = &self.platform.config.email;
        let since = i64::try_from(cfg.auto_reply_window_secs)
            .ok()
            .and_then(chrono::TimeDelta::try_seconds)
            .and_then(|w| now.checked_sub_signed(w))
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let stored = self
            .platform
            .notifications
            .planned_since(&record.tenant, address, "received", since)
            .await?;
        let batch = planned
            .iter()
            .filter(|d| d.kind == "received" && &d.recipient == address)
            .count();
        if stored + batch >= cfg.auto_reply_limit as usize {
            metrics::counter!("casewire_auto_replies_suppressed_total").increment(1);
            tracing::info!(
                case_id = %record.case_id, sender = %address, sent = stored + batch,
                "No acknowledgement: the sender had as many as email.auto_reply_limit in the window"
            );
            return Ok(false);
        }
        Ok(true)
    }

    /// For a case that came by mail: a public comment goes out as a reply
    /// in that conversation, from the mailbox, to the requester with the
    /// other participants copied (none that bounced).
    fn reply_headers(&self, case: &Case, comment: uuid::Uuid) -> Option<casewire_notify::render::ReplyHeaders> {
        let cfg = &self.platform.config;
        let name = case.mail.mailbox.as_deref()?;
        let mailbox = cfg
            .email
            .mailboxes
            .iter()
            .find(|m| m.name == name && m.tenant == case.tenant.as_str())?;
        let requester = case.requester.as_ref().map(|r| r.email.as_str().to_owned());
        let cc = case
            .mail
            .participants
            .iter()
            .filter(|p| Some(p.as_str()) != requester.as_deref())
            .filter(|p| !case.mail.undeliverable.contains(p) && !cfg.email.is_own(p))
            .cloned()
            .collect();
        Some(casewire_notify::render::ReplyHeaders {
            from: mailbox.address.clone(),
            message_id: casewire_email::thread::message_id(
                case.id,
                &format!("c{comment}"),
                &cfg.notify.message_id_domain,
            ),
            in_reply_to: case.mail.last_received.clone(),
            cc,
            automatic: false,
            files: comment_files(case, comment),
            comment_id: Some(comment),
        })
    }

    /// One delivery per enabled webhook of the tenant whose filter takes the event.
    async fn for_webhooks(
        &self,
        record: &EventRecord,
        _case: &Case,
        now: DateTime<Utc>,
    ) -> Result<Vec<Delivery>, PlanError> {
        let subs = self.platform.notifications.webhooks(&record.tenant).await?;
        let event = event_to_json(record);
        let out = subs
            .into_iter()
            .filter(|s| s.enabled && (s.events.is_empty() || s.events.contains(&record.event_type)))
            .map(|s| {
                let id = s.id.to_string();
                Delivery {
                    key: key(record, &id, Channel::Webhook),
                    tenant: record.tenant.clone(),
                    channel: Channel::Webhook,
                    recipient: id,
                    address: Some(s.url),
                    case_id: record.case_id,
                    event_id: record.id,
                    kind: "webhook".into(),
                    payload: event.clone(),
                    not_before: now,
                    digest: false,
                    attempts: 0,
                    state: DeliveryState::Pending,
                    last_error: None,
                    created_at: now,
                    sent_at: None,
                }
            })
            .collect();
        Ok(out)
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "one delivery's every field, named at the one call site pair"
)]
fn delivery(
    record: &EventRecord,
    recipient: &str,
    channel: Channel,
    address: Option<String>,
    kind: &str,
    message: &Rendered,
    prefs: &Preferences,
    critical: bool,
    now: DateTime<Utc>,
) -> Delivery {
    let at = slot(prefs, channel, critical, now);
    Delivery {
        key: key(record, recipient, channel),
        tenant: record.tenant.clone(),
        channel,
        recipient: recipient.to_owned(),
        address,
        case_id: record.case_id,
        event_id: record.id,
        kind: kind.to_owned(),
        payload: serde_json::to_value(message).unwrap_or(Value::Null),
        not_before: at.not_before,
        digest: at.digest,
        attempts: 0,
        state: DeliveryState::Pending,
        last_error: None,
        created_at: now,
        sent_at: None,
    }
}
