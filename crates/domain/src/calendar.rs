//! Business calendars: when the clock of a business-hours SLA runs. A
//! calendar is a time zone (IANA, through `chrono-tz`), weekly opening
//! hours (several ranges a day) and holidays. Hours are wall-clock times
//! of the zone; what they mean in real time is decided per date, so the
//! days DST starts and ends come out right (09:00 is 09:00, before and
//! after the change), and a range that a changeover shortens (a 24-hour
//! day that is 23 hours long) is as long as it really is.
//!
//! Pure: no clock is read; every function takes the instants it works on.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::DomainError;

/// How far ahead a due time is looked for before the calendar is taken to
/// have no hours at all.
const HORIZON_DAYS: i64 = 3 * 366;

/// A business calendar as written (YAML or JSON).
mod ical;
pub use ical::{MAX_HOLIDAYS, holidays_from_ical};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BusinessCalendar {
    /// Stable id such as `berlin-office`: a slug of a-z, 0-9 and `-`.
    pub id: String,
    /// Assigned by the store on import; ignored in the source file.
    #[serde(default)]
    pub version: u32,
    #[serde(default)]
    pub name: Option<String>,
    /// An IANA time zone such as `Europe/Berlin`.
    pub time_zone: String,
    /// Opening hours per weekday (`mon` .. `sun`), each a list of
    /// `HH:MM-HH:MM` ranges (`24:00` ends the day); a day not named is closed.
    #[serde(default)]
    pub hours: BTreeMap<String, Vec<String>>,
    /// Dates (`2026-12-25`) the calendar is closed all day.
    #[serde(default)]
    pub holidays: Vec<NaiveDate>,
}

/// A calendar ready to compute with.
#[derive(Debug, Clone, PartialEq)]
pub struct Calendar {
    tz: Tz,
    /// Per weekday (Monday first), ranges in minutes after local midnight.
    week: [Vec<(u32, u32)>; 7],
    holidays: BTreeSet<NaiveDate>,
}

fn bad(message: String) -> DomainError {
    DomainError::InvalidDefinition(message)
}

fn weekday(name: &str) -> Option<usize> {
    ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .position(|d| d.eq_ignore_ascii_case(name))
}

/// `HH:MM` in minutes after midnight; `24:00` is 1440.
fn minutes(hhmm: &str) -> Option<u32> {
    let (h, m) = hhmm.trim().split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    let total = h * 60 + m;
    (m < 60 && total <= 24 * 60).then_some(total)
}

fn range(text: &str) -> Option<(u32, u32)> {
    let (a, b) = text.split_once('-')?;
    let (a, b) = (minutes(a)?, minutes(b)?);
    (a < b).then_some((a, b))
}

impl BusinessCalendar {
    /// Reads a calendar from YAML (or JSON) and checks it.
    pub fn parse_yaml(source: &str) -> Result<BusinessCalendar, DomainError> {
        let cal: BusinessCalendar = serde_yaml::from_str(source).map_err(|e| bad(format!("invalid calendar: {e}")))?;
        cal.compile()?;
        Ok(cal)
    }

    /// Checks it and makes it ready: a known zone, known weekdays, ranges
    /// that are `HH:MM-HH:MM`, start before end, and do not overlap.
    pub fn compile(&self) -> Result<Calendar, DomainError> {
        if !crate::definition::is_slug(&self.id) {
            return Err(bad(format!("id '{}' must be a lower-case slug", self.id)));
        }
        if self.holidays.len() > MAX_HOLIDAYS {
            return Err(bad(format!("more than {MAX_HOLIDAYS} holidays")));
        }
        let tz: Tz = self
            .time_zone
            .parse()
            .map_err(|_| bad(format!("timeZone '{}' is not an IANA time zone", self.time_zone)))?;
        let mut week: [Vec<(u32, u32)>; 7] = Default::default();
        for (day, ranges) in &self.hours {
            let i = weekday(day).ok_or_else(|| bad(format!("hours: '{day}' is not a weekday (mon..sun)")))?;
            for r in ranges {
                let parsed = range(r).ok_or_else(|| bad(format!("hours.{day}: '{r}' is not HH:MM-HH:MM")))?;
                week[i].push(parsed);
            }
            week[i].sort_unstable();
            if week[i].windows(2).any(|w| w[0].1 > w[1].0) {
                return Err(bad(format!("hours.{day}: ranges overlap")));
            }
        }
        Ok(Calendar {
            tz,
            week,
            holidays: self.holidays.iter().copied().collect(),
        })
    }
}

impl Calendar {
    /// Every hour of every day, in UTC: what "calendar hours" count.
    pub fn always() -> Calendar {
        Calendar {
            tz: Tz::UTC,
            week: std::array::from_fn(|_| vec![(0, 24 * 60)]),
            holidays: BTreeSet::new(),
        }
    }

    /// The instant a wall-clock time of the zone stands for. In the hour
    /// a changeover skips, the first instant after the gap; in the hour it
    /// repeats, the earlier for a start and the later for an end, so a
    /// range covers all the real time its wall-clock times span.
    fn instant(&self, local: NaiveDateTime, is_end: bool) -> DateTime<Utc> {
        match self.tz.from_local_datetime(&local) {
            LocalResult::Single(t) => t.with_timezone(&Utc),
            LocalResult::Ambiguous(early, late) => if is_end { late } else { early }.with_timezone(&Utc),
            LocalResult::None => {
                // Gaps are an hour or less in the zones in use; look a
                // minute at a time, for at most three hours.
                (1..=180)
                    .find_map(|m| self.tz.from_local_datetime(&(local + Duration::minutes(m))).earliest())
                    .map_or_else(|| local.and_utc(), |t| t.with_timezone(&Utc))
            }
        }
    }

    /// The open intervals of a local date, in UTC, in order.
    fn open_on(&self, date: NaiveDate) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        if self.holidays.contains(&date) {
            return Vec::new();
        }
        let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
        self.week[date.weekday().num_days_from_monday() as usize]
            .iter()
            .map(|&(a, b)| {
                let start = self.instant(midnight + Duration::minutes(a.into()), false);
                let end = self.instant(midnight + Duration::minutes(b.into()), true);
                (start, end)
            })
            .filter(|(s, e)| s < e)
            .collect()
    }

    fn local_date(&self, t: DateTime<Utc>) -> NaiveDate {
        t.with_timezone(&self.tz).date_naive()
    }

    /// Whether the calendar is open at `t`.
    pub fn is_open(&self, t: DateTime<Utc>) -> bool {
        let date = self.local_date(t);
        self.open_on(date).iter().any(|(s, e)| *s <= t && t < *e)
    }

    /// The open time between `from` and `to` (zero when `to` is not later).
    pub fn between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
        if to <= from {
            return Duration::zero();
        }
        let (mut date, last) = (self.local_date(from), self.local_date(to));
        let mut total = Duration::zero();
        while date <= last {
            for (s, e) in self.open_on(date) {
                let (s, e) = (s.max(from), e.min(to));
                if s < e {
                    total += e - s;
                }
            }
            date = date.succ_opt().unwrap_or(NaiveDate::MAX);
        }
        total
    }

    /// The instant at which `amount` of open time has passed since `from`:
    /// always inside (or at the end of) an open interval. `None` when the
    /// calendar has not that much open time in the next three years.
    pub fn add(&self, from: DateTime<Utc>, amount: Duration) -> Option<DateTime<Utc>> {
        let mut left = amount;
        let mut date = self.local_date(from);
        for _ in 0..HORIZON_DAYS {
            for (s, e) in self.open_on(date) {
                if e <= from {
                    continue;
                }
                let s = s.max(from);
                if left <= e - s {
                    return Some(s + left);
                }
                left -= e - s;
            }
            date = date.succ_opt()?;
        }
        None
    }

    /// The zone's weekday of `t`, for messages and tests.
    pub fn weekday_of(&self, t: DateTime<Utc>) -> Weekday {
        t.with_timezone(&self.tz).weekday()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calendar(tz: &str, holidays: &[&str]) -> Calendar {
        let workday = vec!["09:00-17:00".to_owned()];
        BusinessCalendar {
            id: "office".into(),
            version: 0,
            name: None,
            time_zone: tz.into(),
            hours: ["mon", "tue", "wed", "thu", "fri"]
                .into_iter()
                .map(|d| (d.to_owned(), workday.clone()))
                .collect(),
            holidays: holidays.iter().map(|d| d.parse().unwrap()).collect(),
        }
        .compile()
        .unwrap()
    }

    /// A wall-clock time of `tz`, as an instant.
    fn at(tz: &str, local: &str) -> DateTime<Utc> {
        let tz: Tz = tz.parse().unwrap();
        let naive = NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M").unwrap();
        tz.from_local_datetime(&naive).earliest().unwrap().with_timezone(&Utc)
    }

    #[test]
    fn four_business_hours_from_friday_16_00_are_monday_noon_or_tuesday_after_a_holiday() {
        let berlin = "Europe/Berlin";
        // 2026-12-04 is a Friday.
        let start = at(berlin, "2026-12-04 16:00");
        let due = calendar(berlin, &[]).add(start, Duration::hours(4)).unwrap();
        assert_eq!(due, at(berlin, "2026-12-07 12:00"));
        let due = calendar(berlin, &["2026-12-07"])
            .add(start, Duration::hours(4))
            .unwrap();
        assert_eq!(due, at(berlin, "2026-12-08 12:00"));
    }

    #[test]
    fn business_hours_keep_their_wall_clock_on_both_changeover_days() {
        // Berlin: forward on Sunday 2026-03-29, back on Sunday 2026-10-25.
        // New York: forward on Sunday 2026-03-08, back on Sunday 2026-11-01.
        for (tz, friday, monday) in [
            ("Europe/Berlin", "2026-03-27", "2026-03-30"),
            ("Europe/Berlin", "2026-10-23", "2026-10-26"),
            ("America/New_York", "2026-03-06", "2026-03-09"),
            ("America/New_York", "2026-10-30", "2026-11-02"),
        ] {
            let cal = calendar(tz, &[]);
            let due = cal.add(at(tz, &format!("{friday} 15:00")), Duration::hours(4)).unwrap();
            assert_eq!(due, at(tz, &format!("{monday} 11:00")), "{tz} {friday}");
            let open = cal.between(at(tz, &format!("{friday} 15:00")), due);
            assert_eq!(open, Duration::hours(4), "{tz}");
        }
    }

    #[test]
    fn a_24_hour_day_is_as_long_as_it_really_is_on_changeover_days() {
        let all_day = |tz: &str| {
            BusinessCalendar {
                id: "always".into(),
                version: 0,
                name: None,
                time_zone: tz.into(),
                hours: ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
                    .into_iter()
                    .map(|d| (d.to_owned(), vec!["00:00-24:00".to_owned()]))
                    .collect(),
                holidays: vec![],
            }
            .compile()
            .unwrap()
        };
        for (tz, day, next, hours) in [
            ("Europe/Berlin", "2026-03-29", "2026-03-30", 23),
            ("Europe/Berlin", "2026-10-25", "2026-10-26", 25),
            ("America/New_York", "2026-03-08", "2026-03-09", 23),
            ("America/New_York", "2026-11-01", "2026-11-02", 25),
        ] {
            let cal = all_day(tz);
            let (a, b) = (at(tz, &format!("{day} 00:00")), at(tz, &format!("{next} 00:00")));
            assert_eq!(cal.between(a, b), Duration::hours(hours), "{tz} {day}");
            // 24 open hours from midnight end at real 24 hours later.
            assert_eq!(cal.add(a, Duration::hours(24)), Some(a + Duration::hours(24)), "{tz}");
        }
    }

    #[test]
    fn wall_clock_hours_inside_a_changeover_are_kept_whole() {
        // 02:00-04:00 on the night Berlin skips 02:00-03:00 is one real hour,
        // and on the night it repeats 02:00-03:00, three.
        let night = BusinessCalendar {
            id: "night".into(),
            version: 0,
            name: None,
            time_zone: "Europe/Berlin".into(),
            hours: [("sun".to_owned(), vec!["02:00-04:00".to_owned()])]
                .into_iter()
                .collect(),
            holidays: vec![],
        }
        .compile()
        .unwrap();
        let tz = "Europe/Berlin";
        let spring = night.between(at(tz, "2026-03-29 00:00"), at(tz, "2026-03-29 12:00"));
        let autumn = night.between(at(tz, "2026-10-25 00:00"), at(tz, "2026-10-25 12:00"));
        assert_eq!((spring, autumn), (Duration::hours(1), Duration::hours(3)));
    }

    #[test]
    fn outside_hours_nothing_counts_and_a_due_time_is_inside_them() {
        let tz = "Europe/Berlin";
        let cal = calendar(tz, &[]);
        assert!(!cal.is_open(at(tz, "2026-12-05 10:00")), "Saturday");
        assert!(cal.is_open(at(tz, "2026-12-07 09:00")));
        assert!(!cal.is_open(at(tz, "2026-12-07 17:00")), "the end is not open");
        assert_eq!(
            cal.between(at(tz, "2026-12-05 08:00"), at(tz, "2026-12-06 20:00")),
            Duration::zero()
        );
        // Exactly a day's hours from the opening ends at the closing.
        let due = cal.add(at(tz, "2026-12-07 09:00"), Duration::hours(8)).unwrap();
        assert_eq!(due, at(tz, "2026-12-07 17:00"));
    }

    #[test]
    fn bad_calendars_are_refused_with_the_reason() {
        let mut c = BusinessCalendar {
            id: "x".into(),
            version: 0,
            name: None,
            time_zone: "Mars/Olympus".into(),
            hours: BTreeMap::new(),
            holidays: vec![],
        };
        assert!(c.compile().unwrap_err().to_string().contains("IANA"));
        c.time_zone = "UTC".into();
        for (day, r, says) in [
            ("fri", "9-17", "HH:MM-HH:MM"),
            ("fri", "17:00-09:00", "HH:MM-HH:MM"),
            ("fri", "09:00-24:01", "HH:MM-HH:MM"),
            ("someday", "09:00-17:00", "weekday"),
        ] {
            c.hours = [(day.to_owned(), vec![r.to_owned()])].into_iter().collect();
            assert!(c.compile().unwrap_err().to_string().contains(says), "{r}");
        }
        c.hours = [("fri".to_owned(), vec!["09:00-13:00".into(), "12:00-17:00".into()])]
            .into_iter()
            .collect();
        assert!(c.compile().unwrap_err().to_string().contains("overlap"));
    }

    #[test]
    fn a_calendar_without_hours_has_no_due_time() {
        let closed = BusinessCalendar {
            id: "closed".into(),
            version: 0,
            name: None,
            time_zone: "UTC".into(),
            hours: BTreeMap::new(),
            holidays: vec![],
        }
        .compile()
        .unwrap();
        assert_eq!(closed.add(Utc::now(), Duration::hours(1)), None);
        assert_eq!(
            Calendar::always().add(at("UTC", "2026-12-05 10:00"), Duration::hours(30)),
            Some(at("UTC", "2026-12-06 16:00"))
        );
    }
}
