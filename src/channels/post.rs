//! The channel poster: claims due `channel_posts` rows, records that each
//! request is about to leave, posts it with `Idempotency-Key` and
//! `webhook-id` headers (and a Standard Webhooks signature for `webhook`
//! channels), and records the answer. 2xx is sent; 429 and 503 wait as
//! `Retry-After` says (else the backoff); any other 4xx fails at once with the
//! body's reason; 5xx, timeouts and refused connections retry with the backoff
//! (with jitter) up to `mail.max_attempts`; a connection closed after the
//! request left, with no answer, leaves the row `unconfirmed` (it may have
//! been posted), never posted again on its own.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use tracing::{info, warn};

use super::payload;
use crate::backoff::Backoff;
use crate::clock::SharedClock;
use crate::config::{ChannelConfig, ChannelKind, Config};
use crate::metrics;
use crate::store::{ClaimedPost, Store, StoreError};

/// Bound on one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest `Retry-After` honoured; a longer one waits this long.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(6 * 3600);
/// How long a claim lasts before another process may take the row.
const LEASE: Duration = Duration::from_secs(120);
/// Rows claimed per round trip.
const BATCH: usize = 16;
/// Characters of a refusal's body kept as its reason.
const REASON_CHARS: usize = 300;

/// What a posting pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PostReport {
    /// Accepted by the receiver.
    pub sent: usize,
    /// Back in the queue for a later attempt.
    pub retrying: usize,
    /// Given up (a 4xx, or too many attempts).
    pub failed: usize,
    /// Sent with no answer: maybe posted, not posted again.
    pub unconfirmed: usize,
}

/// What to do with a post after one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The receiver took it.
    Sent,
    /// Try again: after the given wait, or the backoff's when `None`.
    Retry {
        /// `Retry-After`, when the answer had one.
        after: Option<Duration>,
        /// Why.
        reason: String,
    },
    /// Give up, with why.
    Failed(String),
    /// The request left and no answer came.
    Unconfirmed(String),
}

impl Outcome {
    fn name(&self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Retry { .. } => "retrying",
            Self::Failed(_) => "failed",
            Self::Unconfirmed(_) => "unconfirmed",
        }
    }
}

/// Decides from an answer's status, headers and body.
pub(crate) fn judge(
    status: StatusCode,
    headers: &HeaderMap,
    body: &str,
    now: DateTime<Utc>,
) -> Outcome {
    if status.is_success() {
        return Outcome::Sent;
    }
    let reason = format!("{status}: {}", reason_of(body));
    if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
        let after = headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, now));
        return Outcome::Retry { after, reason };
    }
    if status.is_client_error() {
        return Outcome::Failed(reason);
    }
    Outcome::Retry {
        after: None,
        reason,
    }
}

/// The body's first `REASON_CHARS` characters on one line.
fn reason_of(body: &str) -> String {
    let line = body.split_whitespace().collect::<Vec<_>>().join(" ");
    line.chars().take(REASON_CHARS).collect()
}

/// `Retry-After` as seconds or an HTTP date, capped at `MAX_RETRY_AFTER`.
pub(crate) fn retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at: DateTime<Utc> = httpdate::parse_http_date(value).ok()?.into();
            (at - now).to_std().unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// Posts queued channel posts.
pub struct Poster {
    store: Store,
    channels: HashMap<String, ChannelConfig>,
    client: reqwest::Client,
    clock: SharedClock,
    backoff: Backoff,
    max_attempts: u32,
}

impl Poster {
    /// A poster for the configured channels, retrying as `[mail]` says.
    pub fn new(store: Store, config: &Config, clock: SharedClock) -> anyhow::Result<Self> {
        // Err only means a provider is already installed, which is all we need.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .user_agent(format!(
                "Tidings/{} ({})",
                env!("CARGO_PKG_VERSION"),
                config.site.contact
            ))
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let channels = config
            .channels
            .iter()
            .map(|c| (c.name.clone(), c.clone()))
            .collect();
        Ok(Self {
            store,
            channels,
            client,
            clock,
            backoff: Backoff {
                base: config.mail.retry_base,
                cap: MAX_RETRY_AFTER,
            },
            max_attempts: config.mail.max_attempts,
        })
    }

    /// Posts every due row once; rows that must wait stay queued.
    pub async fn pass(&self) -> Result<PostReport, StoreError> {
        let mut report = PostReport::default();
        let mut last_post: HashMap<String, tokio::time::Instant> = HashMap::new();
        loop {
            let now = self.clock.now();
            let lease = chrono::Duration::from_std(LEASE).unwrap_or_default();
            let claimed = self.store.claim_posts(now, now + lease, BATCH).await?;
            if claimed.is_empty() {
                return Ok(report);
            }
            for post in claimed {
                self.pace(&post.channel, &mut last_post).await;
                let outcome = self.post_one(&post).await?;
                match outcome {
                    "sent" => report.sent += 1,
                    "retrying" => report.retrying += 1,
                    "failed" => report.failed += 1,
                    _ => report.unconfirmed += 1,
                }
            }
        }
    }

    /// Passes until nothing is due within `wait_up_to` (a `Retry-After` or a
    /// backoff shorter than that is waited for).
    pub async fn drain(&self, wait_up_to: Duration) -> Result<PostReport, StoreError> {
        let mut total = PostReport::default();
        loop {
            let report = self.pass().await?;
            total.sent += report.sent;
            total.failed += report.failed;
            total.unconfirmed += report.unconfirmed;
            let Some(next) = self.store.next_post_due().await? else {
                return Ok(total);
            };
            let wait = (next - self.clock.now()).to_std().unwrap_or(Duration::ZERO);
            if wait > wait_up_to {
                total.retrying += report.retrying;
                return Ok(total);
            }
            // Until the row's due instant, on the clock that set it.
            self.clock.sleep_until(next).await;
        }
    }

    /// Keeps a channel's posts `1 / rate_per_s` apart.
    async fn pace(&self, channel: &str, last: &mut HashMap<String, tokio::time::Instant>) {
        let Some(rate) = self.channels.get(channel).and_then(|c| c.rate_per_s) else {
            return;
        };
        let gap = Duration::from_secs_f64(1.0 / rate);
        if let Some(at) = last.get(channel) {
            tokio::time::sleep_until(*at + gap).await;
        }
        last.insert(channel.to_owned(), tokio::time::Instant::now());
    }

    /// Posts one claimed row and records the outcome; returns its name.
    async fn post_one(&self, post: &ClaimedPost) -> Result<&'static str, StoreError> {
        let now = self.clock.now();
        let outcome = match self.channels.get(&post.channel) {
            None => Outcome::Failed(format!("no channel named {:?} in the config", post.channel)),
            Some(channel) => {
                if !self.store.mark_requested(post.id, now).await? {
                    // Another process took the row over after our lease ran out.
                    return Ok("unconfirmed");
                }
                self.request(channel, post).await
            }
        };
        let outcome = self.give_up_after_max(outcome, post.attempts);
        let name = outcome.name();
        self.record(post, &outcome).await?;
        metrics::channel_post(&post.channel, name);
        Ok(name)
    }

    fn give_up_after_max(&self, outcome: Outcome, attempts: i64) -> Outcome {
        match outcome {
            Outcome::Retry { reason, .. } if attempts >= i64::from(self.max_attempts) => {
                Outcome::Failed(format!("{reason} (gave up after {attempts} attempts)"))
            }
            other => other,
        }
    }

    async fn record(&self, post: &ClaimedPost, outcome: &Outcome) -> Result<(), StoreError> {
        let now = self.clock.now();
        let store = &self.store;
        match outcome {
            Outcome::Sent => {
                info!(channel = %post.channel, key = %post.idem_key, "channel post sent");
                store.finish_post(post.id, "sent", None, None, now).await
            }
            Outcome::Retry { after, reason } => {
                let retry = u32::try_from(post.attempts.max(1) - 1).unwrap_or(u32::MAX);
                let wait = after.unwrap_or_else(|| self.backoff.wait(retry));
                let at = now + chrono::Duration::from_std(wait).unwrap_or_default();
                warn!(channel = %post.channel, reason = %reason, retry_at = %at, "channel post will be retried");
                store
                    .finish_post(post.id, "queued", Some(reason), Some(at), now)
                    .await
            }
            Outcome::Failed(reason) | Outcome::Unconfirmed(reason) => {
                warn!(channel = %post.channel, reason = %reason, outcome = outcome.name(), "channel post not sent");
                store
                    .finish_post(post.id, outcome.name(), Some(reason), None, now)
                    .await
            }
        }
    }

    /// Sends the request and judges the answer.
    async fn request(&self, channel: &ChannelConfig, post: &ClaimedPost) -> Outcome {
        let mut request = self
            .client
            .post(channel.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", &post.idem_key)
            .header("webhook-id", &post.idem_key);
        if channel.kind == ChannelKind::Webhook
            && let Some(secret) = &channel.secret
        {
            let timestamp = self.clock.now().timestamp();
            request = request
                .header("webhook-timestamp", timestamp.to_string())
                .header(
                    "webhook-signature",
                    payload::signature(secret, &post.idem_key, timestamp, &post.body),
                );
        }
        match request.body(post.body.clone()).send().await {
            Ok(response) => {
                let status = response.status();
                let headers = response.headers().clone();
                let body = response.text().await.unwrap_or_default();
                judge(status, &headers, &body, self.clock.now())
            }
            Err(e) if e.is_connect() || e.is_timeout() => Outcome::Retry {
                after: None,
                reason: format!("no answer: {}", root_cause(&e)),
            },
            Err(e) => Outcome::Unconfirmed(format!(
                "the request was sent but no answer came ({}); it may have been posted",
                root_cause(&e)
            )),
        }
    }
}

/// The innermost error's message.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .expect("a date")
            .with_timezone(&Utc)
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_a_date_and_capped() {
        assert_eq!(retry_after("7", at()), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_after("Thu, 01 Jan 2026 00:00:30 GMT", at()),
            Some(Duration::from_secs(30))
        );
        assert_eq!(retry_after("999999", at()), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after("soon", at()), None);
    }

    #[test]
    fn a_4xx_other_than_429_fails_at_once_with_the_body_as_reason() {
        let outcome = judge(
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            "bad\n card",
            at(),
        );
        assert_eq!(
            outcome,
            Outcome::Failed("400 Bad Request: bad card".to_owned())
        );
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "3".parse().expect("a header"));
        assert_eq!(
            judge(StatusCode::TOO_MANY_REQUESTS, &headers, "", at()),
            Outcome::Retry {
                after: Some(Duration::from_secs(3)),
                reason: "429 Too Many Requests: ".to_owned()
            }
        );
        assert!(matches!(
            judge(StatusCode::BAD_GATEWAY, &headers, "", at()),
            Outcome::Retry { after: None, .. }
        ));
    }
}
