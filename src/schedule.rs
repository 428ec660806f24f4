//! Cron schedules in the site timezone: the next instant after a given one,
//! computed in local time so 08:00 stays 08:00 across clock changes.
//! The tick loops that sleep until those instants live in `daemon`.
//!
//! croner only answers "which wall-clock times match"; how those times map
//! to instants across a clock change is decided here, in one place:
//!
//! - A schedule whose hour field is `*` or `*/n` (an interval, such as the
//!   sources' `*/30`) fires at every instant whose local time matches: twice
//!   through the repeated hour when clocks go back, and not at the times that
//!   do not exist when clocks go forward, so it keeps its real-time rhythm.
//! - Any other schedule (set hours, such as a 01:30 digest) fires once per
//!   wall-clock time: in the repeated hour only the first time, and a time
//!   skipped when clocks go forward fires at the instant the clocks jump.
//!
//! Every answer is a set of instants fixed by the expression and the zone,
//! so `next_after` is strictly after its input and never goes backwards.

use std::fmt;
use std::str::FromStr;

use chrono::{
    DateTime, Duration, LocalResult, NaiveDateTime, Offset, SubsecRound, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;
use croner::Cron;

/// Longer than any UTC offset change (the largest today, Antarctica/Troll's,
/// is two hours) and shorter than the time between two changes: within this
/// of any instant the zone's offset changes at most once.
const MARGIN: Duration = Duration::hours(3);
/// How far past a skipped wall-clock time to look for the end of the gap.
const LONGEST_GAP_MINUTES: i64 = 24 * 60;

/// A cron expression (seconds optional) bound to a timezone.
#[derive(Clone)]
pub struct Schedule {
    expr: String,
    cron: Cron,
    tz: Tz,
    /// True for an interval schedule (hour field `*` or `*/n`), see the module docs.
    by_interval: bool,
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({:?} in {})", self.expr, self.tz)
    }
}

impl Schedule {
    /// Parse `expr` (5 or 6 fields, or an `@daily`-style alias) for zone
    /// `tz`; refused when no date can ever match (such as 30 February).
    pub fn parse(expr: &str, tz: Tz) -> Result<Self, String> {
        let cron =
            Cron::from_str(expr).map_err(|e| format!("invalid cron expression {expr:?}: {e}"))?;
        let schedule = Self {
            expr: expr.to_owned(),
            by_interval: hour_field_is_interval(expr),
            cron,
            tz,
        };
        let reference = DateTime::UNIX_EPOCH.naive_utc();
        if schedule.naive_next(reference).is_none() {
            return Err(format!(
                "{expr:?} can never fire: no date matches it (such as 30 February)"
            ));
        }
        Ok(schedule)
    }

    /// The expression as written.
    pub(crate) fn expr(&self) -> &str {
        &self.expr
    }

    /// The first occurrence strictly after `after`, or `None` if there is none.
    pub(crate) fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Whole seconds in, whole seconds out.
        let after = after.trunc_subsecs(0);
        // An instant t has wall-clock time t + offset(t), so no wall-clock
        // time below `after` plus the lowest offset near it maps past `after`.
        let lowest = self.offset_at(after).min(self.offset_at(after + MARGIN));
        let mut wall = self.naive_next_inclusive(after.naive_utc() + lowest)?;
        let mut best: Option<DateTime<Utc>> = None;
        loop {
            // Later wall-clock times map to instants of at least wall - offset,
            // the offset being at most the highest near the best found.
            if let Some(b) = best {
                let highest = self.offset_at(b).max(self.offset_at(b - MARGIN));
                if wall - highest > b.naive_utc() {
                    return best;
                }
            }
            for at in self.instants_of(wall) {
                if at > after && best.is_none_or(|b| at < b) {
                    best = Some(at);
                }
            }
            match self.naive_next(wall) {
                Some(next) => wall = next,
                None => return best,
            }
        }
    }

    /// The latest occurrence at or before `at`, or `None` if there is none.
    pub(crate) fn latest_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let at = at.trunc_subsecs(0);
        let highest = self.offset_at(at).max(self.offset_at(at - MARGIN));
        let mut wall = self.naive_previous_inclusive(at.naive_utc() + highest)?;
        let mut best: Option<DateTime<Utc>> = None;
        loop {
            if let Some(b) = best {
                let lowest = self.offset_at(b).min(self.offset_at(b + MARGIN));
                if wall - lowest < b.naive_utc() {
                    return best;
                }
            }
            for instant in self.instants_of(wall) {
                if instant <= at && best.is_none_or(|b| instant > b) {
                    best = Some(instant);
                }
            }
            match self.naive_previous(wall) {
                Some(previous) => wall = previous,
                None => return best,
            }
        }
    }

    /// The zone's UTC offset at `at`.
    fn offset_at(&self, at: DateTime<Utc>) -> Duration {
        let offset = self.tz.offset_from_utc_datetime(&at.naive_utc()).fix();
        Duration::seconds(i64::from(offset.local_minus_utc()))
    }

    /// The instants at which matching wall-clock time `wall` fires.
    fn instants_of(&self, wall: NaiveDateTime) -> Vec<DateTime<Utc>> {
        match self.tz.from_local_datetime(&wall) {
            LocalResult::Single(at) => vec![at.with_timezone(&Utc)],
            LocalResult::Ambiguous(first, second) if self.by_interval => {
                vec![first.with_timezone(&Utc), second.with_timezone(&Utc)]
            }
            LocalResult::Ambiguous(first, _) => vec![first.with_timezone(&Utc)],
            LocalResult::None if self.by_interval => Vec::new(),
            LocalResult::None => self.end_of_gap(wall).into_iter().collect(),
        }
    }

    /// The instant the clocks jump over skipped wall-clock time `wall`: the
    /// first instant of the first wall-clock minute after it that exists.
    fn end_of_gap(&self, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
        let minute = wall.with_second(0)?;
        (1..=LONGEST_GAP_MINUTES)
            .map(|m| minute + Duration::minutes(m))
            .find_map(|w| self.tz.from_local_datetime(&w).earliest())
            .map(|at| at.with_timezone(&Utc))
    }

    /// The first matching wall-clock time strictly after `wall`.
    fn naive_next(&self, wall: NaiveDateTime) -> Option<NaiveDateTime> {
        self.cron
            .find_next_occurrence(&Utc.from_utc_datetime(&wall), false)
            .ok()
            .map(|at| at.naive_utc())
    }

    fn naive_next_inclusive(&self, wall: NaiveDateTime) -> Option<NaiveDateTime> {
        self.cron
            .find_next_occurrence(&Utc.from_utc_datetime(&wall), true)
            .ok()
            .map(|at| at.naive_utc())
    }

    fn naive_previous(&self, wall: NaiveDateTime) -> Option<NaiveDateTime> {
        self.cron
            .find_previous_occurrence(&Utc.from_utc_datetime(&wall), false)
            .ok()
            .map(|at| at.naive_utc())
    }

    fn naive_previous_inclusive(&self, wall: NaiveDateTime) -> Option<NaiveDateTime> {
        self.cron
            .find_previous_occurrence(&Utc.from_utc_datetime(&wall), true)
            .ok()
            .map(|at| at.naive_utc())
    }
}

/// Whether the hour field of `expr` is `*` or `*/n` (aliases such as `@daily` set the hour).
fn hour_field_is_interval(expr: &str) -> bool {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let hour = match fields.len() {
        5 => fields[1],
        n if n >= 6 => fields[2],
        _ => return false,
    };
    hour == "*" || hour.starts_with("*/")
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

    #[test]
    fn a_schedule_that_can_never_fire_is_refused_and_a_rare_one_is_fine() {
        let tz = chrono_tz::Europe::London;
        let refused = Schedule::parse("0 0 30 2 *", tz).unwrap_err();
        assert!(refused.contains("can never fire"), "{refused}");
        assert!(Schedule::parse("0 0 31 4 *", tz).is_err());
        // 29 February comes every four years; on a Monday, rarer still.
        let leap = Schedule::parse("0 0 29 2 *", tz).unwrap();
        assert_eq!(
            leap.next_after(utc(2025, 3, 1, 0, 0)),
            Some(utc(2028, 2, 29, 0, 0))
        );
        assert!(Schedule::parse("0 0 29 2 Mon", tz).is_ok());
    }

    #[test]
    fn in_the_repeated_hour_an_interval_fires_twice_and_a_set_time_once() {
        let tz = chrono_tz::Europe::London;
        // Clocks go back at 02:00 BST (01:00 UTC) on 25 October 2026.
        let every_half_hour = Schedule::parse("*/30 * * * *", tz).unwrap();
        // 01:05 GMT, the second pass through 01:xx: next is 01:30 GMT, not the past 01:30 BST.
        assert_eq!(
            every_half_hour.next_after(utc(2026, 10, 25, 1, 5)),
            Some(utc(2026, 10, 25, 1, 30))
        );
        assert_eq!(
            every_half_hour.next_after(utc(2026, 10, 25, 0, 30)),
            Some(utc(2026, 10, 25, 1, 0))
        );
        let half_past_one = Schedule::parse("30 1 * * *", tz).unwrap();
        assert_eq!(
            half_past_one.next_after(utc(2026, 10, 25, 0, 0)),
            Some(utc(2026, 10, 25, 0, 30))
        );
        assert_eq!(
            half_past_one.next_after(utc(2026, 10, 25, 0, 30)),
            Some(utc(2026, 10, 26, 1, 30))
        );
        assert_eq!(
            half_past_one.latest_at_or_before(utc(2026, 10, 25, 1, 45)),
            Some(utc(2026, 10, 25, 0, 30))
        );
    }

    #[test]
    fn a_set_time_in_the_skipped_hour_fires_as_the_clocks_jump() {
        let tz = chrono_tz::Europe::London;
        // Clocks go forward at 01:00 GMT on 28 March 2027 to 02:00 BST.
        let half_past_one = Schedule::parse("30 1 * * *", tz).unwrap();
        assert_eq!(
            half_past_one.next_after(utc(2027, 3, 27, 12, 0)),
            Some(utc(2027, 3, 28, 1, 0))
        );
        assert_eq!(
            half_past_one.next_after(utc(2027, 3, 28, 1, 0)),
            Some(utc(2027, 3, 29, 0, 30))
        );
        let every_half_hour = Schedule::parse("*/30 * * * *", tz).unwrap();
        assert_eq!(
            every_half_hour.next_after(utc(2027, 3, 28, 0, 30)),
            Some(utc(2027, 3, 28, 1, 0))
        );
    }

    mod properties {
        //! `next_after` against a brute-force scan of every UTC minute, in
        //! zones with one-hour and thirty-minute clock changes.

        use super::super::*;
        use chrono::{Datelike, Timelike};
        use proptest::prelude::*;

        const ZONES: [Tz; 4] = [
            chrono_tz::Europe::London,
            chrono_tz::Australia::Lord_Howe,
            chrono_tz::America::New_York,
            chrono_tz::UTC,
        ];
        const MINUTES: [(&str, &[u32]); 5] = [
            ("*/30", &[0, 30]),
            ("0", &[0]),
            ("30", &[30]),
            ("15,45", &[15, 45]),
            ("*/20", &[0, 20, 40]),
        ];
        const HOURS: [&str; 6] = ["*", "1", "2", "0-3", "*/2", "8"];

        fn hours(field: &str) -> Vec<u32> {
            match field {
                "*" => (0..24).collect(),
                "*/2" => (0..24).step_by(2).collect(),
                "0-3" => (0..4).collect(),
                fixed => vec![fixed.parse().unwrap()],
            }
        }

        /// The reference: walk UTC minute by minute. An interval schedule
        /// fires at every minute whose local time matches; a set-time one at
        /// the first instant of each matching local time, and at the instant
        /// the clocks jump over matching local times that do not exist.
        struct Reference {
            tz: Tz,
            minutes: Vec<u32>,
            hours: Vec<u32>,
            by_interval: bool,
        }

        impl Reference {
            fn matches(&self, wall: NaiveDateTime) -> bool {
                wall.second() == 0
                    && self.minutes.contains(&wall.minute())
                    && self.hours.contains(&wall.hour())
            }

            fn fires_at(&self, at: DateTime<Utc>) -> bool {
                let wall = at.with_timezone(&self.tz).naive_local();
                if self.by_interval {
                    return self.matches(wall);
                }
                let first = self.tz.from_local_datetime(&wall).earliest();
                if self.matches(wall) && first.is_some_and(|f| f.with_timezone(&Utc) == at) {
                    return true;
                }
                let before = (at - Duration::minutes(1))
                    .with_timezone(&self.tz)
                    .naive_local();
                let mut skipped = before + Duration::minutes(1);
                while skipped < wall {
                    if self.matches(skipped) {
                        return true;
                    }
                    skipped += Duration::minutes(1);
                }
                false
            }

            fn next_after(&self, after: DateTime<Utc>) -> DateTime<Utc> {
                let mut at = after.trunc_subsecs(0).with_second(0).unwrap() + Duration::minutes(1);
                while !self.fires_at(at) {
                    at += Duration::minutes(1);
                }
                at
            }
        }

        fn instant() -> impl Strategy<Value = DateTime<Utc>> {
            // 2024 to 2031, to the second.
            (1_704_067_200i64..1_956_528_000i64)
                .prop_map(|s| DateTime::from_timestamp(s, 0).unwrap())
        }

        /// An instant within a day of one of the zone's clock changes.
        fn near_a_change(tz: Tz, year: i32, spring: bool, offset_s: i64) -> DateTime<Utc> {
            let mut at = Utc.with_ymd_and_hms(year, 1, 1, 0, 0, 0).unwrap();
            let mut previous = at.with_timezone(&tz).offset().fix();
            let mut changes = Vec::new();
            while at.year() == year {
                at += Duration::minutes(30);
                let offset = at.with_timezone(&tz).offset().fix();
                if offset != previous {
                    changes.push((at, offset.local_minus_utc() > previous.local_minus_utc()));
                    previous = offset;
                }
            }
            let change = changes
                .iter()
                .find(|(_, forward)| *forward == spring)
                .map_or(at, |(c, _)| *c);
            change + Duration::seconds(offset_s)
        }

        fn schedule(zone: usize, minute: usize, hour: usize) -> (Schedule, Reference) {
            let tz = ZONES[zone];
            let (minute_field, minutes) = MINUTES[minute];
            let expr = format!("{minute_field} {} * * *", HOURS[hour]);
            let schedule = Schedule::parse(&expr, tz).unwrap();
            let reference = Reference {
                tz,
                minutes: minutes.to_vec(),
                hours: hours(HOURS[hour]),
                by_interval: HOURS[hour].starts_with('*'),
            };
            (schedule, reference)
        }

        use chrono::Offset;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(500))]

            #[test]
            fn next_is_strictly_later_monotonic_and_agrees_with_the_scan(
                zone in 0..ZONES.len(), minute in 0..MINUTES.len(), hour in 0..HOURS.len(),
                a in instant(), step in 0i64..200_000,
            ) {
                let (schedule, reference) = schedule(zone, minute, hour);
                let b = a + Duration::seconds(step);
                let (next_a, next_b) = (schedule.next_after(a).unwrap(), schedule.next_after(b).unwrap());
                prop_assert!(next_a > a);
                prop_assert!(next_a <= next_b);
                prop_assert_eq!(next_a, reference.next_after(a));
            }

            #[test]
            fn across_each_change_no_occurrence_is_skipped_or_repeated(
                zone in 0..3usize, minute in 0..MINUTES.len(), hour in 0..HOURS.len(),
                year in 2024i32..2031, spring in any::<bool>(), offset_s in -30_000i64..-3_600,
            ) {
                let (schedule, reference) = schedule(zone, minute, hour);
                let start = near_a_change(ZONES[zone], year, spring, offset_s);
                let end = start + Duration::hours(30);
                let (mut ours, mut scanned) = (Vec::new(), Vec::new());
                let mut at = start;
                while let Some(next) = schedule.next_after(at).filter(|n| *n <= end) {
                    ours.push(next);
                    at = next;
                }
                let mut at = start;
                loop {
                    let next = reference.next_after(at);
                    if next > end { break; }
                    scanned.push(next);
                    at = next;
                }
                prop_assert_eq!(ours, scanned);
            }

            #[test]
            fn the_latest_occurrence_is_the_one_before_the_next(
                zone in 0..ZONES.len(), minute in 0..MINUTES.len(), hour in 0..HOURS.len(),
                a in instant(),
            ) {
                let (schedule, _) = schedule(zone, minute, hour);
                let latest = schedule.latest_at_or_before(a).unwrap();
                prop_assert!(latest <= a);
                prop_assert_eq!(schedule.next_after(latest), schedule.next_after(a));
            }
        }
    }
}
