//! SLA clocks: first response, next response and resolution, computed from
//! what happened to a case, on a calendar. A pure function of the signals
//! (derived from the case's events), the policy, the calendar and `now`, so
//! a clock is the same computed live or by a replay.
//!
//! The faults helpdesks are known for are ruled out by construction:
//! - a pause stops the clock and keeps what elapsed (a reopened case goes
//!   on where it stopped, it does not breach at once);
//! - a priority change keeps elapsed and paused time and moves the due
//!   time only by the change of the goal;
//! - the warning threshold is the policy's (a duration or a percentage).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::calendar::Calendar;

mod of_case;
mod record;
pub use of_case::{case_clocks, signals};
pub use record::{MAX_RECORDS, RecordSla, Schedule, SlaReached, Threshold, schedule};

/// What a clock measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Metric {
    /// From opening to the first response.
    FirstResponse,
    /// From a requester's reply to the next response.
    NextResponse,
    /// From opening to resolution, paused while the case is resolved.
    Resolution,
}

/// What counts as the first response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ResponseBy {
    /// A public comment by staff.
    #[default]
    Comment,
    /// An assignment.
    Assignment,
    /// Whichever comes first.
    Either,
}

/// When a clock warns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warn {
    /// When this share of the goal has elapsed (1 to 99 %).
    Percent(u8),
    /// When this much of the goal is left.
    Before(Duration),
}

impl Warn {
    /// `80%` or a duration (`30m`, `2h`).
    pub fn parse(text: &str) -> Option<Warn> {
        match text.trim().strip_suffix('%') {
            Some(p) => p.parse().ok().filter(|p| (1..100).contains(p)).map(Warn::Percent),
            None => parse_duration(text).map(Warn::Before),
        }
    }

    /// The elapsed time at which a clock of `goal` warns.
    fn at(self, goal: Duration) -> Duration {
        match self {
            Warn::Percent(p) => goal * i32::from(p) / 100,
            Warn::Before(before) => (goal - before).max(Duration::zero()),
        }
    }
}

/// `30m`, `4h`, `2d`, `1w`: digits and a unit (a day is 24 hours of the
/// clock's time, a week seven days); `s` too, for tests and demos that
/// cannot wait minutes. `None` for anything else or zero.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let unit = text.chars().last()?;
    let n: i64 = text[..text.len() - unit.len_utf8()].parse().ok().filter(|n| *n > 0)?;
    let seconds = match unit {
        's' => n,
        'm' => n.checked_mul(60)?,
        'h' => n.checked_mul(60 * 60)?,
        'd' => n.checked_mul(24 * 60 * 60)?,
        'w' => n.checked_mul(7 * 24 * 60 * 60)?,
        _ => return None,
    };
    Duration::try_seconds(seconds)
}

/// The goals of one priority; a metric without a goal has no clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Goals {
    pub first_response: Option<Duration>,
    pub next_response: Option<Duration>,
    pub resolution: Option<Duration>,
}

impl Goals {
    fn of(&self, metric: Metric) -> Option<Duration> {
        match metric {
            Metric::FirstResponse => self.first_response,
            Metric::NextResponse => self.next_response,
            Metric::Resolution => self.resolution,
        }
    }
}

/// What happened to a case, as far as its clocks care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// Opened with these goals (its priority's), in a stage that pauses or not.
    Opened {
        goals: Goals,
        paused: bool,
    },
    /// The priority changed to one with these goals.
    Prioritized(Goals),
    /// Moved to a stage that pauses the clocks, or one that does not.
    Stage {
        paused: bool,
    },
    /// Staff answered publicly.
    StaffResponse,
    /// Someone was assigned.
    Assigned,
    /// The requester wrote (a mail, a comment).
    RequesterReply,
    Resolved,
    /// Reopened into a stage that pauses or not.
    Reopened {
        paused: bool,
    },
    Closed,
}

/// One clock as it stands at `now`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Clock {
    pub metric: Metric,
    /// 1 for the first; a next-response clock counts each requester reply
    /// that started one.
    pub cycle: u32,
    #[schema(value_type = i64)]
    #[serde(with = "seconds")]
    pub goal: Duration,
    #[schema(value_type = i64)]
    #[serde(with = "seconds")]
    pub elapsed: Duration,
    /// `goal - elapsed`: below zero once breached.
    #[schema(value_type = i64)]
    #[serde(with = "seconds")]
    pub remaining: Duration,
    pub breached: bool,
    /// Stopped by a pausing stage or by resolution, and not met.
    pub paused: bool,
    /// Met (answered, resolved) at this time; the clock stopped.
    pub met_at: Option<DateTime<Utc>>,
    /// When it breaches, while it runs.
    pub due_at: Option<DateTime<Utc>>,
    /// When it warns (or warned), while it runs.
    pub warn_at: Option<DateTime<Utc>>,
    /// When the goal was reached, if it was.
    pub breached_at: Option<DateTime<Utc>>,
    /// Whether the calendar is open at `now`.
    pub within_calendar_hours: bool,
}

/// Durations as whole seconds in JSON.
mod seconds {
    use chrono::Duration;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(d.num_seconds())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::seconds(i64::deserialize(d)?))
    }
}

/// One clock while its signals are folded.
#[derive(Debug, Clone)]
struct Running {
    metric: Metric,
    cycle: u32,
    goal: Duration,
    /// Open time elapsed up to `since` (or up to the pause).
    elapsed: Duration,
    /// Counting from here; `None` while paused.
    since: Option<DateTime<Utc>>,
    met_at: Option<DateTime<Utc>>,
    breached_at: Option<DateTime<Utc>>,
}

impl Running {
    fn new(metric: Metric, cycle: u32, goal: Duration, at: DateTime<Utc>, paused: bool) -> Running {
        Running {
            metric,
            cycle,
            goal,
            elapsed: Duration::zero(),
            since: (!paused).then_some(at),
            met_at: None,
            breached_at: (goal <= Duration::zero()).then_some(at),
        }
    }

    fn active(&self) -> bool {
        self.met_at.is_none()
    }

    /// When the goal is reached if it keeps running from `since`.
    fn due(&self, cal: &Calendar) -> Option<DateTime<Utc>> {
        let since = self.since?;
        let left = self.goal - self.elapsed;
        if left <= Duration::zero() {
            return Some(since);
        }
        cal.add(since, left)
    }

    /// Brings the clock to `t`: what ran until then is counted, and a goal
    /// reached on the way is noted. `run` says whether it runs on from `t`.
    fn settle(&mut self, cal: &Calendar, t: DateTime<Utc>, run: bool) {
        if let Some(since) = self.since {
            if self.breached_at.is_none()
                && let Some(due) = self.due(cal).filter(|d| *d <= t)
            {
                self.breached_at = Some(due);
            }
            self.elapsed += cal.between(since, t);
        }
        self.since = (run && self.active()).then_some(t);
    }

    fn regoal(&mut self, cal: &Calendar, t: DateTime<Utc>, goal: Duration, paused: bool) {
        self.settle(cal, t, !paused);
        self.goal = goal;
        if self.breached_at.is_none() && self.elapsed >= goal {
            self.breached_at = Some(t);
        }
    }

    fn meet(&mut self, cal: &Calendar, t: DateTime<Utc>) {
        self.settle(cal, t, false);
        self.met_at = Some(t);
    }

    fn at(&self, cal: &Calendar, now: DateTime<Utc>, warn: Warn) -> Clock {
        let mut c = self.clone();
        c.settle(cal, now, true);
        let due_at = self.due(cal).filter(|_| self.active());
        let warn_at = self.since.filter(|_| self.active()).and_then(|since| {
            let left = warn.at(self.goal) - self.elapsed;
            if left <= Duration::zero() {
                Some(since)
            } else {
                cal.add(since, left)
            }
        });
        Clock {
            metric: self.metric,
            cycle: self.cycle,
            goal: self.goal,
            elapsed: c.elapsed,
            remaining: self.goal - c.elapsed,
            breached: c.breached_at.is_some(),
            paused: self.active() && self.since.is_none(),
            met_at: self.met_at,
            due_at,
            warn_at,
            breached_at: c.breached_at,
            within_calendar_hours: cal.is_open(now),
        }
    }
}

/// How a case's signals become clocks.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub first_response_by: ResponseBy,
    pub warn: Warn,
}

/// The clocks of a case at `now`, from its signals in time order (those
/// after `now` are not looked at): the newest cycle of each metric.
pub fn clocks(signals: &[(DateTime<Utc>, Signal)], policy: Policy, cal: &Calendar, now: DateTime<Utc>) -> Vec<Clock> {
    let mut fold = Fold::default();
    for (t, s) in signals.iter().take_while(|(t, _)| *t <= now) {
        fold.apply(cal, policy, *t, s);
    }
    let mut out: Vec<Clock> = fold.clocks.iter().map(|r| r.at(cal, now, policy.warn)).collect();
    out.sort_by_key(|c| c.metric);
    out
}

/// The state between signals.
#[derive(Debug, Default)]
struct Fold {
    clocks: Vec<Running>,
    goals: Goals,
    /// A pausing stage (or resolution) holds the clocks.
    paused: bool,
}

impl Fold {
    fn clock(&mut self, metric: Metric) -> Option<&mut Running> {
        self.clocks.iter_mut().find(|c| c.metric == metric)
    }

    fn start(&mut self, metric: Metric, t: DateTime<Utc>, cycle: u32) {
        if let Some(goal) = self.goals.of(metric) {
            let paused = self.paused;
            self.clocks.retain(|c| c.metric != metric);
            self.clocks.push(Running::new(metric, cycle, goal, t, paused));
        }
    }

    fn meet(&mut self, cal: &Calendar, t: DateTime<Utc>, metric: Metric) {
        if let Some(c) = self.clock(metric).filter(|c| c.active()) {
            c.meet(cal, t);
        }
    }

    /// Holds or releases every active clock.
    fn hold(&mut self, cal: &Calendar, t: DateTime<Utc>, paused: bool) {
        self.paused = paused;
        for c in self.clocks.iter_mut().filter(|c| c.active()) {
            c.settle(cal, t, !paused);
        }
    }

    fn apply(&mut self, cal: &Calendar, policy: Policy, t: DateTime<Utc>, signal: &Signal) {
        match signal {
            Signal::Opened { goals, paused } => {
                (self.goals, self.paused) = (*goals, *paused);
                self.start(Metric::FirstResponse, t, 1);
                self.start(Metric::Resolution, t, 1);
            }
            Signal::Prioritized(goals) => {
                self.goals = *goals;
                let paused = self.paused;
                for c in self.clocks.iter_mut().filter(|c| c.active()) {
                    if let Some(goal) = goals.of(c.metric) {
                        c.regoal(cal, t, goal, paused);
                    }
                }
            }
            Signal::Stage { paused } => self.hold(cal, t, *paused),
            Signal::StaffResponse => {
                if policy.first_response_by != ResponseBy::Assignment {
                    self.meet(cal, t, Metric::FirstResponse);
                }
                self.meet(cal, t, Metric::NextResponse);
            }
            Signal::Assigned if policy.first_response_by != ResponseBy::Comment => {
                self.meet(cal, t, Metric::FirstResponse);
            }
            Signal::Assigned => {}
            Signal::RequesterReply => self.requester_replied(t),
            Signal::Resolved | Signal::Closed => {
                for m in [Metric::FirstResponse, Metric::NextResponse, Metric::Resolution] {
                    self.meet(cal, t, m);
                }
            }
            Signal::Reopened { paused } => {
                self.paused = *paused;
                if let Some(c) = self.clock(Metric::Resolution) {
                    // It goes on from where it stopped: same cycle, same elapsed.
                    c.met_at = None;
                    c.since = (!*paused).then_some(t);
                }
            }
        }
    }

    /// A reply starts a next-response clock unless a response is awaited
    /// already (the oldest unanswered reply counts, and before the first
    /// response the first-response clock does).
    fn requester_replied(&mut self, t: DateTime<Utc>) {
        let waiting = self
            .clocks
            .iter()
            .any(|c| matches!(c.metric, Metric::NextResponse | Metric::FirstResponse) && c.active());
        if !waiting {
            let cycle = self
                .clocks
                .iter()
                .find(|c| c.metric == Metric::NextResponse)
                .map_or(1, |c| c.cycle + 1);
            self.start(Metric::NextResponse, t, cycle);
        }
    }
}

#[cfg(test)]
mod tests;
