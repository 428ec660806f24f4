//! When to try a request again: exponential backoff with jitter, and the
//! server's own `Retry-After` (RFC 9110 10.2.3). Which failures are worth a
//! retry is decided by `fetch::Fetcher`; this file only computes waits.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime};

/// No computed backoff is longer than this.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The wait before retry number `attempt + 1`: `base * 2^attempt`, capped at
/// `MAX_BACKOFF`, then scaled into its upper half by `jitter` (in `0..1`), so
/// waits never shrink below half the exponential step but do not synchronise.
pub fn backoff(base: Duration, attempt: u32, jitter: f64) -> Duration {
    let factor = 2u32.saturating_pow(attempt.min(16));
    let full = base.saturating_mul(factor).min(MAX_BACKOFF);
    let jitter = if jitter.is_nan() {
        0.0
    } else {
        jitter.clamp(0.0, 1.0)
    };
    full / 2 + (full / 2).mul_f64(jitter)
}

/// A number in `0..1` that differs from call to call, from std's per-process
/// random hash keys: jitter needs no cryptographic quality, only spread.
pub fn jitter() -> f64 {
    let bits = RandomState::new().build_hasher().finish() >> 11;
    // 53 bits fit an f64 mantissa exactly.
    bits as f64 / (1u64 << 53) as f64
}

/// How long a `Retry-After` value asks us to wait: delay-seconds, or an
/// HTTP-date measured from `now` (a past date means no wait). `None` when
/// the value is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for u64 is still "a very long time".
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_millis(500);

    #[test]
    fn backoff_doubles_within_bounds() {
        for attempt in 0..4 {
            let full = BASE * 2u32.pow(attempt);
            assert_eq!(backoff(BASE, attempt, 0.0), full / 2);
            assert_eq!(backoff(BASE, attempt, 1.0), full);
            let mid = backoff(BASE, attempt, 0.5);
            assert!(
                mid > full / 2 && mid < full,
                "{mid:?} for attempt {attempt}"
            );
        }
    }

    #[test]
    fn backoff_is_capped_and_never_overflows() {
        assert_eq!(backoff(BASE, 30, 1.0), MAX_BACKOFF);
        assert_eq!(backoff(Duration::MAX, u32::MAX, 1.0), MAX_BACKOFF);
        assert_eq!(backoff(BASE, 1, f64::NAN), BASE);
        assert_eq!(backoff(BASE, 1, 7.0), BASE * 2);
    }

    #[test]
    fn jitter_is_in_range_and_varies() {
        let draws: Vec<f64> = (0..64).map(|_| jitter()).collect();
        assert!(draws.iter().all(|j| (0.0..1.0).contains(j)));
        assert!(draws.windows(2).any(|w| w[0] != w[1]));
    }

    #[test]
    fn retry_after_seconds() {
        let now = SystemTime::UNIX_EPOCH;
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        let huge = parse_retry_after("99999999999999999999999", now);
        assert_eq!(huge, Some(Duration::from_secs(u64::MAX)));
    }

    #[test]
    fn retry_after_http_date() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        let later = parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now);
        assert_eq!(later, Some(Duration::from_secs(30)));
        let past = parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now);
        assert_eq!(past, Some(Duration::ZERO));
    }

    #[test]
    fn retry_after_garbage_is_none() {
        let now = SystemTime::UNIX_EPOCH;
        for value in ["", "-5", "1.5", "soon", "Wed, 32 Oct 2015 07:28:00 GMT"] {
            assert_eq!(parse_retry_after(value, now), None, "{value}");
        }
    }
}
