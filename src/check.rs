//! `tidings check`: the config is already checked when it loads (every
//! problem at once); this reads each source without storing anything and runs
//! the checks `ingest` runs (an empty or shrunken snapshot, `expect`, the
//! mass-change hold against the store when it is there), then shows what the
//! selectors extract, flagging empty fields, so a person can tune a source
//! without reading code. Every failure names the URL or file read.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use crate::categorize::Categorizer;
use crate::clock::SharedClock;
use crate::config::{Loaded, SourceConfig, SourceKind};
use crate::ingest::{self, Decision, Phase, Plan};
use crate::model::Entry;
use crate::reconcile::ReconcileOptions;
use crate::source::{self, SourceOutput};
use crate::store::{RunRecord, Store};

/// Entries shown per source.
const SHOWN: usize = 3;

/// What `check` found for one source (`--json` prints a list of these).
#[derive(Debug, Default, Serialize)]
struct SourceCheck {
    name: String,
    /// `seed PATH` or `html URL`.
    kind: String,
    /// True when `ingest` would apply the run.
    ok: bool,
    /// Why `ingest` would fail the run, naming the URL or file.
    error: Option<String>,
    entries: usize,
    partial: bool,
    warnings: Vec<String>,
    /// Pages or files read.
    visits: Vec<String>,
    /// True when `ingest` would hold the run for a person to accept.
    held: bool,
    /// Why it would be held.
    hold_reasons: Vec<String>,
    /// Per field, how many stored resources it would empty or change.
    summary: Vec<String>,
    /// Whether the store could be read for the checks that compare with it.
    compared_with_store: bool,
}

/// The whole `check --json` output.
#[derive(Debug, Serialize)]
struct CheckReport<'a> {
    config: &'a str,
    ok: bool,
    sources: Vec<SourceCheck>,
}

/// Print the config summary and each source's checks and first entries;
/// exit 1 if `ingest` would fail or hold any source.
pub async fn run(loaded: &Loaded, clock: SharedClock, json: bool) -> Result<ExitCode> {
    let config = &loaded.config;
    if !json {
        print_config(loaded);
    }
    let categorizer = Categorizer::new(config.categories.rules.clone());
    let store = existing_store(&config.database.url).await;
    let mut checks = Vec::new();
    for source in &config.sources {
        let read = source::read_within(source, &config.site.contact, Vec::new(), clock.clone());
        let (check, output) = match read.await {
            Ok(output) => {
                let check = judge(source, &output, store.as_ref(), &categorizer, &clock).await;
                (check, Some(output))
            }
            Err(e) => (failed(source, e.to_string()), None),
        };
        if !json {
            println!();
            print!(
                "{}",
                describe(source, &check, output.as_ref(), &categorizer)
            );
        }
        checks.push(check);
    }
    let ok = checks.iter().all(|c| c.ok);
    if json {
        let report = CheckReport {
            config: &loaded.origin.to_string(),
            ok,
            sources: checks,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_config(loaded: &Loaded) {
    let config = &loaded.config;
    println!("config {}: ok", loaded.origin);
    println!(
        "  site: {} at {} ({})",
        config.site.title, config.site.base_url, config.site.timezone
    );
    println!(
        "  database: {}",
        crate::config::redact_url(&config.database.url)
    );
    println!(
        "  {} source(s), {} category rule(s)",
        config.sources.len(),
        config.categories.rules.len()
    );
}

/// The configured database if it exists and is migrated; `check` never creates or migrates it.
async fn existing_store(url: &str) -> Option<Store> {
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        && !std::path::Path::new(path.split('?').next().unwrap_or(path)).exists()
    {
        return None;
    }
    let store = Store::open(url).await.ok()?;
    store.is_migrated().await.ok()?.then_some(store)
}

fn failed(source: &SourceConfig, error: String) -> SourceCheck {
    SourceCheck {
        name: source.name.clone(),
        kind: describe_kind(source),
        error: Some(error),
        ..SourceCheck::default()
    }
}

/// The checks `ingest` runs on a snapshot, storing nothing.
async fn judge(
    source: &SourceConfig,
    output: &SourceOutput,
    store: Option<&Store>,
    categorizer: &Categorizer,
    clock: &SharedClock,
) -> SourceCheck {
    let snapshot = &output.snapshot;
    let mut check = SourceCheck {
        entries: snapshot.entries.len(),
        partial: snapshot.partial,
        warnings: snapshot.warnings.clone(),
        visits: output.visits.clone(),
        compared_with_store: store.is_some(),
        ..failed(source, String::new())
    };
    check.error = first_failure(source, output, store).await;
    if check.error.is_none()
        && let Some(store) = store
    {
        let observed = ingest::observe(categorizer, &source.name, snapshot.entries.clone());
        let plan = Plan {
            source: &source.name,
            options: ReconcileOptions {
                withdraw_after: source.withdraw_after,
                count_missing: !snapshot.partial,
            },
            hold: Some(source.hold),
            silent: false,
            record: RunRecord::OK,
        };
        let mut phase = Phase::start();
        match ingest::reconcile_and_apply(store, clock, true, &plan, &observed, &mut phase).await {
            Ok(Decision::Held { assessment, .. }) => {
                check.held = true;
                check.hold_reasons = assessment.reasons.clone();
                check.summary = assessment.summary();
            }
            Ok(Decision::Applied(_)) => {}
            Err(e) => check.error = Some(format!("could not compare with the store: {e}")),
        }
    }
    check.ok = check.error.is_none() && !check.held && !check.partial;
    check
}

/// Why `ingest` would fail this snapshot: empty, shrunken, or against `expect`.
async fn first_failure(
    source: &SourceConfig,
    output: &SourceOutput,
    store: Option<&Store>,
) -> Option<String> {
    let snapshot = &output.snapshot;
    let plausible = match store {
        Some(store) => ingest::check_plausible(store, source, snapshot).await,
        None if snapshot.entries.is_empty() => Err(source::SourceError::Implausible(format!(
            "{} listed no entries",
            source::location(source)
        ))),
        None => Ok(()),
    };
    if let Err(e) = plausible {
        return Some(e.to_string());
    }
    ingest::check_expected(&source.expect, &snapshot.entries)
        .err()
        .map(|e| format!("{}: implausible snapshot: {e}", source::location(source)))
}

fn describe_kind(source: &SourceConfig) -> String {
    match &source.kind {
        SourceKind::Seed { path } => format!("seed {}", path.display()),
        SourceKind::Html(html) => format!("html {}", html.url),
    }
}

/// The human-readable check of one source.
fn describe(
    source: &SourceConfig,
    check: &SourceCheck,
    output: Option<&SourceOutput>,
    categorizer: &Categorizer,
) -> String {
    let mut out = String::new();
    let Some(output) = output else {
        let error = check.error.as_deref().unwrap_or_default();
        let _ = writeln!(
            out,
            "source {} ({}): FAILED: {error}",
            check.name, check.kind
        );
        return out;
    };
    let _ = writeln!(
        out,
        "source {} ({}): {} entries, schedule {:?}",
        check.name,
        check.kind,
        check.entries,
        source.schedule.expr()
    );
    for visit in &check.visits {
        let _ = writeln!(out, "  read: {visit}");
    }
    for warning in &check.warnings {
        let _ = writeln!(out, "  warning: {warning}");
    }
    if let Some(error) = &check.error {
        let _ = writeln!(out, "  FAILED: {error}");
    }
    if check.held {
        let _ = writeln!(out, "  HELD: {}", check.hold_reasons.join("; "));
        for line in &check.summary {
            let _ = writeln!(out, "    {line}");
        }
    }
    if !check.compared_with_store {
        let _ = writeln!(
            out,
            "  (no database yet: the shrink guard and the hold are checked from the first ingest on)"
        );
    }
    for (i, entry) in output.snapshot.entries.iter().take(SHOWN).enumerate() {
        let _ = writeln!(out, "  entry {}:", i + 1);
        out.push_str(&describe_entry(entry, categorizer));
    }
    out
}

/// Every field of one entry, with `(empty)` where the source gave nothing.
fn describe_entry(entry: &Entry, categorizer: &Categorizer) -> String {
    let category = match &entry.category {
        Some(name) => name.clone(),
        None => format!("{} (by rule)", categorizer.categorize(entry).name),
    };
    let summary = entry.summary.plain_text();
    let fields = [
        ("title", Some(entry.title.clone())),
        ("link", entry.link.as_ref().map(ToString::to_string)),
        ("date", entry.date.map(|d| d.to_string())),
        ("category", Some(category)),
        ("download", entry.download.as_ref().map(ToString::to_string)),
        ("summary", Some(shorten(&summary, 100))),
    ];
    let mut out = String::new();
    for (name, value) in fields {
        let shown = value
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "(empty)".to_owned());
        let _ = writeln!(out, "    {name:9} {shown}");
    }
    out
}

fn shorten(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let cut: String = flat.chars().take(max).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_fields_are_flagged() {
        let entry = Entry::titled("A title");
        let text = describe_entry(&entry, &Categorizer::new(Vec::new()));
        assert!(text.contains("title     A title"));
        assert!(text.contains("link      (empty)"));
        assert!(text.contains("summary   (empty)"));
        assert!(text.contains("category  Other (by rule)"));
    }
}
