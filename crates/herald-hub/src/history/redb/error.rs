//! Why the history file could not be opened, in words an operator can act
//! on: the system (directory, permissions, another process) or the file's
//! contents (empty, not redb, damaged).

use std::path::{Path, PathBuf};

/// The history file could not be opened. Each message says what to do;
/// Herald never deletes or rewrites a file it cannot read.
#[derive(Debug)]
#[non_exhaustive]
pub enum OpenError {
    /// The directory could not be created or the file not opened.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// Another process holds the file.
    InUse {
        /// The file.
        path: PathBuf,
    },
    /// The file exists but holds nothing: redb would silently make a new
    /// database in it, and the history the operator expected would be gone
    /// without a word (a full disk or a failed copy leaves such a file).
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The file is not a redb database, or it is damaged (truncated,
    /// overwritten, or written by something else).
    Damaged {
        /// The file.
        path: PathBuf,
        /// What redb or the decoder reported.
        reason: String,
    },
}

impl OpenError {
    /// The history file, when the error is about its contents (it is
    /// [`Empty`](OpenError::Empty) or [`Damaged`](OpenError::Damaged)) and
    /// not about the system: the file an operator may move aside to start
    /// with a fresh history.
    pub fn unusable_file(&self) -> Option<&Path> {
        match self {
            OpenError::Empty { path } | OpenError::Damaged { path, .. } => Some(path),
            OpenError::Io { .. } | OpenError::InUse { .. } => None,
        }
    }
}

/// How an operator proceeds from a file Herald cannot use.
const UNUSABLE_HELP: &str = "Herald will not delete it: restore it from a backup, or start with a fresh history with --reset-history, which moves the file aside";

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Io { path, error } => write!(
                f,
                "cannot open the history at {}: {error}. Check that the directory exists or can be created and is writable, or choose another with --data-dir",
                path.display()
            ),
            OpenError::InUse { path } => write!(
                f,
                "the history file {} is in use by another process (another herald serve?). Stop it, or give this hub its own --data-dir",
                path.display()
            ),
            OpenError::Empty { path } => write!(
                f,
                "the history file {} is empty (0 bytes): it is not a Herald history (a full disk or an interrupted copy can leave such a file). {UNUSABLE_HELP}",
                path.display()
            ),
            OpenError::Damaged { path, reason } => write!(
                f,
                "the history file {} is not a redb database or is damaged: {reason}. {UNUSABLE_HELP}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for OpenError {}

pub(super) fn open_error(path: &Path, e: redb::DatabaseError) -> OpenError {
    let damaged = |reason: String| OpenError::Damaged {
        path: path.to_path_buf(),
        reason,
    };
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => OpenError::InUse {
            path: path.to_path_buf(),
        },
        // A wrong magic number is reported as invalid data, and a header
        // cut short as an early end of file: both are about the file's
        // contents, not the system.
        redb::DatabaseError::Storage(redb::StorageError::Io(error))
            if error.kind() == std::io::ErrorKind::InvalidData =>
        {
            damaged(error.to_string())
        }
        redb::DatabaseError::Storage(redb::StorageError::Io(error))
            if error.kind() == std::io::ErrorKind::UnexpectedEof =>
        {
            damaged(format!("it ends early, probably truncated ({error})"))
        }
        redb::DatabaseError::Storage(redb::StorageError::Io(error)) => OpenError::Io {
            path: path.to_path_buf(),
            error,
        },
        other => damaged(other.to_string()),
    }
}
