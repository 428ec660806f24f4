// Issue 13: text and links that any source may give. Hostile titles (a bidi
// override, noncharacters, a line separator) reach no page, feed or subject;
// a store filled before the cleaning upgrades without a single event; a
// 10,000-character link is stored on both backends; long and encoded-word
// titles reach real SMTP servers as one decodable Subject; logs piped to a
// file carry no colour codes.

use std::path::Path;

use chrono::{TimeZone, Utc};
use sqlx::Row;
use sqlx::migrate::Migrator;
use tidings::categorize::Categorizer;
use tidings::clock::FixedClock;
use tidings::identity::{guid, resource_id};
use tidings::model::{Category, Entry};
use tidings::reconcile::{Observed, ReconcileOptions, reconcile};
use tidings::source::seed::read_seed_source;
use tidings::store::{Backend, Store, identity_digest};
use url::Url;

use crate::support::app::TestApp;
use crate::support::browser::Browser;
use crate::support::db::{Db, on_every_backend};
use crate::support::smtp::{Maildir, SmtpSink, header, smtp_config};

/// A SQLite database URL inside `dir`, for tests where the backend does not matter.
fn sqlite_in(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("tidings.db").display())
}

/// Characters no displayed text or subject may keep.
fn is_forbidden(c: char) -> bool {
    let code = u32::from(c);
    matches!(code, 0x202A..=0x202E | 0x2066..=0x2069 | 0xFDD0..=0xFDEF | 0x2028 | 0x2029)
        || code & 0xFFFE == 0xFFFE
}

fn assert_clean(what: &str, text: &str) {
    let bad: Vec<String> = text
        .chars()
        .filter(|&c| is_forbidden(c))
        .map(|c| format!("U+{:04X}", u32::from(c)))
        .collect();
    assert!(bad.is_empty(), "{what} keeps {bad:?}: {text:?}");
}

/// A seed page whose titles try to deceive: a right-to-left override that
/// makes "fdp.exe" read "exe.pdf", noncharacters, a line separator, plus
/// honest Hebrew, Arabic and Bengali (with its joiners) that must stay.
const HOSTILE_SEED: &str = "Hostile titles\n\nTitles that try to deceive.\n\nHostile titles\n\n\
Invoice \u{202E}fdp.exe\n\nPay at once.\n\n\n\
Quarterly \u{FFFE}report\u{FFFF} leaflet\n\nFigures\u{2028}for the quarter.\n\n\n\
Line\u{2028}separated title\n\nText.\n\n\n\
מדריך להורים ودليل للعائلات\n\nGuide.\n\n\n\
স্বাস্থ্য সেবা র\u{200D}্যাব ক্\u{200C}ষ\n\nBengali.\n";

/// The hostile titles as they must be shown.
const SHOWN: [&str; 5] = [
    "Invoice fdp.exe",
    "Quarterly report leaflet",
    "Line separated title",
    "מדריך להורים ودليل للعائلات",
    "স্বাস্থ্য সেবা র\u{200D}্যাব ক্\u{200C}ষ",
];

fn hostile_app(db_url: &str, extra: &str) -> TestApp {
    let app = TestApp::new(db_url, extra);
    std::fs::write(app.path("seeds/hostile.txt"), HOSTILE_SEED).unwrap();
    app
}

/// The backend's migrations folder.
fn migrations(backend: Backend) -> &'static Path {
    Path::new(match backend {
        Backend::Sqlite => "migrations/sqlite",
        Backend::Postgres => "migrations/postgres",
    })
}

/// Migrate `store` only up to (not including) 0009, as an older Tidings left it.
async fn migrate_before_0009(store: &Store) {
    let migrator = Migrator::new(migrations(store.backend())).await.unwrap();
    migrator.run_to(8, store.pool()).await.unwrap();
}

/// Store `entries` of source `seeds` as the Tidings before 0009 did: raw
/// text, fingerprints and identities over it, no identity digest.
async fn store_as_before_0009(store: &Store, entries: Vec<Entry>) {
    let seen = entries.len() as i64;
    let at = "2024-03-01T09:30:00.000000Z";
    let categorizer = Categorizer::builtin();
    for entry in entries {
        let category = categorizer.categorize(&entry);
        let summary = serde_json::to_string(&entry.summary).unwrap();
        let obs = Observed::new("seeds", entry, category);
        let id = resource_id(&obs.identity).0;
        let date = obs.entry.date.map(|d| d.to_string());
        let published = obs
            .entry
            .date
            .map(|d| format!("{}T00:00:00.000000Z", d.first_day()))
            .unwrap_or_else(|| at.to_owned());
        sqlx::query(
            "INSERT INTO resources (id, source, identity, guid, title, link, summary, entry_date, \
             category, category_slug, download, fingerprint, published, first_seen, updated) \
             VALUES ($1, 'seeds', $2, $3, $4, NULL, $5, $6, $7, $8, NULL, $9, $10, $11, $12)",
        )
        .bind(id.as_str())
        .bind(obs.identity.as_str())
        .bind(guid(&obs.identity))
        .bind(obs.entry.title.as_str())
        .bind(summary.as_str())
        .bind(date.as_deref())
        .bind(obs.category.name.as_str())
        .bind(obs.category.slug.as_str())
        .bind(obs.fingerprint.as_str())
        .bind(published.as_str())
        .bind(at)
        .bind(at)
        .execute(store.pool())
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO revisions (resource_id, seq, title, link, summary, entry_date, category, \
             category_slug, download, fingerprint, seen_at) \
             VALUES ($1, 1, $2, NULL, $3, $4, $5, $6, NULL, $7, $8)",
        )
        .bind(id.as_str())
        .bind(obs.entry.title.as_str())
        .bind(summary.as_str())
        .bind(date.as_deref())
        .bind(obs.category.name.as_str())
        .bind(obs.category.slug.as_str())
        .bind(obs.fingerprint.as_str())
        .bind(at)
        .execute(store.pool())
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO source_state (source, run_seq, last_good_entries, last_good_at) \
         VALUES ('seeds', 1, $1, $2)",
    )
    .bind(seen)
    .bind(at)
    .execute(store.pool())
    .await
    .unwrap();
}

/// (id, guid, identity, identity_digest, title) of every resource, by id.
async fn resource_rows(store: &Store) -> Vec<(String, String, String, String, String)> {
    let rows =
        sqlx::query("SELECT id, guid, identity, identity_digest, title FROM resources ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap();
    rows.iter()
        .map(|r| {
            (
                r.get("id"),
                r.get("guid"),
                r.get("identity"),
                r.get("identity_digest"),
                r.get("title"),
            )
        })
        .collect()
}

async fn count(store: &Store, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn issue_13_a_store_filled_before_the_cleaning_upgrades_without_an_event() {
    on_every_backend(|db: Db| async move {
        let app = hostile_app(&db.url, "");
        migrate_before_0009(&db.store).await;
        let raw = read_seed_source("seeds", &app.path("seeds")).unwrap();
        assert!(
            raw.entries.iter().any(|e| e.title.contains('\u{202E}')),
            "the seeds are read raw here, as before the cleaning"
        );
        let entries = raw.entries.len();
        store_as_before_0009(&db.store, raw.entries).await;
        let before: Vec<(String, String)> =
            sqlx::query("SELECT id, guid FROM resources ORDER BY id")
                .fetch_all(db.store.pool())
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get("id"), r.get("guid")))
                .collect();

        db.store.migrate().await.unwrap();
        let after = resource_rows(&db.store).await;
        let ids: Vec<(String, String)> = after
            .iter()
            .map(|(id, guid, ..)| (id.clone(), guid.clone()))
            .collect();
        assert_eq!(ids, before, "ids and GUIDs are stored values");
        for (id, _, identity, digest, title) in &after {
            assert_eq!(*digest, identity_digest(identity), "{id}");
            assert_eq!(digest.len(), 64);
            assert_clean("a stored title", title);
        }
        for shown in SHOWN {
            assert!(after.iter().any(|r| r.4 == shown), "{shown:?} stored as is");
        }

        let report = app.json(&["ingest", "--json"]);
        let seeds = &report["sources"][0];
        assert_eq!(seeds["new"], 0, "{report}");
        assert_eq!(seeds["changed"], 0, "{report}");
        assert_eq!(seeds["unchanged"], entries, "{report}");
        assert_eq!(count(&db.store, "change_events").await, 0);
        assert_eq!(count(&db.store, "resources").await, entries as i64);
        // A second migrate finds the upgrade done and changes nothing.
        db.store.migrate().await.unwrap();
        assert_eq!(resource_rows(&db.store).await, after);
    })
    .await;
}

/// A link of 10,000 characters that no compression shrinks much.
fn long_link() -> Url {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let path: String = (0..10_000 - "https://library.example.org/".len())
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
            char::from(alphabet[(state % alphabet.len() as u64) as usize])
        })
        .collect();
    let link = Url::parse(&format!("https://library.example.org/{path}")).unwrap();
    assert_eq!(link.as_str().len(), 10_000);
    link
}

#[tokio::test]
async fn issue_13_a_10000_character_link_is_stored_and_found_again() {
    on_every_backend(|db: Db| async move {
        let store = db.migrated().await;
        let mut entry = Entry::titled("A resource with a very long link");
        entry.link = Some(long_link());
        let snapshot = [Observed::new("library", entry, Category::new("Leaflets"))];
        let identities = vec![snapshot[0].identity.clone()];
        for (day, new) in [(1, 1), (2, 0)] {
            let state = store
                .stored_for_reconcile("library", &identities)
                .await
                .unwrap();
            let set = reconcile(&state.stored, &snapshot, &ReconcileOptions::default());
            let clock = FixedClock::new(Utc.with_ymd_and_hms(2024, 3, day, 9, 0, 0).unwrap());
            let applied = store
                .apply("library", &set, 1, state.run_seq, &clock)
                .await
                .unwrap_or_else(|e| panic!("{:?}: {e}", db.store.backend()));
            assert_eq!(applied.counts.new, new, "day {day}");
            assert_eq!(applied.counts.changed, 0, "day {day}");
        }
        // Seen from another source, the same link is the same resource.
        let state = store
            .stored_for_reconcile("elsewhere", &identities)
            .await
            .unwrap();
        assert_eq!(state.stored.len(), 1);
        assert_eq!(count(&store, "change_events").await, 1);
    })
    .await;
}

/// A 2,000-character title with no space to fold at, and a title that is
/// literally an RFC 2047 encoded word hiding a line break and a `Bcc:`.
fn mail_titles() -> [String; 2] {
    let long = "Board-papers-".repeat(154);
    [
        long[..2000].to_owned(),
        "=?utf-8?q?Hi=0D=0ABcc:evil@example.org?=".to_owned(),
    ]
}

/// A seed page of the hostile titles and the mail titles.
fn mail_seed() -> String {
    let [long, encoded] = mail_titles();
    format!("{HOSTILE_SEED}\n\n{long}\n\nLong.\n\n\n{encoded}\n\nEncoded.\n")
}

/// Announce every resource whose title starts with one of `prefixes` to a
/// subscriber of every category; the subjects each should decode to.
fn announce_titles(app: &TestApp, prefixes: &[&str]) -> Vec<String> {
    app.run_ok(&[
        "subscribers",
        "add",
        "reader@example.org",
        "--categories",
        "all",
        "--confirmed",
    ]);
    app.run_ok(&["ingest"]);
    let list = app.json(&["resources", "list", "--json"]);
    let mut subjects = Vec::new();
    for prefix in prefixes {
        let r = list
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["title"].as_str().unwrap().starts_with(prefix))
            .unwrap_or_else(|| panic!("no resource {prefix:?} in {list}"));
        app.run_ok(&["announce", r["id"].as_str().unwrap()]);
        subjects.push(format!(
            "New in {}: {}",
            r["category"].as_str().unwrap(),
            r["title"].as_str().unwrap()
        ));
    }
    subjects
}

/// Checks one received message against the subject it was made from: one
/// `Subject`, no header smuggled in, short raw lines, and decoded text that
/// is the subject itself or, past 150 characters, its beginning and "…".
fn assert_subject(message: &serde_json::Value, full: &str) {
    let names: Vec<&str> = message["header_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(
        names.iter().filter(|n| **n == "subject").count(),
        1,
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| matches!(*n, "bcc" | "cc")),
        "{names:?}"
    );
    let raw = message["raw_head"].as_str().unwrap();
    let mut in_subject = false;
    for line in raw.split("\r\n").flat_map(|l| l.split('\n')) {
        if !line.starts_with([' ', '\t']) {
            in_subject = line.to_ascii_lowercase().starts_with("subject:");
        }
        if in_subject {
            assert!(
                line.len() <= 78,
                "a Subject line of {} octets: {line}",
                line.len()
            );
        }
    }
    let decoded = header(message, "subject");
    assert_clean("a received subject", decoded);
    if full.chars().count() <= 150 {
        assert_eq!(decoded, full);
    } else {
        assert!(decoded.chars().count() <= 150, "{decoded}");
        let kept = decoded
            .strip_suffix('…')
            .expect("a cut subject ends with …");
        assert!(
            full.starts_with(kept),
            "{decoded:?} is not the start of the title"
        );
        assert!(kept.chars().count() >= 100, "{decoded:?} keeps too little");
    }
}

#[tokio::test]
async fn issue_13_hostile_long_and_encoded_word_titles_reach_aiosmtpd_as_one_subject() {
    on_every_backend(|db: Db| async move {
        let sink = Maildir::start();
        let app = TestApp::new(&db.url, &smtp_config(&sink.url(), ""));
        std::fs::write(app.path("seeds/hostile.txt"), mail_seed()).unwrap();
        let [long, encoded] = mail_titles();
        let subjects = announce_titles(&app, &["Invoice", &long[..40], &encoded]);
        assert!(subjects[0].ends_with(": Invoice fdp.exe"), "{subjects:?}");
        let messages = sink.messages();
        assert_eq!(messages.len(), 3);
        for full in &subjects {
            let shortened: String = full.chars().take(60).collect();
            let message = messages
                .iter()
                .find(|m| header(m, "subject").starts_with(&shortened))
                .unwrap_or_else(|| panic!("no message for {full:?}"));
            assert_subject(message, full);
        }
    })
    .await;
}

#[tokio::test]
async fn issue_13_long_and_encoded_word_titles_reach_postfix_smtp_sink() {
    let dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start(&[]);
    let app = TestApp::new(&sqlite_in(&dir), &smtp_config(&sink.url(), ""));
    std::fs::write(app.path("seeds/hostile.txt"), mail_seed()).unwrap();
    let [long, encoded] = mail_titles();
    let subjects = announce_titles(&app, &[&long[..40], &encoded]);
    let messages = sink.messages();
    assert_eq!(messages.len(), 2, "both accepted: no 500 Line too long");
    for full in &subjects {
        let shortened: String = full.chars().take(60).collect();
        let message = messages
            .iter()
            .find(|m| header(m, "subject").starts_with(&shortened))
            .unwrap_or_else(|| panic!("no message for {full:?}"));
        assert_subject(message, full);
    }
}

#[tokio::test]
async fn issue_13_hostile_titles_show_clean_in_chromium_and_feeds() {
    on_every_backend(|db: Db| async move {
        let app = hostile_app(&db.url, "");
        app.run_ok(&["ingest"]);
        let list = app.json(&["resources", "list", "--json"]);
        let _served = app.serve().await;
        let browser = Browser::start().await;
        browser.goto(&app.url("/")).await;
        let index = browser.text("body").await;
        assert_clean("the index page", &index);
        for shown in SHOWN {
            assert!(index.contains(shown), "{shown:?} not on the index page");
            let r = list
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["title"] == shown)
                .unwrap_or_else(|| panic!("no resource {shown:?}"));
            browser
                .goto(&app.url(&format!("/resources/{}", r["id"].as_str().unwrap())))
                .await;
            let page = browser.text("body").await;
            assert_clean("a resource page", &page);
            assert!(page.contains(shown), "{shown:?} not on its page: {page}");
        }
        browser.screenshot("hostile-titles").await;
        for feed in ["all.rss", "all.atom"] {
            let body = crate::support::http()
                .get(app.url(&format!("/feeds/{feed}")))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert_clean(feed, &body);
            assert!(body.contains("Invoice fdp.exe"), "{feed}");
        }
    })
    .await;
}

#[test]
fn issue_13_logs_to_a_pipe_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::new(&sqlite_in(&dir), "");
    // stderr is a pipe here, as under systemd, docker or `2> file`.
    let output = app.run_env(&["ingest"], &[("RUST_LOG", "info")]);
    assert!(output.status.success());
    let stderr = &output.stderr;
    assert!(
        String::from_utf8_lossy(stderr).contains("ingest run finished"),
        "the run logged"
    );
    assert!(
        !stderr.contains(&0x1B),
        "escape codes in piped logs: {}",
        String::from_utf8_lossy(stderr)
    );
}
