//! `FixtureSite`: the static Tower Hamlets Together style library in
//! `tests/fixtures/tht-site`, served on loopback by its own `serve.py` (ETag,
//! Last-Modified, 304s, and a version that can be switched while running).
//! Its request log tells tests which pages were fetched and how.

use std::io::Read;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::app::free_port;

/// A running fixture server, stopped on drop.
pub struct FixtureSite {
    child: Child,
    log: tempfile::NamedTempFile,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl FixtureSite {
    /// Serve `version` (`v1`, `v2`, `v3-broken`).
    pub fn start(version: &str) -> Self {
        let port = free_port();
        let log = tempfile::NamedTempFile::new().expect("log file");
        let child = Command::new("python3")
            .arg("tests/fixtures/tht-site/serve.py")
            .arg(version)
            .arg("--port")
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(log.reopen().expect("log file reopens"))
            .spawn()
            .expect("python3 runs serve.py");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "fixture site did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, log, port }
    }

    /// The library's first page.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/resource-library", self.port)
    }

    /// Switch the version served from now on.
    pub fn switch(&self, version: &str) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        let request = format!(
            "POST /_fixture/version?name={version} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        std::io::Write::write_all(&mut stream, request.as_bytes()).expect("send");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read");
        assert!(
            answer.starts_with("HTTP/1.0 204") || answer.starts_with("HTTP/1.1 204"),
            "{answer}"
        );
    }

    /// Request log lines so far (method, path, status, conditional headers).
    pub fn log_lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.log.path())
            .expect("read log")
            .lines()
            .filter(|l| l.contains("\"GET "))
            .map(str::to_owned)
            .collect()
    }

    /// The config section of an `html` source reading this site.
    pub fn source_toml(&self) -> String {
        format!(
            r#"
[[sources]]
name = "library"
kind = "html"
url = "{}"
page_pause_ms = 0
[sources.select]
entry = "ul.resource-list > li"
title = "h3"
link = "h3 a"
summary = ".resource-card__body"
date = "time"
category = ".resource-card__tag"
download = "a.btn--download"
next_page = "a[rel=next]"
"#,
            self.url()
        )
    }
}

impl Drop for FixtureSite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
