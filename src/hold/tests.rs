//! The hold decision on built change sets: the examples, then properties.

use chrono::{TimeZone, Utc};
use proptest::prelude::*;

use super::*;
use crate::model::{Category, Entry, Resource, ResourceId, Summary};
use crate::reconcile::{Changed, FieldChange, Observed};

fn stored(n: usize) -> Vec<StoredResource> {
    let at = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    (0..n)
        .map(|i| StoredResource {
            resource: Resource {
                id: ResourceId(format!("{i:016x}")),
                source: "lib".into(),
                identity: format!("lib:{i}"),
                guid: format!("urn:{i}"),
                title: format!("T{i}"),
                link: None,
                summary: Summary::default(),
                date: None,
                category: Category::new("Leaflets"),
                download: None,
                fingerprint: String::new(),
                first_seen: at,
                updated: at,
                withdrawn_at: None,
            },
            missing_runs: 0,
        })
        .collect()
}

/// Resource `i` changed in `field`, to `after`.
fn changed(i: usize, fields: &[(&'static str, &str)]) -> Changed {
    let mut entry = Entry::titled(format!("T{i}"));
    entry.category = Some("Leaflets".into());
    Changed {
        id: ResourceId(format!("{i:016x}")),
        observed: Observed::new("lib", entry, Category::new("Leaflets")),
        fields: fields
            .iter()
            .map(|(field, after)| FieldChange {
                field,
                before: "before".into(),
                after: (*after).into(),
            })
            .collect(),
    }
}

fn ids(range: std::ops::Range<usize>) -> Vec<ResourceId> {
    range.map(|i| ResourceId(format!("{i:016x}"))).collect()
}

#[test]
fn a_date_emptied_everywhere_is_held_with_its_summary() {
    let set = ChangeSet {
        changed: (0..45).map(|i| changed(i, &[("date", "")])).collect(),
        ..ChangeSet::default()
    };
    let a = assess("lib", &stored(45), &set, &HoldLimits::default());
    assert!(a.holds());
    assert_eq!(a.summary(), ["date: emptied on 45 of 45"]);
    assert!(
        a.reasons
            .iter()
            .any(|r| r.contains("45 of 45 resources changed")),
        "{:?}",
        a.reasons
    );
    assert!(
        a.reasons
            .iter()
            .any(|r| r.starts_with("date: emptied on 45 of 45"))
    );
}

#[test]
fn few_changes_or_a_first_run_are_never_held() {
    let four = ChangeSet {
        changed: (0..4).map(|i| changed(i, &[("title", "new")])).collect(),
        ..ChangeSet::default()
    };
    assert!(!assess("lib", &stored(6), &four, &HoldLimits::default()).holds());
    let new_only = ChangeSet::default();
    assert!(!assess("lib", &[], &new_only, &HoldLimits::default()).holds());
}

#[test]
fn the_changed_ratio_and_the_field_rule_hold_separately() {
    // 6 of 18 (33%) retitled: over 0.3, but the title changed on no more than half.
    let set = ChangeSet {
        changed: (0..6).map(|i| changed(i, &[("title", "x")])).collect(),
        ..ChangeSet::default()
    };
    let a = assess("lib", &stored(18), &set, &HoldLimits::default());
    assert_eq!(a.reasons.len(), 1, "{:?}", a.reasons);
    let loose = HoldLimits {
        max_changed_ratio: 0.5,
        ..HoldLimits::default()
    };
    assert!(!assess("lib", &stored(18), &set, &loose).holds());
    // 6 of 10 lose their summary: over half, even with a loose changed ratio.
    let set = ChangeSet {
        changed: (0..6).map(|i| changed(i, &[("summary", "")])).collect(),
        ..ChangeSet::default()
    };
    let loose = HoldLimits {
        max_changed_ratio: 0.9,
        ..HoldLimits::default()
    };
    let a = assess("lib", &stored(10), &set, &loose);
    assert_eq!(a.reasons, ["summary: emptied on 6 of 10, more than half"]);
}

#[test]
fn only_resources_that_start_to_miss_count_towards_the_withdrawn_limit() {
    let mut store = stored(10);
    for s in &mut store[..3] {
        s.missing_runs = 1; // missed by an earlier run already
    }
    let set = ChangeSet {
        withdrawn: ids(0..3),
        missing: ids(3..6),
        ..ChangeSet::default()
    };
    let a = assess("lib", &store, &set, &HoldLimits::default());
    assert_eq!(a.starting_to_miss, 3);
    assert!(!a.holds(), "3 of 10 is not more than 0.3");
    let set = ChangeSet {
        missing: ids(3..7),
        ..ChangeSet::default()
    };
    assert!(assess("lib", &store, &set, &HoldLimits::default()).holds());
}

#[test]
fn other_sources_and_withdrawn_resources_are_not_counted_as_live() {
    let mut store = stored(10);
    store[0].resource.source = "other".into();
    store[1].resource.withdrawn_at = Some(store[1].resource.first_seen);
    let a = assess("lib", &store, &ChangeSet::default(), &HoldLimits::default());
    assert_eq!(a.live, 8);
}

proptest! {
    /// The decision is exactly the README's three rules.
    #[test]
    fn held_exactly_when_a_rule_says_so(
        live in 0usize..60,
        emptied in 0usize..60,
        retitled in 0usize..60,
        missing in 0usize..60,
        changed_ratio in 0.05f64..1.0,
        withdrawn_ratio in 0.05f64..1.0,
    ) {
        let emptied = emptied.min(live);
        let retitled = retitled.min(live - emptied);
        let missing = missing.min(live - emptied - retitled);
        let mut changes: Vec<Changed> = (0..emptied).map(|i| changed(i, &[("date", "")])).collect();
        changes.extend((emptied..emptied + retitled).map(|i| changed(i, &[("title", "x")])));
        let from = emptied + retitled;
        let set = ChangeSet { changed: changes, missing: ids(from..from + missing), ..ChangeSet::default() };
        let limits = HoldLimits { max_changed_ratio: changed_ratio, max_withdrawn_ratio: withdrawn_ratio };
        let a = assess("lib", &stored(live), &set, &limits);
        let n = emptied + retitled;
        let l = live as f64;
        let expected = live > 0 && (
            (n >= 5 && n as f64 > l * changed_ratio)
            || (emptied >= 5 && 2 * emptied > live)
            || (retitled >= 5 && 2 * retitled > live)
            || missing as f64 > l * withdrawn_ratio
        );
        prop_assert_eq!(a.holds(), expected, "{:?}", a);
    }

    /// A run that changes nothing and misses nothing is never held.
    #[test]
    fn an_unchanged_run_is_never_held(live in 0usize..60) {
        let set = ChangeSet { unchanged: live, ..ChangeSet::default() };
        prop_assert!(!assess("lib", &stored(live), &set, &HoldLimits::default()).holds());
    }
}
