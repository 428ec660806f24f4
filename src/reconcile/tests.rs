//! Reconcile tables and properties, against an in-memory model of the store.

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use url::Url;

use super::*;
use crate::identity::{guid, resource_id};
use crate::model::{EntryDate, Summary};

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, day, 12, 0, 0).unwrap()
}

fn entry(title: &str, link: Option<&str>, summary: &str) -> Entry {
    let mut e = Entry::titled(title);
    e.link = link.map(|l| Url::parse(l).unwrap());
    e.summary = Summary::paragraph(summary);
    e
}

fn obs(e: Entry) -> Observed {
    Observed::new("lib", e, Category::new("Leaflets"))
}

fn resource_of(o: &Observed, now: DateTime<Utc>) -> Resource {
    Resource {
        id: resource_id(&o.identity),
        source: "lib".into(),
        identity: o.identity.clone(),
        guid: guid(&o.identity),
        title: o.entry.title.clone(),
        link: o.entry.link.clone(),
        summary: o.entry.summary.clone(),
        date: o.entry.date,
        category: o.category.clone(),
        download: o.entry.download.clone(),
        fingerprint: o.fingerprint.clone(),
        first_seen: now,
        updated: now,
        withdrawn_at: None,
    }
}

/// What `Store::apply` does, without a database.
fn apply_mem(stored: &mut Vec<StoredResource>, set: &ChangeSet, now: DateTime<Utc>) {
    for o in &set.new {
        let resource = resource_of(o, now);
        stored.push(StoredResource {
            resource,
            missing_runs: 0,
        });
    }
    let find = |stored: &mut Vec<StoredResource>, id: &ResourceId| {
        stored.iter().position(|s| &s.resource.id == id).unwrap()
    };
    let updates = set.changed.iter().chain(&set.revised);
    let updates = updates.map(|c| (&c.id, &c.observed));
    for (id, o) in updates.chain(set.reappeared.iter().map(|r| (&r.id, &r.observed))) {
        let i = find(stored, id);
        let first_seen = stored[i].resource.first_seen;
        stored[i] = StoredResource {
            resource: Resource {
                first_seen,
                ..resource_of(o, now)
            },
            missing_runs: 0,
        };
    }
    for id in &set.missing {
        let i = find(stored, id);
        stored[i].missing_runs += 1;
    }
    for id in &set.withdrawn {
        let i = find(stored, id);
        stored[i].missing_runs += 1;
        stored[i].resource.withdrawn_at = Some(now);
    }
    for id in &set.returned {
        let i = find(stored, id);
        stored[i].missing_runs = 0;
    }
}

fn run(stored: &mut Vec<StoredResource>, snapshot: &[Observed], day: u32) -> ChangeSet {
    let set = reconcile(stored, snapshot, &ReconcileOptions::default());
    apply_mem(stored, &set, at(day));
    set
}

#[test]
fn new_changed_withdrawn_reappeared_lifecycle() {
    let a = obs(entry("A", Some("https://ex.org/a"), "first"));
    let b = obs(entry("B", None, "bee"));
    let mut stored = Vec::new();

    let set = run(&mut stored, &[a.clone(), b.clone()], 1);
    assert_eq!(
        set.counts(),
        Counts {
            new: 2,
            ..Counts::default()
        }
    );

    let a2 = obs(entry("A", Some("https://ex.org/a#frag"), "second"));
    let set = run(&mut stored, std::slice::from_ref(&a2), 2);
    assert_eq!(set.changed.len(), 1);
    assert_eq!(
        set.changed[0]
            .fields
            .iter()
            .map(|f| f.field)
            .collect::<Vec<_>>(),
        ["summary"]
    );
    assert_eq!(set.changed[0].fields[0].before, "first");
    assert_eq!(set.missing, [resource_id(&b.identity)]);
    assert!(set.withdrawn.is_empty());

    let set = run(&mut stored, std::slice::from_ref(&a2), 3);
    assert_eq!(set.withdrawn, [resource_id(&b.identity)]);
    assert_eq!(
        set.counts(),
        Counts {
            withdrawn: 1,
            unchanged: 1,
            ..Counts::default()
        }
    );

    let set = run(&mut stored, std::slice::from_ref(&a2), 4);
    assert_eq!(
        set,
        ChangeSet {
            unchanged: 1,
            ..ChangeSet::default()
        }
    );

    let set = run(&mut stored, &[a2, b.clone()], 5);
    assert_eq!(set.reappeared.len(), 1);
    assert!(set.reappeared[0].fields.is_empty());
    assert_eq!(set.counts().reappeared, 1);
}

#[test]
fn a_resource_seen_again_before_withdrawal_is_reset() {
    let a = obs(entry("A", None, ""));
    let b = obs(entry("B", None, ""));
    let mut stored = Vec::new();
    run(&mut stored, &[a.clone(), b.clone()], 1);
    let set = run(&mut stored, std::slice::from_ref(&a), 2);
    assert_eq!(set.missing.len(), 1);
    let set = run(&mut stored, &[a, b.clone()], 3);
    assert_eq!(set.returned, [resource_id(&b.identity)]);
    assert_eq!(set.unchanged, 2);
    assert!(!set.has_events());
}

#[test]
fn whitespace_and_markup_edits_are_no_change() {
    let mut stored = Vec::new();
    run(&mut stored, &[obs(entry("The plan", None, "Our plan."))], 1);
    let edited = obs(entry(" The <b>plan</b> ", None, "<p>Our\n plan.</p>"));
    let set = run(&mut stored, &[edited], 2);
    assert_eq!(
        set,
        ChangeSet {
            unchanged: 1,
            ..ChangeSet::default()
        }
    );
}

#[test]
fn partial_snapshot_counts_nothing_missing() {
    let mut stored = Vec::new();
    run(
        &mut stored,
        &[obs(entry("A", None, "")), obs(entry("B", None, ""))],
        1,
    );
    let opts = ReconcileOptions {
        withdraw_after: 1,
        count_missing: false,
    };
    let set = reconcile(&stored, &[obs(entry("A", None, ""))], &opts);
    assert_eq!(
        set,
        ChangeSet {
            unchanged: 1,
            ..ChangeSet::default()
        }
    );
}

#[test]
fn withdraw_after_one_withdraws_at_once_and_zero_acts_as_one() {
    let mut stored = Vec::new();
    run(&mut stored, &[obs(entry("A", None, ""))], 1);
    for withdraw_after in [0, 1] {
        let opts = ReconcileOptions {
            withdraw_after,
            count_missing: true,
        };
        let set = reconcile(&stored, &[], &opts);
        assert_eq!(set.withdrawn.len(), 1);
    }
}

#[test]
fn duplicates_keep_the_smallest_fingerprint() {
    let x = obs(entry("Same", None, "one"));
    let y = obs(entry("Same", None, "two"));
    let want = if x.fingerprint < y.fingerprint {
        &x
    } else {
        &y
    };
    for snapshot in [vec![x.clone(), y.clone()], vec![y.clone(), x.clone()]] {
        let set = reconcile(&[], &snapshot, &ReconcileOptions::default());
        assert_eq!(set.new, std::slice::from_ref(want));
    }
}

#[test]
fn issue_13_a_category_from_rules_that_moves_is_a_revision_not_a_change() {
    let by_rule = |category: &str| {
        Observed::new(
            "lib",
            entry("Guide", Some("https://ex.org/g"), "s"),
            Category::new(category),
        )
    };
    let mut stored = Vec::new();
    run(&mut stored, &[by_rule("Leaflets")], 1);
    let set = run(&mut stored, &[by_rule("Guides")], 2);
    assert!(set.changed.is_empty() && !set.has_events(), "{set:?}");
    assert_eq!(set.revised.len(), 1);
    assert_eq!(set.revised[0].fields[0].field, "category");
    assert!(set.has_content_changes());

    let mut given = entry("Guide", Some("https://ex.org/g"), "s");
    given.category = Some("Reports".into());
    let set = run(&mut stored, &[obs(given)], 3);
    assert_eq!(set.changed.len(), 1, "a category the source gives is read");

    let mut edited = entry("Guide, second edition", Some("https://ex.org/g"), "s");
    edited.category = None;
    let set = run(
        &mut stored,
        &[Observed::new("lib", edited, Category::new("Guides"))],
        4,
    );
    let fields: Vec<&str> = set.changed[0].fields.iter().map(|f| f.field).collect();
    assert_eq!(
        fields,
        ["title", "category"],
        "a read field makes it a change"
    );
}

#[test]
fn field_changes_are_shortened_and_serialise_round_trip() {
    let mut stored = Vec::new();
    run(&mut stored, &[obs(entry("T", None, &"x".repeat(300)))], 1);
    let set = run(&mut stored, &[obs(entry("T", None, &"é".repeat(300)))], 2);
    let change = &set.changed[0].fields[0];
    assert_eq!(change.before.chars().count(), 121);
    assert!(change.after.ends_with('…'));
    let json = serde_json::to_string(&set.changed[0].fields).unwrap();
    let back: Vec<FieldChange> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, set.changed[0].fields);
    assert!(
        serde_json::from_str::<FieldChange>(r#"{"field":"x","before":"","after":""}"#).is_err()
    );
}

fn arb_observed() -> impl Strategy<Value = Observed> {
    let titles = prop::sample::select(vec![
        "Plan",
        "plan ",
        "<b>Plan</b>",
        "Guide  A",
        "Guide A",
        "Leaflet",
    ]);
    let links = prop::sample::select(vec![
        None,
        Some("https://ex.org/a"),
        Some("https://EX.org/a#x"),
        Some("https://ex.org/b?utm_source=z"),
        Some("https://ex.org/c"),
    ]);
    let summaries = prop::sample::select(vec!["", "Help.", " Help. ", "Other help."]);
    let dates = prop::sample::select(vec![None, EntryDate::month(2020, 5)]);
    let cats = prop::sample::select(vec!["Leaflets", "Other"]);
    (titles, links, summaries, dates, cats).prop_map(|(t, l, s, d, c)| {
        let mut e = entry(t, l, s);
        e.date = d;
        Observed::new("lib", e, Category::new(c))
    })
}

fn arb_snapshot() -> impl Strategy<Value = Vec<Observed>> {
    prop::collection::vec(arb_observed(), 0..8)
}

proptest! {
    #[test]
    fn reconciling_the_applied_snapshot_again_changes_nothing(
        first in arb_snapshot(),
        second in arb_snapshot(),
    ) {
        let mut stored = Vec::new();
        run(&mut stored, &first, 1);
        run(&mut stored, &second, 2);
        let opts = ReconcileOptions { count_missing: false, ..ReconcileOptions::default() };
        let again = reconcile(&stored, &second, &opts);
        let distinct: std::collections::BTreeSet<_> = second.iter().map(|o| &o.identity).collect();
        prop_assert_eq!(again, ChangeSet { unchanged: distinct.len(), ..ChangeSet::default() });
        let counted = reconcile(&stored, &second, &ReconcileOptions::default());
        prop_assert!(counted.new.is_empty() && counted.changed.is_empty());
        prop_assert!(counted.reappeared.is_empty() && counted.returned.is_empty());
    }

    #[test]
    fn entry_order_does_not_matter(
        (first, second, shuffled) in (arb_snapshot(), arb_snapshot()).prop_flat_map(|(f, s)| {
            let shuffled = Just(s.clone()).prop_shuffle();
            (Just(f), Just(s), shuffled)
        }),
    ) {
        let mut stored = Vec::new();
        run(&mut stored, &first, 1);
        let opts = ReconcileOptions::default();
        prop_assert_eq!(reconcile(&stored, &second, &opts), reconcile(&stored, &shuffled, &opts));
    }
}
