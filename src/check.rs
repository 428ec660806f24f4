//! `tidings check`: the config is already checked when it loads (every
//! problem at once); this reads each source without storing anything and
//! shows what the selectors extract, flagging empty fields, so a person can
//! tune a source without reading code.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Result;

use crate::categorize::Categorizer;
use crate::clock::SharedClock;
use crate::config::{Loaded, SourceConfig, SourceKind};
use crate::model::Entry;
use crate::source::{self, SourceOutput};

/// Entries shown per source.
const SHOWN: usize = 3;

/// Print the config summary and each source's first entries; exit 1 if a source failed.
pub async fn run(loaded: &Loaded, clock: SharedClock) -> Result<ExitCode> {
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
    let categorizer = Categorizer::new(config.categories.rules.clone());
    let mut failed = false;
    for source in &config.sources {
        println!();
        match source::read(source, &config.site.contact, Vec::new(), clock.clone()).await {
            Ok(output) => {
                print!("{}", describe_source(source, &output, &categorizer));
                failed |= output.snapshot.partial;
            }
            Err(e) => {
                println!(
                    "source {} ({}): FAILED: {e}",
                    source.name,
                    describe_kind(source)
                );
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn describe_kind(source: &SourceConfig) -> String {
    match &source.kind {
        SourceKind::Seed { path } => format!("seed {}", path.display()),
        SourceKind::Html(html) => format!("html {}", html.url),
    }
}

fn describe_source(
    source: &SourceConfig,
    output: &SourceOutput,
    categorizer: &Categorizer,
) -> String {
    let snapshot = &output.snapshot;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "source {} ({}): {} entries, schedule {:?}",
        source.name,
        describe_kind(source),
        snapshot.entries.len(),
        source.schedule.expr()
    );
    for visit in &output.visits {
        let _ = writeln!(out, "  read: {visit}");
    }
    for warning in &snapshot.warnings {
        let _ = writeln!(out, "  warning: {warning}");
    }
    for (i, entry) in snapshot.entries.iter().take(SHOWN).enumerate() {
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
