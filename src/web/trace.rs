//! One span per request, `request{method, matched_path, status, latency_ms}`,
//! through tower-http's `TraceLayer` on the router. Handlers run inside it, so
//! what they log (a 5xx's cause in `error.rs`) carries the route; when the
//! response is ready its status and latency are recorded on the span and one
//! line, `request finished`, is written at info under the target
//! `tidings::request` (`RUST_LOG=info,tidings::request=warn` leaves it out).

use std::time::Duration;

use axum::body::Body;
use axum::extract::MatchedPath;
use axum::http::{Request, Response};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::TraceLayer;
use tracing::Span;
use tracing::field::Empty;

/// The layer as the router takes it; failures are not logged again here,
/// since `WebError` logs a 5xx's cause where it is known.
pub(super) type RequestTrace = TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    fn(&Request<Body>) -> Span,
    (),
    fn(&Response<Body>, Duration, &Span),
    (),
    (),
    (),
>;

/// The request-span layer.
pub(super) fn layer() -> RequestTrace {
    TraceLayer::new_for_http()
        .make_span_with(request_span as fn(&Request<Body>) -> Span)
        .on_request(())
        .on_response(finished as fn(&Response<Body>, Duration, &Span))
        .on_body_chunk(())
        .on_eos(())
        .on_failure(())
}

/// `request{method, matched_path}`: the route's pattern (`/feeds/{file}`),
/// never the path asked for, so no token from a link reaches the log.
fn request_span(request: &Request<Body>) -> Span {
    let matched_path = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    tracing::info_span!(
        target: "tidings::request",
        "request",
        method = %request.method(),
        matched_path,
        status = Empty,
        latency_ms = Empty,
    )
}

/// Records the status and latency on the span and logs the request once.
fn finished(response: &Response<Body>, latency: Duration, span: &Span) {
    let latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
    span.record("status", response.status().as_u16());
    span.record("latency_ms", latency_ms);
    tracing::info!(target: "tidings::request", "request finished");
}
