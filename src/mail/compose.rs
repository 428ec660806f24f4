//! Composing messages with lettre's builder: From, Reply-To, To, Date, a
//! stable Message-ID, `List-Id`, `List-Unsubscribe` (+ `-Post`, RFC 8058),
//! `X-Tidings-Kind`, and a multipart/alternative text + HTML body. lettre
//! encodes headers (RFC 2047) and refuses line breaks in them; text that came
//! from a source is also passed through `address::header_text` first. A
//! subject is shortened to `MAX_SUBJECT_CHARS` and, when lettre would write
//! it as is although it must not be (it contains `=?`, which a reader would
//! decode as an encoded word, or a word too long to fold), encoded whole.

use chrono::{DateTime, Utc};
use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use sha2::{Digest, Sha256};
use url::Url;

use super::MailError;
use super::address::{Email, header_text};
use crate::config::{MailConfig, SiteConfig};

/// The longest subject sent, in characters; longer ones are cut at a word
/// boundary and end with an ellipsis.
pub(crate) const MAX_SUBJECT_CHARS: usize = 150;

/// Words longer than this cannot be folded onto a 78-character line, so a
/// subject holding one is encoded whole (encoded words can be split anywhere).
const LONGEST_FOLDABLE_WORD: usize = 70;

/// A recipient's mailbox, read by the same parser as config, `subscribers
/// add` and sign-up (`address::mailbox`).
pub(crate) fn mailbox(text: &str) -> Result<Mailbox, MailError> {
    super::address::mailbox(text).map_err(MailError::Compose)
}

/// What every message shares: sender, list identity, unsubscribe addresses.
#[derive(Debug, Clone)]
pub struct Sender {
    from: Mailbox,
    reply_to: Option<Mailbox>,
    list_id: String,
    unsubscribe_mailto: Option<Email>,
    id_domain: String,
    base_url: Url,
}

/// One message to compose.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    /// `X-Tidings-Kind`: digest, announcement, confirmation or alert.
    pub kind: &'static str,
    /// The recipient's address (validated when stored).
    pub to: &'a str,
    /// The subject; control characters are removed.
    pub subject: &'a str,
    /// The outbox key; the Message-ID derives from it, so a resend keeps the same id.
    pub idem_key: &'a str,
    /// The subscriber's token, for the unsubscribe headers; `None` for mail
    /// to operators, who are on no list.
    pub token: Option<&'a str>,
    /// The `Date` header.
    pub date: DateTime<Utc>,
    /// The text/plain part.
    pub text: String,
    /// The text/html part.
    pub html: String,
}

impl Sender {
    /// The sender for a site and its mail settings.
    pub fn new(site: &SiteConfig, mail: &MailConfig) -> Result<Self, MailError> {
        let from = mail.from.clone();
        let reply_to = mail.reply_to.clone();
        let unsubscribe_mailto = mail.unsubscribe_mailto.clone();
        let host = site.base_url.host_str().unwrap_or("localhost");
        let phrase: String = header_text(&site.title)
            .chars()
            .filter(|c| !matches!(c, '<' | '>' | '"' | '\\'))
            .collect();
        Ok(Self {
            id_domain: from.email.domain().to_owned(),
            list_id: format!("{phrase} <tidings.{host}>"),
            from,
            reply_to,
            unsubscribe_mailto,
            base_url: site.base_url.clone(),
        })
    }

    /// The one-click unsubscribe URL for `token` (page on GET, unsubscribe on POST).
    pub(crate) fn unsubscribe_url(&self, token: &str) -> String {
        format!("{}unsubscribe/{token}", self.base_url)
    }

    /// The RFC 5322 bytes of `out`.
    pub fn compose(&self, out: &Outgoing<'_>) -> Result<Vec<u8>, MailError> {
        let to = mailbox(out.to)?;
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .raw_header(subject_header(out.subject))
            .date(out.date.into())
            .message_id(Some(self.message_id(out)));
        if let Some(reply_to) = &self.reply_to {
            builder = builder.reply_to(reply_to.clone());
        }
        if let Some(token) = out.token {
            let mut unsubscribe = format!("<{}>", self.unsubscribe_url(token));
            if let Some(mailto) = &self.unsubscribe_mailto {
                unsubscribe.push_str(&format!(", <mailto:{mailto}?subject=unsubscribe>"));
            }
            builder = builder
                .raw_header(header("List-Id", self.list_id.clone()))
                .raw_header(header("List-Unsubscribe", unsubscribe))
                // RFC 8058: a POST of this body to the HTTPS URL unsubscribes, no page needed.
                .raw_header(header(
                    "List-Unsubscribe-Post",
                    "List-Unsubscribe=One-Click".to_owned(),
                ));
        }
        let message = builder
            .raw_header(header("X-Tidings-Kind", out.kind.to_owned()))
            .multipart(MultiPart::alternative_plain_html(
                out.text.clone(),
                out.html.clone(),
            ))
            .map_err(|e| MailError::Compose(e.to_string()))?;
        Ok(message.formatted())
    }

    /// `<{hash of the key}.{kind}@{sender's domain}>`: the same for every attempt,
    /// so a message re-sent after a crash is recognisably the same one.
    fn message_id(&self, out: &Outgoing<'_>) -> String {
        let hash = hex::encode(Sha256::digest(out.idem_key.as_bytes()));
        format!("<{}.{}@{}>", &hash[..24], out.kind, self.id_domain)
    }
}

/// A subject as sent: one line (`header_text`), at most `MAX_SUBJECT_CHARS`
/// characters, cut after the last whole word that fits, with "…" when cut.
pub(crate) fn subject_line(text: &str) -> String {
    let line = header_text(text);
    if line.chars().count() <= MAX_SUBJECT_CHARS {
        return line;
    }
    let keep: String = line.chars().take(MAX_SUBJECT_CHARS - 1).collect();
    // Cut at the last space, unless that would leave less than half the room:
    // one very long word is cut inside.
    let cut = match keep.rfind(' ') {
        Some(space) if space >= keep.len() / 2 => &keep[..space],
        _ => keep.as_str(),
    };
    format!("{}…", cut.trim_end())
}

/// The `Subject` header of `text`. lettre encodes (RFC 2047) only words with
/// non-ASCII characters; a subject containing `=?` or a word too long to fold
/// is encoded whole here, so a reader decodes it back to exactly `text`.
fn subject_header(text: &str) -> HeaderValue {
    let name = HeaderName::new_from_ascii_str("Subject");
    let line = subject_line(text);
    let long_word = line
        .split(' ')
        .any(|word| word.len() > LONGEST_FOLDABLE_WORD);
    if !line.contains("=?") && !long_word {
        return HeaderValue::new(name, line);
    }
    let mut encoded = String::with_capacity(line.len() * 2);
    {
        let prefix = "Subject: ".len();
        let mut writer =
            email_encoding::headers::writer::EmailWriter::new(&mut encoded, prefix, 0, false);
        // Writing to a String cannot fail.
        let _ = email_encoding::headers::rfc2047::encode(&line, &mut writer);
    }
    // Safe to pass as pre-encoded: the encoder writes only `=?utf-8?b?`,
    // base64, `?=` and folding (CRLF + space).
    HeaderValue::dangerous_new_pre_encoded(name, line, encoded)
}

fn header(name: &'static str, value: String) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), header_text(&value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_toml;

    fn sender(extra: &str) -> Sender {
        let config = from_toml(
            &format!(
                "[site]\ntitle = \"Library & Co <x>\"\nbase_url = \"https://feeds.example.org/\"\n\
                 [mail]\nfrom = \"Library <news@example.org>\"\n{extra}"
            ),
            &|_| None,
        )
        .unwrap();
        Sender::new(&config.site, &config.mail).unwrap()
    }

    fn outgoing<'a>(subject: &'a str) -> Outgoing<'a> {
        Outgoing {
            kind: "digest",
            to: "reader@example.org",
            subject,
            idem_key: "digest/1/2025-01-06T08:00:00Z",
            token: Some("1.abc"),
            date: chrono::DateTime::parse_from_rfc3339("2025-01-06T08:00:00Z")
                .unwrap()
                .to_utc(),
            text: "plain".to_owned(),
            html: "<p>html</p>".to_owned(),
        }
    }

    fn header_lines(bytes: &[u8]) -> Vec<String> {
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        let head = text.split("\r\n\r\n").next().unwrap().to_owned();
        head.split("\r\n").map(str::to_owned).collect()
    }

    #[test]
    fn hostile_text_never_starts_a_header_line() {
        let s =
            sender("reply_to = \"help@example.org\"\nunsubscribe_mailto = \"leave@example.org\"");
        let bytes = s
            .compose(&outgoing("Hi\r\nBcc: victim@example.org\nX: y"))
            .unwrap();
        let lines = header_lines(&bytes);
        assert!(
            !lines
                .iter()
                .any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
            "{lines:#?}"
        );
        assert!(!lines.iter().any(|l| l.starts_with("X: ")), "{lines:#?}");
        let has = |prefix: &str| lines.iter().any(|l| l.starts_with(prefix));
        assert!(
            has("List-Unsubscribe: <https://feeds.example.org/unsubscribe/1.abc>"),
            "{lines:#?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("<mailto:leave@example.org?subject=unsubscribe>"))
        );
        assert!(has("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
        assert!(has("X-Tidings-Kind: digest"));
        assert!(has("Reply-To: help@example.org"));
        assert!(has("List-Id: "));
    }

    /// The unfolded value of the one `Subject` header, and its raw lines.
    fn subject_of(bytes: &[u8]) -> (String, Vec<String>) {
        let lines = header_lines(bytes);
        let start = lines
            .iter()
            .position(|l| l.starts_with("Subject: "))
            .unwrap();
        let mut raw = vec![lines[start].clone()];
        raw.extend(
            lines[start + 1..]
                .iter()
                .take_while(|l| l.starts_with(' '))
                .cloned(),
        );
        let count = lines.iter().filter(|l| l.starts_with("Subject:")).count();
        assert_eq!(count, 1, "{lines:#?}");
        (raw.concat(), raw)
    }

    #[test]
    fn subjects_are_cut_at_a_word_with_an_ellipsis() {
        let words = "Health and wellbeing ".repeat(20);
        let cut = subject_line(&words);
        // 7 × 21 characters fit in 149; the 8th "Health" would not.
        let seven = "Health and wellbeing ".repeat(7);
        assert_eq!(cut, format!("{}…", seven.trim_end()));
        let one_word = "x".repeat(2000);
        let cut = subject_line(&one_word);
        assert_eq!(cut.chars().count(), MAX_SUBJECT_CHARS);
        assert_eq!(cut, format!("{}…", "x".repeat(149)));
        assert_eq!(subject_line("Short one"), "Short one");
        let exact = "é".repeat(MAX_SUBJECT_CHARS);
        assert_eq!(subject_line(&exact), exact);
    }

    #[test]
    fn an_encoded_word_title_is_encoded_whole_and_lines_stay_short() {
        let s = sender("");
        let hostile = "=?utf-8?q?Hi=0D=0ABcc:evil@example.org?=";
        let (_, raw) = subject_of(&s.compose(&outgoing(hostile)).unwrap());
        assert!(
            raw.iter().all(|l| !l.contains(hostile) && l.len() <= 78),
            "{raw:#?}"
        );
        assert!(raw[0].starts_with("Subject: =?utf-8?b?"), "{raw:#?}");
        for title in [
            "x".repeat(2000),
            "Ünïcødé ".repeat(300),
            "plain ".repeat(60),
        ] {
            let (_, raw) = subject_of(&s.compose(&outgoing(&title)).unwrap());
            assert!(raw.iter().all(|l| l.len() <= 78), "{raw:#?}");
        }
    }

    #[test]
    fn the_message_id_is_stable_per_key() {
        let s = sender("");
        let a = header_lines(&s.compose(&outgoing("a")).unwrap());
        let b = header_lines(&s.compose(&outgoing("b")).unwrap());
        let id = |lines: &[String]| lines.iter().find(|l| l.starts_with("Message-ID:")).cloned();
        assert!(id(&a).unwrap().ends_with(".digest@example.org>"));
        assert_eq!(id(&a), id(&b));
    }
}
