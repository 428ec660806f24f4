// `tidings serve` over real HTTP on loopback: feeds with ETag/304/gzip, pages, API, readers.

use std::io::Read;

use reqwest::StatusCode;
use reqwest::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE,
    IF_NONE_MATCH, LAST_MODIFIED, VARY,
};
use serde_json::Value;

use crate::support::app::{TestApp, wait_until};
use crate::support::db::on_every_backend;
use crate::support::smtp::{Maildir, an_alert, smtp_config};
use crate::support::{consumers, get_text, http};

async fn get(url: &str) -> reqwest::Response {
    http()
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

async fn feed_titles(app: &TestApp, file: &str) -> Vec<String> {
    let body = get(&app.url(&format!("/feeds/{file}")))
        .await
        .bytes()
        .await
        .unwrap();
    let path = app.path(&format!("fetched-{file}"));
    std::fs::write(&path, &body).unwrap();
    let parsed = consumers::feedparser(&path);
    assert!(!parsed.bozo, "{file}: {}", parsed.bozo_exception);
    parsed.entries.into_iter().map(|e| e.title).collect()
}

#[tokio::test]
async fn a_reader_pointed_at_all_rss_reads_nine_items() {
    on_every_backend(|db| async move {
        let app = TestApp::new(&db.url, "");
        let _served = app.serve().await;
        wait_until(std::time::Duration::from_secs(20), || async {
            feed_titles(&app, "all.rss").await.len() == 9
        })
        .await;
        let items = consumers::newsboat(&app.url("/feeds/all.rss"), &app.path("newsboat"));
        assert_eq!(items.len(), 9, "newsboat stored nine items");
        assert!(
            items
                .iter()
                .any(|i| i.title.starts_with("OCEAN - Offering"))
        );
        assert_eq!(feed_titles(&app, "all.atom").await.len(), 9);
        assert_eq!(
            feed_titles(&app, "board-papers.rss").await,
            ["Health and Wellbeing Board - 17 November 2020"]
        );
    })
    .await;
}

#[tokio::test]
async fn feeds_answer_conditional_requests_and_gzip() {
    let app = TestApp::new("sqlite://tidings.db", "");
    app.run_ok(&["ingest"]);
    let _served = app.serve().await;
    let url = app.url("/feeds/all.rss");
    let first = get(&url).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(
        first.headers()[CONTENT_TYPE],
        "application/rss+xml; charset=utf-8"
    );
    let etag = first.headers()[ETAG].to_str().unwrap().to_owned();
    let modified = first.headers()[LAST_MODIFIED].to_str().unwrap().to_owned();
    let plain = first.bytes().await.unwrap();

    let client = http();
    let by_etag = client
        .get(&url)
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(by_etag.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(by_etag.headers()[ETAG].to_str().unwrap(), etag);
    // RFC 9110 15.4.5: what a 200 would carry for caches, no other metadata.
    assert_eq!(by_etag.headers()[CACHE_CONTROL], "public, max-age=300");
    assert_eq!(by_etag.headers()[VARY], "Accept-Encoding");
    assert!(by_etag.headers().get(CONTENT_TYPE).is_none());
    assert!(by_etag.bytes().await.unwrap().is_empty());
    let by_date = client
        .get(&url)
        .header(IF_MODIFIED_SINCE, &modified)
        .send()
        .await
        .unwrap();
    assert_eq!(by_date.status(), StatusCode::NOT_MODIFIED);
    let stale = client
        .get(&url)
        .header(IF_NONE_MATCH, "\"something-else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::OK);

    let zipped = client
        .get(&url)
        .header(ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(zipped.headers()[CONTENT_ENCODING], "gzip");
    let compressed = zipped.bytes().await.unwrap();
    assert!(compressed.len() < plain.len());
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_end(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, plain, "the gzip copy is the same feed");
}

#[tokio::test]
async fn pages_list_resources_link_feeds_and_escape_text() {
    let app = TestApp::new("sqlite://tidings.db", "");
    std::fs::write(
        app.path("seeds/hostile.txt"),
        "Resource Library\n\nIntro\n\nResource Library\n\n<script>alert(1)</script> & friends\n\nSummary with <b>tags</b>\n",
    )
    .unwrap();
    app.run_ok(&["ingest"]);
    let _served = app.serve().await;
    let home = get(&app.url("/")).await;
    assert_eq!(home.status(), StatusCode::OK);
    let csp = home.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'none'"));
    let html = home.text().await.unwrap();
    assert!(html.contains(r#"<link rel="alternate" type="application/rss+xml""#));
    assert!(html.contains(&app.url("/feeds/all.atom")));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; friends"));
    assert!(!html.contains("<script>alert(1)"));

    let filtered = get(&app.url("/?category=board-papers"))
        .await
        .text()
        .await
        .unwrap();
    assert!(filtered.contains("Health and Wellbeing Board"));
    assert!(!filtered.contains("OCEAN - Offering"));
    assert!(
        filtered.contains(&app.url("/feeds/board-papers.rss")),
        "autodiscovery of the category feed"
    );

    let list: Value = serde_json::from_slice(
        &get(&app.url("/api/resources?category=news"))
            .await
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    let id = list[0]["id"].as_str().unwrap();
    let page = get(&app.url(&format!("/resources/{id}"))).await;
    assert_eq!(page.status(), StatusCode::OK);
    // The heading, as a browser reads it (entities decoded), is the whole title.
    let html = scraper::Html::parse_document(&page.text().await.unwrap());
    let heading: String = html
        .select(&scraper::Selector::parse("h1").unwrap())
        .next()
        .expect("the page has a heading")
        .text()
        .collect();
    assert_eq!(heading, list[0]["title"].as_str().unwrap());
    assert_eq!(
        get(&app.url("/resources/nope")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&app.url("/feeds/nope.rss")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(get(&app.url("/readyz")).await.status(), StatusCode::OK);
    let bad = get(&app.url("/api/resources?since=yesterday")).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn serve_picks_up_what_another_process_ingested() {
    let app = TestApp::new("sqlite://tidings.db", "");
    let _served = app.serve().await;
    wait_until(std::time::Duration::from_secs(20), || async {
        feed_titles(&app, "all.rss").await.len() == 9
    })
    .await;
    std::fs::write(
        app.path("seeds/more.txt"),
        "Resource Library\n\nIntro\n\nResource Library\n\nNew winter leaflet\n\nWhere to get help this winter.\n",
    )
    .unwrap();
    app.run_ok(&["ingest"]);
    wait_until(std::time::Duration::from_secs(20), || async {
        feed_titles(&app, "all.rss").await.len() == 10
    })
    .await;
    assert!(
        feed_titles(&app, "leaflets.rss")
            .await
            .contains(&"New winter leaflet".to_owned())
    );
}

/// Every feed the OPML list names (RSS), and its Atom twin, by file name, with its ETag.
async fn feed_etags(app: &TestApp) -> std::collections::BTreeMap<String, String> {
    let opml = get_text(&app.url("/feeds.opml"), 200).await;
    let mut names = Vec::new();
    for url in opml.split("xmlUrl=\"").skip(1) {
        let url = &url[..url.find('"').unwrap()];
        let rss = url.rsplit('/').next().unwrap();
        let stem = rss.strip_suffix(".rss").unwrap();
        names.extend([rss.to_owned(), format!("{stem}.atom")]);
    }
    let mut etags = std::collections::BTreeMap::new();
    for name in names {
        let response = get(&app.url(&format!("/feeds/{name}"))).await;
        assert_eq!(response.status(), StatusCode::OK, "{name}");
        let etag = response.headers()[ETAG].to_str().unwrap().to_owned();
        etags.insert(name, etag);
    }
    etags
}

#[tokio::test]
async fn issue_13_one_new_resource_changes_only_the_etags_of_feeds_that_show_it() {
    on_every_backend(|db| async move {
        let app = TestApp::new(&db.url, "");
        app.run_ok(&["ingest"]);
        let _served = app.serve().await;
        wait_until(std::time::Duration::from_secs(20), || async {
            feed_titles(&app, "all.rss").await.len() == 9
        })
        .await;
        let before = feed_etags(&app).await;
        // Every category has its pair of feeds, empty or not.
        assert!(before.len() >= 2 * 9, "{before:?}");
        // "guide" is a keyword of the built-in Leaflets rule, and of no rule before it.
        std::fs::write(
            app.path("seeds/more.txt"),
            "Resource Library\n\nIntro\n\nResource Library\n\n\
             Winter guide for carers\n\nWhere to get help this winter.\n",
        )
        .unwrap();
        app.run_ok(&["ingest"]);
        wait_until(std::time::Duration::from_secs(20), || async {
            feed_titles(&app, "all.rss").await.len() == 10
        })
        .await;
        let after = feed_etags(&app).await;
        let changed: Vec<&str> = before
            .iter()
            .filter(|(name, etag)| after[*name] != **etag)
            .map(|(name, _)| name.as_str())
            .collect();
        assert_eq!(
            changed,
            ["all.atom", "all.rss", "leaflets.atom", "leaflets.rss"],
            "only the feeds that show the new resource change"
        );
    })
    .await;
}

/// `/metrics` parsed by the Prometheus project's own Python parser: `{name{labels}: value}`.
fn parse_metrics(text: &str) -> std::collections::BTreeMap<String, f64> {
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        out[f"{s.name}{{{labels}}}"] = s.value
print(json.dumps(out))
"#;
    let mut child = std::process::Command::new("/usr/bin/python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3-prometheus-client is installed (scripts/test.sh installs it)");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the Prometheus parser refused /metrics:\n{text}"
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test]
async fn metrics_count_runs_and_feed_requests_in_prometheus_format() {
    let app = TestApp::new("sqlite://tidings.db", "");
    let _served = app.serve().await;
    wait_until(std::time::Duration::from_secs(20), || async {
        feed_titles(&app, "all.rss").await.len() == 9
    })
    .await;
    let url = app.url("/feeds/all.rss");
    let etag = get(&url).await.headers()[ETAG].to_str().unwrap().to_owned();
    let not_modified = http()
        .get(&url)
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);
    let response = get(&app.url("/metrics")).await;
    assert!(
        response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let metrics = parse_metrics(&response.text().await.unwrap());
    assert_eq!(
        metrics["tidings_ingest_runs_total{outcome=ok,source=seeds}"],
        1.0
    );
    assert_eq!(metrics["tidings_ingest_entries_seen{source=seeds}"], 9.0);
    assert_eq!(metrics["tidings_change_events_total{kind=new}"], 9.0);
    assert!(metrics["tidings_source_last_success_timestamp_seconds{source=seeds}"] > 1.7e9);
    assert!(metrics["tidings_feed_requests_total{status=200}"] >= 2.0);
    assert_eq!(metrics["tidings_feed_requests_total{status=304}"], 1.0);
    assert_eq!(metrics["tidings_outbox_messages{status=queued}"], 0.0);
}

#[tokio::test]
async fn feeds_stay_up_while_postgresql_restarts_and_serve_reconnects_and_listens_again() {
    let pg = crate::support::private_pg::PrivatePg::start();
    let sink = Maildir::start();
    // Mail is found only through LISTEN/NOTIFY: the idle poll is an hour.
    let mail = smtp_config(&sink.url(), "poll_s = 3600\n");
    let app = TestApp::new(&pg.url(), &mail);
    let _served = app.serve().await;
    let nine = || async { feed_titles(&app, "all.rss").await.len() == 9 };
    wait_until(std::time::Duration::from_secs(20), nine).await;

    pg.down();
    assert_eq!(
        feed_titles(&app, "all.rss").await.len(),
        9,
        "feeds are served from memory"
    );
    assert_eq!(
        get(&app.url("/readyz")).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(get(&app.url("/healthz")).await.status(), StatusCode::OK);

    pg.up();
    // Queued by another process as soon as the database is back, likely
    // before serve listens again: it must still go out.
    queue_an_alert(&pg.url()).await;
    wait_until(std::time::Duration::from_secs(20), || async {
        get(&app.url("/readyz")).await.status() == StatusCode::OK
    })
    .await;
    wait_until(std::time::Duration::from_secs(30), || async {
        sink.count() == 1
    })
    .await;
    std::fs::write(
        app.path("seeds/more.txt"),
        "Resource Library\n\nIntro\n\nResource Library\n\nAfter the restart\n\nStill here.\n",
    )
    .unwrap();
    app.run_ok(&["ingest"]);
    wait_until(std::time::Duration::from_secs(20), || async {
        feed_titles(&app, "all.rss").await.len() == 10
    })
    .await;
}

/// Queues one message in the database at `url`, as another process would.
async fn queue_an_alert(url: &str) {
    let store = tidings::store::Store::open(url).await.unwrap();
    let message = an_alert("alert/restart/1");
    #[allow(clippy::disallowed_methods)] // the test's own clock
    let now = chrono::Utc::now();
    assert!(store.enqueue(&message, now).await.unwrap());
    store.close().await;
}

/// Extra environment variables for a command.
type Env<'a> = &'a [(&'a str, &'a str)];

/// `--listen` and `TIDINGS_LISTEN` override `server.listen`; on port 0 the
/// system picks a free port and `--ready-file` names it, so no port is
/// guessed before the server binds it.
#[tokio::test]
async fn serve_listens_where_told_and_writes_the_bound_address() {
    let app = TestApp::new("sqlite://tidings.db", "");
    // The config names a port held here: only the override can be served.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    app.set_listen(held.local_addr().unwrap());
    let cases: [(&[&str], Env); 2] = [
        (
            &["serve", "--listen", "127.0.0.1:0", "--ready-file", "ready"],
            &[],
        ),
        (
            &["serve", "--ready-file", "ready"],
            &[("TIDINGS_LISTEN", "127.0.0.1:0")],
        ),
    ];
    for (args, env) in cases {
        let _ = std::fs::remove_file(app.path("ready"));
        let _served = app.spawn_env(args, env);
        wait_until(std::time::Duration::from_secs(30), || async {
            app.path("ready").exists()
        })
        .await;
        let written = std::fs::read_to_string(app.path("ready")).unwrap();
        let bound: std::net::SocketAddr = written.trim().parse().unwrap();
        assert!(written.ends_with('\n'), "{written:?}");
        assert_eq!(bound.ip().to_string(), "127.0.0.1");
        assert!(
            bound.port() != 0 && bound != held.local_addr().unwrap(),
            "not the config's port: {bound}"
        );
        wait_for_health(&format!("http://{bound}/healthz")).await;
    }
}

async fn wait_for_health(url: &str) {
    wait_until(std::time::Duration::from_secs(30), || async {
        http()
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
    })
    .await;
}

/// A port in use, from `server.listen` or `--listen`, is named with the
/// options that change it.
#[tokio::test]
async fn an_address_in_use_names_the_options_that_change_it() {
    let app = TestApp::new("sqlite://tidings.db", "");
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    app.set_listen(held.local_addr().unwrap());
    let other_held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let other = other_held.local_addr().unwrap().to_string();
    for (args, address) in [
        (vec!["serve"], held.local_addr().unwrap().to_string()),
        (vec!["serve", "--listen", other.as_str()], other.clone()),
    ] {
        let out = app.run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "{address} is in use; choose another with --listen or server.listen"
            )),
            "{stderr}"
        );
    }
}
