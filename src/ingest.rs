//! The ingest use case: run each source, guard against implausible
//! snapshots, reconcile with the store, hold a run whose changes are
//! implausible (`hold`), and apply the rest in one transaction. A failing
//! source is reported and changes nothing; it never stops the others. Used
//! alike by `tidings ingest` and the daemon's schedule; `runs accept` applies
//! a held run through the same `reconcile_and_apply`.

use std::collections::HashMap;
use std::time::Instant;

use serde::Serialize;
use tracing::{debug, info, instrument, warn};

use crate::alerts::Alerts;
use crate::announce::Announcer;
use crate::categorize::Categorizer;
use crate::channels::{self, RunEvent};
use crate::clock::SharedClock;
use crate::config::{ChannelEvent, Expect, SourceConfig};
use crate::hold::{self, Assessment, HoldLimits};
use crate::identity::resource_id;
use crate::metrics;
use crate::model::{Category, CategorySlug, Entry, ResourceId, Snapshot};
use crate::reconcile::{self, ChangeSet, Counts, Observed, ReconcileOptions};
use crate::source::{self, SourceError};
use crate::store::{NewHeldRun, RunRecord, Store, StoreError};

/// How often a run retries after losing a race with a concurrent run of the same source.
const CONFLICT_RETRIES: usize = 3;

/// What one source's run did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SourceReport {
    /// The source's name.
    pub name: String,
    /// New resources.
    pub new: usize,
    /// Changed resources.
    pub changed: usize,
    /// Resources withdrawn in this run.
    pub withdrawn: usize,
    /// Withdrawn resources seen again.
    pub reappeared: usize,
    /// Resources seen with no change.
    pub unchanged: usize,
    /// Why the run failed, or which parts of it failed; `None` when all went well.
    pub error: Option<String>,
    /// Entries or files skipped without failing the run.
    pub warnings: Vec<String>,
    /// New resources announced automatically (categories with `announce = true`).
    pub announced: usize,
    /// Resources revised without a change event (a category from keyword rules moved).
    pub revised: usize,
    /// True when the run was held: nothing was applied.
    pub held: bool,
    /// The held run's id, for `tidings runs accept` (none in a dry run).
    pub held_run: Option<i64>,
    /// The field summary of the run's changes (`date: emptied on 45 of 45`), when held.
    pub summary: Vec<String>,
}

impl SourceReport {
    fn counted(name: &str, counts: Counts, snapshot: &Snapshot) -> Self {
        Self {
            new: counts.new,
            changed: counts.changed,
            withdrawn: counts.withdrawn,
            reappeared: counts.reappeared,
            unchanged: counts.unchanged,
            revised: counts.revised,
            error: snapshot.partial.then(|| snapshot.warnings.join("; ")),
            warnings: snapshot.warnings.clone(),
            ..Self::failed(name, String::new())
        }
    }

    fn failed(name: &str, error: String) -> Self {
        Self {
            name: name.to_owned(),
            new: 0,
            changed: 0,
            withdrawn: 0,
            reappeared: 0,
            unchanged: 0,
            error: Some(error),
            warnings: Vec::new(),
            announced: 0,
            revised: 0,
            held: false,
            held_run: None,
            summary: Vec::new(),
        }
    }

    /// A run held as `held_run` (`None` in a dry run): nothing applied, and why.
    fn held(
        name: &str,
        held_run: Option<i64>,
        assessment: &Assessment,
        snapshot: &Snapshot,
    ) -> Self {
        let run = held_run
            .map(|id| format!(" as run {id}"))
            .unwrap_or_default();
        let error = format!("held{run}: {}", assessment.reasons.join("; "));
        Self {
            warnings: snapshot.warnings.clone(),
            held: true,
            held_run,
            summary: assessment.summary(),
            ..Self::failed(name, error)
        }
    }

    /// True when the run, or part of it, failed.
    pub(crate) fn is_failure(&self) -> bool {
        self.error.is_some()
    }

    /// The run as `metrics` counts it.
    pub fn metrics(&self, at: chrono::DateTime<chrono::Utc>) -> metrics::IngestOutcome<'_> {
        let outcome = match (&self.error, self.seen()) {
            _ if self.held => "held",
            (None, _) => "ok",
            (Some(_), 0) => "failed",
            (Some(_), _) => "partial",
        };
        metrics::IngestOutcome {
            source: &self.name,
            outcome,
            entries: self.seen(),
            events: [
                ("new", self.new),
                ("changed", self.changed),
                ("withdrawn", self.withdrawn),
                ("reappeared", self.reappeared),
            ],
            at,
        }
    }

    /// Entries the run saw.
    fn seen(&self) -> usize {
        self.new + self.changed + self.reappeared + self.unchanged
    }

    /// True when the run changed what feeds show.
    pub(crate) fn changed_anything(&self) -> bool {
        self.new + self.changed + self.withdrawn + self.reappeared + self.revised > 0
    }
}

/// The report of `tidings ingest`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct IngestReport {
    /// One report per source run, in config order.
    pub sources: Vec<SourceReport>,
}

impl IngestReport {
    /// True when any source failed.
    pub(crate) fn any_failed(&self) -> bool {
        self.sources.iter().any(SourceReport::is_failure)
    }
}

/// Everything a run needs besides the source itself.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Where resources live.
    pub store: &'a Store,
    /// Assigns categories to entries that have none.
    pub categorizer: &'a Categorizer,
    /// The current time.
    pub clock: &'a SharedClock,
    /// Contact URL for the scraper's User-Agent (`site.contact`).
    pub contact: &'a str,
    /// Reconcile and count, but write nothing.
    pub dry_run: bool,
    /// Announces new resources of categories with `announce = true`; `None` announces nothing.
    pub announcer: Option<&'a Announcer>,
    /// Tells the admins when a source keeps failing and when it recovers.
    pub alerts: Option<&'a Alerts>,
    /// The config whose `[[channels]]` get the run's posts; `None` queues none.
    pub channels: Option<&'a crate::config::Config>,
}

/// Run `sources` one after another; each failure is reported, never fatal to the rest.
pub(crate) async fn run_all(ctx: Context<'_>, sources: &[SourceConfig]) -> IngestReport {
    let mut reports = Vec::with_capacity(sources.len());
    for source in sources {
        reports.push(run_source(ctx, source).await);
    }
    IngestReport { sources: reports }
}

/// Run one source once and report what changed.
#[instrument(skip_all, fields(source = %source.name))]
pub(crate) async fn run_source(ctx: Context<'_>, source: &SourceConfig) -> SourceReport {
    let started = Instant::now();
    let report = match fetch_and_apply(ctx, source).await {
        Ok(report) => report,
        Err(error) => {
            let message = error.to_string();
            warn!(error = %message, "source failed; nothing changed");
            if !ctx.dry_run
                && let Err(e) = ctx
                    .store
                    .record_failed_run(&source.name, ctx.clock.now(), &message)
                    .await
            {
                warn!(error = %e, "could not record the failed run");
            }
            SourceReport::failed(&source.name, message)
        }
    };
    if !ctx.dry_run {
        metrics::record_ingest(&report.metrics(ctx.clock.now()));
        // A held run is neither a failure nor a success of the source: its
        // own alert was raised when it was held.
        if let Some(alerts) = ctx.alerts.filter(|_| !report.held) {
            let error = report.error.as_deref();
            alerts
                .after_source_run(&source.name, error, ctx.clock.now())
                .await;
        }
    }
    info!(
        new = report.new,
        changed = report.changed,
        withdrawn = report.withdrawn,
        reappeared = report.reappeared,
        unchanged = report.unchanged,
        revised = report.revised,
        held = report.held,
        failed = report.is_failure(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "ingest run finished"
    );
    report
}

/// Why a run changed nothing.
#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

async fn fetch_and_apply(
    ctx: Context<'_>,
    source: &SourceConfig,
) -> Result<SourceReport, RunError> {
    let mut phase = Phase::start();
    let cached = ctx.store.cached_pages(&source.name).await?;
    let output = source::read_within(source, ctx.contact, cached, ctx.clock.clone()).await?;
    let mut snapshot = output.snapshot;
    phase.mark("fetch_parse");
    check_plausible(ctx.store, source, &snapshot).await?;
    check_expected(&source.expect, &snapshot.entries).map_err(SourceError::Implausible)?;
    // The entries move into the observations; the report needs only the
    // snapshot's warnings and whether it was partial.
    let entries = std::mem::take(&mut snapshot.entries);
    let observed = observe(ctx.categorizer, &snapshot.source, entries);
    let observed = keep_first(observed, &mut snapshot.warnings);
    for warning in &snapshot.warnings {
        warn!(warning = %warning, "part of the source skipped");
    }
    phase.mark("observe");
    let plan = Plan {
        source: &source.name,
        options: ReconcileOptions {
            withdraw_after: source.withdraw_after,
            count_missing: !snapshot.partial,
        },
        hold: Some(source.hold),
        silent: false,
        record: RunRecord {
            outcome: if snapshot.partial { "partial" } else { "ok" },
            held: None,
        },
    };
    let decision = reconcile_and_apply(
        ctx.store,
        ctx.clock,
        ctx.dry_run,
        &plan,
        &observed,
        &mut phase,
    );
    let applied = match decision.await? {
        Decision::Applied(applied) => applied,
        Decision::Held { assessment, counts } => {
            let held = Held {
                snapshot: &snapshot,
                observed: &observed,
                assessment: &assessment,
                counts,
            };
            return Ok(hold_run(ctx, source, &held).await?);
        }
    };
    if let Some(pages) = output.pages
        && !ctx.dry_run
    {
        ctx.store
            .save_pages(&source.name, &pages, ctx.clock.now())
            .await?;
        phase.mark("save_pages");
    }
    let mut report = SourceReport::counted(&source.name, applied.counts, &snapshot);
    report.announced = announce_new(ctx, &applied).await;
    queue_channel_posts(ctx, &applied).await;
    Ok(report)
}

/// A run about to be held, with what it saw.
struct Held<'a> {
    snapshot: &'a Snapshot,
    observed: &'a [Observed],
    assessment: &'a Assessment,
    counts: Counts,
}

/// Stores a held run (its snapshot and field summary; nothing else changes)
/// and tells the admins, once while runs of the source stay held.
async fn hold_run(
    ctx: Context<'_>,
    source: &SourceConfig,
    held: &Held<'_>,
) -> Result<SourceReport, StoreError> {
    let reasons = held.assessment.reasons.join("; ");
    let summary = held.assessment.summary();
    warn!(reasons = %reasons, summary = ?summary, "run held: nothing was changed");
    if ctx.dry_run {
        return Ok(SourceReport::held(
            &source.name,
            None,
            held.assessment,
            held.snapshot,
        ));
    }
    let entries: Vec<Entry> = held.observed.iter().map(|o| o.entry.clone()).collect();
    let now = ctx.clock.now();
    let run = NewHeldRun {
        source: &source.name,
        entries: &entries,
        partial: held.snapshot.partial,
        counts: held.counts,
        reason: &format!("held: {reasons}"),
        summary: &summary,
    };
    let run_id = ctx.store.hold_run(&run, now).await?;
    if let Some(alerts) = ctx.alerts {
        alerts
            .after_held_run(&source.name, run_id, &reasons, &summary, now)
            .await;
    }
    Ok(SourceReport::held(
        &source.name,
        Some(run_id),
        held.assessment,
        held.snapshot,
    ))
}

/// What an applied run leaves for the announcer.
pub(crate) struct Applied {
    /// What the run counted.
    pub counts: Counts,
    /// Resources first seen in this run, with their category.
    new: Vec<(ResourceId, CategorySlug)>,
    /// True when this was the source's first successful run: its baseline.
    baseline: bool,
    /// The run's new, changed and withdrawn resources, for the channels.
    events: Vec<RunEvent>,
    /// The `source_runs` row written (none on a dry run).
    run_id: Option<i64>,
}

/// Queues the run's posts to `[[channels]]`, except on a baseline run.
async fn queue_channel_posts(ctx: Context<'_>, applied: &Applied) -> usize {
    let (Some(config), Some(run_id)) = (ctx.channels, applied.run_id) else {
        return 0;
    };
    if ctx.dry_run || applied.baseline {
        return 0;
    }
    channels::queue_run(ctx.store, config, run_id, &applied.events, ctx.clock.now()).await
}

/// The channel events of a change set, in its order: new, changed, withdrawn.
fn run_events(changes: &ChangeSet) -> Vec<RunEvent> {
    let new = changes.new.iter().map(|o| RunEvent {
        event: ChannelEvent::New,
        resource: resource_id(&o.identity),
        changes: Vec::new(),
    });
    let changed = changes.changed.iter().map(|c| RunEvent {
        event: ChannelEvent::Changed,
        resource: c.id.clone(),
        changes: c.fields.clone(),
    });
    let withdrawn = changes.withdrawn.iter().map(|id| RunEvent {
        event: ChannelEvent::Withdrawn,
        resource: id.clone(),
        changes: Vec::new(),
    });
    new.chain(changed).chain(withdrawn).collect()
}

/// Announces the run's new resources in `announce = true` categories, except
/// on the source's first successful run (a baseline announces nothing).
async fn announce_new(ctx: Context<'_>, applied: &Applied) -> usize {
    let Some(announcer) = ctx.announcer else {
        return 0;
    };
    if ctx.dry_run || applied.new.is_empty() {
        return 0;
    }
    if applied.baseline {
        info!(
            new = applied.new.len(),
            "first successful run of this source: a baseline, nothing announced"
        );
        return 0;
    }
    announcer.announce_new(&applied.new, ctx.clock.now()).await
}

/// Refuse an empty snapshot, or one far shorter than the last good run's.
pub(crate) async fn check_plausible(
    store: &Store,
    source: &SourceConfig,
    snapshot: &Snapshot,
) -> Result<(), SourceError> {
    let seen = snapshot.entries.len();
    if seen == 0 {
        return Err(SourceError::Implausible(format!(
            "{} listed no entries",
            source::location(source)
        )));
    }
    if snapshot.partial {
        return Ok(());
    }
    let last_good = store
        .last_good_run(&source.name)
        .await
        .map_err(|e| SourceError::Implausible(format!("could not read the last good run: {e}")))?;
    if let Some((last, _)) = last_good
        && (seen as f64) < (last as f64) * source.min_ratio
    {
        return Err(SourceError::Implausible(format!(
            "{} listed {seen} entries, fewer than {:.0}% of the {last} of the last good run",
            source::location(source),
            source.min_ratio * 100.0
        )));
    }
    Ok(())
}

/// Checks `sources[].expect` against a snapshot's entries: the entry count
/// within bounds, and every required field present on every entry.
pub(crate) fn check_expected(expect: &Expect, entries: &[Entry]) -> Result<(), String> {
    let n = entries.len();
    if let Some(min) = expect.min_entries
        && n < min
    {
        return Err(format!("expect.min_entries: {n} entries, fewer than {min}"));
    }
    if let Some(max) = expect.max_entries
        && n > max
    {
        return Err(format!("expect.max_entries: {n} entries, more than {max}"));
    }
    for field in &expect.required {
        let missing: Vec<usize> = (entries.iter().enumerate())
            .filter(|(_, e)| !has_field(e, field))
            .map(|(i, _)| i + 1)
            .collect();
        if let Some(first) = missing.first() {
            return Err(format!(
                "expect.required: {field} is empty on {} of {n} entries (the first is entry {first}, {:?})",
                missing.len(),
                entries[first - 1].title
            ));
        }
    }
    Ok(())
}

/// True when the source gave `entry` a value for `field` (one of `reconcile::FIELDS`).
fn has_field(entry: &Entry, field: &str) -> bool {
    match field {
        "title" => !entry.title.trim().is_empty(),
        "summary" => !entry.summary.is_empty(),
        "date" => entry.date.is_some(),
        "category" => entry.category.is_some(),
        "link" => entry.link.is_some(),
        "download" => entry.download.is_some(),
        _ => true,
    }
}

/// The first observation of each identity, in snapshot order; each later one
/// is dropped with a warning naming both positions (1-based).
fn keep_first(observed: Vec<Observed>, warnings: &mut Vec<String>) -> Vec<Observed> {
    let mut first: HashMap<String, usize> = HashMap::with_capacity(observed.len());
    let mut kept = Vec::with_capacity(observed.len());
    for (i, obs) in observed.into_iter().enumerate() {
        match first.get(&obs.identity) {
            Some(at) => warnings.push(format!(
                "entry {} repeats entry {at} ({:?}, same identity): the first is kept",
                i + 1,
                obs.entry.title
            )),
            None => {
                first.insert(obs.identity.clone(), i + 1);
                kept.push(obs);
            }
        }
    }
    kept
}

/// Give every entry of `source` its category, identity and fingerprint.
pub(crate) fn observe(
    categorizer: &Categorizer,
    source: &str,
    entries: Vec<Entry>,
) -> Vec<Observed> {
    entries
        .into_iter()
        .map(|entry| {
            let category = categorizer.categorize(&entry);
            Observed::new(source, entry, category)
        })
        .collect()
}

/// `observed` with the categories the comms team chose (`overrides`, by
/// resource id) in place of the source's or the rules', so a re-filed
/// resource stays where it was put and its category never reads as a
/// change; `None` when no entry has one.
fn with_overrides(
    observed: &[Observed],
    overrides: &[(ResourceId, Category)],
) -> Option<Vec<Observed>> {
    if overrides.is_empty() {
        return None;
    }
    let chosen: HashMap<&ResourceId, &Category> = overrides.iter().map(|(id, c)| (id, c)).collect();
    let moved = observed
        .iter()
        .map(|o| match chosen.get(&resource_id(&o.identity)) {
            Some(category) if **category != o.category => Observed {
                fingerprint: crate::identity::fingerprint(&o.entry, category),
                category: (*category).clone(),
                ..o.clone()
            },
            _ => o.clone(),
        })
        .collect();
    Some(moved)
}

/// How one snapshot is to be reconciled and applied.
pub(crate) struct Plan<'a> {
    /// The source's name.
    pub source: &'a str,
    /// How missing entries count.
    pub options: ReconcileOptions,
    /// Hold the run when its changes exceed these; `None` applies whatever it changes.
    pub hold: Option<HoldLimits>,
    /// Record changes as revisions without change events (`runs accept --silent`).
    pub silent: bool,
    /// How the run is recorded.
    pub record: RunRecord,
}

/// What became of a reconciled snapshot.
pub(crate) enum Decision {
    /// Applied (or, in a dry run, counted).
    Applied(Applied),
    /// Too implausible to apply: nothing was written.
    Held {
        /// Why, with the field summary.
        assessment: Assessment,
        /// What applying it would have counted.
        counts: Counts,
    },
}

/// Load, reconcile, judge and apply; when a concurrent run of the same source
/// wins the race (the database refuses the stale write), reload and try again.
pub(crate) async fn reconcile_and_apply(
    store: &Store,
    clock: &SharedClock,
    dry_run: bool,
    plan: &Plan<'_>,
    observed: &[Observed],
    phase: &mut Phase,
) -> Result<Decision, StoreError> {
    let identities: Vec<String> = observed.iter().map(|o| o.identity.clone()).collect();
    let mut attempt = 0;
    loop {
        let state = store.stored_for_reconcile(plan.source, &identities).await?;
        // After the state: a re-file committing in between moves run_seq,
        // so this attempt conflicts and the next one sees the override.
        let overrides = store.category_overrides(plan.source).await?;
        let refiled = with_overrides(observed, &overrides);
        let observed = refiled.as_deref().unwrap_or(observed);
        phase.mark("load");
        let mut changes = reconcile::reconcile(&state.stored, observed, &plan.options);
        if let Some(limits) = &plan.hold {
            let assessment = hold::assess(plan.source, &state.stored, &changes, limits);
            if assessment.holds() {
                let counts = changes.counts();
                return Ok(Decision::Held { assessment, counts });
            }
        }
        if plan.silent {
            changes.silence();
        }
        let applied = Applied {
            counts: changes.counts(),
            new: changes
                .new
                .iter()
                .map(|o| (resource_id(&o.identity), o.category.slug.clone()))
                .collect(),
            // run_seq moves only on a successful apply: 0 means none before this one.
            baseline: state.run_seq == 0,
            events: run_events(&changes),
            run_id: None,
        };
        phase.mark("reconcile");
        if dry_run {
            return Ok(Decision::Applied(applied));
        }
        let result = store
            .apply_run(
                plan.source,
                &changes,
                observed.len(),
                state.run_seq,
                clock.as_ref(),
                plan.record,
            )
            .await;
        match result {
            Err(StoreError::Conflict { .. }) if attempt < CONFLICT_RETRIES => attempt += 1,
            Err(e) => return Err(e),
            Ok(run) => {
                phase.mark("apply");
                let applied = Applied {
                    run_id: Some(run.run_id),
                    ..applied
                };
                return Ok(Decision::Applied(applied));
            }
        }
    }
}

/// Times the steps of one run, logged at debug level as `ingest phase`
/// events (`benches/reconcile_scale.sh` reads them).
pub(crate) struct Phase(Instant);

impl Phase {
    /// Starts timing the first step.
    pub(crate) fn start() -> Self {
        Self(Instant::now())
    }

    /// Log the time since the last mark as `phase`, and start the next one.
    fn mark(&mut self, phase: &'static str) {
        let elapsed_ms = self.0.elapsed().as_millis() as u64;
        debug!(phase, elapsed_ms, "ingest phase");
        self.0 = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Category;

    fn snapshot() -> Snapshot {
        Snapshot {
            source: "unit-held".into(),
            entries: Vec::new(),
            warnings: Vec::new(),
            partial: false,
        }
    }

    #[test]
    fn issue_13_a_held_run_counts_as_held_in_metrics_and_not_as_a_success() {
        let assessment = Assessment {
            reasons: vec!["45 of 45 resources changed".into()],
            ..Assessment::default()
        };
        let report = SourceReport::held("unit-held", Some(7), &assessment, &snapshot());
        assert!(report.is_failure() && report.held);
        assert!(
            report
                .error
                .as_deref()
                .unwrap()
                .starts_with("held as run 7: ")
        );
        metrics::record_ingest(&report.metrics(chrono::DateTime::UNIX_EPOCH));
        let text = metrics::render();
        assert!(
            text.contains(r#"tidings_ingest_runs_total{source="unit-held",outcome="held"} 1"#),
            "{text}"
        );
        assert!(
            !text.contains(r#"tidings_source_last_success_timestamp_seconds{source="unit-held"}"#)
        );
    }

    #[test]
    fn issue_13_the_first_of_two_entries_with_one_identity_wins() {
        let obs = |title: &str, link: &str| {
            let mut e = Entry::titled(title);
            e.link = Some(url::Url::parse(link).unwrap());
            Observed::new("lib", e, Category::other())
        };
        let mut warnings = Vec::new();
        let kept = keep_first(
            vec![
                obs("First", "https://ex.org/a"),
                obs("Other", "https://ex.org/b"),
                obs("Second", "https://ex.org/a#again"),
            ],
            &mut warnings,
        );
        let titles: Vec<&str> = kept.iter().map(|o| o.entry.title.as_str()).collect();
        assert_eq!(titles, ["First", "Other"]);
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].starts_with("entry 3 repeats entry 1"),
            "{warnings:?}"
        );
    }

    #[test]
    fn issue_13_expect_names_the_bound_or_the_first_entry_without_a_field() {
        let mut dated = Entry::titled("Dated");
        dated.date = crate::model::EntryDate::month(2020, 5);
        let entries = vec![dated, Entry::titled("Undated")];
        let expect = |min, max, required: &[&'static str]| Expect {
            min_entries: min,
            max_entries: max,
            required: required.to_vec(),
        };
        assert_eq!(
            check_expected(&expect(Some(2), Some(2), &["title"]), &entries),
            Ok(())
        );
        let few = check_expected(&expect(Some(3), None, &[]), &entries).unwrap_err();
        assert_eq!(few, "expect.min_entries: 2 entries, fewer than 3");
        let many = check_expected(&expect(None, Some(1), &[]), &entries).unwrap_err();
        assert_eq!(many, "expect.max_entries: 2 entries, more than 1");
        let undated = check_expected(&expect(None, None, &["date"]), &entries).unwrap_err();
        assert_eq!(
            undated,
            "expect.required: date is empty on 1 of 2 entries (the first is entry 2, \"Undated\")"
        );
    }
}
