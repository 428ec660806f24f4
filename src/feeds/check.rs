//! The pre-publication check: a feed is served only if it is well-formed XML
//! with one root, has what its format requires (RSS 2.0 channel and item
//! elements, RFC 4287 ids, titles and dates, unique ids), and parses back with
//! the `rss` (plus its `validate`) and `atom_syndication` readers. Keeping the
//! last good feed when this fails is `cache`'s job.

use std::collections::HashSet;

use chrono::DateTime;
use quick_xml::encoding::Decoder;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::{Reader, XmlVersion};
use rss::validation::Validate;

use super::{ATOM_CONTENT_TYPE, OPML_CONTENT_TYPE, RSS_CONTENT_TYPE, RenderedFeed, is_xml_char};

/// The Atom namespace (RFC 4287 §2).
const ATOM_NS: &str = "http://www.w3.org/2005/Atom";

/// The format of a feed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeedKind {
    /// RSS 2.0.
    Rss,
    /// Atom 1.0.
    Atom,
    /// OPML 2.0 subscription list.
    Opml,
}

impl FeedKind {
    /// The kind a content type names, if it is one of the three.
    pub(crate) fn from_content_type(content_type: &str) -> Option<Self> {
        match content_type {
            RSS_CONTENT_TYPE => Some(Self::Rss),
            ATOM_CONTENT_TYPE => Some(Self::Atom),
            OPML_CONTENT_TYPE => Some(Self::Opml),
            _ => None,
        }
    }
}

/// What a feed that passed the check holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedSummary {
    /// Its format.
    pub kind: FeedKind,
    /// Items (RSS), entries (Atom) or outlines (OPML).
    pub entries: usize,
}

/// Why a feed must not be published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedCheckError {
    /// The content type is none of RSS, Atom or OPML.
    #[error("unknown feed content type {0:?}")]
    UnknownKind(String),
    /// The body is not well-formed XML with one root element.
    #[error("not well-formed XML: {0}")]
    NotWellFormed(String),
    /// The root element is not the one the format needs.
    #[error("root element is <{found}>, expected <{expected}>")]
    WrongRoot {
        /// What the format needs.
        expected: &'static str,
        /// What the document has.
        found: String,
    },
    /// A required element is absent or empty.
    #[error("missing {0}")]
    Missing(String),
    /// Two items or entries share a GUID / id.
    #[error("duplicate id {0:?}")]
    DuplicateId(String),
    /// A date does not parse in the format's syntax.
    #[error("{field} is not a valid date: {value:?}")]
    BadDate {
        /// Which element.
        field: String,
        /// Its text.
        value: String,
    },
    /// A feed library refused the document.
    #[error("rejected by the {parser} reader: {reason}")]
    Rejected {
        /// Which library.
        parser: &'static str,
        /// Its error.
        reason: String,
    },
}

/// Check `feed` before it is published; see the module documentation.
pub fn check(feed: &RenderedFeed) -> Result<FeedSummary, FeedCheckError> {
    let kind = FeedKind::from_content_type(feed.content_type)
        .ok_or_else(|| FeedCheckError::UnknownKind(feed.content_type.to_owned()))?;
    let root = parse(&feed.body)?;
    let entries = match kind {
        FeedKind::Rss => check_rss(&root, &feed.body)?,
        FeedKind::Atom => check_atom(&root, &feed.body)?,
        FeedKind::Opml => check_opml(&root)?,
    };
    Ok(FeedSummary { kind, entries })
}

/// A parsed element: just enough of a DOM for the checks below.
#[derive(Debug, Default)]
struct Element {
    /// Qualified name as written (`atom:link` stays apart from `link`).
    name: String,
    /// Attributes, unescaped.
    attributes: Vec<(String, String)>,
    /// Concatenated text and CDATA directly inside it.
    text: String,
    /// Child elements in order.
    children: Vec<Element>,
}

impl Element {
    /// Children with this qualified name.
    fn children<'a, 'n>(
        &'a self,
        name: &'n str,
    ) -> impl Iterator<Item = &'a Element> + use<'a, 'n> {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Trimmed text of the first child with this name, if present.
    fn child_text(&self, name: &str) -> Option<&str> {
        self.children(name).next().map(|c| c.text.trim())
    }

    /// Non-blank text of a required child, else `Missing(what)`.
    fn required(&self, name: &str, what: &str) -> Result<&str, FeedCheckError> {
        match self.child_text(name) {
            Some(text) if !text.is_empty() => Ok(text),
            _ => Err(FeedCheckError::Missing(what.to_owned())),
        }
    }

    /// The value of an attribute.
    fn attribute(&self, name: &str) -> Option<&str> {
        (self.attributes.iter())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Parse `body` into its one root element, or say why it is not well-formed.
fn parse(body: &[u8]) -> Result<Element, FeedCheckError> {
    let bad = |reason: String| FeedCheckError::NotWellFormed(reason);
    let text = std::str::from_utf8(body).map_err(|e| bad(format!("not UTF-8: {e}")))?;
    if let Some(c) = text.chars().find(|&c| !is_xml_char(c)) {
        return Err(bad(format!(
            "character U+{:04X} is not allowed in XML",
            c as u32
        )));
    }
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut tree = TreeBuilder::default();
    loop {
        let event = reader
            .read_event()
            .map_err(|e| bad(format!("at byte {}: {e}", reader.error_position())))?;
        match event {
            Event::Start(start) => tree.open(element(&start, reader.decoder())?),
            Event::Empty(start) => tree.close(element(&start, reader.decoder())?)?,
            Event::End(_) => tree.end()?,
            Event::Text(t) => tree.text(&t.decode().map_err(|e| bad(e.to_string()))?)?,
            Event::GeneralRef(r) => tree.text(&reference(&r)?)?,
            Event::CData(c) => tree.text(&String::from_utf8_lossy(&c))?,
            Event::Eof => return tree.finish(),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
}

/// The text an entity or character reference stands for: one of XML's five
/// predefined entities or a character reference; any other is not well-formed
/// (a feed declares no entities of its own).
fn reference(r: &BytesRef) -> Result<String, FeedCheckError> {
    let bad = |reason: String| FeedCheckError::NotWellFormed(reason);
    if let Some(c) = r.resolve_char_ref().map_err(|e| bad(e.to_string()))? {
        return Ok(c.to_string());
    }
    let name = r.decode().map_err(|e| bad(e.to_string()))?;
    resolve_predefined_entity(&name)
        .map(str::to_owned)
        .ok_or_else(|| bad(format!("undefined entity &{name};")))
}

/// An element from its start tag, with attributes unescaped and checked.
fn element(start: &BytesStart, decoder: Decoder) -> Result<Element, FeedCheckError> {
    let bad = |reason: String| FeedCheckError::NotWellFormed(reason);
    let name = String::from_utf8_lossy(start.name().as_ref()).into_owned();
    let mut attributes = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| bad(format!("in <{name}>: {e}")))?;
        let key = String::from_utf8_lossy(attribute.key.as_ref()).into_owned();
        let value = attribute
            .decoded_and_normalized_value(XmlVersion::Implicit1_0, decoder)
            .map_err(|e| bad(format!("in <{name}>: {e}")))?;
        attributes.push((key, value.into_owned()));
    }
    Ok(Element {
        name,
        attributes,
        ..Element::default()
    })
}

/// Builds the tree from events and enforces exactly one root.
#[derive(Default)]
struct TreeBuilder {
    open: Vec<Element>,
    root: Option<Element>,
}

impl TreeBuilder {
    fn open(&mut self, element: Element) {
        self.open.push(element);
    }

    fn end(&mut self) -> Result<(), FeedCheckError> {
        let element = self
            .open
            .pop()
            .ok_or_else(|| FeedCheckError::NotWellFormed("end tag without a start tag".into()))?;
        self.close(element)
    }

    /// Attach a finished element to its parent, or make it the root.
    fn close(&mut self, element: Element) -> Result<(), FeedCheckError> {
        if let Some(parent) = self.open.last_mut() {
            parent.children.push(element);
        } else if self.root.is_some() {
            return Err(FeedCheckError::NotWellFormed(
                "more than one root element".into(),
            ));
        } else {
            self.root = Some(element);
        }
        Ok(())
    }

    fn text(&mut self, text: &str) -> Result<(), FeedCheckError> {
        if let Some(c) = text.chars().find(|&c| !is_xml_char(c)) {
            let reason = format!("reference to U+{:04X}, which XML forbids", c as u32);
            return Err(FeedCheckError::NotWellFormed(reason));
        }
        match self.open.last_mut() {
            Some(current) => current.text.push_str(text),
            None if text.trim().is_empty() => {}
            None => {
                return Err(FeedCheckError::NotWellFormed(
                    "text outside the root".into(),
                ));
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<Element, FeedCheckError> {
        if let Some(unclosed) = self.open.last() {
            let reason = format!("<{}> is not closed", unclosed.name);
            return Err(FeedCheckError::NotWellFormed(reason));
        }
        (self.root).ok_or_else(|| FeedCheckError::NotWellFormed("no root element".into()))
    }
}

/// The root must be `expected`.
fn expect_root(root: &Element, expected: &'static str) -> Result<(), FeedCheckError> {
    if root.name == expected {
        Ok(())
    } else {
        let found = root.name.clone();
        Err(FeedCheckError::WrongRoot { expected, found })
    }
}

/// RSS 2.0: channel title, link and description; each item a title or a
/// description, and a unique GUID; RFC 822 dates; then the `rss` crate's reader
/// and `validate` (URLs, dates, enclosure attributes).
fn check_rss(root: &Element, body: &[u8]) -> Result<usize, FeedCheckError> {
    expect_root(root, "rss")?;
    let channel = (root.children("channel").next())
        .ok_or_else(|| FeedCheckError::Missing("<channel>".into()))?;
    channel.required("title", "channel title")?;
    channel.required("link", "channel link")?;
    channel.required("description", "channel description")?;
    for field in ["pubDate", "lastBuildDate"] {
        rfc822(channel, field, &format!("channel {field}"))?;
    }
    let mut guids = HashSet::new();
    for (index, item) in channel.children("item").enumerate() {
        let what = |field: &str| format!("{field} of item {}", index + 1);
        let has = |field| item.child_text(field).is_some_and(|t| !t.is_empty());
        if !has("title") && !has("description") {
            return Err(FeedCheckError::Missing(what("title or description")));
        }
        let guid = item.required("guid", &what("guid"))?;
        if !guids.insert(guid) {
            return Err(FeedCheckError::DuplicateId(guid.to_owned()));
        }
        rfc822(item, "pubDate", &what("pubDate"))?;
    }
    let mut parsed = rss::Channel::read_from(body).map_err(|e| rejected("rss", e))?;
    allow_unknown_enclosure_lengths(&mut parsed);
    parsed
        .validate()
        .map_err(|e| rejected("rss validation", e))?;
    Ok(guids.len())
}

/// The RSS Advisory Board's profile asks for `length="0"` when a download's
/// size is unknown, but `rss`'s `validate` wants a length above 0. Let 0 pass
/// (on the parsed copy only), so the enclosure's URL and type are still checked.
fn allow_unknown_enclosure_lengths(channel: &mut rss::Channel) {
    for item in channel.items_mut() {
        if let Some(enclosure) = item.enclosure.as_mut().filter(|e| e.length.trim() == "0") {
            enclosure.length = "1".into();
        }
    }
}

/// If `parent` has `field`, it must be an RFC 822 date (as RFC 2822 reads them).
fn rfc822(parent: &Element, field: &str, what: &str) -> Result<(), FeedCheckError> {
    match parent.child_text(field) {
        Some(value) if DateTime::parse_from_rfc2822(value).is_err() => {
            Err(FeedCheckError::BadDate {
                field: what.to_owned(),
                value: value.to_owned(),
            })
        }
        _ => Ok(()),
    }
}

/// Atom 1.0: feed id, title and updated; each entry id, title and updated,
/// ids unique; RFC 3339 dates; then `atom_syndication`'s reader.
fn check_atom(root: &Element, body: &[u8]) -> Result<usize, FeedCheckError> {
    expect_root(root, "feed")?;
    if root.attribute("xmlns") != Some(ATOM_NS) {
        return Err(FeedCheckError::Missing(format!("namespace {ATOM_NS}")));
    }
    atom_header(root, "feed")?;
    let mut ids = HashSet::new();
    for (index, entry) in root.children("entry").enumerate() {
        let id = atom_header(entry, &format!("entry {}", index + 1))?;
        if !ids.insert(id) {
            return Err(FeedCheckError::DuplicateId(id.to_owned()));
        }
    }
    atom_syndication::Feed::read_from(body).map_err(|e| rejected("atom_syndication", e))?;
    Ok(ids.len())
}

/// The id, title and updated every feed and entry needs; returns the id.
fn atom_header<'a>(element: &'a Element, what: &str) -> Result<&'a str, FeedCheckError> {
    let id = element.required("id", &format!("id of {what}"))?;
    if element.children("title").next().is_none() {
        return Err(FeedCheckError::Missing(format!("title of {what}")));
    }
    let updated = element.required("updated", &format!("updated of {what}"))?;
    if let Some(published) = element.child_text("published") {
        rfc3339(published, &format!("published of {what}"))?;
    }
    rfc3339(updated, &format!("updated of {what}"))?;
    Ok(id)
}

/// RFC 3339 date, as RFC 4287 §3.3 requires.
fn rfc3339(value: &str, what: &str) -> Result<(), FeedCheckError> {
    match DateTime::parse_from_rfc3339(value) {
        Ok(_) => Ok(()),
        Err(_) => Err(FeedCheckError::BadDate {
            field: what.to_owned(),
            value: value.to_owned(),
        }),
    }
}

/// OPML: an `<opml>` root with a `<body>`; returns the number of outlines.
fn check_opml(root: &Element) -> Result<usize, FeedCheckError> {
    expect_root(root, "opml")?;
    let body = (root.children("body").next())
        .ok_or_else(|| FeedCheckError::Missing("OPML <body>".into()))?;
    Ok(body.children("outline").count())
}

/// A feed library's refusal.
fn rejected(parser: &'static str, error: impl std::fmt::Display) -> FeedCheckError {
    FeedCheckError::Rejected {
        parser,
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feeds::tests::{render_one, resource, site};
    use crate::model::Category;

    fn feed(file_name: &str, content_type: &'static str, body: &str) -> RenderedFeed {
        RenderedFeed {
            file_name: file_name.into(),
            content_type,
            body: body.as_bytes().to_vec(),
        }
    }

    fn rss(items: &str) -> RenderedFeed {
        let body = format!(
            "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>T</title>\
             <link>https://x.org/</link><description>D</description>{items}</channel></rss>"
        );
        feed("all.rss", RSS_CONTENT_TYPE, &body)
    }

    fn item(guid: &str) -> String {
        format!("<item><title>I</title><guid isPermaLink=\"false\">{guid}</guid></item>")
    }

    fn atom(entries: &str) -> RenderedFeed {
        let body = format!(
            "<feed xmlns=\"http://www.w3.org/2005/Atom\"><id>urn:f</id><title>F</title>\
             <updated>2024-01-01T00:00:00Z</updated>{entries}</feed>"
        );
        feed("all.atom", ATOM_CONTENT_TYPE, &body)
    }

    #[test]
    fn accepts_every_rendered_feed() {
        let site = site("https://feeds.example.org/");
        let mut resources = [
            resource(3, "B & <c>", "Leaflets"),
            resource(2, "A", "Other"),
        ];
        resources[0].download = Some("https://x.org/a.pdf".parse().unwrap());
        let categories = [Category::new("Leaflets"), Category::new("Other")];
        for (name, kind, entries) in [
            ("all.rss", FeedKind::Rss, 2),
            ("leaflets.atom", FeedKind::Atom, 1),
            ("feeds.opml", FeedKind::Opml, 3),
        ] {
            let feed = render_one(&site, &resources, &categories, name);
            assert_eq!(check(&feed), Ok(FeedSummary { kind, entries }), "{name}");
        }
    }

    #[test]
    fn accepts_minimal_hand_written_feeds() {
        assert_eq!(check(&rss(&(item("a") + &item("b")))).unwrap().entries, 2);
        let entry = "<entry><id>urn:e</id><title/><updated>2024-01-01T00:00:00Z</updated></entry>";
        assert_eq!(check(&atom(entry)).unwrap().entries, 1);
    }

    #[test]
    fn rejects_what_is_not_well_formed() {
        let whole = rss(&item("a"));
        let truncated = RenderedFeed {
            body: whole.body[..whole.body.len() - 10].to_vec(),
            ..whole
        };
        let cases = [
            truncated,
            feed("all.rss", RSS_CONTENT_TYPE, "<rss><channel></rss>"),
            feed("all.rss", RSS_CONTENT_TYPE, "<rss/><rss/>"),
            feed("all.rss", RSS_CONTENT_TYPE, ""),
            feed("all.rss", RSS_CONTENT_TYPE, "<rss>a & b</rss>"),
            feed("all.rss", RSS_CONTENT_TYPE, "<rss>\u{1}</rss>"),
            feed("all.rss", RSS_CONTENT_TYPE, "<rss>&#1;</rss>"),
            feed("all.rss", RSS_CONTENT_TYPE, "<rss a=\"1\" a=\"2\"/>"),
            feed("all.rss", RSS_CONTENT_TYPE, "text<rss/>"),
        ];
        for case in cases {
            let body = String::from_utf8_lossy(&case.body).into_owned();
            assert!(
                matches!(check(&case), Err(FeedCheckError::NotWellFormed(_))),
                "accepted {body:?}"
            );
        }
    }

    #[test]
    fn rejects_duplicate_guids_and_missing_rss_parts() {
        assert_eq!(
            check(&rss(&(item("a") + &item("a")))),
            Err(FeedCheckError::DuplicateId("a".into()))
        );
        let no_title = feed(
            "all.rss",
            RSS_CONTENT_TYPE,
            "<rss version=\"2.0\"><channel><link>https://x.org/</link>\
             <description>D</description></channel></rss>",
        );
        assert_eq!(
            check(&no_title),
            Err(FeedCheckError::Missing("channel title".into()))
        );
        let no_guid = rss("<item><title>I</title></item>");
        assert_eq!(
            check(&no_guid),
            Err(FeedCheckError::Missing("guid of item 1".into()))
        );
        let empty_item = rss("<item><guid>g</guid></item>");
        assert!(matches!(
            check(&empty_item),
            Err(FeedCheckError::Missing(_))
        ));
        let bad_date =
            rss("<item><title>I</title><guid>g</guid><pubDate>yesterday</pubDate></item>");
        assert!(matches!(
            check(&bad_date),
            Err(FeedCheckError::BadDate { .. })
        ));
        let wrong_root = feed("all.rss", RSS_CONTENT_TYPE, "<feed/>");
        assert!(matches!(
            check(&wrong_root),
            Err(FeedCheckError::WrongRoot { .. })
        ));
    }

    #[test]
    fn rejects_a_bad_enclosure_but_not_an_unknown_length() {
        let enclosure = |attrs: &str| {
            let item = format!("<item><title>I</title><guid>g</guid><enclosure {attrs}/></item>");
            check(&rss(&item))
        };
        assert!(
            enclosure(r#"url="https://x.org/a.pdf" length="0" type="application/pdf""#).is_ok()
        );
        let bad_url = enclosure(r#"url="a.pdf" length="0" type="application/pdf""#);
        assert!(matches!(bad_url, Err(FeedCheckError::Rejected { .. })));
        let bad_length =
            enclosure(r#"url="https://x.org/a.pdf" length="big" type="application/pdf""#);
        assert!(matches!(bad_length, Err(FeedCheckError::Rejected { .. })));
    }

    #[test]
    fn rejects_what_the_rss_crate_validation_refuses() {
        let bad_link = feed(
            "all.rss",
            RSS_CONTENT_TYPE,
            "<rss version=\"2.0\"><channel><title>T</title><link>not a url</link>\
             <description>D</description></channel></rss>",
        );
        assert!(matches!(
            check(&bad_link),
            Err(FeedCheckError::Rejected { .. })
        ));
    }

    #[test]
    fn rejects_atom_entries_without_id_or_with_a_duplicate_one() {
        let updated = "<updated>2024-01-01T00:00:00Z</updated>";
        let no_id = format!("<entry><title>E</title>{updated}</entry>");
        assert_eq!(
            check(&atom(&no_id)),
            Err(FeedCheckError::Missing("id of entry 1".into()))
        );
        let twice = format!("<entry><id>urn:e</id><title>E</title>{updated}</entry>").repeat(2);
        assert_eq!(
            check(&atom(&twice)),
            Err(FeedCheckError::DuplicateId("urn:e".into()))
        );
        let bad_date =
            "<entry><id>urn:e</id><title>E</title><updated>Mon, 1 Jan 2024</updated></entry>";
        assert!(matches!(
            check(&atom(bad_date)),
            Err(FeedCheckError::BadDate { .. })
        ));
        let no_ns = feed("all.atom", ATOM_CONTENT_TYPE, "<feed><id>x</id></feed>");
        assert!(matches!(check(&no_ns), Err(FeedCheckError::Missing(_))));
    }

    #[test]
    fn rejects_opml_without_body_and_unknown_kinds() {
        let head_only = feed(
            "feeds.opml",
            OPML_CONTENT_TYPE,
            "<opml version=\"2.0\"><head/></opml>",
        );
        assert!(matches!(check(&head_only), Err(FeedCheckError::Missing(_))));
        let html = feed("x.html", "text/html", "<html/>");
        assert!(matches!(check(&html), Err(FeedCheckError::UnknownKind(_))));
    }
}
