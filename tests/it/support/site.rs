//! `Site`: a programmable HTTP/1.1 server on 127.0.0.1 for fetch tests. Each
//! route answers with a chosen `Reply` (statuses, headers, hangs, huge or
//! truncated bodies, raw bytes), and every request is recorded with its
//! headers. Responses are hand-written so a test can misbehave precisely.
//! The server and its connections stop when the `Site` is dropped.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use url::Url;

/// How a route answers.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A whole response; `Content-Length` is added unless `headers` has one.
    Fixed {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Read the request, then never answer.
    Hang,
    /// These exact bytes, then close (or, with `hang`, stall forever).
    Raw { bytes: Vec<u8>, hang: bool },
    /// `200` with `len` bytes of `a` in 64 KiB writes, delimited by closing
    /// the connection unless `content_length` declares the length first.
    Stream { len: u64, content_length: bool },
    /// The n-th hit on the route gets the n-th reply; the last one repeats.
    Sequence(Vec<Reply>),
}

impl Reply {
    /// `200 OK` with `text/html; charset=utf-8` and this body.
    pub fn html(body: impl Into<Vec<u8>>) -> Self {
        Self::status(200)
            .header("Content-Type", "text/html; charset=utf-8")
            .body(body)
    }

    /// An empty response with this status.
    pub fn status(status: u16) -> Self {
        Self::Fixed {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A redirect with this status to `location`.
    pub fn redirect(status: u16, location: &str) -> Self {
        Self::status(status).header("Location", location)
    }

    /// Add a header (to a `Fixed` reply; others are returned unchanged).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        if let Self::Fixed { headers, .. } = &mut self {
            headers.push((name.to_owned(), value.to_owned()));
        }
        self
    }

    /// Replace the body (of a `Fixed` reply; others are returned unchanged).
    pub fn body(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        if let Self::Fixed { body, .. } = &mut self {
            *body = bytes.into();
        }
        self
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Request {
    /// The request target, e.g. `/page?x=1`.
    pub path: String,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Default)]
struct Shared {
    routes: Mutex<HashMap<String, Reply>>,
    requests: Mutex<Vec<Request>>,
    written: Mutex<HashMap<String, u64>>,
}

/// A running loopback server; stops on drop.
#[derive(Debug)]
pub struct Site {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Site {
    /// Bind 127.0.0.1 on a free port and start serving. Unknown paths get 404.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("bound address");
        let shared = Arc::new(Shared::default());
        let task = tokio::spawn(serve(listener, Arc::clone(&shared)));
        Self { addr, shared, task }
    }

    /// Answer requests for `path` (with its query, if any) with `reply`.
    pub fn route(&self, path: &str, reply: Reply) -> &Self {
        lock(&self.shared.routes).insert(path.to_owned(), reply);
        self
    }

    /// The absolute URL of `path` on this site.
    pub fn url(&self, path: &str) -> Url {
        Url::parse(&format!("http://{}{path}", self.addr)).expect("valid loopback url")
    }

    /// This site's origin, for `FetchPolicy::allowed_origins`.
    pub fn origin(&self) -> url::Origin {
        self.url("/").origin()
    }

    /// Every request for `path` so far, oldest first.
    pub fn requests(&self, path: &str) -> Vec<Request> {
        let requests = lock(&self.shared.requests);
        requests
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// How many requests for `path` arrived.
    pub fn hits(&self, path: &str) -> usize {
        self.requests(path).len()
    }

    /// How many requests arrived in all.
    pub fn total_hits(&self) -> usize {
        lock(&self.shared.requests).len()
    }

    /// Body bytes the server managed to hand to the kernel for `path`.
    pub fn bytes_written(&self, path: &str) -> u64 {
        lock(&self.shared.written).get(path).copied().unwrap_or(0)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection.
        self.task.abort();
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        if let Ok((stream, _)) = listener.accept().await {
            connections.spawn(handle(stream, Arc::clone(&shared)));
        }
        while connections.try_join_next().is_some() {}
    }
}

async fn handle(mut stream: TcpStream, shared: Arc<Shared>) {
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    let path = request.path.clone();
    let reply = {
        let mut requests = lock(&shared.requests);
        requests.push(request);
        let hit = requests.iter().filter(|r| r.path == path).count();
        let routes = lock(&shared.routes);
        pick(
            routes.get(&path).cloned().unwrap_or(Reply::status(404)),
            hit,
        )
    };
    let written = respond(&mut stream, reply).await;
    *lock(&shared.written).entry(path).or_default() += written;
    let _ = stream.shutdown().await;
}

/// Lock a mutex of the site's state; nothing panics while holding one.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .expect("site state is never poisoned: no code panics while holding it")
}

/// The reply for the `hit`-th request (1-based) of a route.
fn pick(reply: Reply, hit: usize) -> Reply {
    match reply {
        Reply::Sequence(replies) => {
            let last = replies.len().saturating_sub(1);
            let chosen = replies
                .get((hit - 1).min(last))
                .cloned()
                .unwrap_or(Reply::status(500));
            pick(chosen, 1)
        }
        other => other,
    }
}

/// Read the request head (no bodies: the fetcher only sends GETs).
async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 || head.len() > 64 * 1024 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_owned();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some(Request { path, headers })
}

/// Write `reply`; returns the body bytes written before the peer went away.
async fn respond(stream: &mut TcpStream, reply: Reply) -> u64 {
    match reply {
        Reply::Fixed {
            status,
            headers,
            body,
        } => write_fixed(stream, status, &headers, &body).await,
        Reply::Hang => std::future::pending().await,
        Reply::Raw { bytes, hang } => {
            let _ = stream.write_all(&bytes).await;
            if hang {
                std::future::pending::<()>().await;
            }
            0
        }
        Reply::Stream {
            len,
            content_length,
        } => write_stream(stream, len, content_length).await,
        Reply::Sequence(_) => unreachable!("pick resolves sequences"),
    }
}

async fn write_fixed(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> u64 {
    let mut head = format!("HTTP/1.1 {status} Status\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    if stream.write_all(head.as_bytes()).await.is_err() || stream.write_all(body).await.is_err() {
        return 0;
    }
    body.len() as u64
}

async fn write_stream(stream: &mut TcpStream, len: u64, content_length: bool) -> u64 {
    let length = if content_length {
        format!("Content-Length: {len}\r\n")
    } else {
        String::new()
    };
    let head =
        format!("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n{length}\r\n");
    if stream.write_all(head.as_bytes()).await.is_err() {
        return 0;
    }
    let piece = vec![b'a'; 64 * 1024];
    let mut written = 0;
    while written < len {
        let n = piece
            .len()
            .min(usize::try_from(len - written).unwrap_or(usize::MAX));
        if stream.write_all(&piece[..n]).await.is_err() {
            break;
        }
        written += n as u64;
    }
    written
}
