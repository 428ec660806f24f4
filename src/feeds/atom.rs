//! Atom 1.0 (RFC 4287) rendering of one feed pair's items with
//! `atom_syndication`'s typed `Feed` and `Entry`. Which items, titles and URLs
//! belong to a feed is decided in `feeds::mod`; this file maps them onto Atom.

use atom_syndication::{
    Category, Entry, Feed, FixedDateTime, Generator, Link, Person, Text, WriteConfig,
};
use chrono::{DateTime, Utc};

use super::{
    ATOM_CONTENT_TYPE, FeedSpec, GENERATOR, LANGUAGE, RenderedFeed, clean_text, enclosure_type,
    summary_html,
};
use crate::model::Resource;

/// Render `spec` as `{stem}.atom`.
pub(super) fn render(spec: &FeedSpec) -> RenderedFeed {
    let config = WriteConfig {
        write_document_declaration: true,
        indent_size: None,
    };
    // As for RSS: an error writing into a Vec would be a writer bug, and the
    // empty body it leaves is rejected by `check`, so it is never served.
    let body = feed(spec)
        .write_with_config(Vec::new(), config)
        .unwrap_or_else(|err| {
            tracing::error!(file = %spec.stem, %err, "could not write Atom feed");
            Vec::new()
        });
    RenderedFeed {
        file_name: format!("{}.atom", spec.stem),
        content_type: ATOM_CONTENT_TYPE,
        body,
    }
}

/// The feed with its entries. Its id is its own URL (RFC 4287 §4.2.6 asks for
/// a permanent IRI, and the feed's address is exactly as permanent).
fn feed(spec: &FeedSpec) -> Feed {
    let url = spec.url("atom");
    Feed {
        title: Text::plain(spec.title.clone()),
        id: url.clone(),
        updated: fixed(spec.updated),
        authors: vec![Person {
            name: spec.site_title.clone(),
            ..Person::default()
        }],
        generator: Some(Generator {
            value: GENERATOR.into(),
            ..Generator::default()
        }),
        links: vec![
            link(url, "self", "application/atom+xml"),
            link(spec.base.to_string(), "alternate", "text/html"),
        ],
        subtitle: Some(Text::plain(spec.description.clone())),
        entries: spec.resources.iter().map(|r| entry(spec, r)).collect(),
        lang: Some(LANGUAGE.into()),
        ..Feed::default()
    }
}

/// One resource as an entry; its id is the stored GUID and nothing else.
fn entry(spec: &FeedSpec, resource: &Resource) -> Entry {
    let mut links = vec![link(
        resource.item_link(&spec.base),
        "alternate",
        "text/html",
    )];
    if let Some(download) = &resource.download {
        links.push(link(
            download.to_string(),
            "enclosure",
            enclosure_type(download),
        ));
    }
    Entry {
        title: Text::plain(clean_text(&resource.title)),
        id: clean_text(&resource.guid),
        updated: fixed(resource.updated),
        published: Some(fixed(resource.published())),
        categories: vec![Category {
            term: resource.category.slug.to_string(),
            scheme: None,
            label: Some(clean_text(&resource.category.name)),
        }],
        links,
        summary: summary_html(&resource.summary).map(Text::html),
        ..Entry::default()
    }
}

/// A link with a relation and a media type.
fn link(href: String, rel: &str, mime_type: &str) -> Link {
    Link {
        href,
        rel: rel.into(),
        mime_type: Some(mime_type.into()),
        ..Link::default()
    }
}

/// A UTC instant as the fixed-offset time the Atom types hold.
fn fixed(at: DateTime<Utc>) -> FixedDateTime {
    at.fixed_offset()
}

#[cfg(test)]
mod tests {
    use atom_syndication::{Feed, TextType};
    use url::Url;

    use crate::feeds::tests::{render_one, resource, site};
    use crate::model::{Category, EntryDate};

    fn read(body: &[u8]) -> Feed {
        Feed::read_from(body).expect("our Atom parses")
    }

    #[test]
    fn feed_has_its_url_as_id_an_author_and_both_links() {
        let site = site("https://feeds.example.org/sub");
        let resources = [resource(2, "A", "Leaflets")];
        let feed = render_one(
            &site,
            &resources,
            &[Category::new("Leaflets")],
            "leaflets.atom",
        );
        let feed = read(&feed.body);
        assert_eq!(feed.id, "https://feeds.example.org/sub/feeds/leaflets.atom");
        assert_eq!(feed.title.value, "Library & Co — Leaflets");
        assert_eq!(feed.updated, resources[0].updated);
        assert_eq!(feed.authors[0].name, "Library & Co");
        assert_eq!(feed.lang.as_deref(), Some("en-GB"));
        let rels: Vec<(&str, &str)> = feed
            .links
            .iter()
            .map(|l| (l.rel.as_str(), l.href.as_str()))
            .collect();
        assert_eq!(
            rels,
            [
                ("self", "https://feeds.example.org/sub/feeds/leaflets.atom"),
                ("alternate", "https://feeds.example.org/sub/"),
            ]
        );
    }

    #[test]
    fn entry_carries_guid_dates_category_summary_and_enclosure() {
        let site = site("https://feeds.example.org/");
        let mut r = resource(7, "Film <1>", "Strategies and plans");
        r.date = EntryDate::month(2023, 6);
        r.download = Some(Url::parse("https://www.example.org/v/film.mp4").unwrap());
        let feed = read(&render_one(&site, std::slice::from_ref(&r), &[], "all.atom").body);
        let entry = &feed.entries[0];
        assert_eq!(entry.id, "urn:tidings:resource:7");
        assert_eq!(entry.title.value, "Film <1>");
        assert_eq!(entry.updated, r.updated);
        assert_eq!(
            entry.published.unwrap().to_rfc3339(),
            "2023-06-01T00:00:00+00:00"
        );
        assert_eq!(entry.categories[0].term, "strategies-and-plans");
        assert_eq!(
            entry.categories[0].label.as_deref(),
            Some("Strategies and plans")
        );
        let summary = entry.summary.as_ref().unwrap();
        assert_eq!(summary.r#type, TextType::Html);
        assert_eq!(summary.value, "<p>About Film &lt;1&gt;</p>");
        let links: Vec<_> = (entry.links.iter())
            .map(|l| (l.rel.as_str(), l.href.as_str(), l.mime_type.as_deref()))
            .collect();
        let alternate = (
            "alternate",
            "https://www.example.org/r/7",
            Some("text/html"),
        );
        let enclosure = (
            "enclosure",
            "https://www.example.org/v/film.mp4",
            Some("video/mp4"),
        );
        assert_eq!(links, [alternate, enclosure]);
    }
}
