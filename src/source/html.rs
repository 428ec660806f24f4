//! One HTML page + `[sources.select]` -> entries and the next page's URL.
//! Pure over `&str`: fetching, pagination and politeness live in
//! `source::scrape` and `source::fetch`. Entries without a usable title or
//! link are skipped with a warning, never published as empty items.

use ego_tree::iter::Edge;
use scraper::{ElementRef, Html, Node, Selector};
use url::Url;

use crate::config::Selectors;
use crate::dates;
use crate::model::{Block, Entry, Summary};
use crate::source::select::FieldSelector;

/// What one page yielded.
#[derive(Debug, Default)]
pub struct ParsedPage {
    /// Entries in page order.
    pub entries: Vec<Entry>,
    /// Entries skipped, and why.
    pub warnings: Vec<String>,
    /// The next page's absolute URL, when the page links one.
    pub next_page: Option<Url>,
    /// How many elements matched the entry selector (skipped ones included).
    pub matched: usize,
    /// The tag name of the element holding the first entry (`ul` for `ul > li`).
    pub container: Option<String>,
}

/// Parse `html`, fetched from `page_url`, with `select`.
pub(crate) fn parse_page(html: &str, page_url: &Url, select: &Selectors) -> ParsedPage {
    let document = Html::parse_document(html);
    let base = base_url(&document, page_url);
    let mut parsed = ParsedPage::default();
    for element in matches(document.root_element(), &select.entry) {
        parsed.matched += 1;
        if parsed.container.is_none() {
            parsed.container = element
                .parent()
                .and_then(ElementRef::wrap)
                .map(|parent| parent.value().name().to_owned());
        }
        match parse_entry(element, &base, select) {
            Ok(entry) => parsed.entries.push(entry),
            Err(reason) => parsed.warnings.push(format!(
                "{page_url}: entry {} skipped: {reason}",
                parsed.matched
            )),
        }
    }
    parsed.next_page = select
        .next_page
        .as_ref()
        .and_then(|s| first_value(document.root_element(), s, "href"))
        .and_then(|href| resolve_link(&base, &href));
    parsed
}

/// Why the page `html` ended before the document did, if it did: no closing
/// `</body>` or `</html>`, or fewer closing than opening tags of the element
/// holding the entries (`parsed.container`). HTML parsers close whatever is
/// open at the end of the text, so this is read from the text itself.
pub(crate) fn unfinished(html: &str, parsed: &ParsedPage) -> Option<String> {
    let lower = html.to_ascii_lowercase();
    if !lower.contains("</html") && !lower.contains("</body") {
        return Some("the page ends before its closing </body> or </html>".to_owned());
    }
    let tag = parsed.container.as_deref()?;
    let (opened, closed) = tag_counts(&lower, tag);
    (opened > closed).then(|| {
        format!("the listing's <{tag}> is opened {opened} times but closed {closed} times")
    })
}

/// How often `<tag` and `</tag` occur in `lower` as whole tag names.
fn tag_counts(lower: &str, tag: &str) -> (usize, usize) {
    let count = |prefix: String| {
        lower
            .match_indices(&prefix)
            .filter(|(at, _)| {
                let next = lower[at + prefix.len()..].chars().next();
                next.is_none_or(|c| c.is_ascii_whitespace() || c == '>' || c == '/')
            })
            .count()
    };
    (count(format!("<{tag}")), count(format!("</{tag}")))
}

/// The page URL, or `<base href>` when it stays on the page's origin: a base
/// pointing elsewhere could send pagination to a host the config never named.
fn base_url(document: &Html, page_url: &Url) -> Url {
    let Ok(selector) = Selector::parse("base[href]") else {
        return page_url.clone();
    };
    document
        .select(&selector)
        .next()
        .and_then(|base| base.attr("href"))
        .and_then(|href| page_url.join(href.trim()).ok())
        .filter(|base| base.origin() == page_url.origin())
        .unwrap_or_else(|| page_url.clone())
}

fn parse_entry(element: ElementRef<'_>, base: &Url, select: &Selectors) -> Result<Entry, String> {
    let title = first_text(element, &select.title).ok_or("no title")?;
    let href = first_value(element, &select.link, "href").ok_or("no link")?;
    let link = resolve_link(base, &href).ok_or_else(|| format!("unusable link {href:?}"))?;
    let summary = select
        .summary
        .as_ref()
        .map(|s| first_summary(element, s))
        .unwrap_or_default();
    // As for seed files, a date written in the title stands in when the date
    // selector finds none (or none is configured).
    let date = (select.date.as_ref())
        .and_then(|s| first_date(element, s))
        .or_else(|| dates::find_date_in_title(&title));
    let category = select
        .category
        .as_ref()
        .and_then(|s| first_text(element, s));
    let download = select
        .download
        .as_ref()
        .and_then(|s| first_value(element, s, "href"))
        .and_then(|href| resolve_link(base, &href));
    Ok(Entry {
        title,
        link: Some(link),
        summary,
        date,
        category,
        download,
    })
}

/// Elements `selector` picks inside `scope` (or `scope` itself for a bare `@attr`).
fn matches<'a>(scope: ElementRef<'a>, selector: &FieldSelector) -> Vec<ElementRef<'a>> {
    match selector.css() {
        Some(css) => scope.select(css).collect(),
        None => vec![scope],
    }
}

/// The first non-empty text (or `@attr` value) the selector picks.
fn first_text(scope: ElementRef<'_>, selector: &FieldSelector) -> Option<String> {
    matches(scope, selector).into_iter().find_map(|el| {
        let value = match selector.attr() {
            Some(attr) => el.attr(attr).map(collapse),
            None => Some(text_of(el)),
        };
        value.filter(|v| !v.is_empty())
    })
}

/// The first non-empty attribute value: the explicit `@attr`, else `default_attr`.
fn first_value(
    scope: ElementRef<'_>,
    selector: &FieldSelector,
    default_attr: &str,
) -> Option<String> {
    let attr = selector.attr().unwrap_or(default_attr);
    matches(scope, selector)
        .into_iter()
        .filter_map(|el| el.attr(attr))
        .map(str::trim)
        .find(|v| !v.is_empty())
        .map(str::to_owned)
}

/// A date from `datetime` (or `@attr`), else from the text.
fn first_date(scope: ElementRef<'_>, selector: &FieldSelector) -> Option<crate::model::EntryDate> {
    matches(scope, selector).into_iter().find_map(|el| {
        let attr = selector.attr().unwrap_or("datetime");
        let from_attr = el.attr(attr).and_then(dates::parse_date);
        from_attr.or_else(|| {
            let text = text_of(el);
            dates::parse_date(&text).or_else(|| dates::find_date_in_title(&text))
        })
    })
}

/// A summary keeping paragraphs and lists when the element has them.
fn first_summary(scope: ElementRef<'_>, selector: &FieldSelector) -> Summary {
    let Some(el) = matches(scope, selector).into_iter().next() else {
        return Summary::default();
    };
    if let Some(attr) = selector.attr() {
        return Summary::paragraph(el.attr(attr).map(collapse).unwrap_or_default());
    }
    let summary = Summary {
        blocks: blocks_of(el),
    };
    if summary.is_empty() {
        Summary::paragraph(text_of(el))
    } else {
        summary
    }
}

/// Paragraph and list blocks directly readable inside `el`: `<p>` and `<ul>`/`<ol>`.
fn blocks_of(el: ElementRef<'_>) -> Vec<Block> {
    let mut blocks = Vec::new();
    for child in el.descendent_elements() {
        match child.value().name() {
            "p" => {
                let text = text_of(child);
                if !text.is_empty() {
                    blocks.push(Block::Paragraph(text));
                }
            }
            "ul" | "ol" => {
                let items: Vec<String> = child
                    .child_elements()
                    .filter(|li| li.value().name() == "li")
                    .map(text_of)
                    .filter(|t| !t.is_empty())
                    .collect();
                if !items.is_empty() {
                    blocks.push(Block::List(items));
                }
            }
            _ => {}
        }
    }
    blocks
}

/// Elements whose boundaries separate words even without whitespace in the markup.
fn is_block(name: &str) -> bool {
    matches!(
        name,
        "p" | "div"
            | "li"
            | "ul"
            | "ol"
            | "br"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "tr"
            | "td"
            | "th"
            | "section"
            | "article"
            | "header"
            | "footer"
            | "blockquote"
            | "dd"
            | "dt"
            | "figcaption"
            | "table"
    )
}

/// Visible text with whitespace collapsed. Iterative, so 10,000 nested
/// elements cannot overflow the stack; script and style text is left out.
fn text_of(el: ElementRef<'_>) -> String {
    let mut out = String::new();
    let mut hidden_depth = 0usize;
    for edge in el.traverse() {
        match edge {
            Edge::Open(node) => match node.value() {
                Node::Element(e) if matches!(e.name(), "script" | "style" | "template") => {
                    hidden_depth += 1;
                }
                Node::Element(e) if is_block(e.name()) => out.push(' '),
                Node::Text(text) if hidden_depth == 0 => out.push_str(&text[..]),
                _ => {}
            },
            Edge::Close(node) => match node.value() {
                Node::Element(e) if matches!(e.name(), "script" | "style" | "template") => {
                    hidden_depth = hidden_depth.saturating_sub(1);
                }
                Node::Element(e) if is_block(e.name()) => out.push(' '),
                _ => {}
            },
        }
    }
    collapse(&out)
}

/// Whitespace runs (including non-breaking spaces) as one space; control characters dropped.
fn collapse(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split(|c: char| c.is_whitespace() || c.is_control()) {
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// An absolute http(s) link, or `None` for `javascript:`, `data:`, `mailto:` and the unparseable.
pub(crate) fn resolve_link(base: &Url, href: &str) -> Option<Url> {
    let href = href.trim();
    if href.is_empty() || href.starts_with('#') {
        return None;
    }
    let url = base.join(href).ok()?;
    matches!(url.scheme(), "http" | "https").then_some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selectors(next: bool) -> Selectors {
        let p = |s: &str| FieldSelector::parse(s).unwrap();
        Selectors {
            entry: p("ul.resource-list > li"),
            title: p("h3"),
            link: p("h3 a"),
            summary: Some(p(".resource-card__body")),
            date: Some(p("time")),
            category: Some(p(".resource-card__tag")),
            download: Some(p("a.btn--download")),
            next_page: next.then(|| p("a[rel=next]")),
        }
    }

    fn page(items: &str) -> String {
        format!(
            "<html><body><ul class=\"resource-list\">{items}</ul><a rel=\"next\" href=\"?page=2\">Next</a></body></html>"
        )
    }

    fn url() -> Url {
        Url::parse("https://library.example.org/resource-library/").unwrap()
    }

    #[test]
    fn fields_come_from_text_href_and_datetime() {
        let html = page(
            r#"<li><span class="resource-card__tag">Leaflets</span>
            <h3><a href="../leaflet-one?utm_source=x">  Winter
               vaccinations &amp; you </a></h3>
            <time datetime="2023-10-02">2 October 2023</time>
            <div class="resource-card__body"><p>First <b>para</b>.</p><ul><li>one</li><li>two</li></ul></div>
            <a class="btn--download" href="//cdn.example.org/a.pdf">Download</a></li>"#,
        );
        let parsed = parse_page(&html, &url(), &selectors(true));
        assert_eq!(parsed.entries.len(), 1);
        let e = &parsed.entries[0];
        assert_eq!(e.title, "Winter vaccinations & you");
        assert_eq!(
            e.link.as_ref().unwrap().as_str(),
            "https://library.example.org/leaflet-one?utm_source=x"
        );
        assert_eq!(e.category.as_deref(), Some("Leaflets"));
        assert_eq!(e.date.map(|d| d.to_string()).as_deref(), Some("2023-10-02"));
        assert_eq!(
            e.download.as_ref().unwrap().as_str(),
            "https://cdn.example.org/a.pdf"
        );
        assert_eq!(e.summary.plain_text(), "First para.\n\n• one\n• two");
        assert_eq!(
            parsed.next_page.unwrap().as_str(),
            "https://library.example.org/resource-library/?page=2"
        );
    }

    #[test]
    fn entries_without_title_or_usable_link_are_skipped_with_a_warning() {
        let html = page(
            r#"<li><h3></h3></li>
               <li><h3><a href="javascript:alert(1)">Script</a></h3></li>
               <li><h3><a href="data:text/html,hi">Data</a></h3></li>
               <li><h3>No link</h3></li>
               <li><h3><a href="/ok">Fine</a></h3></li>"#,
        );
        let parsed = parse_page(&html, &url(), &selectors(false));
        assert_eq!(parsed.matched, 5);
        assert_eq!(parsed.entries.len(), 1);
        assert_eq!(parsed.entries[0].title, "Fine");
        assert_eq!(parsed.warnings.len(), 4);
        assert!(
            parsed.warnings[1].contains("javascript:"),
            "{:?}",
            parsed.warnings
        );
    }

    #[test]
    fn dates_fall_back_to_uk_text_forms() {
        let html = page(
            r#"<li><h3><a href="/a">A</a></h3><time>14/08/2019</time></li>
               <li><h3><a href="/b">B</a></h3><time>Published May 2020</time></li>"#,
        );
        let parsed = parse_page(&html, &url(), &selectors(false));
        let dates: Vec<String> = parsed
            .entries
            .iter()
            .map(|e| e.date.unwrap().to_string())
            .collect();
        assert_eq!(dates, ["2019-08-14", "2020-05"]);
    }

    #[test]
    fn a_date_in_the_title_stands_in_when_the_date_selector_finds_none() {
        let html = page(
            r#"<li><h3><a href="/a">Board - 17 November 2020</a></h3><time>soon</time></li>
               <li><h3><a href="/b">Board - Aug 14, 2019</a></h3></li>
               <li><h3><a href="/c">Board 2021-2024</a></h3></li>
               <li><h3><a href="/d">Board - 1 May 2020</a></h3><time>2023-10-02</time></li>"#,
        );
        let parsed = parse_page(&html, &url(), &selectors(false));
        let dates: Vec<Option<String>> = parsed
            .entries
            .iter()
            .map(|e| e.date.map(|d| d.to_string()))
            .collect();
        let want = [
            Some("2020-11-17"),
            Some("2019-08-14"),
            None,
            Some("2023-10-02"),
        ];
        assert_eq!(dates, want.map(|d| d.map(str::to_owned)));
    }

    #[test]
    fn a_base_href_on_another_origin_is_ignored() {
        let html = r#"<html><head><base href="https://evil.example.net/"></head><body>
            <ul class="resource-list"><li><h3><a href="/x">X</a></h3></li></ul>
            <a rel="next" href="/page2">next</a></body></html>"#;
        let parsed = parse_page(html, &url(), &selectors(true));
        assert_eq!(
            parsed.entries[0].link.as_ref().unwrap().host_str(),
            Some("library.example.org")
        );
        assert_eq!(
            parsed.next_page.unwrap().host_str(),
            Some("library.example.org")
        );
    }

    #[test]
    fn issue_13_a_page_cut_short_is_unfinished() {
        let whole = page(r#"<li><h3><a href="/a">A</a></h3></li>"#);
        let parsed = parse_page(&whole, &url(), &selectors(true));
        assert_eq!(parsed.container.as_deref(), Some("ul"));
        assert_eq!(unfinished(&whole, &parsed), None);
        let cut = &whole[..whole.find("</ul>").unwrap()];
        let parsed = parse_page(cut, &url(), &selectors(true));
        assert_eq!(parsed.entries.len(), 1, "what was read is kept");
        assert!(unfinished(cut, &parsed).unwrap().contains("</body>"));
        let unclosed = whole.replace("</ul>", "");
        let parsed = parse_page(&unclosed, &url(), &selectors(true));
        let reason = unfinished(&unclosed, &parsed).unwrap();
        assert!(
            reason.contains("<ul> is opened 1 times but closed 0"),
            "{reason}"
        );
        let ulterior = whole.replace("<ul class", "<ulx></ulx><ul class");
        let parsed = parse_page(&ulterior, &url(), &selectors(true));
        assert_eq!(
            unfinished(&ulterior, &parsed),
            None,
            "only whole tag names count"
        );
    }

    #[test]
    fn ten_thousand_nested_divs_neither_crash_nor_hang() {
        let deep = format!(
            "{}deep text{}",
            "<div>".repeat(10_000),
            "</div>".repeat(10_000)
        );
        let html = page(&format!(
            r#"<li><h3><a href="/d">Deep</a></h3><div class="resource-card__body">{deep}</div></li>"#
        ));
        let parsed = parse_page(&html, &url(), &selectors(false));
        assert_eq!(parsed.entries.len(), 1);
        assert!(parsed.entries[0].summary.plain_text().contains("deep text"));
    }

    #[test]
    fn broken_html_still_yields_what_is_readable() {
        let html = r#"<ul class="resource-list"><li><h3><a href="/a">Unclosed <b>bold</h3><li><h3><a href="/b">Second"#;
        let parsed = parse_page(html, &url(), &selectors(false));
        let titles: Vec<&str> = parsed.entries.iter().map(|e| e.title.as_str()).collect();
        assert_eq!(titles, ["Unclosed bold", "Second"]);
    }

    #[test]
    fn script_text_and_control_characters_never_reach_values() {
        let html = page(
            "<li><h3><a href=\"/s\">Safe\u{1}\u{b} title<script>alert(1)</script></a></h3></li>",
        );
        let parsed = parse_page(&html, &url(), &selectors(false));
        assert_eq!(parsed.entries[0].title, "Safe title");
    }
}
