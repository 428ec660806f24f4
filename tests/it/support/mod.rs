//! Shared test helpers: databases, servers and external consumers.

/// The `tidings` binary in a scratch directory.
pub mod app;
/// Headless Chromium through chromedriver's WebDriver API.
pub mod browser;
/// Real feed consumers: feedparser, jing, xmllint, newsboat.
pub mod consumers;
/// Fresh SQLite and PostgreSQL databases per test.
pub mod db;
/// The fixture library site, served by its own serve.py.
pub mod fixture_site;
/// PostgreSQL-only tests: replicas sharing a database, copies onto it.
pub mod postgres;
/// A PostgreSQL server of the test's own, to stop and start.
pub mod private_pg;
/// A webhook receiver on loopback that records requests and answers from a script.
pub mod receiver;
/// A TLS relay with a login (aiosmtpd), on certificates made by the test.
pub mod relay;
/// A programmable HTTP server on loopback.
pub mod site;
/// SMTP servers on loopback: aiosmtpd (Maildir) and Postfix smtp-sink.
pub mod smtp;

/// An HTTP client for tests: no automatic decompression, so tests see what was sent.
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_gzip()
        .no_brotli()
        .build()
        .expect("test HTTP client builds")
}

/// The port a child server printed as the first line of its stdout (the
/// test fixtures' servers bind port 0 and say which port they got), read
/// once it accepts connections. `what` names the server in a failure.
pub fn printed_port(child: &mut std::process::Child, what: &str) -> u16 {
    use std::io::BufRead as _;
    let stdout = child.stdout.take().expect("the server's stdout is piped");
    let mut line = String::new();
    let read = std::io::BufReader::new(stdout).read_line(&mut line);
    line.trim().parse().unwrap_or_else(|_| {
        let status = child.try_wait();
        panic!("{what} printed no port ({read:?}, {line:?}; exit status {status:?})")
    })
}

/// A GET of `url` that must answer `status`, returning the body as text.
pub async fn get_text(url: &str, status: u16) -> String {
    let response = http()
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let got = response.status().as_u16();
    let body = response
        .text()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: the body: {e}"));
    assert_eq!(got, status, "GET {url} answered {got}: {body}");
    body
}

/// A local port bound but not listening: connections to it are refused for
/// as long as the socket is held, and no other process can take the port.
pub fn refusing_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
    socket
        .bind(([127, 0, 0, 1], 0).into())
        .expect("bind a local port");
    let port = socket.local_addr().expect("bound address").port();
    (socket, port)
}
