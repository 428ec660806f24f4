//! Sources turn something outside (a folder of seed text files, later a web
//! page) into a `Snapshot`. They never touch the store; a failure is a
//! `SourceError` that the ingest step reports without changing anything.

pub mod seed;
pub mod select;

use std::path::PathBuf;

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
    /// The run produced too few entries to be believed.
    #[error("implausible snapshot: {0}")]
    Implausible(String),
}

/// Read a source once. Never touches the store.
pub async fn read(source: &SourceConfig) -> Result<Snapshot, SourceError> {
    match &source.kind {
        SourceKind::Seed { path } => {
            let (name, path) = (source.name.clone(), path.clone());
            tokio::task::spawn_blocking(move || seed::read_seed_source(&name, &path))
                .await
                .map_err(|e| SourceError::Io {
                    path: PathBuf::from(&source.name),
                    reason: format!("the reading task failed: {e}"),
                })?
        }
        SourceKind::Html(_) => Err(SourceError::Implausible("HTML_PENDING".to_owned())),
    }
}
