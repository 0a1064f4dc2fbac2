//! When a delivery may go: now, at the end of the recipient's quiet hours
//! (in their time zone), or at the next digest boundary. A critical
//! notification goes now whatever the preferences say.

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use casewire_ports::{Channel, Preferences};

/// When, and whether it joins a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub not_before: DateTime<Utc>,
    pub digest: bool,
}

/// Whether `tz` names a time zone this build knows.
pub fn valid_time_zone(tz: &str) -> bool {
    tz.parse::<Tz>().is_ok()
}

/// The slot of a delivery on `channel` planned at `now`.
pub fn slot(prefs: &Preferences, channel: Channel, critical: bool, now: DateTime<Utc>) -> Slot {
    let immediate = Slot {
        not_before: now,
        digest: false,
    };
    // Webhooks are machine-to-machine: no quiet hours, no digest.
    if critical || channel == Channel::Webhook {
        return immediate;
    }
    let after_quiet = prefs
        .quiet_hours
        .as_ref()
        .and_then(|q| quiet_until(q.start, q.end, &prefs.time_zone, now))
        .unwrap_or(now);
    match (channel, prefs.digest_minutes) {
        (Channel::Email, Some(minutes)) if minutes > 0 => Slot {
            not_before: next_boundary(after_quiet, minutes),
            digest: true,
        },
        _ => Slot {
            not_before: after_quiet,
            digest: false,
        },
    }
}

/// The end of the quiet window `now` falls in, if it falls in one.
fn quiet_until(start: NaiveTime, end: NaiveTime, tz: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let tz: Tz = tz.parse().unwrap_or(Tz::UTC);
    let local = now.with_timezone(&tz);
    let t = local.time();
    let date = local.date_naive();
    let inside = if start <= end {
        start <= t && t < end
    } else {
        t >= start || t < end
    };
    if !inside || start == end {
        return None;
    }
    // The end is today, or tomorrow when the window spans midnight and
    // has not yet crossed it.
    let end_date = if start > end && t >= start {
        date.succ_opt()?
    } else {
        date
    };
    let end_local = tz.from_local_datetime(&end_date.and_time(end)).earliest()?;
    Some(end_local.with_timezone(&Utc))
}

/// The next multiple of `minutes` since the epoch after `t`.
fn next_boundary(t: DateTime<Utc>, minutes: u32) -> DateTime<Utc> {
    let step = i64::from(minutes) * 60;
    let secs = t.timestamp();
    let next = (secs.div_euclid(step) + 1) * step;
    DateTime::from_timestamp(next, 0).unwrap_or(t + Duration::minutes(i64::from(minutes)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use casewire_ports::QuietHours;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn quiet(tz: &str) -> Preferences {
        Preferences {
            time_zone: tz.into(),
            quiet_hours: Some(QuietHours {
                start: NaiveTime::from_hms_opt(22, 0, 0).unwrap_or_default(),
                end: NaiveTime::from_hms_opt(7, 0, 0).unwrap_or_default(),
            }),
            ..Preferences::default()
        }
    }

    #[test]
    fn quiet_hours_defer_to_their_end_in_the_users_time_zone() {
        // 23:30 in Berlin (winter, UTC+1) is 22:30 UTC: wait until 07:00 Berlin.
        let s = slot(
            &quiet("Europe/Berlin"),
            Channel::Email,
            false,
            utc("2026-12-02T22:30:00Z"),
        );
        assert_eq!(s.not_before, utc("2026-12-03T06:00:00Z"));
        // 03:00 Berlin, after midnight: the same morning.
        let s = slot(
            &quiet("Europe/Berlin"),
            Channel::InApp,
            false,
            utc("2026-12-03T02:00:00Z"),
        );
        assert_eq!(s.not_before, utc("2026-12-03T06:00:00Z"));
        // Noon: now.
        let now = utc("2026-12-03T11:00:00Z");
        assert_eq!(
            slot(&quiet("Europe/Berlin"), Channel::Email, false, now).not_before,
            now
        );
    }

    #[test]
    fn critical_and_webhooks_ignore_quiet_hours_and_digests() {
        let now = utc("2026-12-02T22:30:00Z");
        let mut prefs = quiet("UTC");
        prefs.digest_minutes = Some(60);
        assert_eq!(slot(&prefs, Channel::Email, true, now).not_before, now);
        assert_eq!(slot(&prefs, Channel::Webhook, false, now).not_before, now);
    }

    #[test]
    fn digests_wait_for_the_next_boundary_after_quiet_hours() {
        let prefs = Preferences {
            digest_minutes: Some(60),
            ..Preferences::default()
        };
        let s = slot(&prefs, Channel::Email, false, utc("2026-12-02T10:20:00Z"));
        assert_eq!((s.not_before, s.digest), (utc("2026-12-02T11:00:00Z"), true));
        // In-app is never digested.
        assert!(!slot(&prefs, Channel::InApp, false, utc("2026-12-02T10:20:00Z")).digest);
        let mut both = quiet("UTC");
        both.digest_minutes = Some(60);
        let s = slot(&both, Channel::Email, false, utc("2026-12-02T23:10:00Z"));
        assert_eq!(s.not_before, utc("2026-12-03T08:00:00Z"));
    }

    #[test]
    fn an_unknown_time_zone_is_refused_and_a_known_one_accepted() {
        assert!(valid_time_zone("Europe/Berlin"));
        assert!(!valid_time_zone("Mars/Olympus"));
    }
}
