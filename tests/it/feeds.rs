//! Rendered feeds against real consumers: feedparser, jing with the RFC 4287
//! schema, xmllint and newsboat, on a small library full of hostile text.
//! Each validator also gets a negative control, to prove it can fail.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use tempfile::TempDir;
use tidings::feeds::{self, FeedCache, FeedInput, FeedSite, RenderedFeed};
use tidings::model::{Block, Category, EntryDate, Resource, ResourceId, Summary};
use url::Url;

use crate::support::consumers::{self, NewsboatItem, ParsedFeed};

const BASE: &str = "https://feeds.example.org/tidings";

/// The three categories of the test library.
fn categories() -> Vec<Category> {
    ["Leaflets", "Strategies and plans", "Training & events"]
        .into_iter()
        .map(Category::new)
        .collect()
}

/// What each resource is made of, before it becomes a `Resource`.
struct Spec {
    title: &'static str,
    category: &'static str,
    summary: Summary,
    link: bool,
    download: Option<&'static str>,
    date: Option<EntryDate>,
}

fn spec(title: &'static str, category: &'static str) -> Spec {
    Spec {
        title,
        category,
        summary: Summary::paragraph(format!("A resource called {title}.")),
        link: true,
        download: None,
        date: None,
    }
}

/// Twelve resources across three categories, newest first, with hostile
/// titles, a long summary, one without a link and some with downloads.
fn library() -> Vec<Resource> {
    let newest = Utc.with_ymd_and_hms(2024, 6, 30, 15, 45, 12).unwrap();
    hostile_specs()
        .into_iter()
        .chain(ordinary_specs())
        .enumerate()
        .map(|(i, spec)| resource(i, spec, newest - Duration::days(i as i64)))
        .collect()
}

/// Text that could break XML or a reader: markup, `]]>`, control characters,
/// emoji, right-to-left scripts, a 5,000-character summary.
fn hostile_specs() -> Vec<Spec> {
    let long = "Integrated care across Tower Hamlets. ".repeat(132);
    assert!(long.len() >= 5_000);
    vec![
        spec("Fish & Chips <script>alert('x')</script>", "Leaflets"),
        Spec {
            summary: Summary::paragraph("Ends a CDATA section: ]]> and goes on & on <b>"),
            ..spec("CDATA ]]> breaker", "Leaflets")
        },
        spec("Control\u{1}characters\u{b}removed", "Strategies and plans"),
        spec("Launch day 🎉🚀 for everyone", "Training & events"),
        spec("מדריך בריאות — دليل الصحة", "Training & events"),
        Spec {
            summary: Summary::paragraph(long),
            ..spec("Five-year strategy, in full", "Strategies and plans")
        },
    ]
}

/// Ordinary resources: no link, downloads, a list, entry dates, accents.
fn ordinary_specs() -> Vec<Spec> {
    vec![
        Spec {
            link: false,
            ..spec("A leaflet with no page of its own", "Leaflets")
        },
        Spec {
            download: Some("https://www.example.org/files/plan-2024.pdf"),
            ..spec("Health and wellbeing plan 2024", "Strategies and plans")
        },
        Spec {
            download: Some("https://www.example.org/files/Course%20list.DOCX"),
            date: EntryDate::month(2023, 11),
            ..spec("Course list \"autumn\" 'term'", "Training & events")
        },
        Spec {
            summary: Summary {
                blocks: vec![
                    Block::Paragraph("What is included:".into()),
                    Block::List(vec!["Maps & directions".into(), "<Opening> hours".into()]),
                ],
            },
            ..spec(
                "Urgent Treatment Centre - Opening 14 August 2019",
                "Leaflets",
            )
        },
        Spec {
            date: NaiveDate::from_ymd_opt(2020, 11, 17).map(EntryDate::Day),
            ..spec("Carers' strategy 17 November 2020", "Strategies and plans")
        },
        spec("Café workshop: naïve façade", "Training & events"),
    ]
}

fn resource(i: usize, spec: Spec, first_seen: DateTime<Utc>) -> Resource {
    let id = format!("{:016x}", 0xfeed_0000 + i);
    Resource {
        guid: format!("tag:feeds.example.org,2024:resource:{id}"),
        link: spec.link.then(|| {
            Url::parse(&format!("https://www.example.org/library/item-{i}")).expect("valid URL")
        }),
        id: ResourceId(id),
        source: "library".into(),
        identity: format!("library:{i}"),
        title: spec.title.into(),
        summary: spec.summary,
        date: spec.date,
        category: Category::new(spec.category),
        download: spec.download.map(|d| Url::parse(d).expect("valid URL")),
        fingerprint: format!("fingerprint-{i}"),
        first_seen,
        updated: first_seen + Duration::minutes(5),
        withdrawn_at: None,
    }
}

/// The title a reader should show: the input minus the control characters.
fn expected_title(resource: &Resource) -> String {
    resource.title.replace(['\u{1}', '\u{b}'], "")
}

/// The link a reader should follow.
fn expected_link(resource: &Resource) -> String {
    match &resource.link {
        Some(link) => link.to_string(),
        None => format!("{BASE}/resources/{}", resource.id),
    }
}

/// Rendered feeds written flat into a temp dir, as `tidings feeds write DIR` does.
struct Written {
    dir: TempDir,
    feeds: Vec<RenderedFeed>,
    resources: Vec<Resource>,
}

impl Written {
    fn new() -> Self {
        let site = FeedSite {
            title: "Tower Hamlets Together — Resource Library".into(),
            base_url: Url::parse(BASE).expect("valid URL"),
            description: "New and changed resources".into(),
        };
        let resources = library();
        let categories = categories();
        let input = FeedInput {
            site: &site,
            resources: &resources,
            categories: &categories,
            max_items: feeds::DEFAULT_MAX_ITEMS,
        };
        let feeds = feeds::render_all(&input);
        let dir = tempfile::tempdir().expect("create temp dir");
        for feed in &feeds {
            std::fs::write(dir.path().join(&feed.file_name), &feed.body).expect("write feed");
        }
        Self {
            dir,
            feeds,
            resources,
        }
    }

    fn path(&self, file_name: &str) -> PathBuf {
        self.dir.path().join(file_name)
    }

    /// Every RSS and Atom feed with the resources it must hold, newest first.
    fn item_feeds(&self) -> Vec<(String, Vec<&Resource>)> {
        let mut out = Vec::new();
        for stem in ["all".to_owned()]
            .into_iter()
            .chain(categories().iter().map(|c| c.slug.to_string()))
        {
            let expected: Vec<&Resource> = (self.resources.iter())
                .filter(|r| stem == "all" || r.category.slug.as_str() == stem)
                .collect();
            for extension in ["rss", "atom"] {
                out.push((format!("{stem}.{extension}"), expected.clone()));
            }
        }
        out
    }
}

#[test]
fn the_expected_files_are_rendered() {
    let written = Written::new();
    let mut names: Vec<&str> = written.feeds.iter().map(|f| f.file_name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "all.atom",
            "all.rss",
            "feeds.opml",
            "leaflets.atom",
            "leaflets.rss",
            "strategies-and-plans.atom",
            "strategies-and-plans.rss",
            "training-events.atom",
            "training-events.rss",
        ]
    );
    for (name, expected) in written.item_feeds() {
        assert!(!expected.is_empty(), "{name} should have items");
    }
}

#[test]
fn feedparser_reads_every_feed_as_written() {
    let written = Written::new();
    for (name, expected) in written.item_feeds() {
        let parsed = consumers::feedparser(&written.path(&name));
        assert!(!parsed.bozo, "{name}: bozo: {}", parsed.bozo_exception);
        let version = if name.ends_with(".rss") {
            "rss20"
        } else {
            "atom10"
        };
        assert_eq!(parsed.version, version, "{name}");
        assert!(parsed.title.starts_with("Tower Hamlets Together"), "{name}");
        assert_entries(&name, &parsed, &expected);
    }
}

fn assert_entries(name: &str, parsed: &ParsedFeed, expected: &[&Resource]) {
    assert_eq!(parsed.entries.len(), expected.len(), "{name}: entry count");
    for (entry, resource) in parsed.entries.iter().zip(expected) {
        assert_eq!(entry.title, expected_title(resource), "{name}: title");
        assert_eq!(entry.id, resource.guid, "{name}: id");
        assert_eq!(entry.link, expected_link(resource), "{name}: link");
        let enclosures: Vec<(&str, &str)> = (entry.enclosures.iter())
            .map(|e| (e.href.as_str(), e.mime_type.as_str()))
            .collect();
        let wanted: Vec<(&str, &str)> = match resource.download.as_ref().map(Url::as_str) {
            Some(url @ "https://www.example.org/files/plan-2024.pdf") => {
                vec![(url, "application/pdf")]
            }
            Some(url) => vec![(
                url,
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            )],
            None => vec![],
        };
        assert_eq!(enclosures, wanted, "{name}: enclosures of {}", entry.title);
        let tag = if name.ends_with(".rss") {
            resource.category.name.clone()
        } else {
            resource.category.slug.to_string()
        };
        assert_eq!(entry.tags, [tag], "{name}: category");
    }
}

#[test]
fn feedparser_keeps_summaries_whole_and_escaped() {
    let written = Written::new();
    for name in ["all.rss", "all.atom"] {
        let parsed = consumers::feedparser(&written.path(name));
        let by_title: BTreeMap<&str, &str> = (parsed.entries.iter())
            .map(|e| (e.title.as_str(), e.summary.as_str()))
            .collect();
        let long = by_title["Five-year strategy, in full"];
        assert!(
            long.len() > 5_000,
            "{name}: long summary cut to {}",
            long.len()
        );
        assert_eq!(
            by_title["CDATA ]]> breaker"],
            "<p>Ends a CDATA section: ]]&gt; and goes on &amp; on &lt;b&gt;</p>",
            "{name}"
        );
        assert_eq!(
            by_title["Urgent Treatment Centre - Opening 14 August 2019"],
            "<p>What is included:</p><ul><li>Maps &amp; directions</li>\
             <li>&lt;Opening&gt; hours</li></ul>",
            "{name}"
        );
    }
}

#[test]
fn jing_accepts_every_atom_feed_against_rfc_4287() {
    let written = Written::new();
    let schema = consumers::atom_schema();
    for feed in written
        .feeds
        .iter()
        .filter(|f| f.file_name.ends_with(".atom"))
    {
        let result = consumers::jing(&schema, &written.path(&feed.file_name));
        assert_eq!(result, Ok(()), "{}", feed.file_name);
    }
}

#[test]
fn xmllint_finds_every_file_well_formed() {
    let written = Written::new();
    for feed in &written.feeds {
        let result = consumers::xmllint(&written.path(&feed.file_name));
        assert_eq!(result, Ok(()), "{}", feed.file_name);
    }
}

#[test]
fn newsboat_stores_every_item_of_every_feed() {
    let written = Written::new();
    for (name, expected) in written.item_feeds() {
        let url = format!("file://{}", written.path(&name).display());
        let work = written.dir.path().join(format!("newsboat-{name}"));
        let items = consumers::newsboat(&url, &work);
        assert_newsboat_items(&name, items, &expected);
    }
}

fn assert_newsboat_items(name: &str, items: Vec<NewsboatItem>, expected: &[&Resource]) {
    let mut got: Vec<(String, String, String)> = items
        .into_iter()
        .map(|i| (i.guid, i.title, i.url))
        .collect();
    let mut want: Vec<(String, String, String)> = (expected.iter())
        .map(|r| (r.guid.clone(), expected_title(r), expected_link(r)))
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "{name}");
}

#[test]
fn opml_lists_every_rss_feed_for_import() {
    let written = Written::new();
    let path = written.path("feeds.opml");
    assert_eq!(consumers::xmllint(&path), Ok(()));
    let text = std::fs::read_to_string(&path).unwrap();
    for (name, _) in written
        .item_feeds()
        .iter()
        .filter(|(n, _)| n.ends_with(".rss"))
    {
        let url = format!("xmlUrl=\"{BASE}/feeds/{name}\"");
        assert!(text.contains(&url), "feeds.opml lacks {url}");
    }
    assert_eq!(text.matches("<outline ").count(), 4);
}

#[test]
fn the_cache_serves_what_the_consumers_accepted() {
    let written = Written::new();
    let cache = FeedCache::new();
    let now = Utc.with_ymd_and_hms(2024, 7, 1, 8, 0, 0).unwrap();
    let report = cache.publish(written.feeds.clone(), now);
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(report.changed.len(), written.feeds.len());
    for feed in &written.feeds {
        let served = cache.get(&feed.file_name).unwrap();
        assert_eq!(served.body, feed.body);
        assert!(cache.conditional(&served, Some(&served.etag), None));
    }
}

// Negative controls: each validator must be able to say no, or the passes above
// prove nothing.

#[test]
fn jing_rejects_an_atom_feed_without_id() {
    let written = Written::new();
    let text = std::fs::read_to_string(written.path("all.atom")).unwrap();
    let start = text.find("<id>").unwrap();
    let end = text[start..].find("</id>").unwrap() + start + "</id>".len();
    let broken = written.path("no-id.atom");
    std::fs::write(&broken, format!("{}{}", &text[..start], &text[end..])).unwrap();
    let result = consumers::jing(&consumers::atom_schema(), &broken);
    let message = result.expect_err("jing accepted a feed without <id>");
    assert!(message.contains("id"), "{message}");
}

#[test]
fn feedparser_and_xmllint_reject_a_truncated_feed() {
    let written = Written::new();
    let body = std::fs::read(written.path("all.rss")).unwrap();
    let truncated = written.path("truncated.rss");
    std::fs::write(&truncated, &body[..body.len() / 2]).unwrap();
    assert!(consumers::feedparser(&truncated).bozo);
    assert!(consumers::xmllint(&truncated).is_err());
}

#[test]
fn newsboat_stores_nothing_from_a_page_that_is_not_a_feed() {
    let written = Written::new();
    let page = written.path("page.rss");
    std::fs::write(&page, "<html><body><p>Not a feed</p></body></html>").unwrap();
    let url = format!("file://{}", page.display());
    let items = consumers::newsboat(&url, &written.dir.path().join("newsboat-page"));
    assert!(items.is_empty(), "{items:?}");
}

#[test]
fn newsboat_cache_shows_a_truncated_feed_as_items_missing() {
    // newsboat recovers what it can from a broken feed, so the evidence that
    // it read a feed whole is the item count asserted above.
    let written = Written::new();
    let body = std::fs::read(written.path("all.rss")).unwrap();
    let truncated = written.path("truncated.rss");
    std::fs::write(&truncated, &body[..body.len() / 2]).unwrap();
    let url = format!("file://{}", truncated.display());
    let items = consumers::newsboat(&url, &written.dir.path().join("newsboat-truncated"));
    assert!(
        items.len() < written.resources.len(),
        "{} items",
        items.len()
    );
}

#[test]
fn the_check_rejects_what_the_consumers_reject() {
    let written = Written::new();
    let all = &written.feeds[0];
    let truncated = RenderedFeed {
        body: all.body[..all.body.len() / 2].to_vec(),
        ..all.clone()
    };
    assert!(feeds::check(&truncated).is_err());
}
