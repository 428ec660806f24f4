//! The ingest use case: run each source, guard against implausible
//! snapshots, reconcile with the store and apply the changes in one
//! transaction. A failing source is reported and changes nothing; it never
//! stops the others. Used alike by `tidings ingest` and the daemon's schedule.

use std::time::Instant;

use serde::Serialize;
use tracing::{debug, info, instrument, warn};

use crate::alerts::Alerts;
use crate::announce::Announcer;
use crate::categorize::Categorizer;
use crate::clock::SharedClock;
use crate::config::SourceConfig;
use crate::identity::resource_id;
use crate::metrics;
use crate::model::{CategorySlug, Entry, ResourceId, Snapshot};
use crate::reconcile::{self, Counts, Observed, ReconcileOptions};
use crate::source::{self, SourceError};
use crate::store::{Store, StoreError};

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
}

impl SourceReport {
    fn counted(name: &str, counts: Counts, snapshot: &Snapshot) -> Self {
        Self {
            name: name.to_owned(),
            new: counts.new,
            changed: counts.changed,
            withdrawn: counts.withdrawn,
            reappeared: counts.reappeared,
            unchanged: counts.unchanged,
            error: snapshot.partial.then(|| snapshot.warnings.join("; ")),
            warnings: snapshot.warnings.clone(),
            announced: 0,
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
        }
    }

    /// True when the run, or part of it, failed.
    pub fn is_failure(&self) -> bool {
        self.error.is_some()
    }

    /// The run as `metrics` counts it.
    pub fn metrics(&self, at: chrono::DateTime<chrono::Utc>) -> metrics::IngestOutcome<'_> {
        let outcome = match (&self.error, self.seen()) {
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
    pub fn changed_anything(&self) -> bool {
        self.new + self.changed + self.withdrawn + self.reappeared > 0
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
    pub fn any_failed(&self) -> bool {
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
}

/// Run `sources` one after another; each failure is reported, never fatal to the rest.
pub async fn run_all(ctx: Context<'_>, sources: &[SourceConfig]) -> IngestReport {
    let mut reports = Vec::with_capacity(sources.len());
    for source in sources {
        reports.push(run_source(ctx, source).await);
    }
    IngestReport { sources: reports }
}

/// Run one source once and report what changed.
#[instrument(skip_all, fields(source = %source.name))]
pub async fn run_source(ctx: Context<'_>, source: &SourceConfig) -> SourceReport {
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
        if let Some(alerts) = ctx.alerts {
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
    let output = source::read(source, ctx.contact, cached, ctx.clock.clone()).await?;
    let mut snapshot = output.snapshot;
    phase.mark("fetch_parse");
    for warning in &snapshot.warnings {
        warn!(warning = %warning, "entry skipped");
    }
    check_plausible(ctx.store, source, &snapshot).await?;
    // The entries move into the observations; the report needs only the
    // snapshot's warnings and whether it was partial.
    let entries = std::mem::take(&mut snapshot.entries);
    let observed = observe(ctx.categorizer, &snapshot.source, entries);
    phase.mark("observe");
    let options = ReconcileOptions {
        withdraw_after: source.withdraw_after,
        count_missing: !snapshot.partial,
    };
    let applied = apply_with_retry(ctx, &source.name, observed, &options, &mut phase).await?;
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
    Ok(report)
}

/// What an applied run leaves for the announcer.
struct Applied {
    counts: Counts,
    /// Resources first seen in this run, with their category.
    new: Vec<(ResourceId, CategorySlug)>,
    /// True when this was the source's first successful run: its baseline.
    baseline: bool,
}

/// Announces the run's new resources in `announce = true` categories, except
/// on the source's first successful run (DESIGN.md: a baseline announces nothing).
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
async fn check_plausible(
    store: &Store,
    source: &SourceConfig,
    snapshot: &Snapshot,
) -> Result<(), SourceError> {
    let seen = snapshot.entries.len();
    if seen == 0 {
        return Err(SourceError::Implausible(
            "the source listed no entries".to_owned(),
        ));
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
            "{seen} entries, fewer than {:.0}% of the {last} of the last good run",
            source.min_ratio * 100.0
        )));
    }
    Ok(())
}

/// Give every entry of `source` its category, identity and fingerprint.
fn observe(categorizer: &Categorizer, source: &str, entries: Vec<Entry>) -> Vec<Observed> {
    entries
        .into_iter()
        .map(|entry| {
            let category = categorizer.categorize(&entry);
            Observed::new(source, entry, category)
        })
        .collect()
}

/// Load, reconcile and apply; when a concurrent run of the same source wins
/// the race (the database refuses the stale write), reload and try again.
async fn apply_with_retry(
    ctx: Context<'_>,
    source: &str,
    observed: Vec<Observed>,
    options: &ReconcileOptions,
    phase: &mut Phase,
) -> Result<Applied, StoreError> {
    let identities: Vec<String> = observed.iter().map(|o| o.identity.clone()).collect();
    let mut attempt = 0;
    loop {
        let state = ctx.store.stored_for_reconcile(source, &identities).await?;
        phase.mark("load");
        let changes = reconcile::reconcile(&state.stored, &observed, options);
        let applied = Applied {
            counts: changes.counts(),
            new: changes
                .new
                .iter()
                .map(|o| (resource_id(&o.identity), o.category.slug.clone()))
                .collect(),
            // run_seq moves only on a successful apply: 0 means none before this one.
            baseline: state.run_seq == 0,
        };
        phase.mark("reconcile");
        if ctx.dry_run {
            return Ok(applied);
        }
        match ctx
            .store
            .apply(
                source,
                &changes,
                observed.len(),
                state.run_seq,
                ctx.clock.as_ref(),
            )
            .await
        {
            Err(StoreError::Conflict { .. }) if attempt < CONFLICT_RETRIES => attempt += 1,
            Err(e) => return Err(e),
            Ok(_) => {
                phase.mark("apply");
                return Ok(applied);
            }
        }
    }
}

/// Times the steps of one run, logged at debug level as `ingest phase`
/// events (`benches/reconcile_scale.sh` reads them).
struct Phase(Instant);

impl Phase {
    fn start() -> Self {
        Self(Instant::now())
    }

    /// Log the time since the last mark as `phase`, and start the next one.
    fn mark(&mut self, phase: &'static str) {
        let elapsed_ms = self.0.elapsed().as_millis() as u64;
        debug!(phase, elapsed_ms, "ingest phase");
        self.0 = Instant::now();
    }
}
