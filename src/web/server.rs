//! The HTTP/1.1 connection handling under the router: every connection is
//! watched so slow and idle clients cannot hold the server.
//!
//! - A connection's first request must have its headers within
//!   `server.header_timeout_s` of the connection opening; a later request's
//!   headers within that long of its first byte.
//! - Between requests a connection may wait `server.idle_timeout_s`; a
//!   response the client stops reading is dropped after that long too.
//! - A request is answered within `server.request_timeout_s` (503 after).
//! - At most `server.max_connections` are kept open (lowered to fit the
//!   open-file limit). A new connection over the limit is served at once and
//!   the connection that has waited longest without a request is closed to
//!   make room; while every connection is answering a request (or a burst
//!   outpaces the closing), up to `OVER_LIMIT` more are let in and up to
//!   `WAITING_AT_ONCE` wait a second for a slot, and then new ones get a 503
//!   and are closed. Both are counted in `/metrics` and logged at most every
//!   10 s.

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

/// File descriptors kept back from connections: 64 for the database pools,
/// the SMTP connections, log and template files, plus the connections over
/// the limit and those waiting for a slot.
pub const RESERVED_FILES: u64 = 64 + (OVER_LIMIT + WAITING_AT_ONCE) as u64;
/// Connections let in over the limit at most: new ones whose displaced
/// connection is still closing, or arriving while every connection is busy.
const OVER_LIMIT: usize = 64;
/// New connections that wait (at most `SLOT_WAIT`) for a slot when even the
/// room over the limit is taken, as in a burst of hundreds at once. Waiting
/// costs one file each; 128 was too few for 1,000 connections opened at once
/// on a busy 2-core machine (a feed reader's poll among them was refused).
const WAITING_AT_ONCE: usize = 512;
/// How long such a connection waits before it is refused.
const SLOT_WAIT: Duration = Duration::from_secs(1);
/// Connections told to close at most for each new one over the limit.
const MAKE_ROOM_AT_ONCE: usize = 4;
/// Log lines about refused or shed connections at most this often.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// What a connection refused at the limit is told before it is closed.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 37\r\nConnection: close\r\n\r\nToo many connections; try again soon\n";

/// The timeouts and the connection limit in force.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bounds {
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
    pub(super) fn fitted(server: &ServerConfig, files: Option<u64>) -> Self {
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

/// Connections the kernel may hold for `accept` (capped by
/// `net.core.somaxconn`): a burst of clients reconnecting at once must not
/// overflow the queue, or the kernel drops their SYNs and even a well-behaved
/// client waits a second to retry.
const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `address` with a deep accept queue.
pub fn bind(address: SocketAddr) -> io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

/// The listener `tidings serve` runs on: `address` bound, with an error that
/// names the options to change it; the bound address (the port the system
/// chose for port 0) is logged and, with `ready_file`, written there in one
/// step (for scripts and tests: connections wait in the accept queue until
/// the server takes them).
pub(crate) fn listen_for_serve(
    address: SocketAddr,
    ready_file: Option<&std::path::Path>,
) -> anyhow::Result<TcpListener> {
    use anyhow::Context as _;
    let listener = bind(address).map_err(|e| match e.kind() {
        io::ErrorKind::AddrInUse => {
            anyhow::anyhow!("{address} is in use; choose another with --listen or server.listen")
        }
        _ => anyhow::Error::new(e).context(format!("could not listen on {address}")),
    })?;
    let bound = listener
        .local_addr()
        .with_context(|| format!("could not read the address bound for {address}"))?;
    tracing::info!(listen = %bound, "bound");
    if let Some(path) = ready_file {
        let partial = path.with_extension("partial");
        std::fs::write(&partial, format!("{bound}\n"))
            .and_then(|()| std::fs::rename(&partial, path))
            .with_context(|| format!("could not write the ready file {}", path.display()))?;
    }
    Ok(listener)
}

/// The soft open-file limit of this process (Linux: `/proc/self/limits`).
pub(super) fn open_file_limit() -> Option<u64> {
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

    /// Why the connection must close now, if it must; else how long until
    /// it should be looked at again. Activity only moves its deadlines later,
    /// except a request's first byte, which starts the header deadline: never
    /// sooner than `header_timeout` from now, so no wait is longer than that.
    fn check(&self, bounds: &Bounds) -> Result<Duration, &'static str> {
        let header_ms = millis(bounds.header_timeout);
        if self.busy.load(Ordering::Relaxed) > 0 {
            return Ok(bounds.header_timeout);
        }
        let now = self.epoch.now();
        let head = self.head_started.load(Ordering::Relaxed);
        if head != 0 {
            let due = head.saturating_add(header_ms);
            return if now >= due {
                Err("header_timeout")
            } else {
                Ok(Duration::from_millis(due - now))
            };
        }
        let quiet_since = self
            .idle_since
            .load(Ordering::Relaxed)
            .max(self.last_io.load(Ordering::Relaxed));
        let due = quiet_since.saturating_add(millis(bounds.idle_timeout));
        if now >= due {
            Err("idle")
        } else {
            Ok(Duration::from_millis((due - now).min(header_ms)))
        }
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
pub(super) async fn serve(
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
    let capacity = bounds.max_connections + OVER_LIMIT;
    let slots = Arc::new(Semaphore::new(capacity));
    let waiting = Arc::new(Semaphore::new(WAITING_AT_ONCE));
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
        // Served at once, even over the limit (up to `OVER_LIMIT`), so a new
        // client never waits for the connection it displaces to close.
        let shared = shared.clone();
        let stop = stop_rx.clone();
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            wait_for_slot(shared, &slots, &waiting, (stream, peer), stop);
            continue;
        };
        let over = (capacity - slots.available_permits()).saturating_sub(bounds.max_connections);
        if over > 0 {
            // One for this connection, and more while a burst outpaces the
            // closing, so the count comes back down to the limit.
            make_room(&shared, over.min(MAKE_ROOM_AT_ONCE));
        }
        tokio::spawn(async move {
            connection(&shared, stream, peer, stop).await;
            drop(permit);
        });
    }
    let _ = stop_tx.send(true);
    shared.registry.evict_all();
    // Every connection gives its slot back when it ends.
    let all = u32::try_from(capacity).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    Ok(())
}

/// Even the room over the limit is taken: make room, and let the new
/// connection wait a moment for it beside the accept loop (refused when too
/// many wait already, or when no slot frees up in time).
fn wait_for_slot(
    shared: Arc<Shared>,
    slots: &Arc<Semaphore>,
    waiting: &Arc<Semaphore>,
    (stream, peer): (TcpStream, SocketAddr),
    stop: watch::Receiver<bool>,
) {
    let Ok(waiter) = waiting.clone().try_acquire_owned() else {
        refuse(&shared, stream, peer);
        return;
    };
    make_room(&shared, MAKE_ROOM_AT_ONCE);
    let slots = slots.clone();
    tokio::spawn(async move {
        let slot = tokio::time::timeout(SLOT_WAIT, slots.acquire_owned()).await;
        drop(waiter);
        match slot {
            Ok(Ok(permit)) => {
                connection(&shared, stream, peer, stop).await;
                drop(permit);
            }
            _ => refuse(&shared, stream, peer),
        }
    });
}

/// Over the limit: tell the `count` connections that have waited longest
/// without a request to close.
fn make_room(shared: &Shared, count: usize) {
    for _ in 0..count {
        if !shared.registry.evict_longest_waiting() {
            return;
        }
        metrics::record_connection_shed("displaced");
    }
    if let Some(count) = shared.displaced_log.tick() {
        warn!(
            count,
            max_connections = shared.bounds.max_connections,
            "connection limit reached: closed connections waiting without a request to make room"
        );
    }
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
    let mut wait = shared.bounds.header_timeout;
    loop {
        tokio::select! {
            _ = conn.as_mut() => break,
            () = tokio::time::sleep(wait) => {
                match activity.check(&shared.bounds) {
                    Ok(next) => wait = next.max(Duration::from_millis(10)),
                    Err(reason) => {
                        metrics::record_connection_shed(reason);
                        break;
                    }
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
