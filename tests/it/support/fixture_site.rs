//! `FixtureSite`: the static Tower Hamlets Together style library in
//! `tests/fixtures/tht-site`, served on loopback by its own `serve.py` (ETag,
//! Last-Modified, 304s, and a version that can be switched while running).
//! Its request log tells tests which pages were fetched and how. It binds a
//! port of its own choosing and prints it.

use std::io::Read;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

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
        let log = tempfile::NamedTempFile::new().expect("log file");
        let mut child = Command::new("python3")
            .arg("tests/fixtures/tht-site/serve.py")
            .arg(version)
            .args(["--port", "0"])
            .stdout(Stdio::piped())
            .stderr(log.reopen().expect("log file reopens"))
            .spawn()
            .expect("python3 runs serve.py");
        let port = super::printed_port(&mut child, "the fixture site");
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

/// What a fixture version holds, from its `expected.json` (written with the
/// site, not by Tidings): the number of listing pages and every entry.
pub struct Expected {
    /// Listing pages the site serves.
    pub pages: usize,
    /// Every entry, as the site shows it.
    pub entries: Vec<serde_json::Value>,
}

/// How many entries are new, changed, gone and unchanged from one fixture
/// version to another, keyed by link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Changes {
    /// Links only in the later version.
    pub new: u64,
    /// Links in both whose fields differ.
    pub changed: u64,
    /// Links only in the earlier version.
    pub gone: u64,
    /// Links in both with the same fields.
    pub unchanged: u64,
}

impl Expected {
    /// `tests/fixtures/tht-site/<version>/expected.json`.
    pub fn of(version: &str) -> Self {
        let path = format!("tests/fixtures/tht-site/{version}/expected.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let json: serde_json::Value = serde_json::from_str(&text).expect("expected.json is JSON");
        Self {
            pages: usize::try_from(json["pages"].as_u64().expect("pages")).unwrap(),
            entries: json["entries"].as_array().expect("entries").clone(),
        }
    }

    /// The number of entries, as a JSON report counts them.
    pub fn count(&self) -> u64 {
        self.entries.len() as u64
    }

    /// What changed from `self` to `later`.
    pub fn changes_to(&self, later: &Self) -> Changes {
        let find = |entries: &[serde_json::Value], link: &serde_json::Value| {
            entries.iter().find(|e| e["link"] == *link).cloned()
        };
        let mut changes = Changes {
            new: 0,
            changed: 0,
            gone: 0,
            unchanged: 0,
        };
        for entry in &later.entries {
            match find(&self.entries, &entry["link"]) {
                None => changes.new += 1,
                Some(before) if before == *entry => changes.unchanged += 1,
                Some(_) => changes.changed += 1,
            }
        }
        changes.gone = self
            .entries
            .iter()
            .filter(|e| find(&later.entries, &e["link"]).is_none())
            .count() as u64;
        changes
    }
}
