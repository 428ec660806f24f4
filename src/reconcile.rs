//! Snapshot -> diff: matches what a source sees now against what the store holds
//! and says what is new, changed, missing, withdrawn, reappeared or unchanged.
//! Pure, no I/O: `store::Store::apply` writes the `ChangeSet`, and refusing an
//! implausible snapshot happens before this step.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Deserializer, Serialize};

use crate::identity::{canonical_link, fingerprint, identity_key, normalise_text};
use crate::model::{Category, Entry, Resource, ResourceId};

/// One entry of a snapshot, with what identifies it and what it looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// Identity key (`identity::identity_key`).
    pub identity: String,
    /// The entry as the source gives it.
    pub entry: Entry,
    /// The category it falls in (given by the source or found by rules).
    pub category: Category,
    /// Content fingerprint (`identity::fingerprint`).
    pub fingerprint: String,
}

impl Observed {
    /// An entry of `source` in `category`, with its identity and fingerprint computed.
    pub fn new(source: &str, entry: Entry, category: Category) -> Self {
        Self {
            identity: identity_key(source, &entry),
            fingerprint: fingerprint(&entry, &category),
            entry,
            category,
        }
    }

    /// True when Tidings derived `field` rather than read it from the source:
    /// the category, when the source gives none and keyword rules chose it.
    pub(crate) fn derives(&self, field: &str) -> bool {
        field == "category" && self.entry.category.is_none()
    }
}

/// A stored resource with how many successful runs in a row have missed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResource {
    /// The resource as stored.
    pub resource: Resource,
    /// Successful, complete runs in a row that did not see it.
    pub missing_runs: u32,
}

/// How missing entries are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileOptions {
    /// Runs an entry must be missing before it is withdrawn (at least 1).
    pub withdraw_after: u32,
    /// False when the snapshot is partial: then nothing counts as missing.
    pub count_missing: bool,
}

impl Default for ReconcileOptions {
    fn default() -> Self {
        Self {
            withdraw_after: 2,
            count_missing: true,
        }
    }
}

/// Names of the fields a `FieldChange` can name, in display order.
pub(crate) const FIELDS: [&str; 6] = ["title", "summary", "date", "category", "link", "download"];

/// Longest `before` / `after` text kept in a `FieldChange`, in characters.
const MAX_CHANGE_CHARS: usize = 120;

/// One field that differs between the stored and the observed version, shortened for display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    /// One of `FIELDS`.
    pub field: &'static str,
    /// Stored value (normalised, at most about 120 characters).
    pub before: String,
    /// Observed value (normalised, at most about 120 characters).
    pub after: String,
}

impl<'de> Deserialize<'de> for FieldChange {
    /// Reads the stored JSON back, mapping the field name onto one of `FIELDS`.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            field: String,
            before: String,
            after: String,
        }
        let raw = Raw::deserialize(d)?;
        let field = FIELDS
            .iter()
            .find(|f| **f == raw.field)
            .copied()
            .ok_or_else(|| serde::de::Error::custom(format!("unknown field {:?}", raw.field)))?;
        Ok(Self {
            field,
            before: raw.before,
            after: raw.after,
        })
    }
}

/// A stored resource whose content differs from what was observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    /// The stored resource.
    pub id: ResourceId,
    /// Its new content.
    pub observed: Observed,
    /// What differs.
    pub fields: Vec<FieldChange>,
}

/// A withdrawn resource that the source lists again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reappeared {
    /// The stored resource.
    pub id: ResourceId,
    /// Its content now (stored as a new revision when `fields` is not empty).
    pub observed: Observed,
    /// What differs from the stored version; empty when it came back unchanged.
    pub fields: Vec<FieldChange>,
}

/// What one snapshot changes in the store. Every list is sorted (by identity or
/// id), so equal inputs give equal change sets whatever the entry order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSet {
    /// Entries never seen before.
    pub new: Vec<Observed>,
    /// Resources whose content changed in a field the source reads: a change for people.
    pub changed: Vec<Changed>,
    /// Resources whose content changed only in fields Tidings derives (a
    /// category chosen by keyword rules), or changes accepted silently: stored
    /// as a revision, with no change event and no move of `updated`.
    pub revised: Vec<Changed>,
    /// Withdrawn resources seen again.
    pub reappeared: Vec<Reappeared>,
    /// Resources missing this run but not yet withdrawn (their count goes up).
    pub missing: Vec<ResourceId>,
    /// Resources missing for `withdraw_after` runs: withdrawn now.
    pub withdrawn: Vec<ResourceId>,
    /// Present and unchanged, but missed by earlier runs: their count is reset.
    pub returned: Vec<ResourceId>,
    /// Present and unchanged, `returned` included.
    pub unchanged: usize,
}

/// How many resources of each kind a run saw, as `tidings ingest` prints them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// New resources.
    pub new: usize,
    /// Changed resources.
    pub changed: usize,
    /// Withdrawn resources.
    pub withdrawn: usize,
    /// Reappeared resources.
    pub reappeared: usize,
    /// Unchanged resources.
    pub unchanged: usize,
    /// Resources revised without a change event (derived fields, silent accepts).
    #[serde(default)]
    pub revised: usize,
}

impl ChangeSet {
    /// The per-kind counts.
    pub fn counts(&self) -> Counts {
        Counts {
            new: self.new.len(),
            changed: self.changed.len(),
            withdrawn: self.withdrawn.len(),
            reappeared: self.reappeared.len(),
            unchanged: self.unchanged,
            revised: self.revised.len(),
        }
    }

    /// True when applying this set changes what feeds show, with or without events.
    pub(crate) fn has_content_changes(&self) -> bool {
        self.has_events() || !self.revised.is_empty()
    }

    /// Records every change as a revision without a change event (`runs accept
    /// --silent`): nothing tells people these resources were updated.
    pub(crate) fn silence(&mut self) {
        self.revised.append(&mut self.changed);
        self.revised.sort_by(|a, b| a.id.cmp(&b.id));
    }

    /// True when applying this set would record a change event.
    pub(crate) fn has_events(&self) -> bool {
        !(self.new.is_empty()
            && self.changed.is_empty()
            && self.reappeared.is_empty()
            && self.withdrawn.is_empty())
    }
}

/// Compares a snapshot with the store.
///
/// `stored` holds the source's resources (withdrawn ones included) and any other
/// resource whose identity was observed, as `Store::stored_for_reconcile` loads
/// them; every stored resource not observed counts as missing. `observed` is
/// borrowed: only the new, changed and reappeared entries are copied into the
/// set, so a retry can reconcile the same snapshot again without a spare copy.
pub fn reconcile(
    stored: &[StoredResource],
    observed: &[Observed],
    opts: &ReconcileOptions,
) -> ChangeSet {
    let observed = dedupe(observed);
    let by_identity: HashMap<&str, &StoredResource> = stored
        .iter()
        .map(|s| (s.resource.identity.as_str(), s))
        .collect();
    let mut set = ChangeSet::default();
    for obs in observed.values() {
        match by_identity.get(obs.identity.as_str()) {
            None => set.new.push((*obs).clone()),
            Some(s) => classify_present(&mut set, s, obs),
        }
    }
    if opts.count_missing {
        for s in stored {
            if s.resource.withdrawn_at.is_none()
                && !observed.contains_key(s.resource.identity.as_str())
            {
                classify_missing(&mut set, s, opts.withdraw_after);
            }
        }
    }
    sort(&mut set);
    set
}

/// One observation per identity, chosen independently of entry order: the one
/// with the smallest fingerprint, ties broken by the raw content.
fn dedupe(observed: &[Observed]) -> BTreeMap<&str, &Observed> {
    let mut out: BTreeMap<&str, &Observed> = BTreeMap::new();
    for obs in observed {
        match out.get(obs.identity.as_str()) {
            Some(kept) if tie_key(kept) <= tie_key(obs) => {}
            _ => {
                out.insert(obs.identity.as_str(), obs);
            }
        }
    }
    out
}

/// A total order over observations of one identity.
fn tie_key(obs: &Observed) -> (&str, &str, String, String, &str) {
    let e = &obs.entry;
    let summary = serde_json::to_string(&e.summary).unwrap_or_default();
    let rest = format!(
        "{:?}|{:?}|{:?}|{:?}",
        e.link, e.date, e.category, e.download
    );
    (
        &obs.fingerprint,
        &e.title,
        summary,
        rest,
        &obs.category.name,
    )
}

/// Files an observed resource that the store already holds.
fn classify_present(set: &mut ChangeSet, s: &StoredResource, obs: &Observed) {
    let id = s.resource.id.clone();
    let fields = if s.resource.fingerprint == obs.fingerprint {
        Vec::new()
    } else {
        diff_fields(&s.resource, obs)
    };
    if s.resource.withdrawn_at.is_some() {
        let observed = obs.clone();
        set.reappeared.push(Reappeared {
            id,
            observed,
            fields,
        });
    } else if !fields.is_empty() {
        let derived_only = fields.iter().all(|f| obs.derives(f.field));
        let changed = Changed {
            id,
            observed: obs.clone(),
            fields,
        };
        if derived_only {
            set.revised.push(changed);
        } else {
            set.changed.push(changed);
        }
    } else {
        // Equal fingerprints, or a fingerprint from an older formula over equal
        // fields: no change either way.
        set.unchanged += 1;
        if s.missing_runs > 0 {
            set.returned.push(id);
        }
    }
}

/// Files a stored, live resource that the snapshot does not list.
fn classify_missing(set: &mut ChangeSet, s: &StoredResource, withdraw_after: u32) {
    let id = s.resource.id.clone();
    if s.missing_runs.saturating_add(1) >= withdraw_after.max(1) {
        set.withdrawn.push(id);
    } else {
        set.missing.push(id);
    }
}

/// Sorts every list so the result does not depend on input order.
fn sort(set: &mut ChangeSet) {
    set.new.sort_by(|a, b| a.identity.cmp(&b.identity));
    set.changed.sort_by(|a, b| a.id.cmp(&b.id));
    set.revised.sort_by(|a, b| a.id.cmp(&b.id));
    set.reappeared.sort_by(|a, b| a.id.cmp(&b.id));
    set.missing.sort();
    set.withdrawn.sort();
    set.returned.sort();
}

/// The fields that differ, compared in the normalised form the fingerprint uses.
fn diff_fields(stored: &Resource, obs: &Observed) -> Vec<FieldChange> {
    let e = &obs.entry;
    let link = |u: Option<&url::Url>| u.map(|u| canonical_link(u).to_string()).unwrap_or_default();
    let date = |d: Option<crate::model::EntryDate>| d.map(|d| d.to_string()).unwrap_or_default();
    let pairs = [
        (normalise_text(&stored.title), normalise_text(&e.title)),
        (
            normalise_text(&stored.summary.plain_text()),
            normalise_text(&e.summary.plain_text()),
        ),
        (date(stored.date), date(e.date)),
        (
            normalise_text(&stored.category.name),
            normalise_text(&obs.category.name),
        ),
        (link(stored.link.as_ref()), link(e.link.as_ref())),
        (link(stored.download.as_ref()), link(e.download.as_ref())),
    ];
    FIELDS
        .iter()
        .zip(pairs)
        .filter(|(_, (before, after))| before != after)
        .map(|(field, (before, after))| FieldChange {
            field,
            before: shorten(&before),
            after: shorten(&after),
        })
        .collect()
}

/// At most `MAX_CHANGE_CHARS` characters, with `…` when cut.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_CHANGE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests;
