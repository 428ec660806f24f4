// Scraping the fixture library over HTTP: exact entries, 304s, a broken site, and change detection v1 -> v2.

use serde_json::Value;

use crate::support::app::TestApp;
use crate::support::consumers;
use crate::support::db::on_every_backend;
use crate::support::fixture_site::{Expected, FixtureSite};

/// A config whose only source is the site (naming sources replaces the built-in seed source).
fn app_for(site: &FixtureSite, db_url: &str) -> TestApp {
    TestApp::new(db_url, &site.source_toml())
}

fn report(app: &TestApp) -> (Option<i32>, Value) {
    let output = app.run(&["ingest", "--json"]);
    let json = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}", String::from_utf8_lossy(&output.stderr)));
    (output.status.code(), json)
}

fn counts(report: &Value) -> [u64; 5] {
    let s = &report["sources"][0];
    ["new", "changed", "withdrawn", "reappeared", "unchanged"].map(|k| s[k].as_u64().unwrap())
}

/// The number of resources `resources list` shows.
fn listed(app: &TestApp) -> usize {
    app.json(&["resources", "list", "--json"])
        .as_array()
        .unwrap()
        .len()
}

fn by_link<'a>(rows: &'a [Value], link: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["link"] == link)
        .unwrap_or_else(|| panic!("{link} not stored"))
}

#[tokio::test]
async fn v1_yields_exactly_the_expected_entries_with_every_field() {
    on_every_backend(|db| async move {
        let site = FixtureSite::start("v1");
        let app = app_for(&site, &db.url);
        let v1 = Expected::of("v1");
        let (code, first) = report(&app);
        assert_eq!(code, Some(0), "{first}");
        assert_eq!(counts(&first), [v1.count(), 0, 0, 0, 0]);
        let stored = app.json(&["resources", "list", "--json"]);
        let rows = stored.as_array().unwrap();
        assert_eq!(rows.len(), v1.entries.len());
        let origin = format!("http://127.0.0.1:{}", site.port);
        for want in &v1.entries {
            let link = format!("{origin}{}", want["link"].as_str().unwrap());
            let got = by_link(rows, &link);
            assert_eq!(got["title"], want["title"], "{link}");
            assert_eq!(got["category"], want["category"], "{link}");
            assert_eq!(got["date"], want["date"], "{link}");
            let download = format!("{origin}{}", want["download"].as_str().unwrap());
            assert_eq!(got["download"], download.as_str(), "{link}");
            let starts = want["summary_starts"].as_str().unwrap();
            assert!(
                got["summary"].as_str().unwrap().starts_with(starts),
                "{link}: {}",
                got["summary"]
            );
        }
    })
    .await;
}

#[tokio::test]
async fn the_second_run_asks_conditionally_and_reuses_304s() {
    let site = FixtureSite::start("v1");
    let app = app_for(&site, "sqlite://tidings.db");
    let v1 = Expected::of("v1");
    assert_eq!(counts(&report(&app).1), [v1.count(), 0, 0, 0, 0]);
    let after_first = site.log_lines().len();
    assert_eq!(
        after_first,
        1 + v1.pages,
        "robots.txt and every page: {:?}",
        site.log_lines()
    );
    assert_eq!(counts(&report(&app).1), [0, 0, 0, 0, v1.count()]);
    let second: Vec<String> = site.log_lines().split_off(after_first);
    let pages: Vec<&String> = second
        .iter()
        .filter(|l| l.contains("resource-library"))
        .collect();
    assert_eq!(pages.len(), v1.pages, "{second:?}");
    for line in pages {
        assert!(
            line.contains("\" 304 ") && !line.contains("inm=None"),
            "conditional: {line}"
        );
    }
}

#[tokio::test]
async fn a_broken_site_fails_the_run_and_changes_nothing() {
    on_every_backend(|db| async move {
        let site = FixtureSite::start("v1");
        let app = app_for(&site, &db.url);
        assert_eq!(report(&app).0, Some(0));
        app.run_ok(&["feeds", "write", "before"]);
        site.switch("v3-broken");
        for _ in 0..3 {
            let (code, failed) = report(&app);
            assert_eq!(code, Some(1));
            assert_eq!(counts(&failed), [0, 0, 0, 0, 0]);
            assert!(
                failed["sources"][0]["error"]
                    .as_str()
                    .unwrap()
                    .contains("no entries"),
                "{failed}"
            );
        }
        let v1 = Expected::of("v1").entries.len();
        assert_eq!(listed(&app), v1);
        app.run_ok(&["feeds", "write", "after"]);
        let feed = consumers::feedparser(&app.path("after/all.rss"));
        assert_eq!(feed.entries.len(), v1, "the last good feed is still served");
        let before = std::fs::read(app.path("before/all.atom")).unwrap();
        assert_eq!(before, std::fs::read(app.path("after/all.atom")).unwrap());
    })
    .await;
}

/// An edited resource keeps its atom:id and its `updated` moves; a withdrawn one leaves the feed.
fn assert_feeds_show_edits_in_place(app: &TestApp, origin: &str) {
    app.run_ok(&["feeds", "write", "v2"]);
    let before = consumers::feedparser(&app.path("v1/all.atom"));
    let after = consumers::feedparser(&app.path("v2/all.atom"));
    let find = |feed: &consumers::ParsedFeed, slug: &str| {
        let link = format!("{origin}{slug}");
        feed.entries
            .iter()
            .find(|e| e.link == link)
            .map(|e| (e.id.clone(), e.updated.clone()))
    };
    let (old_id, old_updated) = find(&before, "carers-strategy-2023-2026").unwrap();
    let (new_id, new_updated) = find(&after, "carers-strategy-2023-2026").unwrap();
    assert_eq!(old_id, new_id, "an edit keeps the atom:id");
    assert!(
        new_updated > old_updated,
        "updated moves: {old_updated} -> {new_updated}"
    );
    assert_eq!(
        find(&before, "annual-report-2022-23"),
        find(&after, "annual-report-2022-23")
    );
    assert!(find(&before, "primary-care-networks-explained").is_some());
    assert!(
        find(&after, "primary-care-networks-explained").is_none(),
        "withdrawn leaves the feed"
    );
    let rss = consumers::feedparser(&app.path("v2/all.rss"));
    let ids: std::collections::HashSet<&str> = rss.entries.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), rss.entries.len(), "no duplicated items");
}

#[tokio::test]
async fn v1_then_v2_reports_exactly_what_changed() {
    on_every_backend(|db| async move {
        let site = FixtureSite::start("v1");
        let app = app_for(&site, &db.url);
        assert_eq!(report(&app).0, Some(0));
        app.run_ok(&["feeds", "write", "v1"]);
        site.switch("v2");
        let v2 = Expected::of("v2");
        let changes = Expected::of("v1").changes_to(&v2);
        // The fixture's own diff: 2 new, 2 changed, 1 gone (checked here so
        // an edit of the fixture that leaves one kind out is noticed).
        assert!(
            changes.new > 0 && changes.changed > 0 && changes.gone > 0,
            "{changes:?}"
        );
        let (_, first_v2) = report(&app);
        // The removed one is only missing so far.
        assert_eq!(
            counts(&first_v2),
            [changes.new, changes.changed, 0, 0, changes.unchanged]
        );
        let (_, second_v2) = report(&app);
        assert_eq!(
            counts(&second_v2),
            [0, 0, changes.gone, 0, v2.count()],
            "withdrawn after the second successful run"
        );
        let (_, third_v2) = report(&app);
        assert_eq!(counts(&third_v2), [0, 0, 0, 0, v2.count()]);

        let rows = app.json(&["resources", "list", "--json"]);
        let rows = rows.as_array().unwrap();
        assert_eq!(rows.len(), v2.entries.len(), "v1 - withdrawn + new");
        let origin = format!("http://127.0.0.1:{}/resource-library/", site.port);
        assert!(
            rows.iter()
                .all(|r| r["link"] != format!("{origin}primary-care-networks-explained").as_str())
        );
        for (slug, revisions) in [
            ("carers-strategy-2023-2026", 2),
            ("video-living-well-with-diabetes", 2),
            ("annual-report-2022-23", 1),
            ("pharmacy-first-leaflet", 1),
        ] {
            let id = by_link(rows, &format!("{origin}{slug}"))["id"]
                .as_str()
                .unwrap()
                .to_owned();
            let detail = app.json(&["resources", "show", &id, "--json"]);
            assert_eq!(
                detail["revisions"].as_array().unwrap().len(),
                revisions,
                "{slug}"
            );
        }
        let video = by_link(rows, &format!("{origin}video-living-well-with-diabetes"));
        assert_eq!(
            video["title"],
            "Video: living well with type 2 diabetes (with Bengali subtitles)"
        );

        assert_feeds_show_edits_in_place(&app, &origin);

        site.switch("v3-broken");
        assert_eq!(counts(&report(&app).1), [0, 0, 0, 0, 0]);
        assert_eq!(listed(&app), v2.entries.len());
    })
    .await;
}

mod hostile {
    //! Hostile listings through `source::scrape` against the programmable loopback site.

    use std::sync::Arc;
    use std::time::Duration;

    use tidings::clock::SystemClock;
    use tidings::config::{HtmlSourceConfig, Selectors};
    use tidings::source::SourceError;
    use tidings::source::scrape::{Scrape, ScrapeEnv, scrape};
    use tidings::source::select::FieldSelector;

    use crate::support::site::{Reply, Site};

    fn config(site: &Site, max_pages: u32) -> HtmlSourceConfig {
        let p = |s: &str| FieldSelector::parse(s).unwrap();
        HtmlSourceConfig {
            url: site.url("/library"),
            select: Selectors {
                entry: p("li"),
                title: p("h3"),
                link: p("h3 a"),
                summary: None,
                date: None,
                category: None,
                download: None,
                next_page: Some(p("a[rel=next]")),
            },
            max_pages,
            page_pause: Duration::ZERO,
            timeout: Duration::from_secs(2),
            max_bytes: 1_000_000,
        }
    }

    fn listing(items: &[&str], next: Option<&str>) -> String {
        let items: String = items
            .iter()
            .map(|t| format!("<li><h3><a href=\"/r/{t}\">{t}</a></h3></li>"))
            .collect();
        let next = next
            .map(|n| format!("<a rel=\"next\" href=\"{n}\">Next</a>"))
            .unwrap_or_default();
        format!("<html><body><ul>{items}</ul>{next}</body></html>")
    }

    async fn run(site: &Site, max_pages: u32) -> Result<Scrape, SourceError> {
        let env = ScrapeEnv {
            contact: "https://feeds.example.org/".to_owned(),
            cached: Vec::new(),
            clock: Arc::new(SystemClock),
        };
        scrape("library", &config(site, max_pages), env).await
    }

    fn titles(scrape: &Scrape) -> Vec<&str> {
        scrape
            .snapshot
            .entries
            .iter()
            .map(|e| e.title.as_str())
            .collect()
    }

    #[tokio::test]
    async fn a_next_link_back_to_itself_ends_the_listing() {
        let site = Site::start().await;
        site.route(
            "/library",
            Reply::html(listing(&["a", "b"], Some("/library"))),
        );
        let scrape = run(&site, 50).await.unwrap();
        assert_eq!(titles(&scrape), ["a", "b"]);
        assert_eq!(site.hits("/library"), 1, "never fetched twice");
        assert!(!scrape.snapshot.partial);
    }

    #[tokio::test]
    async fn a_cycle_through_pages_fetches_each_page_once() {
        let site = Site::start().await;
        site.route(
            "/library",
            Reply::html(listing(&["a"], Some("/library?page=2"))),
        );
        site.route(
            "/library?page=2",
            Reply::html(listing(&["b"], Some("/library"))),
        );
        let scrape = run(&site, 50).await.unwrap();
        assert_eq!(titles(&scrape), ["a", "b"]);
        assert_eq!(site.hits("/library") + site.hits("/library?page=2"), 2);
    }

    #[tokio::test]
    async fn more_pages_than_allowed_is_a_partial_run() {
        let site = Site::start().await;
        site.route(
            "/library",
            Reply::html(listing(&["a"], Some("/library?page=2"))),
        );
        site.route(
            "/library?page=2",
            Reply::html(listing(&["b"], Some("/library?page=3"))),
        );
        site.route("/library?page=3", Reply::html(listing(&["c"], None)));
        let scrape = run(&site, 2).await.unwrap();
        assert_eq!(titles(&scrape), ["a", "b"]);
        assert!(
            scrape.snapshot.partial,
            "unread pages must not withdraw their entries"
        );
        assert!(scrape.snapshot.warnings[0].contains("max_pages = 2"));
        assert_eq!(site.hits("/library?page=3"), 0);
    }

    #[tokio::test]
    async fn issue_13_a_next_link_to_another_origin_keeps_what_was_read_as_a_partial_run() {
        let site = Site::start().await;
        let elsewhere = Site::start().await;
        let next = elsewhere.url("/steal").to_string();
        site.route("/library", Reply::html(listing(&["a"], Some(&next))));
        let scrape = run(&site, 50).await.unwrap();
        assert_eq!(titles(&scrape), ["a"]);
        assert!(
            scrape.snapshot.partial,
            "unread pages must not withdraw their entries"
        );
        let warning = &scrape.snapshot.warnings[0];
        assert!(warning.contains("/steal"), "{warning}");
        assert_eq!(
            elsewhere.total_hits(),
            0,
            "nothing reached an address the config did not name"
        );
    }

    #[tokio::test]
    async fn a_page_that_fails_midway_fails_the_whole_run() {
        let site = Site::start().await;
        site.route(
            "/library",
            Reply::html(listing(&["a"], Some("/library?page=2"))),
        );
        site.route("/library?page=2", Reply::status(404));
        let error = run(&site, 50).await.unwrap_err();
        assert!(error.to_string().contains("404"), "{error}");
    }

    #[tokio::test]
    async fn entries_missing_a_title_or_link_are_warnings_not_items() {
        let site = Site::start().await;
        let page = "<html><body><ul><li><h3></h3></li><li><h3>No link</h3></li><li><h3><a href=\"/r/ok\">ok</a></h3></li></ul></body></html>";
        site.route("/library", Reply::html(page));
        let scrape = run(&site, 50).await.unwrap();
        assert_eq!(titles(&scrape), ["ok"]);
        assert_eq!(scrape.snapshot.warnings.len(), 2);
    }

    #[tokio::test]
    async fn a_windows_1252_page_is_decoded() {
        let site = Site::start().await;
        let mut body = b"<ul><li><h3><a href=\"/r/cafe\">Together Caf".to_vec();
        body.extend([0xe9, 0x20, 0x96, 0x20]);
        body.extend(b"May 2020</a></h3></li></ul></body></html>");
        site.route(
            "/library",
            Reply::status(200)
                .header("Content-Type", "text/html; charset=windows-1252")
                .body(body),
        );
        let scrape = run(&site, 50).await.unwrap();
        assert_eq!(titles(&scrape), ["Together Café – May 2020"]);
    }
}

#[tokio::test]
async fn check_shows_the_pages_read_and_the_fields_extracted() {
    let site = FixtureSite::start("v1");
    let app = app_for(&site, "sqlite://tidings.db");
    let v1 = Expected::of("v1");
    let out = app.run_ok(&["check"]);
    assert!(out.contains(&format!("{} entries", v1.count())), "{out}");
    assert_eq!(
        out.matches("  read: http://127.0.0.1").count(),
        v1.pages,
        "{out}"
    );
    assert!(
        out.contains(
            "title     Winter vaccinations: flu and COVID-19 boosters for eligible residents"
        ),
        "{out}"
    );
    assert!(out.contains("date      2023-10-02"), "{out}");
    assert!(
        !out.contains("(empty)"),
        "every field is found on the fixture: {out}"
    );
}

#[tokio::test]
async fn serve_runs_a_source_on_its_schedule_one_run_at_a_time() {
    let site = FixtureSite::start("v1");
    let every_second = site.source_toml().replace(
        "page_pause_ms = 0",
        "page_pause_ms = 0\nschedule = \"* * * * * *\"",
    );
    let app = TestApp::new("sqlite://tidings.db", &every_second);
    let _served = app.serve().await;
    let robots_fetches = || {
        site.log_lines()
            .iter()
            .filter(|l| l.contains("/robots.txt"))
            .count()
    };
    crate::support::app::wait_until(std::time::Duration::from_secs(20), || async {
        robots_fetches() >= 3
    })
    .await;
    // Each run fetches robots.txt then five pages; a run that overlapped
    // another would split some run's pages across two robots.txt fetches.
    let lines = site.log_lines();
    let runs: Vec<&[String]> = lines.split(|l| l.contains("/robots.txt")).skip(1).collect();
    for run in &runs[..runs.len() - 1] {
        assert_eq!(run.len(), 5, "a run's five pages came together: {lines:?}");
    }
}

/// The holder of the scheduler lease, straight from the database.
async fn scheduler_lease_holder(store: &tidings::store::Store) -> Option<String> {
    sqlx::query_scalar("SELECT holder FROM leases WHERE name = 'scheduler'")
        .fetch_optional(store.pool())
        .await
        .unwrap()
}

/// Whether `holder` names process `pid` (holder ids are `host:pid:random`).
fn holds(holder: &Option<String>, pid: u32) -> bool {
    holder
        .as_deref()
        .is_some_and(|h| h.split(':').nth(1) == Some(pid.to_string().as_str()))
}

#[tokio::test]
async fn two_replicas_run_the_schedule_once_and_a_survivor_takes_over() {
    on_every_backend(|db| async move {
        let site = FixtureSite::start("v1");
        let every_second = site.source_toml().replace(
            "page_pause_ms = 0",
            "page_pause_ms = 0\nschedule = \"* * * * * *\"",
        );
        let lease = "scheduler_lease_s = 3";
        let first = TestApp::with_server_keys(&db.url, lease, &every_second);
        let second = TestApp::with_server_keys(&db.url, lease, &every_second);
        let mut served = [first.serve().await, second.serve().await];
        let robots = || {
            site.log_lines()
                .iter()
                .filter(|l| l.contains("/robots.txt"))
                .count()
        };
        let wait = |n: usize| {
            crate::support::app::wait_until(
                std::time::Duration::from_secs(20),
                move || async move { robots() >= n },
            )
        };
        wait(4).await;
        // Kill the replica that holds the scheduler lease (its holder id
        // carries its process id), not merely the one started first.
        let holder = scheduler_lease_holder(&db.store).await;
        let leader = served
            .iter()
            .position(|s| holds(&holder, s.pid()))
            .unwrap_or_else(|| panic!("the lease holder {holder:?} is one of the replicas"));
        let survivor = served[1 - leader].pid();
        served[leader].kill();
        let after_kill = robots();
        // The survivor takes the lease and runs within one lease period (3 s) plus a tick.
        crate::support::app::wait_until(std::time::Duration::from_secs(8), || async {
            holds(&scheduler_lease_holder(&db.store).await, survivor) && robots() >= after_kill + 2
        })
        .await;
        // Two schedulers at once would interleave runs: every complete run is
        // robots.txt then its five pages, back to back.
        let lines = site.log_lines();
        let runs: Vec<&[String]> = lines.split(|l| l.contains("/robots.txt")).skip(1).collect();
        for run in &runs[..runs.len() - 1] {
            assert!(
                run.len() <= 5,
                "runs of two replicas interleaved: {lines:#?}"
            );
        }
    })
    .await;
}
