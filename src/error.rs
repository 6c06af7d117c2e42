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
    /// The file at the store's path is an SQLite database of another program.
    ForeignStore { path: PathBuf, application_id: i32 },
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

    /// True when the store could not be written because its disk (or the process's file size
    /// limit) is full.
    pub fn is_disk_full(&self) -> bool {
        match self {
            Error::Db { source, .. } => {
                source.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull)
            }
            Error::Io { source, .. } => is_disk_full_io(source),
            _ => false,
        }
    }

    /// True when the file at the store's path is not an SQLite database, or is damaged.
    pub fn is_corrupt(&self) -> bool {
        matches!(self, Error::Db { source, .. } if matches!(
            source.sqlite_error_code(),
            Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
        ))
    }
}

/// True for "no space left on the device" and "file too large" (a file size limit).
pub fn is_disk_full_io(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull
        || e.kind() == io::ErrorKind::FileTooLarge
        || e.raw_os_error() == Some(28)
        || e.raw_os_error() == Some(27)
}

/// The free space on the file system that holds `path` (or its nearest existing parent), for
/// people: "12.3 MiB", or "unknown".
pub fn free_space(path: &std::path::Path) -> String {
    let mut dir = path.parent();
    while let Some(d) = dir {
        if let Ok(st) = rustix::fs::statvfs(d) {
            let bytes = st.f_bavail.saturating_mul(st.f_frsize);
            return match bytes {
                b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
                b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
                b => format!("{} KiB", b >> 10),
            };
        }
        dir = d.parent();
    }
    "unknown".into()
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
                // SQLite's extended code tells apart causes that share one message.
                if let rusqlite::Error::SqliteFailure(e, _) = source
                    && e.extended_code > 0xff
                {
                    write!(f, " (SQLite code {})", e.extended_code)?;
                }
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
            Error::ForeignStore {
                path,
                application_id,
            } => write!(
                f,
                "{} is an SQLite database that agent-harness did not create (application id \
                 {application_id:#x}); it is left untouched. Point HARNESS_DB at a new file, or \
                 unset it to use the default store",
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
