//! The one place that reads the system time and sleeps until an instant.
//! Everything else asks a `Clock`, so tests can pin "now" and drive the
//! daemon's loops through virtual time (schedules across clock changes,
//! digest windows). `TIDINGS_NOW` starts the binary's clock at a chosen
//! instant (`from_env`), for tests and scripts.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

/// A sleep until an instant, boxed so `Clock` stays usable as `dyn Clock`.
pub type Sleep<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant, in UTC.
    fn now(&self) -> DateTime<Utc>;

    /// Resolves once `now()` has reached `at` (at once if it already has).
    fn sleep_until(&self, at: DateTime<Utc>) -> Sleep<'_>;
}

/// The longest the system clock sleeps before looking at the time again, so
/// a wall clock stepped forward (NTP, a resumed machine) is noticed soon.
const SYSTEM_RECHECK: std::time::Duration = std::time::Duration::from_secs(60);

/// The real wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one sanctioned reader of the system time
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> Sleep<'_> {
        Box::pin(async move {
            // Sleep on the monotonic timer, but wake only once the wall clock
            // agrees: a sleep that ends early never lets a loop run early.
            loop {
                let Ok(left) = (at - self.now()).to_std() else {
                    return;
                };
                if left.is_zero() {
                    return;
                }
                tokio::time::sleep(left.min(SYSTEM_RECHECK)).await;
            }
        })
    }
}

/// The environment variable that starts the binary's clock at an instant.
pub const NOW_VAR: &str = "TIDINGS_NOW";

/// A wall clock started at a chosen instant: it reads the system clock and
/// adds the fixed offset between the two, so time passes at its usual pace
/// from there (loops, leases and timeouts behave as on the system clock).
#[derive(Debug, Clone, Copy)]
pub struct StartedClock {
    offset: chrono::Duration,
}

impl StartedClock {
    /// A clock that shows `at` now and runs on from there.
    pub fn starting_at(at: DateTime<Utc>) -> Self {
        Self {
            offset: at - SystemClock.now(),
        }
    }
}

impl Clock for StartedClock {
    fn now(&self) -> DateTime<Utc> {
        SystemClock.now() + self.offset
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> Sleep<'_> {
        Box::pin(SystemClock.sleep_until(at - self.offset))
    }
}

/// A `TIDINGS_NOW` value that is not an RFC 3339 instant.
#[derive(Debug, thiserror::Error)]
#[error("{NOW_VAR}={value:?} is not an RFC 3339 instant such as 2026-12-03T10:00:00Z")]
pub struct BadNow {
    /// The value as given.
    pub value: String,
}

/// The binary's clock: the system clock, or, when `now` (the value of
/// `TIDINGS_NOW`) is set, a clock started at that instant. For tests and
/// scripts that need a known "now" (a digest period's minute, a retry's
/// backoff passed); it logs a warning, since every time the process records
/// is then shifted.
pub fn from_env(now: Option<&str>) -> Result<SharedClock, BadNow> {
    let Some(value) = now.filter(|v| !v.trim().is_empty()) else {
        return Ok(Arc::new(SystemClock));
    };
    let at = DateTime::parse_from_rfc3339(value.trim()).map_err(|_| BadNow {
        value: value.to_owned(),
    })?;
    tracing::warn!(now = %at.to_utc(), "{NOW_VAR} is set: the clock starts at this instant, not the system's time");
    Ok(Arc::new(StartedClock::starting_at(at.to_utc())))
}

/// A clock that stands still until the test moves it; sleepers wake when it
/// passes their instant. It keeps count of who is asleep, for tests that
/// drive the daemon's loops through virtual time.
#[derive(Debug, Clone)]
pub struct FixedClock(Arc<Virtual>);

#[derive(Debug)]
struct Virtual {
    now: watch::Sender<DateTime<Utc>>,
    /// Instants the current sleepers wait for, by sleeper id.
    sleepers: Mutex<BTreeMap<u64, DateTime<Utc>>>,
    next_id: AtomicU64,
    /// Sleeps asked for an instant already reached: a loop that would spin.
    already_due: AtomicUsize,
}

impl FixedClock {
    /// A clock showing `at`.
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Arc::new(Virtual {
            now: watch::Sender::new(at),
            sleepers: Mutex::default(),
            next_id: AtomicU64::new(0),
            already_due: AtomicUsize::new(0),
        }))
    }

    /// Move the clock to `at`; sleepers whose instant it reaches wake.
    pub fn set(&self, at: DateTime<Utc>) {
        // Woken sleepers leave the register now, so a test counting sleepers
        // never mistakes a loop that is about to run for one still asleep.
        self.sleepers().retain(|_, until| *until > at);
        self.0.now.send_replace(at);
    }

    /// How many tasks are asleep on this clock.
    pub fn sleeping(&self) -> usize {
        self.sleepers().len()
    }

    /// The earliest instant a sleeper waits for.
    pub fn next_wake(&self) -> Option<DateTime<Utc>> {
        self.sleepers().values().min().copied()
    }

    /// How many sleeps were asked for an instant the clock had already
    /// reached (each returns at once; a loop doing it repeatedly spins).
    pub fn sleeps_already_due(&self) -> usize {
        self.0.already_due.load(Ordering::Acquire)
    }

    fn sleepers(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, DateTime<Utc>>> {
        self.0
            .sleepers
            .lock()
            .expect("clock mutex is never poisoned: no code panics while holding it")
    }
}

/// Takes a sleeper off the register however its sleep ends (woken or dropped).
struct Registered<'a> {
    clock: &'a FixedClock,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.clock.sleepers().remove(&self.id);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.now.borrow()
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> Sleep<'_> {
        Box::pin(async move {
            let mut now = self.0.now.subscribe();
            if *now.borrow() >= at {
                self.0.already_due.fetch_add(1, Ordering::AcqRel);
                return;
            }
            let id = self.0.next_id.fetch_add(1, Ordering::AcqRel);
            self.sleepers().insert(id, at);
            let _registered = Registered { clock: self, id };
            // The sender lives in `self`, so the channel never closes here.
            let _ = now.wait_for(|now| *now >= at).await;
        })
    }
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tidings_now_starts_the_clock_at_that_instant() {
        let clock = from_env(Some("2026-12-03T10:00:00Z")).expect("a valid instant");
        let start = DateTime::parse_from_rfc3339("2026-12-03T10:00:00Z")
            .expect("valid")
            .to_utc();
        let shown = clock.now();
        assert!(
            shown >= start && shown - start < chrono::Duration::seconds(5),
            "{shown}"
        );
    }

    #[test]
    fn an_offset_in_tidings_now_is_read_as_utc() {
        let clock = from_env(Some("2026-12-03T11:00:00+01:00")).expect("a valid instant");
        assert_eq!(
            clock.now().format("%Y-%m-%dT%H").to_string(),
            "2026-12-03T10"
        );
    }

    #[test]
    fn a_bad_tidings_now_is_refused_with_its_value() {
        let error = from_env(Some("tomorrow")).expect_err("not an instant");
        assert!(
            error.to_string().contains("TIDINGS_NOW=\"tomorrow\""),
            "{error}"
        );
    }

    #[test]
    fn without_tidings_now_the_clock_is_the_system_clock() {
        let clock = from_env(None).expect("the system clock");
        assert!(format!("{clock:?}").contains("SystemClock"));
    }
}
