//! What makes two entries the same resource, and when its content has changed:
//! canonical links, normalised text, identity keys, ids, GUIDs and fingerprints.
//! Pure functions; `reconcile` compares with them and `store` keeps their results
//! (a GUID is derived once, at insert, and never recomputed).

use std::borrow::Cow;

use sha2::{Digest, Sha256};
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};
use url::Url;

use crate::model::{Category, Entry, ResourceId};

/// Query parameters that only track the reader, never select the resource.
const TRACKING_PARAMS: [&str; 5] = ["fbclid", "gclid", "mc_cid", "mc_eid", "_ga"];

/// Elements whose boundaries separate words, so `<p>a</p><p>b</p>` reads "a b".
const BLOCK_TAGS: [&str; 20] = [
    "p",
    "br",
    "div",
    "li",
    "ul",
    "ol",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "tr",
    "td",
    "th",
    "table",
    "section",
    "article",
    "blockquote",
    "hr",
];

/// Named entities decoded by `normalise_text`: the XML five plus the typographic
/// ones library pages use. Numeric references are decoded in general.
const ENTITIES: [(&str, &str); 16] = [
    ("amp", "&"),
    ("lt", "<"),
    ("gt", ">"),
    ("quot", "\""),
    ("apos", "'"),
    ("nbsp", " "),
    ("ndash", "–"),
    ("mdash", "—"),
    ("lsquo", "‘"),
    ("rsquo", "’"),
    ("ldquo", "“"),
    ("rdquo", "”"),
    ("hellip", "…"),
    ("pound", "£"),
    ("euro", "€"),
    ("copy", "©"),
];

/// The form of a link used as identity: lower-case scheme and host, no fragment,
/// no default port, no tracking parameters, no empty query; other parameters keep
/// their order and their exact encoding.
pub(crate) fn canonical_link(url: &Url) -> Url {
    let mut out = url.clone();
    out.set_fragment(None);
    if let Some(host) = out.host_str() {
        let lower = host.to_lowercase();
        if lower != host {
            // Cannot fail: the host was valid, and lower-casing keeps it valid.
            let _ = out.set_host(Some(&lower));
        }
    }
    if out.port().is_some() && out.port() == default_port(out.scheme()) {
        let _ = out.set_port(None);
    }
    let kept: Vec<&str> = url
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty() && !is_tracking(pair))
        .collect();
    out.set_query((!kept.is_empty()).then(|| kept.join("&")).as_deref());
    out
}

/// Default ports the `url` crate does not already drop for non-special schemes.
fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        "ftp" => Some(21),
        _ => None,
    }
}

/// True when a raw `key=value` query pair is a tracking parameter.
fn is_tracking(pair: &str) -> bool {
    let raw_key = pair.split('=').next().unwrap_or(pair);
    let key: String = url::form_urlencoded::parse(raw_key.as_bytes())
        .next()
        .map(|(k, _)| k.into_owned())
        .unwrap_or_default()
        .to_ascii_lowercase();
    key.starts_with("utm_") || TRACKING_PARAMS.contains(&key.as_str())
}

/// Text as compared for identity and change: markup stripped, common entities
/// decoded, Unicode NFC, whitespace runs collapsed to one space, trimmed.
pub(crate) fn normalise_text(text: &str) -> String {
    // Every entry's title and summary pass through here on every run: skip
    // the steps that would change nothing (no markup, no entity, already NFC).
    let stripped: Cow<'_, str> = if text.contains('<') {
        Cow::Owned(strip_tags(text))
    } else {
        Cow::Borrowed(text)
    };
    let decoded = if stripped.contains('&') {
        Cow::Owned(decode_entities(&stripped))
    } else {
        stripped
    };
    let composed = if is_nfc_quick(decoded.chars()) == IsNormalized::Yes {
        decoded
    } else {
        Cow::Owned(decoded.nfc().collect())
    };
    let mut out = String::with_capacity(composed.len());
    for word in composed.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Removes tags (`<a …>`, `</p>`, `<!-- … -->`); a `<` that starts no tag is text.
fn strip_tags(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let starts_tag = after
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, '/' | '!' | '?'));
        match after.find('>').filter(|_| starts_tag) {
            Some(end) => {
                if is_block_tag(&after[..end]) {
                    out.push(' ');
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push('<');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// True when the inside of a tag (`/p`, `br /`, `div class="x"`) names a block element.
fn is_block_tag(inner: &str) -> bool {
    let name: String = inner
        .trim_start_matches('/')
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    BLOCK_TAGS.contains(&name.as_str())
}

/// Decodes `&name;`, `&#NN;` and `&#xHH;`; unknown or malformed references stay as text.
fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let decoded = after
            .find(';')
            .filter(|&end| end <= 10)
            .and_then(|end| Some((decode_entity(&after[..end])?, end)));
        match decoded {
            Some((c, end)) => {
                out.push_str(&c);
                rest = &after[end + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The text of one entity reference body (`amp`, `#39`, `#x2019`).
fn decode_entity(body: &str) -> Option<String> {
    if let Some(num) = body.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        };
        return char::from_u32(code).map(String::from);
    }
    ENTITIES
        .iter()
        .find(|(name, _)| *name == body)
        .map(|(_, text)| (*text).to_owned())
}

/// The identity key of an entry: `link:{canonical link}` when it has a link,
/// else `title:{source}:{normalised, lower-cased title}`.
pub(crate) fn identity_key(source: &str, entry: &Entry) -> String {
    match &entry.link {
        Some(link) => format!("link:{}", canonical_link(link)),
        None => format!(
            "title:{source}:{}",
            normalise_text(&entry.title).to_lowercase()
        ),
    }
}

/// The resource id of an identity: the first 16 hex digits of its SHA-256.
pub fn resource_id(identity: &str) -> ResourceId {
    let digest = Sha256::digest(identity.as_bytes());
    ResourceId(hex::encode(&digest[..8]))
}

/// A `urn:uuid:` GUID for an identity, from the first 16 bytes of its SHA-256.
///
/// The version nibble is 8 and the variant bits `10`: RFC 9562 (which updates
/// RFC 4122) gives version 8 to name-based UUIDs over hashes other than MD5 and
/// SHA-1. Derive it once, at insert; the stored value is the GUID forever.
pub fn guid(identity: &str) -> String {
    let digest = Sha256::digest(identity.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// SHA-256 hex over an entry's normalised content: title, summary (plain text),
/// date, category name and canonical download link. Equal fingerprints mean no change,
/// so edits of whitespace or markup only are not changes.
pub fn fingerprint(entry: &Entry, category: &Category) -> String {
    let fields = [
        Some(normalise_text(&entry.title)),
        Some(normalise_text(&entry.summary.plain_text())),
        entry.date.map(|d| d.to_string()),
        Some(normalise_text(&category.name)),
        entry
            .download
            .as_ref()
            .map(|u| canonical_link(u).to_string()),
    ];
    let mut hasher = Sha256::new();
    for field in fields {
        // Length-prefixed, with absent distinct from empty: no two field lists
        // hash the same bytes.
        match field {
            Some(text) => hasher.update(format!("+{}:{text}", text.len())),
            None => hasher.update("-"),
        }
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Block, EntryDate, Summary};

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn canonical_link_drops_tracking_fragment_and_default_port() {
        let cases = [
            (
                "HTTPS://Example.ORG:443/a/B?utm_source=x&id=3&fbclid=y&b=%20q#top",
                "https://example.org/a/B?id=3&b=%20q",
            ),
            (
                "http://example.org:80/?utm_medium=mail",
                "http://example.org/",
            ),
            (
                "http://example.org:8080/p?&&x=1&",
                "http://example.org:8080/p?x=1",
            ),
            (
                "https://example.org/p?gclid=1&_ga=2&mc_cid=3&mc_eid=4",
                "https://example.org/p",
            ),
            (
                "https://example.org/p?UTM_Campaign=1&q=a+b",
                "https://example.org/p?q=a+b",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(canonical_link(&url(input)).as_str(), want, "{input}");
        }
    }

    /// The pipeline `normalise_text` had before its fast paths.
    fn normalise_text_reference(text: &str) -> String {
        let decoded = decode_entities(&strip_tags(text));
        let composed: String = decoded.nfc().collect();
        composed.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    proptest::proptest! {
        #[test]
        fn issue_5_fast_paths_normalise_like_the_full_pipeline(
            text in "([a-z &;<>/#0-9]|e\u{301}|\u{e9}|&amp;|<p>|\u{a0}|\n){0,40}"
        ) {
            proptest::prop_assert_eq!(normalise_text(&text), normalise_text_reference(&text));
        }
    }

    #[test]
    fn normalise_text_strips_markup_and_whitespace() {
        assert_eq!(
            normalise_text("  <p>One\n\t two</p><p>Three</p> "),
            "One two Three"
        );
        assert_eq!(
            normalise_text("<b>Bold</b>ly &amp; &#8217;s &#x2019;"),
            "Boldly & ’s ’"
        );
        assert_eq!(normalise_text("a < b &unknown; &"), "a < b &unknown; &");
        assert_eq!(normalise_text("&lt;b&gt;"), "<b>");
        assert_eq!(normalise_text("x&nbsp;\u{a0}y"), "x y");
        // Decomposed "é" becomes the precomposed one.
        assert_eq!(normalise_text("Cafe\u{301}"), "Caf\u{e9}");
    }

    #[test]
    fn identity_uses_link_else_source_and_title() {
        let mut entry = Entry::titled("  The  <em>Plan</em> ");
        assert_eq!(identity_key("seeds", &entry), "title:seeds:the plan");
        entry.link = Some(url("https://Example.org/x?utm_source=a#f"));
        assert_eq!(identity_key("seeds", &entry), "link:https://example.org/x");
    }

    #[test]
    fn ids_and_guids_are_stable_and_well_formed() {
        let id = resource_id("link:https://example.org/x");
        assert_eq!(id.0.len(), 16);
        assert_eq!(id, resource_id("link:https://example.org/x"));
        let guid = guid("link:https://example.org/x");
        let uuid = guid.strip_prefix("urn:uuid:").unwrap();
        let groups: Vec<usize> = uuid.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert_eq!(&uuid[14..15], "8");
        assert!(matches!(&uuid[19..20], "8" | "9" | "a" | "b"));
        assert_eq!(guid, super::guid("link:https://example.org/x"));
    }

    #[test]
    fn fingerprint_ignores_whitespace_and_markup_only() {
        let cat = Category::new("Leaflets");
        let mut a = Entry::titled("Birth trauma support");
        a.summary = Summary::paragraph("Help for  parents.");
        let mut b = a.clone();
        b.title = " Birth <b>trauma</b>\n support ".into();
        b.summary = Summary::paragraph("<p>Help for parents.</p>");
        assert_eq!(fingerprint(&a, &cat), fingerprint(&b, &cat));

        b.date = EntryDate::month(2020, 5);
        assert_ne!(fingerprint(&a, &cat), fingerprint(&b, &cat));
        assert_ne!(
            fingerprint(&a, &cat),
            fingerprint(&a, &Category::new("Other"))
        );
        let mut c = a.clone();
        c.summary = Summary {
            blocks: vec![Block::List(vec!["Help for parents.".into()])],
        };
        assert_ne!(fingerprint(&a, &cat), fingerprint(&c, &cat));
    }

    #[test]
    fn fingerprint_separates_fields_unambiguously() {
        let cat = Category::new("x");
        let mut a = Entry::titled("ab");
        a.summary = Summary::paragraph("c");
        let mut b = Entry::titled("a");
        b.summary = Summary::paragraph("bc");
        assert_ne!(fingerprint(&a, &cat), fingerprint(&b, &cat));
    }
}
