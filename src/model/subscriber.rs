//! Subscribers as the domain sees them: who they are, what they chose, how
//! often, and where they stand. Storing them is `store::subscribers`'s.

use chrono::{DateTime, Utc};

use super::CategorySlug;

/// How often a subscriber gets a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Frequency {
    /// On `digest.schedule`.
    Weekly,
    /// On `digest.daily_schedule`.
    Daily,
}

impl Frequency {
    /// `weekly` or `daily`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Weekly => "weekly",
            Self::Daily => "daily",
        }
    }

    /// The frequency a name stands for.
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "weekly" => Some(Self::Weekly),
            "daily" => Some(Self::Daily),
            _ => None,
        }
    }
}

/// Where a subscriber stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriberStatus {
    /// Added, not yet confirmed: gets nothing but the confirmation.
    Pending,
    /// Gets digests.
    Confirmed,
    /// Asked to stop.
    Unsubscribed,
    /// Their mail was refused `mail.suppress_after` times: gets nothing until
    /// they confirm again.
    Suppressed,
}

impl SubscriberStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Confirmed => "confirmed",
            Self::Unsubscribed => "unsubscribed",
            Self::Suppressed => "suppressed",
        }
    }

    /// The status a stored name stands for.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Confirmed,
            Self::Unsubscribed,
            Self::Suppressed,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

/// The categories a subscriber chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CategoryChoice {
    /// Every category, including ones added later.
    All,
    /// These slugs.
    Only(Vec<CategorySlug>),
}

impl CategoryChoice {
    /// True when resources of `slug` belong in this subscriber's digest.
    pub(crate) fn includes(&self, slug: &CategorySlug) -> bool {
        match self {
            Self::All => true,
            Self::Only(slugs) => slugs.contains(slug),
        }
    }

    /// The stored form: `all` or slugs joined by commas.
    pub fn stored(&self) -> String {
        match self {
            Self::All => "all".to_owned(),
            Self::Only(slugs) => slugs
                .iter()
                .map(CategorySlug::as_str)
                .collect::<Vec<_>>()
                .join(","),
        }
    }

    /// The slugs, or `["all"]`, as `subscribers list --json` shows them.
    pub fn names(&self) -> Vec<String> {
        match self {
            Self::All => vec!["all".to_owned()],
            Self::Only(slugs) => slugs.iter().map(ToString::to_string).collect(),
        }
    }

    /// The choice its stored form stands for.
    pub(crate) fn from_stored(text: &str) -> Self {
        if text == "all" {
            return Self::All;
        }
        let slugs = text.split(',').filter(|s| !s.is_empty());
        Self::Only(slugs.map(CategorySlug::from_name).collect())
    }
}

/// A subscriber as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    /// Row id; part of the subscriber's token.
    pub id: i64,
    /// Normalised address.
    pub email: String,
    /// What they get.
    pub categories: CategoryChoice,
    /// How often.
    pub frequency: Frequency,
    /// Where they stand.
    pub status: SubscriberStatus,
    /// Random; the token is an HMAC over it.
    pub token_nonce: String,
    /// When added.
    pub created_at: DateTime<Utc>,
    /// When confirmed; the first digest window starts here.
    pub confirmed_at: Option<DateTime<Utc>>,
    /// End of the last digest window; the next starts here.
    pub window_end: Option<DateTime<Utc>>,
    /// Permanent refusals of their mail since they last confirmed.
    pub refusals: i64,
    /// When they were suppressed, if they are.
    pub suppressed_at: Option<DateTime<Utc>>,
}

impl Subscriber {
    /// Where this subscriber's next digest window starts.
    pub(crate) fn window_start(&self) -> Option<DateTime<Utc>> {
        self.window_end.or(self.confirmed_at)
    }
}
