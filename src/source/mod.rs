//! Sources turn something outside (a folder of seed text files, later a web
//! page) into a `Snapshot`. They never touch the store; a failure is a
//! `SourceError` that the ingest step reports without changing anything.

pub mod fetch;
pub mod seed;

use std::path::PathBuf;

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
}
