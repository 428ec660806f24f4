//! Email addresses as Tidings accepts them, and text made safe for headers.
//! The one parser is lettre's (`Address`, `Mailbox`), the types that send the
//! mail; `Email::parse` also trims, lower-cases the domain and refuses what is
//! not a plain `local@domain` (so nothing can break a header), and `mailbox`
//! does the same for `Name <local@domain>`. Config, `subscribers add|import`,
//! web sign-up and sending all use these two, so what one accepts the others
//! send. `mask` is how an address appears in logs; `header_text` strips what
//! must never reach a header.

use std::fmt;

use lettre::Address;
use lettre::message::Mailbox;

/// A validated, normalised email address: a lettre `Address` that also
/// passes Tidings' stricter rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(Address);

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
        Address::new(local, domain.to_ascii_lowercase())
            .map(Self)
            .map_err(|e| format!("{text:?} is not an email address: {e}"))
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        self.0.as_ref()
    }

    /// The address as lettre sends to it.
    pub fn address(&self) -> &Address {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A mailbox such as `Library <news@example.org>` or `news@example.org`,
/// parsed by lettre; its address must also pass `Email::parse` (and is
/// normalised as it does). The error says what is wrong, without echoing
/// control characters.
pub fn mailbox(input: &str) -> Result<Mailbox, String> {
    if input.chars().any(char::is_control) {
        return Err(
            "must not contain control characters (CR or LF would break a mail header)".to_owned(),
        );
    }
    let text = input.trim();
    let parsed: Mailbox = text.parse().map_err(|e| {
        format!("{text:?} is not a mailbox (`name@example.org` or `Name <name@example.org>`): {e}")
    })?;
    if !names_whole_text(text, &parsed) {
        return Err(format!(
            "{text:?} is not a mailbox: text after the address (`Name <name@example.org>`)"
        ));
    }
    let email = Email::parse(parsed.email.as_ref())?;
    Ok(Mailbox::new(parsed.name, email.0))
}

/// True when nothing follows the mailbox lettre read from `text` (its
/// parser stops at the end of the address and ignores the rest).
fn names_whole_text(text: &str, parsed: &Mailbox) -> bool {
    let address: &str = parsed.email.as_ref();
    match text.strip_suffix('>') {
        Some(before) => before.ends_with(address),
        None => text.ends_with(address),
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
pub(crate) fn mask(address: &str) -> String {
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
pub(crate) fn header_text(text: &str) -> String {
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
        assert_eq!(mask(e.as_str()), "A…@example.org");
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
    fn mailboxes_are_read_by_lettre_and_checked_like_addresses() {
        let m = mailbox(" Tidings Library <News@Example.ORG> ").unwrap();
        assert_eq!(m.name.as_deref(), Some("Tidings Library"));
        assert_eq!(m.email.to_string(), "News@example.org");
        let plain = mailbox("news@example.org").unwrap();
        assert_eq!(plain.name, None);
        assert_eq!(plain.email.to_string(), "news@example.org");
        let quoted = mailbox("\"Library, News\" <news@example.org>").unwrap();
        assert_eq!(quoted.name.as_deref(), Some("Library, News"));
        for bad in [
            "Library <news@@example.org>",
            "Library <news@example..org>",
            "Library <news@example.org",
            "Library <news@example.org> trailing",
            "Library news@example.org",
            "Library <a..b@example.org>",
            "Library <news@example.org>\r\nBcc: x@y.org",
            "",
        ] {
            assert!(mailbox(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn every_accepted_address_is_one_lettre_sends_to() {
        for good in [
            "a@b.org",
            "Alice.Smith+news@example.org",
            "x@a-b.c-d.example",
        ] {
            let email = Email::parse(good).unwrap();
            let lettre: Address = email.as_str().parse().unwrap();
            assert_eq!(&lettre, email.address());
        }
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
