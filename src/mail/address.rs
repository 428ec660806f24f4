//! Email addresses as Tidings accepts them, and text made safe for headers.
//! `Email::parse` trims, lower-cases the domain and refuses anything that is
//! not a plain `local@domain` (so nothing can break a header); `mask` is how
//! an address appears in logs; `header_text` strips what must never reach one.

use std::fmt;

/// A validated, normalised email address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

/// Characters allowed in a dot-atom local part (RFC 5322 `atext`), besides letters and digits.
const ATEXT: &str = "!#$%&'*+-/=?^_`{|}~";

impl Email {
    /// Trim, check and normalise `input`; the error says what is wrong, without echoing control characters.
    pub fn parse(input: &str) -> Result<Self, String> {
        let text = input.trim();
        if text.chars().any(char::is_control) {
            return Err("an email address must not contain control characters".to_owned());
        }
        let Some((local, domain)) = text.rsplit_once('@') else {
            return Err(format!("{text:?} is not an email address (no @)"));
        };
        check_local(local).map_err(|why| format!("{text:?} is not an email address: {why}"))?;
        check_domain(domain).map_err(|why| format!("{text:?} is not an email address: {why}"))?;
        Ok(Self(format!("{local}@{}", domain.to_ascii_lowercase())))
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address for logs: first character of the local part, then the domain.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn check_local(local: &str) -> Result<(), &'static str> {
    if local.is_empty() || local.len() > 64 {
        return Err("the part before @ must be 1 to 64 characters");
    }
    let atext = |c: char| c.is_ascii_alphanumeric() || ATEXT.contains(c);
    if !local
        .split('.')
        .all(|atom| !atom.is_empty() && atom.chars().all(atext))
    {
        return Err("the part before @ has a character or dot that is not allowed");
    }
    Ok(())
}

fn check_domain(domain: &str) -> Result<(), &'static str> {
    if domain.is_empty() || domain.len() > 253 {
        return Err("the domain must be 1 to 253 characters");
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !domain.split('.').all(label_ok) {
        return Err("the domain is not a host name (letters, digits, hyphens and dots)");
    }
    Ok(())
}

/// An address as logs show it: `a…@example.org`. Never log a whole address.
pub fn mask(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}…@{domain}")
        }
        None => "…".to_owned(),
    }
}

/// Text fit for a header value: control characters (CR, LF, TAB, NUL…) become
/// spaces, runs of whitespace one space. lettre encodes what remains (RFC 2047).
pub fn header_text(text: &str) -> String {
    text.split(|c: char| c.is_control() || c.is_whitespace())
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_trimmed_and_their_domain_lower_cased() {
        let e = Email::parse("  Alice.Smith+news@Example.ORG \t").unwrap();
        assert_eq!(e.as_str(), "Alice.Smith+news@example.org");
        assert_eq!(e.masked(), "A…@example.org");
    }

    #[test]
    fn header_breaking_and_malformed_addresses_are_refused() {
        for bad in [
            "a@b.org\r\nBcc: x@y.org",
            "a@b.org\nx",
            "a\0@b.org",
            "no-at-sign",
            "@b.org",
            "a@",
            "a b@c.org",
            "a..b@c.org",
            ".a@c.org",
            "a@b..org",
            "a@-b.org",
            "<a@b.org>",
            "\"quoted\"@b.org",
            "a@b.org>",
            "a,b@c.org",
            "a@b_c.org",
            "ä@b.org",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let err = Email::parse("a@b.org\r\nBcc: x").unwrap_err();
        assert!(!err.contains('\r') && !err.contains('\n'), "{err:?}");
    }

    #[test]
    fn header_text_removes_line_breaks_and_controls() {
        assert_eq!(
            header_text("Title\r\nBcc: evil@example.org\t\u{7}x"),
            "Title Bcc: evil@example.org x"
        );
        assert_eq!(header_text("  a   b "), "a b");
    }
}
