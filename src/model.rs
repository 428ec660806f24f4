//! Domain types shared by every layer, with no I/O: what a source sees
//! (`Entry`, `Snapshot`), what the store keeps (`Resource`, `Revision`), and the
//! small value types they are made of (`Summary`, `EntryDate`, `CategorySlug`);
//! what happened to a resource (`change`), who gets mail and how often
//! (`subscriber`), and how an announcement was asked for (`announcement`).
//! Parsing text into these types belongs to `source`; persisting them to `store`.

mod announcement;
mod change;
mod consent;
mod subscriber;

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

pub use announcement::Route;
pub use change::{ChangeEvent, ChangeKind};
pub use consent::{Consent, ConsentRoute};
pub use subscriber::{CategoryChoice, Frequency, Subscriber, SubscriberStatus};

/// A category's URL-safe name: lower-case, runs of other characters than `a-z0-9` as one `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CategorySlug(String);

impl CategorySlug {
    /// Slug of a display name: lower-cased, each run of characters other than
    /// `a-z0-9` one `-`, trimmed ("Strategies and plans" → `strategies-and-plans`).
    pub fn from_name(name: &str) -> Self {
        let mut slug = String::with_capacity(name.len());
        let mut pending_dash = false;
        for c in name.chars().flat_map(char::to_lowercase) {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                if pending_dash && !slug.is_empty() {
                    slug.push('-');
                }
                pending_dash = false;
                slug.push(c);
            } else {
                pending_dash = true;
            }
        }
        Self(slug)
    }

    /// The slug as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CategorySlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A category as shown to people, with its slug.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Category {
    /// Display name, e.g. "Strategies and plans".
    pub name: String,
    /// Derived from `name`.
    pub slug: CategorySlug,
}

impl Category {
    /// The category of a display name.
    pub fn new(name: impl Into<String>) -> Self {
        let name = name.into();
        let slug = CategorySlug::from_name(&name);
        Self { name, slug }
    }

    /// The fallback for entries no rule matches.
    pub fn other() -> Self {
        Self::new("Other")
    }
}

/// A resource's own date, as precise as the source gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntryDate {
    /// A calendar day ("17 November 2020").
    Day(NaiveDate),
    /// Only the month is known ("May 2020"); the date is its first day.
    Month(NaiveDate),
}

impl EntryDate {
    /// A month-precision date, or `None` for an impossible month.
    pub fn month(year: i32, month: u32) -> Option<Self> {
        NaiveDate::from_ymd_opt(year, month, 1).map(Self::Month)
    }

    /// The first day the date covers, for sorting and feed timestamps.
    pub fn first_day(self) -> NaiveDate {
        match self {
            Self::Day(d) | Self::Month(d) => d,
        }
    }

    /// Parse the stored form: `YYYY-MM-DD`, or `YYYY-MM` for a month.
    pub(crate) fn parse_stored(text: &str) -> Option<Self> {
        match text.len() {
            10 => NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .map(Self::Day),
            7 => {
                let (y, m) = text.split_once('-')?;
                Self::month(y.parse().ok()?, m.parse().ok()?)
            }
            _ => None,
        }
    }
}

impl fmt::Display for EntryDate {
    /// `YYYY-MM-DD`, or `YYYY-MM` when only the month is known (the JSON and store form).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Day(d) => write!(f, "{}", d.format("%Y-%m-%d")),
            Self::Month(d) => write!(f, "{:04}-{:02}", d.year(), d.month()),
        }
    }
}

impl Serialize for EntryDate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EntryDate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse_stored(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("not a date: {text:?}")))
    }
}

/// One block of a summary: a paragraph, or a bulleted list.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "text", rename_all = "snake_case")]
pub enum Block {
    /// Running text, whitespace collapsed.
    Paragraph(String),
    /// List items, in order (lines starting with `•` in a seed file).
    List(Vec<String>),
}

/// A summary kept as structure, so feeds and emails can show paragraphs and lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Summary {
    /// Blocks in reading order.
    pub blocks: Vec<Block>,
}

impl Summary {
    /// A summary of one paragraph (or none, when `text` is blank).
    pub fn paragraph(text: impl Into<String>) -> Self {
        let text = text.into();
        if text.trim().is_empty() {
            return Self::default();
        }
        Self {
            blocks: vec![Block::Paragraph(text)],
        }
    }

    /// True when there is no text at all.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Plain text: paragraphs separated by a blank line, list items as `• item` lines.
    pub fn plain_text(&self) -> String {
        let mut out = String::new();
        for block in &self.blocks {
            if !out.is_empty() {
                out.push_str("\n\n");
            }
            match block {
                Block::Paragraph(text) => out.push_str(text),
                Block::List(items) => {
                    let lines: Vec<String> = items.iter().map(|i| format!("• {i}")).collect();
                    out.push_str(&lines.join("\n"));
                }
            }
        }
        out
    }

    /// Each paragraph and each list item, in order, for category matching.
    pub(crate) fn texts(&self) -> impl Iterator<Item = &str> {
        self.blocks
            .iter()
            .flat_map(|b| match b {
                Block::Paragraph(t) => std::slice::from_ref(t).iter(),
                Block::List(items) => items.iter(),
            })
            .map(String::as_str)
    }
}

/// One resource as a source sees it now, before it is matched against the store.
/// Serialised only to keep a held run's snapshot until a person decides on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Title as published (curly quotes, accents and all).
    pub title: String,
    /// Absolute link to the resource's page, when the source gives one.
    pub link: Option<Url>,
    /// Structured summary; may be empty.
    pub summary: Summary,
    /// The resource's own date, when known.
    pub date: Option<EntryDate>,
    /// The category name the source gives, if any; rules fill it in otherwise.
    pub category: Option<String>,
    /// Absolute link to a downloadable file.
    pub download: Option<Url>,
}

impl Entry {
    /// An entry with only a title, for building up in parsers and tests.
    pub fn titled(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            link: None,
            summary: Summary::default(),
            date: None,
            category: None,
            download: None,
        }
    }
}

/// Everything one successful run of a source saw, in page order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The source's configured name.
    pub source: String,
    /// Entries in the order the source lists them.
    pub entries: Vec<Entry>,
    /// Problems that skipped single entries or files without failing the run.
    pub warnings: Vec<String>,
    /// True when part of the source (a file, a page) could not be read: what was
    /// read is applied, but nothing counts as missing, so nothing is withdrawn.
    pub partial: bool,
}

/// A resource's stable, URL-safe identifier (16 hex digits derived from its identity).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ResourceId(pub String);

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A resource as stored: its identity, its current content, and its lifecycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// Stable identifier, used in URLs.
    pub id: ResourceId,
    /// Name of the source that first saw it.
    pub source: String,
    /// The identity key: canonical link, else `source` plus normalised title.
    pub identity: String,
    /// Feed GUID / atom:id, derived once and never recomputed.
    pub guid: String,
    /// Current title.
    pub title: String,
    /// Current link, absolute.
    pub link: Option<Url>,
    /// Current summary.
    pub summary: Summary,
    /// Current date of the resource itself.
    pub date: Option<EntryDate>,
    /// Current category.
    pub category: Category,
    /// Current download link.
    pub download: Option<Url>,
    /// Hash over the normalised content; equal hashes mean no change.
    pub fingerprint: String,
    /// When Tidings first saw it.
    pub first_seen: DateTime<Utc>,
    /// When its content last changed (or `first_seen`).
    pub updated: DateTime<Utc>,
    /// When it was withdrawn from the source, if it is gone.
    pub withdrawn_at: Option<DateTime<Utc>>,
}

impl Resource {
    /// Where a feed item or an email points: the resource's own link, else
    /// its page on this site (`{base}resources/{id}`).
    pub(crate) fn item_link(&self, base: &Url) -> String {
        if let Some(link) = &self.link {
            return link.to_string();
        }
        let page = format!("resources/{}", self.id);
        base.join(&page)
            .map_or_else(|_| format!("{base}{page}"), String::from)
    }

    /// The date a feed shows: the resource's own date, else when it was first seen.
    pub fn published(&self) -> DateTime<Utc> {
        self.date
            .and_then(|d| d.first_day().and_hms_opt(0, 0, 0))
            .map(|naive| naive.and_utc())
            .unwrap_or(self.first_seen)
    }
}

/// One stored version of a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    /// 1 for the first version, then counting up.
    pub seq: i64,
    /// When this version was first seen.
    pub seen_at: DateTime<Utc>,
    /// Title of this version.
    pub title: String,
    /// Link of this version.
    pub link: Option<Url>,
    /// Summary of this version.
    pub summary: Summary,
    /// Date of this version.
    pub date: Option<EntryDate>,
    /// Category of this version.
    pub category: Category,
    /// Download link of this version.
    pub download: Option<Url>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_follows_the_design_rule() {
        assert_eq!(
            CategorySlug::from_name("Strategies and plans").as_str(),
            "strategies-and-plans"
        );
        assert_eq!(
            CategorySlug::from_name("  Q&A / FAQs!  ").as_str(),
            "q-a-faqs"
        );
        assert_eq!(CategorySlug::from_name("Café news").as_str(), "caf-news");
        assert_eq!(CategorySlug::from_name("---").as_str(), "");
    }

    #[test]
    fn entry_date_round_trips_through_its_stored_form() {
        let day = EntryDate::Day(NaiveDate::from_ymd_opt(2020, 11, 17).unwrap());
        let month = EntryDate::month(2020, 5).unwrap();
        assert_eq!(day.to_string(), "2020-11-17");
        assert_eq!(month.to_string(), "2020-05");
        assert_eq!(EntryDate::parse_stored("2020-11-17"), Some(day));
        assert_eq!(EntryDate::parse_stored("2020-05"), Some(month));
        assert_eq!(EntryDate::parse_stored("2020-13"), None);
        assert_eq!(EntryDate::parse_stored("20-05-01x"), None);
    }

    #[test]
    fn plain_text_keeps_paragraphs_and_list_items() {
        let summary = Summary {
            blocks: vec![
                Block::Paragraph("Intro".into()),
                Block::List(vec!["one".into(), "two".into()]),
                Block::Paragraph("End".into()),
            ],
        };
        assert_eq!(summary.plain_text(), "Intro\n\n• one\n• two\n\nEnd");
    }
}
