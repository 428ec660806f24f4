//! Feed endpoints: bytes rendered once per change come from the `FeedCache`;
//! a request only picks the plain or pre-compressed copy and answers
//! conditional requests with `304`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::feeds::{self, ServedFeed};
use crate::metrics;

/// Readers poll; a short shared cache lifetime spares both sides.
const CACHE_CONTROL: HeaderValue = HeaderValue::from_static("public, max-age=300");

/// `GET /feeds/{name}.rss` and `.atom`. The request is taken whole (its
/// headers are only read), which spares the copy a `HeaderMap` extractor makes.
pub(super) async fn feed(
    State(state): State<Arc<AppState>>,
    Path(file): Path<String>,
    request: Request,
) -> Response {
    if !(file.ends_with(".rss") || file.ends_with(".atom")) {
        return StatusCode::NOT_FOUND.into_response();
    }
    serve_named(&state, &file, request.headers())
}

/// `GET /feeds.opml`.
pub(super) async fn opml(State(state): State<Arc<AppState>>, request: Request) -> Response {
    serve_named(&state, "feeds.opml", request.headers())
}

fn serve_named(state: &AppState, name: &str, headers: &HeaderMap) -> Response {
    let Some(feed) = state.feeds.get(name) else {
        return (StatusCode::NOT_FOUND, "no such feed\n").into_response();
    };
    let if_none_match = header_str(headers, header::IF_NONE_MATCH);
    let if_modified_since = header_str(headers, header::IF_MODIFIED_SINCE);
    let is_not_modified = feeds::not_modified(&feed, if_none_match, if_modified_since);
    metrics::record_feed_request(is_not_modified);
    if is_not_modified {
        return not_modified(&feed);
    }
    if accepts_gzip(header_str(headers, header::ACCEPT_ENCODING)) {
        let body = Body::from(feed.gzip.clone());
        return respond(&feed, StatusCode::OK, Some("gzip"), body);
    }
    respond(&feed, StatusCode::OK, None, Body::from(feed.body.clone()))
}

/// `304` with what RFC 9110 §15.4.5 asks of it: the `ETag`, `Cache-Control`
/// and `Vary` a `200` would carry, and no other representation metadata
/// (no `Content-Type`; no `Last-Modified`, which the `ETag` makes redundant).
fn not_modified(feed: &ServedFeed) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NOT_MODIFIED;
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, CACHE_CONTROL);
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if let Ok(etag) = HeaderValue::from_str(&feed.etag) {
        h.insert(header::ETAG, etag);
    }
    response
}

/// Headers this handler and the security layer set: reserved at once.
const RESPONSE_HEADERS: usize = 10;

fn respond(
    feed: &ServedFeed,
    status: StatusCode,
    encoding: Option<&'static str>,
    body: Body,
) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.reserve(RESPONSE_HEADERS);
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(feed.content_type),
    );
    h.insert(header::CACHE_CONTROL, CACHE_CONTROL);
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if let Ok(etag) = HeaderValue::from_str(&feed.etag) {
        h.insert(header::ETAG, etag);
    }
    if let Ok(date) = HeaderValue::from_str(&feed.last_modified_http) {
        h.insert(header::LAST_MODIFIED, date);
    }
    if let Some(encoding) = encoding {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
    }
    response
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// True when `Accept-Encoding` allows gzip (explicitly or by `*`) with a non-zero quality.
fn accepts_gzip(accept: Option<&str>) -> bool {
    let Some(accept) = accept else {
        return false;
    };
    accept.split(',').any(|part| {
        let mut pieces = part.split(';');
        let coding = pieces.next().unwrap_or_default().trim();
        let zero_quality = pieces.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !zero_quality
    })
}

#[cfg(test)]
mod tests {
    use super::accepts_gzip;

    #[test]
    fn gzip_is_chosen_only_when_the_client_allows_it() {
        assert!(accepts_gzip(Some("gzip")));
        assert!(accepts_gzip(Some("br;q=1.0, gzip;q=0.8")));
        assert!(accepts_gzip(Some("GZIP")));
        assert!(accepts_gzip(Some("*")));
        assert!(!accepts_gzip(None));
        assert!(!accepts_gzip(Some("br")));
        assert!(!accepts_gzip(Some("gzip;q=0")));
        assert!(!accepts_gzip(Some("identity")));
    }
}
