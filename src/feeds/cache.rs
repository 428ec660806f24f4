//! The served-feed cache: feeds are checked, compressed and given an ETag once
//! per change, then served from memory. Publishing builds a new map and swaps
//! it in, so readers never wait for rendering. It also decides conditional
//! GETs (RFC 9110 §13); reading headers and writing responses is `web::feeds`'s.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

use super::RenderedFeed;
use super::check::{FeedCheckError, check};

/// One feed as served: its bytes, gzipped bytes and validators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedFeed {
    /// The document.
    pub body: Bytes,
    /// The document gzipped, compressed once at publication.
    pub gzip: Bytes,
    /// Strong ETag, quoted, derived from a hash of `body`.
    pub etag: String,
    /// When `body` last changed, in whole seconds (HTTP dates have no fractions).
    pub last_modified: DateTime<Utc>,
    /// `last_modified` as an HTTP-date, formatted once rather than per request.
    pub last_modified_http: String,
    /// HTTP content type, with charset.
    pub content_type: &'static str,
}

impl ServedFeed {
    /// Prepare a checked feed for serving, first published at `now`.
    fn new(feed: RenderedFeed, now: DateTime<Utc>) -> Self {
        let etag = etag_of(&feed.body);
        let gzip = gzip(&feed.body);
        let last_modified = whole_seconds(now);
        Self {
            body: Bytes::from(feed.body),
            gzip: Bytes::from(gzip),
            etag,
            last_modified,
            last_modified_http: httpdate::fmt_http_date(last_modified.into()),
            content_type: feed.content_type,
        }
    }
}

/// A feed that failed its check at publication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedFeed {
    /// Its file name.
    pub file_name: String,
    /// Why it failed.
    pub reason: FeedCheckError,
    /// True when an earlier good version stays in service.
    pub kept_previous: bool,
}

/// What one publication did, by file name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishReport {
    /// Feeds now served with a new body (and so a new ETag and Last-Modified).
    pub changed: Vec<String>,
    /// Feeds whose body was identical to the one served; validators kept.
    pub unchanged: Vec<String>,
    /// Feeds that failed the check and were not published.
    pub rejected: Vec<RejectedFeed>,
    /// Feeds served before that this rendering no longer has (a category gone).
    pub removed: Vec<String>,
}

type FeedMap = HashMap<String, Arc<ServedFeed>>;

/// The feeds in service; cheap to clone, shared between the web layer and the
/// task that publishes after each change.
#[derive(Debug, Clone, Default)]
pub struct FeedCache {
    /// The current map, replaced whole by `publish`; the lock is held only to
    /// read or swap the pointer.
    feeds: Arc<RwLock<Arc<FeedMap>>>,
    /// Serialises publications, so each compares against the map it replaces.
    publishing: Arc<Mutex<()>>,
}

impl FeedCache {
    /// An empty cache: every feed is absent until the first publication.
    pub fn new() -> Self {
        Self::default()
    }

    /// Check each rendered feed and put the good ones in service. A feed that
    /// fails keeps its last good version (or stays absent) and is logged; an
    /// unchanged body keeps its ETag and Last-Modified; a changed one gets `now`.
    pub fn publish(&self, rendered: Vec<RenderedFeed>, now: DateTime<Utc>) -> PublishReport {
        let _publishing = self
            .publishing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let current = self.current();
        let mut next = FeedMap::with_capacity(rendered.len());
        let mut report = PublishReport::default();
        for feed in rendered {
            let name = feed.file_name.clone();
            if let Some(served) = publish_one(&mut report, feed, current.get(&name), now) {
                next.insert(name, served);
            }
        }
        report.removed = (current.keys())
            .filter(|name| !next.contains_key(*name))
            .cloned()
            .collect();
        report.removed.sort();
        *self.feeds.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(next);
        report
    }

    /// The feed served under `file_name` (`all.rss`, `feeds.opml`, …), if any.
    pub fn get(&self, file_name: &str) -> Option<Arc<ServedFeed>> {
        let feeds = self.feeds.read().unwrap_or_else(PoisonError::into_inner);
        feeds.get(file_name).cloned()
    }

    /// File names of every feed in service, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.current().keys().cloned().collect();
        names.sort();
        names
    }

    /// True when a GET with these request headers should get `304 Not
    /// Modified`; see [`not_modified`].
    pub fn conditional(
        &self,
        feed: &ServedFeed,
        if_none_match: Option<&str>,
        if_modified_since: Option<&str>,
    ) -> bool {
        not_modified(feed, if_none_match, if_modified_since)
    }

    /// The map in service now.
    fn current(&self) -> Arc<FeedMap> {
        Arc::clone(&self.feeds.read().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The version of one feed to serve next: the served one when the body is
/// the same (it passed its check already, and keeps its validators), else
/// the new one if it passes, else the previous one, if any.
fn publish_one(
    report: &mut PublishReport,
    feed: RenderedFeed,
    previous: Option<&Arc<ServedFeed>>,
    now: DateTime<Utc>,
) -> Option<Arc<ServedFeed>> {
    if let Some(served) =
        previous.filter(|s| s.body == feed.body && s.content_type == feed.content_type)
    {
        report.unchanged.push(feed.file_name);
        return Some(Arc::clone(served));
    }
    match check(&feed) {
        Ok(_) => {
            report.changed.push(feed.file_name.clone());
            Some(Arc::new(ServedFeed::new(feed, now)))
        }
        Err(reason) => reject(report, feed.file_name, reason, previous),
    }
}

/// Record and log a feed that failed; the previous version, if any, stays.
fn reject(
    report: &mut PublishReport,
    file_name: String,
    reason: FeedCheckError,
    previous: Option<&Arc<ServedFeed>>,
) -> Option<Arc<ServedFeed>> {
    let kept_previous = previous.is_some();
    tracing::warn!(
        feed = %file_name,
        reason = %reason,
        kept_previous,
        "feed failed its check and was not published"
    );
    report.rejected.push(RejectedFeed {
        file_name,
        reason,
        kept_previous,
    });
    previous.cloned()
}

/// Decide a conditional GET by RFC 9110 §13.2.2: when `If-None-Match` is
/// present it alone decides (weak comparison, `*`, lists); otherwise
/// `If-Modified-Since` does, and a date that does not parse is ignored.
pub fn not_modified(
    feed: &ServedFeed,
    if_none_match: Option<&str>,
    if_modified_since: Option<&str>,
) -> bool {
    if let Some(header) = if_none_match {
        return etag_list_matches(header, &feed.etag);
    }
    let Some(since) = if_modified_since.and_then(|h| httpdate::parse_http_date(h.trim()).ok())
    else {
        return false;
    };
    feed.last_modified <= DateTime::<Utc>::from(since)
}

/// True when the `If-None-Match` value is `*` or lists a tag that weakly
/// matches `etag` (RFC 9110 §8.8.3.2: `W/` prefixes are ignored). Parsing
/// stops at the first malformed member, which then matches nothing.
fn etag_list_matches(header: &str, etag: &str) -> bool {
    if header.trim() == "*" {
        return true;
    }
    let ours = opaque_tag(etag);
    let mut rest = header;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return false;
        }
        let tag = rest.strip_prefix("W/").unwrap_or(rest);
        let Some(inner) = tag.strip_prefix('"') else {
            return false;
        };
        let Some(end) = inner.find('"') else {
            return false;
        };
        if Some(&inner[..end]) == ours {
            return true;
        }
        rest = &inner[end + 1..];
    }
}

/// The text between the quotes of an entity tag, ignoring a `W/` prefix.
fn opaque_tag(etag: &str) -> Option<&str> {
    let tag = etag.strip_prefix("W/").unwrap_or(etag);
    tag.strip_prefix('"')?.strip_suffix('"')
}

/// A strong ETag: the first 128 bits of the body's SHA-256, hex, quoted.
fn etag_of(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    format!("\"{}\"", hex::encode(&digest[..16]))
}

/// The body gzipped. The gzip header's mtime is 0, so equal bodies compress
/// to equal bytes.
fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::default());
    encoder
        .write_all(body)
        .and_then(|()| encoder.finish())
        .expect("writing into a Vec cannot fail")
}

/// `at` without its fraction of a second.
fn whole_seconds(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use chrono::{Duration, TimeZone};
    use flate2::read::GzDecoder;

    use super::*;
    use crate::feeds::tests::{render_one, resource, site};
    use crate::model::Resource;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap() + Duration::seconds(seconds)
    }

    fn all_rss(resources: &[Resource]) -> RenderedFeed {
        render_one(
            &site("https://feeds.example.org/"),
            resources,
            &[],
            "all.rss",
        )
    }

    fn broken(file_name: &str) -> RenderedFeed {
        RenderedFeed {
            file_name: file_name.into(),
            content_type: crate::feeds::RSS_CONTENT_TYPE,
            body: b"<rss><channel>".to_vec(),
        }
    }

    #[test]
    fn publishes_checked_feeds_with_gzip_and_validators() {
        let cache = FeedCache::new();
        let feed = all_rss(&[resource(1, "A", "Leaflets")]);
        let now = at(0) + Duration::milliseconds(750);
        let report = cache.publish(vec![feed.clone()], now);
        assert_eq!(report.changed, ["all.rss"]);
        let served = cache.get("all.rss").unwrap();
        assert_eq!(served.body, feed.body);
        let mut unzipped = Vec::new();
        GzDecoder::new(&served.gzip[..])
            .read_to_end(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, feed.body);
        assert!(served.gzip.len() < served.body.len());
        assert!(served.etag.starts_with('"') && served.etag.ends_with('"'));
        assert!(!served.etag.starts_with("W/"));
        assert_eq!(served.last_modified, at(0), "whole seconds");
        assert_eq!(served.last_modified_http, "Wed, 01 May 2024 12:00:00 GMT");
        assert_eq!(served.content_type, "application/rss+xml; charset=utf-8");
        assert_eq!(cache.names(), ["all.rss"]);
        assert!(cache.get("other.rss").is_none());
    }

    #[test]
    fn unchanged_body_keeps_etag_and_last_modified() {
        let cache = FeedCache::new();
        let resources = [resource(1, "A", "Leaflets")];
        cache.publish(vec![all_rss(&resources)], at(0));
        let first = cache.get("all.rss").unwrap();
        let report = cache.publish(vec![all_rss(&resources)], at(60));
        assert_eq!(report.unchanged, ["all.rss"]);
        let second = cache.get("all.rss").unwrap();
        assert_eq!((&second.etag, second.last_modified), (&first.etag, at(0)));

        let changed = [resource(2, "B", "Leaflets"), resource(1, "A", "Leaflets")];
        let report = cache.publish(vec![all_rss(&changed)], at(120));
        assert_eq!(report.changed, ["all.rss"]);
        let third = cache.get("all.rss").unwrap();
        assert_ne!(third.etag, first.etag);
        assert_eq!(third.last_modified, at(120));
    }

    #[test]
    fn a_broken_feed_keeps_the_last_good_one_in_service() {
        let cache = FeedCache::new();
        let good = all_rss(&[resource(1, "A", "Leaflets")]);
        cache.publish(vec![good.clone()], at(0));
        let report = cache.publish(vec![broken("all.rss"), broken("new.rss")], at(60));
        assert_eq!(report.rejected.len(), 2);
        assert!(report.rejected[0].kept_previous);
        assert!(!report.rejected[1].kept_previous);
        assert!(report.changed.is_empty() && report.removed.is_empty());
        let served = cache.get("all.rss").unwrap();
        assert_eq!(served.body, good.body);
        assert_eq!(served.last_modified, at(0));
        assert!(cache.get("new.rss").is_none(), "never good, never served");
    }

    #[test]
    fn feeds_no_longer_rendered_are_removed() {
        let cache = FeedCache::new();
        let mut gone = all_rss(&[]);
        gone.file_name = "gone.rss".into();
        cache.publish(vec![all_rss(&[]), gone], at(0));
        let report = cache.publish(vec![all_rss(&[])], at(1));
        assert_eq!(report.removed, ["gone.rss"]);
        assert_eq!(cache.names(), ["all.rss"]);
    }

    #[test]
    fn clones_share_the_feeds() {
        let cache = FeedCache::new();
        let reader = cache.clone();
        cache.publish(vec![all_rss(&[])], at(0));
        assert!(reader.get("all.rss").is_some());
    }

    fn served(etag: &str) -> ServedFeed {
        ServedFeed {
            body: Bytes::from_static(b"x"),
            gzip: Bytes::new(),
            etag: etag.into(),
            last_modified: Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap(),
            last_modified_http: "Wed, 01 May 2024 12:00:00 GMT".into(),
            content_type: crate::feeds::RSS_CONTENT_TYPE,
        }
    }

    #[test]
    fn if_none_match_uses_weak_comparison_lists_and_star() {
        let feed = served("\"abc\"");
        let hit = |h: &str| not_modified(&feed, Some(h), None);
        assert!(hit("\"abc\""));
        assert!(hit("W/\"abc\""));
        assert!(hit("\"x\", \"abc\""));
        assert!(hit("\"x\",W/\"abc\" , \"y\""));
        assert!(hit("*"));
        assert!(
            hit("\"a,b\", \"abc\""),
            "commas inside a tag do not split it"
        );
        assert!(!hit("\"abd\""));
        assert!(!hit("abc"));
        assert!(!hit(""));
        assert!(!hit("\"abc"));
    }

    #[test]
    fn if_none_match_wins_over_if_modified_since() {
        let feed = served("\"abc\"");
        let later = "Thu, 01 May 2025 12:00:00 GMT";
        assert!(!not_modified(&feed, Some("\"old\""), Some(later)));
        assert!(not_modified(&feed, None, Some(later)));
        let earlier = "Wed, 01 May 2024 11:59:59 GMT";
        assert!(not_modified(&feed, Some("\"abc\""), Some(earlier)));
    }

    #[test]
    fn if_modified_since_compares_whole_seconds_and_ignores_bad_dates() {
        let feed = served("\"abc\"");
        let since = |h: &str| not_modified(&feed, None, Some(h));
        assert!(
            since("Wed, 01 May 2024 12:00:00 GMT"),
            "equal is not modified"
        );
        assert!(since("Wednesday, 01-May-24 12:00:01 GMT"), "RFC 850 form");
        assert!(since("Wed May  1 12:00:01 2024"), "asctime form");
        assert!(!since("Wed, 01 May 2024 11:59:59 GMT"));
        assert!(!since("yesterday"));
        assert!(!since("2024-05-01T12:00:00Z"));
        assert!(!not_modified(&feed, None, None));
        let cache = FeedCache::new();
        assert!(cache.conditional(&feed, Some("W/\"abc\""), None));
    }
}
