//! Feeds: the current resources as RSS 2.0, Atom 1.0 and an OPML list of both,
//! built with typed builders (`rss`, `atom_syndication`, quick-xml), never text
//! templates. This module owns what every feed shares (URLs, sanitised text,
//! summary HTML, enclosure types); `check` proves a feed sound before `cache`
//! serves it. Reading the store and serving HTTP belong to `store` and `web`.

mod atom;
pub mod cache;
pub mod check;
mod opml;
mod rss;

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use url::Url;

use crate::model::{Block, Category, Resource, Summary};
use crate::render::write_escaped_html;

pub use cache::{FeedCache, PublishReport, RejectedFeed, ServedFeed, not_modified};
pub use check::{FeedCheckError, FeedKind, FeedSummary, check};

/// Content type of an RSS 2.0 feed.
pub(crate) const RSS_CONTENT_TYPE: &str = "application/rss+xml; charset=utf-8";
/// Content type of an Atom 1.0 feed.
pub(crate) const ATOM_CONTENT_TYPE: &str = "application/atom+xml; charset=utf-8";
/// Content type of the OPML feed list.
pub(crate) const OPML_CONTENT_TYPE: &str = "text/x-opml; charset=utf-8";
/// File name of the OPML list (served at `/feeds.opml`).
pub(crate) const OPML_FILE_NAME: &str = "feeds.opml";
/// Number of items per feed when the config says nothing (`feeds.max_items`).
pub const DEFAULT_MAX_ITEMS: usize = 100;
/// The generator named in every feed.
const GENERATOR: &str = "Tidings";
/// The language of every feed (the library is British English).
const LANGUAGE: &str = "en-GB";

/// What every feed says about the site that publishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedSite {
    /// Site title, e.g. "Tower Hamlets Together — Resource Library".
    pub title: String,
    /// Public URL that prefixes every feed and item link, e.g. `https://feeds.example.org/`.
    pub base_url: Url,
    /// One line on what the feeds carry.
    pub description: String,
}

/// Everything one rendering of the feeds needs.
#[derive(Debug, Clone, Copy)]
pub struct FeedInput<'a> {
    /// The publishing site.
    pub site: &'a FeedSite,
    /// Current, not withdrawn resources, newest first.
    pub resources: &'a [Resource],
    /// Every category; each gets an RSS and an Atom feed, even when empty.
    pub categories: &'a [Category],
    /// Newest items per feed ([`DEFAULT_MAX_ITEMS`] unless configured).
    pub max_items: usize,
}

/// One feed file, ready to check, write or serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFeed {
    /// Served file name: `all.rss`, `{slug}.atom`, `feeds.opml`.
    pub file_name: String,
    /// HTTP content type, with charset.
    pub content_type: &'static str,
    /// The document, UTF-8 XML.
    pub body: Vec<u8>,
}

/// Render every feed: `all.rss`, `all.atom`, a pair per category, and `feeds.opml`.
///
/// Output depends only on `input`: the same store renders the same bytes.
pub fn render_all(input: &FeedInput) -> Vec<RenderedFeed> {
    let specs = feed_specs(input);
    let mut out = Vec::with_capacity(specs.len() * 2 + 1);
    for spec in &specs {
        out.push(rss::render(spec));
        out.push(atom::render(spec));
    }
    out.push(opml::render(input.site, &specs));
    out
}

/// One feed pair (RSS and Atom) before rendering: which items, under what names.
#[derive(Debug)]
struct FeedSpec<'a> {
    /// File name without extension: `all` or the category slug.
    stem: String,
    /// Feed title, already sanitised.
    title: String,
    /// The site's title, already sanitised (the Atom author, the OPML title).
    site_title: String,
    /// Channel description / Atom subtitle, already sanitised.
    description: String,
    /// The site's public URL, ending in `/`.
    base: Url,
    /// Newest `updated` among `resources` (Unix epoch when none).
    updated: DateTime<Utc>,
    /// The items, newest first, at most `max_items`.
    resources: Vec<&'a Resource>,
}

impl FeedSpec<'_> {
    /// Public URL of this pair's feed with the given extension (`rss` or `atom`).
    fn url(&self, extension: &str) -> String {
        site_url(&self.base, &format!("feeds/{}.{extension}", self.stem))
    }
}

/// The `all` pair, then one pair per usable category, in the order given.
fn feed_specs<'a>(input: &FeedInput<'a>) -> Vec<FeedSpec<'a>> {
    let base = base_dir(&input.site.base_url);
    let site_title = non_blank(clean_text(&input.site.title), GENERATOR);
    let description = non_blank(clean_text(&input.site.description), &site_title);
    let spec = |stem: String, title: String, filter: &dyn Fn(&Resource) -> bool| {
        let resources: Vec<&Resource> = (input.resources.iter())
            .filter(|r| filter(r))
            .take(input.max_items)
            .collect();
        FeedSpec {
            stem,
            title,
            site_title: site_title.clone(),
            description: description.clone(),
            base: base.clone(),
            updated: newest_update(&resources),
            resources,
        }
    };
    let mut specs = vec![spec("all".into(), site_title.clone(), &|_| true)];
    for category in usable_categories(input.categories) {
        let title = format!("{site_title} — {}", clean_text(&category.name));
        let slug = &category.slug;
        specs.push(spec(slug.to_string(), title, &|r| r.category.slug == *slug));
    }
    specs
}

/// A feed's own date: the newest `updated` among the items it shows, so an
/// edit moves only the feeds that show the edited resource. An empty feed is
/// dated the Unix epoch, which no edit elsewhere moves.
fn newest_update(resources: &[&Resource]) -> DateTime<Utc> {
    resources
        .iter()
        .map(|r| r.updated)
        .max()
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// Categories whose slug can name a file: not empty, not `all`, not seen before.
fn usable_categories(categories: &[Category]) -> impl Iterator<Item = &Category> {
    let mut seen = HashSet::from(["all"]);
    categories.iter().filter(move |category| {
        let slug = category.slug.as_str();
        let usable = !slug.is_empty() && seen.insert(slug);
        if !usable {
            tracing::warn!(
                category = %category.name,
                "category has no feed: its slug is empty or names another feed"
            );
        }
        usable
    })
}

/// The site's URL as a directory (path ending in `/`, no query or fragment), so
/// joining `feeds/all.rss` keeps any path prefix (`https://host/tidings/`).
fn base_dir(base_url: &Url) -> Url {
    let mut base = base_url.clone();
    base.set_query(None);
    base.set_fragment(None);
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    base
}

/// `relative` resolved against the site's directory URL.
fn site_url(base: &Url, relative: &str) -> String {
    base.join(relative)
        .map_or_else(|_| format!("{base}{relative}"), String::from)
}

/// Text with every character XML 1.0 forbids removed: C0 controls other than
/// tab, newline and carriage return, and U+FFFE / U+FFFF (XML 1.0 §2.2 `Char`).
/// Escaping `&`, `<` and `]]>` is left to the XML writers.
pub(crate) fn clean_text(text: &str) -> String {
    text.chars().filter(|&c| is_xml_char(c)).collect()
}

/// True when XML 1.0 allows `c` in a document.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}

/// `text` unless it is blank, else `fallback`.
fn non_blank(text: String, fallback: &str) -> String {
    if text.trim().is_empty() {
        fallback.to_owned()
    } else {
        text
    }
}

/// The summary as HTML: `<p>` per paragraph, `<ul><li>` per list, all text
/// escaped; `None` when the summary is empty.
fn summary_html(summary: &Summary) -> Option<String> {
    if summary.is_empty() {
        return None;
    }
    let mut html = String::new();
    for block in &summary.blocks {
        match block {
            Block::Paragraph(text) => push_element(&mut html, "p", text),
            Block::List(items) => {
                html.push_str("<ul>");
                for item in items {
                    push_element(&mut html, "li", item);
                }
                html.push_str("</ul>");
            }
        }
    }
    Some(html)
}

/// Append `<tag>escaped text</tag>`.
fn push_element(html: &mut String, tag: &str, text: &str) {
    html.push('<');
    html.push_str(tag);
    html.push('>');
    // Writing to a String cannot fail.
    let _ = write_escaped_html(html, &clean_text(text));
    html.push_str("</");
    html.push_str(tag);
    html.push('>');
}

/// MIME type of a download, guessed from its file extension.
fn enclosure_type(download: &Url) -> &'static str {
    let name = download.path().rsplit('/').next().unwrap_or_default();
    let extension = name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase());
    match extension.as_deref() {
        Some("pdf") => "application/pdf",
        Some("docx") => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        Some("doc") => "application/msword",
        Some("xlsx") => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        Some("pptx") => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        Some("mp4") => "video/mp4",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::model::{EntryDate, ResourceId};

    /// A plain resource: day `n` of January 2024, linked, one-paragraph summary.
    pub(crate) fn resource(n: u32, title: &str, category: &str) -> Resource {
        let first_seen = Utc.with_ymd_and_hms(2024, 1, n, 9, 30, 0).unwrap();
        Resource {
            id: ResourceId(format!("{n:016x}")),
            source: "seeds".into(),
            identity: format!("seeds:{title}"),
            guid: format!("urn:tidings:resource:{n}"),
            title: title.into(),
            link: Some(Url::parse(&format!("https://www.example.org/r/{n}")).unwrap()),
            summary: Summary::paragraph(format!("About {title}")),
            date: None,
            category: Category::new(category),
            download: None,
            fingerprint: format!("fp{n}"),
            first_seen,
            updated: first_seen + Duration::hours(2),
            withdrawn_at: None,
        }
    }

    /// The site every test publishes as.
    pub(crate) fn site(base: &str) -> FeedSite {
        FeedSite {
            title: "Library & Co".into(),
            base_url: Url::parse(base).unwrap(),
            description: "New resources".into(),
        }
    }

    /// Render and return the feed with this file name.
    pub(crate) fn render_one(
        site: &FeedSite,
        resources: &[Resource],
        categories: &[Category],
        file_name: &str,
    ) -> RenderedFeed {
        let input = FeedInput {
            site,
            resources,
            categories,
            max_items: DEFAULT_MAX_ITEMS,
        };
        render_all(&input)
            .into_iter()
            .find(|f| f.file_name == file_name)
            .unwrap_or_else(|| panic!("no {file_name} rendered"))
    }

    #[test]
    fn clean_text_drops_only_what_xml_forbids() {
        let dirty = "a\u{1}b\u{b}c\u{1f}d\u{FFFE}e\u{FFFF}f";
        assert_eq!(clean_text(dirty), "abcdef");
        let fine = "tab\tline\ncr\r emoji 🎉 עברית العربية & <x> ]]>";
        assert_eq!(clean_text(fine), fine);
    }

    #[test]
    fn site_urls_join_with_or_without_a_trailing_slash() {
        for base in ["https://feeds.example.org", "https://feeds.example.org/"] {
            let dir = base_dir(&Url::parse(base).unwrap());
            assert_eq!(
                site_url(&dir, "feeds/all.rss"),
                "https://feeds.example.org/feeds/all.rss"
            );
        }
        for base in [
            "https://example.org/tidings",
            "https://example.org/tidings/?x=1#top",
        ] {
            let dir = base_dir(&Url::parse(base).unwrap());
            assert_eq!(
                site_url(&dir, "resources/00ab"),
                "https://example.org/tidings/resources/00ab"
            );
        }
    }

    #[test]
    fn item_link_falls_back_to_the_resource_page() {
        let base = base_dir(&Url::parse("https://feeds.example.org").unwrap());
        let mut r = resource(3, "Leaflet", "Leaflets");
        assert_eq!(r.item_link(&base), "https://www.example.org/r/3");
        r.link = None;
        assert_eq!(
            r.item_link(&base),
            "https://feeds.example.org/resources/0000000000000003"
        );
    }

    #[test]
    fn summary_html_has_paragraphs_and_lists_with_text_escaped() {
        let summary = Summary {
            blocks: vec![
                Block::Paragraph("Fish & <script>alert(1)</script>\u{1}".into()),
                Block::List(vec!["one \"1\"".into(), "two's".into()]),
            ],
        };
        let html = summary_html(&summary).unwrap();
        assert_eq!(
            html,
            "<p>Fish &amp; &lt;script&gt;alert(1)&lt;/script&gt;</p>\
             <ul><li>one &quot;1&quot;</li><li>two&#39;s</li></ul>"
        );
        assert_eq!(summary_html(&Summary::default()), None);
    }

    #[test]
    fn enclosure_type_follows_the_extension() {
        let t = |u: &str| enclosure_type(&Url::parse(u).unwrap());
        assert_eq!(t("https://x.org/a/plan.PDF"), "application/pdf");
        assert_eq!(
            t("https://x.org/a.docx?dl=1"),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        );
        assert_eq!(t("https://x.org/a.doc"), "application/msword");
        assert_eq!(
            t("https://x.org/a.xlsx"),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        );
        assert_eq!(
            t("https://x.org/a.pptx"),
            "application/vnd.openxmlformats-officedocument.presentationml.presentation"
        );
        assert_eq!(t("https://x.org/v.mp4"), "video/mp4");
        assert_eq!(t("https://x.org/file"), "application/octet-stream");
        assert_eq!(t("https://x.org/pdf/"), "application/octet-stream");
    }

    #[test]
    fn render_all_gives_a_pair_per_category_even_when_empty_and_the_opml() {
        let site = site("https://feeds.example.org");
        let resources = [resource(2, "A", "Leaflets")];
        let categories = [
            Category::new("Leaflets"),
            Category::new("Strategies and plans"),
        ];
        let input = FeedInput {
            site: &site,
            resources: &resources,
            categories: &categories,
            max_items: DEFAULT_MAX_ITEMS,
        };
        let feeds = render_all(&input);
        let (rss, atom) = (
            "application/rss+xml; charset=utf-8",
            "application/atom+xml; charset=utf-8",
        );
        let expected = [
            ("all.rss", rss),
            ("all.atom", atom),
            ("leaflets.rss", rss),
            ("leaflets.atom", atom),
            ("strategies-and-plans.rss", rss),
            ("strategies-and-plans.atom", atom),
            ("feeds.opml", "text/x-opml; charset=utf-8"),
        ];
        let names: Vec<_> = feeds
            .iter()
            .map(|f| (f.file_name.as_str(), f.content_type))
            .collect();
        assert_eq!(names, expected);
        for feed in &feeds {
            check(feed).unwrap_or_else(|e| panic!("{}: {e}", feed.file_name));
        }
        assert_eq!(render_all(&input), feeds, "same input, same bytes");
    }

    #[test]
    fn categories_that_cannot_name_a_file_are_skipped() {
        let site = site("https://feeds.example.org/");
        let categories = [
            Category::new("All"),
            Category::new("!!!"),
            Category::new("Leaflets"),
            Category::new("LEAFLETS"),
        ];
        let input = FeedInput {
            site: &site,
            resources: &[],
            categories: &categories,
            max_items: DEFAULT_MAX_ITEMS,
        };
        let names: Vec<String> = render_all(&input)
            .into_iter()
            .map(|f| f.file_name)
            .collect();
        assert_eq!(
            names,
            [
                "all.rss",
                "all.atom",
                "leaflets.rss",
                "leaflets.atom",
                "feeds.opml"
            ]
        );
    }

    #[test]
    fn feeds_are_limited_to_max_items_and_dated_by_their_own_newest_update() {
        let site = site("https://feeds.example.org/");
        let mut resources: Vec<Resource> = (1..=5)
            .rev()
            .map(|n| resource(n, &format!("R{n}"), "Leaflets"))
            .collect();
        // An older item (R3) updated last: its update, not the newest item's, dates the feed.
        resources[2].updated = Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap();
        let input = FeedInput {
            site: &site,
            resources: &resources,
            categories: &[Category::new("Leaflets")],
            max_items: 3,
        };
        let specs = feed_specs(&input);
        assert!(specs.iter().all(|s| s.resources.len() == 3));
        let titles: Vec<&str> = specs[0]
            .resources
            .iter()
            .map(|r| r.title.as_str())
            .collect();
        assert_eq!(titles, ["R5", "R4", "R3"]);
        assert!(specs.iter().all(|s| s.updated == resources[2].updated));

        // An item past max_items is not in the feed, so its update does not date it.
        let newest_shown = resources[2].updated;
        resources[4].updated = Utc.with_ymd_and_hms(2024, 4, 1, 12, 0, 0).unwrap();
        let input = FeedInput {
            site: &site,
            resources: &resources,
            categories: &[Category::new("Leaflets")],
            max_items: 3,
        };
        assert!(feed_specs(&input).iter().all(|s| s.updated == newest_shown));
    }

    #[test]
    fn an_update_dates_only_the_feeds_that_show_it() {
        let site = site("https://feeds.example.org/");
        let categories = [
            Category::new("Leaflets"),
            Category::new("News"),
            Category::new("Empty"),
        ];
        let mut resources = vec![
            resource(3, "Leaflet", "Leaflets"),
            resource(2, "Story", "News"),
        ];
        let render = |resources: &[Resource]| {
            let input = FeedInput {
                site: &site,
                resources,
                categories: &categories,
                max_items: DEFAULT_MAX_ITEMS,
            };
            render_all(&input)
        };
        let before = render(&resources);
        let mut added = resource(4, "Late news", "News");
        added.updated = Utc.with_ymd_and_hms(2024, 6, 1, 0, 0, 0).unwrap();
        resources.insert(0, added);
        let after = render(&resources);
        let moved: Vec<&str> = before
            .iter()
            .zip(&after)
            .filter(|(b, a)| b.body != a.body)
            .map(|(b, _)| b.file_name.as_str())
            .collect();
        // The OPML list carries the all-feeds' date.
        assert_eq!(
            moved,
            ["all.rss", "all.atom", "news.rss", "news.atom", "feeds.opml"]
        );
        let empty = feed_specs(&FeedInput {
            site: &site,
            resources: &resources,
            categories: &categories,
            max_items: DEFAULT_MAX_ITEMS,
        });
        assert_eq!(empty[3].stem, "empty");
        assert_eq!(empty[3].updated, DateTime::UNIX_EPOCH);
    }

    #[test]
    fn published_uses_the_entry_date_else_first_seen() {
        let mut r = resource(4, "Dated", "Leaflets");
        assert_eq!(r.published(), r.first_seen);
        r.date = EntryDate::month(2020, 5);
        assert_eq!(
            r.published(),
            Utc.with_ymd_and_hms(2020, 5, 1, 0, 0, 0).unwrap()
        );
    }
}
