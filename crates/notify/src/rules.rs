//! The rules: who hears of an event. Built in, per kind:
//!
//! | kind | event | who |
//! |---|---|---|
//! | `assigned` | assigned | the new assignee |
//! | `queue` | opened, routed | the people whose groups include `/queues/<queue>` |
//! | `comment` | a public comment | the requester (by e-mail) |
//! | `received` | a mail opened the case | its sender (by e-mail), unless the mail must not be answered automatically |
//! | `resolved` | resolved | the requester (by e-mail) |
//! | `sla` | sla-warning | the assignee; unassigned, the people of the queue |
//! | `sla` | sla-breached | the assignee and the queue's managers (`case-manager`); unassigned, the people of the queue |
//! | `watch` | anything | the case's watchers |
//!
//! Nobody hears of their own action, and each person hears of an event
//! once, by the first rule that names them. Whether they may see the case
//! at all is the caller's check (the policy), not the rules'.

use casewire_domain::command::Visibility;
use casewire_domain::email::ThreadedBy;
use casewire_domain::{Case, CaseEvent};
use casewire_ports::Person;

/// Who an intent is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// A person known to the platform, by user name.
    User(String),
    /// Someone outside it (a requester), by e-mail address.
    Address(String),
}

/// One person to tell about one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    pub recipient: Recipient,
    pub kind: &'static str,
}

/// The queue group a person belongs to when they work a queue.
pub fn queue_group(queue: &str) -> String {
    format!("/queues/{queue}")
}

/// The intents of `event` (by `actor`) on `case` as it is after it;
/// `people` is the tenant's directory, `watchers` the case's.
pub fn intents(event: &CaseEvent, actor: &str, case: &Case, people: &[Person], watchers: &[String]) -> Vec<Intent> {
    let mut out: Vec<Intent> = Vec::new();
    let mut add = |recipient: Recipient, kind: &'static str| {
        let own = match &recipient {
            Recipient::User(name) => name == actor,
            Recipient::Address(a) => people
                .iter()
                .any(|p| p.username == actor && p.email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(a))),
        };
        if !own && !out.iter().any(|i| i.recipient == recipient) {
            out.push(Intent { recipient, kind });
        }
    };
    match event {
        CaseEvent::Assigned(a) => add(Recipient::User(a.assignee.clone()), "assigned"),
        CaseEvent::Opened(_) | CaseEvent::Routed(_) => {
            let group = queue_group(case.queue.as_str());
            for p in people.iter().filter(|p| p.groups.contains(&group)) {
                add(Recipient::User(p.username.clone()), "queue");
            }
        }
        CaseEvent::CommentAdded(c) if c.visibility == Visibility::Public => {
            // Not to an address whose mail bounced.
            if let Some(r) = &case.requester
                && !case.mail.undeliverable.iter().any(|u| u == r.email.as_str())
            {
                add(Recipient::Address(r.email.as_str().to_owned()), "comment");
            }
        }
        // The acknowledgement of a case opened by mail. Never to mail that
        // must not be answered automatically (RFC 3834: itself automatic,
        // bulk, a list's, ours); the planner also limits it per sender.
        CaseEvent::EmailReceived(r) if r.threaded_by == ThreadedBy::New && r.no_auto_reply.is_none() => {
            add(Recipient::Address(r.from.email.clone()), "received");
        }
        CaseEvent::Resolved(_) => {
            if let Some(r) = &case.requester {
                add(Recipient::Address(r.email.as_str().to_owned()), "resolved");
            }
        }
        // Escalation: a warning to whoever works the case, a breach to
        // their managers too. An unassigned case is the queue's to take.
        CaseEvent::SlaWarning(_) | CaseEvent::SlaBreached(_) => {
            let group = queue_group(case.queue.as_str());
            let in_queue = || people.iter().filter(|p| p.groups.contains(&group));
            match &case.assignee {
                Some(a) => add(Recipient::User(a.clone()), "sla"),
                None => in_queue().for_each(|p| add(Recipient::User(p.username.clone()), "sla")),
            }
            if matches!(event, CaseEvent::SlaBreached(_)) {
                for p in in_queue().filter(|p| p.roles.iter().any(|r| r == "case-manager")) {
                    add(Recipient::User(p.username.clone()), "sla");
                }
            }
        }
        _ => {}
    }
    for w in watchers {
        add(Recipient::User(w.clone()), "watch");
    }
    out
}
