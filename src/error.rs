//! The library's error type: one enum whose messages name the thing that failed and the fix.
//!
//! Owns wording, not policy: whether an error fails a hook open or closed is `hook.rs`'s call.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::payload::PayloadError;

#[derive(Debug)]
pub enum Error {
    /// A file or directory operation failed.
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// An SQLite operation on the store failed.
    Db {
        action: &'static str,
        path: PathBuf,
        source: rusqlite::Error,
    },
    /// The store was written by a newer agent-harness.
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    /// The config file is not valid.
    Config { path: PathBuf, message: String },
    /// Neither `HARNESS_DB` nor `HOME` tells where the store lives.
    NoStateDir,
    /// The hook input is not a hook payload.
    Payload(PayloadError),
    /// A bug: a panic caught at the hook boundary.
    Panic(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub fn db(action: &'static str, path: impl Into<PathBuf>, source: rusqlite::Error) -> Error {
        Error::Db {
            action,
            path: path.into(),
            source,
        }
    }

    /// True for SQLite's "the database is busy/locked" errors: another process holds the write
    /// lock longer than the busy timeout.
    pub fn is_busy(&self) -> bool {
        matches!(self, Error::Db { source, .. } if matches!(
            source.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        ))
    }

    /// True when the file at the store's path is not an SQLite database, or is damaged.
    pub fn is_corrupt(&self) -> bool {
        matches!(self, Error::Db { source, .. } if matches!(
            source.sqlite_error_code(),
            Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
        ))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io {
                action,
                path,
                source,
            } => {
                write!(f, "cannot {action} {}: {source}", path.display())?;
                match source.kind() {
                    io::ErrorKind::PermissionDenied => write!(
                        f,
                        " (fix the permissions, or point HARNESS_DB at a writable place)"
                    ),
                    io::ErrorKind::StorageFull => write!(f, " (free some disk space)"),
                    _ => Ok(()),
                }
            }
            Error::Db {
                action,
                path,
                source,
            } => {
                write!(f, "cannot {action} the store {}: {source}", path.display())?;
                if self.is_busy() {
                    write!(
                        f,
                        " (another process held it past the busy timeout; `harness doctor` shows who)"
                    )?;
                }
                Ok(())
            }
            Error::SchemaTooNew {
                path,
                found,
                supported,
            } => write!(
                f,
                "the store {} has schema version {found}, newer than this agent-harness \
                 understands ({supported}); upgrade agent-harness (cargo install --path .)",
                path.display()
            ),
            Error::Config { path, message } => write!(
                f,
                "config file {}: {message} (fix or remove the file; `harness doctor` checks it)",
                path.display()
            ),
            Error::NoStateDir => f.write_str(
                "cannot tell where the store lives: set HARNESS_DB to a file path, or HOME",
            ),
            Error::Payload(e) => write!(f, "{e}"),
            Error::Panic(msg) => write!(f, "internal error (a bug, please report it): {msg}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Db { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<PayloadError> for Error {
    fn from(e: PayloadError) -> Self {
        Error::Payload(e)
    }
}
