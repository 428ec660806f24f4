//! The HTTP/1.1 connection handling under the router: every connection is
//! watched so slow and idle clients cannot hold the server.
//!
//! - A connection's first request must have its headers within
//!   `server.header_timeout_s` of the connection opening; a later request's
//!   headers within that long of its first byte.
//! - Between requests a connection may wait `server.idle_timeout_s`; a
//!   response the client stops reading is dropped after that long too.
//! - A request is answered within `server.request_timeout_s` (503 after).
//! - At most `server.max_connections` are open (lowered to fit the
//!   open-file limit). A new connection at the limit takes the place of the
//!   connection that has waited longest without a request; when every
//!   connection is answering a request, the new one gets a 503 and is
//!   closed. Both are counted in `/metrics` and logged at most every 10 s.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::Instant;
use tower::ServiceExt as _;
use tracing::{info, warn};

use crate::config::ServerConfig;
use crate::metrics;

/// File descriptors kept back from connections: the database pools, the
/// SMTP connections, log and template files, and new connections waiting
/// for the slot of one they displaced.
const RESERVED_FILES: u64 = 128;
/// New connections waiting at once for the slot of one they displaced.
const TAKEOVERS_AT_ONCE: usize = 64;
/// How often a watched connection rechecks its deadlines at least.
const WATCH_TICK: Duration = Duration::from_millis(250);
/// How long a new connection at the limit waits for the one it displaced.
const TAKEOVER_WAIT: Duration = Duration::from_secs(1);
/// Log lines about refused or shed connections at most this often.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// What a connection refused at the limit is told before it is closed.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 37\r\nConnection: close\r\n\r\nToo many connections; try again soon\n";

/// The timeouts and the connection limit in force.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Connections open at most.
    pub max_connections: usize,
    /// Time for a request's headers.
    pub header_timeout: Duration,
    /// Time a connection may wait between requests, or stall a response.
    pub idle_timeout: Duration,
    /// Time for the router to answer one request.
    pub request_timeout: Duration,
}

impl Bounds {
    /// The configured bounds, with the connection limit lowered to fit
    /// under the open-file limit `files` (the soft `RLIMIT_NOFILE`), if known.
    pub fn fitted(server: &ServerConfig, files: Option<u64>) -> Self {
        let wanted = server.max_connections;
        let max_connections = match files {
            Some(files) if (wanted as u64) + RESERVED_FILES > files => {
                let fits = files.saturating_sub(RESERVED_FILES).max(1);
                warn!(
                    max_connections = wanted,
                    open_file_limit = files,
                    using = fits,
                    "server.max_connections does not fit under the open-file limit (less {RESERVED_FILES} kept for the database, mail and files); raise the limit (LimitNOFILE= in the systemd unit, ulimit -n) or lower server.max_connections"
                );
                usize::try_from(fits).unwrap_or(wanted)
            }
            Some(files) => {
                info!(
                    max_connections = wanted,
                    open_file_limit = files,
                    "connection limit fits under the open-file limit"
                );
                wanted
            }
            None => {
                info!(
                    max_connections = wanted,
                    "open-file limit unknown; not checked"
                );
                wanted
            }
        };
        Self {
            max_connections,
            header_timeout: server.header_timeout,
            idle_timeout: server.idle_timeout,
            request_timeout: server.request_timeout,
        }
    }
}

/// The soft open-file limit of this process (Linux: `/proc/self/limits`).
pub fn open_file_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line.split_whitespace().nth(3)?;
    soft.parse().ok()
}

/// Milliseconds since the server started: what the connection clocks hold.
#[derive(Clone, Copy)]
struct Epoch(Instant);

impl Epoch {
    fn now(self) -> u64 {
        u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// What one connection is doing, shared by its socket, its service and the server.
struct Activity {
    epoch: Epoch,
    /// Requests being answered now.
    busy: AtomicUsize,
    /// When a byte last moved either way.
    last_io: AtomicU64,
    /// When the connection started waiting for a request (opened, or its
    /// last response was handed over).
    idle_since: AtomicU64,
    /// When the headers being waited for started (0: none yet); the first
    /// request's count from the connection opening.
    head_started: AtomicU64,
    /// Told to close (another connection takes its place, or shutdown).
    evict: Notify,
    /// Chosen to make room already: not to be chosen again.
    evicted: std::sync::atomic::AtomicBool,
}

impl Activity {
    fn new(epoch: Epoch) -> Self {
        let now = epoch.now().max(1);
        Self {
            epoch,
            busy: AtomicUsize::new(0),
            last_io: AtomicU64::new(now),
            idle_since: AtomicU64::new(now),
            head_started: AtomicU64::new(now),
            evict: Notify::new(),
            evicted: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn read_some(&self) {
        let now = self.epoch.now().max(1);
        self.last_io.store(now, Ordering::Relaxed);
        if self.busy.load(Ordering::Relaxed) == 0 {
            let _ =
                self.head_started
                    .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    fn wrote_some(&self) {
        self.last_io.store(self.epoch.now(), Ordering::Relaxed);
    }

    fn request_started(&self) {
        self.busy.fetch_add(1, Ordering::Relaxed);
        self.head_started.store(0, Ordering::Relaxed);
    }

    fn request_ended(&self) {
        self.idle_since.store(self.epoch.now(), Ordering::Relaxed);
        self.busy.fetch_sub(1, Ordering::Relaxed);
    }

    /// Since when this connection has waited without a request, if it has.
    fn waiting_since(&self) -> Option<u64> {
        let waiting =
            self.busy.load(Ordering::Relaxed) == 0 && !self.evicted.load(Ordering::Relaxed);
        waiting.then(|| {
            let head = self.head_started.load(Ordering::Relaxed);
            if head == 0 {
                self.idle_since.load(Ordering::Relaxed)
            } else {
                head
            }
        })
    }

    /// Why the connection must close now, if it must.
    fn overdue(&self, bounds: &Bounds) -> Option<&'static str> {
        if self.busy.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let now = self.epoch.now();
        let head = self.head_started.load(Ordering::Relaxed);
        let header_ms = millis(bounds.header_timeout);
        if head != 0 && now.saturating_sub(head) >= header_ms {
            return Some("header_timeout");
        }
        let quiet_since = self
            .idle_since
            .load(Ordering::Relaxed)
            .max(self.last_io.load(Ordering::Relaxed));
        (head == 0 && now.saturating_sub(quiet_since) >= millis(bounds.idle_timeout))
            .then_some("idle")
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A socket that tells its `Activity` when bytes move.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read_some();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote_some();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Ends a request's count on its connection, even if the request is dropped.
struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

/// Open connections, to find one to displace at the limit.
#[derive(Default)]
struct Registry {
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Activity>>>,
}

impl Registry {
    fn add(&self, activity: Arc<Activity>) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut open) = self.open.lock() {
            open.insert(id, activity);
        }
        id
    }

    fn remove(&self, id: u64) {
        if let Ok(mut open) = self.open.lock() {
            open.remove(&id);
        }
    }

    /// Tell the connection that has waited longest without a request to
    /// close; false when every connection is answering one.
    fn evict_longest_waiting(&self) -> bool {
        let Ok(open) = self.open.lock() else {
            return false;
        };
        let oldest = open
            .values()
            .filter_map(|a| a.waiting_since().map(|since| (since, a)))
            .min_by_key(|(since, _)| *since);
        match oldest {
            Some((_, activity)) => {
                activity.evicted.store(true, Ordering::Relaxed);
                // notify_one keeps the permit if the task is between polls.
                activity.evict.notify_one();
                true
            }
            None => false,
        }
    }

    fn evict_all(&self) {
        if let Ok(open) = self.open.lock() {
            for activity in open.values() {
                activity.evict.notify_one();
            }
        }
    }
}

/// Logs a count at most every `LOG_EVERY`.
struct RareLog {
    last: Mutex<Option<Instant>>,
    pending: AtomicU64,
}

impl RareLog {
    fn new() -> Self {
        Self {
            last: Mutex::new(None),
            pending: AtomicU64::new(0),
        }
    }

    /// Count one; returns how many to report now, if it is time to.
    fn tick(&self) -> Option<u64> {
        self.pending.fetch_add(1, Ordering::Relaxed);
        let mut last = self.last.lock().ok()?;
        if last.is_some_and(|t| t.elapsed() < LOG_EVERY) {
            return None;
        }
        *last = Some(Instant::now());
        Some(self.pending.swap(0, Ordering::Relaxed))
    }
}

/// What every connection task shares.
struct Shared {
    router: Router,
    bounds: Bounds,
    epoch: Epoch,
    registry: Registry,
    displaced_log: RareLog,
    refused_log: RareLog,
}

/// Serve `router` on `listener` within `bounds` until `shutdown` completes,
/// then let the requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    bounds: Bounds,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let shared = Arc::new(Shared {
        router,
        bounds,
        epoch: Epoch(Instant::now()),
        registry: Registry::default(),
        displaced_log: RareLog::new(),
        refused_log: RareLog::new(),
    });
    let slots = Arc::new(Semaphore::new(bounds.max_connections));
    let takeovers = Arc::new(Semaphore::new(TAKEOVERS_AT_ONCE));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors, or the peer left before accept:
                    // wait a moment rather than spin.
                    warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let shared = shared.clone();
        let stop = stop_rx.clone();
        if let Ok(permit) = slots.clone().try_acquire_owned() {
            tokio::spawn(async move {
                connection(&shared, stream, peer, stop).await;
                drop(permit);
            });
            continue;
        }
        // At the limit: make room, and wait for it beside the accept loop.
        let waiting = takeovers.clone().try_acquire_owned();
        let Ok(waiting) = waiting.map_err(drop).and_then(|w| {
            shared
                .registry
                .evict_longest_waiting()
                .then_some(w)
                .ok_or(())
        }) else {
            refuse(&shared, stream, peer);
            continue;
        };
        let slots = slots.clone();
        tokio::spawn(async move {
            let Some(permit) = take_a_slot(&shared, &slots).await else {
                drop(waiting);
                refuse(&shared, stream, peer);
                return;
            };
            drop(waiting);
            connection(&shared, stream, peer, stop).await;
            drop(permit);
        });
    }
    let _ = stop_tx.send(true);
    shared.registry.evict_all();
    // Every connection gives its slot back when it ends.
    let all = u32::try_from(bounds.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    Ok(())
}

/// Take the slot of the connection just told to make room.
async fn take_a_slot(
    shared: &Shared,
    slots: &Arc<Semaphore>,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    metrics::record_connection_shed("displaced");
    if let Some(count) = shared.displaced_log.tick() {
        warn!(
            count,
            max_connections = shared.bounds.max_connections,
            "connection limit reached: closed connections waiting without a request to make room"
        );
    }
    tokio::time::timeout(TAKEOVER_WAIT, slots.clone().acquire_owned())
        .await
        .ok()?
        .ok()
}

/// Tell a connection over the limit to come back later, and close it.
fn refuse(shared: &Shared, stream: TcpStream, peer: SocketAddr) {
    // The socket's buffer is empty: this short write completes or is skipped.
    let _ = stream.try_write(REFUSAL);
    drop(stream);
    metrics::record_connection_refused();
    if let Some(count) = shared.refused_log.tick() {
        warn!(
            count,
            client = %peer,
            max_connections = shared.bounds.max_connections,
            "connection limit reached with every connection busy: refused new connections with 503"
        );
    }
}

/// Serve one connection until it ends, times out, is displaced or shut down.
async fn connection(
    shared: &Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::new(shared.epoch));
    let id = shared.registry.add(activity.clone());
    metrics::record_connections_open(1);
    let io = TokioIo::new(Watched {
        stream,
        activity: activity.clone(),
    });
    let service = {
        let shared = shared.clone();
        let activity = activity.clone();
        hyper::service::service_fn(move |request: Request<Incoming>| {
            let shared = shared.clone();
            let guard = RequestGuard(activity.clone());
            activity.request_started();
            async move {
                let response = answer(&shared, request, peer).await;
                drop(guard);
                Ok::<_, Infallible>(response)
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The watcher below bounds headers itself (from the first byte of a
    // request after the first), so hyper's own timer stays off.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(true);
    let mut conn = std::pin::pin!(builder.serve_connection(io, service));
    let mut stopping = *stop.borrow();
    if stopping {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            _ = conn.as_mut() => break,
            () = tokio::time::sleep(WATCH_TICK) => {
                if let Some(reason) = activity.overdue(&shared.bounds) {
                    metrics::record_connection_shed(reason);
                    break;
                }
            }
            () = activity.evict.notified() => {
                if stopping {
                    continue;
                }
                if activity.busy.load(Ordering::Relaxed) == 0 {
                    break;
                }
                // Busy after all: finish this request, then close.
                conn.as_mut().graceful_shutdown();
            }
            changed = stop.changed(), if !stopping => {
                stopping = true;
                if changed.is_ok() {
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
    shared.registry.remove(id);
    metrics::record_connections_open(-1);
}

/// The router's answer to one request, within `request_timeout`.
async fn answer(shared: &Shared, request: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    let mut request = request.map(Body::new);
    request.extensions_mut().insert(ConnectInfo(peer));
    let call = shared.router.clone().oneshot(request);
    match tokio::time::timeout(shared.bounds.request_timeout, call).await {
        Ok(Ok(response)) => response,
        Ok(Err(never)) => match never {},
        Err(_) => {
            warn!(client = %peer, "request took longer than server.request_timeout_s; answered 503");
            let mut response = Response::new(Body::from("The request took too long; try again.\n"));
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            let headers = response.headers_mut();
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
    }
}
