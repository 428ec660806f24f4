//! Real feed consumers, run as child processes: feedparser (Debian's
//! `/usr/bin/python3`), jing with the RFC 4287 schema, xmllint and newsboat.
//! Each helper returns what the tool saw; a missing tool is a test failure
//! naming the Debian package to install, never a skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize;

/// Debian's Python, which can import Debian's `python3-*` packages (the
/// `python3` on PATH may be a separate build that cannot).
const PYTHON: &str = "/usr/bin/python3";

/// A feed as feedparser reads it.
#[derive(Debug, Deserialize)]
pub struct ParsedFeed {
    /// True when feedparser found the document malformed.
    pub bozo: bool,
    /// Why, when `bozo`.
    pub bozo_exception: String,
    /// Format feedparser detected: `rss20`, `atom10`, …
    pub version: String,
    /// Feed title.
    pub title: String,
    /// Entries in document order.
    pub entries: Vec<ParsedEntry>,
}

/// One entry as feedparser reads it.
#[derive(Debug, Deserialize)]
pub struct ParsedEntry {
    /// GUID / atom:id.
    pub id: String,
    /// Title, entities decoded.
    pub title: String,
    /// The alternate link.
    pub link: String,
    /// Atom `updated` (or RSS has none: empty), as written in the feed.
    pub updated: String,
    /// Summary as feedparser gives it (HTML, sanitised by feedparser).
    pub summary: String,
    /// Category terms.
    pub tags: Vec<String>,
    /// Enclosures.
    pub enclosures: Vec<ParsedEnclosure>,
}

/// An enclosure as feedparser reads it.
#[derive(Debug, Deserialize, PartialEq, Eq)]
pub struct ParsedEnclosure {
    /// URL of the file.
    pub href: String,
    /// Its media type.
    #[serde(rename = "type")]
    pub mime_type: String,
}

const FEEDPARSER_SCRIPT: &str = r#"
import json, sys
import feedparser
d = feedparser.parse(sys.argv[1])
print(json.dumps({
    "bozo": bool(d.bozo),
    "bozo_exception": str(d.get("bozo_exception", "")),
    "version": d.get("version", ""),
    "title": d.feed.get("title", ""),
    "entries": [{
        "id": e.get("id", ""),
        "title": e.get("title", ""),
        "link": e.get("link", ""),
        "updated": e.get("updated", ""),
        "summary": e.get("summary", ""),
        "tags": [t.get("term", "") for t in e.get("tags", [])],
        "enclosures": [{"href": x.get("href", ""), "type": x.get("type", "")}
                       for x in e.get("enclosures", [])],
    } for e in d.entries],
}))
"#;

/// Parse the feed at `path` with feedparser.
pub fn feedparser(path: &Path) -> ParsedFeed {
    let output = run(
        Command::new(PYTHON)
            .arg("-c")
            .arg(FEEDPARSER_SCRIPT)
            .arg(path),
        "python3",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("No module named 'feedparser'") {
        panic!("feedparser is missing: install the Debian package python3-feedparser");
    }
    assert!(
        output.status.success(),
        "feedparser failed on {}: {stderr}",
        path.display()
    );
    serde_json::from_slice(&output.stdout).expect("feedparser script prints JSON")
}

/// Validate `document` against the RELAX NG compact `schema` with jing.
pub fn jing(schema: &Path, document: &Path) -> Result<(), String> {
    let output = run(
        Command::new("jing").arg("-c").arg(schema).arg(document),
        "jing",
    );
    verdict(output)
}

/// Check that `document` is well-formed XML with xmllint.
pub fn xmllint(document: &Path) -> Result<(), String> {
    let output = run(
        Command::new("xmllint").arg("--noout").arg(document),
        "libxml2-utils",
    );
    verdict(output)
}

/// One item newsboat stored in its cache.
#[derive(Debug, Deserialize, PartialEq, Eq)]
pub struct NewsboatItem {
    /// The GUID newsboat keys the item by.
    pub guid: String,
    /// Title as newsboat shows it.
    pub title: String,
    /// Item link.
    pub url: String,
    /// Enclosure URL, empty when none.
    pub enclosure_url: String,
}

/// Let newsboat (headless) fetch `url` into a fresh cache in `work_dir`, and
/// return the items it stored. newsboat exits 0 even on a broken feed, so the
/// cache is the evidence; it keys items by GUID across feeds, so each call
/// gets its own cache.
pub fn newsboat(url: &str, work_dir: &Path) -> Vec<NewsboatItem> {
    std::fs::create_dir_all(work_dir).expect("create newsboat work dir");
    let urls = work_dir.join("urls");
    std::fs::write(&urls, format!("{url}\n")).expect("write newsboat urls file");
    let cache = work_dir.join("cache.db");
    let output = run(
        Command::new("newsboat")
            .arg("-u")
            .arg(&urls)
            .arg("-c")
            .arg(&cache)
            .args(["-C", "/dev/null", "-x", "reload"])
            .env("HOME", work_dir)
            .env("XDG_CONFIG_HOME", work_dir)
            .env("XDG_DATA_HOME", work_dir),
        "newsboat",
    );
    assert!(
        output.status.success(),
        "newsboat failed on {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    newsboat_items(&cache)
}

const SQLITE_SCRIPT: &str = r#"
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = db.execute("SELECT guid, title, url, enclosure_url FROM rss_item ORDER BY pubDate DESC, id")
print(json.dumps([{"guid": g, "title": t, "url": u, "enclosure_url": e or ""}
                  for g, t, u, e in rows]))
"#;

/// Items of a newsboat cache, newest first (read with Python's sqlite3).
fn newsboat_items(cache: &Path) -> Vec<NewsboatItem> {
    let output = run(
        Command::new(PYTHON).arg("-c").arg(SQLITE_SCRIPT).arg(cache),
        "python3",
    );
    assert!(
        output.status.success(),
        "could not read newsboat cache {}: {}",
        cache.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("sqlite script prints JSON")
}

/// The RFC 4287 Appendix B schema kept in the fixtures.
pub fn atom_schema() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/atom.rnc")
}

/// Run `command`; a missing program fails the test, naming its Debian package.
fn run(command: &mut Command, package: &str) -> Output {
    match command.output() {
        Ok(output) => output,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => panic!(
            "{:?} is not installed: install the Debian package {package} \
             (apt-get install -y {package})",
            command.get_program()
        ),
        Err(err) => panic!("could not run {:?}: {err}", command.get_program()),
    }
}

/// Ok when the tool exited 0, else its messages.
fn verdict(output: Output) -> Result<(), String> {
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}
