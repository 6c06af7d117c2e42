//! The error log beside the store: one line per problem a hook swallowed, so a user can see what
//! went wrong after the session. Owner-only (0600), appended with O_APPEND (concurrent hooks never
//! interleave within a line), and rotated once it passes [`MAX_LOG_BYTES`].
//!
//! Must never fail loudly: a log that cannot be written is reported by the caller's stderr line.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// When the log passes this size it is renamed to `<log>.1` (replacing an older one).
pub const MAX_LOG_BYTES: u64 = 1024 * 1024;

/// The log file for a store: `harness.db` → `harness.log`, in the same directory.
pub fn path_for(db: &Path) -> PathBuf {
    db.with_extension("log")
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
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(log)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .is_ok()
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
