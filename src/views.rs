//! The JSON shapes scripts rely on (docs/json.md), shared by the CLI's `--json`
//! output and the HTTP API so the two can never drift apart.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::model::{EntryDate, Resource, Revision};

/// One resource, as `resources list --json` and `GET /api/resources` show it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ResourceJson {
    /// Stable identifier.
    pub id: String,
    /// Current title.
    pub title: String,
    /// Absolute link, when the source gives one.
    pub link: Option<String>,
    /// Category display name.
    pub category: String,
    /// Category slug.
    pub category_slug: String,
    /// `YYYY-MM-DD`, or `YYYY-MM` when only the month is known.
    pub date: Option<String>,
    /// Plain text.
    pub summary: String,
    /// Absolute download link.
    pub download: Option<String>,
    /// RFC 3339.
    pub first_seen: String,
    /// RFC 3339.
    pub updated: String,
    /// RFC 3339, when withdrawn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdrawn_at: Option<String>,
}

impl From<&Resource> for ResourceJson {
    fn from(r: &Resource) -> Self {
        Self {
            id: r.id.to_string(),
            title: r.title.clone(),
            link: r.link.as_ref().map(ToString::to_string),
            category: r.category.name.clone(),
            category_slug: r.category.slug.to_string(),
            date: r.date.map(|d| d.to_string()),
            summary: r.summary.plain_text(),
            download: r.download.as_ref().map(ToString::to_string),
            first_seen: rfc3339(r.first_seen),
            updated: rfc3339(r.updated),
            withdrawn_at: r.withdrawn_at.map(rfc3339),
        }
    }
}

/// One stored version, inside `resources show --json` and `GET /api/resources/{id}`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RevisionJson {
    /// 1 for the first version.
    pub seq: i64,
    /// RFC 3339.
    pub seen_at: String,
    /// Title of this version.
    pub title: String,
    /// Link of this version.
    pub link: Option<String>,
    /// Category display name of this version.
    pub category: String,
    /// Date of this version.
    pub date: Option<String>,
    /// Plain-text summary of this version.
    pub summary: String,
    /// Download link of this version.
    pub download: Option<String>,
}

impl From<&Revision> for RevisionJson {
    fn from(r: &Revision) -> Self {
        Self {
            seq: r.seq,
            seen_at: rfc3339(r.seen_at),
            title: r.title.clone(),
            link: r.link.as_ref().map(ToString::to_string),
            category: r.category.name.clone(),
            date: r.date.map(|d| d.to_string()),
            summary: r.summary.plain_text(),
            download: r.download.as_ref().map(ToString::to_string),
        }
    }
}

/// A resource with its history.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ResourceDetailJson {
    /// The current version.
    #[serde(flatten)]
    pub resource: ResourceJson,
    /// Every version, oldest first.
    pub revisions: Vec<RevisionJson>,
}

/// RFC 3339 in UTC with whole seconds, as every time in the JSON shapes.
pub(crate) fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Characters of summary shown per resource in lists and digests.
const EXCERPT_CHARS: usize = 280;

/// "17 November 2020", or "May 2020" when only the month is known.
pub(crate) fn date_text(date: EntryDate) -> String {
    match date {
        EntryDate::Day(d) => d.format("%-d %B %Y").to_string(),
        EntryDate::Month(d) => d.format("%B %Y").to_string(),
    }
}

/// The summary flattened to one line and cut at a word near 280 characters.
pub(crate) fn excerpt(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= EXCERPT_CHARS {
        return flat;
    }
    let cut: String = flat.chars().take(EXCERPT_CHARS).collect();
    let cut = cut.rsplit_once(' ').map_or(cut.as_str(), |(head, _)| head);
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn dates_read_as_people_write_them() {
        let day = EntryDate::Day(NaiveDate::from_ymd_opt(2020, 11, 7).unwrap());
        assert_eq!(date_text(day), "7 November 2020");
        assert_eq!(date_text(EntryDate::month(2020, 5).unwrap()), "May 2020");
    }

    #[test]
    fn long_summaries_are_cut_at_a_word() {
        let text = "word ".repeat(100);
        let cut = excerpt(&text);
        assert!(cut.chars().count() <= EXCERPT_CHARS + 1);
        assert!(cut.ends_with("word…"));
        assert_eq!(excerpt("short\n\n text"), "short text");
    }
}
