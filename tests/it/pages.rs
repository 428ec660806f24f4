// The public pages at library size over real HTTP: `/` newest by first seen,
// paged with every resource exactly once, the category filter kept across
// pages, and a newly added old-dated document on page 1 and in the feeds.

use std::collections::BTreeSet;

use reqwest::StatusCode;

use crate::support::app::TestApp;
use crate::support::consumers::feedparser;
use crate::support::db::on_every_backend;
use crate::support::{get_text, http};

const LIBRARY_SIZE: usize = 120;

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

/// A seed file of `LIBRARY_SIZE` entries, each dated in its title in 2025;
/// every third is a leaflet.
fn library_seed() -> String {
    let mut text = String::from("Library\n\nThe whole library.\n\nLibrary\n\n");
    for n in 0..LIBRARY_SIZE {
        let kind = if n % 3 == 0 { "Leaflet" } else { "Report" };
        let day = n % 28 + 1;
        let month = MONTHS[n % 12];
        text.push_str(&format!(
            "{kind} number {n:03} - {day} {month} 2025\nWhat {kind} {n:03} covers.\n\n\n"
        ));
    }
    text
}

/// Ids of the resources listed on a page of `/`, in order.
fn listed_ids(html: &str) -> Vec<String> {
    html.split("<h3><a href=\"/resources/")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_owned())
        .collect()
}

/// The `rel="next"` address of a page of `/`, HTML entities decoded.
fn next_href(html: &str) -> Option<String> {
    let rest = html.split("rel=\"next\" href=\"").nth(1)?;
    Some(rest.split('"').next()?.replace("&amp;", "&"))
}

/// Every page of `start` followed by its next links: the ids on each page.
async fn walk(app: &TestApp, start: &str) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut next = Some(start.to_owned());
    while let Some(path) = next {
        let html = get_text(&app.url(&path), 200).await;
        pages.push(listed_ids(&html));
        next = next_href(&html);
        assert!(pages.len() <= 10, "more pages than the library holds");
    }
    pages
}

/// Ids of the current resources as the JSON API lists them.
async fn api_ids(app: &TestApp, query: &str) -> BTreeSet<String> {
    let url = app.url(&format!("/api/resources{query}"));
    let text = get_text(&url, 200).await;
    let list: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    list.iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Exactly once across pages, and the same set the API lists.
fn assert_each_once(pages: &[Vec<String>], expected: &BTreeSet<String>) {
    let all: Vec<&String> = pages.iter().flatten().collect();
    let unique: BTreeSet<String> = all.iter().map(|s| (*s).clone()).collect();
    assert_eq!(
        all.len(),
        unique.len(),
        "a resource listed twice: {pages:?}"
    );
    assert_eq!(&unique, expected);
    assert!(pages.iter().all(|p| p.len() <= 50), "a page longer than 50");
}

#[tokio::test]
async fn a_late_addition_with_an_old_date_leads_page_one_and_the_feeds_and_paging_lists_everything_once()
 {
    on_every_backend(|db| async move {
        let app = TestApp::new(&db.url, "");
        std::fs::write(app.path("seeds/library.txt"), library_seed()).unwrap();
        app.run_ok(&["ingest"]);
        let late = "Late leaflet on asthma - 3 June 2024";
        let seed = format!("Late\n\nAdded today.\n\nLate\n\n{late}\nAn old leaflet found today.\n");
        std::fs::write(app.path("seeds/late.txt"), seed).unwrap();
        app.run_ok(&["ingest"]);
        let _served = app.serve().await;

        // Page 1 leads with the late addition, its own date shown.
        let html = http()
            .get(app.url("/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let first = html.split("<li class=\"resource\">").nth(1).unwrap();
        assert!(first.contains(late), "page 1 starts with {first}");
        assert!(first.contains("<time datetime=\"2024-06-03\">3 June 2024</time>"));
        let top = html.split("<ol class=\"resources\">").next().unwrap();
        assert!(top.contains("href=\"#subscribe\">Get updates by email</a>"));

        // In the all-feed, dated by its own date.
        let body = http()
            .get(app.url("/feeds/all.rss"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let path = app.path("all.rss");
        std::fs::write(&path, body).unwrap();
        let feed = feedparser(&path);
        assert!(!feed.bozo, "{}", feed.bozo_exception);
        assert_eq!(feed.entries.len(), 100);
        assert!(
            feed.entries.iter().any(|e| e.title == late),
            "not in all.rss"
        );

        // Every current resource exactly once across the pages.
        let everything = api_ids(&app, "").await;
        assert_eq!(everything.len(), LIBRARY_SIZE + 10);
        let pages = walk(&app, "/").await;
        assert_eq!(pages.len(), 3);
        assert_each_once(&pages, &everything);

        // A category's pages keep the category in their links.
        let reports = api_ids(&app, "?category=reports").await;
        assert!(reports.len() > 50, "{} reports", reports.len());
        let pages = walk(&app, "/?category=reports").await;
        assert_eq!(pages.len(), 2);
        assert_each_once(&pages, &reports);
    })
    .await;
}

#[tokio::test]
async fn a_page_that_is_not_a_number_or_past_the_end_is_refused_by_name() {
    on_every_backend(|db| async move {
        let app = TestApp::new(&db.url, "");
        app.run_ok(&["ingest"]);
        let _served = app.serve().await;
        for bad in ["0", "two", "-1"] {
            let response = http()
                .get(app.url(&format!("/?page={bad}")))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "page={bad}");
            let text = response.text().await.unwrap();
            assert!(
                text.contains("page must be a whole number from 1"),
                "{text}"
            );
        }
        let response = http().get(app.url("/?page=2")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("There is no page 2: this list has 1 page.")
        );
    })
    .await;
}
