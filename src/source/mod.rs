//! Sources turn something outside (a folder of seed text files, or a
//! paginated web page) into a `Snapshot`. They never touch the store; a failure is a
//! `SourceError` that the ingest step reports without changing anything.

pub mod clean;
pub mod fetch;
pub mod html;
pub mod scrape;
pub mod seed;
pub mod select;

pub use scrape::CachedPage;

use std::path::PathBuf;

use crate::clock::SharedClock;
use crate::config::{SourceConfig, SourceKind};
use crate::model::Snapshot;

/// Why a source produced no snapshot.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A file or folder could not be read.
    #[error("could not read {path}: {reason}")]
    Io {
        /// What could not be read.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
    /// The input was read but is not in the expected format.
    #[error("{location}: {reason}")]
    Parse {
        /// File (and line where it helps) of the problem.
        location: String,
        /// What is wrong, in words a person can act on.
        reason: String,
    },
    /// A page could not be fetched (network, status, size, robots.txt, origin).
    #[error(transparent)]
    Fetch(#[from] fetch::FetchError),
    /// The run produced too few entries to be believed.
    #[error("implausible snapshot: {0}")]
    Implausible(String),
    /// The whole run, retries included, took longer than `run_timeout_s`.
    #[error("the run did not finish within run_timeout_s = {seconds} s{during}")]
    Deadline {
        /// The configured bound.
        seconds: u64,
        /// Where it was, e.g. ` (reading https://…)`; empty when unknown.
        during: String,
    },
}

/// What one read of a source produced.
#[derive(Debug)]
pub struct SourceOutput {
    /// The entries seen.
    pub snapshot: Snapshot,
    /// Pages to keep for the next run's conditional requests (`html` sources).
    pub pages: Option<Vec<CachedPage>>,
    /// What was read: files or page URLs, for `tidings check`.
    pub visits: Vec<String>,
}

/// Read a source once within its `run_timeout_s`, retries included: a source
/// that hangs fails with `SourceError::Deadline` naming where it was read.
pub(crate) async fn read_within(
    source: &SourceConfig,
    contact: &str,
    cached: Vec<CachedPage>,
    clock: SharedClock,
) -> Result<SourceOutput, SourceError> {
    match tokio::time::timeout(source.run_timeout, read(source, contact, cached, clock)).await {
        Ok(result) => result,
        Err(_) => Err(SourceError::Deadline {
            seconds: source.run_timeout.as_secs(),
            during: format!(" (reading {})", location(source)),
        }),
    }
}

/// Where a source is read from: its file or folder, or its first page's URL.
pub fn location(source: &SourceConfig) -> String {
    match &source.kind {
        SourceKind::Seed { path } => path.display().to_string(),
        SourceKind::Html(html) => html.url.to_string(),
    }
}

/// Read a source once, its text cleaned (`clean`). Never touches the store:
/// `cached` are the pages the last good run stored, which an `html` source
/// asks for conditionally.
pub async fn read(
    source: &SourceConfig,
    contact: &str,
    cached: Vec<CachedPage>,
    clock: SharedClock,
) -> Result<SourceOutput, SourceError> {
    let mut output = read_raw(source, contact, cached, clock).await?;
    clean::snapshot(&mut output.snapshot);
    Ok(output)
}

/// Read a source once, as the seed or page gives it.
async fn read_raw(
    source: &SourceConfig,
    contact: &str,
    cached: Vec<CachedPage>,
    clock: SharedClock,
) -> Result<SourceOutput, SourceError> {
    match &source.kind {
        SourceKind::Seed { path } => {
            let (name, path) = (source.name.clone(), path.clone());
            let shown = path.display().to_string();
            let snapshot =
                tokio::task::spawn_blocking(move || seed::read_seed_source(&name, &path))
                    .await
                    .map_err(|e| SourceError::Io {
                        path: PathBuf::from(&shown),
                        reason: format!("the reading task failed: {e}"),
                    })??;
            Ok(SourceOutput {
                snapshot,
                pages: None,
                visits: vec![shown],
            })
        }
        SourceKind::Html(html) => {
            let env = scrape::ScrapeEnv {
                contact: contact.to_owned(),
                cached,
                clock,
            };
            let scrape = scrape::scrape(&source.name, html, env).await?;
            Ok(SourceOutput {
                snapshot: scrape.snapshot,
                pages: Some(scrape.pages),
                visits: scrape.visits,
            })
        }
    }
}
