//! Cron schedules in the site timezone: the next instant after a given one,
//! computed in local time so 08:00 stays 08:00 across clock changes.
//! The tick loops that sleep until those instants live in `daemon`.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SubsecRound, Utc};
use chrono_tz::Tz;
use croner::Cron;

/// A cron expression (seconds optional) bound to a timezone.
#[derive(Clone)]
pub struct Schedule {
    expr: String,
    cron: Cron,
    tz: Tz,
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({:?} in {})", self.expr, self.tz)
    }
}

impl Schedule {
    /// Parse `expr` (5 or 6 fields, or an `@daily`-style alias) for zone `tz`.
    pub fn parse(expr: &str, tz: Tz) -> Result<Self, String> {
        let cron =
            Cron::from_str(expr).map_err(|e| format!("invalid cron expression {expr:?}: {e}"))?;
        Ok(Self {
            expr: expr.to_owned(),
            cron,
            tz,
        })
    }

    /// The expression as written.
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The first occurrence strictly after `after`, or `None` if there is none.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Whole seconds in, whole seconds out: croner carries a fraction through.
        let local = after.trunc_subsecs(0).with_timezone(&self.tz);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|next| next.with_timezone(&Utc))
    }

    /// The latest occurrence at or before `at`, or `None` if there is none.
    pub fn latest_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = at.trunc_subsecs(0).with_timezone(&self.tz);
        self.cron
            .find_previous_occurrence(&local, true)
            .ok()
            .map(|prev| prev.with_timezone(&Utc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn monday_eight_in_london_is_eight_local_in_winter_and_summer() {
        let s = Schedule::parse("0 0 8 * * Mon", chrono_tz::Europe::London).unwrap();
        // 2025-03-30 clocks go forward: the Monday before is GMT, the Monday after BST.
        assert_eq!(
            s.next_after(utc(2025, 3, 20, 0, 0)),
            Some(utc(2025, 3, 24, 8, 0))
        );
        assert_eq!(
            s.next_after(utc(2025, 3, 24, 8, 0)),
            Some(utc(2025, 3, 31, 7, 0))
        );
        // 2025-10-26 clocks go back: BST before, GMT after.
        assert_eq!(
            s.next_after(utc(2025, 10, 20, 7, 0)),
            Some(utc(2025, 10, 27, 8, 0))
        );
    }

    #[test]
    fn five_field_expressions_and_aliases_parse() {
        let tz = chrono_tz::Europe::London;
        assert!(Schedule::parse("*/30 * * * *", tz).is_ok());
        assert!(Schedule::parse("@daily", tz).is_ok());
        assert!(Schedule::parse("0 61 * * * *", tz).is_err());
        assert!(Schedule::parse("", tz).is_err());
        assert!(Schedule::parse("every tuesday", tz).is_err());
    }

    #[test]
    fn latest_occurrence_is_inclusive() {
        let s = Schedule::parse("0 0 8 * * *", chrono_tz::UTC).unwrap();
        assert_eq!(
            s.latest_at_or_before(utc(2025, 1, 2, 8, 0)),
            Some(utc(2025, 1, 2, 8, 0))
        );
        assert_eq!(
            s.latest_at_or_before(utc(2025, 1, 2, 7, 59)),
            Some(utc(2025, 1, 1, 8, 0))
        );
    }

    #[test]
    fn occurrences_are_whole_seconds_whatever_the_input() {
        let s = Schedule::parse("0 0 8 * * *", chrono_tz::UTC).unwrap();
        let at = utc(2025, 1, 2, 9, 0) + chrono::Duration::microseconds(936_729);
        assert_eq!(s.latest_at_or_before(at), Some(utc(2025, 1, 2, 8, 0)));
        assert_eq!(s.next_after(at), Some(utc(2025, 1, 3, 8, 0)));
    }
}
