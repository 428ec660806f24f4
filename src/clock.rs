//! The one place that reads the system time and sleeps until an instant.
//! Everything else asks a `Clock`, so tests can pin "now" and drive the
//! daemon's loops through virtual time (schedules across clock changes,
//! digest windows).

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
