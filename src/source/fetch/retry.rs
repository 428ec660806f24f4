//! The server's own say on when to try a request again: `Retry-After`
//! (RFC 9110 10.2.3). Otherwise the wait is `backoff`'s; which failures are
//! worth a retry is decided by `fetch::Fetcher`.

use std::time::{Duration, SystemTime};

/// How long a `Retry-After` value asks us to wait: delay-seconds, or an
/// HTTP-date measured from `now` (a past date means no wait). `None` when
/// the value is neither.
pub(super) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
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
