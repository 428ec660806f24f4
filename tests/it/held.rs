// Issue 13: only real changes reach people. Held runs, derived fields, cut pages, deadlines, check.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::app::TestApp;
use crate::support::db::on_every_backend;
use crate::support::fixture_site::FixtureSite;
use crate::support::site::{Reply, Site};
use crate::support::smtp::{Maildir, header, smtp_config};

/// Runs `f` (a blocking CLI call) so that, on a multi-thread runtime, the
/// loopback `Site` served by this test's tasks keeps answering meanwhile.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

fn ingest(app: &TestApp) -> (Option<i32>, Value) {
    let output = blocking(|| app.run(&["ingest", "--json"]));
    let json = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}", String::from_utf8_lossy(&output.stderr)));
    (output.status.code(), json)
}

/// The fixture's entry count, from its expected.json.
fn fixture_entries(version: &str) -> usize {
    let path = format!("tests/fixtures/tht-site/{version}/expected.json");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    json["entries"].as_array().unwrap().len()
}

/// How the dates of a fixture version fare when the date selector finds
/// nothing and a date written in the title ("17 November 2020", "May 2020")
/// stands in: (entries left without a date, entries whose date changes).
fn dates_without_the_selector(version: &str) -> (usize, usize) {
    let path = format!("tests/fixtures/tht-site/{version}/expected.json");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let entries = json["entries"].as_array().unwrap();
    let dates: Vec<(Option<String>, &str)> = entries
        .iter()
        .map(|e| {
            (
                date_in_title(e["title"].as_str().unwrap()),
                e["date"].as_str().unwrap(),
            )
        })
        .collect();
    let emptied = dates.iter().filter(|(title, _)| title.is_none()).count();
    let changed = dates
        .iter()
        .filter(|(title, page)| title.as_deref() != Some(*page))
        .count();
    (emptied, changed)
}

/// "… 21 September 2023" → `2023-09-21`, "… – May 2020" → `2020-05`.
fn date_in_title(title: &str) -> Option<String> {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let words: Vec<&str> = title.split_whitespace().collect();
    words.windows(2).enumerate().find_map(|(at, pair)| {
        let month = MONTHS.iter().position(|m| *m == pair[0])? + 1;
        let year: u32 = pair[1].parse().ok().filter(|y| (1900..2100).contains(y))?;
        let day = at.checked_sub(1).and_then(|i| words[i].parse::<u32>().ok());
        Some(match day {
            Some(day) => format!("{year}-{month:02}-{day:02}"),
            None => format!("{year}-{month:02}"),
        })
    })
}

/// Rewrites the app's config, replacing `from` (which must occur) with `to`.
fn edit_config(app: &TestApp, from: &str, to: &str) {
    let path = app.path("tidings.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{from:?} not in the config");
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

async fn count(db_url: &str, table: &str) -> i64 {
    let store = tidings::store::Store::open(db_url).await.unwrap();
    let sql = format!("SELECT COUNT(*) FROM {table}");
    let n = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(store.pool())
        .await
        .unwrap();
    store.close().await;
    n
}

fn read_dir_bytes(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

fn runs(app: &TestApp) -> Vec<Value> {
    app.json(&["runs", "list", "--json"])
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn issue_13_a_broken_date_selector_is_held_alerted_once_and_accepted_silently() {
    on_every_backend(|db| async move {
        let n = fixture_entries("v1");
        let site = FixtureSite::start("v1");
        let sink = Maildir::start();
        let mail = smtp_config(&sink.url(), "admins = [\"ops@example.org\"]\n");
        let app = TestApp::new(&db.url, &format!("{}{mail}", site.source_toml()));
        assert_eq!(ingest(&app).0, Some(0));
        app.run_ok(&[
            "subscribers",
            "add",
            "ann@example.org",
            "--categories",
            "all",
            "--confirmed",
        ]);
        app.run_ok(&["feeds", "write", "before"]);
        let events = count(&db.url, "change_events").await;
        assert_eq!(events, n as i64);

        edit_config(&app, "date = \"time\"", "date = \"time.published\"");
        let (code, held) = ingest(&app);
        assert_eq!(code, Some(1), "a held run exits 1: {held}");
        let report = &held["sources"][0];
        assert_eq!(report["held"], true, "{held}");
        assert_eq!(report["changed"], 0, "nothing applied: {held}");
        let (emptied, changed) = dates_without_the_selector("v1");
        let summary = format!(
            "date: emptied on {emptied} of {n}, changed on {} of {n}",
            changed - emptied
        );
        assert_eq!(report["summary"][0], summary.as_str(), "{held}");
        assert_eq!(count(&db.url, "change_events").await, events, "no event");
        app.run_ok(&["feeds", "write", "after"]);
        assert_eq!(
            read_dir_bytes(&app.path("before")),
            read_dir_bytes(&app.path("after")),
            "feeds byte-identical"
        );

        // The next scheduled run sees the same page: held again, not applied, no second alert.
        let (code, again) = ingest(&app);
        assert_eq!(
            (code, &again["sources"][0]["held"]),
            (Some(1), &Value::Bool(true))
        );
        assert_eq!(count(&db.url, "change_events").await, events);
        let alerts = sink.messages();
        assert_eq!(alerts.len(), 1, "one alert for both held runs");
        assert!(header(&alerts[0], "subject").ends_with("a run of source library is held"));
        assert!(
            alerts[0]["text"].as_str().unwrap().contains(&summary),
            "{}",
            alerts[0]["text"]
        );

        let listed = runs(&app);
        let held_ids: Vec<i64> = listed
            .iter()
            .filter(|r| r["outcome"] == "held")
            .map(|r| r["id"].as_i64().unwrap())
            .collect();
        assert_eq!(held_ids.len(), 2, "{listed:?}");
        assert_eq!(listed[0]["summary"][0], summary.as_str());
        let (newest, older) = (held_ids[0], held_ids[1]);

        let accepted = app.run_ok(&["runs", "accept", &newest.to_string(), "--silent"]);
        assert!(accepted.contains("accepted silently"), "{accepted}");
        assert_eq!(
            count(&db.url, "change_events").await,
            events,
            "silent: no event"
        );
        assert_eq!(
            count(&db.url, "revisions").await,
            (n + changed) as i64,
            "a revision for each changed resource"
        );
        let rows = app.json(&["resources", "list", "--json"]);
        let undated = rows
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["date"].is_null());
        assert_eq!(undated.count(), emptied);
        let preview = app.run_ok(&["digest", "preview", "--email", "ann@example.org"]);
        assert_eq!(preview.trim(), "nothing new for this digest");
        app.run_ok(&["feeds", "write", "accepted"]);
        let atom = std::fs::read_to_string(app.path("accepted/all.atom")).unwrap();
        let before = std::fs::read_to_string(app.path("before/all.atom")).unwrap();
        let updated = |feed: &str| -> Vec<String> {
            feed.split("<updated>")
                .skip(1)
                .map(|s| s[..20].to_owned())
                .collect()
        };
        assert_eq!(updated(&atom), updated(&before), "no entry's updated moved");

        // The older held run would undo the accepted one: refused, then rejected.
        let refused = app.run(&["runs", "accept", &older.to_string()]);
        assert_eq!(refused.status.code(), Some(1));
        let said = String::from_utf8_lossy(&refused.stderr);
        assert!(
            said.contains(&format!("run {newest} of source library was applied after")),
            "{said}"
        );
        app.run_ok(&["runs", "reject", &older.to_string()]);
        let outcomes: Vec<Value> = runs(&app).iter().map(|r| r["outcome"].clone()).collect();
        assert_eq!(
            outcomes[..2],
            [Value::from("accepted"), Value::from("rejected")]
        );
        assert_eq!(
            app.run(&["runs", "reject", &older.to_string()])
                .status
                .code(),
            Some(1)
        );

        let (code, after) = ingest(&app);
        assert_eq!(
            code,
            Some(0),
            "a run that agrees with the store is applied: {after}"
        );
        assert_eq!(after["sources"][0]["unchanged"], n);
        assert_eq!(sink.count(), 1, "no more alerts");
    })
    .await;
}

#[tokio::test]
async fn issue_13_a_rejected_run_changes_nothing_and_a_plain_accept_says_updated() {
    on_every_backend(|db| async move {
        let n = fixture_entries("v1");
        let site = FixtureSite::start("v1");
        let app = TestApp::new(&db.url, &site.source_toml());
        assert_eq!(ingest(&app).0, Some(0));
        app.run_ok(&[
            "subscribers",
            "add",
            "ann@example.org",
            "--categories",
            "all",
            "--confirmed",
        ]);
        edit_config(&app, "date = \"time\"", "date = \"time.published\"");
        let held = ingest(&app).1["sources"][0]["held_run"].as_i64().unwrap();
        app.run_ok(&["runs", "reject", &held.to_string()]);
        assert_eq!(runs(&app)[0]["outcome"], "rejected");
        assert_eq!(
            count(&db.url, "revisions").await,
            n as i64,
            "nothing of it applied"
        );
        let refused = app.run(&["runs", "accept", &held.to_string()]);
        assert_eq!(
            refused.status.code(),
            Some(1),
            "a rejected run stays rejected"
        );

        let held = ingest(&app).1["sources"][0]["held_run"].as_i64().unwrap();
        app.run_ok(&["runs", "accept", &held.to_string()]);
        let (_, changed) = dates_without_the_selector("v1");
        assert_eq!(count(&db.url, "change_events").await, (n + changed) as i64);
        let preview = app.run_ok(&["digest", "preview", "--email", "ann@example.org"]);
        assert_eq!(preview.matches("(updated)").count(), changed, "{preview}");
    })
    .await;
}

#[tokio::test]
async fn issue_13_a_rule_edit_moves_categories_without_change_events() {
    on_every_backend(|db| async move {
        let app = TestApp::new(&db.url, "");
        let (code, first) = ingest(&app);
        assert_eq!(code, Some(0), "{first}");
        let events = count(&db.url, "change_events").await;
        let revisions = count(&db.url, "revisions").await;
        let path = app.path("tidings.toml");
        let rules = "\n[[categories]]\nname = \"Workforce\"\nmatch = [\"workforce\"]\n\
                     [[categories]]\nname = \"Boards\"\nmatch = [\"board\"]\n";
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{text}{rules}")).unwrap();

        let (code, edited) = ingest(&app);
        assert_eq!(code, Some(0), "{edited}");
        let report = &edited["sources"][0];
        assert_eq!(report["changed"], 0, "{edited}");
        let revised = report["revised"].as_i64().unwrap();
        assert!(revised > 0, "{edited}");
        assert_eq!(
            count(&db.url, "change_events").await,
            events,
            "no change event"
        );
        assert_eq!(count(&db.url, "revisions").await, revisions + revised);
        let moved = app.json(&["resources", "list", "--category", "workforce", "--json"]);
        let titles: Vec<&str> = moved
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["title"].as_str().unwrap())
            .collect();
        assert!(
            titles.iter().any(|t| t.contains("Workforce Strategy")),
            "{titles:?}"
        );
        app.run_ok(&["feeds", "write", "out"]);
        let feed = std::fs::read_to_string(app.path("out/workforce.atom")).unwrap();
        assert!(
            feed.contains("Workforce Strategy"),
            "the feed moved it at once"
        );
    })
    .await;
}

/// An `html` source reading `site`'s `/library` (and its pages).
fn site_source(site: &Site, extra: &str) -> String {
    format!(
        "[[sources]]\nname = \"library\"\nkind = \"html\"\nurl = \"{}\"\npage_pause_ms = 0\n\
         timeout_s = 2\n{extra}\n[sources.select]\nentry = \"ul.list > li\"\ntitle = \"h3\"\n\
         link = \"h3 a\"\nnext_page = \"a[rel=next]\"\n",
        site.url("/library")
    )
}

fn items(names: &[&str]) -> String {
    names
        .iter()
        .map(|t| format!("<li><h3><a href=\"/r/{t}\">{t}</a></h3></li>"))
        .collect()
}

fn listing(names: &[&str], next: Option<&str>) -> String {
    let next = next
        .map(|n| format!("<a rel=\"next\" href=\"{n}\">Next</a>"))
        .unwrap_or_default();
    format!(
        "<html><body><ul class=\"list\">{}</ul>{next}</body></html>",
        items(names)
    )
}

fn stored_titles(app: &TestApp) -> Vec<String> {
    let mut titles: Vec<String> = blocking(|| app.json(&["resources", "list", "--json"]))
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["title"].as_str().unwrap().to_owned())
        .collect();
    titles.sort();
    titles
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_13_a_page_cut_mid_html_twice_withdraws_nothing() {
    on_every_backend(|db| async move {
        let site = Site::start().await;
        let all = ["a", "b", "c", "d", "e"];
        site.route("/library", Reply::html(listing(&all, None)));
        let app = TestApp::new(&db.url, &site_source(&site, ""));
        let (_, first) = ingest(&app);
        assert_eq!(first["sources"][0]["new"], 5, "{first}");

        let whole = listing(&all, None);
        let cut = &whole[..whole.find("<li><h3><a href=\"/r/d\"").unwrap() + 10];
        let closed_early =
            format!("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n{cut}");
        let short = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{cut}",
            whole.len()
        );
        for raw in [closed_early, short.clone(), short] {
            site.route(
                "/library",
                Reply::Raw {
                    bytes: raw.into_bytes(),
                    hang: false,
                },
            );
            let (_, report) = ingest(&app);
            let source = &report["sources"][0];
            assert_eq!(source["withdrawn"], 0, "{report}");
            assert_eq!(source["unchanged"], 3, "{report}");
            let warnings = source["warnings"].to_string();
            assert!(
                warnings.contains(&format!("{} is incomplete", site.url("/library"))),
                "{report}"
            );
        }
        assert_eq!(stored_titles(&app), all);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_13_an_off_origin_next_link_keeps_what_was_read_and_withdraws_nothing() {
    on_every_backend(|db| async move {
        let site = Site::start().await;
        let elsewhere = Site::start().await;
        let away = elsewhere.url("/library?page=2").to_string();
        site.route("/library", Reply::html(listing(&["a", "b"], Some(&away))));
        let app = TestApp::new(&db.url, &site_source(&site, ""));
        let (_, first) = ingest(&app);
        assert_eq!(
            first["sources"][0]["new"], 2,
            "earlier pages are stored: {first}"
        );
        assert!(
            first["sources"][0]["warnings"]
                .to_string()
                .contains("leaves"),
            "{first}"
        );

        site.route(
            "/library",
            Reply::html(listing(&["a", "b"], Some("/library?page=2"))),
        );
        site.route("/library?page=2", Reply::html(listing(&["c"], None)));
        let (code, fixed) = ingest(&app);
        assert_eq!(
            (code, &fixed["sources"][0]["new"]),
            (Some(0), &Value::from(1)),
            "{fixed}"
        );
        assert_eq!(stored_titles(&app), ["a", "b", "c"]);

        site.route("/library", Reply::html(listing(&["a", "b"], Some(&away))));
        for _ in 0..2 {
            let (_, report) = ingest(&app);
            assert_eq!(report["sources"][0]["withdrawn"], 0, "{report}");
        }
        assert_eq!(stored_titles(&app), ["a", "b", "c"]);
        assert_eq!(elsewhere.total_hits(), 0, "nothing fetched off-origin");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_13_a_hanging_source_fails_within_run_timeout_s() {
    let site = Site::start().await;
    site.route("/library", Reply::Hang);
    let app = TestApp::new(
        "sqlite://tidings.db",
        &site_source(&site, "run_timeout_s = 2").replacen("timeout_s = 2\n", "timeout_s = 1\n", 1),
    );
    let started = Instant::now();
    let (code, report) = ingest(&app);
    let took = started.elapsed();
    assert_eq!(code, Some(1));
    let error = report["sources"][0]["error"].as_str().unwrap();
    assert!(error.contains("run_timeout_s = 2"), "{error}");
    assert!(error.contains(site.url("/library").as_str()), "{error}");
    // One request would take 1 s, four (three retries) with backoff over 5 s.
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert!(
        site.hits("/library") >= 2,
        "retries happened inside the deadline"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_13_check_tells_the_same_truth_as_ingest_and_names_the_url() {
    let site = Site::start().await;
    site.route(
        "/library",
        Reply::html("<html><body><p>Under maintenance</p></body></html>"),
    );
    let app = TestApp::new("sqlite://tidings.db", &site_source(&site, ""));
    let output = blocking(|| app.run(&["check", "--json"]));
    assert_eq!(output.status.code(), Some(1));
    let check: Value = serde_json::from_slice(&output.stdout).unwrap();
    let error = check["sources"][0]["error"].as_str().unwrap().to_owned();
    assert!(error.contains(site.url("/library").as_str()), "{error}");
    let (code, report) = ingest(&app);
    assert_eq!(code, Some(1));
    assert_eq!(
        report["sources"][0]["error"].as_str().unwrap(),
        error,
        "the same reason"
    );

    site.route("/library", Reply::status(503));
    let output = blocking(|| app.run(&["check", "--json"]));
    assert_eq!(output.status.code(), Some(1));
    let check: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        check["sources"][0]["error"]
            .as_str()
            .unwrap()
            .contains(site.url("/library").as_str())
    );
}

#[tokio::test]
async fn issue_13_check_shows_the_summary_that_would_hold_a_run() {
    let n = fixture_entries("v1");
    let site = FixtureSite::start("v1");
    let app = TestApp::new("sqlite://tidings.db", &site.source_toml());
    assert_eq!(ingest(&app).0, Some(0));
    edit_config(&app, "date = \"time\"", "date = \"time.published\"");
    let output = app.run(&["check", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let check: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(check["sources"][0]["held"], true, "{check}");
    let (emptied, changed) = dates_without_the_selector("v1");
    assert_eq!(
        check["sources"][0]["summary"][0],
        format!(
            "date: emptied on {emptied} of {n}, changed on {} of {n}",
            changed - emptied
        )
        .as_str()
    );
    assert!(
        runs(&app).iter().all(|r| r["outcome"] == "ok"),
        "check stores nothing"
    );
}

#[tokio::test]
async fn issue_13_expect_violations_fail_the_run() {
    on_every_backend(|db| async move {
        let n = fixture_entries("v1");
        let site = FixtureSite::start("v1");
        let toml = site.source_toml().replace(
            "page_pause_ms = 0",
            &format!("page_pause_ms = 0\nexpect = {{ min_entries = {} }}", n + 1),
        );
        let app = TestApp::new(&db.url, &toml);
        let (code, report) = ingest(&app);
        assert_eq!(code, Some(1));
        assert!(
            report["sources"][0]["error"]
                .as_str()
                .unwrap()
                .contains("expect.min_entries"),
            "{report}"
        );
        assert_eq!(
            app.json(&["resources", "list", "--json"]),
            Value::Array(vec![])
        );

        edit_config(
            &app,
            &format!("min_entries = {}", n + 1),
            "required = [\"title\", \"link\", \"date\"]",
        );
        edit_config(&app, "date = \"time\"", "date = \"time.published\"");
        let (code, report) = ingest(&app);
        assert_eq!(code, Some(1));
        let error = report["sources"][0]["error"].as_str().unwrap();
        assert!(
            error.contains(&format!(
                "date is empty on {} of {n} entries",
                dates_without_the_selector("v1").0
            )),
            "{error}"
        );
        assert_eq!(
            app.json(&["resources", "list", "--json"]),
            Value::Array(vec![])
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_13_the_first_of_two_duplicates_wins_with_a_warning() {
    let site = Site::start().await;
    let page = "<html><body><ul class=\"list\">\
        <li><h3><a href=\"/r/x\">First title</a></h3></li>\
        <li><h3><a href=\"/r/y\">Other</a></h3></li>\
        <li><h3><a href=\"/r/x\">Second title</a></h3></li></ul></body></html>";
    site.route("/library", Reply::html(page));
    let app = TestApp::new("sqlite://tidings.db", &site_source(&site, ""));
    let (code, report) = ingest(&app);
    assert_eq!(code, Some(0), "{report}");
    let warnings = report["sources"][0]["warnings"].to_string();
    assert!(warnings.contains("entry 3 repeats entry 1"), "{warnings}");
    assert_eq!(stored_titles(&app), ["First title", "Other"]);
}
