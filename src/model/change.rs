//! Change events: what happened to a resource in a run (new, changed,
//! withdrawn, reappeared), as feeds, digests and alerts read them.

use chrono::{DateTime, Utc};

use super::ResourceId;
use crate::reconcile::FieldChange;

/// What happened to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// First seen.
    New,
    /// Content changed.
    Changed,
    /// Gone from its source.
    Withdrawn,
    /// Back after being withdrawn.
    Reappeared,
}

impl ChangeKind {
    /// The stored name: `new`, `changed`, `withdrawn` or `reappeared`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Changed => "changed",
            Self::Withdrawn => "withdrawn",
            Self::Reappeared => "reappeared",
        }
    }

    /// The kind of a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::New, Self::Changed, Self::Withdrawn, Self::Reappeared]
            .into_iter()
            .find(|k| k.as_str() == name)
    }
}

/// One recorded change of one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEvent {
    /// Increasing with every event written.
    pub id: i64,
    /// The resource it happened to.
    pub resource_id: ResourceId,
    /// The source whose run saw it.
    pub source: String,
    /// What happened.
    pub kind: ChangeKind,
    /// For `changed` (and `reappeared` with new content): what differs.
    pub fields: Vec<FieldChange>,
    /// When the run saw it.
    pub at: DateTime<Utc>,
}
