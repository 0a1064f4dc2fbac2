//! A case's SLA signals, from its events and its definition: which events
//! start, stop, hold and meet its clocks.

use chrono::{DateTime, Utc};

use super::{Clock, Signal, clocks};
use crate::calendar::Calendar;
use crate::command::Visibility;
use crate::definition::CaseDefinition;
use crate::event::CaseEvent;

/// The signals of a case's events (in order, with their times).
pub fn signals<'a>(
    def: &CaseDefinition,
    events: impl IntoIterator<Item = (DateTime<Utc>, &'a CaseEvent)>,
) -> Vec<(DateTime<Utc>, Signal)> {
    let pauses = |stage: &str| def.stages.iter().any(|s| s.id == stage && s.pauses_sla);
    let goals = |priority: &str| {
        def.priorities
            .iter()
            .find(|p| p.id == priority)
            .map(|p| p.goals())
            .unwrap_or_default()
    };
    let mut stage = String::new();
    let mut out = Vec::new();
    for (t, event) in events {
        let signal = match event {
            CaseEvent::Opened(o) => {
                stage = o.stage.clone();
                Signal::Opened {
                    goals: goals(&o.priority),
                    paused: pauses(&stage),
                }
            }
            CaseEvent::Prioritized(p) => Signal::Prioritized(goals(&p.priority)),
            CaseEvent::StageChanged(s) => {
                stage = s.to.clone();
                Signal::Stage { paused: pauses(&stage) }
            }
            CaseEvent::CommentAdded(c) if c.visibility == Visibility::Public => {
                if c.by_requester {
                    Signal::RequesterReply
                } else {
                    Signal::StaffResponse
                }
            }
            CaseEvent::EmailReceived(_) => Signal::RequesterReply,
            CaseEvent::Assigned(_) => Signal::Assigned,
            CaseEvent::Resolved(_) => Signal::Resolved,
            CaseEvent::Closed(_) => Signal::Closed,
            CaseEvent::Reopened(r) => {
                if let Some(s) = &r.stage {
                    stage = s.clone();
                }
                Signal::Reopened { paused: pauses(&stage) }
            }
            _ => continue,
        };
        out.push((t, signal));
    }
    out
}

/// The clocks of a case at `now`: its events folded on its definition's
/// policy and `calendar` (the definition's, or every hour).
pub fn case_clocks<'a>(
    def: &CaseDefinition,
    events: impl IntoIterator<Item = (DateTime<Utc>, &'a CaseEvent)>,
    calendar: &Calendar,
    now: DateTime<Utc>,
) -> Vec<Clock> {
    clocks(&signals(def, events), def.sla.policy(), calendar, now)
}
