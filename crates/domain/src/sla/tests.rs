//! Given/when/then of the clocks on a Mon-Fri 09:00-17:00 Berlin calendar.

use chrono::{NaiveDateTime, TimeZone};
use chrono_tz::Tz;

use super::*;
use crate::calendar::BusinessCalendar;

fn office(holidays: &[&str]) -> Calendar {
    BusinessCalendar {
        id: "office".into(),
        version: 0,
        name: None,
        time_zone: "Europe/Berlin".into(),
        hours: ["mon", "tue", "wed", "thu", "fri"]
            .into_iter()
            .map(|d| (d.to_owned(), vec!["09:00-17:00".to_owned()]))
            .collect(),
        holidays: holidays.iter().map(|d| d.parse().unwrap()).collect(),
    }
    .compile()
    .unwrap()
}

/// Berlin wall-clock time; 2026-12-04 is a Friday, 2026-12-07 a Monday.
fn at(local: &str) -> DateTime<Utc> {
    let naive = NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M").unwrap();
    chrono_tz::Europe::Berlin
        .from_local_datetime(&naive)
        .earliest()
        .unwrap()
        .with_timezone(&Utc)
}

fn goals(first: &str, next: &str, resolution: &str) -> Goals {
    Goals {
        first_response: parse_duration(first),
        next_response: parse_duration(next),
        resolution: parse_duration(resolution),
    }
}

fn normal() -> Goals {
    goals("4h", "2h", "8h")
}

const POLICY: Policy = Policy {
    first_response_by: ResponseBy::Comment,
    warn: Warn::Percent(80),
};

fn opened(t: &str) -> (DateTime<Utc>, Signal) {
    (
        at(t),
        Signal::Opened {
            goals: normal(),
            paused: false,
        },
    )
}

fn clock(signals: &[(DateTime<Utc>, Signal)], now: &str, metric: Metric, cal: &Calendar) -> Clock {
    clocks(signals, POLICY, cal, at(now))
        .into_iter()
        .find(|c| c.metric == metric)
        .unwrap_or_else(|| panic!("no {metric:?} clock"))
}

#[test]
fn four_business_hours_from_friday_16_00_are_due_monday_noon_or_tuesday_after_a_holiday() {
    let s = [opened("2026-12-04 16:00")];
    let c = clock(&s, "2026-12-04 16:30", Metric::FirstResponse, &office(&[]));
    assert_eq!(c.due_at, Some(at("2026-12-07 12:00")));
    assert_eq!(
        (c.elapsed, c.remaining),
        (Duration::minutes(30), Duration::minutes(210))
    );
    assert!(c.within_calendar_hours && !c.breached && !c.paused);
    let c = clock(&s, "2026-12-04 16:30", Metric::FirstResponse, &office(&["2026-12-07"]));
    assert_eq!(c.due_at, Some(at("2026-12-08 12:00")));
}

#[test]
fn a_pause_of_two_business_hours_moves_the_due_time_by_two_business_hours_over_a_weekend() {
    let cal = office(&[]);
    let plain = [opened("2026-12-04 10:00")];
    let without = clock(&plain, "2026-12-04 18:00", Metric::Resolution, &cal);
    assert_eq!(without.due_at, Some(at("2026-12-07 10:00")));
    let paused = [
        opened("2026-12-04 10:00"),
        (at("2026-12-04 14:00"), Signal::Stage { paused: true }),
        (at("2026-12-04 16:00"), Signal::Stage { paused: false }),
    ];
    let with = clock(&paused, "2026-12-04 18:00", Metric::Resolution, &cal);
    assert_eq!(with.due_at, Some(at("2026-12-07 12:00")));
    assert_eq!(
        cal.between(without.due_at.unwrap(), with.due_at.unwrap()),
        Duration::hours(2)
    );
    // While paused it shows as paused, with nothing due, and counts nothing.
    let held = clock(&paused, "2026-12-04 15:00", Metric::Resolution, &cal);
    assert!(held.paused && held.due_at.is_none());
    assert_eq!(held.elapsed, Duration::hours(4));
}

#[test]
fn a_priority_change_keeps_elapsed_and_paused_time_and_moves_only_the_due_time() {
    let cal = office(&[]);
    let s = [
        opened("2026-12-07 09:00"),
        (at("2026-12-07 10:00"), Signal::Stage { paused: true }),
        (at("2026-12-07 12:00"), Signal::Stage { paused: false }),
        (at("2026-12-07 13:00"), Signal::Prioritized(goals("1h", "1h", "4h"))),
    ];
    let c = clock(&s, "2026-12-07 13:00", Metric::Resolution, &cal);
    assert_eq!((c.goal, c.elapsed), (Duration::hours(4), Duration::hours(2)));
    assert_eq!(c.due_at, Some(at("2026-12-07 15:00")));
    // A goal already passed by the change is breached at the change.
    let f = clock(&s, "2026-12-07 13:00", Metric::FirstResponse, &cal);
    assert_eq!((f.breached, f.breached_at), (true, Some(at("2026-12-07 13:00"))));
}

#[test]
fn reopening_resumes_the_resolution_clock_where_it_stopped() {
    let cal = office(&[]);
    let s = [
        opened("2026-12-07 09:00"),
        (at("2026-12-07 10:00"), Signal::Resolved),
        (at("2026-12-10 10:00"), Signal::Reopened { paused: false }),
    ];
    let resolved = clock(&s[..2], "2026-12-09 10:00", Metric::Resolution, &cal);
    assert_eq!(resolved.met_at, Some(at("2026-12-07 10:00")));
    assert!(!resolved.paused && resolved.due_at.is_none());
    let c = clock(&s, "2026-12-10 10:00", Metric::Resolution, &cal);
    assert!(!c.breached, "three days resolved are no breach");
    assert_eq!((c.elapsed, c.remaining), (Duration::hours(1), Duration::hours(7)));
    assert_eq!(c.due_at, Some(at("2026-12-10 17:00")));
    assert_eq!(c.met_at, None);
}

#[test]
fn an_unanswered_case_breaches_when_its_goal_is_reached_and_says_when() {
    let cal = office(&[]);
    let s = [opened("2026-12-07 09:00")];
    let c = clock(&s, "2026-12-07 15:00", Metric::FirstResponse, &cal);
    assert!(c.breached);
    assert_eq!(c.breached_at, Some(at("2026-12-07 13:00")));
    assert_eq!(c.remaining, -Duration::hours(2));
    assert_eq!(c.warn_at, Some(at("2026-12-07 12:12")), "80 % of 4 h");
    let answered = [
        opened("2026-12-07 09:00"),
        (at("2026-12-07 11:00"), Signal::StaffResponse),
    ];
    let c = clock(&answered, "2026-12-07 15:00", Metric::FirstResponse, &cal);
    assert_eq!(
        (c.breached, c.met_at, c.due_at),
        (false, Some(at("2026-12-07 11:00")), None)
    );
}

#[test]
fn the_warning_threshold_is_the_policys() {
    let cal = office(&[]);
    let policy = Policy {
        warn: Warn::parse("30m").unwrap(),
        ..POLICY
    };
    let c = clocks(&[opened("2026-12-07 09:00")], policy, &cal, at("2026-12-07 09:00"));
    let first = c.iter().find(|c| c.metric == Metric::FirstResponse).unwrap();
    assert_eq!(first.warn_at, Some(at("2026-12-07 12:30")));
    assert_eq!(Warn::parse("80%"), Some(Warn::Percent(80)));
    assert_eq!(Warn::parse("100%"), None);
    assert_eq!(Warn::parse("soon"), None);
}

#[test]
fn first_response_by_assignment_or_comment_as_configured() {
    let cal = office(&[]);
    let s = [opened("2026-12-07 09:00"), (at("2026-12-07 09:30"), Signal::Assigned)];
    let by = |first_response_by| {
        clocks(
            &s,
            Policy {
                first_response_by,
                ..POLICY
            },
            &cal,
            at("2026-12-07 10:00"),
        )
        .into_iter()
        .find(|c| c.metric == Metric::FirstResponse)
        .unwrap()
        .met_at
    };
    assert_eq!(by(ResponseBy::Comment), None);
    assert_eq!(by(ResponseBy::Assignment), Some(at("2026-12-07 09:30")));
    assert_eq!(by(ResponseBy::Either), Some(at("2026-12-07 09:30")));
}

#[test]
fn each_requester_reply_after_an_answer_starts_a_next_response_cycle() {
    let cal = office(&[]);
    let mut s = vec![
        opened("2026-12-07 09:00"),
        (at("2026-12-07 09:10"), Signal::RequesterReply),
        (at("2026-12-07 10:00"), Signal::StaffResponse),
        (at("2026-12-07 11:00"), Signal::RequesterReply),
        (at("2026-12-07 11:30"), Signal::RequesterReply),
    ];
    let c = clock(&s, "2026-12-07 12:00", Metric::NextResponse, &cal);
    assert_eq!(c.cycle, 1, "a reply before the first answer starts none");
    assert_eq!(
        c.due_at,
        Some(at("2026-12-07 13:00")),
        "the oldest unanswered reply counts"
    );
    s.push((at("2026-12-07 12:30"), Signal::StaffResponse));
    s.push((at("2026-12-07 14:00"), Signal::RequesterReply));
    let c = clock(&s, "2026-12-07 14:00", Metric::NextResponse, &cal);
    assert_eq!((c.cycle, c.due_at), (2, Some(at("2026-12-07 16:00"))));
}

#[test]
fn calendar_hours_count_every_hour() {
    let s = [opened("2026-12-04 16:00")];
    let c = clock(&s, "2026-12-04 16:00", Metric::FirstResponse, &Calendar::always());
    assert_eq!(c.due_at, Some(at("2026-12-04 20:00")));
    let _: Tz = "UTC".parse().unwrap();
}

#[test]
fn durations_are_digits_and_a_unit() {
    assert_eq!(parse_duration("30m"), Some(Duration::minutes(30)));
    assert_eq!(parse_duration("2d"), Some(Duration::hours(48)));
    assert_eq!(parse_duration("1w"), Some(Duration::days(7)));
    assert_eq!(parse_duration("45s"), Some(Duration::seconds(45)));
    for bad in ["", "h", "0h", "4", "4x", "-1h", "99999999999999w"] {
        assert_eq!(parse_duration(bad), None, "{bad}");
    }
}

#[test]
fn a_cases_events_are_its_signals_by_its_definition() {
    let def =
        crate::CaseDefinition::parse_yaml(include_str!("../../../../definitions/customer-complaint.yaml")).unwrap();
    let ev = |v: serde_json::Value| serde_json::from_value::<crate::CaseEvent>(v).unwrap();
    let comment = |body: &str, public: bool, by_requester: bool| {
        ev(serde_json::json!({"type": "comment-added", "data": {
            "commentId": uuid::Uuid::now_v7(), "parentId": null, "body": body,
            "visibility": if public { "public" } else { "internal" }, "author": "x", "byRequester": by_requester}}))
    };
    let events = [
        ev(serde_json::json!({"type": "opened", "data": {
            "key": "CMP-000001", "definitionId": "customer-complaint", "definitionVersion": 1, "title": "t",
            "description": "", "data": {}, "stage": "new", "priority": "normal", "queue": "complaints",
            "requester": null, "tags": []}})),
        ev(serde_json::json!({"type": "stage-changed", "data": {"from": "new", "to": "triage"}})),
        comment("internal note", false, false),
        comment("we look into it", true, false),
        ev(serde_json::json!({"type": "stage-changed", "data": {"from": "triage", "to": "investigating"}})),
        ev(serde_json::json!({"type": "stage-changed", "data": {"from": "investigating", "to": "waiting-customer"}})),
        comment("here is the receipt", true, true),
        ev(serde_json::json!({"type": "prioritized", "data": {"priority": "urgent", "previous": "normal"}})),
    ];
    let t0 = at("2026-12-07 09:00");
    let timed: Vec<(DateTime<Utc>, &crate::CaseEvent)> = events
        .iter()
        .enumerate()
        .map(|(i, e)| (t0 + Duration::minutes(i as i64 * 10), e))
        .collect();
    let got: Vec<Signal> = signals(&def, timed.iter().copied())
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    let normal = def.priorities.iter().find(|p| p.id == "normal").unwrap().goals();
    let urgent = def.priorities.iter().find(|p| p.id == "urgent").unwrap().goals();
    assert_eq!(
        got,
        [
            Signal::Opened {
                goals: normal,
                paused: false
            },
            Signal::Stage { paused: false },
            Signal::StaffResponse,
            Signal::Stage { paused: false },
            Signal::Stage { paused: true },
            Signal::RequesterReply,
            Signal::Prioritized(urgent),
        ]
    );
    let c = case_clocks(
        &def,
        timed.iter().copied(),
        &Calendar::always(),
        t0 + Duration::hours(1),
    );
    let metrics: Vec<Metric> = c.iter().map(|c| c.metric).collect();
    assert_eq!(
        metrics,
        [Metric::FirstResponse, Metric::NextResponse, Metric::Resolution]
    );
    assert_eq!(c[0].met_at, Some(t0 + Duration::minutes(30)));
    assert!(
        c[1].paused && c[1].cycle == 1,
        "the reply came while waiting for the customer"
    );
    assert!(c[2].paused, "waiting for the customer holds the resolution clock");
}

#[test]
fn the_schedule_records_each_threshold_once_and_looks_again_at_the_next() {
    let cal = office(&[]);
    let s = [opened("2026-12-07 09:00")];
    let now = at("2026-12-07 12:30");
    let c = clocks(&s, POLICY, &cal, now);
    let plan = schedule(&c, &[], now);
    // 80 % of 4 h first response: 12:12; the 8 h resolution warns at 15:24.
    let due: Vec<(Metric, Threshold, DateTime<Utc>)> = plan.due.iter().map(|r| (r.metric, r.threshold, r.at)).collect();
    assert_eq!(
        due,
        [(Metric::FirstResponse, Threshold::Warning, at("2026-12-07 12:12"))]
    );
    assert_eq!(plan.next_at, Some(at("2026-12-07 13:00")), "the first response's goal");
    assert_eq!(plan.due_at, Some(at("2026-12-07 13:00")));
    assert_eq!(plan.warn_at, Some(at("2026-12-07 12:12")));
    assert!(!plan.breached);
    // Recorded: nothing is due until the breach.
    let plan = schedule(&c, &plan.due, now);
    assert!(plan.due.is_empty());
    assert_eq!(plan.next_at, Some(at("2026-12-07 13:00")));
}

#[test]
fn a_scheduler_that_was_down_records_late_what_was_reached_even_if_met_since() {
    let cal = office(&[]);
    let s = [
        opened("2026-12-07 09:00"),
        (at("2026-12-07 14:00"), Signal::StaffResponse),
    ];
    let now = at("2026-12-07 16:00");
    let plan = schedule(&clocks(&s, POLICY, &cal, now), &[], now);
    let breach = plan
        .due
        .iter()
        .find(|r| r.metric == Metric::FirstResponse && r.threshold == Threshold::Breached)
        .expect("the breach at 13:00 is recorded late");
    assert_eq!(breach.at, at("2026-12-07 13:00"));
    assert_eq!(breach.goal, Duration::hours(4));
    assert!(!plan.breached, "met since: the case is no longer breached");
}

#[test]
fn a_paused_clock_has_no_next_time() {
    let cal = office(&[]);
    let s = [
        opened("2026-12-07 09:00"),
        (at("2026-12-07 10:00"), Signal::StaffResponse),
        (at("2026-12-07 10:00"), Signal::Stage { paused: true }),
    ];
    let now = at("2026-12-07 11:00");
    let plan = schedule(&clocks(&s, POLICY, &cal, now), &[], now);
    assert_eq!(plan, Schedule::default());
}
