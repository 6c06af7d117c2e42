//! The error log beside the store: one line per problem a hook swallowed, so a user can see what
//! went wrong after the session. Owner-only (0600), appended with O_APPEND (concurrent hooks never
//! interleave within a line), and rotated once it passes [`MAX_LOG_BYTES`].
//!
//! Must never fail loudly: a log that cannot be written is reported by the caller's stderr line.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// When the log passes this size it is renamed to `<log>.1` (replacing an older one).
pub const MAX_LOG_BYTES: u64 = 1024 * 1024;

/// The log file for a store: `harness.db` → `harness.log`, in the same directory.
pub fn path_for(db: &Path) -> PathBuf {
    db.with_extension("log")
}

/// Where problems go when the log beside the store cannot be written (its directory is missing
/// or read-only): `$TMPDIR/agent-harness-<uid>.log`.
pub fn fallback_path() -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0);
    std::env::temp_dir().join(format!("agent-harness-{uid}.log"))
}

/// Appends one line `<time> <source>[pid]: <message>` to the log, or to the fallback log when
/// that fails. Returns the file written, or None if neither could be.
pub fn append_or_fallback(log: &Path, source: &str, message: &str) -> Option<PathBuf> {
    if append(log, source, message) {
        return Some(log.to_path_buf());
    }
    let fallback = fallback_path();
    append(&fallback, source, message).then_some(fallback)
}

/// Appends one line `<time> <source>[pid]: <message>` to the log. Returns false if it could not.
pub fn append(log: &Path, source: &str, message: &str) -> bool {
    if let Ok(meta) = std::fs::metadata(log)
        && meta.len() > MAX_LOG_BYTES
    {
        let _ = std::fs::rename(log, log.with_extension("log.1"));
    }
    let line = format!(
        "{} {source}[{}]: {}\n",
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ"),
        std::process::id(),
        message.replace('\n', " ")
    );
    let open = || {
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(log)
    };
    let file = match open() {
        // The store's directory does not exist yet when the very first hook call fails.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => log
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map(|dir| DirBuilder::new().recursive(true).mode(0o700).create(dir))
            .and_then(Result::ok)
            .map(|()| open()),
        other => Some(other),
    };
    match file {
        Some(Ok(mut f)) => f.write_all(line.as_bytes()).is_ok(),
        _ => false,
    }
}

/// The last `n` lines of the log, oldest first (for `harness doctor`).
pub fn tail(log: &Path, n: usize) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(log) else {
        return Vec::new();
    };
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|s| s.to_string())
        .collect()
}
