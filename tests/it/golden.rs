//! Golden files: one RSS feed, one Atom feed and one digest email, written by
//! the binary from the reference seed page and compared byte for byte with
//! `tests/fixtures/golden/`, so drift in headers, order, escaping or encoding
//! shows in review. Only what differs from run to run is normalised: times
//! written from "now" (only those within the test's own run, so a date that
//! comes from the data still counts), and in the email the Message-ID, the
//! MIME boundary and the unsubscribe token. The base URL is fixed.
//!
//! After an intended change, rewrite them with `TIDINGS_BLESS=1 cargo test
//! --test it golden::` and read the diff before committing it.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use tidings::clock::{Clock, SystemClock};

use crate::support::app::TestApp;

/// What replaces a time written from "now".
const NOW: &str = "[NOW]";

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/golden")
        .join(name)
}

/// The run's time window: a time inside it was written from "now".
#[derive(Debug, Clone, Copy)]
struct Window {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

impl Window {
    /// True when `text` is, as a whole, an RFC 3339 or RFC 2822 time within the window.
    fn holds(&self, text: &str) -> bool {
        let parsed = DateTime::parse_from_rfc3339(text)
            .or_else(|_| DateTime::parse_from_rfc2822(text))
            .map(|t| t.with_timezone(&Utc));
        parsed.is_ok_and(|t| self.from <= t && t <= self.to)
    }
}

/// Replaces each XML text node that is a time within `window` with `[NOW]`.
fn normalise_xml(xml: &str, window: Window) -> String {
    let mut out = String::with_capacity(xml.len());
    let mut rest = xml;
    while let Some(open) = rest.find('>') {
        out.push_str(&rest[..=open]);
        rest = &rest[open + 1..];
        let end = rest.find('<').unwrap_or(rest.len());
        let text = &rest[..end];
        out.push_str(if window.holds(text) { NOW } else { text });
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The value of header `name` (unfolded), from the message's head.
fn header<'a>(message: &'a str, name: &str) -> &'a str {
    let prefix = format!("{name}: ");
    let head = &message[..message.find("\r\n\r\n").expect("a message has a head")];
    head.split("\r\n")
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name} header"))
}

/// Replaces every occurrence of `needle` in `text`, also where quoted-printable
/// soft line breaks (`=\r\n`) cut it, with `with`.
fn replace_through_soft_breaks(text: &str, needle: &str, with: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    'scan: while i < text.len() {
        let mut j = i;
        for expected in needle.chars() {
            while text[j..].starts_with("=\r\n") {
                j += 3;
            }
            if !text[j..].starts_with(expected) {
                let c = text[i..].chars().next().expect("inside the text");
                out.push(c);
                i += c.len_utf8();
                continue 'scan;
            }
            j += expected.len_utf8();
        }
        out.push_str(with);
        i = j;
    }
    out
}

/// The digest with its Date, Message-ID, boundary and unsubscribe token normalised.
fn normalise_eml(message: &str, window: Window) -> String {
    let date = header(message, "Date");
    assert!(
        window.holds(date),
        "the Date header is the time of sending: {date}"
    );
    let id = header(message, "Message-ID");
    let boundary = message
        .split("boundary=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a multipart message names its boundary");
    let unsubscribe = header(message, "List-Unsubscribe");
    let token = unsubscribe
        .rsplit('/')
        .next()
        .and_then(|t| t.strip_suffix('>'))
        .expect("List-Unsubscribe ends in the token");
    let text = message
        .replace(&format!("Date: {date}\r\n"), &format!("Date: {NOW}\r\n"))
        .replace(id, "<[MESSAGE-ID]>")
        .replace(boundary, "[BOUNDARY]");
    replace_through_soft_breaks(&text, token, "[TOKEN]")
}

/// Lines for the diff: XML is cut between tags so a change shows as one line.
fn lines(text: &str) -> Vec<String> {
    text.replace("><", ">\n<")
        .replace("\r\n", "\u{21b5}\n")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A readable diff of the part between the common start and the common end.
fn diff(want: &str, got: &str) -> String {
    let (want, got) = (lines(want), lines(got));
    let start = want.iter().zip(&got).take_while(|(a, b)| a == b).count();
    let tail = want[start..]
        .iter()
        .rev()
        .zip(got[start..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let mut out = format!("first difference at line {}:\n", start + 1);
    for line in &want[start.saturating_sub(2)..start] {
        out.push_str(&format!("  {line}\n"));
    }
    for line in &want[start..want.len() - tail] {
        out.push_str(&format!("- {line}\n"));
    }
    for line in &got[start..got.len() - tail] {
        out.push_str(&format!("+ {line}\n"));
    }
    out
}

/// Compares `got` with the golden file `name`, or rewrites it under `TIDINGS_BLESS=1`.
fn check(name: &str, got: &str) {
    let path = golden(name);
    if std::env::var_os("TIDINGS_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (write it with TIDINGS_BLESS=1)", path.display()));
    assert!(
        want == got,
        "{name} differs from {} (TIDINGS_BLESS=1 rewrites it; read the diff first)\n{}",
        path.display(),
        diff(&want, got)
    );
}

#[tokio::test]
async fn feeds_and_a_digest_match_their_golden_files() {
    let app = TestApp::new(
        "sqlite://tidings.db",
        "[mail]\ntransport = \"file\"\ndir = \"outbox\"\nfrom = \"Test Library <news@example.org>\"\n",
    );
    // A fixed base URL (nothing is served here), so links and the
    // quoted-printable line breaks around them do not move with the port.
    let config = std::fs::read_to_string(app.path("tidings.toml")).unwrap();
    let site = "[site]\n";
    assert!(config.contains(site), "{config}");
    let config = config.replace(
        site,
        "[site]\nbase_url = \"https://library.example.org/\"\n",
    );
    std::fs::write(app.path("tidings.toml"), config).unwrap();
    let from = SystemClock.now() - Duration::seconds(1);
    app.run_ok(&[
        "subscribers",
        "add",
        "reader@example.org",
        "--categories",
        "all",
        "--frequency",
        "weekly",
        "--confirmed",
    ]);
    app.run_ok(&["ingest"]);
    app.run_ok(&["feeds", "write", "out"]);
    let sent = app.run_ok(&["digest", "send", "--now"]);
    assert!(sent.contains("sent 1,"), "{sent}");
    let window = Window {
        from,
        to: SystemClock.now() + Duration::seconds(1),
    };

    for feed in ["leaflets.rss", "leaflets.atom"] {
        let text = std::fs::read_to_string(app.path(&format!("out/{feed}"))).unwrap();
        check(feed, &normalise_xml(&text, window));
    }
    let mut emails: Vec<PathBuf> = std::fs::read_dir(app.path("outbox"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(emails.len(), 1, "{emails:?}");
    let message = std::fs::read_to_string(emails.pop().unwrap()).unwrap();
    check("digest.eml", &normalise_eml(&message, window));
}

#[test]
fn the_normalisers_touch_only_what_changes_from_run_to_run() {
    let now = SystemClock.now();
    let window = Window {
        from: now - Duration::seconds(5),
        to: now + Duration::seconds(5),
    };
    let xml = format!(
        "<a><updated>{}</updated><published>2020-11-17T00:00:00+00:00</published><b>{}</b></a>",
        now.to_rfc3339(),
        now.to_rfc2822()
    );
    assert_eq!(
        normalise_xml(&xml, window),
        "<a><updated>[NOW]</updated><published>2020-11-17T00:00:00+00:00</published><b>[NOW]</b></a>"
    );
    assert_eq!(
        replace_through_soft_breaks("x 1.ab=\r\ncd y 1.abcd", "1.abcd", "[T]"),
        "x [T] y [T]"
    );
    assert_eq!(
        replace_through_soft_breaks("caf\u{e9} 1.abc", "1.abcd", "[T]"),
        "caf\u{e9} 1.abc"
    );
}
