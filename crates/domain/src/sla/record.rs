//! What the SLA scheduler records on a case (`case.recordSla`, events
//! `sla-warning` and `sla-breached`), and what it derives from a case's
//! clocks and records: when to look again, and what is due now.
//!
//! Each clock and cycle is recorded once per threshold: the case refuses a
//! second record (`CW-NO-CHANGE`), and the scheduler's command id derives
//! from case, metric, cycle and threshold, so a redelivery, a second
//! scheduler or a replay can not record it twice.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Clock, Metric};

/// The threshold a clock reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Threshold {
    /// Its warning time (`warnAt` of the policy).
    Warning,
    /// Its goal.
    Breached,
}

/// `case.recordSla`: a clock reached a threshold at `at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordSla {
    pub metric: Metric,
    /// The clock's cycle (1 for first response and resolution).
    pub cycle: u32,
    pub threshold: Threshold,
    /// When the threshold was reached (not when it was recorded: a
    /// scheduler that was down records late).
    pub at: DateTime<Utc>,
    /// The goal at the time, in seconds.
    #[schema(value_type = i64)]
    #[serde(with = "super::seconds")]
    pub goal: Duration,
}

/// `sla-warning` and `sla-breached`: the payload is the command's.
pub type SlaReached = RecordSla;

/// The most records a case keeps (each next-response cycle adds up to two).
pub const MAX_RECORDS: usize = 1_000;

impl RecordSla {
    /// The scheduler's command id for this record: the same for every
    /// scheduler, every retry and every replay.
    pub fn command_id(case_id: Uuid, metric: Metric, cycle: u32, threshold: Threshold) -> Uuid {
        let name = format!("sla:{metric:?}:{cycle}:{threshold:?}");
        Uuid::new_v5(&case_id, name.as_bytes())
    }

    fn is(&self, metric: Metric, cycle: u32, threshold: Threshold) -> bool {
        self.metric == metric && self.cycle == cycle && self.threshold == threshold
    }
}

/// A case's clocks, as the scheduler and the case list see them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schedule {
    /// Thresholds reached and not yet recorded, oldest first.
    pub due: Vec<RecordSla>,
    /// When the next threshold after `now` is reached, if a clock runs.
    pub next_at: Option<DateTime<Utc>>,
    /// The earliest due time of a running clock (past if breached).
    pub due_at: Option<DateTime<Utc>>,
    /// The earliest warning time of a running clock.
    pub warn_at: Option<DateTime<Utc>>,
    /// A clock not yet met is breached (running or paused).
    pub breached: bool,
}

/// What is due at `now` given the clocks and what the case has recorded.
pub fn schedule(clocks: &[Clock], recorded: &[RecordSla], now: DateTime<Utc>) -> Schedule {
    let mut s = Schedule::default();
    let mut later = Vec::new();
    for c in clocks {
        let thresholds = [
            (Threshold::Warning, c.warn_at),
            (Threshold::Breached, c.breached_at.or(c.due_at)),
        ];
        for (threshold, at) in thresholds {
            let Some(at) = at else { continue };
            if recorded.iter().any(|r| r.is(c.metric, c.cycle, threshold)) {
                continue;
            }
            if at <= now {
                s.due.push(RecordSla {
                    metric: c.metric,
                    cycle: c.cycle,
                    threshold,
                    at,
                    goal: c.goal,
                });
            } else {
                later.push(at);
            }
        }
        if c.met_at.is_none() {
            s.breached |= c.breached;
            s.due_at = min(s.due_at, c.due_at);
            s.warn_at = min(s.warn_at, c.warn_at);
        }
    }
    s.due.sort_by_key(|r| (r.at, r.metric, r.cycle));
    s.next_at = later.into_iter().min();
    s
}

fn min(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl crate::Case {
    /// `case.recordSla`: once per clock, cycle and threshold.
    pub(crate) fn record_sla(&self, c: &RecordSla) -> Result<crate::CaseEvent, crate::DomainError> {
        use crate::{CaseEvent, DomainError};
        if c.cycle == 0 {
            return Err(DomainError::invalid("cycle", "starts at 1"));
        }
        if self.sla.iter().any(|r| r.is(c.metric, c.cycle, c.threshold)) {
            return Err(DomainError::NoChange(format!(
                "{:?} of {:?} cycle {} is recorded already",
                c.threshold, c.metric, c.cycle
            )));
        }
        if self.sla.len() >= MAX_RECORDS {
            return Err(DomainError::limit("sla", MAX_RECORDS));
        }
        Ok(match c.threshold {
            Threshold::Warning => CaseEvent::SlaWarning(c.clone()),
            Threshold::Breached => CaseEvent::SlaBreached(c.clone()),
        })
    }
}
