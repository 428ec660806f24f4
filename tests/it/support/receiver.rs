//! `Receiver`: a webhook receiver on 127.0.0.1 on its own threads (so a test
//! may block on the `tidings` binary while it serves). Records every request
//! (path, headers, body, arrival time) and answers each path from a script:
//! `200`, `429` with `Retry-After`, any status with a body, or closing the
//! connection without answering; once a path's script is used up it answers 200.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// How the receiver answers one request.
#[derive(Debug, Clone)]
pub enum Answer {
    /// `200 OK`.
    Ok,
    /// `429 Too Many Requests` with `Retry-After: seconds`.
    TooMany(u64),
    /// This status and body.
    Status(u16, String),
    /// Read the request, then close the connection without a word.
    Close,
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The request target.
    pub path: String,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// The body, as text.
    pub body: String,
    /// When it arrived.
    pub at: Instant,
}

impl Received {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

#[derive(Debug, Default)]
struct Shared {
    scripts: Mutex<HashMap<String, VecDeque<Answer>>>,
    received: Mutex<Vec<Received>>,
}

/// A running receiver; its accept thread lives as long as the test process.
#[derive(Debug, Clone)]
pub struct Receiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Receiver {
    /// Binds a free loopback port and starts answering.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("bound address");
        let shared = Arc::new(Shared::default());
        let accepting = Arc::clone(&shared);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = Arc::clone(&accepting);
                std::thread::spawn(move || handle(stream, &shared));
            }
        });
        Self { addr, shared }
    }

    /// The URL of `path` here.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers the next requests for `path` with `answers`, in order.
    pub fn script(&self, path: &str, answers: &[Answer]) {
        self.shared
            .scripts
            .lock()
            .unwrap()
            .entry(path.to_owned())
            .or_default()
            .extend(answers.iter().cloned());
    }

    /// Every request for `path`, oldest first.
    pub fn requests(&self, path: &str) -> Vec<Received> {
        let received = self.shared.received.lock().unwrap();
        received
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

fn handle(mut stream: TcpStream, shared: &Shared) {
    let Some(request) = read_request(&stream) else {
        return;
    };
    let answer = shared
        .scripts
        .lock()
        .unwrap()
        .get_mut(&request.path)
        .and_then(VecDeque::pop_front)
        .unwrap_or(Answer::Ok);
    shared.received.lock().unwrap().push(request);
    let (status, extra, body) = match answer {
        Answer::Close => return,
        Answer::Ok => (200, String::new(), "ok".to_owned()),
        Answer::TooMany(seconds) => (429, format!("Retry-After: {seconds}\r\n"), String::new()),
        Answer::Status(status, body) => (status, String::new(), body),
    };
    let response = format!(
        "HTTP/1.1 {status} Status\r\nConnection: close\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
}

fn read_request(stream: &TcpStream) -> Option<Received> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let at = Instant::now();
    let path = line.split(' ').nth(1)?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Received {
        path,
        headers,
        body: String::from_utf8(body).ok()?,
        at,
    })
}
