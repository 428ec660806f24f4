//! What keeps the forms safe: the client address (the socket peer, or
//! `X-Forwarded-For` only from `server.trusted_proxies`), in-memory rate limits
//! per client address and per account, the bound on password checks running
//! at once, CSRF tokens (signed double submit: a random cookie and a form
//! field that is its HMAC) and admin session tokens (random, kept in the
//! store, bound to the password). Cookies are parsed and built by the
//! `cookie` crate under axum-extra's jar (`forms::with_cookie` sets them).
//! The per-address limit on confirmation emails lives in the database
//! (`signup`).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use axum::http::{HeaderMap, header};
use axum_extra::extract::cookie::{Cookie, SameSite};
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use super::AppState;
use crate::mail::token::random_hex;

/// The cookie holding the CSRF nonce.
const CSRF_COOKIE: &str = "tidings_csrf";
/// The admin session cookie.
pub(super) const SESSION_COOKIE: &str = "tidings_admin";
/// How long an admin session lasts.
pub(super) const SESSION_LIFETIME: Duration = Duration::hours(8);

/// At most `max` hits per key (a client address, an account) in each `window`.
#[derive(Debug)]
pub struct RateLimiter<K = IpAddr> {
    max: u32,
    window: Duration,
    hits: Mutex<HashMap<K, (DateTime<Utc>, u32)>>,
}

impl<K: Hash + Eq + Copy> RateLimiter<K> {
    /// A limiter of `max` per `window`.
    pub fn new(max: u32, window: Duration) -> Self {
        Self {
            max,
            window,
            hits: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a hit from `key`; false when it is over the limit.
    pub fn allow(&self, key: K, now: DateTime<Utc>) -> bool {
        let Ok(mut hits) = self.hits.lock() else {
            return false;
        };
        let entry = self.current(&mut hits, key, now);
        entry.1 += 1;
        entry.1 <= self.max
    }

    /// Takes one of `key`'s hits before the work it pays for; false (and
    /// nothing taken) when none is left. Taking and checking are one step,
    /// so a burst of concurrent requests cannot all pass the check first.
    pub(crate) fn reserve(&self, key: K, now: DateTime<Utc>) -> bool {
        let Ok(mut hits) = self.hits.lock() else {
            return false;
        };
        let entry = self.current(&mut hits, key, now);
        if entry.1 >= self.max {
            return false;
        }
        entry.1 += 1;
        true
    }

    /// Gives back a hit `reserve` took (the work turned out not to count).
    pub fn release(&self, key: K, now: DateTime<Utc>) {
        if let Ok(mut hits) = self.hits.lock() {
            let entry = self.current(&mut hits, key, now);
            entry.1 = entry.1.saturating_sub(1);
        }
    }

    /// How long until `key`'s window starts again (at least a second).
    pub(crate) fn retry_after(&self, key: K, now: DateTime<Utc>) -> Duration {
        let left = self
            .hits
            .lock()
            .ok()
            .and_then(|hits| hits.get(&key).map(|(start, _)| *start + self.window - now))
            .unwrap_or(self.window);
        left.max(Duration::seconds(1))
    }

    /// `key`'s entry in the current window, starting a new window when the
    /// last one ended; drops ended windows when the map grows large.
    fn current<'a>(
        &self,
        hits: &'a mut HashMap<K, (DateTime<Utc>, u32)>,
        key: K,
        now: DateTime<Utc>,
    ) -> &'a mut (DateTime<Utc>, u32) {
        if hits.len() > 10_000 {
            hits.retain(|_, (start, _)| now - *start < self.window);
        }
        let entry = hits.entry(key).or_insert((now, 0));
        if now - entry.0 >= self.window {
            *entry = (now, 0);
        }
        entry
    }
}

/// Password checks that may run at once, server-wide: each holds the
/// hash's memory (19 MiB with Tidings' parameters, at most
/// `password::MAX_MEMORY_KIB`), so this bounds what sign-in can take.
pub(super) const PASSWORD_CHECKS_AT_ONCE: usize = 2;
/// How long a sign-in waits for a free check before it is told to retry.
pub(super) const PASSWORD_CHECK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The limits one process keeps.
#[derive(Debug)]
pub struct Limits {
    /// `POST /subscribe` per client address.
    pub subscribe: RateLimiter,
    /// Sign-in attempts per client address (a success gives its attempt back).
    pub sign_in: RateLimiter,
    /// Sign-in attempts per account, from every address together.
    pub sign_in_account: RateLimiter<super::accounts::AccountKey>,
    /// Password checks running or queued now.
    pub password_checks: Semaphore,
    /// The threads that run them.
    pub checker: crate::password::Checker,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            subscribe: RateLimiter::new(10, Duration::minutes(10)),
            sign_in: RateLimiter::new(5, Duration::minutes(15)),
            sign_in_account: RateLimiter::new(30, Duration::minutes(15)),
            password_checks: Semaphore::new(PASSWORD_CHECKS_AT_ONCE),
            checker: crate::password::Checker::start(PASSWORD_CHECKS_AT_ONCE),
        }
    }
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the
/// right-most address in `X-Forwarded-For` that is not itself a trusted proxy.
pub(super) fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer.ip()) {
        return peer.ip();
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|part| part.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !trusted.contains(ip))
        .unwrap_or(peer.ip())
}

/// The value of cookie `name`, if the request carries it, parsed by the
/// `cookie` crate (a pair it cannot read is skipped, never an error). When the
/// name comes twice the first wins: browsers list the cookie with the longer
/// path first (RFC 6265 §5.4), and the jar's map would keep the last.
pub(super) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse_encoded)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// A cookie to set: `HttpOnly`, `SameSite=Strict`, `Path`, `Max-Age`, and
/// `Secure` on an https site.
pub(super) fn set_cookie(
    state: &AppState,
    name: &str,
    value: &str,
    path: &str,
    max_age: i64,
) -> Cookie<'static> {
    let secure = state.config.site.base_url.scheme() == "https";
    Cookie::build((name.to_owned(), value.to_owned()))
        .path(path.to_owned())
        .max_age(cookie::time::Duration::seconds(max_age))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .build()
}

/// The CSRF form value for this request, and the cookie to set when the
/// request had none (or a malformed one).
pub(super) fn csrf_issue(
    state: &AppState,
    headers: &HeaderMap,
) -> (String, Option<Cookie<'static>>) {
    let existing = cookie(headers, CSRF_COOKIE)
        .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()));
    let (nonce, set) = match existing {
        Some(nonce) => (nonce, None),
        None => {
            // Without randomness, fall back to a value no form will match.
            let nonce = random_hex(16).unwrap_or_default();
            let path = state.config.site.base_url.path().to_owned();
            let set = set_cookie(state, CSRF_COOKIE, &nonce, &path, 86_400);
            (nonce, Some(set))
        }
    };
    (state.signing_key.sign("csrf", &[&nonce]), set)
}

/// True when the form's `field` is the MAC of the request's CSRF cookie.
pub(super) fn csrf_ok(state: &AppState, headers: &HeaderMap, field: &str) -> bool {
    cookie(headers, CSRF_COOKIE)
        .filter(|nonce| nonce.len() == 32)
        .is_some_and(|nonce| state.signing_key.verify_signed("csrf", &[&nonce], field))
}

/// What a session is bound to: a MAC of the admin password (or of its
/// configured hash), so a new password ends every session, on every replica.
pub(super) fn session_credential(state: &AppState) -> Option<String> {
    let admin = &state.config.admin;
    let secret = admin
        .password
        .as_deref()
        .or(admin.password_hash.as_deref())?;
    Some(state.signing_key.sign("admin-credential", &[secret]))
}

/// A new session token for the cookie.
pub(super) fn new_session_token() -> Option<String> {
    random_hex(32).ok()
}

/// The stored id of a session token: its SHA-256, so the table alone signs nobody in.
pub(super) fn session_id(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The stored id of the session this request's cookie names, if it names one.
pub(super) fn request_session_id(headers: &HeaderMap) -> Option<String> {
    cookie(headers, SESSION_COOKIE)
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|token| session_id(&token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.7".parse().unwrap(),
        );
        let from_proxy = SocketAddr::new(proxy, 1234);
        let direct: SocketAddr = "192.0.2.1:1234".parse().unwrap();
        assert_eq!(client_ip(direct, &headers, &[proxy]), direct.ip());
        assert_eq!(
            client_ip(from_proxy, &headers, &[proxy]),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_ip(from_proxy, &HeaderMap::new(), &[proxy]), proxy);
    }

    #[test]
    fn the_limiter_allows_max_per_window() {
        let limiter = RateLimiter::new(2, Duration::minutes(1));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t = chrono::DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        assert!(limiter.allow(ip, t));
        assert!(limiter.allow(ip, t));
        assert!(!limiter.allow(ip, t));
        assert!(limiter.allow(ip, t + Duration::minutes(1)));
    }

    #[test]
    fn reserving_stops_at_max_and_a_release_gives_one_back() {
        let limiter = RateLimiter::new(2, Duration::minutes(1));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t = chrono::DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        assert!(limiter.reserve(ip, t));
        assert!(limiter.reserve(ip, t));
        assert!(!limiter.reserve(ip, t));
        assert!(
            !limiter.reserve(ip, t),
            "a refusal takes nothing, and gives nothing"
        );
        limiter.release(ip, t);
        assert!(limiter.reserve(ip, t));
        assert!(!limiter.reserve(ip, t));
        assert_eq!(
            limiter.retry_after(ip, t + Duration::seconds(20)),
            Duration::seconds(40)
        );
        assert!(limiter.reserve(ip, t + Duration::minutes(1)));
    }
}
