//! Feeding transcript usage into the store: read what each transcript gained since its stored
//! cursor (`usage::transcript`), store the responses (deduplicated by message id and request id,
//! keeping the largest) and the new cursors, and recompute the estimates.
//!
//! Two paths: a hook or the status line reads one session's transcript before its write
//! transaction ([`read_one`], bounded by [`HOOK_MAX_NEW_BYTES`] so that a call stays cheap) and
//! stores it inside ([`store_one`]); `harness quota` reads every transcript (on all cores) and then
//! writes in one transaction. Files are never read while the store's write lock is held.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::config::QuotaConfig;
use crate::store::quota::{self as q, UsageRow};
use crate::usage::transcript::{self, FileCursor, UsageEntry};

/// A hook reads at most this much new transcript; more waits for `harness quota` (or the status
/// line), so that a session's first Stop after installing never reads a huge history.
pub const HOOK_MAX_NEW_BYTES: u64 = 8 * 1024 * 1024;

fn row(e: UsageEntry) -> UsageRow {
    UsageRow {
        message_id: e.message_id,
        request_id: e.request_id,
        ts_ms: e.ts_ms,
        session_id: (!e.session_id.is_empty()).then_some(e.session_id),
        model: (!e.model.is_empty()).then_some(e.model),
        input_tokens: e.input_tokens,
        output_tokens: e.output_tokens,
        cache_creation_tokens: e.cache_creation_tokens,
        cache_read_tokens: e.cache_read_tokens,
        sidechain: e.sidechain,
    }
}

fn stored_cursor(conn: &Connection, path: &Path) -> rusqlite::Result<Option<FileCursor>> {
    Ok(q::cursor(conn, &path.to_string_lossy())?.and_then(|json| serde_json::from_str(&json).ok()))
}

/// Stores what a read produced; returns how many responses it held.
fn store_read(
    conn: &Connection,
    entries: Vec<UsageEntry>,
    cursor: &FileCursor,
    now_ms: i64,
) -> rusqlite::Result<usize> {
    let rows: Vec<UsageRow> = transcript::dedup(entries).into_iter().map(row).collect();
    q::put_usage(conn, &rows)?;
    let json = serde_json::to_string(cursor).unwrap_or_default();
    q::put_cursor(conn, &cursor.path.to_string_lossy(), &json, now_ms)?;
    Ok(rows.len())
}

/// What one transcript gained since its stored cursor, read outside any transaction.
#[derive(Debug)]
pub struct Read {
    /// The cursor the read started from (as stored when it began).
    previous: Option<FileCursor>,
    entries: Vec<UsageEntry>,
    cursor: FileCursor,
}

impl Read {
    /// The statements [`store_one`] runs for this read, to compile before a write lock (see
    /// `Store::write_prepared`): the cursor always, the usage and the estimates when it found
    /// responses.
    pub fn statements(&self) -> Vec<&'static str> {
        let mut out = vec![q::PUT_CURSOR_SQL];
        if !self.entries.is_empty() {
            out.extend(q::PUT_USAGE_STATEMENTS);
            out.extend(crate::quota::ESTIMATES_STATEMENTS);
        }
        out
    }
}

/// Reads what one transcript gained since its stored cursor, unless more than `max_new_bytes`
/// wait to be read. `conn` is only read (for the cursor), so the file is read without holding the
/// store's write lock. `None` when nothing is new or the file cannot be read (it may not exist
/// yet): that is not an error of the call.
pub fn read_one(
    conn: &Connection,
    path: &Path,
    max_new_bytes: u64,
) -> rusqlite::Result<Option<Read>> {
    let previous = stored_cursor(conn, path)?;
    // Only a regular file is a transcript (a FIFO would block its reader): refused here cheaply,
    // and again on the opened file by `read_new`, which is what makes it safe.
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(None);
    };
    if !meta.is_file() {
        return Ok(None);
    }
    let offset = previous.as_ref().map_or(0, |c| c.offset);
    if meta.len().saturating_sub(offset) > max_new_bytes {
        return Ok(None);
    }
    let Ok((entries, cursor)) = transcript::read_new(path, previous.as_ref()) else {
        return Ok(None);
    };
    if previous.as_ref() == Some(&cursor) {
        return Ok(None);
    }
    Ok(Some(Read {
        previous,
        entries,
        cursor,
    }))
}

/// Stores a [`read_one`] in the caller's transaction, unless another call stored the same bytes
/// since (the stored cursor moved): then the read is dropped and the next call reads on. Refreshes
/// the estimates when it stored anything; returns the responses stored.
pub fn store_one(
    conn: &Connection,
    read: Read,
    cfg: &QuotaConfig,
    now_ms: i64,
) -> rusqlite::Result<usize> {
    if stored_cursor(conn, &read.cursor.path)? != read.previous {
        return Ok(0);
    }
    let n = store_read(conn, read.entries, &read.cursor, now_ms)?;
    if n > 0 {
        crate::quota::refresh_estimates(conn, cfg, now_ms)?;
    }
    Ok(n)
}

/// Claude Code's config directory, where its transcripts are.
pub fn claude_dir() -> Option<PathBuf> {
    crate::paths::claude_config_dir()
}

/// The result of reading every transcript: the reads to store, and files that failed.
pub struct Refresh {
    reads: Vec<(Vec<UsageEntry>, FileCursor)>,
    pub files: usize,
    pub changed: usize,
    pub errors: Vec<(PathBuf, std::io::Error)>,
}

/// Reads what every transcript under `claude_dir` gained since its stored cursor, on all cores,
/// without holding the store (`conn` is only read for the cursors).
pub fn read_everything(conn: &Connection, claude_dir: &Path) -> rusqlite::Result<Refresh> {
    let paths = transcript::find_transcripts(claude_dir);
    let mut cursors: HashMap<String, FileCursor> = HashMap::new();
    for (path, json) in q::cursors(conn)? {
        if let Ok(c) = serde_json::from_str(&json) {
            cursors.insert(path, c);
        }
    }
    let previous: Vec<Option<&FileCursor>> = paths
        .iter()
        .map(|p| cursors.get(p.to_string_lossy().as_ref()))
        .collect();
    let mut refresh = Refresh {
        reads: Vec::new(),
        files: paths.len(),
        changed: 0,
        errors: Vec::new(),
    };
    for (path, result) in paths.iter().zip(transcript::read_all(&paths, &previous)) {
        match result {
            Ok(Some(read)) => refresh.reads.push(read),
            Ok(None) => {}
            Err(e) => refresh.errors.push((path.clone(), e)),
        }
    }
    refresh.changed = refresh.reads.len();
    Ok(refresh)
}

/// Stores what `read_everything` read and refreshes the estimates; returns the responses stored.
pub fn store_everything(
    conn: &Connection,
    refresh: Refresh,
    cfg: &QuotaConfig,
    now_ms: i64,
) -> rusqlite::Result<usize> {
    // One deduplication over all files, so that a response written in two files (a subagent's
    // replay of its parent's message) counts once, as ccusage counts it.
    let mut all = Vec::new();
    for (entries, cursor) in refresh.reads {
        all.extend(entries);
        let json = serde_json::to_string(&cursor).unwrap_or_default();
        q::put_cursor(conn, &cursor.path.to_string_lossy(), &json, now_ms)?;
    }
    let rows: Vec<UsageRow> = transcript::dedup(all).into_iter().map(row).collect();
    q::put_usage(conn, &rows)?;
    crate::quota::refresh_estimates(conn, cfg, now_ms)?;
    Ok(rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use std::time::Duration;

    fn line(msg: &str, input: u64) -> String {
        serde_json::json!({
            "type": "assistant", "sessionId": "s", "requestId": format!("req_{msg}"),
            "timestamp": "2026-11-21T10:00:00.000Z",
            "message": {"id": msg, "model": "claude-opus-4-8", "role": "assistant",
                        "usage": {"input_tokens": input, "output_tokens": 1}}
        })
        .to_string()
            + "\n"
    }

    #[test]
    fn a_read_overtaken_by_another_call_is_dropped_and_nothing_counts_twice() {
        let dir = std::env::temp_dir().join(format!("ah-ingest-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let transcript = dir.join("s.jsonl");
        std::fs::write(&transcript, line("m1", 100)).unwrap();
        let mut store = Store::open(&dir.join("h.db"), Duration::from_secs(1)).unwrap();
        let cfg = QuotaConfig::default();
        let conn = store.reader().unwrap();
        // Two calls read the same new bytes before either stores them.
        let first = read_one(conn, &transcript, HOOK_MAX_NEW_BYTES)
            .unwrap()
            .unwrap();
        let second = read_one(conn, &transcript, HOOK_MAX_NEW_BYTES)
            .unwrap()
            .unwrap();
        let stored = store
            .write(|tx| Ok(store_one(tx, first, &cfg, 1).unwrap()))
            .unwrap();
        assert_eq!(stored, 1);
        let stored = store
            .write(|tx| Ok(store_one(tx, second, &cfg, 2).unwrap()))
            .unwrap();
        assert_eq!(stored, 0, "the cursor moved: the second read is dropped");
        // Nothing new: no read at all. New bytes: read on from the stored cursor.
        let conn = store.reader().unwrap();
        assert!(
            read_one(conn, &transcript, HOOK_MAX_NEW_BYTES)
                .unwrap()
                .is_none()
        );
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&transcript)
            .unwrap();
        std::io::Write::write_all(&mut f, line("m2", 50).as_bytes()).unwrap();
        let conn = store.reader().unwrap();
        let third = read_one(conn, &transcript, HOOK_MAX_NEW_BYTES)
            .unwrap()
            .unwrap();
        assert_eq!(third.entries.len(), 1);
        // Over the bound: left for `harness quota`.
        assert!(read_one(conn, &transcript, 10).unwrap().is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
