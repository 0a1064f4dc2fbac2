//! Properties of the SLA clocks over random calendars (zones with DST,
//! one with a 30-minute DST, several ranges a day) and random histories:
//! while a clock runs, the open time to its due time is what remains of its
//! goal; a due time is inside business hours; pausing never shortens the
//! time left.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use casewire_domain::calendar::{BusinessCalendar, Calendar};
use casewire_domain::sla::{Clock, Goals, Metric, Policy, ResponseBy, Signal, Warn, clocks};
use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;

const ZONES: &[&str] = &[
    "Europe/Berlin",
    "America/New_York",
    "UTC",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
];
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Up to two ranges a day on half-hour marks, never overlapping.
fn day() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::btree_set(0u32..=48, 0..=4).prop_map(|marks| {
        let marks: Vec<u32> = marks.into_iter().collect();
        marks
            .chunks_exact(2)
            .map(|p| {
                format!(
                    "{:02}:{:02}-{:02}:{:02}",
                    p[0] / 2,
                    p[0] % 2 * 30,
                    p[1] / 2,
                    p[1] % 2 * 30
                )
            })
            .collect()
    })
}

fn calendar() -> impl Strategy<Value = Calendar> {
    (0..ZONES.len(), proptest::array::uniform7(day())).prop_filter_map("a calendar with hours", |(z, week)| {
        if week.iter().all(Vec::is_empty) {
            return None;
        }
        BusinessCalendar {
            id: "random".into(),
            version: 0,
            name: None,
            time_zone: ZONES[z].into(),
            hours: DAYS.iter().zip(week).map(|(d, r)| ((*d).to_owned(), r)).collect(),
            holidays: vec![],
        }
        .compile()
        .ok()
    })
}

fn goals() -> impl Strategy<Value = Goals> {
    (1i64..60, 1i64..60, 1i64..200).prop_map(|(f, n, r)| Goals {
        first_response: Some(Duration::hours(f)),
        next_response: Some(Duration::hours(n)),
        resolution: Some(Duration::hours(r)),
    })
}

fn signal() -> impl Strategy<Value = Signal> {
    prop_oneof![
        any::<bool>().prop_map(|paused| Signal::Stage { paused }),
        Just(Signal::StaffResponse),
        Just(Signal::Assigned),
        Just(Signal::RequesterReply),
        goals().prop_map(Signal::Prioritized),
        Just(Signal::Resolved),
        any::<bool>().prop_map(|paused| Signal::Reopened { paused }),
    ]
}

/// A history: opened at a time of 2026, then signals minutes to days apart.
fn history() -> impl Strategy<Value = Vec<(DateTime<Utc>, Signal)>> {
    let start = 0i64..365 * 24 * 60;
    let steps = proptest::collection::vec((1i64..6000, signal()), 0..12);
    (start, goals(), steps).prop_map(|(start, g, steps)| {
        let mut t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::minutes(start);
        let mut out = vec![(
            t,
            Signal::Opened {
                goals: g,
                paused: false,
            },
        )];
        for (gap, s) in steps {
            t += Duration::minutes(gap);
            out.push((t, s));
        }
        out
    })
}

const POLICY: Policy = Policy {
    first_response_by: ResponseBy::Either,
    warn: Warn::Percent(75),
};

fn running(c: &Clock) -> bool {
    c.met_at.is_none() && !c.paused && !c.breached
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn while_a_clock_runs_elapsed_and_remaining_make_its_goal_and_its_due_time_is_open(
        cal in calendar(), h in history(), later in 0i64..20_000,
    ) {
        let now = h.last().unwrap().0 + Duration::minutes(later);
        for c in clocks(&h, POLICY, &cal, now).iter().filter(|c| running(c)) {
            prop_assert_eq!(c.elapsed + c.remaining, c.goal);
            let due = c.due_at.expect("a running clock has a due time");
            prop_assert_eq!(cal.between(now, due), c.remaining, "{:?} due {}", c.metric, due);
            prop_assert!(cal.is_open(due - Duration::seconds(1)), "{:?} due {} outside hours", c.metric, due);
        }
    }

    #[test]
    fn pausing_never_shortens_the_time_left(
        cal in calendar(), h in history(), pause in 0i64..5000, later in 0i64..20_000,
    ) {
        let last = h.last().unwrap().0;
        let now = last + Duration::minutes(pause + later);
        let mut held = h.clone();
        held.push((last + Duration::minutes(pause), Signal::Stage { paused: true }));
        let before = clocks(&h, POLICY, &cal, now);
        let after = clocks(&held, POLICY, &cal, now);
        for metric in [Metric::FirstResponse, Metric::NextResponse, Metric::Resolution] {
            let find = |cs: &[Clock]| cs.iter().find(|c| c.metric == metric).cloned();
            if let (Some(b), Some(a)) = (find(&before), find(&after)) {
                prop_assert!(a.remaining >= b.remaining, "{:?}: {} < {}", metric, a.remaining, b.remaining);
            }
        }
    }
}
