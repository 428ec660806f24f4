//! The mass-change hold: after reconciling and before applying, decides
//! whether a run changes too much to be believed (a redesign that broke one
//! selector, a page that lost half its entries). Pure, no I/O: `ingest` stores
//! a held run instead of applying it, and `runs` applies or discards it.

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;

use crate::reconcile::{ChangeSet, FIELDS, StoredResource};

/// Changed resources (or resources with one field changed) below this count
/// never hold a run: a small source may edit most of its few items at once.
pub(crate) const MIN_HELD_CHANGES: usize = 5;

/// The ratios of `[[sources]]` that bound a plausible run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HoldLimits {
    /// `max_changed_ratio`: more changed resources than this share holds the run.
    pub max_changed_ratio: f64,
    /// `max_withdrawn_ratio`: more resources starting to count as missing holds it.
    pub max_withdrawn_ratio: f64,
}

impl Default for HoldLimits {
    fn default() -> Self {
        Self {
            max_changed_ratio: 0.3,
            max_withdrawn_ratio: 0.3,
        }
    }
}

/// How often one field was emptied or changed among the changed resources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldCount {
    /// One of `reconcile::FIELDS`.
    pub field: &'static str,
    /// Resources where the field had a value and now has none.
    pub emptied: usize,
    /// Resources where the field now has a different value.
    pub changed: usize,
    /// The source's live resources before the run.
    pub of: usize,
}

impl fmt::Display for FieldCount {
    /// `date: emptied on 45 of 45`, or `title: changed on 3 of 45`, or both.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.emptied > 0 {
            parts.push(format!("emptied on {} of {}", self.emptied, self.of));
        }
        if self.changed > 0 {
            parts.push(format!("changed on {} of {}", self.changed, self.of));
        }
        write!(f, "{}: {}", self.field, parts.join(", "))
    }
}

/// What a run would change, and why it is held (no reasons: it is not).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Assessment {
    /// The source's live resources before the run.
    pub live: usize,
    /// Resources that would change in a field the source reads.
    pub changed: usize,
    /// Resources that would start counting towards withdrawal.
    pub starting_to_miss: usize,
    /// Per field, how many resources it was emptied or changed on (fields untouched left out).
    pub fields: Vec<FieldCount>,
    /// Every limit the run exceeds, in words; empty when the run may be applied.
    pub reasons: Vec<String>,
}

impl Assessment {
    /// True when the run must be held for a person to accept or reject.
    pub fn holds(&self) -> bool {
        !self.reasons.is_empty()
    }

    /// The field summary, one line per field touched (`date: emptied on 45 of 45`).
    pub fn summary(&self) -> Vec<String> {
        self.fields.iter().map(ToString::to_string).collect()
    }
}

/// Judges `set`, reconciled for `source` against `stored`, by `limits`.
pub(crate) fn assess(
    source: &str,
    stored: &[StoredResource],
    set: &ChangeSet,
    limits: &HoldLimits,
) -> Assessment {
    let live: HashMap<_, _> = stored
        .iter()
        .filter(|s| s.resource.source == source && s.resource.withdrawn_at.is_none())
        .map(|s| (&s.resource.id, s.missing_runs))
        .collect();
    let starting_to_miss = set
        .missing
        .iter()
        .chain(&set.withdrawn)
        .filter(|id| live.get(id) == Some(&0))
        .count();
    let mut assessment = Assessment {
        live: live.len(),
        changed: set.changed.len(),
        starting_to_miss,
        fields: field_counts(set, live.len()),
        reasons: Vec::new(),
    };
    assessment.reasons = reasons(&assessment, limits);
    assessment
}

/// Counts, per field the source reads, how many changed resources lost or changed it.
fn field_counts(set: &ChangeSet, of: usize) -> Vec<FieldCount> {
    let mut counts: Vec<FieldCount> = FIELDS
        .iter()
        .map(|field| FieldCount {
            field,
            emptied: 0,
            changed: 0,
            of,
        })
        .collect();
    for changed in &set.changed {
        for change in &changed.fields {
            if changed.observed.derives(change.field) {
                continue;
            }
            let Some(count) = counts.iter_mut().find(|c| c.field == change.field) else {
                continue;
            };
            if change.after.is_empty() {
                count.emptied += 1;
            } else {
                count.changed += 1;
            }
        }
    }
    counts.retain(|c| c.emptied + c.changed > 0);
    counts
}

/// Every limit `a` exceeds, in words.
fn reasons(a: &Assessment, limits: &HoldLimits) -> Vec<String> {
    let mut reasons = Vec::new();
    if a.live == 0 {
        return reasons; // a first run is a baseline: nothing to compare with
    }
    let over = |n: usize, ratio: f64| n as f64 > a.live as f64 * ratio;
    if a.changed >= MIN_HELD_CHANGES && over(a.changed, limits.max_changed_ratio) {
        reasons.push(format!(
            "{} of {} resources changed, more than max_changed_ratio = {}",
            a.changed, a.live, limits.max_changed_ratio
        ));
    }
    for count in &a.fields {
        for (n, what) in [(count.emptied, "emptied"), (count.changed, "changed")] {
            if n >= MIN_HELD_CHANGES && over(n, 0.5) {
                reasons.push(format!(
                    "{}: {what} on {n} of {}, more than half",
                    count.field, a.live
                ));
            }
        }
    }
    if over(a.starting_to_miss, limits.max_withdrawn_ratio) {
        reasons.push(format!(
            "{} of {} resources would start counting towards withdrawal, more than \
             max_withdrawn_ratio = {}",
            a.starting_to_miss, a.live, limits.max_withdrawn_ratio
        ));
    }
    reasons
}

#[cfg(test)]
mod tests;
