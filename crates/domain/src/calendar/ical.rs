//! Holidays from an iCalendar file (RFC 5545), as public-holiday feeds and
//! calendar exports publish them: each event's dates, from `DTSTART` to
//! `DTEND` (exclusive, as all-day events end), one day without `DTEND`.
//! Parsed by the `icalendar` crate; what this adds is the mapping to dates
//! and the refusals.

use std::collections::BTreeSet;
use std::str::FromStr;

use chrono::{Duration, NaiveDate};
use icalendar::{Component, DatePerhapsTime};

use super::{BusinessCalendar, bad};
use crate::DomainError;

/// The most holidays a calendar keeps.
pub const MAX_HOLIDAYS: usize = 5_000;
/// The longest event taken as holidays, in days.
const MAX_EVENT_DAYS: i64 = 31;

fn date(d: &DatePerhapsTime) -> NaiveDate {
    match d {
        DatePerhapsTime::Date(d) => *d,
        // A timed event counts for the date it starts (in its own zone).
        DatePerhapsTime::DateTime(t) => match t {
            icalendar::CalendarDateTime::Floating(n) => n.date(),
            icalendar::CalendarDateTime::Utc(u) => u.date_naive(),
            icalendar::CalendarDateTime::WithTimezone { date_time, .. } => date_time.date(),
        },
    }
}

/// The dates of every event of `text`. Recurring events (`RRULE`) are
/// refused: holiday feeds list each year's dates, and a rule would have to
/// be expanded to some end the file does not give.
pub fn holidays_from_ical(text: &str) -> Result<Vec<NaiveDate>, DomainError> {
    let cal = icalendar::Calendar::from_str(text).map_err(|e| bad(format!("not an iCalendar file: {e}")))?;
    let mut out = BTreeSet::new();
    for event in cal.events() {
        let name = event.get_summary().unwrap_or("an event").to_owned();
        if event.property_value("RRULE").is_some() {
            return Err(bad(format!("'{name}' repeats (RRULE): list each year's date instead")));
        }
        let start = event
            .get_start()
            .map(|d| date(&d))
            .ok_or_else(|| bad(format!("'{name}' has no DTSTART date")))?;
        let end = event
            .get_end()
            .map(|d| date(&d))
            .filter(|e| *e > start)
            .unwrap_or(start + Duration::days(1));
        if (end - start).num_days() > MAX_EVENT_DAYS {
            return Err(bad(format!("'{name}' spans more than {MAX_EVENT_DAYS} days")));
        }
        let mut d = start;
        while d < end {
            out.insert(d);
            d += Duration::days(1);
        }
        if out.len() > MAX_HOLIDAYS {
            return Err(bad(format!("more than {MAX_HOLIDAYS} holidays")));
        }
    }
    if out.is_empty() {
        return Err(bad("the file holds no event (VEVENT)".to_owned()));
    }
    Ok(out.into_iter().collect())
}

impl BusinessCalendar {
    /// This calendar with `dates` as holidays: added to its own, or in
    /// their place.
    pub fn with_holidays(&self, dates: &[NaiveDate], replace: bool) -> Result<BusinessCalendar, DomainError> {
        let mut all: BTreeSet<NaiveDate> = if replace {
            BTreeSet::new()
        } else {
            self.holidays.iter().copied().collect()
        };
        all.extend(dates.iter().copied());
        if all.len() > MAX_HOLIDAYS {
            return Err(bad(format!("more than {MAX_HOLIDAYS} holidays")));
        }
        Ok(BusinessCalendar {
            holidays: all.into_iter().collect(),
            ..self.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FEED: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//Holidays//EN\r\n\
BEGIN:VEVENT\r\nUID:xmas-2026\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:Christmas\r\n\
DTSTART;VALUE=DATE:20261225\r\nDTEND;VALUE=DATE:20261227\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:ny-2027\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:New Year\r\n\
DTSTART;VALUE=DATE:20270101\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:party\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:Staff party\r\n\
DTSTART;TZID=Europe/Berlin:20261218T150000\r\nDTEND;TZID=Europe/Berlin:20261218T230000\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn an_ical_feed_gives_each_events_dates_with_dtend_exclusive() {
        assert_eq!(
            holidays_from_ical(FEED).unwrap(),
            [d("2026-12-18"), d("2026-12-25"), d("2026-12-26"), d("2027-01-01")]
        );
    }

    #[test]
    fn recurring_empty_and_broken_files_are_refused_with_the_reason() {
        let recurring = FEED.replace("SUMMARY:New Year\r\n", "SUMMARY:New Year\r\nRRULE:FREQ=YEARLY\r\n");
        let e = holidays_from_ical(&recurring).unwrap_err().to_string();
        assert!(e.contains("New Year") && e.contains("RRULE"), "{e}");
        let empty = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n";
        assert!(holidays_from_ical(empty).unwrap_err().to_string().contains("no event"));
        assert!(holidays_from_ical("hello").is_err());
    }

    #[test]
    fn holidays_are_added_or_replaced_once_each() {
        let cal = BusinessCalendar {
            id: "office".into(),
            version: 3,
            name: None,
            time_zone: "Europe/Berlin".into(),
            hours: Default::default(),
            holidays: vec![d("2026-12-24"), d("2026-12-25")],
        };
        let added = cal.with_holidays(&[d("2026-12-25"), d("2026-12-26")], false).unwrap();
        assert_eq!(added.holidays, [d("2026-12-24"), d("2026-12-25"), d("2026-12-26")]);
        let replaced = cal.with_holidays(&[d("2027-01-01")], true).unwrap();
        assert_eq!(replaced.holidays, [d("2027-01-01")]);
    }
}
