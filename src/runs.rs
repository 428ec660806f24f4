//! Deciding on held runs: `runs accept` reconciles a held snapshot with the
//! store as it is now and applies it (silently: revisions without change
//! events), `runs reject` discards it. Holding itself is `ingest`'s, and the
//! rule that decides it is `hold`'s. Nothing else ever applies a held run.

use serde::Serialize;
use tracing::info;

use crate::alerts::Alerts;
use crate::categorize::Categorizer;
use crate::clock::SharedClock;
use crate::config::SourceConfig;
use crate::ingest::{self, Decision, Phase, Plan};
use crate::reconcile::{Counts, ReconcileOptions};
use crate::store::{RunRecord, Store, StoreError};

/// What accepting a held run applied.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Accepted {
    /// The run.
    pub run: i64,
    /// Its source.
    pub source: String,
    /// True when its changes were recorded without change events.
    pub silent: bool,
    /// What it applied.
    pub counts: Counts,
}

/// Why a held run could not be accepted or rejected.
#[derive(Debug, thiserror::Error)]
pub enum RunsError {
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The run's source is no longer configured.
    #[error("run {run}'s source {source_name} is not in the config, so it cannot be applied")]
    UnknownSource {
        /// The run.
        run: i64,
        /// The source it belongs to.
        source_name: String,
    },
    /// A later run of the source was applied: accepting this one would undo it.
    #[error(
        "run {later} of source {source_name} was applied after run {run}; accepting run {run} \
         would undo it, so reject it instead"
    )]
    Superseded {
        /// The held run.
        run: i64,
        /// The later, applied run.
        later: i64,
        /// Their source.
        source_name: String,
    },
}

/// Applies held run `run_id` as the store stands now; with `silent`, changed
/// resources get a revision but no change event and keep their `updated`.
pub async fn accept(
    store: &Store,
    sources: &[SourceConfig],
    categorizer: &Categorizer,
    clock: &SharedClock,
    alerts: Option<&Alerts>,
    (run_id, silent): (i64, bool),
) -> Result<Accepted, RunsError> {
    let held = store.held_run(run_id).await?;
    let source = sources
        .iter()
        .find(|s| s.name == held.source)
        .ok_or_else(|| RunsError::UnknownSource {
            run: run_id,
            source_name: held.source.clone(),
        })?;
    if let Some(later) = store.applied_after(&held.source, run_id).await? {
        return Err(RunsError::Superseded {
            run: run_id,
            later,
            source_name: held.source,
        });
    }
    let observed = ingest::observe(categorizer, &held.source, held.entries);
    let plan = Plan {
        source: &held.source,
        options: ReconcileOptions {
            withdraw_after: source.withdraw_after,
            count_missing: !held.partial,
        },
        hold: None,
        silent,
        record: RunRecord {
            outcome: "accepted",
            held: Some(run_id),
        },
    };
    let mut phase = Phase::start();
    let decision =
        ingest::reconcile_and_apply(store, clock, false, &plan, &observed, &mut phase).await?;
    let Decision::Applied(applied) = decision else {
        // A plan without hold limits is never held; say so rather than panic.
        return Err(StoreError::Refused(format!("run {run_id} was held again")).into());
    };
    info!(run = run_id, source = %held.source, silent, "held run accepted");
    if let Some(alerts) = alerts {
        alerts.after_release(&held.source, clock.now()).await;
    }
    Ok(Accepted {
        run: run_id,
        source: held.source,
        silent,
        counts: applied.counts,
    })
}

/// Discards held run `run_id`: nothing of it is applied, ever.
pub async fn reject(
    store: &Store,
    clock: &SharedClock,
    alerts: Option<&Alerts>,
    run_id: i64,
) -> Result<String, RunsError> {
    let held = store.held_run(run_id).await?;
    store.reject_run(run_id, clock.now()).await?;
    info!(run = run_id, source = %held.source, "held run rejected");
    if let Some(alerts) = alerts {
        alerts.after_release(&held.source, clock.now()).await;
    }
    Ok(held.source)
}
