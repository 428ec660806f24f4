//! Selector values from `[sources.select]`: a CSS selector, optionally ending
//! in `@attr` to read that attribute instead of the text; a bare `@attr`
//! reads the entry element itself. Parsed once, when the config is checked.

use std::fmt;

use scraper::Selector;

/// One parsed `[sources.select]` value.
#[derive(Clone)]
pub struct FieldSelector {
    /// As written in the config, for messages.
    written: String,
    /// `None` for a bare `@attr`: the entry element itself.
    css: Option<Selector>,
    /// The attribute to read, when the value ends in `@attr`.
    attr: Option<String>,
}

impl fmt::Debug for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FieldSelector({:?})", self.written)
    }
}

impl FieldSelector {
    /// Parse `"h3 a"`, `"h3 a@title"` or `"@data-id"`.
    pub fn parse(written: &str) -> Result<Self, String> {
        let trimmed = written.trim();
        if trimmed.is_empty() {
            return Err("empty selector".to_owned());
        }
        let (css_text, attr) = split_attr(trimmed)?;
        let css = match css_text {
            "" => None,
            text => {
                Some(Selector::parse(text).map_err(|e| format!("invalid selector {text:?}: {e}"))?)
            }
        };
        Ok(Self {
            written: trimmed.to_owned(),
            css,
            attr,
        })
    }

    /// The value as written in the config.
    pub fn written(&self) -> &str {
        &self.written
    }

    /// The CSS part; `None` means the entry element itself.
    pub fn css(&self) -> Option<&Selector> {
        self.css.as_ref()
    }

    /// The explicit `@attr`, if any.
    pub(crate) fn attr(&self) -> Option<&str> {
        self.attr.as_deref()
    }
}

/// Split a trailing `@attr` off; an `@` inside brackets or quotes belongs to the CSS.
fn split_attr(text: &str) -> Result<(&str, Option<String>), String> {
    let Some(at) = text.rfind('@') else {
        return Ok((text, None));
    };
    let attr = &text[at + 1..];
    let looks_like_attr = !attr.is_empty()
        && attr
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':'));
    if !looks_like_attr {
        if attr.is_empty() {
            return Err(format!("{text:?} ends in '@' without an attribute name"));
        }
        return Ok((text, None));
    }
    Ok((text[..at].trim_end(), Some(attr.to_ascii_lowercase())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_css_reads_text() {
        let s = FieldSelector::parse("h3 a").unwrap();
        assert!(s.css().is_some());
        assert_eq!(s.attr(), None);
    }

    #[test]
    fn trailing_attr_is_split_off() {
        let s = FieldSelector::parse("h3 a@title").unwrap();
        assert!(s.css().is_some());
        assert_eq!(s.attr(), Some("title"));
    }

    #[test]
    fn bare_attr_reads_the_entry_itself() {
        let s = FieldSelector::parse("@data-id").unwrap();
        assert!(s.css().is_none());
        assert_eq!(s.attr(), Some("data-id"));
    }

    #[test]
    fn at_inside_an_attribute_selector_stays_css() {
        let s = FieldSelector::parse(r#"a[href="mailto:x@y"]"#).unwrap();
        assert_eq!(s.attr(), None);
    }

    #[test]
    fn broken_selectors_are_errors() {
        assert!(FieldSelector::parse("").is_err());
        assert!(FieldSelector::parse("h3 a@").is_err());
        assert!(FieldSelector::parse("ul >> li[").is_err());
    }
}
