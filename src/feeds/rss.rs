//! RSS 2.0 rendering of one feed pair's items with the `rss` crate's typed
//! `Channel` and `Item`. Which items, titles and URLs belong to a feed is
//! decided in `feeds::mod`; this file only maps them onto RSS elements.

use ::rss::extension::atom::{AtomExtension, Link};
use ::rss::{Category, Channel, Enclosure, Guid, Item};

use super::{
    FeedSpec, GENERATOR, LANGUAGE, RSS_CONTENT_TYPE, RenderedFeed, clean_text, enclosure_type,
    summary_html,
};
use crate::model::Resource;

/// Render `spec` as `{stem}.rss`.
pub(super) fn render(spec: &FeedSpec) -> RenderedFeed {
    let channel = channel(spec);
    // Writing into a Vec cannot fail for I/O reasons, and every string was
    // sanitised, so an error here would be a bug in the writer; an empty body
    // is then caught by `check` and never served.
    let body = channel.write_to(Vec::new()).unwrap_or_else(|err| {
        tracing::error!(file = %spec.stem, %err, "could not write RSS feed");
        Vec::new()
    });
    RenderedFeed {
        file_name: format!("{}.rss", spec.stem),
        content_type: RSS_CONTENT_TYPE,
        body,
    }
}

/// The channel with its items.
fn channel(spec: &FeedSpec) -> Channel {
    let self_link = Link {
        href: spec.url("rss"),
        rel: "self".into(),
        mime_type: Some("application/rss+xml".into()),
        ..Link::default()
    };
    Channel {
        title: spec.title.clone(),
        link: spec.base.to_string(),
        description: spec.description.clone(),
        language: Some(LANGUAGE.into()),
        last_build_date: Some(spec.updated.to_rfc2822()),
        generator: Some(GENERATOR.into()),
        atom_ext: Some(AtomExtension {
            links: vec![self_link],
        }),
        items: spec.resources.iter().map(|r| item(spec, r)).collect(),
        ..Channel::default()
    }
}

/// One resource as an item: its GUID is the stored one, never the link (RSS
/// Best Practices Profile: a GUID that is not a URL says `isPermaLink="false"`).
fn item(spec: &FeedSpec, resource: &Resource) -> Item {
    Item {
        title: Some(clean_text(&resource.title)),
        link: Some(resource.item_link(&spec.base)),
        description: summary_html(&resource.summary),
        categories: vec![Category {
            name: clean_text(&resource.category.name),
            domain: None,
        }],
        enclosure: resource.download.as_ref().map(|url| Enclosure {
            url: url.to_string(),
            // The size of a download is not known without fetching it; RSS
            // requires the attribute, and the Profile advises 0 when unknown.
            length: "0".into(),
            mime_type: enclosure_type(url).into(),
        }),
        guid: Some(Guid {
            value: clean_text(&resource.guid),
            permalink: false,
        }),
        pub_date: Some(resource.published().to_rfc2822()),
        ..Item::default()
    }
}

#[cfg(test)]
mod tests {
    use ::rss::Channel;
    use chrono::DateTime;
    use url::Url;

    use crate::feeds::tests::{render_one, resource, site};
    use crate::model::{Block, Category, Summary};

    fn read(body: &[u8]) -> Channel {
        Channel::read_from(body).expect("our RSS parses")
    }

    #[test]
    fn channel_names_the_site_category_and_its_own_url() {
        let site = site("https://feeds.example.org");
        let resources = [resource(2, "A", "Leaflets")];
        let feed = render_one(
            &site,
            &resources,
            &[Category::new("Leaflets")],
            "leaflets.rss",
        );
        let channel = read(&feed.body);
        assert_eq!(channel.title(), "Library & Co — Leaflets");
        assert_eq!(channel.link(), "https://feeds.example.org/");
        assert_eq!(channel.description(), "New resources");
        assert_eq!(channel.language(), Some("en-GB"));
        assert_eq!(channel.generator(), Some("Tidings"));
        let build = DateTime::parse_from_rfc2822(channel.last_build_date().unwrap()).unwrap();
        assert_eq!(build, resources[0].updated);
        let links = channel.atom_ext().unwrap().links();
        assert_eq!(links[0].rel, "self");
        assert_eq!(
            links[0].href,
            "https://feeds.example.org/feeds/leaflets.rss"
        );
    }

    #[test]
    fn item_carries_guid_date_category_summary_and_enclosure() {
        let site = site("https://feeds.example.org/");
        let mut r = resource(5, "Plan", "Strategies and plans");
        r.link = None;
        r.download = Some(Url::parse("https://www.example.org/files/plan.pdf").unwrap());
        r.summary = Summary {
            blocks: vec![
                Block::Paragraph("Intro".into()),
                Block::List(vec!["a".into()]),
            ],
        };
        let feed = render_one(&site, std::slice::from_ref(&r), &[], "all.rss");
        let channel = read(&feed.body);
        let item = &channel.items()[0];
        assert_eq!(item.title(), Some("Plan"));
        assert_eq!(
            item.link(),
            Some("https://feeds.example.org/resources/0000000000000005")
        );
        let guid = item.guid().unwrap();
        assert_eq!(guid.value(), "urn:tidings:resource:5");
        assert!(!guid.is_permalink());
        let date = DateTime::parse_from_rfc2822(item.pub_date().unwrap()).unwrap();
        assert_eq!(date, r.first_seen);
        assert_eq!(item.categories()[0].name(), "Strategies and plans");
        assert_eq!(item.description(), Some("<p>Intro</p><ul><li>a</li></ul>"));
        let enclosure = item.enclosure().unwrap();
        assert_eq!(enclosure.url(), "https://www.example.org/files/plan.pdf");
        assert_eq!(enclosure.mime_type(), "application/pdf");
        assert_eq!(enclosure.length(), "0");
    }

    #[test]
    fn hostile_text_survives_as_text() {
        let site = site("https://feeds.example.org/");
        let mut r = resource(
            6,
            "A & B <script>x</script> ]]> \u{1}\u{b}end 🎉 שלום",
            "Q&A",
        );
        r.summary = Summary::paragraph("]]> & <b>not bold</b>");
        let feed = render_one(&site, &[r], &[], "all.rss");
        let channel = read(&feed.body);
        let item = &channel.items()[0];
        assert_eq!(
            item.title(),
            Some("A & B <script>x</script> ]]> end 🎉 שלום")
        );
        assert_eq!(
            item.description(),
            Some("<p>]]&gt; &amp; &lt;b&gt;not bold&lt;/b&gt;</p>")
        );
        assert_eq!(item.categories()[0].name(), "Q&A");
    }
}
