//! What keeps the forms safe: the client address (the socket peer, or
//! `X-Forwarded-For` only from `server.trusted_proxies`), in-memory rate limits
//! per client address, CSRF tokens (signed double submit: a random cookie and a
//! form field that is its HMAC) and signed admin session cookies with an expiry.
//! The per-address limit on confirmation emails lives in the database (`signup`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use axum::http::{HeaderMap, HeaderValue, header};
use chrono::{DateTime, Duration, Utc};

use super::AppState;
use crate::mail::token::random_hex;

/// The cookie holding the CSRF nonce.
const CSRF_COOKIE: &str = "tidings_csrf";
/// The admin session cookie.
pub const SESSION_COOKIE: &str = "tidings_admin";
/// How long an admin session lasts.
pub const SESSION_LIFETIME: Duration = Duration::hours(8);

/// At most `max` hits per client address in each `window`.
#[derive(Debug)]
pub struct RateLimiter {
    max: u32,
    window: Duration,
    hits: Mutex<HashMap<IpAddr, (DateTime<Utc>, u32)>>,
}

impl RateLimiter {
    /// A limiter of `max` per `window`.
    pub fn new(max: u32, window: Duration) -> Self {
        Self {
            max,
            window,
            hits: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a hit from `ip`; false when it is over the limit.
    pub fn allow(&self, ip: IpAddr, now: DateTime<Utc>) -> bool {
        let Ok(mut hits) = self.hits.lock() else {
            return false;
        };
        if hits.len() > 10_000 {
            hits.retain(|_, (start, _)| now - *start < self.window);
        }
        let entry = hits.entry(ip).or_insert((now, 0));
        if now - entry.0 >= self.window {
            *entry = (now, 0);
        }
        entry.1 += 1;
        entry.1 <= self.max
    }

    /// True when `ip` has no hits left, without counting one.
    pub fn exhausted(&self, ip: IpAddr, now: DateTime<Utc>) -> bool {
        let Ok(hits) = self.hits.lock() else {
            return true;
        };
        hits.get(&ip)
            .is_some_and(|(start, n)| now - *start < self.window && *n >= self.max)
    }
}

/// The limits one process keeps.
#[derive(Debug)]
pub struct Limits {
    /// `POST /subscribe` per client address.
    pub subscribe: RateLimiter,
    /// Failed admin sign-ins per client address.
    pub sign_in: RateLimiter,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            subscribe: RateLimiter::new(10, Duration::minutes(10)),
            sign_in: RateLimiter::new(5, Duration::minutes(15)),
        }
    }
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the
/// right-most address in `X-Forwarded-For` that is not itself a trusted proxy.
pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
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

/// The value of cookie `name`, if the request carries it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, `Secure` on an https site.
pub fn set_cookie(
    state: &AppState,
    name: &str,
    value: &str,
    path: &str,
    max_age: i64,
) -> HeaderValue {
    let secure = if state.config.site.base_url.scheme() == "https" {
        "; Secure"
    } else {
        ""
    };
    let text = format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

/// The CSRF form value for this request, and the cookie to set when the
/// request had none (or a malformed one).
pub fn csrf_issue(state: &AppState, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    let existing = cookie(headers, CSRF_COOKIE)
        .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned);
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
pub fn csrf_ok(state: &AppState, headers: &HeaderMap, field: &str) -> bool {
    cookie(headers, CSRF_COOKIE)
        .filter(|nonce| nonce.len() == 32)
        .is_some_and(|nonce| state.signing_key.verify_signed("csrf", &[nonce], field))
}

/// A session cookie value valid until `expires`: `{expiry}.{MAC}`. The MAC also
/// covers the password hash, so changing the password ends every session.
pub fn session_value(state: &AppState, password_hash: &str, expires: DateTime<Utc>) -> String {
    let exp = expires.timestamp().to_string();
    let mac = state
        .signing_key
        .sign("admin-session", &[&exp, password_hash]);
    format!("{exp}.{mac}")
}

/// True when the request carries an unexpired, correctly signed session.
pub fn session_ok(state: &AppState, headers: &HeaderMap, password_hash: &str) -> bool {
    let Some((exp, mac)) = cookie(headers, SESSION_COOKIE).and_then(|v| v.split_once('.')) else {
        return false;
    };
    let Ok(expires) = exp.parse::<i64>() else {
        return false;
    };
    state
        .signing_key
        .verify_signed("admin-session", &[exp, password_hash], mac)
        && state.clock.now().timestamp() < expires
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
        assert!(limiter.exhausted(ip, t));
        assert!(limiter.allow(ip, t + Duration::minutes(1)));
    }
}
