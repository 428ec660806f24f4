//! `tidings runs`: list runs with their outcome, and accept or reject a held one.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Subcommand;

use super::open_store;
use crate::categorize::Categorizer;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::{runs, wiring};

/// Runs shown by `runs list` unless `--limit` says otherwise.
const DEFAULT_LIMIT: i64 = 50;

#[derive(Debug, Subcommand)]
pub(super) enum RunsCommand {
    /// List the latest runs of every source with their outcome (ok, partial, failed, held, accepted, rejected).
    List {
        /// How many runs, newest first.
        #[arg(long, default_value_t = DEFAULT_LIMIT)]
        limit: i64,
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Apply a held run to the store as it is now.
    Accept {
        /// The run's id (from `runs list`).
        run: i64,
        /// Record the changes as revisions without change events: nobody is told they changed.
        #[arg(long)]
        silent: bool,
    },
    /// Discard a held run: nothing of it is applied.
    Reject {
        /// The run's id (from `runs list`).
        run: i64,
    },
}

pub(super) async fn run(
    config: &Config,
    command: RunsCommand,
    clock: &SharedClock,
) -> Result<ExitCode> {
    let store = open_store(config).await?;
    let alerts = wiring::alerts(&store, config, wiring::templates(config))?;
    match command {
        RunsCommand::List { limit, json } => list(&store, limit, json).await,
        RunsCommand::Accept { run, silent } => {
            let categorizer = Categorizer::new(config.categories.rules.clone());
            let accepted = runs::accept(
                &store,
                &config.sources,
                &categorizer,
                clock,
                alerts.as_deref(),
                (run, silent),
            )
            .await
            .with_context(|| format!("could not accept run {run}"))?;
            let c = accepted.counts;
            let how = if silent { " silently" } else { "" };
            println!(
                "run {run} of {} accepted{how}: {} new, {} changed, {} revised without an event, \
                 {} withdrawn, {} reappeared, {} unchanged",
                accepted.source,
                c.new,
                c.changed,
                c.revised,
                c.withdrawn,
                c.reappeared,
                c.unchanged
            );
            Ok(ExitCode::SUCCESS)
        }
        RunsCommand::Reject { run } => {
            let source = runs::reject(&store, clock, alerts.as_deref(), run)
                .await
                .with_context(|| format!("could not reject run {run}"))?;
            println!("run {run} of {source} rejected: nothing of it was applied");
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn list(store: &crate::store::Store, limit: i64, json: bool) -> Result<ExitCode> {
    let rows = store.list_runs(limit).await?;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &rows)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    for r in &rows {
        writeln!(
            out,
            "{:>6}  {}  {:20}  {:8}  {} entries, {} new, {} changed, {} withdrawn",
            r.id,
            r.finished_at.format("%Y-%m-%d %H:%M:%S"),
            r.source,
            r.outcome,
            r.entries,
            r.new,
            r.changed,
            r.withdrawn
        )?;
        if let Some(error) = r.error.as_deref().filter(|e| !e.is_empty()) {
            writeln!(out, "        {error}")?;
        }
        for line in &r.summary {
            writeln!(out, "        {line}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
