//! Backoff with jitter: how long to wait before trying again, for page
//! fetches (`source::fetch`) and outgoing mail (`mail::deliver`) alike. Each
//! wait doubles up to a cap and is then spread at random over its upper half,
//! so replicas and rows that failed together do not retry in lock-step.
//! Which failures are worth a retry is the caller's to decide.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Exponential backoff from `base`, capped at `cap`, with jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first full step; each retry doubles it.
    pub base: Duration,
    /// No wait is longer than this.
    pub cap: Duration,
}

impl Backoff {
    /// The wait before retry number `retry + 1` (0 for the first retry), with fresh jitter.
    pub fn wait(&self, retry: u32) -> Duration {
        self.wait_with(retry, jitter())
    }

    /// The wait before retry number `retry + 1`: `base * 2^retry`, capped at
    /// `cap`, then scaled into its upper half by `jitter` (in `0..1`), so a
    /// wait never shrinks below half its step but never synchronises either.
    pub(crate) fn wait_with(&self, retry: u32, jitter: f64) -> Duration {
        let factor = 2u32.saturating_pow(retry.min(30));
        let full = self.base.saturating_mul(factor).min(self.cap);
        let jitter = if jitter.is_nan() {
            0.0
        } else {
            jitter.clamp(0.0, 1.0)
        };
        full / 2 + (full / 2).mul_f64(jitter)
    }
}

/// A number in `0..1` that differs from call to call, from std's per-process
/// random hash keys: jitter needs no cryptographic quality, only spread.
pub(crate) fn jitter() -> f64 {
    let bits = RandomState::new().build_hasher().finish() >> 11;
    // 53 bits fit an f64 mantissa exactly.
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEPS: Backoff = Backoff {
        base: Duration::from_millis(500),
        cap: Duration::from_secs(60),
    };

    #[test]
    fn each_wait_lies_in_the_upper_half_of_its_doubled_step() {
        for retry in 0..6 {
            let full = STEPS.base * 2u32.pow(retry);
            assert_eq!(STEPS.wait_with(retry, 0.0), full / 2);
            assert_eq!(STEPS.wait_with(retry, 1.0), full);
            let mid = STEPS.wait_with(retry, 0.5);
            assert!(mid > full / 2 && mid < full, "{mid:?} for retry {retry}");
            for _ in 0..100 {
                let wait = STEPS.wait(retry);
                assert!(
                    wait >= full / 2 && wait <= full,
                    "{wait:?} for retry {retry}"
                );
            }
        }
    }

    #[test]
    fn waits_grow_with_each_retry_until_the_cap() {
        let lows: Vec<Duration> = (0..10).map(|r| STEPS.wait_with(r, 0.0)).collect();
        assert!(lows.windows(2).all(|w| w[1] >= w[0]), "{lows:?}");
        assert!(lows[3] > lows[2], "{lows:?}");
        assert_eq!(STEPS.wait_with(7, 1.0), STEPS.cap, "500 ms * 2^7 > 60 s");
        assert_eq!(STEPS.wait_with(7, 0.0), STEPS.cap / 2);
    }

    #[test]
    fn the_cap_holds_and_nothing_overflows() {
        assert_eq!(STEPS.wait_with(30, 1.0), STEPS.cap);
        assert_eq!(STEPS.wait_with(u32::MAX, 1.0), STEPS.cap);
        let huge = Backoff {
            base: Duration::MAX,
            cap: Duration::from_secs(6 * 3600),
        };
        assert_eq!(huge.wait_with(u32::MAX, 1.0), huge.cap);
        assert_eq!(STEPS.wait_with(1, f64::NAN), STEPS.base);
        assert_eq!(STEPS.wait_with(1, 7.0), STEPS.base * 2);
        assert_eq!(STEPS.wait_with(1, -3.0), STEPS.base);
    }

    #[test]
    fn jitter_is_in_range_and_varies() {
        let draws: Vec<f64> = (0..64).map(|_| jitter()).collect();
        assert!(draws.iter().all(|j| (0.0..1.0).contains(j)));
        assert!(draws.windows(2).any(|w| w[0] != w[1]));
    }
}
