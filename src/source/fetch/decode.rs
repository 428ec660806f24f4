//! Bytes of a fetched page -> text. Picks the encoding the way browsers do,
//! in this order: a byte order mark, the `charset` of `Content-Type`, a
//! `<meta charset>` or `<meta http-equiv=content-type>` in the first 1024
//! bytes, else UTF-8 (WHATWG HTML "determining the character encoding").
//! Invalid bytes become U+FFFD; nothing here can panic on hostile input.

use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};

/// How many bytes of the body the `<meta>` prescan looks at (WHATWG HTML).
const PRESCAN_BYTES: usize = 1024;

/// Decode `body` to text, returning the text and the encoding actually used.
pub(super) fn decode(body: &[u8], content_type: Option<&str>) -> (String, &'static Encoding) {
    let declared = content_type
        .and_then(charset_param)
        .and_then(|label| Encoding::for_label(label.as_bytes()))
        .or_else(|| meta_charset(&body[..body.len().min(PRESCAN_BYTES)]))
        .unwrap_or(UTF_8);
    // `Encoding::decode` sniffs a BOM first, so a UTF-8 BOM wins over any label.
    let (text, used, _had_errors) = declared.decode(body);
    (text.into_owned(), used)
}

/// The value of a `charset=` parameter in a `Content-Type`-like string.
fn charset_param(value: &str) -> Option<String> {
    let lower = value.to_ascii_lowercase();
    let mut rest = lower.as_str();
    while let Some(at) = rest.find("charset") {
        rest = rest[at + "charset".len()..].trim_start();
        if let Some(after) = rest.strip_prefix('=') {
            let label = unquote(after.trim_start());
            return (!label.is_empty()).then(|| label.to_owned());
        }
    }
    None
}

/// A value up to its closing quote, or unquoted up to `;`, space or quote.
fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(quoted) = value.strip_prefix(quote) {
            return &quoted[..quoted.find(quote).unwrap_or(quoted.len())];
        }
    }
    let end = value
        .find(|c: char| c == ';' || c == '"' || c == '\'' || c.is_ascii_whitespace())
        .unwrap_or(value.len());
    &value[..end]
}

/// The encoding named by the first `<meta>` that names one in `head`.
fn meta_charset(head: &[u8]) -> Option<&'static Encoding> {
    // Only ASCII matters to the prescan; other bytes are kept as U+FFFD.
    let head = String::from_utf8_lossy(head).to_ascii_lowercase();
    let mut rest = head.as_str();
    while let Some(at) = rest.find("<meta") {
        rest = &rest[at + "<meta".len()..];
        let end = rest.find('>').unwrap_or(rest.len());
        if let Some(encoding) = meta_tag_encoding(&rest[..end]) {
            return Some(encoding);
        }
        rest = &rest[end..];
    }
    None
}

/// The encoding one `<meta …>` tag declares, given the text after `<meta`.
fn meta_tag_encoding(tag: &str) -> Option<&'static Encoding> {
    let attributes = attributes(tag);
    let find = |name: &str| {
        attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let label = match find("charset") {
        Some(label) => Some(label.to_owned()),
        None if find("http-equiv") == Some("content-type") => {
            find("content").and_then(charset_param)
        }
        None => None,
    }?;
    let encoding = Encoding::for_label(label.trim().as_bytes())?;
    // A page cannot declare UTF-16 in its own ASCII-compatible bytes; WHATWG
    // maps that to UTF-8, and x-user-defined to windows-1252.
    Some(match encoding.name() {
        "UTF-16LE" | "UTF-16BE" => UTF_8,
        "x-user-defined" => WINDOWS_1252,
        _ => encoding,
    })
}

/// The `name=value` attributes of a tag, in order; values unquoted.
fn attributes(tag: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = tag.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '/');
    while !rest.is_empty() {
        let name_end = rest
            .find(|c: char| c == '=' || c.is_ascii_whitespace() || c == '/')
            .unwrap_or(rest.len());
        let name = rest[..name_end].to_owned();
        rest = rest[name_end..].trim_start();
        let mut value = String::new();
        if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start();
            value = unquote(after).to_owned();
            let quotes = usize::from(after.starts_with(['"', '\''])) * 2;
            rest = after.get(value.len() + quotes..).unwrap_or("");
        }
        if !name.is_empty() {
            found.push((name, value));
        }
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '/');
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(body: &[u8], content_type: Option<&str>) -> &'static str {
        decode(body, content_type).1.name()
    }

    #[test]
    fn content_type_charset_is_used() {
        let (text, used) = decode(b"caf\xe9", Some("text/html; charset=windows-1252"));
        assert_eq!(text, "café");
        assert_eq!(used.name(), "windows-1252");
        assert_eq!(
            name(b"x", Some("text/html;charset=\"ISO-8859-1\"")),
            "windows-1252"
        );
        assert_eq!(name(b"x", Some("text/html; Charset = 'utf-8'")), "UTF-8");
    }

    #[test]
    fn header_wins_over_meta() {
        let body = b"<meta charset=\"windows-1252\"><p>caf\xc3\xa9";
        assert_eq!(
            decode(body, Some("text/html; charset=utf-8")).0,
            "<meta charset=\"windows-1252\"><p>café"
        );
    }

    #[test]
    fn meta_charset_is_found() {
        assert_eq!(
            name(b"<html><head><META CHARSET=windows-1252>", None),
            "windows-1252"
        );
        assert_eq!(name(b"<meta charset='koi8-r'/>", None), "KOI8-R");
        let equiv = b"<meta http-equiv=\"Content-Type\" content=\"text/html; charset=iso-8859-2\">";
        assert_eq!(name(equiv, None), "ISO-8859-2");
        let reversed = b"<meta content='text/html;charset=shift_jis' http-equiv='content-type'>";
        assert_eq!(name(reversed, None), "Shift_JIS");
    }

    #[test]
    fn meta_without_a_charset_is_skipped() {
        let body =
            b"<meta name=\"viewport\" content=\"width=device-width\"><meta charset=windows-1252>";
        assert_eq!(name(body, None), "windows-1252");
        let not_equiv = b"<meta name=description content=\"charset=koi8-r\">";
        assert_eq!(name(not_equiv, None), "UTF-8");
    }

    #[test]
    fn meta_past_the_first_1024_bytes_is_ignored() {
        let mut body = vec![b' '; 1100];
        body.extend_from_slice(b"<meta charset=windows-1252>");
        assert_eq!(name(&body, None), "UTF-8");
    }

    #[test]
    fn meta_utf16_means_utf8() {
        assert_eq!(name(b"<meta charset=utf-16>", None), "UTF-8");
        assert_eq!(name(b"<meta charset=x-user-defined>", None), "windows-1252");
    }

    #[test]
    fn default_is_utf8_with_replacement() {
        let (text, used) = decode(b"caf\xe9 \xff ok", None);
        assert_eq!(used.name(), "UTF-8");
        assert_eq!(text, "caf\u{fffd} \u{fffd} ok");
    }

    #[test]
    fn unknown_labels_fall_through() {
        assert_eq!(
            name(b"<meta charset=klingon>", Some("text/html; charset=nope")),
            "UTF-8"
        );
        assert_eq!(name(b"x", Some("text/html; charset=")), "UTF-8");
    }

    #[test]
    fn utf8_bom_wins() {
        let (text, used) = decode(
            b"\xef\xbb\xbfcaf\xc3\xa9",
            Some("text/html; charset=windows-1252"),
        );
        assert_eq!(used.name(), "UTF-8");
        assert_eq!(text, "café");
    }

    #[test]
    fn hostile_tags_do_not_panic() {
        for body in [
            &b"<meta"[..],
            b"<meta charset",
            b"<meta charset=",
            b"<meta charset='",
            b"<meta ==== ''\"\">",
            b"<meta http-equiv=content-type content=>",
            b"<meta \xff\xfe charset=\xe9>",
        ] {
            let _ = decode(body, Some("text/html; charset=\"unterminated"));
        }
    }
}
