//! Figures over a set of cases for a dashboard: how many are open in each
//! stage and queue, how many were opened and resolved on each of the last
//! days, and how old the open ones are. Computed from the summaries the
//! caller may see (the API pages through the list with the policy's
//! filter), so a dashboard never counts a case its reader could not open.

use std::collections::BTreeMap;

use casewire_ports::CaseSummary;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// The age buckets of open cases: a label and the upper bound in hours.
pub const AGE_BUCKETS: [(&str, i64); 5] = [
    ("under 1 day", 24),
    ("1-3 days", 72),
    ("3-7 days", 168),
    ("1-4 weeks", 672),
    ("over 4 weeks", i64::MAX),
];

/// One day of the created-and-resolved series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Day {
    pub date: NaiveDate,
    pub created: u64,
    pub resolved: u64,
}

/// A label and a count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Count {
    pub label: String,
    pub count: u64,
}

/// The dashboard's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaseStats {
    /// Cases counted.
    pub total: u64,
    /// Of them, open.
    pub open: u64,
    /// Open cases per `definition/stage`, most first.
    pub open_by_stage: Vec<Count>,
    /// Open cases per queue, most first.
    pub open_by_queue: Vec<Count>,
    /// Open cases per priority, most first.
    pub open_by_priority: Vec<Count>,
    /// Each of the last `days` days (UTC), oldest first.
    pub days: Vec<Day>,
    /// Open cases by age, youngest first.
    pub ageing: Vec<Count>,
    /// Whether the count stopped at the limit: the figures cover the most
    /// recently updated cases only.
    pub truncated: bool,
    pub computed_at: DateTime<Utc>,
}

/// Adds cases up, page by page.
#[derive(Debug)]
pub struct Tally {
    now: DateTime<Utc>,
    first_day: NaiveDate,
    total: u64,
    open: u64,
    by_stage: BTreeMap<String, u64>,
    by_queue: BTreeMap<String, u64>,
    by_priority: BTreeMap<String, u64>,
    created: BTreeMap<NaiveDate, u64>,
    resolved: BTreeMap<NaiveDate, u64>,
    ageing: [u64; AGE_BUCKETS.len()],
}

fn ranked(counts: BTreeMap<String, u64>) -> Vec<Count> {
    let mut out: Vec<Count> = counts
        .into_iter()
        .map(|(label, count)| Count { label, count })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.label.cmp(&b.label)));
    out
}

impl Tally {
    /// A tally of the `days` days up to `now` (1 or more).
    pub fn new(now: DateTime<Utc>, days: u32) -> Tally {
        let span = i64::from(days.max(1)) - 1;
        Tally {
            now,
            first_day: (now - Duration::days(span)).date_naive(),
            total: 0,
            open: 0,
            by_stage: BTreeMap::new(),
            by_queue: BTreeMap::new(),
            by_priority: BTreeMap::new(),
            created: BTreeMap::new(),
            resolved: BTreeMap::new(),
            ageing: [0; AGE_BUCKETS.len()],
        }
    }

    /// Counts one case.
    pub fn add(&mut self, c: &CaseSummary) {
        self.total += 1;
        let created = c.created_at.date_naive();
        if created >= self.first_day {
            *self.created.entry(created).or_default() += 1;
        }
        if let Some(day) = c.resolved_at.map(|at| at.date_naive()).filter(|d| *d >= self.first_day) {
            *self.resolved.entry(day).or_default() += 1;
        }
        if c.status != "open" {
            return;
        }
        self.open += 1;
        *self
            .by_stage
            .entry(format!("{}/{}", c.definition_id, c.stage))
            .or_default() += 1;
        *self.by_queue.entry(c.queue.to_string()).or_default() += 1;
        *self.by_priority.entry(c.priority.clone()).or_default() += 1;
        let hours = (self.now - c.created_at).num_hours().max(0);
        let bucket = AGE_BUCKETS
            .iter()
            .position(|(_, max)| hours < *max)
            .unwrap_or(AGE_BUCKETS.len() - 1);
        self.ageing[bucket] += 1;
    }

    /// The figures.
    pub fn finish(self, truncated: bool) -> CaseStats {
        let days = self
            .first_day
            .iter_days()
            .take_while(|d| *d <= self.now.date_naive())
            .map(|date| Day {
                date,
                created: self.created.get(&date).copied().unwrap_or_default(),
                resolved: self.resolved.get(&date).copied().unwrap_or_default(),
            })
            .collect();
        CaseStats {
            total: self.total,
            open: self.open,
            open_by_stage: ranked(self.by_stage),
            open_by_queue: ranked(self.by_queue),
            open_by_priority: ranked(self.by_priority),
            days,
            ageing: AGE_BUCKETS
                .iter()
                .zip(self.ageing)
                .map(|((label, _), count)| Count {
                    label: (*label).to_owned(),
                    count,
                })
                .collect(),
            truncated,
            computed_at: self.now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use casewire_domain::types::{CaseKey, QueueName};

    fn case(
        status: &str,
        stage: &str,
        created_hours_ago: i64,
        resolved_hours_ago: Option<i64>,
        now: DateTime<Utc>,
    ) -> CaseSummary {
        CaseSummary {
            id: uuid::Uuid::new_v4(),
            key: CaseKey::parse("CMP-000001").unwrap(),
            definition_id: "complaint".into(),
            title: "t".into(),
            stage: stage.into(),
            status: status.into(),
            priority: "normal".into(),
            queue: QueueName::parse("complaints").unwrap(),
            assignee: None,
            tags: vec![],
            created_at: now - Duration::hours(created_hours_ago),
            updated_at: now,
            revision: 1,
            sla_due_at: None,
            resolved_at: resolved_hours_ago.map(|h| now - Duration::hours(h)),
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-12-03T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn open_cases_are_counted_by_stage_queue_and_age() {
        let mut t = Tally::new(now(), 7);
        t.add(&case("open", "new", 2, None, now()));
        t.add(&case("open", "new", 30, None, now()));
        t.add(&case("open", "triage", 24 * 40, None, now()));
        t.add(&case("resolved", "done", 5, Some(1), now()));
        let s = t.finish(false);
        assert_eq!((s.total, s.open), (4, 3));
        assert_eq!(
            s.open_by_stage[0],
            Count {
                label: "complaint/new".into(),
                count: 2
            }
        );
        assert_eq!(s.open_by_queue[0].count, 3);
        let ages: Vec<u64> = s.ageing.iter().map(|c| c.count).collect();
        assert_eq!(ages, vec![1, 1, 0, 0, 1]);
    }

    #[test]
    fn each_day_counts_what_was_opened_and_resolved_on_it() {
        let mut t = Tally::new(now(), 3);
        t.add(&case("resolved", "done", 30, Some(2), now()));
        t.add(&case("open", "new", 1, None, now()));
        t.add(&case("open", "new", 24 * 10, None, now()));
        let s = t.finish(true);
        let days: Vec<(String, u64, u64)> = s
            .days
            .iter()
            .map(|d| (d.date.to_string(), d.created, d.resolved))
            .collect();
        assert_eq!(
            days,
            vec![
                ("2026-12-01".into(), 0, 0),
                ("2026-12-02".into(), 1, 0),
                ("2026-12-03".into(), 1, 1)
            ],
            "older cases are outside the window"
        );
        assert!(s.truncated);
    }
}
