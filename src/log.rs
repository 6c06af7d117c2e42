//! The error log beside the store: one line per problem a hook swallowed, so a user can see what
//! went wrong after the session. Owner-only (0600), appended with O_APPEND (concurrent hooks never
//! interleave within a line), and rotated once it passes [`MAX_LOG_BYTES`].
//!
//! Must never fail loudly: a log that cannot be written is reported by the caller's stderr line.

use std::fs::DirBuilder;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
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
    let uid = rustix::process::getuid().as_raw();
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
    let open = || crate::private_file::open(log, crate::private_file::Mode::Append);
    // Never through a symlink, and only into a file of our own: the fallback lives in a shared
    // temp directory where anyone could have put either there first.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_that_is_a_symlink_is_not_written_through() {
        let dir = std::env::temp_dir().join(format!("ah-log-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        let log = dir.join("harness.log");
        std::os::unix::fs::symlink(&victim, &log).unwrap();
        assert!(!append(&log, "test", "planted"));
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        // A plain log is written, owner-only.
        let plain = dir.join("plain.log");
        assert!(append(&plain, "test", "one\ntwo"));
        let text = std::fs::read_to_string(&plain).unwrap();
        assert!(text.contains(" test["), "{text}");
        assert!(text.ends_with("]: one two\n"), "{text}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&plain).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
