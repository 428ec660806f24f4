//! `feeds.opml`: the OPML 2.0 subscription list readers import in one click,
//! written with quick-xml's element writer. It lists the RSS feed of every
//! pair; listing the Atom twin too would subscribe each reader twice.

use std::io;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

use super::{FeedSite, FeedSpec, OPML_CONTENT_TYPE, OPML_FILE_NAME, RenderedFeed};

/// Render the list of `specs` as `feeds.opml`.
pub(super) fn render(site: &FeedSite, specs: &[FeedSpec]) -> RenderedFeed {
    let body = write(site, specs).unwrap_or_else(|err| {
        // Writing into a Vec has no I/O to fail; an empty body is rejected by `check`.
        tracing::error!(%err, "could not write the OPML feed list");
        Vec::new()
    });
    RenderedFeed {
        file_name: OPML_FILE_NAME.into(),
        content_type: OPML_CONTENT_TYPE,
        body,
    }
}

/// The document: a head with title and date, a body with one outline per feed.
fn write(site: &FeedSite, specs: &[FeedSpec]) -> io::Result<Vec<u8>> {
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))?;
    let site_title = specs.first().map_or(site.title.as_str(), |s| &s.site_title);
    let modified = specs.first().map(|s| s.updated.to_rfc2822());
    writer
        .create_element("opml")
        .with_attribute(("version", "2.0"))
        .write_inner_content(|w| {
            w.create_element("head").write_inner_content(|head| {
                head.create_element("title")
                    .write_text_content(BytesText::new(site_title))?;
                if let Some(modified) = &modified {
                    head.create_element("dateModified")
                        .write_text_content(BytesText::new(modified))?;
                }
                Ok(())
            })?;
            w.create_element("body").write_inner_content(|body| {
                specs.iter().try_for_each(|spec| outline(body, spec))
            })?;
            Ok(())
        })?;
    Ok(writer.into_inner())
}

/// `<outline type="rss" text title xmlUrl htmlUrl/>` for one feed.
fn outline(writer: &mut Writer<Vec<u8>>, spec: &FeedSpec) -> io::Result<()> {
    let xml_url = spec.url("rss");
    let html_url = spec.base.to_string();
    writer
        .create_element("outline")
        .with_attribute(("type", "rss"))
        .with_attribute(("text", spec.title.as_str()))
        .with_attribute(("title", spec.title.as_str()))
        .with_attribute(("xmlUrl", xml_url.as_str()))
        .with_attribute(("htmlUrl", html_url.as_str()))
        .write_empty()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use quick_xml::Reader;
    use quick_xml::events::Event;

    use crate::feeds::tests::{render_one, site};
    use crate::model::Category;

    /// `(text, xmlUrl, htmlUrl, type)` of every outline.
    fn outlines(body: &[u8]) -> Vec<[String; 4]> {
        let mut reader = Reader::from_reader(body);
        let mut out = Vec::new();
        let mut buf = Vec::new();
        loop {
            match reader.read_event_into(&mut buf).unwrap() {
                Event::Empty(e) if e.name().as_ref() == b"outline" => {
                    let attr = |k: &str| {
                        let a = e.try_get_attribute(k).unwrap().unwrap();
                        let decoder = reader.decoder();
                        let version = quick_xml::XmlVersion::Implicit1_0;
                        a.decoded_and_normalized_value(version, decoder)
                            .unwrap()
                            .into_owned()
                    };
                    out.push([attr("text"), attr("xmlUrl"), attr("htmlUrl"), attr("type")]);
                }
                Event::Eof => return out,
                _ => {}
            }
            buf.clear();
        }
    }

    #[test]
    fn lists_the_rss_feed_of_every_pair() {
        let site = site("https://feeds.example.org");
        let categories = [Category::new("Leaflets"), Category::new("Q&A")];
        let feed = render_one(&site, &[], &categories, "feeds.opml");
        let base = "https://feeds.example.org/";
        let rss = |stem: &str| format!("https://feeds.example.org/feeds/{stem}.rss");
        let expected = [
            ["Library & Co".into(), rss("all"), base.into(), "rss".into()],
            [
                "Library & Co — Leaflets".into(),
                rss("leaflets"),
                base.into(),
                "rss".into(),
            ],
            [
                "Library & Co — Q&A".into(),
                rss("q-a"),
                base.into(),
                "rss".into(),
            ],
        ];
        assert_eq!(outlines(&feed.body), expected);
        let text = String::from_utf8(feed.body).unwrap();
        assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>"));
        assert!(text.contains("<opml version=\"2.0\">"));
        assert!(text.contains("<title>Library &amp; Co</title>"));
    }
}
